"""course_utils.rag (BM25) and course_utils.data (JSONL reading with file:line errors)."""

import json

import pytest

from course_utils import data, rag

DOCS = [{"id": "returns", "title": "Returns", "text": "Return any item within 45 days."},
        {"id": "shipping", "title": "Shipping", "text": "Express shipping costs $7.50."},
        {"id": "hours", "title": "Support hours", "text": "We answer 8am to 6pm, Monday to Friday."}]


def test_bm25_finds_the_section_that_holds_the_answer():
    index = rag.BM25(DOCS)
    assert index.search("How much is express shipping?", k=1)[0].doc["id"] == "shipping"
    assert index.search("how many days to return an item", k=1)[0].doc["id"] == "returns"
    assert [h.doc["id"] for h in index.search("zebra", k=3)] and index.score("zebra", 0) == 0


def test_bm25_needs_documents():
    with pytest.raises(ValueError, match="at least one document"):
        rag.BM25([])


def test_context_messages_carry_the_retrieved_text():
    hits = rag.BM25(DOCS).search("express shipping", k=1)
    messages = rag.with_context("How much is express shipping?", hits)
    assert messages[0]["role"] == "system" and messages[1]["role"] == "user"
    assert "$7.50" in messages[1]["content"] and messages[1]["content"].endswith("express shipping?")


def test_retrieved_examples_prompt_puts_the_closest_ticket_last():
    from course_utils import prompts

    def ticket(text, label):
        return {"messages": [{"role": "user", "content": text},
                             {"role": "assistant", "content": f'{{"category": "{label}"}}'}]}
    train = [ticket("my grinder is broken and makes noise", "technical"),
             ticket("refund my gift card please", "billing"),
             ticket("the grinder makes a loud noise when grinding", "technical")]
    [messages] = prompts.retrieved_examples_prompts([ticket("grinder makes a loud noise", "?")],
                                                    train, k=2)
    assert messages[0] == {"role": "system", "content": prompts.TICKET_INSTRUCTIONS}
    users = [m["content"] for m in messages if m["role"] == "user"]
    assert users == [train[0]["messages"][0]["content"], train[2]["messages"][0]["content"],
                     "grinder makes a loud noise"]


def test_jsonl_round_trip(tmp_path):
    rows = [{"id": 1, "text": "naïve café"}, {"id": 2}]
    assert data.load_jsonl(data.write_jsonl(rows, tmp_path / "x.jsonl")) == rows


@pytest.mark.parametrize("content, message", [
    (b'{"a": 1}\n{"a": \n', r"x\.jsonl:2: not valid JSON"),
    (b'{"a": 1}\n\n', r"x\.jsonl:2: blank line"),
    (b'[1, 2]\n', r"x\.jsonl:1: a JSON list, not an object"),
    (b'{"a": "\xff"}\n', r"x\.jsonl:1: not valid UTF-8"),
])
def test_bad_lines_name_file_and_line(tmp_path, content, message):
    path = tmp_path / "x.jsonl"
    path.write_bytes(content)
    with pytest.raises(data.DataError, match=message):
        data.load_jsonl(path)


def test_missing_file_says_how_to_make_it(tmp_path):
    with pytest.raises(data.DataError, match="no such file.*generate.py"):
        data.load_jsonl(tmp_path / "nope.jsonl")


def test_subset_is_nested_and_seeded_and_refuses_impossible_sizes():
    rows = [{"i": i} for i in range(50)]
    assert data.subset(rows, 10) == data.subset(rows, 30)[:10] == data.subset(rows, 10, seed=0)
    assert data.subset(rows, 10) != data.subset(rows, 10, seed=1)
    assert sorted(r["i"] for r in data.subset(rows, 50)) == list(range(50))
    for bad in (0, 51):
        with pytest.raises(ValueError, match="give 1 to 50"):
            data.subset(rows, bad)


def test_corrupt_labels_changes_a_share_of_answers_to_a_wrong_value():
    rows = [{"messages": [{"role": "user", "content": str(i)},
                          {"role": "assistant", "content": json.dumps({"a": "x", "b": "p"})}]}
            for i in range(20)]
    noisy = data.corrupt_labels(rows, 0.25, {"a": ("x", "y", "z")})
    changed = [json.loads(b["messages"][-1]["content"]) for a, b in zip(rows, noisy) if a != b]
    assert len(changed) == 5 and all(c["a"] in ("y", "z") and c["b"] == "p" for c in changed)
    assert json.loads(rows[0]["messages"][-1]["content"]) == {"a": "x", "b": "p"}  # a copy
    assert data.corrupt_labels(rows, 0.25, {"a": ("x", "y")}) == data.corrupt_labels(
        rows, 0.25, {"a": ("x", "y")})
    with pytest.raises(ValueError, match="from 0 to 1"):
        data.corrupt_labels(rows, 1.5, {"a": ("x", "y")})


def test_take_spreads_evenly_and_repeats():
    rows = list(range(10))
    assert data.take(rows, 5) == [0, 2, 4, 6, 8]
    assert data.take(rows, 3) == [0, 3, 6] and data.take(rows, 20) == rows
