"""Training: supervised fine-tuning (full or LoRA) through TRL, measured.

Introduced in notebooks/01_data.ipynb (LoRA runs on datasets of different size and quality);
chapter 02 writes the training loop out by hand before using `sft`, chapter 03 explains LoRA.

Every call to the TRL/PEFT APIs lives here, so a rename in those libraries is fixed in one
module. Rows are rendered by `data.render`, the same function that shows which tokens carry
loss: training sees exactly what the learner was shown (assistant tokens only).
Every run records train and validation loss, training tokens per second and peak memory.
`save_adapter` writes an adapter with what made it (base model, data hash, settings, held-out
score) and `load_adapter` reads it back; `sft(..., output_dir=, save_every=, resume=True)`
continues an interrupted run from its last checkpoint. Chapter 03 uses `with_lora`,
`padded_batch` and `release_memory` to check LoRA and the memory calculator by hand.
"""

from __future__ import annotations

import contextlib
import copy
import math
import os
import shutil
import tempfile
import threading
import time
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path

from . import data, env, trl_internals


@dataclass(frozen=True)
class LoraSettings:
    """A LoRA adapter: rank r, scale alpha / r (alpha / sqrt(r) with rslora, rank-stabilized
    LoRA, Kalajdzievski 2023), dropout, and which layers get one."""

    r: int = 16
    alpha: int = 32
    dropout: float = 0.05
    target_modules: str | tuple[str, ...] = "all-linear"
    rslora: bool = False

    @property
    def scale(self) -> float:
        """What the adapter's B A x is multiplied by."""
        return self.alpha / (self.r ** 0.5 if self.rslora else self.r)

    def record(self) -> dict:
        """The settings as saved with an adapter and in a run's key (rslora only when on, so
        the records of plain LoRA runs are what they were before it existed)."""
        record = asdict(self)
        if not self.rslora:
            del record["rslora"]
        return record


@dataclass
class TrainResult:
    """What a training run produced and measured."""

    model: object  # the trained model (a PeftModel when trained with LoRA)
    history: list[dict] = field(default_factory=list)  # {"step", "train_loss"|"val_loss"}
    seconds: float = 0.0
    train_tokens: int = 0  # non-padding tokens the model was trained on
    peak_memory_mb: float = 0.0  # process RSS on CPU, max allocated on CUDA
    settings: dict = field(default_factory=dict)
    tokenizer: object = None
    steps: int = 0  # optimizer steps done (fewer than max_steps when a callback stopped it)
    best_step: int | None = None  # with early stopping: the evaluation whose model was kept

    @property
    def tokens_per_second(self) -> float:
        return self.train_tokens / self.seconds if self.seconds else 0.0

    def losses(self, kind: str = "train_loss") -> tuple[list[int], list[float]]:
        """(steps, values) of one logged series: 'train_loss' or 'val_loss'."""
        return series(self.history, kind)

    def __str__(self) -> str:
        last = {k: self.losses(k)[1][-1] for k in ("train_loss", "val_loss") if self.losses(k)[1]}
        losses = ", ".join(f"{k.replace('_', ' ')} {v:.3f}" for k, v in last.items())
        stopped = (f" (stopped early, of {self.settings['max_steps']})"
                   if self.steps and self.steps < self.settings.get("max_steps", 0) else "")
        best = ""
        if self.best_step is not None:
            at = dict(zip(*self.losses("val_loss"))).get(self.best_step)
            best = f"; kept the model of step {self.best_step}" + (
                f" (val loss {at:.3f})" if at is not None else "")
        return (f"{self.steps or self.settings.get('max_steps')} steps{stopped} in "
                f"{self.seconds:.0f} s, "
                f"{self.tokens_per_second:.0f} tokens/s, peak memory {self.peak_memory_mb:,.0f} MB"
                + (f"; {losses}" if losses else "") + best)


def series(history: list[dict], kind: str) -> tuple[list[int], list[float]]:
    """(steps, values) of one logged series of a training history ('train_loss', ...)."""
    points = [(h["step"], h[kind]) for h in history if kind in h]
    return [step for step, _ in points], [value for _, value in points]


class PeakMemory:
    """Peak memory of a block: CUDA max allocated, or this process's RSS sampled every 20 ms."""

    def __enter__(self) -> PeakMemory:
        import torch
        self.cuda = torch.cuda.is_available()
        self.peak_mb, self._stop = 0.0, threading.Event()
        if self.cuda:
            torch.cuda.reset_peak_memory_stats()
        else:
            self._thread = threading.Thread(target=self._sample, daemon=True)
            self._thread.start()
        return self

    def _sample(self) -> None:
        while not self._stop.is_set():
            self.peak_mb = max(self.peak_mb, rss_mb())
            self._stop.wait(0.02)

    def __exit__(self, *exc) -> None:
        import torch
        if self.cuda:
            self.peak_mb = torch.cuda.max_memory_allocated() / 2**20
        else:
            self._stop.set()
            self._thread.join()
            self.peak_mb = max(self.peak_mb, rss_mb())


def rss_mb() -> float:
    """Resident memory of this process in MB (Linux /proc; 0 where unavailable)."""
    try:
        with open("/proc/self/statm") as handle:
            import os
            return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    except (OSError, ValueError, IndexError):
        return 0.0


def _dataset(rows: list[dict], tokenizer, max_length: int):
    """A datasets.Dataset of input_ids and labels (-100 outside assistant turns)."""
    from datasets import Dataset
    rendered = [data.render(r, tokenizer, max_length) for r in rows]
    return Dataset.from_dict({"input_ids": [r.input_ids for r in rendered],
                              "labels": [r.labels for r in rendered]})


def _progress_printer(print_every: int):
    """A TrainerCallback that prints one line every `print_every` steps and every validation
    loss: the progress report where no progress bar shows (headless runs, tests)."""
    from transformers import TrainerCallback

    class Printer(TrainerCallback):
        def on_log(self, args, state, control, logs=None, **kwargs):
            logs, step = logs or {}, state.global_step
            for key, name in (("loss", "train loss"), ("eval_loss", "val loss")):
                if key in logs and (key == "eval_loss" or step % print_every == 0):
                    print(f"step {step:4d}/{state.max_steps}  {name} {logs[key]:.4f}", flush=True)
    return Printer()


DEFAULT_PATIENCE = 2  # evaluations (twice an epoch) without a better validation loss


def sft(model, tokenizer, train_rows: list[dict], val_rows: list[dict] | None = None,
        lora: LoraSettings | None = LoraSettings(), profile=None, *, max_steps: int | None = None,
        batch_size: int | None = None, learning_rate: float | None = None,
        max_length: int | None = None, eval_every: int | None = None, seed: int = 0,
        inplace: bool = False, show: bool = True, padding_free: bool = True,
        output_dir: str | Path | None = None, save_every: int | None = None,
        resume: bool = False, callbacks: tuple = (), max_epochs: float | None = None,
        patience: int | None = None, ddp_backend: str | None = None) -> TrainResult:
    """Fine-tune on chat rows (loss on assistant tokens only); LoRA unless lora=None.

    Sizes come from the profile unless given. How long: given only rows, a converged run:
    up to the profile's `max_epochs` passes (3 in the cpu and gpu profiles), and with
    `val_rows`, early stopping after DEFAULT_PATIENCE evaluations without a better validation
    loss, keeping the best model (the smoke profile trains its few `max_steps` instead). Pass
    `max_steps`, or `max_epochs` and `patience`, to choose yourself.
    The input model is left untouched (a copy is trained) unless inplace=True. Learning rate
    defaults: 1e-3 with LoRA, 5e-5 full.
    padding_free=True packs a batch into one row (no padding tokens computed).
    Checkpoints: with `output_dir` and `save_every`, a checkpoint (weights or adapter,
    optimizer, scheduler, random state) is kept every `save_every` steps; `resume=True`
    continues from the last one there, so an interrupted run picks up where it stopped.
    `callbacks`: extra transformers TrainerCallbacks.
    Several processes (torchrun, accelerate launch): each step's batch_size rows are split
    among them, so the steps are those of one process; `ddp_backend` picks torch.distributed's
    backend ('gloo', 'nccl'; default: the trainer's choice for the device).
    Early stopping: `max_epochs` caps the run in passes over the data (instead of
    max_steps); with `patience`, validation loss is measured every `eval_every` steps (twice
    an epoch by default), training stops after `patience` measurements without a new best,
    and the model returned is the one at the best measurement (transformers'
    EarlyStoppingCallback with load_best_model_at_end; its checkpoints go to a temporary
    folder unless output_dir is given).
    """
    if not train_rows:
        raise ValueError("sft needs at least one training row")
    settings = sft_settings(model, train_rows, lora, profile, max_steps=max_steps,
                            batch_size=batch_size, learning_rate=learning_rate,
                            max_length=max_length, seed=seed, max_epochs=max_epochs,
                            patience=patience, eval_every=eval_every,
                            validation=bool(val_rows))
    return _fit(_trainer_class(), model, tokenizer, train_rows, val_rows, lora, settings,
                announce=max_steps is None and max_epochs is None, inplace=inplace, show=show,
                padding_free=padding_free, output_dir=output_dir, save_every=save_every,
                resume=resume, callbacks=callbacks, ddp_backend=ddp_backend, seed=seed)


def _fit(trainer_class, model, tokenizer, train_rows: list[dict], val_rows: list[dict] | None,
         lora: LoraSettings | None, settings: dict, *, announce: bool, inplace: bool, show: bool,
         padding_free: bool = True, output_dir=None, save_every: int | None = None,
         resume: bool = False, callbacks: tuple = (), ddp_backend: str | None = None,
         seed: int = 0) -> TrainResult:
    """What sft and distill share: a TRL SFTTrainer of `trainer_class` on a copy of `model`
    (unless inplace), with the settings resolved by sft_settings, early stopping on
    validation loss when they carry a patience, checkpoints, and the measured result."""
    from transformers.trainer_utils import get_last_checkpoint
    from trl import SFTConfig

    patience = settings["patience"]
    if show and announce and settings["max_epochs"]:
        print(f"training up to {settings['max_epochs']:g} epochs ({settings['max_steps']} steps "
              + (f"of {settings['batch_size']} rows), stopping when the validation loss has not "
                 f"improved for {patience} evaluations" if patience else
                 f"of {settings['batch_size']} rows); no val_rows, so no early stopping: pass "
                 f"validation rows to stop where the model is best"), flush=True)
    if patience is not None and not val_rows:
        raise ValueError(f"patience={patience} stops on validation loss: pass val_rows too")
    if (resume or save_every) and output_dir is None:
        raise ValueError("checkpoints need a folder: pass output_dir= with save_every= or resume=")
    with contextlib.ExitStack() as cleanup:  # a scratch output_dir is removed afterwards
        output_dir = Path(output_dir or cleanup.enter_context(_scratch("course-sft-")))
        output_dir.mkdir(parents=True, exist_ok=True)
        checkpoint = get_last_checkpoint(output_dir) if resume else None
        if resume and checkpoint is None and show:
            print(f"no checkpoint in {output_dir}: starting from step 0")
        model = _fp32_master(_drop_trl_forward_patch(model if inplace else copy.deepcopy(model)),
                             lora)
        if lora is None:  # a full fine-tune trains every weight, even of a model loaded frozen
            model.requires_grad_(True)  # (a merged adapter's model, or a student cut from it)
        config = SFTConfig(
            **_common_args(settings, output_dir, bool(val_rows), settings["eval_every"], show,
                           seed),
            max_length=None, padding_free=padding_free, activation_checkpointing=False,
            **_checkpointing(settings, save_every),
            **({"ddp_backend": ddp_backend} if ddp_backend else {}))
        if patience is not None:
            from transformers import EarlyStoppingCallback
            callbacks = (*callbacks, EarlyStoppingCallback(early_stopping_patience=patience))
        length = settings["max_length"]
        with _library_deprecations_hidden(), _shard_bars_hidden():
            trainer = _new_trainer(
                trainer_class, model=model, args=config,
                train_dataset=_dataset(train_rows, tokenizer, length),
                eval_dataset=_dataset(val_rows, tokenizer, length) if val_rows else None,
                processing_class=tokenizer, peft_config=_lora_config(lora),
                callbacks=_with_printer(callbacks, settings, show))
            return _train_and_measure(trainer, settings, tokenizer, seed, show, checkpoint)


def _checkpointing(settings: dict, save_every: int | None) -> dict:
    """SFTConfig's saving arguments: every `save_every` steps for resuming; with early
    stopping, also at every evaluation (load_best_model_at_end reloads the best of them)."""
    if settings.get("patience") is None:
        return dict(save_strategy="steps" if save_every else "no", save_steps=save_every or 500,
                    save_total_limit=2)
    every = settings["eval_every"]
    if save_every and save_every % every:
        raise ValueError(f"save_every={save_every} must be a multiple of eval_every={every} "
                         f"with early stopping: the best model is kept from an evaluation step")
    return dict(save_strategy="steps", save_steps=save_every or every, save_total_limit=1,
                save_only_model=not save_every, load_best_model_at_end=True,
                metric_for_best_model="eval_loss", greater_is_better=False)


def dpo(model, tokenizer, train_pairs: list[dict], val_pairs: list[dict] | None = None,
        lora: LoraSettings | None = LoraSettings(), profile=None, *, beta: float = 0.1,
        max_steps: int | None = None, batch_size: int | None = None,
        learning_rate: float | None = None, max_length: int | None = None,
        eval_every: int | None = None, seed: int = 0, inplace: bool = False, show: bool = True,
        callbacks: tuple = (), ddp_backend: str | None = None) -> TrainResult:
    """Preference-tune with DPO (TRL's DPOTrainer) on {"prompt", "chosen", "rejected"} rows,
    each a list of chat messages; other keys (ids, notes) are ignored.

    With LoRA the reference model is this same network with the adapter switched off, so no
    second copy is held. A model that already carries an adapter (an SFT result) is merged
    first: the reference is then the SFT model, and DPO trains a fresh adapter on top.
    TRL turns dropout off for DPO (its `disable_dropout=True`), LoRA's included, so the
    log-probabilities the loss compares do not depend on random masks.
    `beta` sets how far the policy may move from the reference. History: train and
    validation loss, reward margin and preference accuracy. Learning rate defaults: 5e-5
    with LoRA, 1e-6 full (TRL's default; a full DPO also holds a frozen reference copy).
    Several processes (torchrun, accelerate launch): as in `sft`, each step's batch_size pairs
    are split among them, so the steps are those of one process; `ddp_backend` likewise.
    """
    from trl import DPOConfig

    if not train_pairs:
        raise ValueError("dpo needs at least one preference pair")
    _check_pairs(train_pairs + list(val_pairs or []))
    settings = dpo_settings(model, train_pairs, lora, profile, beta=beta, max_steps=max_steps,
                            batch_size=batch_size, learning_rate=learning_rate,
                            max_length=max_length, seed=seed)
    _check_prompt_lengths(train_pairs + list(val_pairs or []), tokenizer, settings["max_length"])
    model = _drop_trl_forward_patch(model if inplace else copy.deepcopy(model))
    if hasattr(model, "merge_and_unload"):  # an SFT adapter: fold it in, it becomes the reference
        model = model.merge_and_unload()
    model = _fp32_master(model, lora)
    # DPOConfig's own defaults use renamed names too
    with _library_deprecations_hidden(), _scratch("course-dpo-") as output_dir:
        config = DPOConfig(**_common_args(settings, output_dir, bool(val_pairs), eval_every,
                                          show, seed),
                           beta=beta, max_length=settings["max_length"], save_strategy="no",
                           activation_checkpointing=False,
                           **({"ddp_backend": ddp_backend} if ddp_backend else {}))
        trainer = _new_trainer(_dpo_trainer_class(), model=model, args=config,
                               train_dataset=_pairs_dataset(train_pairs),
                               eval_dataset=_pairs_dataset(val_pairs),
                               processing_class=tokenizer, peft_config=_lora_config(lora),
                               callbacks=_with_printer(callbacks, settings, show))
        return _train_and_measure(trainer, settings, tokenizer, seed, show)


def distill(student, tokenizer, train_rows: list[dict], teacher, val_rows: list[dict] | None = None,
            lora: LoraSettings | None = None, profile=None, *, temperature: float = 1.0,
            hard_weight: float = 0.0, max_steps: int | None = None,
            batch_size: int | None = None, learning_rate: float | None = None,
            max_length: int | None = None, eval_every: int | None = None, seed: int = 0,
            inplace: bool = False, show: bool = True, callbacks: tuple = (),
            max_epochs: float | None = None, patience: int | None = None) -> TrainResult:
    """Logit distillation: train `student` to match `teacher`'s next-token distribution on
    the assistant tokens of chat rows (forward KL, teacher || student, at `temperature`,
    scaled by temperature² as in Hinton et al. 2015), mixed with `hard_weight` of the usual
    cross-entropy on the rows' own tokens. The teacher stays frozen.

    Both models must share the tokenizer (the same vocabulary, token for token). A full
    fine-tune unless `lora` is given; learning rate defaults: 1e-3 with LoRA, 2e-4 full
    (a cut-down student has more to relearn than an SFT run). How long, as `sft`: the
    profile's epochs with early stopping on `val_rows` (whose loss is this same mixed loss),
    or `max_steps`, or `max_epochs` and `patience`. Records the same history, throughput and
    memory as `sft`.
    """
    if not train_rows:
        raise ValueError("distill needs at least one training row")
    student_vocab = student.get_output_embeddings().weight.shape[0]
    teacher_vocab = teacher.get_output_embeddings().weight.shape[0]
    if student_vocab != teacher_vocab:
        raise ValueError(f"the teacher's vocabulary ({teacher_vocab} tokens) differs from the "
                         f"student's ({student_vocab}): logit distillation compares "
                         f"distributions token by token, so pick a teacher from the same model "
                         f"family (SmolLM2 135M/360M/1.7B share one tokenizer), or distil "
                         f"sequences instead (train the student with sft on the teacher's answers)")
    if not 0.0 <= hard_weight <= 1.0 or temperature <= 0:
        raise ValueError(f"hard_weight={hard_weight} must lie in [0, 1] and temperature="
                         f"{temperature} must be above 0")
    settings = sft_settings(student, train_rows, lora, profile, max_steps=max_steps,
                            batch_size=batch_size,
                            learning_rate=learning_rate or (1e-3 if lora else 2e-4),
                            max_length=max_length, seed=seed, max_epochs=max_epochs,
                            patience=patience, eval_every=eval_every, validation=bool(val_rows))
    settings.update(method="distill", temperature=temperature, hard_weight=hard_weight,
                    teacher=getattr(teacher, "course_source", None) or teacher.name_or_path)
    teacher_was_training = teacher.training
    teacher.eval()  # no dropout in the targets (its logits are taken under no_grad)
    try:
        return _fit(_distill_trainer_class(teacher, temperature, hard_weight), student,
                    tokenizer, train_rows, val_rows, lora, settings,
                    announce=max_steps is None and max_epochs is None, inplace=inplace,
                    show=show, callbacks=callbacks, seed=seed)
    finally:
        teacher.train(teacher_was_training)  # the caller's model, left as it came


def distillation_loss(student_logits, teacher_logits, temperature: float = 1.0):
    """Forward KL(teacher || student) per token, averaged, at a temperature (times T²,
    so the gradient keeps its size as T changes): logits are (tokens × vocabulary)."""
    import torch.nn.functional as F
    t = temperature
    teacher_logps = F.log_softmax(teacher_logits.float() / t, dim=-1)
    student_logps = F.log_softmax(student_logits.float() / t, dim=-1)
    per_token = (teacher_logps.exp() * (teacher_logps - student_logps)).sum(-1)
    return per_token.mean() * t * t


def _distill_trainer_class(teacher, temperature: float, hard_weight: float):
    """TRL's SFTTrainer whose loss is the distillation loss at the assistant tokens (logits of
    both models only there), plus `hard_weight` x the usual cross-entropy."""
    import torch
    import torch.nn.functional as F
    from trl import SFTTrainer

    class CourseDistillTrainer(SFTTrainer):
        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            inputs = dict(inputs)
            labels = inputs.pop("labels")
            targets = labels[:, 1:]
            keep = targets != -100
            student_logits = _logits_where(model, inputs, keep)
            if teacher.device != student_logits.device:
                teacher.to(student_logits.device)
            with torch.no_grad():
                teacher_logits = _logits_where(teacher, inputs, keep)
            loss = distillation_loss(student_logits, teacher_logits, temperature)
            if hard_weight:
                hard = F.cross_entropy(student_logits, targets[keep])
                loss = (1 - hard_weight) * loss + hard_weight * hard
            return (loss, {"loss": loss}) if return_outputs else loss

    return CourseDistillTrainer


def dpo_loss(model, tokenizer, pairs: list[dict], beta: float = 0.1,
             implementation: str = "trl") -> dict:
    """The DPO loss of a LoRA model on `pairs` (one batch, no training), with the reference
    being the same model with its adapter off, as in `dpo`: {"loss", "margin", "accuracy"}.

    implementation="trl" asks TRL's DPOTrainer itself; "course" the faster loss `dpo` trains
    with. Chapter 04 checks its by-hand loss against both.
    """
    import torch
    trainer = _dpo_trainer(model, tokenizer, pairs, beta, implementation)
    with _library_deprecations_hidden():
        policy = trainer.model.eval()
        with torch.no_grad():
            loss = trainer.compute_loss(policy, _collated(trainer, pairs))
    logged = trl_internals.logged(trainer, "eval")
    return {"loss": float(loss), "margin": logged["rewards/margins"][-1],
            "accuracy": logged["rewards/accuracies"][-1]}


def _dpo_trainer(model, tokenizer, pairs: list[dict], beta: float, implementation: str):
    """A DPO trainer (TRL's or the course's) on a copy of a LoRA model, with the adapter-off
    model as reference, for computing a loss or a gradient by hand: no training."""
    from trl import DPOConfig, DPOTrainer
    if implementation not in ("trl", "course"):
        raise ValueError(f"implementation={implementation!r}: use 'trl' or 'course'")
    if not hasattr(model, "disable_adapter"):
        raise ValueError("dpo_loss needs a LoRA model (a PeftModel, e.g. train.with_lora(model))")
    _check_pairs(pairs)
    with _library_deprecations_hidden(), _scratch("course-dpo-") as output_dir:
        config = DPOConfig(output_dir=str(output_dir), beta=beta,
                           report_to="none", use_cpu=env.get_device() == "cpu",
                           max_length=None)
        trainer = _new_trainer(DPOTrainer if implementation == "trl" else _dpo_trainer_class(),
                               model=copy.deepcopy(model), args=config,
                               train_dataset=_pairs_dataset(pairs), processing_class=tokenizer)
    if "ref" in trainer.model.peft_config:  # TRL copies a given adapter as its reference
        trainer.model.delete_adapter("ref")  # the course's reference is the adapter switched off
        trainer.model.set_adapter("default")
    return trainer


def _collated(trainer, pairs: list[dict]) -> dict:
    """All the pairs as one DPO batch, on the trainer's device."""
    return trl_internals.prepare_inputs(
        trainer, trainer.data_collator([trainer.train_dataset[i] for i in range(len(pairs))]))


def _check_pairs(pairs: list[dict], where=lambda index: f"pair {index}") -> None:
    """Every pair has prompt, chosen and rejected as non-empty lists of messages; `where(i)`
    names pair i in the error (a file's line, for pairs read from one)."""
    for index, pair in enumerate(pairs):
        if not isinstance(pair, dict):
            raise ValueError(f"{where(index)}: a pair is a JSON object, not {type(pair).__name__}; "
                             f'DPO rows look like {{"prompt": [messages], "chosen": '
                             f'[assistant message], "rejected": [assistant message]}}')
        missing = [k for k in _PAIR_KEYS if not isinstance(pair.get(k), list) or not pair.get(k)]
        if missing:
            raise ValueError(f"{where(index)} ({pair.get('id', 'no id')}): {', '.join(missing)} "
                             f"missing or not a list of messages; DPO rows look like "
                             f'{{"prompt": [messages], "chosen": [assistant message], '
                             f'"rejected": [assistant message]}}')


_PAIR_KEYS = ("prompt", "chosen", "rejected")


def _check_prompt_lengths(pairs: list[dict], tokenizer, max_length: int) -> None:
    """Refuse pairs whose prompt alone fills max_length (TRL would drop them without a word)."""
    lengths = [len(tokenizer.apply_chat_template(p["prompt"], add_generation_prompt=True,
                                                 tokenize=True, return_dict=False))
               for p in pairs]
    long = [f"{index} ({p.get('id', 'no id')}, {n} tokens)"
            for index, (p, n) in enumerate(zip(pairs, lengths)) if n >= max_length]
    if long:
        raise ValueError(f"{len(long)} pair(s) have a prompt of max_length={max_length} tokens or "
                         f"more, leaving no room for the reply: {', '.join(long[:5])}. Pass a "
                         f"larger max_length= or shorten those prompts.")


def _pairs_dataset(pairs: list[dict] | None):
    """A datasets.Dataset of the pairs' prompt/chosen/rejected (None for no pairs)."""
    from datasets import Dataset
    return Dataset.from_list([{k: p[k] for k in _PAIR_KEYS} for p in pairs]) if pairs else None


def sft_settings(model, train_rows: list[dict], lora: LoraSettings | None = LoraSettings(),
                 profile=None, *, max_steps: int | None = None, batch_size: int | None = None,
                 learning_rate: float | None = None, max_length: int | None = None,
                 seed: int = 0, max_epochs: float | None = None, patience: int | None = None,
                 eval_every: int | None = None, validation: bool = False) -> dict:
    """The settings `sft` would train with, every default filled in (from the profile; the
    learning rate 1e-3 with LoRA, 5e-5 full; with max_epochs, the steps that many passes
    over the rows take; with patience, an evaluation twice an epoch): what an adapter
    records, and what the run cache (course_utils.runs) keys a run by.
    With no limit given (max_steps, max_epochs and patience all None), the profile's
    max_epochs, and DEFAULT_PATIENCE when `validation` (val_rows are given)."""
    batch = batch_size or env.get_profile(profile).batch_size
    if max_steps is None and max_epochs is None and patience is None:
        max_epochs = env.get_profile(profile).max_epochs  # None in smoke: its max_steps
        if max_epochs is not None and validation:
            patience = DEFAULT_PATIENCE
    steps_per_epoch = max(1, math.ceil(len(train_rows) / batch))
    if max_epochs is not None:
        if max_epochs <= 0 or max_steps is not None:
            raise ValueError(f"max_epochs={max_epochs!r}, max_steps={max_steps!r}: give one "
                             f"positive limit, epochs or steps")
        max_steps = max(1, math.ceil(max_epochs * steps_per_epoch))
    if patience is not None and (int(patience) != patience or patience < 1):
        raise ValueError(f"patience={patience!r}: the number of evaluations without a new best "
                         f"before stopping, a whole number of at least 1")
    if eval_every is None and patience is not None:
        eval_every = max(1, steps_per_epoch // 2)
    return _settings(model, train_rows, lora, profile, max_steps, batch,
                     learning_rate or (1e-3 if lora else 5e-5), max_length, seed,
                     max_epochs=max_epochs, patience=patience, eval_every=eval_every)


def dpo_settings(model, train_pairs: list[dict], lora: LoraSettings | None = LoraSettings(),
                 profile=None, *, beta: float = 0.1, max_steps: int | None = None,
                 batch_size: int | None = None, learning_rate: float | None = None,
                 max_length: int | None = None, seed: int = 0) -> dict:
    """The settings `dpo` would train with, every default filled in (the run cache keys a
    DPO run by them): learning rate 5e-5 with LoRA, 1e-6 full."""
    return _settings(model, train_pairs, lora, profile, max_steps, batch_size,
                     learning_rate or (5e-5 if lora else 1e-6), max_length, seed,
                     method="dpo", beta=beta)


def kl_from_reference(model, tokenizer, rows: list[dict], max_length: int | None = None) -> float:
    """How far a LoRA model has drifted from its reference (the same network with the adapter
    off: the SFT model, after `dpo`): the mean over the reply tokens of `rows` (chat rows) of
    KL(policy || reference) between the two next-token distributions, in nats per token."""
    if not hasattr(model, "disable_adapter"):
        raise ValueError("kl_from_reference needs a model with a LoRA adapter (a dpo result): "
                         "its reference is the same model with the adapter switched off")
    model.eval()

    def policy_and_reference(batch, keep):
        inputs = dict(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"])
        policy = model(**inputs)
        with model.disable_adapter():
            ref = model(**inputs)
        return (policy.logits[:, :-1][keep].float().log_softmax(-1),
                {"reference": ref.logits[:, :-1][keep].float().log_softmax(-1)})
    return _mean_kl(rows, tokenizer, max_length, 8, model, policy_and_reference)["reference"]


def drift(teacher, students: dict, tokenizer, rows: list[dict], max_length: int | None = None,
          batch_size: int = 8) -> dict:
    """How far each of `students` (name -> model, sharing the teacher's tokenizer) is from
    `teacher` on the answer tokens of `rows` (chat rows): the mean over those tokens of
    KL(teacher || student) between the two next-token distributions, in nats per token, the
    loss `distill` trains down (at T = 1). Chapter 05 measures it for cuts of the teacher
    before training any of them, to start from the one that breaks least. The teacher's
    logits are computed once per batch and shared by all the students."""
    for model in (teacher, *students.values()):
        model.eval()

    def teacher_and_students(batch, keep):
        return (_logits_where(teacher, batch, keep).log_softmax(-1),
                {name: _logits_where(student, batch, keep).log_softmax(-1)
                 for name, student in students.items()})
    return _mean_kl(rows, tokenizer, max_length, batch_size, teacher, teacher_and_students)


def _mean_kl(rows: list[dict], tokenizer, max_length: int | None, batch_size: int, device,
             distributions) -> dict:
    """The mean over the answer tokens of `rows` of KL(p || q), in nats per token, for each q
    that `distributions(batch, keep)` returns beside p (log-probabilities at the positions
    `keep` marks: p, {name: q}); what kl_from_reference and drift measure."""
    import torch
    totals, tokens = {}, 0
    for start in range(0, len(rows), batch_size):
        batch = padded_batch(rows[start:start + batch_size], tokenizer, max_length, device=device)
        keep = batch["labels"][:, 1:] != -100  # position t predicts token t + 1
        with torch.no_grad():
            p, others = distributions(batch, keep)
            probabilities = p.exp()
            for name, q in others.items():
                totals[name] = totals.get(name, 0.0) + float((probabilities * (p - q)).sum())
        tokens += int(keep.sum())
    if not tokens:
        raise ValueError("no answer tokens in the rows: give chat rows that end with an assistant turn")
    return {name: total / tokens for name, total in totals.items()}


def _settings(model, rows: list[dict], lora: LoraSettings | None, profile, max_steps,
              batch_size, learning_rate: float, max_length, seed: int, **extra) -> dict:
    """A run's settings, sizes from the profile unless given: what save_adapter records."""
    profile = env.get_profile(profile)
    return dict(max_steps=max_steps or profile.max_steps,
                batch_size=batch_size or profile.batch_size, learning_rate=learning_rate,
                max_length=max_length or profile.max_length, seed=seed,
                lora=lora.record() if lora else None, train_rows=len(rows),
                data_sha256=data.fingerprint(rows),
                base_model=getattr(model, "course_source", None) or model.name_or_path, **extra)


def _with_printer(callbacks: tuple, settings: dict, show: bool) -> list:
    """The caller's callbacks, plus the progress printer for headless runs."""
    printer = [_progress_printer(max(1, settings["max_steps"] // 4))] if show and env.is_headless() else []
    return [*printer, *callbacks]


def _train_and_measure(trainer, settings: dict, tokenizer, seed: int, show: bool,
                       checkpoint: str | None = None) -> TrainResult:
    """Run trainer.train() (from a checkpoint if given), timed and with peak memory, and
    gather the result: history, throughput in real tokens, the trained model."""
    env.seed_everything(seed)
    tokens_before = 0
    if checkpoint:
        from transformers import TrainerState
        state = TrainerState.load_from_json(str(Path(checkpoint) / "trainer_state.json"))
        tokens_before = int(state.num_input_tokens_seen)
        if show:
            print(f"resuming from {checkpoint} (step {state.global_step} of "
                  f"{settings['max_steps']})")
    with PeakMemory() as memory:
        start = time.perf_counter()
        trainer.train(resume_from_checkpoint=checkpoint)
        seconds = time.perf_counter() - start
    # The trainer's log also holds the steps before a resume (it is saved in each checkpoint).
    history = _history_from_log(trainer.state.log_history)
    _drop_trl_forward_patch(trainer.model)
    result = TrainResult(trainer.model.eval(), history, seconds,
                         int(trainer.state.num_input_tokens_seen) - tokens_before,
                         memory.peak_mb, settings, tokenizer, trainer.state.global_step,
                         trainer.state.best_global_step if settings.get("patience") else None)
    if show:
        print(result)
    return result


def _drop_trl_forward_patch(model):
    """Undo TRL's patch of the model's forward (its trainers add a fused LM head by setting
    `forward` on the model object, as a closure over that object). Left in place, a deep
    copy of the trained model would run the *original's* weights: a copy's own adapter, or
    one added later, would silently do nothing. Returns the model, on its class's forward."""
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    for module in (model, base):
        trl_internals.drop_fused_forward(module)
    return model


@contextlib.contextmanager
def _scratch(prefix: str):
    """A temporary folder for a trainer's output_dir (where it could write checkpoints),
    removed afterwards: training leaves nothing behind in the temporary directory."""
    folder = tempfile.mkdtemp(prefix=prefix)
    try:
        yield Path(folder)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@contextlib.contextmanager
def _shard_bars_hidden():
    """Hide transformers' "Writing model shards" bar, drawn at every checkpoint or save (one
    shard, milliseconds: noise beside the training bar, which stays)."""
    from transformers.utils import logging as hf_logging
    shown = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if shown:
            hf_logging.enable_progress_bar()


@contextlib.contextmanager
def _library_deprecations_hidden():
    """Hide a transformers 5 deprecation that TRL and PEFT raise internally: the learner did
    nothing wrong and cannot act on it."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*gradient_checkpointing.*is deprecated")
        yield


def _fp32_master(model, lora):
    """A full fine-tune keeps fp32 master weights: the Trainer's bf16/fp16 flag (from
    _common_args) then runs the forward pass under autocast, with a gradient scaler for fp16,
    while AdamW updates fp32 weights. A model loaded in half precision (load_model does so on
    a GPU) is upcast; half-precision weights would make fp16 training fail ("Attempting to
    unscale FP16 gradients") and bf16 updates lose the small ones. With LoRA the frozen base
    may stay in half precision: PEFT keeps the trainable adapters in fp32."""
    import torch
    if lora is None and any(p.dtype in (torch.float16, torch.bfloat16) for p in model.parameters()):
        model = model.float()
    return model


def _common_args(settings: dict, output_dir, has_val: bool, eval_every: int | None,
                 show: bool, seed: int) -> dict:
    """TrainingArguments shared by every course trainer: steps, batch, rate, precision for the
    device, logging every step, evaluation, no reporting, real-token counting."""
    import torch
    device = env.get_device()
    half = env.get_dtype(device)
    return dict(
        **_split_over_processes(settings["batch_size"]),
        output_dir=str(output_dir), max_steps=settings["max_steps"],
        per_device_train_batch_size=settings["batch_size"], per_device_eval_batch_size=16,
        learning_rate=settings["learning_rate"], lr_scheduler_type="linear", warmup_steps=0,
        seed=seed, data_seed=seed, logging_steps=1,
        eval_strategy="steps" if has_val else "no",
        eval_steps=eval_every or settings["max_steps"], report_to="none",
        use_cpu=device == "cpu", bf16=half == torch.bfloat16, fp16=half == torch.float16,
        disable_tqdm=env.is_headless() or not show, dataloader_num_workers=0,
        prediction_loss_only=True,
        include_num_input_tokens_seen="non_padding")  # throughput counts real tokens only


def processes() -> int:
    """How many processes train together: WORLD_SIZE as torchrun and `accelerate launch` set
    it (1 in a plain Python process or a notebook)."""
    value = os.environ.get("WORLD_SIZE", "1")
    if not value.isdigit() or int(value) < 1:
        raise ValueError(f"WORLD_SIZE={value!r}: the number of processes, set by torchrun or "
                         f"accelerate launch; unset it to train in one process")
    return int(value)


def check_batch_splits(batch_size: int, n: int) -> None:
    """Refuse a batch that n processes cannot share evenly (each takes batch_size / n rows)."""
    if n > 1 and batch_size % n:
        raise ValueError(f"batch_size {batch_size} does not split over {n} processes: every "
                         f"process takes an equal share of each step's rows. Use a batch size "
                         f"that {n} divides (e.g. {batch_size + n - batch_size % n}), or launch "
                         f"a process count that divides {batch_size}")


def _split_over_processes(batch_size: int) -> dict:
    """Keep a recipe's batch the same on any number of processes: with N of them each step's
    `batch_size` rows are split N ways (accelerate's split_batches) rather than N times as
    many rows being read, so one process and N give the same steps. The split is of the
    rows' indices, before collation: each process collates its own share (a DPO batch of
    [chosen..., rejected...] stays whole pairs)."""
    n = processes()
    check_batch_splits(batch_size, n)
    return dict(accelerator_config={"split_batches": True}) if n > 1 else {}


def _new_trainer(trainer_class, **kwargs):
    """A TRL trainer, built without the datasets progress bars of its in-memory preparation
    (steps of milliseconds), and reporting through our progress printer rather than raw log
    dicts."""
    import datasets
    from transformers import PrinterCallback
    datasets.disable_progress_bars()
    try:
        trainer = trainer_class(**kwargs)
    finally:
        datasets.enable_progress_bars()
    trainer.remove_callback(PrinterCallback)
    return trainer


# Trainer log keys -> the names in TrainResult.history (DPO adds its reward statistics).
_LOGGED = (("loss", "train_loss"), ("eval_loss", "val_loss"),
           ("rewards/margins", "margin"), ("rewards/accuracies", "preference_accuracy"),
           ("rewards/chosen", "reward_chosen"), ("rewards/rejected", "reward_rejected"),
           ("eval_rewards/margins", "val_margin"),
           ("eval_rewards/accuracies", "val_preference_accuracy"))


def _history_from_log(log_history: list[dict]) -> list[dict]:
    """Our history records from the trainer's log: one per logged value we keep."""
    history = []
    for logs in log_history:
        for key, name in _LOGGED:
            if key in logs:
                history.append({"step": logs["step"], name: float(logs[key])})
    return history


def _logits_where(model, inputs: dict, keep):
    """LM-head logits only where `keep` (batch × length-1) is True: position t predicts token
    t+1. The transformer runs on every token; the 49k-word projection only on the positions
    some row keeps (transformers' `logits_to_keep`). The call goes through the model's own
    forward, wrappers included, so DistributedDataParallel still syncs the gradients."""
    positions = keep.any(0).nonzero().squeeze(-1)  # ascending, so the order is (row, position)
    logits = model(**{k: v for k, v in inputs.items() if k in _BACKBONE_INPUTS},
                   use_cache=False, logits_to_keep=positions).logits
    return logits[keep[:, positions]].float()


_BACKBONE_INPUTS = ("input_ids", "attention_mask", "position_ids")


def _assistant_token_loss(model, inputs: dict, num_items_in_batch=None):
    """Mean next-token cross-entropy over the tokens that carry loss, projecting through the
    LM head only at those positions (on a ticket, ~25 of ~125 tokens): the same loss as the
    model's own, without computing and discarding logits over the 49k-word vocabulary for
    every prompt token."""
    import torch.nn.functional as F
    inputs = dict(inputs)
    labels = inputs.pop("labels")
    targets = labels[:, 1:]
    keep = targets != -100
    total = F.cross_entropy(_logits_where(model, inputs, keep), targets[keep], reduction="sum")
    count = num_items_in_batch if num_items_in_batch is not None else keep.sum()
    return total / max(int(count), 1)


def completion_logps(model, inputs: dict):
    """log p(completion | prompt) per sequence: the sum of the log-probabilities of the
    completion tokens (`inputs["completion_mask"]` = 1), from logits at those positions only.
    The quantity DPO compares between the policy and the reference.

    Rows are sequences; or, for a packed batch (see `_packed`), `inputs["sequence_ids"]` says
    which sequence each token belongs to."""
    import torch
    targets = inputs["input_ids"][:, 1:]
    keep = inputs["completion_mask"][:, 1:].bool()
    logps = _logits_where(model, inputs, keep).log_softmax(-1)
    token_logps = logps.gather(-1, targets[keep].unsqueeze(-1)).squeeze(-1)
    if "sequence_ids" in inputs:
        owner = inputs["sequence_ids"][:, 1:]
    else:
        owner = torch.arange(targets.shape[0], device=targets.device).unsqueeze(1).expand_as(targets)
    count = int(owner.max()) + 1
    return torch.zeros(count, device=targets.device).index_add(0, owner[keep], token_logps)


def _packed(batch: dict) -> dict:
    """A right-padded batch as one row without padding: the sequences end to end, positions
    restarting at 0 for each (so attention stays within a sequence), with `sequence_ids`."""
    import torch
    lengths = batch["attention_mask"].sum(1).tolist()
    def cat(key):
        return torch.cat([row[:n] for row, n in zip(batch[key], lengths)]).unsqueeze(0)
    device = batch["input_ids"].device
    return {"input_ids": cat("input_ids"), "completion_mask": cat("completion_mask"),
            "position_ids": torch.cat([torch.arange(n, device=device) for n in lengths]).unsqueeze(0),
            "sequence_ids": torch.cat([torch.full((n,), i, device=device)
                                       for i, n in enumerate(lengths)]).unsqueeze(0)}


def _reference_off(model):
    """The reference model during DPO: this network with its LoRA adapter switched off."""
    return model.disable_adapter() if hasattr(model, "disable_adapter") else contextlib.nullcontext()


def _trainer_class():
    """TRL's SFTTrainer with the loss above (TRL's fused LM head is tuned for GPUs: on a
    CPU it scores every position and runs ~1.5x slower than this)."""
    from trl import SFTTrainer

    class CourseSFTTrainer(SFTTrainer):
        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            loss = _assistant_token_loss(model, inputs, num_items_in_batch)
            if num_items_in_batch is not None and self.args.average_tokens_across_devices:
                # On N processes num_items_in_batch counts the loss tokens of all of them, and
                # DDP averages the N gradients: times N, each step is the mean over every
                # token of the global batch, as on one process (the Trainer's own rule).
                loss = loss * self.accelerator.num_processes
            return (loss, {"loss": loss}) if return_outputs else loss

    return CourseSFTTrainer


def _dpo_trainer_class():
    """TRL's DPOTrainer, made faster and lighter for the standard (sigmoid) DPO loss with a
    LoRA policy whose reference is the adapter switched off.

    Faster: log-probabilities come from the completion positions only, for the policy and the
    reference, on sequences packed without padding (TRL's fused LM head scores every position
    of both: bench/bench_dpo.py measures 1.5x the throughput on a CPU).
    Lighter: a training step does not hold the activations of chosen and rejected replies at
    once. The DPO loss couples each pair only through two numbers, log p(chosen) and
    log p(rejected), so the step first computes those without gradients, takes the loss's
    derivative with respect to each, then runs forward and backward on the chosen half and on
    the rejected half separately, weighting each by its derivative: the same gradient as one
    backward through the whole batch (dropout masks are replayed from the same random state),
    with the activation memory of half the sequences, at the cost of one extra forward.
    Tests check the loss and the logged reward statistics against TRL's, and the gradient
    against a one-pass backward.
    """
    import torch
    import torch.nn.functional as F
    from trl import DPOTrainer

    class CourseDPOTrainer(DPOTrainer):
        def _ours(self) -> bool:
            return (trl_internals.is_sigmoid_dpo_on_adapter_off_reference(self)
                    and hasattr(self.accelerator.unwrap_model(self.model), "disable_adapter"))

        def _reference(self, model, parts: list[dict]):
            with torch.no_grad(), _reference_off(self.accelerator.unwrap_model(self.model)):
                return torch.cat([completion_logps(model, part) for part in parts])

        def _loss_and_log(self, policy, reference, inputs, mode: str):
            """The DPO loss from per-sequence log-probs [chosen..., rejected...], with TRL's
            logged statistics."""
            chosen, rejected = (policy - reference).chunk(2)
            loss = -F.logsigmoid(self.beta * (chosen - rejected)).mean()
            rewards_chosen, rewards_rejected = self.beta * chosen.detach(), self.beta * rejected.detach()
            logps_chosen, logps_rejected = policy.detach().chunk(2)
            metrics = trl_internals.logged(self, mode)
            for key, value in (("rewards/chosen", rewards_chosen.mean()),
                               ("rewards/rejected", rewards_rejected.mean()),
                               ("rewards/accuracies", (rewards_chosen > rewards_rejected).float().mean()),
                               ("rewards/margins", (rewards_chosen - rewards_rejected).mean()),
                               ("logps/chosen", logps_chosen.mean()),
                               ("logps/rejected", logps_rejected.mean())):
                metrics[key].append(value.item())
            total = trl_internals.add_train_tokens(
                self, int(inputs["attention_mask"].sum()) if mode == "train" else 0)
            metrics["num_tokens"] = [total]
            return loss

        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            if not self._ours():
                return super().compute_loss(model, inputs, return_outputs, num_items_in_batch)
            mode = "train" if self.model.training else "eval"
            loss = self._loss_and_log(completion_logps(model, inputs),
                                      self._reference(model, [inputs]), inputs, mode)
            return (loss, {"loss": loss}) if return_outputs else loss

        def training_step(self, model, inputs, num_items_in_batch=None):
            if not self._ours():
                return super().training_step(model, inputs, num_items_in_batch)
            model.train()
            inputs = trl_internals.prepare_inputs(self, inputs)
            halves = _chosen_and_rejected(inputs)
            replay = _RandomState()
            with self.compute_loss_context_manager():
                reference = self._reference(model, halves)
                replay.save()
                with torch.no_grad():
                    policy = torch.cat([completion_logps(model, half) for half in halves])
                policy.requires_grad_(True)
                loss = self._loss_and_log(policy, reference, inputs, "train")
                (weights,) = torch.autograd.grad(loss, policy)  # d loss / d log p, per sequence
            replay.restore()  # the same dropout masks as the pass above
            steps = trl_internals.accumulation_steps(self)
            for half, weight in zip(halves, weights.chunk(2)):
                with self.compute_loss_context_manager():
                    surrogate = (completion_logps(model, half) * weight).sum() / steps
                self.accelerator.backward(surrogate)
            return loss.detach() / steps

    return CourseDPOTrainer


def _chosen_and_rejected(inputs: dict) -> list[dict]:
    """TRL's DPO batch ([chosen rows..., rejected rows...], right-padded) as two packed
    batches, chosen and rejected, with no padding tokens."""
    pairs = inputs["input_ids"].shape[0] // 2
    return [_packed({k: inputs[k][rows] for k in ("input_ids", "attention_mask", "completion_mask")})
            for rows in (slice(0, pairs), slice(pairs, None))]


class _RandomState:
    """Save torch's random state (CPU and CUDA) and put it back: replays dropout masks."""

    def save(self) -> None:
        import torch
        self.cpu = torch.random.get_rng_state()
        self.cuda = torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None

    def restore(self) -> None:
        import torch
        torch.random.set_rng_state(self.cpu)
        if self.cuda is not None:
            torch.cuda.set_rng_state_all(self.cuda)


def with_lora(model, lora: LoraSettings = LoraSettings()):
    """A copy of `model` with fresh LoRA adapters (B = 0, so it starts as the model itself);
    only the adapters are trainable. The PEFT call chapter 03 checks its hand-written layer
    against."""
    from peft import get_peft_model
    with _library_deprecations_hidden():
        return get_peft_model(copy.deepcopy(model), _lora_config(lora))


def trainable_parameters(model) -> tuple[int, int]:
    """(trainable, total) parameter counts."""
    params = list(model.parameters())
    return sum(p.numel() for p in params if p.requires_grad), sum(p.numel() for p in params)


def padded_batch(rows: list[dict], tokenizer, max_length: int | None = None,
                 device=None) -> dict:
    """Rows rendered (loss on assistant tokens) and padded to the longest: padding gets
    attention mask 0 and label -100 (chapter 02's `batch_of`). `device`: a model or a device
    to put the tensors on (env.to_device); by default they stay on the CPU."""
    import torch
    rendered = [data.render(r, tokenizer, max_length) for r in rows]
    width = max(len(r.input_ids) for r in rendered)

    def pad(values: list[int], fill: int) -> list[int]:
        return values + [fill] * (width - len(values))
    batch = {"input_ids": torch.tensor([pad(r.input_ids, tokenizer.pad_token_id) for r in rendered]),
             "attention_mask": torch.tensor([pad([1] * len(r.input_ids), 0) for r in rendered]),
             "labels": torch.tensor([pad(r.labels, -100) for r in rendered])}
    return batch if device is None else env.to_device(batch, device)


def release_memory() -> None:
    """Free what Python, the C allocator and PyTorch's CUDA cache hold on to, so the next
    reading starts low (glibc keeps freed blocks for reuse unless asked to return them; so
    does PyTorch's caching allocator on a GPU)."""
    import ctypes
    import gc

    import torch
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass  # not glibc (macOS, Windows): readings may start higher


def _lora_config(lora: LoraSettings | None):
    """PEFT's LoraConfig for our settings (None for a full fine-tune)."""
    if lora is None:
        return None
    from peft import LoraConfig
    targets = lora.target_modules if isinstance(lora.target_modules, str) else list(lora.target_modules)
    return LoraConfig(r=lora.r, lora_alpha=lora.alpha, lora_dropout=lora.dropout,
                      target_modules=targets, task_type="CAUSAL_LM", use_rslora=lora.rslora)


# ---------------------------------------------------------------------------- saving

ADAPTER_METADATA = "course_adapter.json"


def heldout_scores(heldout: dict) -> dict:
    """Held-out scores as saved in adapter metadata: an evals.Metric as value, hits, n and its
    interval; a plain number as it is (also the registry's prompt versions)."""
    return {name: ({"value": m.value, "hits": m.hits, "n": m.n, "low": m.low, "high": m.high}
                   if hasattr(m, "hits") else float(m)) for name, m in heldout.items()}


def save_adapter(result: TrainResult, directory: str | Path, heldout: dict | None = None) -> Path:
    """Save the trained adapter (or the whole model, for a full fine-tune) with what made it:
    base model, training-data hash, settings, loss history, throughput and held-out scores.

    `heldout` maps a metric name to a number or an evals.Metric, e.g.
    {"exact match": scores.metrics["exact match"]}. The folder appears complete or not at all
    (written next to it, then renamed in; an older folder there is deleted only after), so a
    crash never leaves half an adapter behind, nor none.
    """
    import json
    from datetime import datetime, timezone

    from . import __version__
    directory = Path(directory)
    directory.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=directory.name + ".", dir=directory.parent))
    with _shard_bars_hidden():
        result.model.save_pretrained(staging)
    if not result.settings.get("lora") and result.tokenizer is not None:
        result.tokenizer.save_pretrained(staging)  # a full model folder loads on its own
    scores = heldout_scores(heldout or {})
    metadata = {"base_model": result.settings.get("base_model"),
                "kind": "lora" if result.settings.get("lora") else "full",
                "data_sha256": result.settings.get("data_sha256"),
                "settings": result.settings, "heldout": scores,
                "train": {"seconds": round(result.seconds, 1), "tokens": result.train_tokens,
                          "steps": result.steps, "best_step": result.best_step,
                          "tokens_per_second": round(result.tokens_per_second, 1),
                          "peak_memory_mb": round(result.peak_memory_mb), "history": result.history},
                "saved": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                "versions": {"course_utils": __version__, **env.versions()}}
    (staging / ADAPTER_METADATA).write_text(json.dumps(metadata, indent=1) + "\n")
    data.replace_folder(staging, directory)  # the old folder goes only once this one is in place
    return directory


def read_metadata(directory: str | Path) -> dict:
    """The metadata `save_adapter` wrote into an adapter folder."""
    import json
    path = Path(directory) / ADAPTER_METADATA
    if not path.exists():
        raise FileNotFoundError(f"{path} not found: {directory} was not saved by "
                                f"course_utils.train.save_adapter (or is not an adapter folder)")
    return json.loads(path.read_text())


def load_adapter(directory: str | Path, model=None, trainable: bool = False):
    """(model, metadata): the saved adapter on its base model. The base is loaded from the
    name in the metadata unless a loaded `model` is given (PEFT adds the adapter's layers to
    that model in place: pass a copy to keep it plain); a full fine-tune loads whole."""
    from . import models
    metadata = read_metadata(directory)
    if metadata["kind"] == "full":
        return models.load_model(str(directory), show=False)[0], metadata
    from peft import PeftModel
    base = model if model is not None else models.load_model(metadata["base_model"], show=False)[0]
    with _library_deprecations_hidden():
        adapted = PeftModel.from_pretrained(base, str(directory), is_trainable=trainable)
    return adapted, metadata
