"""Evaluation: batched greedy generation, scoring, bootstrap confidence intervals, paired
tests, forgetting probes and A/B test planning.

Introduced in notebooks/00_decide.ipynb; chapter 06 builds on it.

Every score is kept per row (a list of True/False), so the same rows can later be compared
two ways (a paired test), and every summary carries a 95% bootstrap confidence interval:
with 60 held-out rows, "48/60" could easily have been 42 or 54 on another sample.
Nothing here is specific to the course's data: any per-row True/False lists work.
"""

from __future__ import annotations

import json
import math
import re
import statistics
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
               max_new_tokens: int = 64, warm_up: bool = True) -> list[float]:
    """Seconds per call, answering each chat alone (batch of one, as a live request is),
    after one untimed warm-up call (unless the caller made one): what a user waits, prompt
    reading included."""
    if warm_up:
        generate_from_messages(model, tokenizer, conversations[:1],
                               max_new_tokens=max_new_tokens)
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


# ---------------------------------------------------------------------------- paired comparison

@dataclass(frozen=True)
class PairedTest:
    """Two systems scored on the same rows: who won where, the difference with its interval,
    and the exact McNemar p-value (a two-sided sign test on the rows where they disagree)."""

    n: int
    a_hits: int
    b_hits: int
    only_a: int  # rows A got right and B got wrong
    only_b: int  # rows B got right and A got wrong
    diff: float  # B's rate minus A's
    low: float
    high: float
    p_value: float

    def __str__(self) -> str:
        return (f"A {self.a_hits}/{self.n}, B {self.b_hits}/{self.n}: B - A = {self.diff:+.0%} "
                f"[{self.low:+.0%}, {self.high:+.0%}]; only A right on {self.only_a}, only B "
                f"right on {self.only_b}; McNemar exact p = {self.p_value:.3g}")


def sign_test(wins: int, losses: int) -> float:
    """Two-sided exact binomial p-value of `wins` against `losses` under a fair coin: how
    surprising the split would be if neither side were better (ties left out)."""
    if wins < 0 or losses < 0:
        raise ValueError(f"counts must be non-negative, got {wins} and {losses}")
    n, k = wins + losses, min(wins, losses)
    if n == 0:
        return 1.0
    tail = sum(math.comb(n, i) for i in range(k + 1)) / 2 ** n
    return min(1.0, 2 * tail)


def paired_test(a, b, n_boot: int = 2000, seed: int = 0) -> PairedTest:
    """Compare per-row scores of system A and system B on the same rows (same order).

    Pairing is what makes a small test set usable: rows both systems get right (or both get
    wrong) carry no information about which is better, so only the rows where they disagree
    are counted (McNemar's test), and the interval of B - A resamples whole rows, keeping
    each row's two scores together.
    """
    a, b = [bool(x) for x in a], [bool(x) for x in b]
    if len(a) != len(b):
        raise ValueError(f"{len(a)} scores for A but {len(b)} for B: a paired test needs both "
                         f"systems scored on the same rows, in the same order")
    if not a:
        raise ValueError("no rows to compare")
    only_a = sum(x and not y for x, y in zip(a, b))
    only_b = sum(y and not x for x, y in zip(a, b))
    low, high = bootstrap_ci([int(y) - int(x) for x, y in zip(a, b)], n_boot=n_boot, seed=seed)
    return PairedTest(len(a), sum(a), sum(b), only_a, only_b, (sum(b) - sum(a)) / len(a),
                      low, high, sign_test(only_b, only_a))


@dataclass(frozen=True)
class Forgetting:
    """Probe answers before and after fine-tuning: kept, forgotten, newly right."""

    before: Metric
    after: Metric
    forgotten: list  # ids (or indices) right before and wrong after
    gained: list  # ids wrong before and right after
    test: PairedTest

    def __str__(self) -> str:
        return (f"before {self.before}, after {self.after}: {len(self.forgotten)} forgotten, "
                f"{len(self.gained)} newly right (p = {self.test.p_value:.3g})")


def forgetting(before, after, ids: list | None = None) -> Forgetting:
    """What a fine-tune did to probes the base model answered: per-row True/False before and
    after, on the same probes. `ids` names the probes in the lists of changes."""
    before, after = [bool(x) for x in before], [bool(x) for x in after]
    test = paired_test(before, after)
    ids = list(range(len(before))) if ids is None else list(ids)
    if len(ids) != len(before):
        raise ValueError(f"{len(ids)} ids for {len(before)} probes: give one id per probe")
    return Forgetting(rate(before), rate(after),
                      [i for i, x, y in zip(ids, before, after) if x and not y],
                      [i for i, x, y in zip(ids, before, after) if y and not x], test)


# ---------------------------------------------------------------------------- A/B testing

def _check_rate(name: str, value: float) -> None:
    if not 0 < value < 1:
        raise ValueError(f"{name}={value!r}: a success rate must lie strictly between 0 and 1")


def ab_sample_size(p_a: float, p_b: float, alpha: float = 0.05, power: float = 0.8) -> int:
    """Users (or requests) needed in EACH arm of an A/B test to detect a change of success
    rate from p_a to p_b with a two-sided two-proportion z-test at level `alpha`, with
    probability `power` (the standard normal-approximation formula)."""
    _check_rate("p_a", p_a)
    _check_rate("p_b", p_b)
    _check_rate("alpha", alpha)
    _check_rate("power", power)
    if p_a == p_b:
        raise ValueError("p_a equals p_b: there is no difference to detect, at any sample size")
    z = statistics.NormalDist()
    z_alpha, z_power = z.inv_cdf(1 - alpha / 2), z.inv_cdf(power)
    p_bar = (p_a + p_b) / 2
    spread = (z_alpha * math.sqrt(2 * p_bar * (1 - p_bar))
              + z_power * math.sqrt(p_a * (1 - p_a) + p_b * (1 - p_b)))
    return math.ceil(spread ** 2 / (p_a - p_b) ** 2)


def two_proportion_test(hits_a: int, n_a: int, hits_b: int, n_b: int) -> float:
    """Two-sided p-value of the pooled two-proportion z-test (independent groups: an A/B test
    sends different users to each arm, so it is not paired)."""
    if min(n_a, n_b) <= 0:
        raise ValueError("each arm needs at least one observation")
    pooled = (hits_a + hits_b) / (n_a + n_b)
    spread = math.sqrt(pooled * (1 - pooled) * (1 / n_a + 1 / n_b))
    if spread == 0:
        return 1.0
    z = (hits_b / n_b - hits_a / n_a) / spread
    return 2 * (1 - statistics.NormalDist().cdf(abs(z)))


@dataclass(frozen=True)
class Rollout:
    """Simulated A/B tests: how often each verdict came out."""

    n_per_arm: int
    trials: int
    b_wins: float  # share of tests that declared B better (p < alpha, B ahead)
    a_wins: float  # share that declared A better
    no_call: float  # share with p >= alpha

    def __str__(self) -> str:
        return (f"{self.n_per_arm:,} per arm, {self.trials:,} simulated tests: B declared better "
                f"in {self.b_wins:.0%}, A in {self.a_wins:.0%}, no call in {self.no_call:.0%}")


def simulate_ab(p_a: float, p_b: float, n_per_arm: int, trials: int = 2000,
                alpha: float = 0.05, seed: int = 0) -> Rollout:
    """Run `trials` simulated A/B tests in which the true success rates are p_a and p_b, each
    with n_per_arm users per arm, and count the verdicts of the two-proportion test. With
    p_a == p_b, "B declared better" is the false-alarm rate; with p_b > p_a it is the power."""
    _check_rate("p_a", p_a)
    _check_rate("p_b", p_b)
    if n_per_arm < 1 or trials < 1:
        raise ValueError("n_per_arm and trials must be at least 1")
    rng = np.random.default_rng(seed)
    hits_a = rng.binomial(n_per_arm, p_a, size=trials)
    hits_b = rng.binomial(n_per_arm, p_b, size=trials)
    b_wins = a_wins = 0
    for x, y in zip(hits_a.tolist(), hits_b.tolist()):
        if two_proportion_test(x, n_per_arm, y, n_per_arm) < alpha:
            b_wins += y > x
            a_wins += x > y
    return Rollout(n_per_arm, trials, b_wins / trials, a_wins / trials,
                   1 - (b_wins + a_wins) / trials)
