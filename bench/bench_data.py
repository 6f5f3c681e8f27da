"""Time course_utils.data's checks on a 100,000-row chat file, and print a Markdown table.

    HF_HUB_OFFLINE=1 .venv/bin/python bench/bench_data.py [--rows 100000] [--out FILE]

With --out (`make bench`: docs/benchmarks.md) the table replaces the file's "data" section
and leaves the rest of it (the notebook times) as it was.

The file is built from the course's ticket rows (data/tickets/*.jsonl), seeded: each row joins
four sentences of random tickets and a random order reference, so rows are distinct, as in a
real ticket export. Then it plants exact duplicates (1%: case and spacing changed, new id),
near duplicates (1%: one word of the ticket replaced) and bad lines (0.1%: broken JSON, blank,
empty reply, unknown role), and checks that each check finds them.
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import re
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from course_utils import benchmarks, data  # noqa: E402

BAD_LINES = ['{"messages": [{"role": "user", "content": "cut off', "",
             '{"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": ""}]}',
             '{"messages": [{"role": "customer", "content": "Hi"}, {"role": "assistant", "content": "{}"}]}']


def ticket_pool() -> tuple[list[str], list[dict]]:
    """Sentences of every course ticket, and the ticket rows (for their system and reply)."""
    rows = [row for split in ("train", "val", "test") for row in data.load_split("tickets", split)]
    sentences = [s for row in rows for s in re.split(r"(?<=[.!?])\s+|\n+", row["messages"][1]["content"])
                 if len(s.split()) >= 3]
    return sentences, rows


def make_rows(n: int, seed: int = 0) -> tuple[list[str], dict]:
    """n JSONL lines with planted duplicates and bad lines; and what was planted: counts, and
    (copy id, source id) pairs of the near copies."""
    rng = random.Random(seed)
    sentences, tickets = ticket_pool()
    rows = []
    for index in range(n):
        ticket = rng.choice(tickets)
        text = " ".join(rng.sample(sentences, 4)) + f" Ref BB-{rng.randrange(10**6):06d}."
        rows.append({"id": f"b{index:06d}", "label": ticket["label"], "messages": [
            ticket["messages"][0], {"role": "user", "content": text}, ticket["messages"][2]]})
    planted = {"exact": 0, "near": 0, "bad": 0, "near_pairs": []}
    for index in rng.sample(range(n // 2, n), n // 50):  # 2%: half exact, half near copies
        source = rows[rng.randrange(n // 2)]
        source_text = source["messages"][1]["content"]
        copy = json.loads(json.dumps(source))
        copy["id"] = f"{source['id']}-copy{index}"
        user = copy["messages"][1]
        if planted["exact"] < n // 100:
            user["content"], kind = "  " + user["content"].upper(), "exact"
        else:
            words = user["content"].split()
            words[rng.randrange(len(words))] = rng.choice(["kettle", "grinder", "scale", "app"])
            user["content"], kind = " ".join(words), "near"
            planted["near_pairs"].append((copy["id"], source["id"], source_text))
        rows[index] = copy
        planted[kind] += 1
    lines = [json.dumps(row, ensure_ascii=False) for row in rows]
    planted["copy_text"] = {row["id"]: row["messages"][1]["content"] for row in rows
                            if "-copy" in row["id"]}
    for index in rng.sample(range(n), n // 1000):
        lines[index] = BAD_LINES[planted["bad"] % len(BAD_LINES)]
        planted["bad"] += 1
    return lines, planted


def shingles(text: str) -> set[tuple[str, ...]]:
    """Word 3-grams of a text, case folded (as near_duplicates compares them)."""
    words = re.findall(r"\w+", text.casefold())
    return {tuple(words[i:i + 3]) for i in range(max(len(words) - 2, 1))}


def near_recall(rows: list[dict], near: list[tuple[int, int, float]], planted: dict) -> str:
    """How many planted near copies with Jaccard >= 0.8 to their source were found."""
    found = {(rows[j]["id"], rows[i]["id"]) for j, i, _ in near}
    ids = {row["id"] for row in rows}
    similar = [(copy, source) for copy, source, text in planted["near_pairs"]
               if copy in ids and source in ids and len(shingles(text) & shingles(
                   planted["copy_text"][copy])) / len(shingles(text) | shingles(
                       planted["copy_text"][copy])) >= 0.8]
    hits = sum(pair in found for pair in similar)
    return f"{hits} of the {len(similar)} planted near copies with Jaccard >= 0.8"


def timed(function, *args, **kwargs):
    """(seconds, result) of one call."""
    start = time.perf_counter()
    result = function(*args, **kwargs)
    return time.perf_counter() - start, result


def main(argv: list[str] | None = None) -> int:
    """Build the file, time each check, print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--max-length", type=int, default=256)
    parser.add_argument("--out", default=None,
                        help='also write the table into the "data" section of this Markdown file')
    args = parser.parse_args(argv)
    lines, planted = make_rows(args.rows)
    from course_utils.cli import load_course_tokenizer
    tokenizer = load_course_tokenizer()
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "big.jsonl"
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
        size_mb = path.stat().st_size / 1e6
        seconds, report = timed(data.validate, path)
        results = [("validate(path)", seconds, f"{len(report.errors)} errors, "
                    f"{report.stats['duplicates']} duplicates")]
        seconds, long_report = timed(data.validate, path, tokenizer=tokenizer,
                                     max_length=args.max_length)
        results.append((f"validate(path, tokenizer, max_length={args.max_length})", seconds,
                        f"{long_report.stats['tokens']['n_over']} over max_length, "
                        f"median {long_report.stats['tokens']['median']:g} tokens"))
    rows = report.valid_rows
    seconds, exact = timed(data.exact_duplicates, rows)
    results.append(("exact_duplicates(rows)", seconds, f"{len(exact)} found"))
    seconds, near = timed(data.near_duplicates, rows)
    results.append(("near_duplicates(rows)", seconds, f"{len(near)} found (exact copies "
                    f"included); {near_recall(rows, near, planted)}"))
    seconds, (kept, removed) = timed(data.dedupe, rows)
    results.append(("dedupe(rows)", seconds, f"{len(removed)} removed, {len(kept)} kept"))
    text = section(results, args.rows, size_mb, planted)
    print(text)
    if args.out:
        print(f"wrote the data section of {benchmarks.write_section(args.out, 'data', text)}")
    return 0


def section(results: list[tuple[str, float, str]], n: int, size_mb: float, planted: dict) -> str:
    """The Markdown section: what was measured, the table of timings, and the totals."""
    machine = benchmarks.machine()
    seconds = dict((name, s) for name, s, _ in results)
    check = seconds["validate(path)"] + seconds["dedupe(rows)"]
    head = (f"## Data checks ({time.strftime('%Y-%m-%d')}, {machine}, Python "
            f"{platform.python_version()})\n\n`bench/bench_data.py`: {n:,} chat rows "
            f"({size_mb:.0f} MB), planted {planted['exact']} exact and {planted['near']} near "
            f"duplicates and {planted['bad']} bad lines.\n\n| step | seconds | rows/s | result |\n"
            "|---|---:|---:|---|\n")
    rows = "\n".join(f"| `{name}` | {s:.2f} | {n / s:,.0f} | {found} |"
                     for name, s, found in results)
    return (f"{head}{rows}\n\nValidate the file, then dedupe its valid rows: {check:.1f} s in "
            f"all; every step above: {sum(seconds.values()):.1f} s.\n")


if __name__ == "__main__":
    sys.exit(main())
