"""Every private TRL or transformers name the course touches, in one place.

The course's fast SFT and DPO paths (course_utils.train) subclass TRL's trainers and reach
into a few of their internals. Those names are not TRL's public API: a release may rename
them without notice. Kept here, a new TRL breaks one small module, and
tests/test_trl_internals.py says which name went missing, instead of the fast path silently
falling back to TRL's own (slower) one or a notebook failing somewhere in chapter 04.

Checked against trl==1.16.0 and transformers==5.23.0 (requirements.txt).
"""

from __future__ import annotations

# TRL's trainers replace the model's `forward` with a closure of this name (a fused LM head).
FUSED_FORWARD = "_fused_forward"


def logged(trainer, mode: str) -> dict:
    """The trainer's running metrics of `mode` ("train" or "eval"): name -> list of values
    (TRL's `_metrics`), which its `log` averages and clears."""
    return trainer._metrics[mode]


def prepare_inputs(trainer, inputs: dict) -> dict:
    """A collated batch on the trainer's device, as its own steps prepare it
    (transformers' `Trainer._prepare_inputs`)."""
    return trainer._prepare_inputs(inputs)


def add_train_tokens(trainer, count: int) -> int:
    """Add `count` training tokens to the DPO trainer's running total (`_total_train_tokens`,
    which it logs as num_tokens); returns the new total."""
    trainer._total_train_tokens += count
    return trainer._total_train_tokens


def accumulation_steps(trainer) -> int:
    """The gradient-accumulation steps of the current optimizer step (set by `train()`)."""
    return getattr(trainer, "current_gradient_accumulation_steps", 1)


def is_sigmoid_dpo_on_adapter_off_reference(trainer) -> bool:
    """True when a DPOTrainer trains the standard (sigmoid) DPO loss against no separate
    reference model (the reference is the policy with its adapter switched off): the case
    the course's faster DPO step implements. TRL's `ref_model` and `loss_types`."""
    return trainer.ref_model is None and list(trainer.loss_types) == ["sigmoid"]


def drop_fused_forward(module) -> bool:
    """Delete TRL's patched `forward` from one module object, if it is there; True if it was."""
    patched = vars(module).get("forward")
    code = getattr(patched, "__code__", None)  # functools.wraps hides the name, not the code
    if code is not None and code.co_name == FUSED_FORWARD:
        del module.forward
        return True
    return False


def gguf_progress_hidden():
    """A context in which transformers' GGUF loader draws no "Converting and de-quantizing"
    bar (it calls `tqdm` from its private module modeling_gguf_pytorch_utils, with no switch):
    a bar for a file that loads in seconds is noise in a notebook."""
    import contextlib
    import functools

    from transformers import modeling_gguf_pytorch_utils as loader

    @contextlib.contextmanager
    def hidden():
        shown = loader.tqdm
        loader.tqdm = functools.partial(shown, disable=True)
        try:
            yield
        finally:
            loader.tqdm = shown
    return hidden()
