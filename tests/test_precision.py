"""The right precision per GPU, checked without one: the compute dtype follows the compute
capability (fp16 below 8.0, bf16 from 8.0, never bf16 by emulation), the Trainer gets the
matching autocast flag, and full fine-tunes keep fp32 master weights (issue 14, item 2)."""

import copy

import pytest
import torch

from course_utils import env, train


@pytest.mark.parametrize("capability, expected", [((7, 5), torch.float16),  # T4
                                                  ((8, 0), torch.bfloat16),  # A100
                                                  ((8, 6), torch.bfloat16),  # A10, RTX 30xx
                                                  ((9, 0), torch.bfloat16)])  # H100, H200
def test_the_compute_dtype_follows_the_capability(monkeypatch, capability, expected):
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda *a: capability)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)  # emulation counts
    assert env.get_dtype("cuda") == expected
    assert env.get_dtype("cpu") == env.get_dtype("mps") == torch.float32


@pytest.mark.parametrize("capability, flag", [((7, 5), "fp16"), ((9, 0), "bf16")])
def test_the_trainer_autocasts_in_the_compute_dtype(monkeypatch, tmp_path, capability, flag):
    monkeypatch.setattr(env, "get_device", lambda: "cuda")
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda *a: capability)
    settings = dict(max_steps=2, batch_size=2, learning_rate=1e-4)
    args = train._common_args(settings, tmp_path, has_val=False, eval_every=None, show=False, seed=0)
    assert args[flag] is True and args["bf16" if flag == "fp16" else "fp16"] is False
    assert args["use_cpu"] is False


@pytest.mark.parametrize("half", [torch.float16, torch.bfloat16])
def test_a_full_fine_tune_keeps_fp32_master_weights_and_lora_its_base(tiny_model, half):
    model = copy.deepcopy(tiny_model[0]).to(half)
    full = train._fp32_master(copy.deepcopy(model), lora=None)
    assert {p.dtype for p in full.parameters()} == {torch.float32}
    kept = train._fp32_master(model, lora=train.LoraSettings(r=4, alpha=8))
    assert {p.dtype for p in kept.parameters()} == {half}  # the frozen base stays as loaded
    adapted = train.with_lora(kept, train.LoraSettings(r=4, alpha=8))
    assert {p.dtype for p in adapted.parameters() if p.requires_grad} == {torch.float32}


def test_a_half_precision_model_trains_under_bf16_autocast(tiny_model, monkeypatch):
    """The GPU recipe on a CPU (torch's CPU autocast runs bf16): a bf16-loaded model, a full
    fine-tune with the Trainer's bf16 flag, fp32 weights out, a finite falling loss."""
    model, tokenizer = tiny_model
    monkeypatch.setattr(env, "get_dtype", lambda device=None: torch.bfloat16)
    rows = [{"messages": [{"role": "user", "content": f"ticket {i}"},
                          {"role": "assistant", "content": '{"category": "billing"}'}]}
            for i in range(8)]
    result = train.sft(copy.deepcopy(model).to(torch.bfloat16), tokenizer, rows, lora=None,
                       profile="smoke", max_steps=3, batch_size=4, learning_rate=1e-3, show=False)
    assert {p.dtype for p in result.model.parameters()} == {torch.float32}
    losses = result.losses()[1]
    assert len(losses) == 3 and all(loss == loss for loss in losses) and losses[-1] < losses[0]


def test_to_device_moves_every_tensor_of_a_batch_to_the_models_device(tiny_model):
    import course_utils as cu
    model, tokenizer = tiny_model
    on_meta = copy.deepcopy(model).to("meta")  # a device that is not the CPU, without a GPU
    batch = {"input_ids": torch.ones(2, 3, dtype=torch.long), "extra": [torch.zeros(1)],
             "name": "kept as it is"}
    moved = cu.to_device(batch, on_meta)
    assert moved["input_ids"].device.type == "meta" and moved["extra"][0].device.type == "meta"
    assert moved["name"] == "kept as it is" and batch["input_ids"].device.type == "cpu"
    encoded = cu.to_device(tokenizer(["a ticket"], return_tensors="pt"), "meta")
    assert {t.device.type for t in encoded.values()} == {"meta"}
    rows = [{"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "ok"}]}]
    assert {t.device.type for t in train.padded_batch(rows, tokenizer, device=on_meta).values()} == {"meta"}
    assert {t.device.type for t in train.padded_batch(rows, tokenizer).values()} == {"cpu"}
