"""course_utils.prompts: the ticket schema and the nearest-ticket baseline (chapters 00, 06)."""

import json
import re
from pathlib import Path

import pytest

from course_utils import data, evals, prompts

TICKETS = Path(__file__).resolve().parent.parent / "data" / "tickets"


def read_split(name: str) -> list[dict]:
    return [json.loads(line) for line in (TICKETS / f"{name}.jsonl").read_text().splitlines()
            if line.strip()]


def ticket(text: str, record: dict | None = None) -> dict:
    messages = [{"role": "system", "content": "Triage the support ticket."},
                {"role": "user", "content": text}]
    if record is not None:
        messages.append({"role": "assistant", "content": json.dumps(record)})
    return {"messages": messages}


def record(category, priority, product, order_id, sentiment) -> dict:
    return {"category": category, "priority": priority, "product": product,
            "order_id": order_id, "sentiment": sentiment}


def test_ticket_schema_lists_the_values_the_instructions_name():
    properties = prompts.TICKET_SCHEMA["properties"]
    assert list(properties) == prompts.TICKET_SCHEMA["required"] == [
        "category", "priority", "product", "order_id", "sentiment"]
    assert prompts.TICKET_SCHEMA["additionalProperties"] is False
    for line in prompts.TICKET_INSTRUCTIONS.splitlines():
        named = re.match(r'- "(\w+)": one of (.*)', line)
        if named:
            assert properties[named[1]]["enum"] == re.findall(r'"(\w+)"', named[2])


@pytest.mark.parametrize("split", ["train", "val", "test"])
def test_ticket_schema_accepts_every_reference_record(split):
    jsonschema = pytest.importorskip("jsonschema")
    validator = jsonschema.Draft202012Validator(prompts.TICKET_SCHEMA)
    jsonschema.Draft202012Validator.check_schema(prompts.TICKET_SCHEMA)
    for row in read_split(split):
        reference = json.loads(evals.reference(row))
        assert list(validator.iter_errors(reference)) == [], row["id"]
        assert list(reference) == list(prompts.TICKET_SCHEMA["properties"]), row["id"]
    bad = record("billing", "low", "grinder", "BB-1234", "neutral")  # four digits
    assert not validator.is_valid(bad)
    assert not validator.is_valid({**bad, "order_id": None, "extra": 1})


def test_nearest_ticket_copies_labels_and_reads_its_own_order_id():
    train = [ticket("My grinder burrs are jammed and it makes a loud grinding noise.",
                    record("technical", "high", "grinder", "BB-11111", "negative")),
             ticket("Please refund the double charge on my card for the subscription.",
                    record("billing", "normal", "subscription", None, "neutral"))]
    rows = [ticket("The grinder is jammed again, loud noise from the burrs. Order BB-54321."),
            ticket("I was charged twice for my subscription, refund please.")]
    answers = prompts.nearest_ticket_answers(rows, train)
    assert answers[0] == json.dumps(record("technical", "high", "grinder", "BB-54321",
                                           "negative"))
    assert json.loads(answers[1]) == record("billing", "normal", "subscription", None,
                                            "neutral")
    # the order id comes from the new ticket: null when it quotes none, even if its
    # nearest training ticket had one
    [none] = prompts.nearest_ticket_answers([ticket("grinder burrs jammed, loud noise")], train)
    assert json.loads(none)["order_id"] is None
    with pytest.raises(ValueError, match="training rows"):
        prompts.nearest_ticket_answers(rows, [])


def test_nearest_ticket_baseline_scores_on_the_real_test_split():
    train, test = read_split("train"), read_split("test")
    answers = prompts.nearest_ticket_answers(test, train)
    scores = evals.score_json(answers, test)
    assert all(scores.valid) and len(answers) == len(test)
    assert all(scores.fields["order_id"])  # the regex finds every quoted order id
    # written the way the references are: same separators, same key order
    assert answers[0] == json.dumps(json.loads(answers[0]))


def test_the_rungs_prompts_hold_what_chapter_00_says():
    train_rows = data.load_split("tickets", "train")
    rows = data.load_split("tickets", "val")[:3]
    zero = prompts.zero_shot_prompts(rows)
    assert [m["role"] for m in zero[0]] == ["system", "user"]
    assert prompts.TICKET_RULES in zero[0][0]["content"]
    assert prompts.TICKET_RULES not in prompts.zero_shot_prompts(rows, rules=False)[0][0]["content"]
    shots = prompts.fixed_examples(train_rows)
    assert [s["label"] for s in shots] == ["billing", "shipping", "technical"]
    few = prompts.few_shot_prompts(rows, train_rows)
    assert all(len(chat) == 1 + 2 * 3 + 1 for chat in few)
    assert few[0][1:7] == few[2][1:7]  # the same examples for every ticket
    with pytest.raises(ValueError, match="no training ticket with label 'billing'"):
        prompts.fixed_examples([r for r in train_rows if r["label"] != "billing"])


def test_the_voice_prompt_writes_out_the_rules_and_cycles_the_moods():
    from course_utils import data
    train_rows = data.load_split("voice/sft", "train")
    rows = data.load_split("voice/sft", "val")[:2]
    chats = prompts.voice_prompts(rows, train_rows, shots=4)
    assert len(chats) == 2 and chats[0][0]["role"] == "system"
    assert prompts.VOICE_RULES in chats[0][0]["content"] and "— Brightbrew Support" in chats[0][0]["content"]
    assert len(chats[0]) == 1 + 2 * 4 + 1 and chats[0][-1]["content"] == prompts.user_text(rows[0])
    moods = [r["sentiment"] for r in prompts.voice_examples(train_rows, 4)]
    assert moods == ["negative", "neutral", "positive", "negative"]
    assert prompts.VOICE_RULES not in prompts.voice_prompts(rows, train_rows, 0, rules=False)[0][0]["content"]
    with pytest.raises(ValueError, match="no unused training reply for a positive customer"):
        prompts.voice_examples([r for r in train_rows if r["sentiment"] != "positive"], 3)
