"""Evaluation: batched greedy generation, scoring, bootstrap confidence intervals.

Introduced in notebooks/00_decide.ipynb; chapter 06 builds on it.

Every score is kept per row (a list of True/False), so the same rows can later be compared
two ways (a paired test), and every summary carries a 95% bootstrap confidence interval:
with 60 held-out rows, "48/60" could easily have been 42 or 54 on another sample.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass, field

import numpy as np


# ---------------------------------------------------------------------------- generation

def prompt_messages(row: dict) -> list[dict]:
    """The messages a model sees: the row's chat minus its final (reference) assistant turn."""
    messages = row["messages"]
    return messages[:-1] if messages and messages[-1]["role"] == "assistant" else list(messages)


def reference(row: dict) -> str:
    """The row's reference answer: its final assistant turn."""
    last = row["messages"][-1]
    if last["role"] != "assistant":
        raise ValueError(f"row {row.get('id', '?')} has no assistant turn to score against")
    return last["content"]


def prompt_tokens(tokenizer, conversations: list[list[dict]]) -> list[int]:
    """Tokens each chat costs as a prompt (chat template and generation prompt included)."""
    texts = [tokenizer.apply_chat_template(c, tokenize=False, add_generation_prompt=True)
             for c in conversations]
    return [len(ids) for ids in tokenizer(texts, add_special_tokens=False)["input_ids"]]


def generate_from_messages(model, tokenizer, conversations: list[list[dict]],
                           max_new_tokens: int = 64, batch_size: int = 16,
                           show: bool = False) -> list[str]:
    """Greedy answers to many chats, batched with left padding, in the input order."""
    import torch
    texts = [tokenizer.apply_chat_template(c, tokenize=False, add_generation_prompt=True)
             for c in conversations]
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))  # similar lengths together
    answers: list[str] = [""] * len(texts)
    padding_side, tokenizer.padding_side = tokenizer.padding_side, "left"
    start, new_tokens = time.perf_counter(), 0
    try:
        for lo in range(0, len(order), batch_size):
            batch = [order[i] for i in range(lo, min(lo + batch_size, len(order)))]
            enc = tokenizer([texts[i] for i in batch], return_tensors="pt", padding=True,
                            add_special_tokens=False).to(model.device)
            with torch.no_grad():
                out = model.generate(**enc, max_new_tokens=max_new_tokens, do_sample=False,
                                     pad_token_id=tokenizer.pad_token_id)
            generated = out[:, enc["input_ids"].shape[1]:]
            new_tokens += int((generated != tokenizer.pad_token_id).sum())
            for i, ids in zip(batch, generated):
                answers[i] = tokenizer.decode(ids, skip_special_tokens=True).strip()
    finally:
        tokenizer.padding_side = padding_side
    if show:
        seconds = time.perf_counter() - start
        print(f"generated {len(texts)} answers in {seconds:.1f} s "
              f"({new_tokens / max(seconds, 1e-9):.0f} new tokens/s)")
    return answers


def generate(model, tokenizer, rows: list[dict], max_new_tokens: int = 64,
             batch_size: int = 16, show: bool = True) -> list[str]:
    """Greedy answers for chat rows (their final assistant turn, if any, is held back)."""
    return generate_from_messages(model, tokenizer, [prompt_messages(r) for r in rows],
                                  max_new_tokens=max_new_tokens, batch_size=batch_size,
                                  show=show)


def time_calls(model, tokenizer, conversations: list[list[dict]],
               max_new_tokens: int = 64) -> list[float]:
    """Seconds per call, answering each chat alone (batch of one, as a live request is),
    after one untimed warm-up call: what a user waits, prompt reading included."""
    generate_from_messages(model, tokenizer, conversations[:1], max_new_tokens=max_new_tokens)
    seconds = []
    for conversation in conversations:
        start = time.perf_counter()
        generate_from_messages(model, tokenizer, [conversation], max_new_tokens=max_new_tokens)
        seconds.append(time.perf_counter() - start)
    return seconds


# ---------------------------------------------------------------------------- statistics

@dataclass(frozen=True)
class Metric:
    """A rate over rows with its 95% bootstrap confidence interval."""

    hits: int
    n: int
    low: float
    high: float

    @property
    def value(self) -> float:
        return self.hits / self.n if self.n else 0.0

    def __str__(self) -> str:
        return f"{self.hits}/{self.n} = {self.value:.0%} [{self.low:.0%}, {self.high:.0%}]"


def bootstrap_ci(per_row, n_boot: int = 2000, level: float = 0.95,
                 seed: int = 0) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean of per-row scores (rows resampled)."""
    scores = np.asarray(per_row, dtype=float)
    if scores.size == 0:
        return (0.0, 0.0)
    rng = np.random.default_rng(seed)
    means = scores[rng.integers(0, scores.size, size=(n_boot, scores.size))].mean(axis=1)
    tail = (1 - level) / 2 * 100
    return float(np.percentile(means, tail)), float(np.percentile(means, 100 - tail))


def rate(per_row, seed: int = 0) -> Metric:
    """Summarise per-row True/False scores as a Metric with a bootstrap interval."""
    flags = [bool(x) for x in per_row]
    low, high = bootstrap_ci(flags, seed=seed)
    return Metric(sum(flags), len(flags), low, high)


# ---------------------------------------------------------------------------- JSON scoring

def parse_json_record(text: str) -> dict | None:
    """The answer as a JSON object, strictly (the whole answer must be one object), else None."""
    try:
        value = json.loads(text.strip())
    except (json.JSONDecodeError, TypeError):
        return None
    return value if isinstance(value, dict) else None


@dataclass
class JsonScores:
    """Per-row JSON scores: valid object, each field right, whole record right."""

    valid: list[bool]
    fields: dict[str, list[bool]]
    exact: list[bool]
    metrics: dict[str, Metric] = field(default_factory=dict)

    def __str__(self) -> str:
        return "\n".join(f"{name:22} {m}" for name, m in self.metrics.items())


def score_json(predictions: list[str], rows: list[dict]) -> JsonScores:
    """Valid-JSON rate, per-field accuracy and exact match against each row's reference record."""
    if len(predictions) != len(rows):
        raise ValueError(f"{len(predictions)} predictions for {len(rows)} rows: they must pair up")
    references = [json.loads(reference(r)) for r in rows]
    parsed = [parse_json_record(p) for p in predictions]
    names = list(references[0]) if references else []
    valid = [p is not None for p in parsed]
    fields = {f: [p is not None and f in p and p[f] == ref.get(f)
                  for p, ref in zip(parsed, references)] for f in names}
    exact = [p == ref for p, ref in zip(parsed, references)]
    metrics = {"valid JSON": rate(valid), **{f"field {f}": rate(v) for f, v in fields.items()},
               "exact match": rate(exact)}
    return JsonScores(valid, fields, exact, metrics)


# ---------------------------------------------------------------------------- answer scoring

def normalise(text: str) -> str:
    """Lower-case and fold white space, for lenient string matching."""
    return " ".join(text.lower().split())


def contains_any(prediction: str, accept: list[str]) -> bool:
    """True when any accepted answer string appears in the prediction (case-insensitive)."""
    said = normalise(prediction)
    return any(normalise(a) in said for a in accept)


def score_contains(predictions: list[str], rows: list[dict]) -> tuple[list[bool], Metric]:
    """Per-row correctness (row['accept'] strings found in the answer) and its Metric."""
    if len(predictions) != len(rows):
        raise ValueError(f"{len(predictions)} predictions for {len(rows)} rows: they must pair up")
    correct = [contains_any(p, r["accept"]) for p, r in zip(predictions, rows)]
    return correct, rate(correct)


# ---------------------------------------------------------------------------- house voice

VOICE_SIGN_OFF = "— Brightbrew Support"
VOICE_BANNED = ("unfortunately", "we apologize for any inconvenience", "valued customer")
VOICE_TIMEFRAME = re.compile(
    r"\bwithin (\d+( to \d+)?|one|two|three|a few) (working |business )?"
    r"(minutes?|hours?|days?|weeks?)\b|\b(today|tomorrow)\b"
    r"|\bby (Monday|Tuesday|Wednesday|Thursday|Friday|Saturday)\b", re.I)


def voice_rules(reply: str, greeting: str | None = None) -> dict[str, bool]:
    """Each machine-checkable house-voice rule (data/README.md) -> whether `reply` keeps it.

    `greeting` is the exact first line expected ("Hi Sofia," for a customer who signed
    Sofia, "Hi there," otherwise); None accepts any "Hi <Name>," or "Hi there,". The rule
    "warm and plain" is left to people: a regular expression cannot judge warmth.
    """
    lines = reply.strip().split("\n")
    body = "\n".join(lines[1:-1]).strip()
    sentences = [s for s in re.split(r"(?<=[.?!])\s+", body) if s]
    first = lines[0].strip()
    return {
        "greeting": (first == greeting if greeting is not None
                     else re.fullmatch(r"Hi ([A-Z][a-z'-]+|there),", first) is not None),
        "sign-off": len(lines) > 1 and lines[-1].strip() == VOICE_SIGN_OFF,
        "2-4 sentences": 2 <= len(sentences) <= 4,
        "at most 60 words": len(body.split()) <= 60,
        "next step with a timeframe": VOICE_TIMEFRAME.search(body) is not None,
        "no exclamation mark": "!" not in reply,
        "no emoji": all(ord(c) < 0x2000 or c == "—" for c in reply),
        "no banned phrase": not any(b in reply.lower() for b in VOICE_BANNED),
    }


@dataclass
class VoiceScores:
    """Per-reply house-voice scores: each rule kept or not, and all rules kept ("in voice")."""

    rules: dict[str, list[bool]]
    in_voice: list[bool]
    metrics: dict[str, Metric] = field(default_factory=dict)

    def __str__(self) -> str:
        return "\n".join(f"{name:28} {m}" for name, m in self.metrics.items())


def score_voice(replies: list[str], rows: list[dict]) -> VoiceScores:
    """The house-voice style metric: which rules each reply keeps, and the share of replies
    that keep them all, with bootstrap intervals. The greeting expected for each row is the
    first line of its reference reply (a pair's "chosen", or a chat row's last turn)."""
    if len(replies) != len(rows):
        raise ValueError(f"{len(replies)} replies for {len(rows)} rows: they must pair up")
    expected = [(r["chosen"][-1]["content"] if "chosen" in r else reference(r)).split("\n")[0]
                for r in rows]
    checked = [voice_rules(reply, greeting) for reply, greeting in zip(replies, expected)]
    rules = {name: [c[name] for c in checked] for name in checked[0]} if checked else {}
    in_voice = [all(c.values()) for c in checked]
    metrics = {"in house voice (all rules)": rate(in_voice),
               **{name: rate(kept) for name, kept in rules.items()}}
    return VoiceScores(rules, in_voice, metrics)


def results_table(results: dict[str, dict[str, Metric]]) -> str:
    """Plain-text table: one row per method, one column per metric, 'hits/n = rate [CI]'."""
    metrics = list(dict.fromkeys(m for r in results.values() for m in r))
    cells = [[method, *(str(r.get(m, "-")) for m in metrics)] for method, r in results.items()]
    header = ["", *metrics]
    widths = [max(len(str(row[i])) for row in [header, *cells]) for i in range(len(header))]
    lines = ["  ".join(str(c).ljust(w) for c, w in zip(row, widths)).rstrip()
             for row in [header, *cells]]
    return "\n".join([lines[0], "-" * len(lines[0]), *lines[1:]])
