"""course_utils.data (chapter 01): validation, duplicates, splits, formats, lengths, rendering.

The malformed files in tests/malformed/ (written by make_fixtures.py) each hold one kind of
problem around good rows; EXPECTED says, for every file, each problem validate must report:
its kind, line and words. Property tests feed arbitrary bytes and JSON to validate and
load_jsonl: bad content gives a Report or a DataError, never another exception.
"""

from __future__ import annotations

import json
import math
import os
import re
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from course_utils import cli, data

ROOT = Path(__file__).resolve().parents[1]
MALFORMED = ROOT / "tests" / "malformed"
PARSE_KINDS = {"invalid_utf8", "blank_line", "invalid_json", "not_object"}  # load_jsonl refuses

# file stem -> every problem validate reports: (kind, line, words of the message, words of the fix)
EXPECTED: dict[str, list[tuple[str, int, str, str]]] = {
    "bad_unicode": [("bad_unicode", 2, "holds an unpaired surrogate '\\ud83d' at character 8",
                     "half of an emoji")],
    "blank_line": [("blank_line", 2, "blank line", "delete it")],
    "bom": [("bom", 1, "the file starts with a UTF-8 byte-order mark (BOM)",
             "re-save the file as UTF-8 without BOM")],
    "content_not_string": [("content_not_string", 2, "content of message 1 is a list, not a string",
                            "write the content as one string")],
    "duplicate": [("duplicate", 3, "duplicate of line 1", "dedupe(rows) removes repeats")],
    "empty": [("no_rows", 0, "no rows", "write one JSON object per line")],
    "empty_content": [("empty_content", 2, "content of message 2 is empty", "write the reply"),
                      ("empty_content", 3, "content of message 1 is empty (only whitespace)",
                       "write the message")],
    "invalid_json": [("invalid_json", 3, "not valid JSON (Unterminated string",
                      "fix the JSON or delete the line")],
    "invalid_utf8": [("invalid_utf8", 2, "not valid UTF-8 (byte 0xe9 at byte 46 of the line",
                      "re-save the file as UTF-8")],
    "message_not_object": [("message_not_object", 2, "message 1 is a string, not an object",
                            'write each message as {"role": ..., "content": ...}')],
    "messages_empty": [("messages_empty", 3, '"messages" is empty', "add the user's turn")],
    "messages_not_list": [("messages_not_list", 2, '"messages" is a string, not a list',
                           'write "messages": [')],
    "missing_content": [("missing_content", 2, 'message 1 has no "content"',
                         'add the text of the turn as "content"')],
    "missing_role": [("missing_role", 2, 'message 2 has no "role"',
                      'add "role": "user", "assistant" or "system"')],
    "mixed": [("bom", 1, "byte-order mark", "without BOM"),
              ("blank_line", 2, "blank line", "delete it"),
              ("invalid_json", 3, "not valid JSON (Expecting value at column 15)", "fix the JSON"),
              ("invalid_utf8", 4, "not valid UTF-8 (byte 0xff at byte 0 of the line",
               "re-save the file as UTF-8"),
              ("not_object", 5, "a JSON number, not an object", "one {...} record"),
              ("empty_content", 6, "content of message 2 is empty", "write the reply"),
              ("unknown_role", 7, "role 'robot' of message 2 is not one of system, user, "
               "assistant", "use one of those"),
              ("no_assistant", 8, "no assistant turn", "add the reply"),
              ("turn_order", 9, "message 1 is assistant, expected user", "reorder the turns"),
              ("no_messages", 10, "no \"messages\" (keys: 'id')", 'put the conversation in'),
              ("duplicate", 11, "duplicate of line 1", "drop it"),
              ("content_not_string", 12, "content of message 1 is null, not a string",
               "one string")],
    "no_assistant": [("no_assistant", 2, "no assistant turn",
                      'add the reply to learn as the last message')],
    "no_messages": [("no_messages", 2, "no \"messages\" (keys: 'id', 'text')",
                     'put the conversation in "messages"'),
                    ("no_messages", 3, 'has "prompt" but no "completion"', 'add "completion"')],
    "not_object": [("not_object", 2, "a JSON list, not an object", "each line must be one {...}"),
                   ("not_object", 3, "a JSON string, not an object", "each line must be one")],
    "prompt_completion": [("empty_content", 2, "content of the completion is empty",
                           "write the reply")],
    "too_long": [("too_long", 2, "tokens, longer than max_length 128",
                  "shorten the row, or raise max_length")],
    "turn_order": [("turn_order", 2, "message 2 is user, expected assistant",
                    "merge two turns in a row"),
                   ("turn_order", 3, "message 3 is a system message; one may only come first",
                    "reorder the turns"),
                   ("turn_order", 4, "the last turn (message 3) is user", "add the reply")],
    "unknown_role": [("unknown_role", 2, "role 'bot' of message 2 is not one of system, user, "
                      "assistant", '"bot" -> "assistant"')],
}
MAX_LENGTH = {"too_long": 128}  # files validated with the tokenizer and this max_length


def fixture_path(name: str) -> Path:
    return MALFORMED / f"{name}.jsonl"


def chat(user: str, reply: str = "Thanks, we are on it.", **extra) -> dict:
    return {**extra, "messages": [{"role": "user", "content": user},
                                  {"role": "assistant", "content": reply}]}


@pytest.fixture(scope="module")
def tokenizer(tiny_model):
    return tiny_model[1]


@pytest.fixture(scope="module")
def tickets() -> list[dict]:
    return data.load_split("tickets", "train")


# ---------------------------------------------------------------------------- malformed files

def test_every_fixture_file_has_an_expectation():
    on_disk = {path.stem for path in MALFORMED.glob("*.jsonl")}
    assert on_disk == set(EXPECTED), (f"no expectation for {sorted(on_disk - set(EXPECTED))}; "
                                      f"no file for {sorted(set(EXPECTED) - on_disk)}")


def test_fixture_files_match_their_generator():
    import importlib.util
    spec = importlib.util.spec_from_file_location("make_fixtures", MALFORMED / "make_fixtures.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert set(module.FIXTURES) == set(EXPECTED)
    for name, lines in module.FIXTURES.items():
        written = b"\n".join(lines) + (b"\n" if lines else b"")
        assert fixture_path(name).read_bytes() == written, f"rerun make_fixtures.py ({name})"


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_validate_reports_each_problem_with_line_reason_and_fix(name, request):
    path = fixture_path(name)
    if name in MAX_LENGTH:
        tokenizer = request.getfixturevalue("tokenizer")
        report = data.validate(path, tokenizer=tokenizer, max_length=MAX_LENGTH[name])
    else:
        report = data.validate(path)
    problems = report.errors + report.warnings
    found = sorted((p.line, p.kind) for p in problems)
    assert found == sorted((line, kind) for kind, line, _, _ in EXPECTED[name])
    for kind, line, message, fix in EXPECTED[name]:
        problem = next(p for p in problems if (p.line, p.kind) == (line, kind))
        assert message in problem.message and fix in problem.fix
        where = f"{path}:{line}: " if line else f"{path}: "
        assert str(problem) == f"{where}{problem.message}. Fix: {problem.fix}"
        assert (problem in report.warnings) == (kind in data.WARNING_KINDS)
        assert f"{where}{problem.message}" in str(report)  # the printed report lists it
    assert report.ok == all(kind in data.WARNING_KINDS for kind, *_ in EXPECTED[name])
    # no row is dropped silently: each line is a row, or has a problem that says why not
    n_lines = len(path.read_bytes().splitlines())
    unread = {p.line for p in problems if p.kind in PARSE_KINDS}
    assert sorted(report.lines + sorted(unread)) == list(range(1, n_lines + 1))
    error_lines = {p.line for p in report.errors}
    assert report.valid_rows == [row for line, row in zip(report.lines, report.rows)
                                 if line not in error_lines]


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_load_jsonl_stops_at_the_first_unreadable_line(name):
    path = fixture_path(name)
    unreadable = sorted(line for kind, line, _, _ in EXPECTED[name] if kind in PARSE_KINDS)
    if unreadable:
        with pytest.raises(data.DataError, match=rf"^{re.escape(str(path))}:{unreadable[0]}: "):
            data.load_jsonl(path)
    else:
        rows = data.load_jsonl(path)
        assert len(rows) == len(path.read_bytes().splitlines())
        assert all(isinstance(row, dict) for row in rows)


def test_too_long_gives_the_token_count(tokenizer):
    path = fixture_path("too_long")
    report = data.validate(path, tokenizer=tokenizer, max_length=128)
    [warning] = report.warnings
    length = data.token_lengths(data.load_jsonl(path), tokenizer)[1]
    assert length > 128 and warning.message.startswith(f"{length} tokens,")
    assert report.stats["tokens"]["n_over"] == 1 and report.stats["tokens"]["max"] == length
    assert data.validate(path, tokenizer=tokenizer, max_length=length).warnings == []


def test_max_length_needs_a_tokenizer():
    with pytest.raises(ValueError, match="needs a tokenizer"):
        data.validate(fixture_path("too_long"), max_length=128)


def test_a_bom_inside_the_file_is_a_warning_and_the_row_is_kept(tmp_path):
    good = json.dumps(chat("Where is my kettle?")).encode()
    path = tmp_path / "joined.jsonl"  # two files joined with cat, the second saved with a BOM
    path.write_bytes(good + b"\n" + data.UTF8_BOM + json.dumps(chat("Refund?")).encode() + b"\n")
    report = data.validate(path)
    assert report.ok and [(p.kind, p.line) for p in report.warnings] == [("bom", 2)]
    assert "the line starts with a UTF-8 byte-order mark" in report.warnings[0].message
    assert [row["messages"][0]["content"] for row in data.load_jsonl(path)] == [
        "Where is my kettle?", "Refund?"]


def test_rows_are_validated_like_lines():
    rows = [chat("Hi"), "not a row", {"messages": [{"role": ["user"], "content": " "}]},
            {"messages": {"role": "user"}}]
    report = data.validate(rows)
    assert [(p.line, p.kind) for p in report.errors] == [
        (2, "not_object"), (3, "unknown_role"), (3, "empty_content"), (4, "messages_not_list")]
    assert str(report.errors[0]).startswith("<rows>:2: a string, not an object")
    assert report.errors[3].message == '"messages" is an object, not a list'
    assert report.valid_rows == [rows[0]]
    with pytest.raises(TypeError, match=r"validate\(\[row\]\)"):
        data.validate(chat("Hi"))


def test_missing_or_unreadable_paths_raise_data_error(tmp_path):
    with pytest.raises(data.DataError, match="nope.jsonl: no such file"):
        data.validate(tmp_path / "nope.jsonl")
    with pytest.raises(data.DataError, match="a folder, not a file"):
        data.validate(tmp_path)
    with pytest.raises(data.DataError, match="cannot be read"):
        data.load_jsonl(tmp_path / ("x" * 5000))  # a name too long for the file system


# ---------------------------------------------------------------------------- reading

@pytest.mark.parametrize("content, where", [
    (b'{"a": 1}\n{"a": 2}\n{"a": \n', ":3: not valid JSON"),
    (b'{"a": 1}\r\n\r\n', ":2: blank line"),
    (b'{"a": 1}\n7\n', ":2: a JSON number, not an object"),
    (b'\xef\xbb\xbf{"a": 1}\n{"a": "\xc3"}\n', ":2: not valid UTF-8 (byte 0xc3 at byte 7 of the "
                                              "line, 19 of the file)"),
])
def test_load_jsonl_raises_data_error_with_file_and_line(tmp_path, content, where):
    path = tmp_path / "rows.jsonl"
    path.write_bytes(content)
    with pytest.raises(data.DataError) as caught:
        data.load_jsonl(path)
    assert str(caught.value).startswith(f"{path}{where}") and "Fix: " in str(caught.value)


def test_load_jsonl_reads_crlf_a_bom_and_no_final_newline(tmp_path):
    path = tmp_path / "rows.jsonl"
    path.write_bytes(b'\xef\xbb\xbf{"a": 1}\r\n{"a": "caf\xc3\xa9"}')
    assert data.load_jsonl(path) == [{"a": 1}, {"a": "café"}]


@pytest.mark.parametrize("rel", ["tickets/train.jsonl", "tickets/val.jsonl", "tickets/test.jsonl",
                                 "voice/sft_train.jsonl", "voice/sft_val.jsonl",
                                 "voice/sft_test.jsonl", "handbook/questions_train.jsonl",
                                 "handbook/questions_test.jsonl", "probes/probes.jsonl"])
def test_the_course_files_are_clean(rel):
    report = data.validate(data.DATA_DIR / rel)
    assert report.ok and not report.warnings, str(report)
    assert len(report.valid_rows) == report.stats["rows_read"] > 0
    assert report.stats["formats"] == {"chat": report.stats["rows_read"]}


# ---------------------------------------------------------------------------- duplicates

def edited(row: dict, edit, **extra) -> dict:
    """A deep copy of a ticket row, its user turn passed through edit(text), extra keys set."""
    copy = {**json.loads(json.dumps(row)), **extra}
    copy["messages"][1]["content"] = edit(copy["messages"][1]["content"])
    return copy


def one_word_changed(text: str, position: int) -> str:
    """The text with its word at `position` replaced: a near copy."""
    words = text.split()
    words[position] = "zebra"
    return " ".join(words)


NEAR_SOURCE = 43  # 66 words: one changed word leaves Jaccard ~0.9 (a short ticket falls < 0.8)


def planted(tickets: list[dict]) -> tuple[list[dict], int, int]:
    """60 tickets, an exact copy of row 3 (case and spaces changed) and a near copy of row
    NEAR_SOURCE (a long ticket, one word changed); (rows, exact index, near index)."""
    exact = edited(tickets[3], lambda text: "  " + text.upper().replace(" ", "   "), id="copy")
    near = edited(tickets[NEAR_SOURCE], lambda text: one_word_changed(text, 30), id="near")
    return tickets[:60] + [exact, near], 60, 61


def test_exact_duplicates_fold_case_and_spaces_and_ignore_ids(tickets):
    rows, exact, _ = planted(tickets)
    assert data.exact_duplicates(rows) == [(exact, 3)]
    assert data.exact_duplicates(tickets) == []
    prompt_completion = [{"prompt": "Hi", "completion": "Hello."}, chat("hi", "hello.", id=2)]
    assert data.exact_duplicates(prompt_completion) == [(1, 0)]


def test_near_duplicates_find_the_planted_copies_only(tickets):
    rows, exact, near = planted(tickets)
    found = data.near_duplicates(rows)
    assert [(j, i) for j, i, _ in found] == [(exact, 3), (near, NEAR_SOURCE)]
    assert found[0][2] == 1.0 and 0.8 <= found[1][2] < 1.0
    assert data.near_duplicates(tickets) == []  # distinct tickets are not near duplicates


def test_near_duplicates_threshold_is_the_jaccard_similarity():
    words = [f"w{k}" for k in range(20)]
    a, b = " ".join(words), " ".join(words[:10] + [f"x{k}" for k in range(10)])
    rows = [chat(a), chat(b)]
    assert data.near_duplicates(rows) == []
    [(j, i, similarity)] = data.near_duplicates(rows, threshold=0.2)
    assert (j, i) == (1, 0) and similarity == pytest.approx(8 / 28)  # 8 shared 3-grams of 28
    assert data.near_duplicates([{"text": a}, {"text": a.upper()}], field="text") == [(1, 0, 1.0)]
    with pytest.raises(ValueError, match="threshold"):
        data.near_duplicates(rows, threshold=0)


def test_dedupe_reports_every_row_it_removes(tickets):
    rows, exact, near = planted(tickets)
    kept, removed = data.dedupe(rows)
    assert removed == [(exact, 3, "exact"), (near, NEAR_SOURCE, "near")]
    gone = {index for index, _, _ in removed}
    assert kept == [row for index, row in enumerate(rows) if index not in gone]
    assert len(kept) + len(removed) == len(rows)
    assert data.dedupe(tickets) == (tickets, [])


# ---------------------------------------------------------------------------- splits and leakage

def test_split_is_seeded_and_covers_every_row_once(tickets):
    train, val, test = data.split(tickets, val=0.1, test=0.2, seed=7)
    assert (train, val, test) == data.split(tickets, val=0.1, test=0.2, seed=7)
    assert (train, val, test) != data.split(tickets, val=0.1, test=0.2, seed=8)
    ids = [row["id"] for row in train + val + test]
    assert sorted(ids) == sorted(row["id"] for row in tickets) and len(set(ids)) == len(ids)
    assert (len(val), len(test)) == (math.floor(0.1 * len(tickets) + 0.5),
                                     math.floor(0.2 * len(tickets) + 0.5))
    with pytest.raises(ValueError, match="leaves no rows to train on"):
        data.split(tickets, val=0.5, test=0.5)


def test_stratified_split_keeps_label_proportions(tickets):
    train, val, test = data.split(tickets, val=0.1, test=0.1, seed=0, stratify="label")
    labels = {row["label"] for row in tickets}
    for label in labels:
        n = sum(row["label"] == label for row in tickets)
        for part in (val, test):
            assert abs(sum(row["label"] == label for row in part) - n * 0.1) <= 1, label
    few = [chat(f"question {k}", label="a" if k < 3 else "b") for k in range(30)]
    _, few_val, few_test = data.split(few, val=0.1, test=0.1, stratify="label")
    assert "a" in {row["label"] for row in few_val} and "a" in {row["label"] for row in few_test}


def test_write_splits_and_leakage(tmp_path, tickets):
    train, val, test = data.split(tickets, seed=1)
    paths = data.write_splits(train, val, test, tmp_path / "splits")
    assert sorted(paths) == ["test", "train", "val"]
    assert [data.load_jsonl(paths[name]) for name in ("train", "val", "test")] == [train, val, test]
    assert data.leakage(train, val, test) == []
    leaked = edited(train[5], str.lower)
    longest = max(range(len(train)), key=lambda i: len(train[i]["messages"][1]["content"]))
    near = edited(train[longest], lambda text: one_word_changed(text, -3))  # Jaccard ~0.95
    found = data.leakage(train, val + [near], test + [leaked])
    assert [(name, k, i) for name, k, i, _ in found] == [("val", len(val), longest),
                                                         ("test", len(test), 5)]
    assert 0.8 <= found[0][3] < 1.0 and found[1][3] == 1.0


@pytest.mark.parametrize("dataset, splits", [
    ("tickets", ["train", "val", "test"]), ("voice", ["sft_train", "sft_val", "sft_test"]),
    ("voice", ["pairs_train", "pairs_val", "pairs_test"]),  # preference pairs: their prompts
    ("handbook", ["questions_train", "questions_test"])])
def test_the_course_splits_do_not_leak(dataset, splits):
    train, *held_out = (data.load_split(dataset, name) for name in splits)
    assert all(held_out) and data.leakage(train, *held_out, names=splits[1:]) == []


# ---------------------------------------------------------------------------- formats

def test_prompt_completion_and_chat_round_trip(tokenizer):
    row = {"id": "p1", "prompt": "Where is my kettle?", "completion": "It ships today."}
    as_chat = data.to_chat(row)
    assert as_chat == {"id": "p1", "messages": [
        {"role": "user", "content": "Where is my kettle?"},
        {"role": "assistant", "content": "It ships today."}]}
    assert data.to_prompt_completion(as_chat) == row
    with_system = data.to_chat(row, system="Be brief.")
    assert with_system["messages"][0] == {"role": "system", "content": "Be brief."}
    assert data.to_chat(data.to_prompt_completion(with_system), system="Be brief.") == with_system
    templated = data.to_prompt_completion(with_system, tokenizer)
    assert templated["prompt"] == tokenizer.apply_chat_template(
        with_system["messages"][:2], tokenize=False, add_generation_prompt=True)
    assert templated["prompt"].endswith("<|im_start|>assistant\n")
    listed = {"prompt": with_system["messages"][:2], "completion": with_system["messages"][2:]}
    assert data.to_chat(listed)["messages"] == with_system["messages"]
    with pytest.raises(data.DataError, match="assistant turn"):
        data.to_prompt_completion({"messages": [{"role": "user", "content": "Hi"}]})
    with pytest.raises(data.DataError, match="prompt"):
        data.to_chat({"text": "Hi"})


# ---------------------------------------------------------------------------- token lengths

def test_length_stats_match_token_lengths(tokenizer, tickets):
    rows = tickets[:40]
    lengths = data.token_lengths(rows, tokenizer)
    ids = tokenizer.apply_chat_template(rows[0]["messages"], tokenize=True)
    assert lengths[0] == len(ids if isinstance(ids, list) else ids["input_ids"])
    stats = data.length_stats(rows, tokenizer, max_length=120)
    assert (stats["count"], stats["min"], stats["max"]) == (40, min(lengths), max(lengths))
    assert stats["n_over"] == sum(n > 120 for n in lengths) and stats["max_length"] == 120
    assert min(lengths) <= stats["median"] <= stats["p95"] <= max(lengths)
    report = data.validate(rows, tokenizer=tokenizer, max_length=120)
    too_long = [(p.line, p.message) for p in report.warnings if p.kind == "too_long"]
    assert too_long == [(k + 1, f"{n} tokens, longer than max_length 120")
                        for k, n in enumerate(lengths) if n > 120]


# ---------------------------------------------------------------------------- rendering

def test_render_marks_only_the_assistant_content_and_end_of_turn(tokenizer):
    row = {"messages": [{"role": "system", "content": "Be brief."},
                        {"role": "user", "content": "Hi"},
                        {"role": "assistant", "content": "Hello there."},
                        {"role": "user", "content": "Bye"},
                        {"role": "assistant", "content": "Bye now."}]}
    rendered = data.render(row, tokenizer)
    assert rendered.text == tokenizer.apply_chat_template(row["messages"], tokenize=False)
    masked = [t for t, m in zip(rendered.input_ids, rendered.loss_mask) if m]
    assert tokenizer.decode(masked) == "Hello there.<|im_end|>Bye now.<|im_end|>"
    assert rendered.labels == [t if m else -100
                               for t, m in zip(rendered.input_ids, rendered.loss_mask)]
    shown = data.show_loss_mask(rendered, tokenizer)
    assert re.findall(r"\[\[(.*?)\]\]", shown, re.S) == ["Hello there.<|im_end|>",
                                                          "Bye now.<|im_end|>"]
    assert shown.replace("[[", "").replace("]]", "") == rendered.text
    cut = data.render(row, tokenizer, max_length=8)
    assert cut.truncated and len(cut.input_ids) == 8 and not any(cut.loss_mask)
    assert not rendered.truncated


# ---------------------------------------------------------------------------- the command

def test_cli_validate_exit_codes_and_file_line(capsys, tmp_path):
    clean = data.DATA_DIR / "tickets" / "val.jsonl"
    assert cli.main(["validate", str(clean)]) == 0
    n = len(data.load_jsonl(clean))
    assert f"{clean}: OK: {n} rows read, {n} valid" in capsys.readouterr().out
    broken = fixture_path("mixed")
    assert cli.main(["validate", str(broken)]) == 1
    out = capsys.readouterr().out
    assert f"{broken}: NOT OK" in out and f"{broken}:3: not valid JSON" in out
    assert f"{broken}:11: duplicate of line 1" in out
    assert cli.main(["validate", str(fixture_path("bom"))]) == 0  # warnings only
    assert f"{fixture_path('bom')}:1: the file starts with" in capsys.readouterr().out
    assert cli.main(["validate", str(tmp_path / "missing.jsonl")]) == 2
    assert "missing.jsonl: no such file" in capsys.readouterr().err


def test_cli_validate_max_length_counts_tokens(capsys):
    path = fixture_path("too_long")
    assert cli.main(["validate", str(path), "--max-length", "128"]) == 0
    assert re.search(rf"{re.escape(str(path))}:2: \d+ tokens, longer than max_length 128",
                     capsys.readouterr().out)


# ---------------------------------------------------------------------------- properties

JSON_SCALARS = (st.none() | st.booleans() | st.integers() | st.floats()
                | st.text(st.characters(exclude_categories=()), max_size=12)  # surrogates too
                | st.sampled_from(["", " \n", "caf\u00e9", "Love it \ud83d"]))
JSON_VALUES = st.recursive(JSON_SCALARS, lambda inner: st.lists(inner, max_size=4)
                           | st.dictionaries(st.text(max_size=8), inner, max_size=4),
                           max_leaves=12)
MESSAGES = st.lists(st.one_of(JSON_VALUES, st.dictionaries(
    st.sampled_from(["role", "content", "name"]),
    st.one_of(st.sampled_from(["system", "user", "assistant", "bot", "", "  "]), JSON_VALUES),
    max_size=3)), max_size=5)
ROWS = st.one_of(JSON_VALUES,
                 st.fixed_dictionaries({"messages": st.one_of(MESSAGES, JSON_VALUES)},
                                       optional={"id": JSON_VALUES}),
                 st.fixed_dictionaries({"prompt": st.one_of(st.text(), MESSAGES, JSON_VALUES),
                                        "completion": st.one_of(st.text(), MESSAGES,
                                                                JSON_VALUES)}))
LINES = st.lists(st.one_of(st.binary(max_size=40), ROWS.map(lambda v: json.dumps(v).encode()),
                           st.sampled_from([data.UTF8_BOM, b"", b" ", b"\r", b"{", b"[]", b"\xff",
                                            json.dumps(chat("Hi")).encode()])), max_size=8)
PROPERTY = settings(max_examples=200, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])


def check_file(path: Path) -> None:
    """validate returns a Report placing every problem on a line; load_jsonl agrees with it."""
    report = data.validate(path)
    n_lines = len(path.read_bytes().split(b"\n")) - path.read_bytes().endswith(b"\n")
    problems = report.errors + report.warnings
    assert all(0 <= p.line <= n_lines and str(p).startswith(str(path)) and "Fix: " in str(p)
               for p in problems)
    assert all(isinstance(row, dict) for row in report.rows)
    unreadable = sorted(p.line for p in problems if p.kind in PARSE_KINDS)
    try:
        rows = data.load_jsonl(path)
    except data.DataError as err:
        assert str(err).startswith(f"{path}:{unreadable[0]}: ")
    else:
        assert not unreadable and json.dumps(rows) == json.dumps(report.rows)


@PROPERTY
@given(st.binary(max_size=300))
def test_any_bytes_give_a_report_or_a_data_error(content):
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "any.jsonl"
        path.write_bytes(content)
        check_file(path)


@PROPERTY
@given(LINES, st.sampled_from([b"\n", b"\r\n"]))
def test_any_lines_give_a_report_or_a_data_error(lines, newline):
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "lines.jsonl"
        path.write_bytes(newline.join(lines) + newline)
        check_file(path)


@PROPERTY
@given(st.lists(ROWS, max_size=6))
def test_any_json_rows_validate_and_dedupe_without_raising(rows):
    report = data.validate(rows)
    assert report.stats["rows_read"] == len(rows)
    assert sorted(report.lines + [p.line for p in report.errors if p.kind == "not_object"]) == \
        list(range(1, len(rows) + 1))
    valid = report.valid_rows
    assert all(data.to_chat(row)["messages"] for row in valid)
    kept, removed = data.dedupe(valid)
    assert len(kept) + len(removed) == len(valid)
    wrapped = [{"row": row} for row in rows]  # every row an object, so load_jsonl reads it back
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "rows.jsonl"
        try:
            data.write_jsonl(wrapped, path)
        except data.DataError as err:  # text UTF-8 cannot store: refused, nothing written
            assert "unpaired surrogate" in str(err) and not path.exists()
        else:
            assert json.dumps(data.load_jsonl(path)) == json.dumps(wrapped)


def test_write_jsonl_refuses_text_utf8_cannot_store(tmp_path):
    path = tmp_path / "rows.jsonl"
    with pytest.raises(data.DataError, match=r"rows\[1\] holds an unpaired surrogate '\\ud83d'"):
        data.write_jsonl([chat("Hi"), chat("Love it \ud83d")], path)
    assert not path.exists()  # nothing half-written
    assert data.load_jsonl(data.write_jsonl([chat("café")], path)) == [chat("café")]


def test_load_split_reads_a_named_file_and_names_the_choices():
    assert len(data.load_split("voice/pairs", "val")) == 30
    assert data.load_split("voice/sft", "test")[0]["id"] == data.load_split("voice/pairs", "test")[0]["id"]
    with pytest.raises(FileNotFoundError, match=r"voice/train.jsonl does not exist.*voice/pairs"):
        data.load_split("voice", "train")


def test_token_lengths_ignore_padding_left_on_by_a_batch_call(tokenizer):
    rows = data.load_jsonl(fixture_path("too_long"))[:3]
    before = data.token_lengths(rows, tokenizer)
    tokenizer(["a", "a much longer text than the other one"], padding=True)  # as generation does
    assert data.token_lengths(rows, tokenizer) == before and len(set(before)) > 1


def test_group_split_keeps_each_scenario_on_one_side(tickets):
    tickets = [dict(r, scenario=f"{r['label']}-{i % 9}") for i, r in enumerate(tickets)]
    train, val, test = data.split(tickets, val=0.1, test=0.2, seed=3, group="scenario")
    assert sorted(r["id"] for r in train + val + test) == sorted(r["id"] for r in tickets)
    sides = [{r["scenario"] for r in part} for part in (train, val, test)]
    assert not (sides[0] & sides[1] or sides[0] & sides[2] or sides[1] & sides[2])
    n = len({r["scenario"] for r in tickets})
    assert (len(sides[1]), len(sides[2])) == (math.floor(0.1 * n + 0.5), math.floor(0.2 * n + 0.5))
    assert data.split(tickets, group="scenario", seed=3) == data.split(tickets, group="scenario", seed=3)
    by_label = data.split(tickets, val=0.2, test=0.2, group="scenario", stratify="label")
    for part in by_label[1:]:  # every category gets held-out scenarios
        assert {r["label"] for r in part} == {r["label"] for r in tickets}
    mixed = [dict(r, scenario="one") for r in tickets[:6]]
    with pytest.raises(ValueError, match="group 'one'.*different 'label' values"):
        data.split(mixed, group="scenario", stratify="label")


# ---------------------------------------------------------------------------- replace_folder

def folder_with(path, text: str):
    path.mkdir(parents=True)
    (path / "weights.bin").write_text(text)
    return path


def test_replace_folder_swaps_in_the_new_copy_and_leaves_no_old_one(tmp_path):
    final = folder_with(tmp_path / "adapter", "old")
    data.replace_folder(folder_with(tmp_path / ".staging", "new"), final)
    assert (final / "weights.bin").read_text() == "new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["adapter"]
    data.replace_folder(folder_with(tmp_path / ".first", "first"), tmp_path / "fresh")  # none before
    assert (tmp_path / "fresh" / "weights.bin").read_text() == "first"


def test_a_failed_swap_keeps_the_old_copy_in_place(tmp_path, monkeypatch):
    final = folder_with(tmp_path / "adapter", "old")
    staging = folder_with(tmp_path / ".staging", "new")
    real_replace, calls = os.replace, []

    def second_rename_fails(source, target):
        calls.append(source)
        if len(calls) == 2:  # the old copy is aside; moving the new one in fails
            raise OSError("disk full (simulated)")
        real_replace(source, target)
    monkeypatch.setattr(os, "replace", second_rename_fails)
    with pytest.raises(OSError, match="disk full"):
        data.replace_folder(staging, final)
    monkeypatch.undo()
    assert (final / "weights.bin").read_text() == "old"  # put back


def test_a_crash_between_the_renames_is_undone_by_the_next_reader(tmp_path):
    final = folder_with(tmp_path / "adapter", "old")
    os.replace(final, tmp_path / ".adapter.previous")  # the process died right here
    assert not final.exists()
    assert data.restore_folder(final) and (final / "weights.bin").read_text() == "old"
    assert not data.restore_folder(final)  # nothing to undo now
