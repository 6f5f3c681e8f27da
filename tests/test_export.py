"""course_utils.export: GGUF files written with the gguf package and read back by transformers'
GGUF loader: exact in f32 (names, settings, the rotary reordering, the tokenizer), f16 to the
bit of a float16 copy, q8_0 within its rounding; LoRA merged in; bad input refused."""

import copy

import pytest
import torch

from course_utils import export, serve
from course_utils.train import _library_deprecations_hidden

TEXT = "Ticket 7: my invoice for order BB-1234 is wrong!"


def logits(model, tokenizer, text: str = TEXT):
    ids = tokenizer(text, return_tensors="pt")["input_ids"]
    with torch.no_grad():
        return model(ids).logits


def test_an_f32_export_reads_back_exactly(tiny_model, tmp_path):
    model, tokenizer = tiny_model
    written = export.export_gguf(model, tokenizer, tmp_path / "tiny.gguf", quant="f32")
    assert written.path.exists() and written.tensors == len(model.state_dict())
    assert "f32" in str(written) and not list(tmp_path.glob(".*.tmp"))  # no staging left
    again, again_tokenizer = export.load_gguf(written.path)
    # the architecture's settings...
    for key in ("hidden_size", "num_hidden_layers", "num_attention_heads",
                "num_key_value_heads", "intermediate_size", "vocab_size", "rms_norm_eps"):
        assert getattr(again.config, key) == pytest.approx(getattr(model.config, key)), key
    # ...every weight, with the query and key rows back in HF's order...
    theirs = again.state_dict()
    for name, tensor in model.state_dict().items():
        assert torch.equal(theirs[name], tensor), name
    # ...so the same logits, and the same tokenizer and chat template
    assert torch.equal(logits(again, again_tokenizer), logits(model, tokenizer))
    assert again_tokenizer(TEXT)["input_ids"] == tokenizer(TEXT)["input_ids"]
    chat = [{"role": "user", "content": "hi"}]
    assert (again_tokenizer.apply_chat_template(chat, tokenize=False, add_generation_prompt=True)
            == tokenizer.apply_chat_template(chat, tokenize=False, add_generation_prompt=True))
    assert again_tokenizer.eos_token_id == tokenizer.eos_token_id


def test_f16_holds_a_float16_copy_and_q8_0_a_quarter_of_float32(tiny_model, tmp_path):
    model, tokenizer = tiny_model
    files = {quant: export.export_gguf(model, tokenizer, tmp_path / f"{quant}.gguf", quant=quant)
             for quant in ("f32", "f16", "q8_0")}
    f16, _ = export.load_gguf(files["f16"].path, tokenizer=False)
    theirs = f16.state_dict()
    for name, tensor in model.state_dict().items():
        expected = tensor if tensor.ndim == 1 else tensor.half().float()  # norms stay f32
        assert torch.equal(theirs[name], expected), name
    q8, _ = export.load_gguf(files["q8_0"].path, tokenizer=False)
    reference = logits(model, tokenizer)
    gap = {quant: (logits(m, tokenizer) - reference).abs().max().item()
           for quant, m in (("f16", f16), ("q8_0", q8))}
    assert 0 < gap["f16"] < gap["q8_0"] < 0.1, gap
    assert files["q8_0"].kept_f16 == []  # rows of 32 and 64 fill Q8_0's blocks of 32
    sizes = {quant: f.bytes for quant, f in files.items()}
    assert sizes["q8_0"] < sizes["f16"] < sizes["f32"], sizes


def test_a_lora_adapter_is_merged_into_the_file(tiny_model, tmp_path):
    from peft import LoraConfig, get_peft_model
    model, tokenizer = tiny_model
    torch.manual_seed(3)
    with _library_deprecations_hidden():
        tuned = get_peft_model(copy.deepcopy(model), LoraConfig(
            r=4, lora_alpha=8, target_modules=["q_proj", "k_proj", "v_proj"],
            init_lora_weights=False, task_type="CAUSAL_LM"))
    written = export.export_gguf(tuned, tokenizer, tmp_path / "tuned.gguf", quant="f32")
    again, _ = export.load_gguf(written.path, tokenizer=False)
    merged = serve.merge(tuned)
    assert torch.allclose(logits(again, tokenizer), logits(merged, tokenizer), atol=1e-5)
    assert not torch.allclose(logits(again, tokenizer), logits(model, tokenizer), atol=1e-3)
    assert hasattr(tuned, "peft_config")  # the PeftModel given is left as it was


def test_what_it_cannot_write_is_refused_with_the_alternative(tiny_model, tmp_path):
    from transformers import GPT2Config, GPT2LMHeadModel
    model, tokenizer = tiny_model
    with pytest.raises(ValueError, match="quant='q4'.*f16, q8_0"):
        export.export_gguf(model, tokenizer, tmp_path / "x.gguf", quant="q4")
    gpt2 = GPT2LMHeadModel(GPT2Config(n_layer=1, n_embd=32, n_head=2, vocab_size=len(tokenizer)))
    with pytest.raises(ValueError, match="'gpt2'.*convert_hf_to_gguf.py"):
        export.export_gguf(gpt2, tokenizer, tmp_path / "x.gguf")
    assert not list(tmp_path.iterdir())  # nothing half-written left behind


def test_the_ollama_modelfile_and_llama_cpp_command_name_the_file():
    modelfile = export.ollama_modelfile("/tmp/out/tickets-q8_0.gguf", system="Triage tickets.")
    assert modelfile.startswith("FROM ./tickets-q8_0.gguf\n")
    assert 'PARAMETER stop "<|im_end|>"' in modelfile and "<|im_start|>assistant" in modelfile
    assert 'SYSTEM """Triage tickets."""' in modelfile
    command = export.llama_cpp_command("tickets.gguf", port=8081)
    assert command.startswith("llama-server -m tickets.gguf") and "--jinja" in command


def test_rows_q8_0_cannot_block_stay_f16_and_are_listed(tiny_model, tmp_path):
    from transformers import LlamaConfig, LlamaForCausalLM
    _, tokenizer = tiny_model
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=48, intermediate_size=64,
                         num_hidden_layers=1, num_attention_heads=4, num_key_value_heads=2)
    model = LlamaForCausalLM(config).eval()
    written = export.export_gguf(model, tokenizer, tmp_path / "odd.gguf", quant="q8_0")
    # rows of 48 inputs do not fill blocks of 32; ffn_down's rows of 64 do
    assert "blk.0.attn_q.weight" in written.kept_f16 and "token_embd.weight" in written.kept_f16
    assert "blk.0.ffn_down.weight" not in written.kept_f16 and "left f16" in str(written)
    again, _ = export.load_gguf(written.path, tokenizer=False)
    assert (logits(again, tokenizer) - logits(model, tokenizer)).abs().max() < 0.1
