"""The course's headline numbers, machine-readable: docs/results.json and the README's table.

Introduced in notebooks/00_decide.ipynb; every chapter records its headline results with
`record` (also importable as `course_utils.record_result`, the name the notebooks use, so a
notebook's own variable called `results` cannot hide it). The file holds, per notebook, each named result as counts with their interval or as
a single value:

    {"06_evaluate": {"tickets/lora": {"hits": 55, "n": 200, "low": 0.22, "high": 0.34},
                     "tickets/p_lora_vs_best": {"value": 0.0004}}}

A learner's own run must never rewrite the course's figures, so `record` writes only when the
environment variable COURSE_RECORD=1 is set, as `make notebooks` does for the committed cpu
run; otherwise it returns the entry and writes nothing. The first result a notebook records in
a process replaces that notebook's previous entries, so a result a chapter no longer computes
does not linger. `readme_table` renders the file as the Markdown table the README shows
(`course results --readme README.md` writes it between its markers).
"""

from __future__ import annotations

import fcntl
import json
import math
import os
from contextlib import contextmanager
from pathlib import Path

from . import benchmarks, data
from .evals import Metric

ROOT = Path(__file__).resolve().parent.parent
RESULTS_PATH = ROOT / "docs" / "results.json"
RECORD_VARIABLE = "COURSE_RECORD"
_started: set[tuple[str, str]] = set()  # (file, notebook) whose old entries this process cleared


def recording() -> bool:
    """True when this run should write docs/results.json (COURSE_RECORD=1)."""
    return os.environ.get(RECORD_VARIABLE, "").strip() == "1"


def entry(result) -> dict:
    """The JSON form of a result: a Metric (or anything with hits, n, low, high) as counts
    with its interval, a plain number as {"value": ...}."""
    if all(hasattr(result, a) for a in ("hits", "n", "low", "high")):
        hits, n = int(result.hits), int(result.n)
        if not 0 <= hits <= n:
            raise ValueError(f"hits={hits}, n={n}: a recorded rate needs 0 <= hits <= n")
        return {"hits": hits, "n": n, "low": round(float(result.low), 4),
                "high": round(float(result.high), 4)}
    if isinstance(result, bool) or not isinstance(result, (int, float)) or not math.isfinite(result):
        raise TypeError(f"cannot record {result!r}: give a Metric (hits/n with an interval) "
                        f"or a finite number (a p-value, a time, a count)")
    return {"value": float(result)}


def record(notebook: str, name: str, result, path: str | Path | None = None) -> dict:
    """Record one headline result of `notebook` (its file stem, e.g. "06_evaluate") under
    `name` (e.g. "tickets/lora"); returns the entry. Writes only when COURSE_RECORD=1."""
    if not notebook or not name or "\n" in notebook + name:
        raise ValueError(f"notebook={notebook!r}, name={name!r}: both must be non-empty, one line")
    item = entry(result)
    if not recording():
        return item
    path = Path(path) if path is not None else RESULTS_PATH
    with _locked(path):
        results = load(path)
        if (str(path), notebook) not in _started:
            results[notebook] = {}
            _started.add((str(path), notebook))
        results.setdefault(notebook, {})[name] = item
        data.write_json_atomic(path, {nb: results[nb] for nb in sorted(results)})
    print(f"recorded in {path.name}: {notebook} {name} = {describe(item)}")
    return item


def load(path: str | Path | None = None) -> dict:
    """The recorded results ({} when the file does not exist yet)."""
    path = Path(path) if path is not None else RESULTS_PATH
    if not path.exists():
        return {}
    try:
        results = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise ValueError(f"{path}:{err.lineno}:{err.colno}: not valid JSON ({err.msg}); restore "
                         f"it with `git checkout {path.name}` or delete it and re-run "
                         f"`make notebooks`") from None
    if not isinstance(results, dict) or not all(isinstance(v, dict) for v in results.values()):
        raise ValueError(f"{path}: expected {{notebook: {{result name: entry}}}}")
    return results


def describe(item: dict) -> str:
    """One entry as text: '55/200 = 28% [22%, 34%]' or the value."""
    if "hits" in item:
        return str(Metric(item["hits"], item["n"], item["low"], item["high"]))
    value = item["value"]
    return f"{value:.3g}" if abs(value) < 1 else f"{value:,.4g}"


def readme_table(results: dict) -> str:
    """The README's results table: one row per recorded result, chapters in order."""
    lines = ["| chapter | result | measured |", "|---|---|---|"]
    for notebook in sorted(results):
        for name, item in results[notebook].items():
            lines.append(f"| [{notebook}](notebooks/{notebook}.ipynb) | {name} | "
                         f"{describe(item)} |")
    if len(lines) == 2:
        lines.append("| - | nothing recorded yet: run `make notebooks` | - |")
    note = ("Generated from docs/results.json by `course results --readme README.md`; each "
            "figure is printed by its notebook's committed cpu-profile run. Intervals are 95% "
            "Wilson intervals.")
    return "\n".join(lines) + "\n\n" + note


def readme_with_table(readme_text: str, results: dict) -> str:
    """The README's text with the results table between its markers made from `results`."""
    return benchmarks.replace_section(readme_text, "table", readme_table(results),
                                      kind="results")


def write_readme_table(readme: str | Path, path: str | Path | None = None) -> Path:
    """Replace the results table between the README's markers with one built from the file."""
    readme = Path(readme)
    readme.write_text(readme_with_table(readme.read_text(encoding="utf-8"), load(path)),
                      encoding="utf-8")
    return readme


@contextmanager
def _locked(path: Path):
    """Hold an exclusive lock beside `path`, so two notebooks recording at once do not lose
    each other's entries."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_suffix(path.suffix + ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
