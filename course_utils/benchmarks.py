"""docs/benchmarks.md, written by several benchmarks: each owns one marked section.

`course bench` writes the notebook times (section "notebooks"), bench/bench_data.py the data
checks (section "data"). A section lies between `<!-- bench:NAME -->` and
`<!-- /bench:NAME -->`; a writer replaces its own section and keeps the rest of the file, so
running one benchmark never erases the figures of another.
"""

from __future__ import annotations

import os
import platform
from pathlib import Path

HEADER = "# Benchmarks\n\nWritten by `make bench`.\n"  # the start of a new file


def machine() -> str:
    """This machine in a few words for a benchmark heading, e.g. 'x86_64, 2 cores'."""
    return f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores"


def section_markers(name: str, kind: str = "bench") -> tuple[str, str]:
    """The lines that open and close the section `name` (`kind` "results" marks the README's
    generated results table)."""
    return f"<!-- {kind}:{name} -->", f"<!-- /{kind}:{name} -->"


def replace_section(text: str, name: str, body: str, kind: str = "bench") -> str:
    """`text` with the section `name` holding `body`: replaced where it is, else appended."""
    start, end = section_markers(name, kind)
    block = f"{start}\n{body.strip()}\n{end}\n"
    opened, closed = text.count(start), text.count(end)
    if opened == closed == 0:
        return text.rstrip("\n") + "\n\n" + block if text.strip() else block
    first, last = text.find(start), text.find(end)
    if opened != 1 or closed != 1 or last < first:
        raise ValueError(f"the markers of section {name!r} are broken ({opened} {start}, "
                         f"{closed} {end}): make one pair, opening line first, by hand.")
    rest = text[last + len(end):]
    return text[:first] + block + rest.removeprefix("\n")


def write_section(path: str | Path, name: str, body: str) -> Path:
    """Put `body` in the section `name` of the Markdown file at `path` (created when missing),
    leaving the rest of the file as it was; returns the path."""
    path = Path(path)
    text = path.read_text(encoding="utf-8") if path.exists() else HEADER
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(replace_section(text, name, body), encoding="utf-8")
    return path
