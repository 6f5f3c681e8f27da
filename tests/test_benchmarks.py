"""course_utils.benchmarks: each benchmark replaces its own section of docs/benchmarks.md."""

import argparse
import importlib.util
import re
import sys
from pathlib import Path

import pytest

from course_utils import benchmarks, cli

ROOT = Path(__file__).resolve().parents[1]
NOTES = "# Benchmarks\n\nSome words by hand.\n"


def test_a_new_section_is_appended_and_then_replaced_in_place():
    text = benchmarks.replace_section(NOTES, "data", "## Data\n\n| a | 1 |\n")
    assert text == NOTES + "\n<!-- bench:data -->\n## Data\n\n| a | 1 |\n<!-- /bench:data -->\n"
    text = benchmarks.replace_section(text, "notebooks", "## Notebooks")
    again = benchmarks.replace_section(text, "data", "## Data\n\n| a | 2 |")
    assert again == text.replace("| a | 1 |", "| a | 2 |")  # the rest untouched, order kept
    assert benchmarks.replace_section(again, "data", "## Data\n\n| a | 2 |") == again
    assert benchmarks.replace_section("", "data", "x") == (
        "<!-- bench:data -->\nx\n<!-- /bench:data -->\n")


@pytest.mark.parametrize("text", ["<!-- bench:data -->\nx\n",
                                  "<!-- /bench:data -->\n<!-- bench:data -->\n",
                                  "<!-- bench:data -->\n<!-- /bench:data -->\n" * 2])
def test_broken_markers_raise_rather_than_clobber(text):
    with pytest.raises(ValueError, match="markers of section 'data' are broken"):
        benchmarks.replace_section(text, "data", "new")


def test_write_section_creates_the_file_then_keeps_the_other_sections(tmp_path):
    path = tmp_path / "docs" / "benchmarks.md"
    benchmarks.write_section(path, "notebooks", "## Notebooks\n\n| nb | 1 min |")
    assert path.read_text().startswith(benchmarks.HEADER)
    benchmarks.write_section(path, "data", "## Data\n\n| validate | 2 s |")
    benchmarks.write_section(path, "notebooks", "## Notebooks\n\n| nb | 3 min |")
    text = path.read_text()
    assert "| validate | 2 s |" in text and "| nb | 3 min |" in text and "1 min" not in text
    assert text.index("bench:notebooks") < text.index("bench:data")


def test_the_committed_file_has_both_sections():
    text = (ROOT / "docs" / "benchmarks.md").read_text()
    for name in ("notebooks", "data"):
        start, end = benchmarks.section_markers(name)
        assert text.count(start) == text.count(end) == 1 and text.index(start) < text.index(end)


def test_course_bench_writes_only_its_section(tmp_path, monkeypatch, capsys):
    out = tmp_path / "benchmarks.md"
    benchmarks.write_section(out, "data", "## Data checks\n\nkept")
    monkeypatch.setattr(cli, "run_notebook", lambda path, profile, inplace: (90.0, "ok", 0))
    args = argparse.Namespace(paths=[str(ROOT / "notebooks" / "00_decide.ipynb")],
                              profiles=["smoke"], out=str(out))
    assert cli.cmd_bench(args) == 0
    text = out.read_text()
    assert "## Data checks\n\nkept" in text
    assert "| notebooks/00_decide.ipynb | 1.5 min |" in text and "wrote the notebooks" in (
        capsys.readouterr().out)


def test_recorded_times_update_their_cells_and_keep_the_rest(tmp_path, monkeypatch):
    out = tmp_path / "benchmarks.md"
    cli.record_times(out, {"notebooks/01_data.ipynb": {"smoke": "1.3 min", "cpu": "12.5 min"}})
    monkeypatch.setattr(cli, "run_notebook", lambda path, profile, inplace: (600.0, "ok", 3.2e9))
    args = argparse.Namespace(paths=[str(ROOT / "notebooks" / "00_decide.ipynb")],
                              profile="cpu", inplace=False, record=str(out))
    assert cli.cmd_run(args) == 0
    cli.record_times(out, {"notebooks/01_data.ipynb": {"gpu": "1.0 min"}})
    text = out.read_text()
    assert "| notebook | smoke | cpu | gpu |" in text
    assert "| notebooks/00_decide.ipynb | - | 10.0 min, 3.2 GB | - |" in text
    assert "| notebooks/01_data.ipynb | 1.3 min | 12.5 min | 1.0 min |" in text
    assert text.count("bench:notebooks") == 2


def test_bench_data_writes_its_section(tmp_path, capsys):
    spec = importlib.util.spec_from_file_location("bench_data", ROOT / "bench" / "bench_data.py")
    bench_data = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench_data)
    out = tmp_path / "benchmarks.md"
    benchmarks.write_section(out, "notebooks", "## Notebook wall time\n\nkept")
    assert bench_data.main(["--rows", "2000", "--out", str(out)]) == 0
    text = out.read_text()
    assert "## Notebook wall time\n\nkept" in text and "2,000 chat rows" in text
    for step in ("validate(path)", "near_duplicates(rows)", "dedupe(rows)"):
        assert f"| `{step}` |" in text
    hits, planted = re.search(r"(\d+) of the (\d+) planted near copies", text).groups()
    assert hits == planted != "0"
    assert "then dedupe its valid rows" in capsys.readouterr().out


def test_bench_train_runs_both_trainers_side_by_side(tmp_path):
    """One step each, to keep the script working; the real figures come from `make bench`."""
    spec = importlib.util.spec_from_file_location("bench_train", ROOT / "bench" / "bench_train.py")
    bench_train = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench_train)
    out = tmp_path / "benchmarks.md"
    assert bench_train.main(["--steps", "1", "--batch-size", "2", "--out", str(out)]) == 0
    text = out.read_text()
    assert "| plain TRL |" in text and "| course_utils.train.sft |" in text
    ratio = float(re.search(r"\*\*([\d.]+)x the throughput", text).group(1))
    assert ratio > 0
    assert bench_train.mfu({"device": "NVIDIA H100 80GB HBM3", "n_params": 1e9,
                            "tokens_per_second": 1e5}) == "60.7%"


def test_the_peak_memory_of_child_processes_is_measured():
    import subprocess
    with cli.ChildrenPeakMemory(every=0.05) as memory:  # a child that holds 200 MB for a second
        subprocess.run([sys.executable, "-c", "import time; b = bytearray(200_000_000); "
                        "b[::4096] = b'x' * len(b[::4096]); time.sleep(1)"], check=True)
    assert memory.peak > 200e6


def test_doctor_warns_about_notebooks_that_do_not_fit(tmp_path):
    out = tmp_path / "benchmarks.md"
    cli.record_times(out, {"notebooks/04_dpo.ipynb": {"smoke": "1.0 min, 2.9 GB",
                                                      "cpu": "6.9 min, 5.8 GB"},
                           "notebooks/00_decide.ipynb": {"cpu": "3.4 min"}})  # peak not measured
    text = out.read_text()
    assert cli.notebook_peaks(text, "cpu") == {"notebooks/04_dpo.ipynb": 5.8}
    assert cli.notebook_peaks(text, "gpu") == {}
    warned = cli.memory_warnings(cli.notebook_peaks(text, "cpu"), total_gb=4.0, profile="cpu")
    assert len(warned) == 1 and "04_dpo.ipynb peaked at 5.8 GB" in warned[0] and "4.0 GB" in warned[0]
    assert cli.memory_warnings(cli.notebook_peaks(text, "cpu"), total_gb=24.0, profile="cpu") == []
    assert cli.memory_warnings(cli.notebook_peaks(text, "smoke"), total_gb=4.0, profile="smoke") == []
