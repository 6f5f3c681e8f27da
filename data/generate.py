#!/usr/bin/env python3
"""Generate the course's Brightbrew datasets (tickets, house voice, handbook) from one fixed seed.

Everything here is fictional and written for the course. The script uses the standard library
only (no network, no model), so running it again rewrites byte-identical files:

    python data/generate.py              # writes into data/
    python data/generate.py --out DIR    # writes the same files under DIR

This file holds the logic only (helpers, composing, planning, splitting, writing). The word,
phrase and fact tables it draws from live next to it in `data/tables/`: `tickets.py`, `voice.py`,
`handbook.py` and `probes.py`.

Tickets and house-voice customers are split by scenario, not by row: `HELD_OUT` in
`tables/tickets.py` names the validation and test scenarios, and no training row (nor any row
of the unlabeled pool, `tickets/pool.jsonl`) comes from them.

`data/probes/probes.jsonl` is not written here: `data/make_probes.py` filters the probe
candidates with the real model.
"""

from __future__ import annotations

import argparse
import json
import re
import random
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

SEED = 20261124
DATA_DIR = Path(__file__).resolve().parent

# The tables are plain modules in data/tables/. Run as a script, data/ is already on sys.path;
# this also lets the file be imported from elsewhere without installing anything.
if str(DATA_DIR) not in sys.path:
    sys.path.insert(0, str(DATA_DIR))

from tables.handbook import FACTS, HANDBOOK_INTRO, SECTIONS, Fact  # noqa: E402
from tables.probes import PROBES  # noqa: E402
from tables.tickets import (  # noqa: E402
    ANGRY_ASKS, ASKS, CONTEXT, DETAILS, EXTRAS, FIRST_NAMES, FRUSTRATION, FRUSTRATION_QUESTION,
    FRUSTRATION_URGENT, GREETINGS, HELD_OUT, INTRO, LAST_NAMES, MOOD_EXTRAS, ONE_LINE_SIGNOFF,
    ORDER_BOTTOM, ORDER_INLINE, ORDER_TOP, POLITE_OPEN, PRAISE_GENERIC, PRAISE_PRODUCT,
    PRODUCT_NAMES, PROTECTED, SCENARIOS, SIGNOFF_ANON, SIGNOFF_NAMED, Scenario,
)
from tables.voice import (  # noqa: E402
    ACKS, BANNED, CASUAL_CLOSE, CASUAL_CORE, CASUAL_OPEN, CASUAL_OPEN_ANON, CASUAL_REACT, CLOSERS,
    CURT, CURT_CLOSE, CURT_OPEN, CURT_OPEN_ANON, DISPLAY, GENERIC_CLOSE, GENERIC_END, GENERIC_FIRST,
    GENERIC_MIDDLE, GENERIC_OPEN, GENERIC_TOPIC, SIGN_OFF,
)

TICKET_SYSTEM = "Triage the support ticket. Reply with the JSON triage record only."
VOICE_SYSTEM = "You are Brightbrew Support. Reply to the customer in the Brightbrew house voice."

CATEGORIES = ("billing", "shipping", "returns", "technical", "account")
PRIORITIES = ("low", "normal", "high", "urgent")
PRODUCTS = ("grinder", "kettle", "scale", "subscription", "app", "gift_card")
SENTIMENTS = ("negative", "neutral", "positive")


def rng_for(name: str) -> random.Random:
    """A separate random stream per dataset, so editing one dataset does not reshuffle the others."""
    # str seeds are hashed with SHA-512 by `random`, so this is stable across runs and platforms.
    return random.Random(f"{SEED}-{name}")


# ============================================================================ template helpers

CHOICE = re.compile(r"\{([^{}]*\|[^{}]*)\}")  # "{a|b|c}" picks one option


def pick_choices(template: str, rng: random.Random) -> str:
    """Replace every `{a|b|c}` group by one of its options."""
    return CHOICE.sub(lambda m: rng.choice(m.group(1).split("|")), template)


def cap_sentences(text: str) -> str:
    """Capitalise the first letter of the text and of every sentence in it."""
    text = text[:1].upper() + text[1:]
    return re.sub(r"([.?!]\s+)([a-z])", lambda m: m.group(1) + m.group(2).upper(), text)


def word_count(text: str) -> int:
    """Words, counted as white-space separated tokens."""
    return len(text.split())


# ============================================================================ tickets: composing

# Checks on every generated ticket (check_ticket_text).
NON_URGENT_FORBIDDEN = re.compile(r"\b(asap|today|tonight|urgent(ly)?)\b", re.I)
ORDER_ID_PATTERN = re.compile(r"\bBB-\d{5}\b")


def pool(table: dict[str, list[str]], sentiment: str) -> list[str]:
    """The shared options of a phrase table plus those for one sentiment."""
    return table["any"] + table.get(sentiment, [])


def add_typos(text: str, rng: random.Random, rate: float, keep: frozenset = frozenset()) -> str:
    """Swap or drop one letter in some longer plain words (never in ids, numbers or cue words)."""
    pieces = re.split(r"(\s+)", text)
    for i, word in enumerate(pieces):
        core = word.rstrip(".,!?")
        if (len(core) < 5 or not core.isalpha() or core.lower() in PROTECTED | keep
                or rng.random() >= rate):
            continue
        j = rng.randrange(1, len(core) - 1)  # keep the first letter: words stay recognisable
        if rng.random() < 0.5:
            core = core[:j] + core[j + 1] + core[j] + core[j + 2:]
        else:
            core = core[:j] + core[j + 1:]
        pieces[i] = core + word[len(word.rstrip(".,!?")):]
    return "".join(pieces)


class Namer:
    """Expands [P] / [N] product placeholders: a full name first, short names after that."""

    def __init__(self, product: str, rng: random.Random):
        self.names, self.rng, self.used = PRODUCT_NAMES[product], rng, False

    def __call__(self, text: str) -> str:
        """Replace the placeholders in one sentence, left to right."""
        def one(m: re.Match) -> str:
            kind = "owned" if m.group(1) == "P" else "shop"
            name = self.rng.choice(self.names["short" if self.used else kind])
            self.used = True
            return name
        return re.sub(r"\[([PN])\]", one, text)


@dataclass
class Message:
    """A generated customer message and the facts behind it."""

    text: str
    scenario: Scenario
    product: str
    sentiment: str
    order_id: str | None
    first_name: str | None


def tone_sentence(sc: Scenario, product: str, sentiment: str, rng: random.Random
                  ) -> tuple[str | None, bool]:
    """The sentence that carries the sentiment (None when neutral), and whether it comes first."""
    if sentiment == "positive":
        own = PRAISE_PRODUCT[product] if sc.owned else []
        tone = rng.choice(own if own and rng.random() < 0.6 else PRAISE_GENERIC)
        return tone, rng.random() < 0.7
    if sentiment == "negative":
        options = (FRUSTRATION_QUESTION if sc.priority == "low" else
                   FRUSTRATION + (FRUSTRATION_URGENT if sc.priority == "urgent" else []))
        tone = rng.choice(options)
        return tone, rng.random() < 0.45
    return None, False


def body_sentences(sc: Scenario, product: str, sentiment: str, order_at: str | None,
                   order_id: str | None, intro: str | None, rng: random.Random
                   ) -> tuple[list[str], int | None]:
    """The body's sentence templates in reading order, and the position of the tone sentence."""
    tone, tone_first = tone_sentence(sc, product, sentiment, rng)
    parts: list[str] = []
    if rng.random() < 0.12:
        parts.append(rng.choice(POLITE_OPEN))
    if intro:
        parts.append(intro)
    tone_at = None
    if tone and tone_first:
        tone_at = len(parts)
        parts.append(tone)
    if sc.context and CONTEXT[product] and rng.random() < 0.45:
        parts.append(rng.choice(CONTEXT[product]))
    parts.append(rng.choice(sc.texts))
    # Extra, label-neutral sentences: most tickets have none, some have a few.
    extras = EXTRAS + (DETAILS[sc.category] if sc.priority != "low" else [])
    parts += rng.sample(extras, rng.choices([0, 1, 2, 3], weights=[55, 25, 12, 8])[0])
    moods = MOOD_EXTRAS[sentiment] if sc.priority != "low" else []
    if moods and rng.random() < 0.3:
        parts += rng.sample(moods, rng.choice([1, 1, 2]))
    if order_at == "inline":
        parts.append(rng.choice(ORDER_INLINE).format(oid=order_id))
    if rng.random() < (0.45 if sc.priority == "low" else 0.6):
        angry = ANGRY_ASKS if sentiment == "negative" and sc.priority == "high" else []
        parts.append(rng.choice(ASKS[sc.priority] + angry))
    if tone and not tone_first:
        tone_at = len(parts)
        parts.append(tone)
    return parts, tone_at


def sign_off(sentiment: str, want_name: bool, intro: bool, one_line: bool,
             first: str, full: str, rng: random.Random) -> str | None:
    """The closing line(s): named when the customer gives a name, sometimes anonymous."""
    if want_name and not intro:
        signoff = rng.choice(ONE_LINE_SIGNOFF if one_line else pool(SIGNOFF_NAMED, sentiment))
    elif not want_name and rng.random() < 0.3 and pool(SIGNOFF_ANON, sentiment):
        signoff = rng.choice(pool(SIGNOFF_ANON, sentiment))
    else:
        return None
    return signoff.format(first=first, full=full)


def lay_out(greeting: str | None, parts: list[str], signoff: str | None, one_line: bool,
            rng: random.Random) -> str:
    """Join greeting, body and sign-off: on one line, or as short paragraphs."""
    if one_line:
        return " ".join(x for x in [greeting, *parts, signoff] if x)
    body = " ".join(parts)
    if len(parts) >= 4 and rng.random() < 0.35:  # sometimes two short paragraphs
        cut = rng.randrange(2, len(parts))
        body = " ".join(parts[:cut]) + "\n\n" + " ".join(parts[cut:])
    joiner = " " if rng.random() < 0.3 else "\n\n"
    return (greeting + joiner if greeting else "") + body + ("\n\n" + signoff if signoff else "")


def restyle(text: str, sentiment: str, order_id: str | None, keep: frozenset,
            rng: random.Random) -> str:
    """Casing and typos, as real customers write; the order id is kept verbatim in every case."""
    style = rng.random()
    if style < 0.10:
        text = text.lower()
    elif style < 0.13 and sentiment == "negative":
        text = text.upper()
    if rng.random() < 0.3:
        text = add_typos(text, rng, rate=0.06, keep=keep)
    if order_id:
        text = re.sub(re.escape(order_id), order_id, text, flags=re.I)
    return text


def compose_message(sc: Scenario, product: str, sentiment: str, order_id: str | None,
                    rng: random.Random, want_name: bool | None = None) -> Message:
    """Write one customer message for a scenario; the labels follow from what it says."""
    namer = Namer(product, rng)
    first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
    full = f"{first} {last}"
    if want_name is None:
        want_name = rng.random() < 0.45
    intro = None
    if want_name and rng.random() < 0.15:
        intro = rng.choice(INTRO).format(first=first, full=full)
    order_at = rng.choice(["inline"] * 7 + ["top"] * 2 + ["bottom"]) if order_id else None
    parts, tone_at = body_sentences(sc, product, sentiment, order_at, order_id, intro, rng)
    # Expand choices and product names in reading order: the first mention gets a full name.
    parts = [cap_sentences(namer(pick_choices(p, rng))) for p in parts]
    if sentiment == "negative" and rng.random() < 0.3:  # shouting the tone sentence
        parts[tone_at] = parts[tone_at].upper()
    one_line = rng.random() < 0.25
    greeting = rng.choice(pool(GREETINGS, sentiment)) if rng.random() < 0.55 else None
    signoff = sign_off(sentiment, want_name, bool(intro), one_line, first, full, rng)
    text = lay_out(greeting, parts, signoff, one_line, rng)
    if order_at == "top":
        text = rng.choice(ORDER_TOP).format(oid=order_id) + "\n\n" + text
    elif order_at == "bottom":
        text += "\n\n" + rng.choice(ORDER_BOTTOM).format(oid=order_id)
    text = restyle(text, sentiment, order_id, frozenset({first.lower(), last.lower()}), rng)
    return Message(text, sc, product, sentiment, order_id, first if want_name else None)


# ============================================================================ tickets: the set

# Rows per split, 20% per category in each. Every split is planned to the same label shares
# (PRIORITY_PLAN, SENTIMENT_PLAN, PRODUCT_PLAN), but from its own scenarios (HELD_OUT).
TICKET_SPLITS = {"train": 600, "val": 100, "test": 200}
POOL_SIZE = 500                 # unlabeled tickets from training scenarios (tickets/pool.jsonl)
# Shares per 128 tickets of a category (the v1 set had 128 per category).
PRIORITY_PLAN = {"low": 28, "normal": 42, "high": 40, "urgent": 18}
# Sentiment given priority: praise never comes with a high/urgent problem.
SENTIMENT_PLAN = {
    "low": {"positive": 17, "neutral": 9, "negative": 2},
    "normal": {"positive": 13, "neutral": 17, "negative": 12},
    "high": {"positive": 0, "neutral": 14, "negative": 26},
    "urgent": {"positive": 0, "neutral": 6, "negative": 12},
}
PRODUCT_PLAN = {
    "billing": {"subscription": 40, "gift_card": 30, "grinder": 20, "kettle": 19, "scale": 19},
    "shipping": {"grinder": 30, "kettle": 30, "scale": 30, "subscription": 24, "gift_card": 14},
    "returns": {"grinder": 30, "kettle": 30, "scale": 30, "subscription": 28, "gift_card": 10},
    "technical": {"grinder": 30, "kettle": 30, "scale": 30, "app": 38},
    "account": {"app": 70, "subscription": 30, "gift_card": 28},
}
NEAR_DUPLICATE = 0.8            # Jaccard over word 3-grams, as course_utils.data.near_duplicates


def scenario_ids() -> dict[Scenario, str]:
    """Each scenario's stable id: "<category>-<priority>-<NN>", NN its place in its cell."""
    ids, seen = {}, Counter()
    for sc in SCENARIOS:
        seen[(sc.category, sc.priority)] += 1
        assert sc not in ids, sc  # two identical scenarios would share an id
        ids[sc] = f"{sc.category}-{sc.priority}-{seen[(sc.category, sc.priority)]:02d}"
    return ids


SCENARIO_IDS = scenario_ids()


def split_of(sc: Scenario) -> str:
    """The split a scenario belongs to: "val" or "test" when HELD_OUT names it, else "train"."""
    sid = SCENARIO_IDS[sc]
    return next((name for name, held in HELD_OUT.items() if sid in held), "train")


def check_held_out() -> None:
    """HELD_OUT names real scenarios, once each; every cell keeps scenarios in every split."""
    named = [sid for held in HELD_OUT.values() for sid in held]
    assert len(named) == len(set(named)), "a scenario is held out twice"
    assert set(named) <= set(SCENARIO_IDS.values()), set(named) - set(SCENARIO_IDS.values())
    for c in CATEGORIES:
        for p in PRIORITIES:
            cell = [sc for sc in SCENARIOS if (sc.category, sc.priority) == (c, p)]
            for name in ("train", "val", "test"):
                assert any(split_of(sc) == name for sc in cell), (c, p, name)


def apportion(plan: dict[str, int], size: int) -> dict[str, int]:
    """Split `size` in the proportions of `plan` (largest remainder; ties go to earlier keys)."""
    total = sum(plan.values())
    counts = {k: v * size // total for k, v in plan.items()}
    keys = list(plan)
    by_remainder = sorted(keys, key=lambda k: (-(plan[k] * size % total), keys.index(k)))
    for k in by_remainder[:size - sum(counts.values())]:
        counts[k] += 1
    return counts


def plan_split(split: str, per_category: int, rng: random.Random, need_reply: bool = False
               ) -> list[tuple[str, Scenario, str, str]]:
    """(category, scenario, product, sentiment) for every row of one split, from the split's own
    scenarios, balanced to the plans: priorities per category and sentiments per priority
    exactly, products as close to their quota as the split's scenarios allow."""
    priorities = apportion(PRIORITY_PLAN, per_category)
    slots: dict[str, list[tuple[str, str]]] = {c: [] for c in CATEGORIES}
    for priority in PRIORITIES:
        total = priorities[priority] * len(CATEGORIES)
        sentiments = [s for s, k in apportion(SENTIMENT_PLAN[priority], total).items()
                      for _ in range(k)]
        rng.shuffle(sentiments)
        for c in CATEGORIES:
            slots[c] += [(priority, sentiments.pop()) for _ in range(priorities[priority])]
    out = []
    for category in CATEGORIES:
        cells = {p: [s for s in SCENARIOS if s.category == category and s.priority == p
                     and split_of(s) == split and (s.reply or not need_reply)]
                 for p in PRIORITIES}
        assert all(cells.values()), (split, category, need_reply)
        products = {p: sorted({x for s in cell for x in s.products}) for p, cell in cells.items()}
        quota = apportion(PRODUCT_PLAN[category], per_category)
        rng.shuffle(slots[category])
        # The most constrained slots first, so they get their products before quotas run out.
        slots[category].sort(key=lambda slot: len(products[slot[0]]))
        # Every scenario gets at least half its fair share of its cell's rows.
        size = Counter(priority for priority, _ in slots[category])
        floor = {p: size[p] // (2 * len(cell)) for p, cell in cells.items()}
        used: Counter = Counter()
        for priority, sentiment in slots[category]:
            short = [s for s in cells[priority] if used[s] < floor[priority]]
            options = sorted({x for s in short for x in s.products}) or products[priority]
            # Greedy: the product furthest below its quota (ties broken at random).
            product = max(options, key=lambda x: (quota.get(x, 0), rng.random()))
            quota[product] = quota.get(product, 0) - 1
            # The least-used scenario for this product, so every template gets its turn.
            fits = [s for s in (short or cells[priority]) if product in s.products]
            sc = min(fits, key=lambda s: (used[s], rng.random()))
            used[sc] += 1
            out.append((category, sc, product, sentiment))
    return out


def shingles(text: str) -> frozenset:
    """Word 3-grams of a text, case folded (a text under 3 words is one shingle)."""
    words = re.findall(r"\w+", text.casefold())
    return frozenset(tuple(words[i:i + 3]) for i in range(max(len(words) - 2, 1)))


class Texts:
    """The texts written so far: refuses a repeat, or a near copy of a same-scenario text."""

    def __init__(self):
        self.seen: set[str] = set()
        self.by_scenario: dict[Scenario, list[frozenset]] = {}

    def add(self, text: str, sc: Scenario) -> bool:
        """Keep the text and return True, unless it repeats or nearly repeats one kept before."""
        grams = shingles(text)
        kept = self.by_scenario.setdefault(sc, [])
        if text in self.seen or any(len(grams & k) / len(grams | k) >= NEAR_DUPLICATE
                                    for k in kept):
            return False
        self.seen.add(text)
        kept.append(grams)
        return True


def write_ticket(sc: Scenario, product: str, sentiment: str, order_ids: list[str],
                 texts: Texts, rng: random.Random) -> tuple[str, str | None]:
    """A new ticket text for a planned slot (redrawn until it is not a near copy)."""
    for _ in range(1000):
        order_id = order_ids.pop() if rng.random() < sc.order else None
        msg = compose_message(sc, product, sentiment, order_id, rng)
        if texts.add(msg.text, sc):
            check_ticket_text(msg.text, sc.priority, order_id)
            return msg.text, order_id
    raise RuntimeError(f"no new text for {SCENARIO_IDS[sc]}: the scenario needs more variety")


def triage_record(category: str, priority: str, product: str, order_id: str | None,
                  sentiment: str) -> str:
    """The assistant answer: the JSON record, keys in the fixed order."""
    record = {"category": category, "priority": priority, "product": product,
              "order_id": order_id, "sentiment": sentiment}
    return json.dumps(record)


def make_tickets() -> tuple[dict[str, list[dict]], Texts, set[str]]:
    """The triage tickets, split by scenario: (splits, the texts written, the order ids used)."""
    check_held_out()
    rng = rng_for("tickets")
    order_ids = [f"BB-{n}" for n in rng.sample(range(10000, 100000), 3000)]
    plan = [(name, *slot) for name, size in TICKET_SPLITS.items()
            for slot in plan_split(name, size // len(CATEGORIES), rng)]
    rng.shuffle(plan)  # ids reveal neither the split nor the category
    splits: dict[str, list[dict]] = {name: [] for name in TICKET_SPLITS}
    texts = Texts()
    for n, (name, category, sc, product, sentiment) in enumerate(plan, start=1):
        text, order_id = write_ticket(sc, product, sentiment, order_ids, texts, rng)
        splits[name].append({
            "id": f"t{n:04d}", "label": category, "scenario": SCENARIO_IDS[sc],
            "messages": [
                {"role": "system", "content": TICKET_SYSTEM},
                {"role": "user", "content": text},
                {"role": "assistant", "content": triage_record(
                    category, sc.priority, product, order_id, sentiment)},
            ],
        })
    used = set(ORDER_ID_PATTERN.findall(" ".join(texts.seen)))
    return splits, texts, used


def make_pool(texts: Texts, used_order_ids: set[str]) -> list[dict]:
    """Unlabeled tickets from training scenarios only, none repeating a ticket: new "production"
    tickets for chapter 05's teacher to label (system and user turns, no answer)."""
    rng = rng_for("pool")
    order_ids = [f"BB-{n}" for n in rng.sample(range(10000, 100000), 3000)
                 if f"BB-{n}" not in used_order_ids]
    plan = plan_split("train", POOL_SIZE // len(CATEGORIES), rng)
    rng.shuffle(plan)
    rows = []
    for n, (_, sc, product, sentiment) in enumerate(plan, start=1):
        text, _ = write_ticket(sc, product, sentiment, order_ids, texts, rng)
        rows.append({"id": f"u{n:04d}", "scenario": SCENARIO_IDS[sc],
                     "messages": [{"role": "system", "content": TICKET_SYSTEM},
                                  {"role": "user", "content": text}]})
    return rows


def check_ticket_text(text: str, priority: str, order_id: str | None) -> None:
    """Fail fast if a generated text contradicts its labels."""
    found = ORDER_ID_PATTERN.findall(text)
    assert found == ([order_id] if order_id else []), (text, order_id)
    if priority != "urgent":
        assert not NON_URGENT_FORBIDDEN.search(text), text


def label_counts(rows: list[dict]) -> dict[str, Counter]:
    """Counts of every record key's values (order_id: present or not) over ticket rows."""
    records = [json.loads(r["messages"][2]["content"]) for r in rows]
    counts = {key: Counter(r[key] for r in records)
              for key in ("category", "priority", "product", "sentiment")}
    counts["order_id"] = Counter("present" if r["order_id"] else "null" for r in records)
    return counts


# ============================================================================ house voice

# Customers per split, 20% per category; each split's customers write about its own scenarios
# (HELD_OUT), like the tickets, so the voice test asks for replies to problems never trained on.
VOICE_SPLITS = {"train": 240, "val": 30, "test": 100}
# The house-voice rules (SIGN_OFF and BANNED are in tables/voice.py).
# "One concrete next step with a timeframe": the reply must name when something happens.
TIMEFRAME = re.compile(
    r"\bwithin (\d+( to \d+)?|one|two|three|a few) (working |business )?(minutes?|hours?|days?|weeks?)\b"
    r"|\b(today|tomorrow)\b|\bby (Monday|Tuesday|Wednesday|Thursday|Friday|Saturday)\b", re.I)
MAX_BODY_WORDS = 60


def voice_problems(reply: str) -> list[str]:
    """The house-voice rules a reply breaks (empty list: it follows them all)."""
    problems = []
    lines = reply.split("\n")
    if not re.fullmatch(r"Hi ([A-Z][a-z'-]+|there),", lines[0]):
        problems.append("greeting")
    if lines[-1] != SIGN_OFF:
        problems.append("sign-off")
    body = "\n".join(lines[1:-1]).strip()
    sentences = [s for s in re.split(r"(?<=[.?!])\s+", body) if s]
    if not 2 <= len(sentences) <= 4:
        problems.append("sentence count")
    if word_count(body) > MAX_BODY_WORDS:
        problems.append("too long")
    if "!" in reply:
        problems.append("exclamation mark")
    if any(b in reply.lower() for b in BANNED):
        problems.append("banned phrase")
    if not TIMEFRAME.search(body):
        problems.append("no timeframe")
    if not reply.isascii() and any(ord(c) > 0x2000 and c != "—" for c in reply):
        problems.append("emoji or symbol")
    return problems


def house_reply(msg: Message, rng: random.Random) -> str:
    """The chosen reply: greeting, 2-4 short sentences with a dated next step, sign-off."""
    sc = msg.scenario
    if msg.sentiment == "negative":
        acks = ACKS["negative_low" if sc.priority == "low" else "negative"]
    elif msg.sentiment == "positive":
        acks = ACKS["positive"] + (ACKS["positive_owned"] if sc.owned and sc.priority == "low" else [])
    else:
        acks = ACKS["neutral"]
    core = pick_choices(rng.choice(sc.reply), rng)
    if "<prod>" in core:  # name the product once, not in two sentences running
        acks = [a for a in acks if "<prod>" not in a]
    sentences = [rng.choice(acks)] if rng.random() < (0.6 if msg.sentiment == "neutral" else 0.9) else []
    sentences.append(core)
    if rng.random() < 0.35:
        sentences.append(rng.choice(CLOSERS))
    body = " ".join(sentences).replace("<prod>", DISPLAY[msg.product])
    if len(re.split(r"(?<=[.?])\s+", body)) < 2:
        body += " " + rng.choice(CLOSERS)
    while word_count(body) > MAX_BODY_WORDS or len(re.split(r"(?<=[.?])\s+", body)) > 4:
        body = " ".join(re.split(r"(?<=[.?])\s+", body)[:-1])  # drop the closing sentence
    greeting = f"Hi {msg.first_name}," if msg.first_name else "Hi there,"
    reply = f"{greeting}\n\n{body}\n\n{SIGN_OFF}"
    assert not voice_problems(reply), (reply, voice_problems(reply))
    return reply


def rejected_reply(msg: Message, kind: str, rng: random.Random) -> str:
    """A reply that breaks the house voice: stiff boilerplate, or too casual / curt."""
    first = msg.first_name or "Customer"
    if kind == "generic":
        opener = rng.choice(GENERIC_OPEN if msg.first_name else GENERIC_OPEN[:-1])
        if rng.random() < 0.25:
            opener = f"Hi {msg.first_name}," if msg.first_name else "Hi there,"
        topic = GENERIC_TOPIC[msg.scenario.category]
        body = [rng.choice(GENERIC_FIRST).format(topic=topic),
                *rng.sample(GENERIC_MIDDLE, rng.randint(3, 5)), rng.choice(GENERIC_END)]
        text = (opener.format(first=first) + "\n\n" + " ".join(body) + "\n\n"
                + rng.choice(GENERIC_CLOSE))
    elif rng.random() < 0.6:  # off-brand: far too casual
        opener = rng.choice(CASUAL_OPEN if msg.first_name else CASUAL_OPEN_ANON)
        core = CASUAL_CORE[msg.scenario.category] + CASUAL_CORE["any"]
        body = [rng.choice(CASUAL_REACT[msg.sentiment]), rng.choice(core)]
        text = (opener.format(first=first) + " " + " ".join(body) + "\n\n"
                + rng.choice(CASUAL_CLOSE))
    else:  # off-brand: curt and dismissive
        opener = rng.choice(CURT_OPEN if msg.first_name else CURT_OPEN_ANON)
        body = " ".join(rng.sample(CURT, rng.randint(1, 2)))
        close = rng.choice(CURT_CLOSE)
        text = "\n\n".join(x for x in [opener.format(first=first), body, close] if x)
    text = text.replace("<prod>", DISPLAY[msg.product])
    assert voice_problems(text), text  # every rejected reply must break a rule
    return text


def make_voice() -> dict[str, list[dict]]:
    """Customer messages, each with a house-voice reply and an off-voice one, split by scenario."""
    rng = rng_for("voice")
    plan = []
    for name, size in VOICE_SPLITS.items():
        part = plan_split(name, size // len(CATEGORIES), rng, need_reply=True)
        kinds = (["generic", "off_brand"] * size)[:size]  # half and half in every split
        rng.shuffle(kinds)
        plan += [(name, *slot, kind) for slot, kind in zip(part, kinds)]
    rng.shuffle(plan)
    order_ids = [f"BB-{n}" for n in rng.sample(range(10000, 100000), 1500)]
    splits: dict[str, list[dict]] = {name: [] for name in VOICE_SPLITS}
    texts = Texts()
    for n, (name, _, sc, product, sentiment, kind) in enumerate(plan, start=1):
        while True:
            order_id = order_ids.pop() if rng.random() < sc.order else None
            msg = compose_message(sc, product, sentiment, order_id, rng,
                                  want_name=rng.random() < 0.7)
            if texts.add(msg.text, sc):
                break
        prompt = [{"role": "system", "content": VOICE_SYSTEM}, {"role": "user", "content": msg.text}]
        splits[name].append({
            "id": f"v{n:03d}", "scenario": SCENARIO_IDS[sc], "sentiment": sentiment,
            "prompt": prompt,
            "chosen": [{"role": "assistant", "content": house_reply(msg, rng)}],
            "rejected": [{"role": "assistant", "content": rejected_reply(msg, kind, rng)}],
            "rejected_kind": kind,
        })
    return splits


def sft_row(pair: dict) -> dict:
    """The SFT view of a preference pair: the prompt followed by the chosen reply."""
    return {"id": pair["id"], "scenario": pair["scenario"], "sentiment": pair["sentiment"],
            "messages": pair["prompt"] + pair["chosen"]}


# ============================================================================ handbook

def fact_value(fact: Fact, version: int) -> str:
    """The fact's value as written in handbook version 1 or 2."""
    return fact.value_v2 if version == 2 and fact.value_v2 else fact.value


def handbook_sections(version: int) -> list[dict]:
    """The handbook's sections with the values of one version filled in."""
    facts = {f.id: f for f in FACTS}
    out = []
    for sid, title, template in SECTIONS:
        text = re.sub(r"\{([a-z_]+\.[a-z_]+)\}",
                      lambda m: fact_value(facts[m.group(1)], version), template)
        assert 60 <= word_count(text) <= 150, (sid, word_count(text))
        out.append({"id": sid, "title": title, "text": text})
    return out


def handbook_markdown(sections: list[dict], version: int) -> str:
    """The handbook as one Markdown file: a title, an intro line, one `## ` section each."""
    parts = ["# Brightbrew Handbook", HANDBOOK_INTRO[version]]
    parts += [f"## {s['title']}\n\n{s['text']}" for s in sections]
    return "\n\n".join(parts) + "\n"


def question_row(qid: str, fact: Fact, question: str, version: int = 1) -> dict:
    """A handbook question with its reference answer and accepted answer strings."""
    value = fact_value(fact, version)
    row = {"id": qid, "section": fact.id.split(".")[0], "fact": fact.id, "seen_fact": fact.seen,
           "accept": list(fact.accept_v2 if version == 2 else fact.accept),
           "messages": [{"role": "user", "content": question},
                        {"role": "assistant", "content": fact.answer.format(v=value)}]}
    if version == 2:
        row["old_accept"] = list(fact.accept)
    return row


def make_handbook() -> dict[str, object]:
    """Handbook v1 and v2 (sections + Markdown) and the train/test/changed questions."""
    rng = rng_for("handbook")
    train, test, changed = [], [], []
    n = 0
    for fact in FACTS:
        # Seen facts: one of the three paraphrases (chosen at random) is held out for test.
        held_out = rng.randrange(len(fact.questions)) if fact.seen else None
        for i, question in enumerate(fact.questions):
            n += 1
            row = question_row(f"h{n:03d}", fact, question)
            (train if fact.seen and i != held_out else test).append(row)
    for i, fact in enumerate([f for f in FACTS if f.value_v2], start=1):
        changed.append(question_row(f"hc{i:02d}", fact, fact.changed_question, version=2))
    v1, v2 = handbook_sections(1), handbook_sections(2)
    return {"handbook.md": handbook_markdown(v1, 1), "sections.jsonl": v1,
            "handbook_v2.md": handbook_markdown(v2, 2), "sections_v2.jsonl": v2,
            "questions_train.jsonl": train, "questions_test.jsonl": test,
            "questions_changed.jsonl": changed}


# ============================================================================ probes

def make_probe_candidates() -> list[dict]:
    """The probe candidates in a fixed order; make_probes.py filters them with the model."""
    return [{"id": f"p{i:03d}", "accept": accept,
             "messages": [{"role": "user", "content": q}, {"role": "assistant", "content": a}]}
            for i, (q, accept, a) in enumerate(PROBES, start=1)]


# ============================================================================ writing

def jsonl(rows: list[dict]) -> str:
    """Rows as JSON Lines: one object per line, UTF-8 kept readable, "\\n" line endings."""
    return "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)


def write(out: Path, rel: str, content: str | list[dict], note: str = "") -> None:
    """Write one file under `out` (JSONL for a list of rows) and print a one-line summary."""
    path = out / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    text = jsonl(content) if isinstance(content, list) else content
    with open(path, "w", encoding="utf-8", newline="\n") as f:
        f.write(text)
    size = f"{len(content)} rows" if isinstance(content, list) else f"{text.count(chr(10))} lines"
    print(f"{rel:<36} {size:>10}  {note}")


def print_label_counts(splits: dict[str, list[dict]]) -> None:
    """A table of the label counts in every ticket split (data/README.md shows the same)."""
    counts = {name: label_counts(rows) for name, rows in splits.items()}
    values = {"category": CATEGORIES, "priority": PRIORITIES, "product": PRODUCTS,
              "sentiment": SENTIMENTS, "order_id": ("present",)}
    print(f"{'tickets: labels':<24}" + "".join(f"{name:>8}" for name in splits))
    for key, names in values.items():
        for value in names:
            cells = "".join(f"{counts[n][key][value]:>8}" for n in splits)
            print(f"  {key + ' ' + value:<22}{cells}")


def main(argv: list[str] | None = None) -> None:
    """Regenerate every dataset file under --out (default: this data/ folder)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DATA_DIR, help="output folder (default: data/)")
    out = parser.parse_args(argv).out
    tickets, texts, order_ids = make_tickets()
    for name, rows in tickets.items():
        labels = Counter(r["label"] for r in rows)
        scenarios = len({r["scenario"] for r in rows})
        write(out, f"tickets/{name}.jsonl", rows,
              f"{scenarios} scenarios; " + " ".join(f"{k}={labels[k]}" for k in CATEGORIES))
    pool_rows = make_pool(texts, order_ids)
    write(out, "tickets/pool.jsonl", pool_rows,
          f"{len({r['scenario'] for r in pool_rows})} training scenarios, unlabeled")
    print_label_counts(tickets)
    voice = make_voice()
    for name, rows in voice.items():
        kinds = Counter(r["rejected_kind"] for r in rows)
        moods = Counter(r["sentiment"] for r in rows)
        write(out, f"voice/pairs_{name}.jsonl", rows,
              f"generic={kinds['generic']} off_brand={kinds['off_brand']} "
              + " ".join(f"{k}={moods[k]}" for k in SENTIMENTS))
        write(out, f"voice/sft_{name}.jsonl", [sft_row(r) for r in rows])
    for rel, content in make_handbook().items():
        note = ""
        if rel.startswith("questions") and isinstance(content, list):
            note = f"seen_fact={sum(r['seen_fact'] for r in content)}"
        write(out, f"handbook/{rel}", content, note)
    write(out, "probes/candidates.jsonl", make_probe_candidates(), "filter: data/make_probes.py")


if __name__ == "__main__":
    main()
