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
