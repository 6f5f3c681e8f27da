"""`course tune` (course_utils.tune, chapter 09): reading a learner's file, splitting it,
scoring, deciding, and the whole command end to end in the smoke profile."""

import csv
import json

import pytest

from course_utils import cli, data, evals, tune

SYSTEM = "Triage the support ticket. Reply with the JSON triage record only."


def write_csv(path, rows, header=("text", "label")):
    with open(path, "w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def labelled(n, prefix="item"):
    """n distinct short-label examples (labels cycle through three values)."""
    words = ["alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel"]
    return [[f"{prefix} {i} {words[i % 8]} {words[(i * 3) % 8]} number {i * 7919 % 10007}",
             ["yes", "no", "maybe"][i % 3]] for i in range(n)]


def problems_of(capsys):
    captured = capsys.readouterr()
    return captured.out + captured.err


# ---------------------------------------------------------------------------- reading

def test_csv_rows_become_chats_with_their_file_lines(tmp_path):
    path = write_csv(tmp_path / "t.csv", [["first", "yes"], ["two\nlines", "no"], ["third", "yes"]])
    task = tune.read_task(path, "text", "label", system="Answer yes or no.")
    assert task.ok, str(task)
    assert [r["line"] for r in task.rows] == [2, 3, 5]  # a quoted cell may span lines
    assert task.rows[1]["messages"] == [
        {"role": "system", "content": "Answer yes or no."},
        {"role": "user", "content": "two\nlines"}, {"role": "assistant", "content": "no"}]


def test_tsv_and_group_column(tmp_path):
    path = tmp_path / "t.tsv"
    path.write_text("q\ta\tcustomer\nhello, there\thi\tc1\nbye\tciao\tc2\n", encoding="utf-8")
    task = tune.read_task(path, "q", "a", group_col="customer")
    assert task.ok and [r["group"] for r in task.rows] == ["c1", "c2"]
    assert task.rows[0]["messages"][0] == {"role": "user", "content": "hello, there"}


@pytest.mark.parametrize("content, kind, line, words", [
    ("text,answer\nhi,yes\n", "missing_column", 1, ['no column "label"', "text, answer"]),
    ("text,label\nhi,yes\nthere,no,extra\nok,yes\n", "ragged_row", 3, ["3 cells", "has 2"]),
    ("text,label\nhi,yes\n,no\n", "empty_cell", 3, ['empty "text" cell']),
    ("text,label\nhi,yes\n\"never closed,no\nmore,yes\n", "unparseable", 3, ["quote"]),
])
def test_malformed_csv_names_line_and_column(tmp_path, capsys, content, kind, line, words):
    path = tmp_path / "bad.csv"
    path.write_text(content, encoding="utf-8")
    task = tune.read_task(path, "text", "label")
    found = [p for p in task.errors if p.kind == kind]
    assert found and found[0].line == line, str(task)
    for word in words:
        assert word in str(found[0])
    assert str(found[0]).startswith(f"{path}:{line}: ") and "Fix:" in str(found[0])
    assert tune_exit_code(path, tmp_path) == 1 and str(found[0]) in problems_of(capsys)


def tune_exit_code(path, tmp_path, *columns):
    """`course tune` on a file; the data problems stop it before any model is loaded."""
    columns = columns or (["--input-col", "text", "--output-col", "label"]
                          if path.suffix != ".jsonl" else [])
    return cli.main(["tune", str(path), *columns, "--out", str(tmp_path / "out")])


def test_bad_utf8_is_reported_by_line_and_byte(tmp_path, capsys):
    path = tmp_path / "latin1.csv"
    path.write_bytes("text,label\nhi,yes\ncaf\xe9 au lait,no\nok,yes\n".encode("latin-1"))
    task = tune.read_task(path, "text", "label")
    (problem,) = task.errors
    assert problem.kind == "invalid_utf8" and problem.line == 3
    assert "byte 0xe9 at byte 3 of the line" in problem.message
    assert [r["line"] for r in task.rows] == [2, 4]  # the other rows are still read
    assert tune_exit_code(path, tmp_path) == 1 and str(problem) in problems_of(capsys)


def test_a_50_mb_cell_is_an_error_not_a_crash(tmp_path, capsys):
    path = tmp_path / "huge.csv"
    path.write_text("text,label\nhi,yes\n" + "x" * 50_000_000 + ",no\nok,yes\n", encoding="utf-8")
    task = tune.read_task(path, "text", "label")
    (problem,) = task.errors
    assert problem.kind == "too_long_cell" and problem.line == 3 and "50,000,000" in problem.message
    assert "quote left open" in problem.fix
    assert tune_exit_code(path, tmp_path) == 1 and str(problem) in problems_of(capsys)


def test_malformed_jsonl_lists_every_problem(tmp_path, capsys):
    path = tmp_path / "bad.jsonl"
    good = {"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}]}
    path.write_text("\n".join([json.dumps(good), "{not json", json.dumps({"messages": [
        {"role": "user", "content": "no answer"}]}), json.dumps({"text": "x"})]) + "\n")
    task = tune.read_task(path)
    assert [(p.line, p.kind) for p in task.errors] == [
        (2, "invalid_json"), (3, "no_assistant"), (4, "no_messages")]
    assert len(task.rows) == 1
    printed = (tune_exit_code(path, tmp_path), problems_of(capsys))
    assert printed[0] == 1 and all(str(p) in printed[1] for p in task.errors)


def test_jsonl_records_with_columns_and_prompt_completion(tmp_path):
    records = tmp_path / "r.jsonl"
    records.write_text(json.dumps({"q": "a?", "a": "b"}) + "\n" + json.dumps({"q": "c?"}) + "\n")
    task = tune.read_task(records, "q", "a")
    assert [(p.line, p.kind) for p in task.errors] == [(2, "missing_key")]
    pc = tmp_path / "pc.jsonl"
    pc.write_text(json.dumps({"prompt": "2+2?", "completion": "4"}) + "\n")
    task = tune.read_task(pc, system="Be brief.")
    assert task.format == "prompt_completion" and task.system == "Be brief."
    assert [m["role"] for m in task.rows[0]["messages"]] == ["system", "user", "assistant"]


@pytest.mark.parametrize("make, args, words", [
    (lambda d: d / "missing.csv", ["--input-col", "a", "--output-col", "b"], "no such file"),
    (lambda d: d, ["--input-col", "a", "--output-col", "b"], "a folder"),
    (lambda d: (d / "t.xlsx").write_bytes(b"PK\x03\x04") and d / "t.xlsx", [], "unknown file type"),
    (lambda d: (d / "t.csv").write_text("a,b\n1,2\n") and d / "t.csv", [], "--input-col"),
    (lambda d: (d / "z.csv").write_bytes(b"a,b\n\x00\x01") and d / "z.csv",
     ["--input-col", "a", "--output-col", "b"], "binary"),
])
def test_unreadable_file_or_bad_arguments_exit_2(tmp_path, capsys, make, args, words):
    path = make(tmp_path)
    code = cli.main(["tune", str(path), "--out", str(tmp_path / "out"), *args])
    assert code == 2
    assert words in problems_of(capsys)


def test_data_problems_exit_1_with_all_of_them_listed(tmp_path, capsys):
    path = write_csv(tmp_path / "bad.csv", [["hi", "yes"], ["", "no"], ["a", "b", "c"], ["x", ""]])
    code = cli.main(["tune", str(path), "--input-col", "text", "--output-col", "label",
                     "--out", str(tmp_path / "out"), "--profile", "smoke"])
    printed = problems_of(capsys)
    assert code == 1
    for line, what in ((3, 'empty "text" cell'), (4, "3 cells"), (5, 'empty "label" cell')):
        assert f"bad.csv:{line}: " in printed and what in printed
    assert "Traceback" not in printed and not (tmp_path / "out").exists()


# ---------------------------------------------------------------------------- the split

def test_fewer_than_50_distinct_rows_are_refused(tmp_path):
    rows = labelled(45) + labelled(45)[:10]  # 10 exact repeats
    task = tune.read_task(write_csv(tmp_path / "t.csv", rows), "text", "label")
    with pytest.raises(tune.DataProblems, match="45 distinct examples .* 10 duplicates"):
        tune.prepare(task, tmp_path / "split")


def test_split_is_grouped_written_and_read_back(tmp_path):
    rows = [r + [f"g{i // 4}"] for i, r in enumerate(labelled(120))]
    path = write_csv(tmp_path / "t.csv", rows + [rows[0]], header=("text", "label", "who"))
    task = tune.read_task(path, "text", "label", group_col="who")
    first = tune.prepare(task, tmp_path / "split")
    assert not first.reused and len(first.removed) == 1 and first.removed[0]["line"] == 122
    groups = [{r["group"] for r in part} for part in (first.train, first.val, first.test)]
    assert not (groups[0] & groups[1] or groups[0] & groups[2] or groups[1] & groups[2])
    again = tune.prepare(task, tmp_path / "split")
    assert again.reused and [r["id"] for r in again.test] == [r["id"] for r in first.test]
    other = tune.prepare(task, tmp_path / "split", seed=1)  # other settings: split again
    assert not other.reused and [r["id"] for r in other.test] != [r["id"] for r in first.test]


# ---------------------------------------------------------------------------- what the answers are

def chat(answer, user="q"):
    return {"messages": [{"role": "user", "content": user}, {"role": "assistant", "content": answer}]}


def test_answer_kinds():
    assert tune.answer_kind([chat('{"a": 1}'), chat('{"a": 2}')]) == "json"
    assert tune.answer_kind([chat("Yes."), chat("no")]) == "label"
    assert tune.answer_kind([chat("Hi Ann, thanks for writing to us about the kettle.")]) == "text"


def test_inferred_schema_accepts_every_training_answer():
    jsonschema = pytest.importorskip("jsonschema")
    rows = [chat(json.dumps({"kind": k, "id": f"X-{i}" if i % 3 else None, "n": i}))
            for i, k in zip(range(30), ["a", "b", "c"] * 10)]
    rows.append(chat(json.dumps({"kind": "a", "id": None, "n": 1.5, "extra": True})))
    schema = tune.infer_schema(rows)
    assert list(schema["properties"]) == ["kind", "id", "n", "extra"]
    assert schema["required"] == ["kind", "id", "n"]
    assert schema["properties"]["kind"] == {"enum": ["a", "b", "c"]}
    assert schema["properties"]["id"] == {"anyOf": [{"type": "null"}, {"type": "string"}]}
    assert schema["properties"]["n"] == {"type": "number"}
    for row in rows:
        jsonschema.validate(json.loads(evals.reference(row)), schema)


def test_scores_fit_the_answers():
    labels = tune.score("label", ["Yes.", "no", "maybe"], [chat("yes"), chat("No"), chat("no")])
    assert labels.hits == [True, True, False] and labels.metrics["exact match"].hits == 0
    assert tune.rouge_l("the cat sat", "the cat sat on the mat") == pytest.approx(2 / 3)
    assert tune.rouge_l("", "") == 1.0 and tune.rouge_l("dog", "cat") == 0.0
    text = tune.score("text", ["the cat sat", "a dog"], [chat("the cat sat on the mat"), chat("cats")])
    assert text.hits == [True, False] and text.similarity[1] == 0.0


def test_the_decision_needs_more_hits_and_a_significant_test():
    def scored(hits):
        return tune.Scores("label", "normalised match", hits, {"normalised match": evals.rate(hits)})
    base = [False] * 30
    win = tune.decide(scored(base), scored([True] * 12 + [False] * 18), "few-shot")
    assert win.keep == "fine-tune" and win.line.startswith("keep the fine-tune: fine-tune 12/30")
    slight = tune.decide(scored(base), scored([True] * 2 + [False] * 28), "few-shot")
    assert slight.keep == "prompt" and "not above chance" in slight.line
    lose = tune.decide(scored([True] * 5 + [False] * 25), scored(base), "few-shot")
    assert lose.keep == "prompt" and "scores lower" in lose.line


def test_rung_prompts():
    train = [chat("yes", "apple pie"), chat("no", "banana bread"), chat("yes", "cherry tart"),
             chat("maybe", "apple crumble")]
    row = chat("?", "apple tart")
    (zero,) = tune.rung_prompts("zero-shot", [row], train, "Say yes or no.")
    assert zero == [{"role": "system", "content": "Say yes or no."},
                    {"role": "user", "content": "apple tart"}]
    assert [evals.reference(r) for r in tune.fixed_examples(train)] == ["yes", "no", "maybe"]
    (retrieved,) = tune.rung_prompts("retrieved", [row], train, None)
    assert retrieved[-1]["content"] == "apple tart" and len(retrieved) == 7
    assert tune.nearest_answers([row], train) in (["yes"], ["maybe"])


# ---------------------------------------------------------------------------- end to end (smoke)

def test_tickets_csv_end_to_end(tmp_path, capsys):
    rows = sum((data.load_split("tickets", s) for s in ("train", "val", "test")), [])
    path = tune.export_csv(rows, tmp_path / "tickets.csv", "ticket", "record", extra=("scenario",))
    args = ["tune", str(path), "--input-col", "ticket", "--output-col", "record",
            "--group-col", "scenario", "--system", SYSTEM, "--out", str(tmp_path / "out"),
            "--profile", "smoke", "--registry", str(tmp_path / "registry")]
    assert cli.main(args) == 0
    printed = problems_of(capsys)
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["kind"] == "json" and summary["measure"] == "exact match"
    assert summary["decision"] in ("fine-tune", "prompt") and summary["line"] in printed
    assert summary["best_rung"]["name"] in tune.RUNGS and summary["fine_tune"]["n"] == 8
    assert 0 <= summary["p_value"] <= 1 and summary["rows"]["read"] == 900
    split = {name: data.load_jsonl(tmp_path / "out" / "split" / f"{name}.jsonl")
             for name in ("train", "val", "test")}
    held = {r["group"] for r in split["val"] + split["test"]}
    assert not held & {r["group"] for r in split["train"]}
    html = (tmp_path / "out" / "report.html").read_text()
    assert "data:image/png;base64," in html and "<script" not in html and 'src="http' not in html
    report = (tmp_path / "out" / "report.md").read_text()
    for heading in ("## The cheaper rungs", "## The fine-tune", "## Test:", "## Forgetting",
                    "## What was handed over", "## Time and memory", "no example, answer or model left it"):
        assert heading in report
    from course_utils.registry import Registry
    versions = Registry(tmp_path / "registry").versions("tickets")
    assert [v["kind"] for v in versions] == ["prompt", "lora"]
    live = [v["kind"] for v in versions if v["is_live"]]
    assert live == (["lora"] if summary["decision"] == "fine-tune" else ["prompt"])


def test_free_text_end_to_end(tmp_path, real_model):
    rows = data.load_split("voice/sft", "train")[:70]
    path = tune.export_csv(rows, tmp_path / "replies.csv", "message", "reply")
    options = tune.Options(str(path), str(tmp_path / "out"), "message", "reply",
                           system="Reply as Brightbrew Support.", profile="smoke",
                           registry=str(tmp_path / "registry"))
    outcome = tune.run(options, show=False)
    assert outcome.rungs.kind == "text" and "constrained" in outcome.rungs.skipped
    assert outcome.decision.tuned.measure == "ROUGE-L >= 0.5"
    report = outcome.files["report.md"].read_text()
    assert "Free text has no single right answer" in report and "## Samples" in report
    assert "Fewer than 100 examples" in report


def test_an_interrupted_fine_tune_resumes(tmp_path, tiny_model):
    from transformers import TrainerCallback
    model, tokenizer = tiny_model
    rows = [r + [f"g{i}"] for i, r in enumerate(labelled(60))]
    task = tune.read_task(write_csv(tmp_path / "t.csv", rows, ("text", "label", "g")),
                          "text", "label")
    split = tune.prepare(task, tmp_path / "out" / "split")

    class Interrupt(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):
            if state.global_step == 2:
                raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        tune.fine_tune(model, tokenizer, split, tmp_path / "out", "smoke", show=False,
                       callbacks=(Interrupt(),), eval_every=1)
    assert (tmp_path / "out" / "checkpoints" / "checkpoint-1").is_dir()
    tuned = tune.fine_tune(model, tokenizer, split, tmp_path / "out", "smoke", resume=True,
                           show=False, eval_every=1)
    assert tuned.metadata["train"]["steps"] == 4 and not tuned.reused
    assert not (tmp_path / "out" / "checkpoints").exists()
    # a re-run with the same split and settings loads the adapter instead of training again
    again = tune.fine_tune(model, tokenizer, tune.prepare(task, tmp_path / "out" / "split"),
                           tmp_path / "out", "smoke", show=False, eval_every=1)
    assert again.reused and again.metadata["data_sha256"] == tuned.metadata["data_sha256"]
    # --merge: the adapter folded into a plain model folder that loads without PEFT
    from transformers import AutoModelForCausalLM
    merged = tune.merge_copy(tuned, tokenizer, tmp_path / "merged")
    plain = AutoModelForCausalLM.from_pretrained(merged)
    assert not hasattr(plain, "peft_config") and (merged / "tokenizer_config.json").exists()


def test_course_serve_answers_from_the_registry(tmp_path, tiny_model):
    """`course serve` (the command the report prints) serves a registered adapter."""
    import os
    import signal
    import subprocess
    import sys
    from course_utils import serve, train
    from course_utils.registry import Registry
    model, tokenizer = tiny_model
    folder = tmp_path / "tiny"
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    rows = [chat("yes", f"question {i}") for i in range(8)]
    result = train.sft(model, tokenizer, rows, max_steps=1, batch_size=4, show=False)
    result.settings["base_model"] = str(folder)
    train.save_adapter(result, tmp_path / "adapter", heldout={"exact match": 0.9})
    registry = Registry(tmp_path / "registry")
    registry.promote("demo", registry.register(tmp_path / "adapter", "demo"))
    process = subprocess.Popen(
        [sys.executable, "-m", "course_utils.cli", "serve", "--registry", str(registry.root),
         "--name", "demo", "--port", "0"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        text=True, env={**os.environ, "COURSE_HEADLESS": "1"})
    try:
        lines = []
        for line in process.stdout:
            lines.append(line)
            if line.startswith("serving "):
                break
        url = lines[-1].split(" at ")[1].split("/v1/")[0]
        models = serve.request(url, "/v1/models")
        assert "demo" in [m["id"] for m in models["data"]], lines
        answer = serve.chat_completion(url, "demo", [{"role": "user", "content": "hi"}], max_tokens=4)
        assert answer["choices"][0]["message"]["content"] is not None
    finally:
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=60) == 0


def test_the_budget_stops_training(tmp_path, tiny_model):
    """--budget-minutes: training stops after the step that ran past the budget."""
    model, tokenizer = tiny_model
    rows = [r + [f"g{i}"] for i, r in enumerate(labelled(60))]
    task = tune.read_task(write_csv(tmp_path / "t.csv", rows, ("text", "label", "g")), "text", "label")
    split = tune.prepare(task, tmp_path / "out" / "split")
    tuned = tune.fine_tune(model, tokenizer, split, tmp_path / "out", "smoke", show=False,
                           budget_minutes=1e-6)
    assert tuned.budget_stop == 1 and tuned.metadata["train"]["steps"] == 1
    assert tuned.metadata["settings"]["budget_minutes"] == 1e-6
