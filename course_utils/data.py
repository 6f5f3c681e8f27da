"""Data: read and write the course's JSONL files, with errors that name file:line.

Introduced in notebooks/00_decide.ipynb (loading the frozen splits); chapter 01 adds
validation, de-duplication, splitting and statistics.
"""

from __future__ import annotations

import json
from pathlib import Path

DATA_DIR = Path(__file__).resolve().parent.parent / "data"


class DataError(ValueError):
    """A data file is malformed; the message names the file, the line and the fix."""


def load_jsonl(path: str | Path) -> list[dict]:
    """Rows of a JSONL file (one JSON object per line); raises DataError naming file:line."""
    path = Path(path)
    if not path.exists():
        raise DataError(f"{path}: no such file. Course data lives under {DATA_DIR}; "
                        f"regenerate it with `python data/generate.py`.")
    rows = []
    with path.open("rb") as handle:
        for number, raw in enumerate(handle, start=1):
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as err:
                raise DataError(f"{path}:{number}: not valid UTF-8 (byte {err.start}); "
                                f"re-save the file as UTF-8") from None
            if not text.strip():
                raise DataError(f"{path}:{number}: blank line; delete it (JSONL has one "
                                f"object per line)")
            try:
                row = json.loads(text)
            except json.JSONDecodeError as err:
                raise DataError(f"{path}:{number}: not valid JSON ({err.msg} at column "
                                f"{err.colno}); fix or delete the line") from None
            if not isinstance(row, dict):
                raise DataError(f"{path}:{number}: a JSON {type(row).__name__}, not an object; "
                                f"each line must be one {{...}} record")
            rows.append(row)
    return rows


def write_jsonl(rows: list[dict], path: str | Path) -> Path:
    """Write rows as JSONL (UTF-8, one object per line); returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8", newline="\n") as handle:
        for row in rows:
            handle.write(json.dumps(row, ensure_ascii=False) + "\n")
    return path


def load_split(dataset: str, split: str) -> list[dict]:
    """A frozen split of a course dataset, e.g. load_split('tickets', 'test')."""
    return load_jsonl(DATA_DIR / dataset / f"{split}.jsonl")


def take(rows: list, n: int) -> list:
    """n rows spread evenly through `rows`, in order (all when n >= len): a small but
    representative evaluation slice, the same on every run."""
    if n >= len(rows):
        return list(rows)
    return [rows[i * len(rows) // n] for i in range(n)]
