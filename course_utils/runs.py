"""Train once, reuse everywhere: the course's run cache.

For chapters 00-07, which share fine-tunes and answers; `make runs` (`course runs`) fills the
cache ahead of them with every recipe in COURSE_RUNS, chapter 00's ladder of cheaper rungs,
chapter 04's prompts and DPO sweep, and chapter 05's distilled student (`dpo` and `distill`
cache a train.dpo or train.distill run as `sft` does a train.sft run).

Several chapters need the same fine-tune (chapter 02 shows the full ticket fine-tune and 06
evaluates it again; 06 evaluates the ticket LoRA and chapter 07 serves it; 03's sweeps choose
its settings). Training it in each would cost minutes every time, and two copies could
quietly differ. So a *run* is named, and keyed by everything that decides its
result:

- the base model: its name and a fingerprint of its weights (the hub copy and the offline
  de-quantized copy differ, so they are different runs);
- the data: fingerprints of the training and validation rows and of each held-out split;
- the settings, every default filled in (`train.sft_settings`), and the profile;
- the library versions (torch, transformers, peft, trl, ...).

`sft(name, ...)` returns the run from the cache when an entry with the same key exists, and
otherwise trains it (printing how long that should take), generates its answers to the
held-out rows, and stores both. Any change to the key trains again, into a new entry.

An entry is written into a staging folder and renamed into place only when complete, with a
manifest of its files' SHA-256 written last; loading checks the manifest, so a half-written
or damaged entry is never used: it is reported and trained again. `generate(name, ...)` does
the same for the answers of a prompt (a rung of the ladder), keyed by model and prompts.
Entries live under
``$COURSE_CACHE/runs/<profile>/<run name>/<key digest>/`` (`models.cache_dir()`); deleting
that folder is always safe.
"""

from __future__ import annotations

import copy
import hashlib
import json
import shutil
import tempfile
import time
from dataclasses import asdict, dataclass, is_dataclass
from pathlib import Path

from . import data, env, evals, models, train

KEY_VERSION = 2  # bump when the layout of an entry changes: every old entry then retrains
MANIFEST = "manifest.json"
ASSUMED_TOKENS_PER_SECOND = {"cpu": 200.0, "cuda": 4000.0, "mps": 1000.0}
# ^ used to say how long a run will take before this machine has measured one itself:
#   train.sft on 2 CPU cores (docs/benchmarks.md, `make bench`); the GPU figures are guesses.


@dataclass
class Run:
    """A fine-tune and its held-out answers, trained now or loaded from the cache."""

    name: str
    digest: str  # the first 16 hex digits of the key's SHA-256: the entry's folder name
    directory: Path  # the cache entry
    model: object
    predictions: dict[str, list[str]]  # held-out split -> the model's answers, in row order
    metadata: dict  # what train.save_adapter recorded: settings, history, seconds, tokens/s
    cached: bool  # True when loaded from the cache, False when trained just now

    @property
    def history(self) -> list[dict]:
        return self.metadata["train"]["history"]

    @property
    def train_seconds(self) -> float:
        return self.metadata["train"]["seconds"]

    def losses(self, kind: str = "train_loss") -> tuple[list[int], list[float]]:
        """(steps, values) of one logged series: 'train_loss' or 'val_loss'."""
        return train.series(self.history, kind)

    def export(self, directory: str | Path, heldout: dict | None = None) -> Path:
        """A copy of the run's saved model folder (what train.save_adapter wrote) with its
        held-out scores filled in ({"exact match": Metric}), ready for serve.Registry.register.
        Written beside `directory` and renamed into place, like save_adapter."""
        def write(staging: Path) -> None:
            shutil.copytree(self.directory / "model", staging, dirs_exist_ok=True)
            metadata = train.read_metadata(staging)
            metadata["heldout"] = train.heldout_scores(heldout or {})
            (staging / train.ADAPTER_METADATA).write_text(json.dumps(metadata, indent=1) + "\n")
        return _staged(Path(directory), write)

    def __str__(self) -> str:
        how = "loaded from the cache" if self.cached else "trained now"
        train_info = self.metadata["train"]
        splits = ", ".join(f"{k} ({len(v)})" for k, v in self.predictions.items())
        return (f"run {self.name} [{self.digest}], {how}: trained in "
                f"{train_info['seconds']:.0f} s at {train_info['tokens_per_second']:.0f} "
                f"tokens/s; answers for {splits or 'no split'}")


# ---------------------------------------------------------------------------- the key

def weights_fingerprint(model) -> str:
    """SHA-256 over the first values of every parameter: cheap (milliseconds), and different
    for two copies of a model whose weights differ anywhere it matters (hub vs de-quantized
    GGUF, or a model already fine-tuned)."""
    import torch
    digest = hashlib.sha256()
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            head = parameter.detach().reshape(-1)[:1024].to("cpu", torch.float32)
            digest.update(name.encode())
            digest.update(head.numpy().tobytes())
    return digest.hexdigest()


def _plain(value):
    """Settings as JSON-ready values (dataclasses as dicts, tuples as lists)."""
    if is_dataclass(value) and not isinstance(value, type):
        return _plain(asdict(value))
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    raise TypeError(f"run setting {value!r} ({type(value).__name__}) cannot be part of a run's "
                    f"key: pass numbers, strings, lists, dicts or dataclasses")


# What a run takes from its profile besides the settings it resolves (steps, batch size, length:
# those are in the settings): the cache folder, the base model's name, and the generation batch
# (padding can change a greedy answer). n_eval is not here: a run is given its held-out rows.
_PROFILE_FIELDS = ("name", "model", "gen_batch_size")


def run_key(name: str, model, kind: str, settings: dict, splits: dict[str, list[dict]],
            profile) -> dict:
    """Everything that decides a run's result, as a JSON-ready dict."""
    profile = env.get_profile(profile)
    return {"key_version": KEY_VERSION, "name": name, "kind": kind,
            "profile": {k: getattr(profile, k) for k in _PROFILE_FIELDS},
            "base_model": getattr(model, "course_source", None) or model.name_or_path,
            "base_weights": weights_fingerprint(model),
            "data": {split: data.fingerprint(rows) for split, rows in splits.items()},
            "settings": _plain(settings), "versions": env.versions()}


def digest(key: dict) -> str:
    """The key's SHA-256 (canonical JSON), first 16 hex digits."""
    return hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]


def runs_dir(profile=None) -> Path:
    """Where a profile's runs are cached."""
    return models.cache_dir() / "runs" / env.get_profile(profile).name


def entry_dir(key: dict) -> Path:
    """The cache folder of the run with this key (put back first if a crash left it aside
    mid-replace: data.restore_folder)."""
    folder = runs_dir(key["profile"]["name"]) / key["name"].replace("/", "--") / digest(key)
    data.restore_folder(folder)
    return folder


# ---------------------------------------------------------------------------- the cache

def _file_hashes(folder: Path) -> dict[str, str]:
    """Relative path -> SHA-256 of every file under `folder` except the manifest."""
    hashes = {}
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        relative = path.relative_to(folder).as_posix()
        if relative != MANIFEST:
            with open(path, "rb") as handle:
                hashes[relative] = hashlib.file_digest(handle, "sha256").hexdigest()
    return hashes


def check_entry(folder: Path, key: dict) -> str | None:
    """None when `folder` holds a complete, undamaged entry for `key`; else what is wrong."""
    manifest = folder / MANIFEST
    if not manifest.exists():
        return f"{folder} has no {MANIFEST}: it was never finished"
    try:
        recorded = json.loads(manifest.read_text())
    except json.JSONDecodeError as err:
        return f"{manifest}:{err.lineno}:{err.colno}: not valid JSON ({err.msg})"
    if recorded.get("key") != key:
        return f"{manifest} was written for another key"
    found = _file_hashes(folder)
    for relative, expected in recorded.get("files", {}).items():
        if relative not in found:
            return f"{folder / relative} is missing"
        if found[relative] != expected:
            return f"{folder / relative} has changed since it was written (SHA-256 differs)"
    return None


def _store(key: dict, result: train.TrainResult, predictions: dict[str, list[str]]) -> Path:
    """Write a trained run's entry: its model and its held-out answers."""
    def write(staging: Path) -> None:
        train.save_adapter(result, staging / "model")
        (staging / "predictions.json").write_text(json.dumps(predictions, indent=1) + "\n")
    return _write_entry(key, write)


def _write_entry(key: dict, write) -> Path:
    """Write an entry: staging folder, `write(folder)` puts the files there, manifest last,
    then one rename into place."""
    def write_with_manifest(staging: Path) -> None:
        write(staging)
        manifest = {"key": key, "files": _file_hashes(staging),
                    "written": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
        data.write_json_atomic(staging / MANIFEST, manifest)
    return _staged(entry_dir(key), write_with_manifest)  # a damaged entry is replaced


def _staged(final: Path, write) -> Path:
    """`write(folder)` fills a hidden staging folder beside `final`, which then replaces
    `final` (data.replace_folder: the old one is deleted only once the new one is in place)."""
    final.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{final.name}.", dir=final.parent))
    try:
        write(staging)
        data.replace_folder(staging, final)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return final


def _load(folder: Path, name: str, model, show: bool) -> Run:
    """The run stored in a checked entry, on a copy of `model` (the caller's stays plain)."""
    metadata = train.read_metadata(folder / "model")
    base = copy.deepcopy(model) if metadata["kind"] == "lora" else None
    loaded, metadata = train.load_adapter(folder / "model", model=base)
    predictions = json.loads((folder / "predictions.json").read_text())
    loaded.eval()
    run = Run(name, folder.name, folder, loaded, predictions, metadata, cached=True)
    if show:
        print(run)
    return run


def measured_tokens_per_second(profile=None) -> float | None:
    """The training throughput of the newest run cached for this profile on this machine
    (entries of answers alone, which train nothing, are passed over)."""
    trained = [m for m in runs_dir(profile).glob(f"*/*/{MANIFEST}")
               if (m.parent / "model" / train.ADAPTER_METADATA).exists()]
    for manifest in sorted(trained, key=lambda m: m.stat().st_mtime, reverse=True):
        try:
            return float(train.read_metadata(manifest.parent / "model")["train"]["tokens_per_second"])
        except (OSError, KeyError, ValueError, json.JSONDecodeError):
            continue
    return None


def estimate_seconds(tokenizer, train_rows: list[dict], settings: dict,
                     profile=None) -> tuple[float, str]:
    """(seconds, how it was estimated) for training at most settings['max_steps'] steps."""
    sample = train_rows[:200]
    per_row = sum(data.token_lengths(sample, tokenizer)) / max(len(sample), 1)
    tokens = settings["max_steps"] * settings["batch_size"] * min(per_row, settings["max_length"])
    measured = measured_tokens_per_second(profile)
    if measured:
        return tokens / measured, f"at {measured:.0f} tokens/s, as this machine's last run trained"
    device = env.get_device()
    assumed = ASSUMED_TOKENS_PER_SECOND.get(device, 200.0)
    return tokens / assumed, f"at an assumed {assumed:.0f} tokens/s on {device}"


_NOT_CACHEABLE = ("inplace", "output_dir", "resume", "save_every", "callbacks")


def _refuse_uncacheable(method: str, kwargs: dict, what: str = "model") -> None:
    """A cached run trains a copy, start to end: refuse the train.<method> arguments that
    would make it anything else (_NOT_CACHEABLE), naming them."""
    refused = sorted(set(_NOT_CACHEABLE) & set(kwargs))
    if refused:
        raise ValueError(f"runs.{method} does not take {', '.join(refused)}: a cached run trains "
                         f"a copy of the {what}, start to end; call train.{method} for that")


_RESOLVED = ("max_steps", "batch_size", "learning_rate", "max_length", "seed", "max_epochs",
             "patience", "eval_every")


def sft_key(name: str, model, train_rows: list[dict], val_rows: list[dict] | None,
            heldout: dict[str, list[dict]], lora: train.LoraSettings | None, profile,
            max_new_tokens: int | None = None, **sft_kwargs) -> dict:
    """The key of a `runs.sft` run: its settings resolved as train.sft would resolve them."""
    _refuse_uncacheable("sft", sft_kwargs)
    profile = env.get_profile(profile)
    resolved = train.sft_settings(model, train_rows, lora, profile,
                                  **{k: sft_kwargs[k] for k in _RESOLVED if k in sft_kwargs},
                                  validation=bool(val_rows))
    settings = {**resolved, **{k: v for k, v in sft_kwargs.items() if k not in resolved},
                "max_new_tokens": max_new_tokens or profile.max_new_tokens}
    return run_key(name, model, "sft", settings,
                   {"train": train_rows, "val": val_rows or [], **heldout}, profile)


def sft(name: str, model, tokenizer, train_rows: list[dict], val_rows: list[dict] | None = None,
        heldout: dict[str, list[dict]] | None = None, *,
        lora: train.LoraSettings | None = train.LoraSettings(), profile=None,
        max_new_tokens: int | None = None, show: bool = True, **sft_kwargs) -> Run:
    """A `train.sft` run by name, trained once per key and reloaded after that, with the
    model's answers to each held-out split (`heldout`: split name -> rows), generated greedily
    with the profile's budget. `sft_kwargs` go to train.sft (max_steps, learning_rate, ...)."""
    profile, heldout = env.get_profile(profile), dict(heldout or {})
    key = sft_key(name, model, train_rows, val_rows, heldout, lora, profile, max_new_tokens,
                  **sft_kwargs)
    return _cached(name, key, model, tokenizer, train_rows, heldout, profile, show, lambda: train.sft(
        model, tokenizer, train_rows, val_rows, lora=lora, profile=profile, show=show, **sft_kwargs))


def _cached(name: str, key: dict, model, tokenizer, train_rows: list[dict],
            heldout: dict[str, list[dict]], profile, show: bool, train_now, cost: str = "") -> Run:
    """What sft and distill share: the run stored under `key` (loaded onto a copy of `model`),
    or else `train_now()` (a train.TrainResult), its answers to each held-out split, stored.
    `cost`: what the printed estimate leaves out, said before "less if it stops early"."""
    folder = entry_dir(key)
    problem = check_entry(folder, key) if folder.exists() else None
    if folder.exists() and problem is None:
        return _load(folder, name, model, show)
    if show:
        seconds, how = estimate_seconds(tokenizer, train_rows, key["settings"], profile)
        why = f"the entry is unusable ({problem})" if problem else "not in the cache"
        print(f"run {name} [{digest(key)}]: {why}; training it now, at most "
              f"{key['settings']['max_steps']} steps, about {seconds / 60:.1f} min {how} "
              f"({cost}less if it stops early), then {sum(map(len, heldout.values()))} "
              f"held-out answers", flush=True)
    result = train_now()
    predictions = {split: evals.generate(result.model, tokenizer, rows,
                                         max_new_tokens=key["settings"]["max_new_tokens"],
                                         batch_size=profile.gen_batch_size, show=show)
                   for split, rows in heldout.items()}
    folder = _store(key, result, predictions)
    metadata = train.read_metadata(folder / "model")
    return Run(name, folder.name, folder, result.model, predictions, metadata, cached=False)


def distill_key(name: str, student, teacher, train_rows: list[dict], val_rows: list[dict] | None,
                heldout: dict[str, list[dict]], profile, max_new_tokens: int | None = None,
                **distill_kwargs) -> dict:
    """The key of a `runs.distill` run: sft_key's, with train.distill's learning-rate default,
    its loss (temperature, hard_weight) and the teacher's weights."""
    _refuse_uncacheable("distill", distill_kwargs, "student")
    kwargs = dict(distill_kwargs)
    lora = kwargs.pop("lora", None)
    kwargs["learning_rate"] = kwargs.get("learning_rate") or (1e-3 if lora else 2e-4)
    key = sft_key(name, student, train_rows, val_rows, heldout, lora, profile, max_new_tokens,
                  **kwargs)
    key["kind"] = "distill"
    key["settings"].update(temperature=kwargs.get("temperature", 1.0),
                           hard_weight=kwargs.get("hard_weight", 0.0),
                           teacher_weights=weights_fingerprint(teacher))
    return key


def distill(name: str, student, tokenizer, train_rows: list[dict], teacher,
            val_rows: list[dict] | None = None, heldout: dict[str, list[dict]] | None = None, *,
            profile=None, max_new_tokens: int | None = None, show: bool = True,
            **distill_kwargs) -> Run:
    """A `train.distill` run by name, as `sft` is for train.sft: trained once per key (the
    student's and the teacher's weights, the rows, the settings) and reloaded after that,
    with the student's answers to each held-out split."""
    profile, heldout = env.get_profile(profile), dict(heldout or {})
    key = distill_key(name, student, teacher, train_rows, val_rows, heldout, profile,
                      max_new_tokens, **distill_kwargs)
    return _cached(name, key, student, tokenizer, train_rows, heldout, profile, show,
                   lambda: train.distill(student, tokenizer, train_rows, teacher, val_rows,
                                         profile=profile, show=show, **distill_kwargs),
                   cost="plus the teacher's forward passes; ")


# ---------------------------------------------------------------------------- cached answers

def generate(name: str, model, tokenizer, conversations: list[list[dict]], *,
             max_new_tokens: int, batch_size: int, json_schema: dict | None = None,
             profile=None, show: bool = True) -> list[str]:
    """evals.generate_from_messages, computed once per key and reloaded after that: the
    answers of a prompting rung (chapter 00's ladder, which 06 scores again). The key holds
    the model's weights fingerprint, the conversations' fingerprint, the generation settings
    and the library versions, so a changed prompt or model generates again."""
    profile = env.get_profile(profile)
    settings = {"max_new_tokens": max_new_tokens, "batch_size": batch_size,
                "json_schema": json_schema}
    key = run_key(name, model, "answers", settings, {"conversations": conversations}, profile)
    key["profile"]["gen_batch_size"] = batch_size  # the batch that decides padding is this one
    return _cached_json(key, "answers.json", f"{len(conversations)} answers of {name}", show,
                        lambda: evals.generate_from_messages(
                            model, tokenizer, conversations, max_new_tokens=max_new_tokens,
                            batch_size=batch_size, show=show, json_schema=json_schema))


def _cached_json(key: dict, filename: str, what: str, show: bool, compute):
    """The JSON value stored in the entry for `key` (as `filename`), or compute() stored
    there now (also when the entry is damaged: it is replaced). `what` names it in messages."""
    folder = entry_dir(key)
    problem = check_entry(folder, key) if folder.exists() else None
    if folder.exists() and problem is None:
        if show:
            print(f"{what} [{digest(key)}] loaded from the cache")
        return json.loads((folder / filename).read_text())
    if problem and show:
        print(f"{what} [{digest(key)}]: the entry is unusable ({problem}); computing it again")
    value = compute()
    _write_entry(key, lambda staging: (staging / filename).write_text(
        json.dumps(value, indent=1) + "\n"))
    return value


@dataclass
class Ladder:
    """Chapter 00's ticket rungs, each answered on validation and test: what 06 compares the
    fine-tunes with. `best` is chosen on validation (exact match), then scored on test."""

    answers: dict[str, dict[str, list[str]]]  # rung -> split -> answers, in row order
    rows: dict[str, list[dict]]  # split -> the rows answered
    best_k: int  # the number of retrieved examples chosen on validation
    best: str  # the rung with the most exact matches on validation (a tie: the cheaper, first)

    def scores(self, split: str) -> dict:
        return {rung: evals.score_json(answers[split], self.rows[split])
                for rung, answers in self.answers.items()}


RETRIEVED_K = (1, 3, 5)  # how many retrieved examples chapter 00 tries on validation
LADDER = "tickets/ladder"  # the ladder's name in `course runs` (it sits beside COURSE_RUNS)


def ticket_ladder(model, tokenizer, profile=None, show: bool = True) -> Ladder:
    """Every cheaper rung for the tickets, on n_eval validation and test rows (data.take):
    "nearest-ticket" (the nearest training ticket's labels, no LLM), "zero-shot" (with the
    labelling rules), "few-shot" (three fixed examples), "retrieved" (k retrieved examples,
    k chosen on validation from RETRIEVED_K) and "constrained" (the retrieved prompt with
    decoding constrained to prompts.TICKET_SCHEMA). Chapter 00 builds
    each rung in front of the learner with the same calls; cached, so 06 reloads them."""
    from . import prompts
    profile = env.get_profile(profile)
    train_rows = data.load_split("tickets", "train")
    rows = {s: data.take(data.load_split("tickets", s), profile.n_eval) for s in ("val", "test")}
    gen = dict(max_new_tokens=profile.max_new_tokens, batch_size=profile.gen_batch_size,
               profile=profile, show=show)

    def answer(rung: str, split: str, chats: list[list[dict]], **extra) -> list[str]:
        return generate(f"tickets/{rung}/{split}", model, tokenizer, chats, **gen, **extra)

    # How many retrieved examples: chosen on validation (a tie goes to fewer, a shorter prompt).
    val = rows["val"]
    by_k = {k: answer(f"retrieved-k{k}", "val", prompts.retrieved_examples_prompts(val, train_rows, k))
            for k in RETRIEVED_K}
    best_k = max(RETRIEVED_K, key=lambda k: (sum(evals.score_json(by_k[k], val).exact), -k))
    answers: dict[str, dict[str, list[str]]] = {rung: {} for rung in (
        "nearest-ticket", "zero-shot", "few-shot", "retrieved", "constrained")}
    for split, split_rows in rows.items():
        retrieved = prompts.retrieved_examples_prompts(split_rows, train_rows, best_k)
        answers["nearest-ticket"][split] = prompts.nearest_ticket_answers(split_rows, train_rows)
        answers["zero-shot"][split] = answer("zero-shot", split, prompts.zero_shot_prompts(split_rows))
        answers["few-shot"][split] = answer("few-shot", split,
                                            prompts.few_shot_prompts(split_rows, train_rows))
        answers["retrieved"][split] = (by_k[best_k] if split == "val" else
                                       answer("retrieved", split, retrieved))
        answers["constrained"][split] = answer("constrained", split, retrieved,
                                               json_schema=prompts.TICKET_SCHEMA)
    on_val = {rung: sum(evals.score_json(a["val"], rows["val"]).exact)
              for rung, a in answers.items()}
    best = max(on_val, key=on_val.get)
    return Ladder(answers, rows, best_k, best)


# ---------------------------------------------------------------------------- the course's runs

@dataclass(frozen=True)
class Recipe:
    """One of the course's own runs: the dataset it trains on and how. `make runs` computes
    every recipe in COURSE_RUNS once per profile; the chapters then load them."""

    dataset: str  # a dataset with train/val/test splits (data.load_split)
    lora: train.LoraSettings | None  # None: a full fine-tune
    settings: dict  # train.sft keyword arguments
    heldout: tuple[str, ...] = ("val", "test")  # splits the run answers (n_eval rows, data.take)
    used_by: str = ""
    train_subset: int | None = None  # train on data.subset(train, n) instead of all of it
    label_noise: float = 0.0  # then give this share of them a wrong category and priority

    def train_rows(self, rows: list[dict]) -> list[dict]:
        """The rows this recipe trains on, from its dataset's train split."""
        if self.train_subset:
            rows = data.subset(rows, self.train_subset)
        if self.label_noise:
            from .prompts import TICKET_SCHEMA
            fields = TICKET_SCHEMA["properties"]
            rows = data.corrupt_labels(rows, self.label_noise, seed=0, choices={
                name: fields[name]["enum"] for name in ("category", "priority")})
        return rows

    def settings_for(self, profile) -> dict:
        """The settings in this profile (settings_for_profile)."""
        return settings_for_profile(self.settings, profile)


def settings_for_profile(settings: dict, profile) -> dict:
    """A course run's settings in this profile: the smoke profile only checks that the code
    runs, so it trains its few steps instead of epochs, without early stopping."""
    profile = env.get_profile(profile)
    if profile.name != "smoke":
        return dict(settings)
    quick = {k: v for k, v in settings.items() if k not in ("max_epochs", "patience")}
    return {**quick, "max_steps": profile.max_steps}


# The ticket recipes stop on validation loss: at most 4 epochs, measured every half epoch,
# stopping after 2 measurements without a new best and keeping the best (train.sft).
_STOP = dict(max_epochs=4, patience=2)
_TICKET_LORA = train.LoraSettings(r=16, alpha=32, dropout=0.0)
COURSE_RUNS: dict[str, Recipe] = {
    **{f"tickets/lora-seed{seed}": Recipe(
        "tickets", _TICKET_LORA, dict(learning_rate=1e-3, seed=seed, **_STOP),
        used_by="06, 07 (07 serves seed 0)" if seed == 0 else "06 (the spread across seeds)")
       for seed in (0, 1, 2)},
    "tickets/full": Recipe("tickets", None, dict(learning_rate=1e-4, **_STOP),
                           used_by="02, 05 (the teacher), 06"),
}
# The learning rates the short sweeps preferred (03 for LoRA, 02 for the full fine-tune), run at
# the full budget with every other setting as the course's run: each against the course's rate,
# compared on validation (loss and exact match), so the rate is chosen, not copied.
FULL_BUDGET_RATES = {"tickets/lora-seed0": "tickets/lora-lr0.003", "tickets/full": "tickets/full-lr0.001"}
COURSE_RUNS.update({
    "tickets/lora-lr0.003": Recipe("tickets", _TICKET_LORA, dict(learning_rate=3e-3, seed=0, **_STOP),
                                   heldout=("val",), used_by="03 (the rate at the full budget)"),
    "tickets/full-lr0.001": Recipe("tickets", None, dict(learning_rate=1e-3, **_STOP),
                                   heldout=("val",), used_by="02 (the rate at the full budget)"),
})
# Chapter 01's data experiments: the same 40 steps of 8 at every size, so only the data changes
# (25, 100 and 400 tickets, nested; then the 400 with 40 % of their labels wrong).
DATA_SIZES = (25, 100, 400)
_DATA = dict(max_steps=40, batch_size=8, learning_rate=1e-3, seed=0)
COURSE_RUNS.update({
    **{f"tickets/data-{n}": Recipe("tickets", train.LoraSettings(), dict(_DATA), train_subset=n,
                                   heldout=("val", "test") if n == 400 else ("val",),
                                   used_by="01 (size)" + (", solutions 01" if n == 400 else ""))
       for n in DATA_SIZES},
    "tickets/data-400-noisy": Recipe("tickets", train.LoraSettings(), dict(_DATA), train_subset=400,
                                     label_noise=0.4, heldout=("val",), used_by="01 (quality)"),
})
# Chapter 03's sweeps: short runs (40 steps of 8, about half an epoch), every other setting as
# the ticket LoRA's, one thing changed at a time. Rank-stabilized LoRA (scale alpha / sqrt(r))
# keeps a step's size the same at every rank, so the rank sweep compares capacity alone;
# alpha 8 at r = 16 is the scale 2 of the ticket LoRA's alpha 32 without it. Scored on
# validation: they choose settings, so they never see the test set.
SWEEP_RANKS = (1, 4, 16, 64)
SWEEP_RATES = (3e-4, 1e-3, 3e-3)
SWEEP_ALPHAS = (4, 8, 16)
_SWEEP = dict(max_steps=40, batch_size=8)


def sweep_name(r: int = 16, alpha: int = 8, learning_rate: float = 1e-3) -> str:
    """The run cache name of one of chapter 03's sweep runs."""
    return f"tickets/sweep-r{r}-a{alpha}-lr{learning_rate:g}"


COURSE_RUNS.update({
    sweep_name(r, alpha, rate): Recipe(
        "tickets", train.LoraSettings(r=r, alpha=alpha, dropout=0.0, rslora=True),
        dict(learning_rate=rate, **_SWEEP), heldout=("val",) if alpha == 8 and rate == 1e-3 else (),
        used_by="03 (the rank sweep)" if alpha == 8 and rate == 1e-3 else "03 (rate and alpha)")
    for r, alpha, rate in sorted({*((r, 8, 1e-3) for r in SWEEP_RANKS),
                                  *((16, 8, rate) for rate in SWEEP_RATES),
                                  *((16, alpha, 1e-3) for alpha in SWEEP_ALPHAS)})})


# Chapter 04's house voice: an SFT run (a LoRA, stopping on validation loss) that DPO starts from.
VOICE_SFT = "voice/sft"
VOICE_LORA = train.LoraSettings(r=16, alpha=32, dropout=0.05)
VOICE_MAX_NEW_TOKENS = 96  # a house reply is at most ~80 tokens with its greeting and sign-off
COURSE_RUNS[VOICE_SFT] = Recipe("voice/sft", VOICE_LORA,
                                dict(learning_rate=1e-3, max_new_tokens=VOICE_MAX_NEW_TOKENS, **_STOP),
                                used_by="04 (the SFT model, and DPO's reference)")


# Chapter 05's distillation: the best ticket model the course trains teaches a student with a
# third of its layers cut, from its answers to the unlabeled pool (tickets it never trained on)
# and from its probabilities at T = 2. `make runs` fills all of it (STUDENT in `course runs`).
TEACHER = "tickets/full"  # the converged full fine-tune: the most exact matches on test in 06
STUDENT = "tickets/student"
STUDENT_LAYERS = 20  # of the teacher's 30: which 20 is chosen on validation (student_cuts)
STUDENT_SETTINGS = dict(temperature=2.0, hard_weight=0.5, learning_rate=2e-4, max_epochs=6,
                        patience=2)  # half KL at T = 2, half cross-entropy on the teacher's answers
CUTS = "tickets/student-cuts"  # the cache name of the cuts' drift on validation


def student_cuts(n_layers: int, n_student: int = STUDENT_LAYERS) -> dict[str, list[int]]:
    """The ways chapter 05 tries to cut an `n_layers` model to `n_student` layers, as the
    indices kept (models.fewer_layers(keep=...)): evenly spaced, first and last kept (what
    DistilBERT did), and one contiguous block of n_layers - n_student removed at five places
    between the second layer and the second to last (the first and last layer are kept:
    they turn tokens into the model's representation and back)."""
    if not 2 <= n_student < n_layers:
        raise ValueError(f"a student of {n_student} layers from a teacher of {n_layers}: keep "
                         f"2 to {n_layers - 1} layers")
    cut = n_layers - n_student
    cuts = {"evenly spaced": models.evenly_spaced(n_layers, n_student)}
    last_start = n_layers - 1 - cut  # the block may reach the second to last layer
    for start in sorted({round(1 + i * (last_start - 1) / 4) for i in range(5)}):
        cuts[f"drop {start}-{start + cut - 1}"] = [i for i in range(n_layers)
                                                  if not start <= i < start + cut]
    return cuts


def cut_drift(teacher, tokenizer, rows: list[dict], profile=None, show: bool = True,
              n_student: int = STUDENT_LAYERS) -> dict[str, float]:
    """train.drift of every one of student_cuts (untrained) from `teacher` on `rows` (the
    validation tickets): KL per answer token, cut name -> nats. Cached like an answer set,
    keyed by the teacher's weights and the rows; `make runs` fills it before the student."""
    profile = env.get_profile(profile)
    cuts = student_cuts(teacher.config.num_hidden_layers, n_student)
    key = run_key(CUTS, teacher, "drift", {"cuts": cuts}, {"rows": rows}, profile)

    def measure() -> dict[str, float]:
        start = time.time()
        found = train.drift(teacher, {name: models.fewer_layers(teacher, keep=keep)
                                      for name, keep in cuts.items()}, tokenizer, rows)
        if show:
            print(f"the drift of {len(cuts)} cuts on {len(rows)} rows: {time.time() - start:.0f} s")
        return found
    return _cached_json(key, "drift.json", f"the drift of {len(cuts)} cuts", show, measure)


def best_cut(drift: dict[str, float], n_layers: int, n_student: int = STUDENT_LAYERS) -> list[int]:
    """The layers kept by the cut that drifts least (a tie: the first, evenly spaced)."""
    return student_cuts(n_layers, n_student)[min(drift, key=drift.get)]


def ticket_teacher(model, tokenizer, profile=None, show: bool = True) -> Run:
    """The run TEACHER, an adapter merged into its weights if it has one: what would be
    deployed (no adapter matrices computed on every call), so its latency is fair to beat."""
    run = course_run(TEACHER, model, tokenizer, profile=profile, show=show)
    if hasattr(run.model, "merge_and_unload"):
        run.model = run.model.merge_and_unload()
    return run


def pool_rows(profile=None) -> list[dict]:
    """The unlabeled tickets (data/tickets/pool.jsonl; eight of them in the smoke profile)."""
    profile = env.get_profile(profile)
    pool = data.load_jsonl(data.DATA_DIR / "tickets" / "pool.jsonl")
    return data.take(pool, profile.n_eval) if profile.name == "smoke" else pool


def teacher_labels(teacher, tokenizer, rows: list[dict], profile=None, show: bool = True) -> list[str]:
    """The teacher's answers to `rows` (with the ticket prompt it was trained with), cached."""
    profile = env.get_profile(profile)
    return generate("tickets/teacher/pool", teacher, tokenizer,
                    [evals.prompt_messages(r) for r in rows], max_new_tokens=profile.max_new_tokens,
                    batch_size=profile.gen_batch_size, profile=profile, show=show)


def labelled_rows(rows: list[dict], labels: list[str]) -> tuple[list[dict], list[str]]:
    """(training rows, ids dropped): each row with the teacher's answer as its assistant turn,
    where that answer is one valid JSON record; the ids of the rows whose answer is not."""
    kept, dropped = [], []
    for row, label in zip(rows, labels, strict=True):
        if evals.parse_json_record(label) is None:
            dropped.append(row["id"])
        else:
            kept.append({"id": row["id"], "messages": [*evals.prompt_messages(row),
                                                       {"role": "assistant", "content": label}]})
    return kept, dropped


def ticket_student(teacher, tokenizer, train_rows: list[dict], profile=None,
                   show: bool = True) -> Run:
    """The student: `teacher` cut to STUDENT_LAYERS layers (the cut of student_cuts that
    drifts least from it on the validation tickets), distilled on `train_rows`
    (labelled_rows) with STUDENT_SETTINGS, stopping on the validation tickets; with its
    answers to n_eval test tickets. Chapter 05 makes the same calls in front of the learner."""
    profile = env.get_profile(profile)
    val_rows, test_rows = (data.take(data.load_split("tickets", s), profile.n_eval)
                           for s in ("val", "test"))
    n_layers = teacher.config.num_hidden_layers
    keep = best_cut(cut_drift(teacher, tokenizer, val_rows, profile, show), n_layers)
    student = models.fewer_layers(teacher, keep=keep)
    return distill(STUDENT, student, tokenizer, train_rows, teacher, val_rows,
                   {"test": test_rows}, profile=profile, show=show,
                   **settings_for_profile(STUDENT_SETTINGS, profile))


# ---------------------------------------------------------------------------- chapter 04: DPO

VOICE = "voice/dpo"  # `course runs` name of chapter 04's prompts, own-mistake pairs and sweep
VOICE_SHOTS = (0, 3)  # house replies shown after the rules (one per mood, or none): chosen on validation
# (beta, learning rate) tried on validation; the last is the lower-rate control: a tenth of the
# lowest rate, a run that should change little if the others' gains come from training.
VOICE_DPO_GRID = ((0.1, 5e-4), (0.5, 5e-4), (0.1, 1e-4), (0.5, 1e-4), (0.1, 1e-5))


def voice_grid(profile=None) -> tuple[tuple[float, float], ...]:
    """VOICE_DPO_GRID, or in the smoke profile (which only checks that the code runs) its
    first setting and the control."""
    if env.get_profile(profile).name == "smoke":
        return VOICE_DPO_GRID[0], VOICE_DPO_GRID[-1]
    return VOICE_DPO_GRID


def voice_dpo_name(beta: float, learning_rate: float, pairs: str = "own") -> str:
    """The run cache name of one of chapter 04's DPO runs."""
    return f"voice/dpo-{pairs}-b{beta:g}-lr{learning_rate:g}"


def dpo_steps(profile=None) -> int:
    """Optimizer steps of chapter 04's DPO runs (half the profile's SFT budget; 2 in smoke)."""
    return max(env.get_profile(profile).max_steps // 2, 2)


def voice_prompt_answers(model, tokenizer, rows: list[dict], train_rows: list[dict],
                         shots: int, split: str, profile=None, show: bool = True) -> list[str]:
    """The base model's replies to voice chat `rows` with prompts.voice_prompts (the house
    rules and `shots` training replies), cached under voice/prompt-<shots>shot/<split>."""
    from .prompts import voice_prompts
    profile = env.get_profile(profile)
    return generate(f"voice/prompt-{shots}shot/{split}", model, tokenizer,
                    voice_prompts(rows, train_rows, shots), max_new_tokens=VOICE_MAX_NEW_TOKENS,
                    batch_size=profile.gen_batch_size, profile=profile, show=show)


def rules_kept(replies: list[str], rows: list[dict]) -> int:
    """How many rule checks `replies` pass in all (each reply, each of the eight rules): finer
    than the share of replies that keep every rule, which a prompt may never reach."""
    return sum(sum(kept) for kept in evals.score_voice(replies, rows).rules.values())


def best_voice_prompt(answers: dict[int, list[str]], val_rows: list[dict]) -> int:
    """The number of examples whose prompt did best on the validation customers: the most
    replies in the house voice, then the most rule checks passed (rules_kept), then the
    fewer examples (the shorter prompt)."""
    return max(sorted(answers), key=lambda k: (sum(evals.score_voice(answers[k], val_rows).in_voice),
                                               rules_kept(answers[k], val_rows), -k))


def own_mistake_pairs(rows: list[dict], answers: list[str],
                      rules: tuple[str, ...] = evals.VOICE_SELECTION_RULES) -> list[dict]:
    """Preference pairs from a model's own replies (`answers`, in the order of the voice chat
    `rows`): where a reply breaks one of `rules`, the house reply is chosen and the model's is
    rejected. Rules not named are not looked at, so they stay a fair test afterwards."""
    scores = evals.score_voice(answers, rows)
    broke = [not ok for ok in scores.keeps(rules)]
    return [{"id": row["id"], "sentiment": row.get("sentiment"),
             "prompt": evals.prompt_messages(row), "chosen": row["messages"][-1:],
             "rejected": [{"role": "assistant", "content": answer}], "rejected_kind": "own"}
            for row, answer, bad in zip(rows, answers, broke) if bad]


_DPO_RESOLVED = ("beta", "max_steps", "batch_size", "learning_rate", "max_length", "seed")


def dpo(name: str, model, tokenizer, train_pairs: list[dict], val_pairs: list[dict] | None = None,
        heldout: dict[str, list[dict]] | None = None, *, profile=None,
        max_new_tokens: int | None = None, show: bool = True, **dpo_kwargs) -> Run:
    """A `train.dpo` run by name, as `sft` is for train.sft: trained once per key and reloaded
    after that, with its answers to each held-out split (voice chat rows). `model` is the
    SFT model; an adapter on it is merged first (as train.dpo does), and the merged weights are
    the reference the run's adapter is switched off to."""
    profile, heldout = env.get_profile(profile), dict(heldout or {})
    _refuse_uncacheable("dpo", dpo_kwargs)
    reference = model
    if hasattr(model, "merge_and_unload"):
        reference = copy.deepcopy(model).merge_and_unload()
    kwargs = dict(dpo_kwargs)
    lora = kwargs.pop("lora", train.LoraSettings())
    resolved = train.dpo_settings(reference, train_pairs, lora, profile,
                                  **{k: kwargs[k] for k in _DPO_RESOLVED if k in kwargs})
    settings = {**resolved, **{k: v for k, v in kwargs.items() if k not in resolved},
                "max_new_tokens": max_new_tokens or profile.max_new_tokens}
    key = run_key(name, reference, "dpo", settings,
                  {"train": train_pairs, "val": val_pairs or [], **heldout}, profile)
    pair_chats = [{"messages": p["prompt"] + p["chosen"] + p["rejected"]} for p in train_pairs]
    return _cached(name, key, reference, tokenizer, pair_chats, heldout, profile, show,
                   lambda: train.dpo(reference, tokenizer, train_pairs, val_pairs, lora=lora,
                                     profile=profile, show=show, **kwargs),
                   cost="plus the reference's forward passes; ")


@dataclass
class VoiceSweep:
    """Chapter 04's DPO runs on the SFT model's own mistakes, one per (beta, learning rate) of
    VOICE_DPO_GRID, each with its replies to the validation customers; `best` is chosen on
    validation: the most replies keeping the selection rules, then the least drift."""

    runs: dict[tuple[float, float], Run]
    val_scores: dict[tuple[float, float], evals.VoiceScores]
    drift: dict[tuple[float, float], float]  # KL from the SFT model, nats per reply token
    best: tuple[float, float]


def voice_sweep(sft_model, tokenizer, train_pairs: list[dict], val_pairs: list[dict],
                val_rows: list[dict], profile=None, grid=None,
                show: bool = True) -> VoiceSweep:
    """Train (or load) a DPO run for each (beta, learning rate) in `grid` (voice_grid's by
    default) on `train_pairs`, evaluated on `val_pairs` as it trains; score each one's replies to `val_rows` and measure
    its drift on their house replies (train.kl_from_reference); choose the best on validation."""
    profile = env.get_profile(profile)
    steps = dpo_steps(profile)
    found, scores, drift = {}, {}, {}
    for beta, rate in grid or voice_grid(profile):
        run = dpo(voice_dpo_name(beta, rate), sft_model, tokenizer, train_pairs, val_pairs or None,
                  {"val": val_rows}, profile=profile, max_new_tokens=VOICE_MAX_NEW_TOKENS,
                  show=show, lora=VOICE_LORA, beta=beta, learning_rate=rate, max_steps=steps,
                  batch_size=max(profile.batch_size // 2, 2), eval_every=max(steps // 4, 1))
        found[beta, rate] = run
        scores[beta, rate] = evals.score_voice(run.predictions["val"], val_rows)
        drift[beta, rate] = train.kl_from_reference(run.model, tokenizer, val_rows)
    best = max(found, key=lambda k: (sum(scores[k].keeps(evals.VOICE_SELECTION_RULES)), -drift[k]))
    return VoiceSweep(found, scores, drift, best)


@dataclass
class VoiceStudy:
    """Everything `make runs` fills for chapter 04, in the order the chapter computes it."""

    prompt_val: dict[int, list[str]]  # shots -> the base model's replies to the val customers
    best_shots: int
    sft: Run
    own_train: list[dict]
    own_val: list[dict]
    sweep: VoiceSweep


def voice_study(model, tokenizer, profile=None, show: bool = True) -> VoiceStudy:
    """Chapter 04's cached computations, as the chapter makes them: the prompt rung on
    validation (shots chosen there), the SFT run, its own mistakes on the training and
    validation customers, and the DPO sweep on them. `course runs voice/dpo` calls it."""
    profile = env.get_profile(profile)
    val_rows = data.take(data.load_split("voice/sft", "val"), profile.n_eval)
    train_rows = data.load_split("voice/sft", "train")
    prompt_val = {k: voice_prompt_answers(model, tokenizer, val_rows, train_rows, k, "val",
                                          profile, show) for k in VOICE_SHOTS}
    best_shots = best_voice_prompt(prompt_val, val_rows)
    sft_run = course_run(VOICE_SFT, model, tokenizer, profile=profile, show=show)
    pool = data.take(train_rows, profile.n_eval * 2)  # all 240 training customers but in smoke
    pool_answers = generate("voice/sft/train-answers", sft_run.model, tokenizer,
                            [evals.prompt_messages(r) for r in pool],
                            max_new_tokens=VOICE_MAX_NEW_TOKENS, batch_size=profile.gen_batch_size,
                            profile=profile, show=show)
    own_train = own_mistake_pairs(pool, pool_answers)
    own_val = own_mistake_pairs(val_rows, sft_run.predictions["val"])
    if not own_train:
        raise ValueError(f"the SFT model kept the selection rules on all {len(pool)} training "
                         f"customers: no pairs of its own mistakes to train DPO on")
    sweep = voice_sweep(sft_run.model, tokenizer, own_train, own_val, val_rows, profile, show=show)
    return VoiceStudy(prompt_val, best_shots, sft_run, own_train, own_val, sweep)


def course_run(name: str, model, tokenizer, profile=None, show: bool = True) -> Run:
    """The course's run `name` (a key of COURSE_RUNS), from the cache or trained now, with its
    answers to n_eval rows of each held-out split (data.take)."""
    if name not in COURSE_RUNS:
        raise KeyError(f"no course run {name!r}; the course's runs are: {', '.join(COURSE_RUNS)}")
    recipe, profile = COURSE_RUNS[name], env.get_profile(profile)
    split = {s: data.load_split(recipe.dataset, s) for s in ("train", "val", *recipe.heldout)}
    heldout = {s: data.take(split[s], profile.n_eval) for s in recipe.heldout}
    val_rows = data.take(split["val"], profile.n_eval)  # all of them, except in smoke
    return sft(name, model, tokenizer, recipe.train_rows(split["train"]), val_rows, heldout, lora=recipe.lora,
               profile=profile, show=show, **recipe.settings_for(profile))


def course_runs(names: list[str] | None = None, profile=None, show: bool = True) -> list[dict]:
    """Compute (or find) the course's runs, one after another: what `make runs` calls. Returns
    one row per run: name, whether it was cached, the seconds it took now, its digest."""
    from .models import load_model
    model, tokenizer = load_model()
    report = []
    if not names or LADDER in names:
        start = time.time()
        ladder = ticket_ladder(model, tokenizer, profile=profile, show=show)
        report.append({"name": LADDER, "cached": None, "seconds": time.time() - start,
                       "train_seconds": 0.0, "digest": f"best: {ladder.best}, k={ladder.best_k}",
                       "steps": None, "best_step": None})
    for name in [n for n in names or list(COURSE_RUNS) if n not in (LADDER, STUDENT, VOICE)]:
        start = time.time()
        run = course_run(name, model, tokenizer, profile=profile, show=show)
        report.append(_report_row(run, start))
        del run
    if not names or VOICE in names:  # after VOICE_SFT, which it starts from
        start = time.time()
        study = voice_study(model, tokenizer, profile=profile, show=show)
        report.append(_report_row(study.sweep.runs[study.sweep.best], start))
    if not names or STUDENT in names:  # after TEACHER, which it loads
        start = time.time()
        teacher = ticket_teacher(model, tokenizer, profile=profile, show=show)
        pool = pool_rows(profile)
        rows, _ = labelled_rows(pool, teacher_labels(teacher.model, tokenizer, pool, profile, show))
        report.append(_report_row(ticket_student(teacher.model, tokenizer, rows, profile=profile,
                                                 show=show), start))
    return report


def _report_row(run: Run, start: float) -> dict:
    """course_runs' line for a run: cached or trained, seconds now and training, steps."""
    return {"name": run.name, "cached": run.cached, "seconds": time.time() - start,
            "train_seconds": run.train_seconds, "digest": run.digest,
            "steps": run.metadata["train"].get("steps"),
            "best_step": run.metadata["train"].get("best_step")}
