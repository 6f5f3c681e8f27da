"""Evaluation: batched greedy generation, scoring, bootstrap confidence intervals, paired
tests, forgetting probes and A/B test planning.

Introduced in notebooks/00_decide.ipynb; chapter 06 builds on it.

Every score is kept per row (a list of True/False), so the same rows can later be compared
two ways (a paired test), and every rate carries a 95% confidence interval: with 60 held-out
rows, "48/60" could easily have been 42 or 54 on another sample. Rates use the Wilson score
interval, which stays honest at 0/n and n/n (a bootstrap of 60/60 would say [100%, 100%], as
if a 61st row could not fail); differences between two systems on the same rows use a paired
bootstrap, and several fields tested at once get a Holm correction.
Nothing here is specific to the course's data: any per-row True/False lists work.
"""

from __future__ import annotations

import json
import math
import re
import statistics
import time
import weakref
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


# tokenizer -> {vocab size: xgrammar GrammarCompiler, (vocab size, schema text): CompiledGrammar}
_GRAMMARS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _schema_processor(model, tokenizer, json_schema: dict):
    """A fresh xgrammar logits processor that lets `model` write only JSON matching
    `json_schema` (chapters 00, 06); the compiled grammar is cached per tokenizer and schema."""
    try:
        import xgrammar as xgr
        import xgrammar.contrib.hf  # noqa: F401  (the transformers integration)
    except ImportError as error:
        raise ImportError("json_schema= needs xgrammar, the constrained-decoding library: "
                          "pip install xgrammar==0.2.8 (make setup installs it)") from error
    vocab_size, text = model.config.vocab_size, json.dumps(json_schema)
    cache = _GRAMMARS.setdefault(tokenizer, {})
    if (vocab_size, text) not in cache:
        if vocab_size not in cache:
            info = xgr.TokenizerInfo.from_huggingface(tokenizer, vocab_size=vocab_size)
            cache[vocab_size] = xgr.GrammarCompiler(info)
        try:
            cache[vocab_size, text] = cache[vocab_size].compile_json_schema(
                text, any_whitespace=False)
        except RuntimeError as error:
            raise ValueError(f"xgrammar cannot compile json_schema ({error}); pass a JSON "
                             f"schema dict such as prompts.TICKET_SCHEMA") from error
    return xgr.contrib.hf.LogitsProcessor(cache[vocab_size, text])


def generate_from_messages(model, tokenizer, conversations: list[list[dict]],
                           max_new_tokens: int = 64, batch_size: int = 16,
                           show: bool = False, json_schema: dict | None = None) -> list[str]:
    """Greedy answers to many chats, batched with left padding, in the input order.

    With `json_schema` (chapters 00, 06), decoding is constrained by xgrammar: at each step
    only tokens that keep the answer valid under the schema are allowed, so a finished answer
    always parses (keys in the schema's order). Batches still work: xgrammar's HF processor
    keeps one grammar matcher per row and reads each row's newest token, which left padding
    leaves untouched. An answer cut off by `max_new_tokens` is still invalid: allow enough
    (a ticket record is ~40 tokens from a trained model, up to ~70 from a random one).
    """
    import torch
    texts = [tokenizer.apply_chat_template(c, tokenize=False, add_generation_prompt=True)
             for c in conversations]
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))  # similar lengths together
    answers: list[str] = [""] * len(texts)
    start, new_tokens = time.perf_counter(), 0
    for lo in range(0, len(order), batch_size):
        batch = [order[i] for i in range(lo, min(lo + batch_size, len(order)))]
        # left padding for this call only: the tokenizer object (maybe shared with a server)
        # is never changed
        enc = tokenizer([texts[i] for i in batch], return_tensors="pt", padding=True,
                        padding_side="left", add_special_tokens=False).to(model.device)
        # an xgrammar processor serves one generate() call only: a fresh one per batch
        constrain = ([_schema_processor(model, tokenizer, json_schema)]
                     if json_schema is not None else None)
        with torch.no_grad():
            out = model.generate(**enc, max_new_tokens=max_new_tokens, do_sample=False,
                                 pad_token_id=tokenizer.pad_token_id,
                                 logits_processor=constrain)
        generated = out[:, enc["input_ids"].shape[1]:]
        new_tokens += int((generated != tokenizer.pad_token_id).sum())
        for i, ids in zip(batch, generated):
            answers[i] = tokenizer.decode(ids, skip_special_tokens=True).strip()
    if show:
        seconds = time.perf_counter() - start
        print(f"generated {len(texts)} answers in {seconds:.1f} s "
              f"({new_tokens / max(seconds, 1e-9):.0f} new tokens/s)")
    return answers


def generate(model, tokenizer, rows: list[dict], max_new_tokens: int = 64,
             batch_size: int = 16, show: bool = True,
             json_schema: dict | None = None) -> list[str]:
    """Greedy answers for chat rows (their final assistant turn, if any, is held back);
    `json_schema` constrains them as in `generate_from_messages` (chapters 00, 06)."""
    return generate_from_messages(model, tokenizer, [prompt_messages(r) for r in rows],
                                  max_new_tokens=max_new_tokens, batch_size=batch_size,
                                  show=show, json_schema=json_schema)


@dataclass
class Parting:
    """Where two greedy answers to one prompt part: the first token they differ at, each
    answer's token there, and how far apart the scoring model put the two (logits)."""
    position: int  # tokens of answer both share before it
    ours: str
    theirs: str
    logit_gap: float  # ours' logit minus theirs' under `model`: small = a near tie

    def __str__(self) -> str:
        return (f"part after {self.position} tokens: {self.ours!r} vs {self.theirs!r}, "
                f"{self.logit_gap:.3f} logits apart")


def parting(model, tokenizer, messages: list[dict], ours: str, theirs: str) -> Parting | None:
    """Why two engines' greedy answers to `messages` differ (None if they do not): feed the
    shared start of both answers to `model` and compare its logits for the two next tokens.
    A gap near 0 means a near tie that float rounding can flip (another engine's kernels add
    in another order); a large gap means the engines are not computing the same model."""
    import torch
    a = tokenizer(ours, add_special_tokens=False)["input_ids"]
    b = tokenizer(theirs, add_special_tokens=False)["input_ids"]
    if a == b:
        return None
    shared = next((i for i, (x, y) in enumerate(zip(a, b)) if x != y), min(len(a), len(b)))
    end = tokenizer.eos_token_id  # an answer that stops here ended with its end-of-text token
    next_ours, next_theirs = (a[shared] if shared < len(a) else end), (
        b[shared] if shared < len(b) else end)
    text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    prompt = tokenizer(text, add_special_tokens=False)["input_ids"]
    with torch.no_grad():
        logits = model(torch.tensor([prompt + a[:shared]], device=model.device)).logits[0, -1]
    return Parting(shared, tokenizer.decode([next_ours]), tokenizer.decode([next_theirs]),
                   float(logits[next_ours] - logits[next_theirs]))


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
    """A rate over rows with its 95% confidence interval (Wilson score, unless made otherwise)."""

    hits: int
    n: int
    low: float
    high: float

    @property
    def value(self) -> float:
        return self.hits / self.n if self.n else 0.0

    def __str__(self) -> str:
        return f"{self.hits}/{self.n} = {self.value:.0%} [{self.low:.0%}, {self.high:.0%}]"


def _check_counts(hits: int, n: int, level: float) -> None:
    if not (0 <= hits <= n) or int(hits) != hits or int(n) != n:
        raise ValueError(f"hits={hits!r}, n={n!r}: need whole numbers with 0 <= hits <= n")
    if not 0 < level < 1:
        raise ValueError(f"level={level!r}: a confidence level lies strictly between 0 and 1")


def wilson_interval(hits: int, n: int, level: float = 0.95) -> tuple[float, float]:
    """Wilson score interval of a rate: the rates p whose normal test would not reject
    hits/n. Unlike the plain "p +- 1.96 sd" interval it never leaves [0, 1] and is not
    zero-width at 0/n or n/n (60/60 gives [94%, 100%]). n = 0 says nothing: [0, 1]."""
    _check_counts(hits, n, level)
    if n == 0:
        return (0.0, 1.0)
    z = statistics.NormalDist().inv_cdf(1 - (1 - level) / 2)
    p = hits / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    # at 0/n and n/n the formula gives the bound exactly; keep rounding from crossing it
    return (0.0 if hits == 0 else max(0.0, centre - half),
            1.0 if hits == n else min(1.0, centre + half))


def _binomial_tail(k: int, n: int, p: float, upper: bool) -> float:
    """P(X >= k) if upper else P(X <= k), for X ~ Binomial(n, p), summed in log space."""
    ks = range(k, n + 1) if upper else range(0, k + 1)
    if p <= 0.0:
        return 1.0 if (0 in ks) else 0.0
    if p >= 1.0:
        return 1.0 if (n in ks) else 0.0
    logs = [math.lgamma(n + 1) - math.lgamma(i + 1) - math.lgamma(n - i + 1)
            + i * math.log(p) + (n - i) * math.log1p(-p) for i in ks]
    top = max(logs)
    return min(1.0, math.exp(top) * sum(math.exp(x - top) for x in logs))


def _solve_rate(tail, target: float) -> float:
    """The p in [0, 1] at which the monotone function tail(p) crosses target (bisection)."""
    lo, hi = 0.0, 1.0
    increasing = tail(1.0) > tail(0.0)
    for _ in range(60):
        mid = (lo + hi) / 2
        if (tail(mid) < target) == increasing:
            lo = mid
        else:
            hi = mid
    return (lo + hi) / 2


def exact_interval(hits: int, n: int, level: float = 0.95) -> tuple[float, float]:
    """Clopper-Pearson ("exact") interval: the rates under which seeing hits/n or something
    more extreme has probability at least (1 - level) / 2 on each side. Wider than Wilson,
    never below its nominal coverage. n = 0 gives [0, 1]."""
    _check_counts(hits, n, level)
    if n == 0:
        return (0.0, 1.0)
    alpha = (1 - level) / 2
    low = 0.0 if hits == 0 else _solve_rate(lambda p: _binomial_tail(hits, n, p, True), alpha)
    high = 1.0 if hits == n else _solve_rate(lambda p: _binomial_tail(hits, n, p, False), alpha)
    return low, high


INTERVALS = {"wilson": wilson_interval, "exact": exact_interval}


def bootstrap_ci(per_row, n_boot: int = 2000, level: float = 0.95,
                 seed: int = 0) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean of per-row scores (rows resampled). Used for
    paired differences; for a plain rate prefer `wilson_interval`, which a bootstrap cannot
    beat at 0/n or n/n (every resample of 60/60 is 60/60)."""
    scores = np.asarray(per_row, dtype=float)
    if scores.size == 0:
        return (0.0, 0.0)
    rng = np.random.default_rng(seed)
    means = scores[rng.integers(0, scores.size, size=(n_boot, scores.size))].mean(axis=1)
    tail = (1 - level) / 2 * 100
    return float(np.percentile(means, tail)), float(np.percentile(means, 100 - tail))


def rate(per_row, method: str = "wilson", level: float = 0.95) -> Metric:
    """Summarise per-row True/False scores as a Metric: hits/n with a `method` interval
    ("wilson" or "exact", i.e. Clopper-Pearson)."""
    if method not in INTERVALS:
        raise ValueError(f"unknown interval method {method!r}; choose one of "
                         f"{', '.join(INTERVALS)}")
    flags = [bool(x) for x in per_row]
    low, high = INTERVALS[method](sum(flags), len(flags), level)
    return Metric(sum(flags), len(flags), low, high)


def holm(p_values) -> list[float]:
    """Holm-adjusted p-values, in the input order: testing several fields at once, the
    smallest p is multiplied by the number of tests, the next by one fewer, and so on (kept
    monotone, capped at 1). An adjusted p < 0.05 holds at 5% for all the tests together."""
    ps = [float(p) for p in p_values]
    if any(not 0 <= p <= 1 for p in ps):
        raise ValueError(f"p-values must lie in [0, 1], got {ps}")
    order = sorted(range(len(ps)), key=ps.__getitem__)
    adjusted, running = [0.0] * len(ps), 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (len(ps) - rank) * ps[i]))
        adjusted[i] = running
    return adjusted


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


# Chapter 04 selects its preference pairs with some rules and reports on the others as well,
# so the score it reports is not only the one it tuned for: the rules about what a reply says
# and how it is framed pick the pairs; the rules about length and punctuation are held out.
VOICE_SELECTION_RULES = ("greeting", "sign-off", "next step with a timeframe", "no banned phrase")
VOICE_HELD_OUT_RULES = ("2-4 sentences", "at most 60 words", "no exclamation mark", "no emoji")


@dataclass
class VoiceScores:
    """Per-reply house-voice scores: each rule kept or not, and all rules kept ("in voice")."""

    rules: dict[str, list[bool]]
    in_voice: list[bool]
    metrics: dict[str, Metric] = field(default_factory=dict)

    def keeps(self, rules: tuple[str, ...] | list[str]) -> list[bool]:
        """Per reply: whether it keeps every one of `rules` (names of voice_rules' checks)."""
        unknown = [r for r in rules if r not in self.rules]
        if unknown:
            raise KeyError(f"no voice rule {', '.join(map(repr, unknown))}; the rules are: "
                           f"{', '.join(self.rules)}")
        return [all(self.rules[r][i] for r in rules) for i in range(len(self.in_voice))]

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


# How a reply acknowledges the customer (data/README.md, rule 7: sorry for trouble, thanks for
# praise, plain thanks otherwise), read from its wording. Every chosen reply in data/voice/ is
# read as the mood it was written for (tests/test_evals.py checks this on the data).
_APOLOGY = re.compile(r"\b(sorry|apologi[sz]e|you're right)\b", re.I)
_PRAISE_THANKS = re.compile(r"kind words|lovely to hear|kind of you|glad you're enjoying|"
                            r"glad you like|you like the|happy to hear|great to hear", re.I)
SENTIMENTS = ("negative", "neutral", "positive")


def voice_tone(reply: str) -> str:
    """"apology", "praise" (thanks for kind words) or "plain": the acknowledgement a reply
    makes. A reply that both apologises and thanks for praise reads as "praise"."""
    if _PRAISE_THANKS.search(reply):
        return "praise"
    return "apology" if _APOLOGY.search(reply) else "plain"


def misreads(replies: list[str], sentiments: list[str]) -> list[bool]:
    """Per reply: whether it acknowledges a mood the customer did not have: thanks for kind
    words to a customer who was not praising, or an apology to one who was. (A reply with no
    acknowledgement misreads nothing: some house replies go straight to the next step.)
    `sentiments` are the rows' labels (negative, neutral, positive)."""
    if len(replies) != len(sentiments):
        raise ValueError(f"{len(replies)} replies for {len(sentiments)} sentiments: they must pair up")
    bad = [s for s in sentiments if s not in SENTIMENTS]
    if bad:
        raise ValueError(f"unknown sentiment {bad[0]!r}; expected one of {', '.join(SENTIMENTS)}")
    return [voice_tone(reply) == ("apology" if sentiment == "positive" else "praise")
            for reply, sentiment in zip(replies, sentiments)]


def reply_body(reply: str) -> str:
    """A reply without its first line (greeting) and its last (sign-off), when it has both."""
    lines = reply.strip().split("\n")
    return "\n".join(lines[1:-1]).strip() if len(lines) > 2 else reply.strip()


class VoiceJudge:
    """A second judge of the house voice that knows none of the rules: a logistic regression
    on word and word-pair TF-IDF features (scikit-learn), trained on replies labelled house
    voice (the pairs' chosen) or not (their rejected). It reads only the body (reply_body),
    so it cannot simply re-check the greeting and sign-off rules."""

    def __init__(self, pairs: list[dict], seed: int = 0):
        from sklearn.feature_extraction.text import TfidfVectorizer
        from sklearn.linear_model import LogisticRegression
        from sklearn.pipeline import make_pipeline
        if not pairs:
            raise ValueError("VoiceJudge needs preference pairs to learn from")
        texts = [reply_body(p["chosen"][-1]["content"]) for p in pairs]
        texts += [reply_body(p["rejected"][-1]["content"]) for p in pairs]
        labels = [1] * len(pairs) + [0] * len(pairs)
        self.model = make_pipeline(TfidfVectorizer(ngram_range=(1, 2), min_df=2, sublinear_tf=True),
                                   LogisticRegression(C=1.0, max_iter=1000, random_state=seed))
        self.model.fit(texts, labels)
        self.trained_on = len(texts)

    def probability(self, replies: list[str]) -> list[float]:
        """Per reply: the judge's probability that it is in the house voice."""
        return [float(p) for p in self.model.predict_proba([reply_body(r) for r in replies])[:, 1]]

    def in_voice(self, replies: list[str]) -> list[bool]:
        """Per reply: judged in the house voice (probability at least 1/2)."""
        return [p >= 0.5 for p in self.probability(replies)]


def agreement(a, b) -> float:
    """The share of rows on which two per-row True/False judgements agree."""
    a, b = [bool(x) for x in a], [bool(x) for x in b]
    if len(a) != len(b) or not a:
        raise ValueError(f"{len(a)} and {len(b)} judgements: give both for the same rows")
    return sum(x == y for x, y in zip(a, b)) / len(a)


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
class FieldTests:
    """Paired tests of B against A on several fields of the same rows, with Holm-adjusted
    p-values: with five fields tested, one p < 0.05 by luck is likely; five adjusted ones
    are not."""

    tests: dict[str, PairedTest]
    adjusted: dict[str, float]  # Holm-adjusted McNemar p-value per field

    def __str__(self) -> str:
        width = max((len(name) for name in self.tests), default=5)
        lines = [f"{'field':{width}}  {'A':>7}  {'B':>7}  {'only A':>6}  {'only B':>6}  "
                 f"{'p':>8}  {'Holm p':>8}"]
        for name, t in self.tests.items():
            lines.append(f"{name:{width}}  {t.a_hits:>3}/{t.n:<3}  {t.b_hits:>3}/{t.n:<3}  "
                         f"{t.only_a:>6}  {t.only_b:>6}  {t.p_value:>8.3g}  "
                         f"{self.adjusted[name]:>8.3g}")
        return "\n".join(lines)


def field_tests(a, b) -> FieldTests:
    """Per-field paired tests of system B against system A, Holm-corrected. `a` and `b` are
    JsonScores (their `.fields` are used) or dicts of field name -> per-row True/False, on
    the same rows in the same order."""
    fields_a = a.fields if isinstance(a, JsonScores) else dict(a)
    fields_b = b.fields if isinstance(b, JsonScores) else dict(b)
    if list(fields_a) != list(fields_b):
        raise ValueError(f"A has fields {list(fields_a)} but B has {list(fields_b)}: score "
                         f"both systems against the same references")
    tests = {name: paired_test(fields_a[name], fields_b[name]) for name in fields_a}
    adjusted = dict(zip(tests, holm([t.p_value for t in tests.values()])))
    return FieldTests(tests, adjusted)


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
