"""TRL's private names live in course_utils/trl_internals.py only, they still exist in the
pinned TRL, and the course's fast DPO step is the one that runs (no silent fallback to
TRL's own)."""

import re
from pathlib import Path

import pytest

from course_utils import train, trl_internals

PRIVATE = re.compile(r"\._(metrics|prepare_inputs|total_train_tokens)\b|\bloss_types\b|"
                     r"\bref_model\b|current_gradient_accumulation_steps|\b_fused_forward")


def test_no_private_trl_name_outside_the_one_module():
    package = Path(train.__file__).parent
    found = [f"{path.name}:{number}: {line.strip()}"
             for path in sorted(package.glob("*.py")) if path.name != "trl_internals.py"
             for number, line in enumerate(path.read_text().splitlines(), 1)
             if PRIVATE.search(line) and not line.lstrip().startswith("#")]
    assert not found, "private TRL names outside course_utils/trl_internals.py:\n" + "\n".join(found)


def pairs(n: int = 2) -> list[dict]:
    return [{"prompt": [{"role": "user", "content": f"question {i}"}],
             "chosen": [{"role": "assistant", "content": "Hi! Happy to help."}],
             "rejected": [{"role": "assistant", "content": "no"}]} for i in range(n)]


def test_the_internals_exist_in_the_pinned_trl_and_the_fast_dpo_step_runs(tiny_model, monkeypatch):
    model, tokenizer = tiny_model
    policy = train.with_lora(model, train.LoraSettings(r=4, alpha=8))
    trainer = train._dpo_trainer(policy, tokenizer, pairs(), 0.1, "course")
    assert trl_internals.is_sigmoid_dpo_on_adapter_off_reference(trainer)
    assert isinstance(trl_internals.logged(trainer, "train"), dict)
    assert trl_internals.add_train_tokens(trainer, 0) >= 0
    assert trl_internals.accumulation_steps(trainer) >= 1
    batch = train._collated(trainer, pairs())  # prepare_inputs
    assert batch["input_ids"].shape[0] == 4  # chosen and rejected rows
    from trl import DPOTrainer

    def fell_back(*args, **kwargs):
        raise AssertionError("the course's DPO path fell back to TRL's compute_loss")
    monkeypatch.setattr(DPOTrainer, "compute_loss", fell_back)
    monkeypatch.setattr(DPOTrainer, "training_step", fell_back)
    result = train.dpo(model, tokenizer, pairs(4), lora=train.LoraSettings(r=4, alpha=8),
                       profile="smoke", max_steps=2, batch_size=2, show=False)
    assert result.steps == 2


def test_the_fused_forward_patch_is_found_by_its_name():
    class Module:
        pass

    def _fused_forward(*args):  # the name TRL gives its patched forward
        return None
    module = Module()
    module.forward = _fused_forward
    assert trl_internals.drop_fused_forward(module) and "forward" not in vars(module)
    module.forward = lambda *args: None
    assert not trl_internals.drop_fused_forward(module) and "forward" in vars(module)
