#!/usr/bin/env python3
"""Keep the probe candidates that the base model answers correctly: data/probes/probes.jsonl.

Forgetting probes only mean something if the base model gets them right before fine-tuning:
a probe it already fails cannot show that tuning made it worse. So this script asks the base
model (SmolLM2-135M-Instruct, via `course_utils.load_model()`) every candidate question with
greedy decoding, marks an answer correct when any of the row's `accept` strings appears in it
(case-insensitive), and writes the correct rows, unchanged, to probes.jsonl.

    HF_HUB_OFFLINE=1 python data/make_probes.py

Greedy decoding is deterministic, so on the same model and library versions the result is the
same every run; a different torch build can flip a borderline answer, which is why probes.jsonl
is committed rather than rebuilt at test time.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

DATA_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(DATA_DIR.parent))  # run from anywhere: find course_utils in the repo

CANDIDATES = DATA_DIR / "probes" / "candidates.jsonl"
PROBES = DATA_DIR / "probes" / "probes.jsonl"
MAX_NEW_TOKENS = 32


def is_correct(answer: str, accept: list[str]) -> bool:
    """True when any accepted string appears in the answer, ignoring case."""
    from course_utils.evals import contains_any  # the same matching chapter 06 scores with
    return contains_any(answer, accept)


def main() -> None:
    """Ask the base model every candidate; write the ones it gets right."""
    import course_utils
    from course_utils import evals

    rows = [json.loads(line) for line in CANDIDATES.read_text(encoding="utf-8").splitlines()]
    model, tokenizer = course_utils.load_model()
    # The rows' final assistant turn (the reference answer) is held back by generate().
    answers = evals.generate(model, tokenizer, rows, max_new_tokens=MAX_NEW_TOKENS)
    kept = [row for row, answer in zip(rows, answers) if is_correct(answer, row["accept"])]
    for row, answer in zip(rows, answers):
        mark = "ok  " if is_correct(answer, row["accept"]) else "MISS"
        print(f"{mark} {row['id']} {row['messages'][0]['content']!r} -> {answer[:70]!r}")
    with open(PROBES, "w", encoding="utf-8", newline="\n") as f:
        f.writelines(json.dumps(row, ensure_ascii=False) + "\n" for row in kept)
    print(f"{len(kept)} of {len(rows)} probes passed; wrote {PROBES.relative_to(DATA_DIR.parent)}")


if __name__ == "__main__":
    main()
