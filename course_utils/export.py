"""GGUF export: a fine-tune as one file for llama.cpp and Ollama.

Introduced in chapter 07 (serving fine-tuned models).

llama.cpp, and Ollama on top of it, read GGUF: one file holding the weights (in float16 or a
quantized type), the architecture's settings, the tokenizer and the chat template. The
converter people use, llama.cpp's `convert_hf_to_gguf.py`, is a script in llama.cpp's
repository, not on PyPI. This module writes the same layout for the Llama architecture the
course's models use, with the maintained `gguf` package (llama.cpp's own Python library):
`GGUFWriter` for the file, its tensor-name map for HF's names, `gguf.quants` for Q8_0. What is
written here by hand is the small part that is the lesson: which settings and tokenizer fields
a GGUF carries, and the one non-obvious step, the reordering of the query and key rows (HF
rotates the two halves of each head; llama.cpp rotates interleaved pairs).

`export_gguf(model, tokenizer, path, quant="f16"|"q8_0")` merges a LoRA adapter in first, so the
file is the fine-tune; `load_gguf(path)` reads one back with transformers' GGUF loader, for
the round trip the chapter checks; `ollama_modelfile` and `llama_cpp_command` say how to serve it.
"""

from __future__ import annotations

import copy
import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

QUANTS = ("f16", "q8_0")  # what export_gguf writes; "f32" too, for exact round trips


@dataclass
class GGUFExport:
    """What export_gguf wrote."""

    path: Path
    quant: str
    tensors: int
    bytes: int
    kept_f16: list[str]  # weights Q8_0 could not hold (a row not a multiple of 32): left f16

    def __str__(self) -> str:
        kept = f"; {len(self.kept_f16)} left f16" if self.kept_f16 else ""
        return (f"{self.path.name}: {self.quant}, {self.tensors} tensors, "
                f"{self.bytes / 1e6:.1f} MB{kept}")


def export_gguf(model, tokenizer, path: str | Path, quant: str = "f16",
                name: str | None = None) -> GGUFExport:
    """Write `model` (a Llama-architecture transformers model, or a PeftModel, whose active
    adapter is merged in first) with `tokenizer` and its chat template to the GGUF file `path`.
    quant: "f16" (half the size of float32, answers as the model's up to rounding), "q8_0"
    (8-bit blocks of 32 with one scale each: about a quarter of float32), or "f32". Norm
    weights stay float32, as llama.cpp keeps them. The file appears whole or not at all."""
    import gguf
    import numpy as np
    import torch

    if quant not in (*QUANTS, "f32"):
        raise ValueError(f"quant={quant!r}: use one of {', '.join(QUANTS)} (or 'f32')")
    if hasattr(model, "peft_config"):  # the fine-tune is base + adapter: fold it in
        model = copy.deepcopy(model).merge_and_unload()
    config = model.config
    if getattr(config, "model_type", None) != "llama":
        raise ValueError(f"export_gguf writes the Llama architecture; this model is "
                         f"{getattr(config, 'model_type', type(model).__name__)!r}. For others "
                         f"use llama.cpp's convert_hf_to_gguf.py on a saved model folder")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    names = gguf.get_tensor_name_map(gguf.MODEL_ARCH.LLAMA, config.num_hidden_layers)
    heads, kv_heads = config.num_attention_heads, config.num_key_value_heads
    head_dim = getattr(config, "head_dim", None) or config.hidden_size // heads
    handle, staging = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(handle)
    writer = gguf.GGUFWriter(staging, "llama")
    try:
        writer.add_name(name or _model_id(model))
        writer.add_context_length(config.max_position_embeddings)
        writer.add_embedding_length(config.hidden_size)
        writer.add_block_count(config.num_hidden_layers)
        writer.add_feed_forward_length(config.intermediate_size)
        writer.add_head_count(heads)
        writer.add_head_count_kv(kv_heads)
        writer.add_rope_freq_base(_rope_theta(config))
        writer.add_layer_norm_rms_eps(config.rms_norm_eps)
        writer.add_vocab_size(config.vocab_size)
        writer.add_rope_dimension_count(head_dim)
        writer.add_file_type({"f32": gguf.LlamaFileType.ALL_F32,
                              "f16": gguf.LlamaFileType.MOSTLY_F16,
                              "q8_0": gguf.LlamaFileType.MOSTLY_Q8_0}[quant])
        _add_tokenizer(writer, tokenizer, config.vocab_size)
        writer.add_quantization_version(gguf.GGML_QUANT_VERSION)
        kept_f16, count = [], 0
        state = model.state_dict()
        tied = getattr(config, "tie_word_embeddings", False)
        for hf_name, tensor in state.items():
            if hf_name == "lm_head.weight" and tied:
                continue  # llama.cpp reads the embeddings as the output layer when it is absent
            gguf_name = names.get_name(hf_name, try_suffixes=(".weight", ".bias"))
            if gguf_name is None:
                raise ValueError(f"no GGUF name for {hf_name}: is this a plain Llama model?")
            data = tensor.detach().to(torch.float32).cpu().numpy()
            if hf_name.endswith("q_proj.weight"):
                data = _interleave_rotary_rows(data, heads)
            elif hf_name.endswith("k_proj.weight"):
                data = _interleave_rotary_rows(data, kv_heads)
            if data.ndim == 1 or quant == "f32":
                writer.add_tensor(gguf_name, data.astype(np.float32))
            elif quant == "q8_0" and data.shape[-1] % gguf.GGML_QUANT_SIZES[
                    gguf.GGMLQuantizationType.Q8_0][0] == 0:
                writer.add_tensor(gguf_name, gguf.quants.quantize(
                    data, gguf.GGMLQuantizationType.Q8_0), raw_dtype=gguf.GGMLQuantizationType.Q8_0)
            else:
                if quant == "q8_0":
                    kept_f16.append(gguf_name)
                writer.add_tensor(gguf_name, data.astype(np.float16))
            count += 1
        writer.write_header_to_file()
        writer.write_kv_data_to_file()
        writer.write_tensors_to_file()
        writer.close()
        os.replace(staging, path)
    except BaseException:
        writer.close()
        Path(staging).unlink(missing_ok=True)
        raise
    return GGUFExport(path, quant, count, path.stat().st_size, kept_f16)


def _interleave_rotary_rows(weights, n_head: int):
    """Reorder a query or key projection's rows from HF's rotary layout (each head's first
    half, then its second half) to llama.cpp's (the two halves interleaved in pairs). The
    same permutation as llama.cpp's converter; transformers' GGUF loader undoes it."""
    rows = weights.shape[0]
    return (weights.reshape(n_head, 2, rows // n_head // 2, *weights.shape[1:])
            .swapaxes(1, 2).reshape(weights.shape))


def _add_tokenizer(writer, tokenizer, vocab_size: int) -> None:
    """A byte-level BPE tokenizer ("gpt2" in GGUF's terms, as SmolLM2's is): every token by id,
    its type (control for special tokens), the merges, the special ids and the chat template."""
    import gguf
    backend = getattr(tokenizer, "backend_tokenizer", None)
    model = json.loads(backend.to_str())["model"] if backend is not None else {}
    if model.get("type") != "BPE":
        raise ValueError("export_gguf writes byte-level BPE tokenizers (SmolLM2's, GPT-2's); "
                         f"this one is {model.get('type') or type(tokenizer).__name__}")
    tokens = tokenizer.convert_ids_to_tokens(list(range(len(tokenizer))))
    tokens += [f"[PAD{i}]" for i in range(len(tokens), vocab_size)]  # rows with no token
    special = set(tokenizer.all_special_ids)
    added = set(getattr(tokenizer, "added_tokens_decoder", {}) or {})
    types = [gguf.TokenType.CONTROL if i in special else
             gguf.TokenType.USER_DEFINED if i in added else
             gguf.TokenType.UNUSED if i >= len(tokenizer) else gguf.TokenType.NORMAL
             for i in range(len(tokens))]
    merges = [m if isinstance(m, str) else " ".join(m) for m in model.get("merges", [])]
    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre(_pre_tokenizer(tokenizer))
    writer.add_token_list(tokens)
    writer.add_token_types(types)
    writer.add_token_merges(merges)
    for add, token_id in ((writer.add_bos_token_id, tokenizer.bos_token_id),
                          (writer.add_eos_token_id, tokenizer.eos_token_id),
                          (writer.add_unk_token_id, tokenizer.unk_token_id),
                          (writer.add_pad_token_id, tokenizer.pad_token_id)):
        if token_id is not None:
            add(token_id)
    writer.add_add_bos_token(False)  # the chat template writes every special token itself
    if tokenizer.chat_template:
        writer.add_chat_template(tokenizer.chat_template)


def _pre_tokenizer(tokenizer) -> str:
    """llama.cpp's name for how text is split before BPE: "smollm" for the SmolLM2 family
    (the name its own GGUF files carry), "default" otherwise."""
    source = str(getattr(tokenizer, "name_or_path", "")).lower()
    return "smollm" if "smollm" in source or len(tokenizer) == 49152 else "default"


def _rope_theta(config) -> float:
    theta = getattr(config, "rope_theta", None)
    if theta is None:  # transformers 5 keeps it in rope_parameters
        theta = (getattr(config, "rope_parameters", None) or {}).get("rope_theta", 10000.0)
    return float(theta)


def _model_id(model) -> str:
    return str(getattr(model, "course_source", None) or getattr(model, "name_or_path", "")
               or "fine-tune")


def load_gguf(path: str | Path, tokenizer: bool = True):
    """(model, tokenizer) read back from a GGUF file by transformers (de-quantized to
    float32), to check an export's answers against the model it came from. tokenizer=False
    skips rebuilding the tokenizer (seconds, for 49,152 tokens) and returns None for it."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from .train import _library_deprecations_hidden, _shard_bars_hidden
    from .trl_internals import gguf_progress_hidden
    path = Path(path)
    with _library_deprecations_hidden(), _shard_bars_hidden(), gguf_progress_hidden():
        model = AutoModelForCausalLM.from_pretrained(path.parent, gguf_file=path.name,
                                                     dtype=torch.float32)
        loaded = AutoTokenizer.from_pretrained(path.parent, gguf_file=path.name) if tokenizer else None
    if loaded is not None and loaded.pad_token is None:
        loaded.pad_token = loaded.eos_token
    return model.eval(), loaded


def ollama_modelfile(gguf_path: str | Path, system: str | None = None) -> str:
    """An Ollama Modelfile for an exported GGUF: the file, the ChatML template SmolLM2 is
    trained on (Ollama's own template language), its stop token, and greedy decoding.
    `ollama create tickets -f Modelfile`, then `ollama run tickets`."""
    lines = [f"FROM ./{Path(gguf_path).name}", "",
             'TEMPLATE """{{- range .Messages }}<|im_start|>{{ .Role }}',
             "{{ .Content }}<|im_end|>", '{{ end }}<|im_start|>assistant', '"""', "",
             'PARAMETER stop "<|im_end|>"', "PARAMETER temperature 0"]
    if system:
        lines += ["", f'SYSTEM """{system}"""']
    return "\n".join(lines) + "\n"


def llama_cpp_command(gguf_path: str | Path, port: int = 8080) -> str:
    """llama.cpp's OpenAI-compatible server for an exported GGUF, reading the chat template
    from the file (--jinja): the client code of chapter 07 calls it unchanged."""
    return f"llama-server -m {gguf_path} --jinja --port {port} --temp 0"
