"""The prompting rungs of the ladder: instructions, few-shot examples, retrieved context.

Introduced in notebooks/00_decide.ipynb; later chapters compare every fine-tune against the
best prompt found there (`TICKET_INSTRUCTIONS` with retrieved examples).
"""

from __future__ import annotations

TICKET_INSTRUCTIONS = """\
You triage customer support tickets for Brightbrew, a shop selling coffee gear.
Read the ticket and reply with one JSON object and nothing else, with exactly these keys in order:
- "category": one of "billing", "shipping", "returns", "technical", "account"
- "priority": one of "low", "normal", "high", "urgent"
- "product": one of "grinder", "kettle", "scale", "subscription", "app", "gift_card"
- "order_id": the order number as written in the ticket (like "BB-12345"), or null if none
- "sentiment": one of "negative", "neutral", "positive"
No explanation, no code fences: only the JSON object."""


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
