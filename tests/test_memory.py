"""course_utils.memory: the training-memory calculator's counts, checked against real models."""

import dataclasses

import pytest

from course_utils import memory


def test_parameter_counts_match_the_real_model(real_model):
    model, _ = real_model
    shape = memory.shape_of(model)
    assert shape == dataclasses.replace(memory.SHAPES["SmolLM2-135M"], name=shape.name)
    assert shape.n_params == sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize("name, billions", [("Llama-3.1-8B", 8.03), ("Llama-3.1-70B", 70.55),
                                            ("SmolLM2-1.7B", 1.71)])
def test_published_sizes(name, billions):
    assert memory.SHAPES[name].n_params / 1e9 == pytest.approx(billions, abs=0.01)


@pytest.mark.filterwarnings("ignore:.*is_gradient_checkpointing")  # raised inside PEFT
def test_lora_parameter_count_matches_peft(tiny_model):
    import copy

    from peft import LoraConfig, get_peft_model
    model, _ = tiny_model
    peft_model = get_peft_model(copy.deepcopy(model), LoraConfig(r=4, target_modules="all-linear"))
    trainable = sum(p.numel() for p in peft_model.parameters() if p.requires_grad)
    assert memory.shape_of(model).lora_params(4) == trainable


def test_the_methods_rank_as_expected_on_big_models():
    for name in ("SmolLM2-1.7B", "Llama-3.1-8B", "Llama-3.1-70B"):
        full, lora, qlora = (memory.estimate(name, m, batch_size=1, seq_len=1024,
                                             precision="mixed", checkpointing=True).total
                             for m in memory.METHODS)
        assert qlora < lora < full, name


def test_parts_add_up_and_scale_with_batch():
    small = memory.estimate("SmolLM2-135M", "full", batch_size=1, seq_len=256, precision="fp32")
    big = memory.estimate("SmolLM2-135M", "full", batch_size=4, seq_len=256, precision="fp32")
    assert small.total == pytest.approx(sum(v for k, v in small.parts_gb().items()
                                            if k != "total") * memory.GB)
    assert big.activations == pytest.approx(4 * small.activations)
    assert big.weights == small.weights == 4 * small.trainable  # fp32: 4 bytes a parameter
    assert small.optimizer == 2 * small.gradients  # AdamW: two states per gradient


def test_unknown_inputs_are_named():
    with pytest.raises(ValueError, match="method"):
        memory.estimate("SmolLM2-135M", "prefix")
    with pytest.raises(ValueError, match="precision"):
        memory.estimate("SmolLM2-135M", precision="fp8")
    with pytest.raises(KeyError, match="known"):
        memory.shape_of("GPT-5")


def test_table_lists_every_model():
    text = memory.table(batch_size=1, seq_len=512)
    assert all(name in text for name in memory.SHAPES)


def test_saved_activations_match_the_estimate_on_a_tiny_model(tiny_model):
    import copy

    from course_utils import train
    model, tokenizer = tiny_model
    rows = [{"messages": [{"role": "user", "content": "ticket " * 20},
                          {"role": "assistant", "content": '{"category": "billing"}'}]}] * 4
    batch = train.padded_batch(rows, tokenizer)
    student = copy.deepcopy(model).train()
    measured = memory.saved_activation_bytes(student, batch)
    estimate = memory.estimate(model, "full", batch_size=4, seq_len=batch["input_ids"].shape[1],
                               precision="fp32")
    # the tiny model's vocabulary (49k) dwarfs its width (32): logits dominate both
    assert 0.7 < estimate.activations / measured < 1.3, (estimate.activations, measured)
    assert all(p.grad is None for p in student.parameters())
    assert memory.measure_training_peak(lambda: copy.deepcopy(model), batch, steps=1) > 0


@pytest.mark.parametrize("precision, full_bytes", [("fp32", 16), ("bf16", 8), ("mixed", 18)])
def test_bytes_per_parameter_are_the_recipes_the_docs_describe(precision, full_bytes):
    """fp32: 4 + 4 + 8. bf16: 2 + 2 + 4. mixed (autocast): an fp32 weight, the half-precision
    copy autocast computes with, an fp32 gradient and AdamW's two fp32 averages."""
    per = memory.bytes_per_parameter("full", precision)
    assert sum(per.values()) == full_bytes
    estimate = memory.estimate("SmolLM2-135M", "full", precision=precision)
    assert (estimate.weights + estimate.gradients + estimate.optimizer
            == pytest.approx(full_bytes * estimate.trainable))
    # LoRA's frozen linear weights: 4 bytes in fp32, 2 in half precision, no gradient or state
    assert memory.bytes_per_parameter("lora", precision)["weights"] == (4 if precision == "fp32" else 2)


def test_nf4_bytes_are_what_bitsandbytes_stores_with_double_quantization(tmp_path):
    """Quantize a model the way load_model(quantize="nf4") does and count the bytes of one
    linear layer: the packed 4-bit weights, the 8-bit absmax per block of 64 and the fp32
    second-level scales."""
    pytest.importorskip("bitsandbytes")
    import torch
    from transformers import AutoModelForCausalLM, LlamaConfig, LlamaForCausalLM

    from course_utils import models
    config = LlamaConfig(vocab_size=512, hidden_size=256, intermediate_size=512,
                         num_hidden_layers=1, num_attention_heads=4, num_key_value_heads=4)
    LlamaForCausalLM(config).save_pretrained(tmp_path)
    quantized = AutoModelForCausalLM.from_pretrained(
        tmp_path, dtype=torch.float32, **models._quantization("nf4", torch.float32, "cpu"))
    weight = quantized.model.layers[0].self_attn.q_proj.weight
    state = weight.quant_state
    assert state.nested, "load_model's NF4 should use double quantization"
    stored = (weight.numel() * weight.element_size()
              + state.absmax.numel() * state.absmax.element_size()
              + state.state2.absmax.numel() * state.state2.absmax.element_size())
    assert stored / (256 * 256) == pytest.approx(memory.NF4_BYTES, rel=1e-3)


def test_sharding_splits_the_parts_each_strategy_shards():
    one = memory.estimate("Llama-3.1-8B", "full", precision="mixed")
    for n in (2, 4, 8):
        ddp, z1, z2, z3, fsdp = (memory.estimate("Llama-3.1-8B", "full", precision="mixed",
                                                 devices=n, sharding=s) for s in memory.SHARDING)
        assert (ddp.weights, ddp.gradients, ddp.optimizer) == (one.weights, one.gradients, one.optimizer)
        assert z1.optimizer == pytest.approx(one.optimizer / n) and z1.gradients == one.gradients
        assert z2.gradients == pytest.approx(one.gradients / n) and z2.weights == one.weights
        # ZeRO-3 / FSDP: the fp32 weights split N ways; a unit's half copy only while it computes
        assert z3.weights == pytest.approx(one.trainable * 4 / n) and z3.gathered > 0
        assert z3.total == fsdp.total and ddp.activations == z3.activations == one.activations
        assert ddp.total > z1.total > z2.total > z3.total
    # one device: nothing to share, whatever the strategy
    assert memory.estimate("Llama-3.1-8B", "full", devices=1, sharding="zero3").total == pytest.approx(
        memory.estimate("Llama-3.1-8B", "full").total)


def test_sharding_table_and_bad_settings():
    text = memory.sharding_table(precision="mixed", checkpointing=True, batch_size=1, seq_len=2048)
    assert "Llama-3.1-70B" in text and "zero2" in text and "8 dev" in text
    with pytest.raises(ValueError, match="sharding must be one of"):
        memory.estimate("SmolLM2-135M", devices=2, sharding="zero4")
    with pytest.raises(ValueError, match="whole number of at least 1"):
        memory.estimate("SmolLM2-135M", devices=0)
