"""course_utils.results: docs/results.json written only when asked, atomically, and the
README's table generated from it."""

import json
import subprocess
import sys

import pytest

from course_utils import evals, results

ROOT = results.ROOT


@pytest.fixture
def fresh(monkeypatch, tmp_path):
    """A results file of its own, and a process that has recorded nothing yet."""
    monkeypatch.setattr(results, "_started", set())
    return tmp_path / "results.json"


def test_a_learners_run_writes_nothing(fresh, monkeypatch):
    monkeypatch.delenv("COURSE_RECORD", raising=False)
    item = results.record("06_evaluate", "tickets/lora", evals.rate([True] * 3 + [False]),
                          path=fresh)
    assert item["hits"] == 3 and item["n"] == 4 and 0 < item["low"] < 0.75 < item["high"] <= 1
    assert not fresh.exists()


def test_recorded_entries_have_the_documented_shape(fresh, monkeypatch, capsys):
    monkeypatch.setenv("COURSE_RECORD", "1")
    metric = evals.rate([True] * 55 + [False] * 5)
    results.record("06_evaluate", "tickets/lora", metric, path=fresh)
    results.record("06_evaluate", "tickets/p_lora_vs_best", 0.00031, path=fresh)
    written = json.loads(fresh.read_text())
    assert written == {"06_evaluate": {
        "tickets/lora": {"hits": 55, "n": 60, "low": round(metric.low, 4),
                         "high": round(metric.high, 4)},
        "tickets/p_lora_vs_best": {"value": 0.00031}}}
    assert "recorded in results.json: 06_evaluate tickets/lora = 55/60" in capsys.readouterr().out
    assert [p.name for p in fresh.parent.iterdir() if p.suffix == ".tmp"] == []  # renamed, not left


def test_a_rerun_replaces_the_notebooks_old_entries_and_keeps_the_others(fresh, monkeypatch):
    monkeypatch.setenv("COURSE_RECORD", "1")
    fresh.write_text(json.dumps({"00_decide": {"old": {"value": 1.0}},
                                 "06_evaluate": {"gone": {"value": 2.0}}}))
    results.record("06_evaluate", "tickets/full", evals.rate([True, False]), path=fresh)
    results.record("06_evaluate", "tickets/lora", evals.rate([True, True]), path=fresh)
    written = json.loads(fresh.read_text())
    assert written["00_decide"] == {"old": {"value": 1.0}}
    assert list(written["06_evaluate"]) == ["tickets/full", "tickets/lora"]


def test_bad_results_are_refused_by_name(fresh, monkeypatch):
    monkeypatch.setenv("COURSE_RECORD", "1")
    with pytest.raises(TypeError, match="cannot record 'high'"):
        results.record("06_evaluate", "x", "high", path=fresh)
    with pytest.raises(TypeError, match="finite number"):
        results.record("06_evaluate", "x", float("nan"), path=fresh)
    with pytest.raises(ValueError, match="non-empty"):
        results.record("", "x", 1.0, path=fresh)
    fresh.write_text('{"06_evaluate": {\n  "x": }')
    with pytest.raises(ValueError, match=r"results.json:2:8: not valid JSON"):
        results.load(fresh)


def test_readme_table_lists_each_result_in_chapter_order():
    table = results.readme_table({
        "06_evaluate": {"tickets/lora": {"hits": 3, "n": 4, "low": 0.3, "high": 0.95},
                        "tickets/p": {"value": 0.0004}},
        "00_decide": {"tickets/best_prompt": {"hits": 1, "n": 4, "low": 0.05, "high": 0.7}}})
    rows = [line for line in table.splitlines() if line.startswith("| [")]
    assert rows == ["| [00_decide](notebooks/00_decide.ipynb) | tickets/best_prompt | 1/4 = 25% [5%, 70%] |",
                    "| [06_evaluate](notebooks/06_evaluate.ipynb) | tickets/lora | 3/4 = 75% [30%, 95%] |",
                    "| [06_evaluate](notebooks/06_evaluate.ipynb) | tickets/p | 0.0004 |"]
    assert "nothing recorded yet" in results.readme_table({})


def test_the_committed_readme_table_is_generated_from_the_committed_results():
    check = subprocess.run([sys.executable, "-m", "course_utils.cli", "results", "--readme",
                            str(ROOT / "README.md"), "--check"], capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr


def test_every_recorded_count_is_printed_by_its_notebook():
    for notebook, entries in results.load().items():
        nb = json.loads((ROOT / "notebooks" / f"{notebook}.ipynb").read_text())
        printed = "".join("".join(o.get("text") or o.get("data", {}).get("text/plain") or "")
                          for c in nb["cells"] if c["cell_type"] == "code"
                          for o in c.get("outputs", []))
        for name, item in entries.items():
            if "hits" in item:
                assert f"{item['hits']}/{item['n']}" in printed, (notebook, name)
