"""The prompting rungs of the ladder: instructions, few-shot examples, retrieved context.

Introduced in notebooks/00_decide.ipynb; later chapters compare every fine-tune against the
best prompt found there (`TICKET_INSTRUCTIONS` with retrieved examples).
"""

from __future__ import annotations

import json
import re

TICKET_INSTRUCTIONS = """\
You triage customer support tickets for Brightbrew, a shop selling coffee gear.
Read the ticket and reply with one JSON object and nothing else, with exactly these keys in order:
- "category": one of "billing", "shipping", "returns", "technical", "account"
- "priority": one of "low", "normal", "high", "urgent"
- "product": one of "grinder", "kettle", "scale", "subscription", "app", "gift_card"
- "order_id": the order number as written in the ticket (like "BB-12345"), or null if none
- "sentiment": one of "negative", "neutral", "positive"
No explanation, no code fences: only the JSON object."""

# The labelling rules of data/README.md, condensed: the "sharper prompt" of chapter 00's first
# rung spells them out, so the zero-shot model is told everything a careful reader is told.
TICKET_RULES = """How to label:
- category: billing = charges, payments, invoices, prices, discount codes; shipping = where or
  when a parcel arrives; returns = sending back, exchanges, replacing damaged or wrong items;
  technical = a product or the app not working, or how to use it; account = log-in, profile,
  email, subscription settings, gift-card balance, account security.
- priority: urgent = a safety hazard (smoke, sparks, burning smell, shock, swollen battery,
  made someone ill), charged twice or more, needed today or ASAP, or an account taken over;
  high = cannot be used at all, a lost parcel or refund, a charge that should not exist, locked
  out, the wrong item, a repeat contact about an unfixed fault; normal = a real problem that
  does not stop use, or a request to change or return something; low = a question or a
  suggestion, nothing is wrong.
- product: the one product the ticket is about.
- sentiment: positive = praises something; negative = says they are frustrated, angry or
  disappointed; neutral = neither.
- order_id: copy the BB- number exactly as written; null when the ticket has none."""

# The same record as a JSON schema, for constrained decoding (chapters 00, 06): the model can
# then only write valid records, in this key order, with these values.
TICKET_SCHEMA: dict = {
    "type": "object",
    "properties": {
        "category": {"type": "string",
                     "enum": ["billing", "shipping", "returns", "technical", "account"]},
        "priority": {"type": "string", "enum": ["low", "normal", "high", "urgent"]},
        "product": {"type": "string", "enum": ["grinder", "kettle", "scale", "subscription",
                                               "app", "gift_card"]},
        "order_id": {"anyOf": [{"type": "string", "pattern": "^BB-[0-9]{5}$"},
                               {"type": "null"}]},
        "sentiment": {"type": "string", "enum": ["negative", "neutral", "positive"]},
    },
    "required": ["category", "priority", "product", "order_id", "sentiment"],
    "additionalProperties": False,
}

ORDER_ID = re.compile(r"\bBB-\d{5}\b")  # an order number as tickets quote it


def user_text(row: dict) -> str:
    """The last user turn of a chat row (the ticket, or the question)."""
    return next(m["content"] for m in reversed(row["messages"]) if m["role"] == "user")


def as_prompt(user: str, system: str | None = None, examples: list[dict] = ()) -> list[dict]:
    """Chat messages for one rung: instructions, then worked examples, then the input.

    `examples` are chat rows whose user and assistant turns are replayed as earlier turns
    (few-shot). Retrieved text goes in with `rag.with_context`.
    """
    messages = [{"role": "system", "content": system}] if system else []
    for example in examples:
        messages += [{"role": "user", "content": user_text(example)},
                     {"role": "assistant", "content": example["messages"][-1]["content"]}]
    return messages + [{"role": "user", "content": user}]


def zero_shot_prompts(rows: list[dict], rules: bool = True) -> list[list[dict]]:
    """Chapter 00's first rung for each row: the instructions (with the labelling rules unless
    rules=False), then the ticket."""
    system = TICKET_INSTRUCTIONS + ("\n\n" + TICKET_RULES if rules else "")
    return [as_prompt(user_text(row), system=system) for row in rows]


def fixed_examples(train_rows: list[dict],
                   categories: tuple[str, ...] = ("billing", "shipping", "technical")) -> list[dict]:
    """Chapter 00's few-shot examples: the first training ticket of each category named."""
    found = {c: next((r for r in train_rows if r["label"] == c), None) for c in categories}
    missing = [c for c, row in found.items() if row is None]
    if missing:
        raise ValueError(f"no training ticket with label {', '.join(map(repr, missing))} to "
                         f"use as a few-shot example; pass rows of data/tickets/train.jsonl")
    return list(found.values())


def few_shot_prompts(rows: list[dict], train_rows: list[dict],
                     system: str = TICKET_INSTRUCTIONS) -> list[list[dict]]:
    """Chapter 00's second rung: the instructions, the same three solved tickets
    (`fixed_examples`) for every row, then the ticket."""
    shots = fixed_examples(train_rows)
    return [as_prompt(user_text(row), system=system, examples=shots) for row in rows]


def retrieved_examples_prompts(rows: list[dict], train_rows: list[dict], k: int = 3,
                               system: str = TICKET_INSTRUCTIONS) -> list[list[dict]]:
    """Chapter 00's best ticket prompt for each row: the instructions, then the k training
    tickets most similar to it (BM25 over the ticket text) as worked examples, the closest
    one last, nearest the question. Later chapters score fine-tunes against it."""
    from .rag import BM25
    index = BM25([{"text": user_text(r), "row": r} for r in train_rows])
    prompts = []
    for row in rows:
        hits = index.search(user_text(row), k=k)
        prompts.append(as_prompt(user_text(row), system=system,
                                 examples=[hit.doc["row"] for hit in reversed(hits)]))
    return prompts


def nearest_ticket_answers(rows: list[dict], train_rows: list[dict]) -> list[str]:
    """Chapter 00's no-LLM floor, reused in 06: each ticket gets the record of its most
    similar training ticket (BM25 over the ticket text), with the order id taken from its own
    text (`ORDER_ID`, first match, else null). Copying the labels of the closest solved
    ticket costs no model at all, so any model, prompted or fine-tuned, has to beat it."""
    from .evals import reference
    from .rag import BM25
    if not train_rows:
        raise ValueError("nearest_ticket_answers needs training rows to copy labels from; "
                         "pass the training split (data/tickets/train.jsonl)")
    index = BM25([{"text": user_text(r), "row": r} for r in train_rows])
    answers = []
    for row in rows:
        ticket = user_text(row)
        record = json.loads(reference(index.search(ticket, k=1)[0].doc["row"]))
        found = ORDER_ID.search(ticket)
        record["order_id"] = found.group() if found else None  # keeps the key's place
        answers.append(json.dumps(record))
    return answers


# ---------------------------------------------------------------------------- the house voice

# Chapter 04's prompt to beat: the house-voice rules of data/README.md, written out for the
# model, after the system line every voice row carries.
VOICE_RULES = """Write every reply in the Brightbrew house voice:
- First line: "Hi <first name>," with the name the customer signed with, or "Hi there," if they gave no name.
- Then a blank line and a body of 2 to 4 short sentences, at most 60 words in all.
- Start with a short acknowledgement: sorry if something went wrong, thanks if they praise us, a plain thanks otherwise.
- Then say the one concrete next step and when it happens: "within 2 working days", "within 1 hour", "today", "tomorrow" or "by Friday".
- No exclamation marks, no emoji. Never write "unfortunately", "we apologize for any inconvenience" or "valued customer".
- Last line, after a blank line: "— Brightbrew Support" (with the em dash)."""


def voice_examples(train_rows: list[dict], shots: int) -> list[dict]:
    """`shots` training chats of the house voice, cycling through the customers' moods
    (negative, neutral, positive, ...), each the first of its mood not used yet: the same
    examples for every prompt."""
    moods = ("negative", "neutral", "positive")
    chosen: list[dict] = []
    for i in range(shots):
        mood = moods[i % len(moods)]
        row = next((r for r in train_rows if r.get("sentiment") == mood and r not in chosen), None)
        if row is None:
            raise ValueError(f"no unused training reply for a {mood} customer among "
                             f"{len(train_rows)} rows; pass data/voice/sft_train.jsonl")
        chosen.append(row)
    return chosen


def voice_prompts(rows: list[dict], train_rows: list[dict], shots: int = 3,
                  rules: bool = True) -> list[list[dict]]:
    """Chapter 04's prompt rung for each voice chat row: the row's own system line (plus the
    house rules unless rules=False), `shots` house replies from training (voice_examples) as
    earlier turns, then the customer's message."""
    examples = voice_examples(train_rows, shots)
    prompts = []
    for row in rows:
        system = next(m["content"] for m in row["messages"] if m["role"] == "system")
        prompts.append(as_prompt(user_text(row), system=system + ("\n\n" + VOICE_RULES if rules else ""),
                                 examples=examples))
    return prompts
