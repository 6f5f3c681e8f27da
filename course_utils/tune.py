"""Your own task: the course's steps on a learner's file (`course tune FILE`, chapter 09).

Chapters 00-07 decide, on Brightbrew's tickets, whether a fine-tune is worth keeping. This
module does the same on any file of examples, one function per step, so that chapter 09 can
walk the steps one by one and `course tune` can run them all:

1. `read_task`: read a chat JSONL, prompt/completion JSONL or CSV/TSV file and report every
   problem with its file line (and, in a CSV, its column); nothing is dropped silently.
2. `prepare`: de-duplicate, then a seeded split (whole groups with `group_col`) with a leakage
   check, written next to the output so a re-run scores the same rows.
3. `cheaper_rungs`: zero-shot with the learner's instruction, fixed few-shot, retrieved
   few-shot, the nearest training example's answer copied (no model), and constrained
   decoding when every answer is JSON; the best chosen on validation, then scored on test.
4. `fine_tune`: LoRA with early stopping and checkpoints (resumable after Ctrl-C), its time
   estimated first and capped by a budget if asked.
5. `score` fits the answers (JSON fields and exact match, normalised labels, or ROUGE-L for
   free text); `decide` compares the fine-tune with the best rung on the same test rows
   (McNemar's paired test); `forgetting_probes` asks the general questions of chapter 06.
6. `register` files the adapter and the best prompt in the course's registry (the adapter
   goes live only if it wins); `course_utils.tune_report` writes report.md, report.html and
   summary.json.

Everything runs on the learner's machine; nothing is uploaded.
"""

from __future__ import annotations

import codecs
import contextlib
import copy
import csv
import io
import json
import math
import re
import shutil
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from . import data, env, evals, prompts, rag
from .data import _count

MIN_ROWS = 50  # below this (after de-duplication) the course refuses to fine-tune
FEW_ROWS = 100  # below this the report warns that the held-out slices are too small to trust
MAX_CELL_CHARS = 100_000  # one example's input or output; longer is almost always a stray quote
ENUM_LIMIT = 20  # a JSON field with at most this many distinct values becomes an enum
LABEL_WORDS = 4  # answers of at most this many words, with few distinct values, are labels
LABEL_VALUES = 50
TEXT_HIT = 0.5  # free text: a reply "close to the reference" has ROUGE-L F1 of at least this
SIGNIFICANCE = 0.05  # the paired test's threshold for "better by more than chance"
DEFAULT_LORA = dict(r=16, alpha=32, dropout=0.0)  # the course's ticket adapter (chapters 03, 06)
DEFAULT_STOP = dict(max_epochs=4, patience=2)  # as the course's ticket runs
FORMATS = {".jsonl": "jsonl", ".ndjson": "jsonl", ".csv": "csv", ".tsv": "tsv", ".tab": "tsv"}


class TaskError(Exception):
    """The file cannot be read at all, or the arguments do not fit it (exit code 2)."""


class DataProblems(Exception):
    """The data has problems that must be fixed before anything is trained (exit code 1)."""

    def __init__(self, message: str, problems: list[data.Problem] = ()):
        super().__init__(message)
        self.problems = list(problems)


# ---------------------------------------------------------------------------- reading

@dataclass
class Task:
    """A learner's examples as chat rows, with every problem found reading them."""

    source: str
    format: str  # "chat", "prompt_completion", "csv", "tsv" or "records" (JSONL with columns)
    rows: list[dict]  # {"id", "line", "group"?, "messages": [...]}, in file order
    errors: list[data.Problem] = field(default_factory=list)
    warnings: list[data.Problem] = field(default_factory=list)
    system: str | None = None  # the learner's instruction, when one was given or found
    group_col: str | None = None

    @property
    def ok(self) -> bool:
        return not self.errors

    def add(self, line: int, message: str, fix: str, kind: str) -> None:
        problem = data.Problem(line, message, fix, kind, self.source)
        (self.warnings if kind in data.WARNING_KINDS else self.errors).append(problem)

    def __str__(self) -> str:
        verdict = "OK" if self.ok else "NOT OK"
        lines = [f"{self.source}: {verdict}: {len(self.rows)} examples read ({self.format}); "
                 f"{_count(len(self.errors), 'error')}, {_count(len(self.warnings), 'warning')}"]
        kinds = Counter(p.kind for p in self.errors + self.warnings)
        if kinds:
            lines.append("  problems: " + ", ".join(f"{k} {n}" for k, n in kinds.most_common()))
        for title, found in (("errors", self.errors), ("warnings", self.warnings)):
            if found:
                lines += [f"{title}:"] + [f"  {problem}" for problem in found]
        return "\n".join(lines)


def read_task(path: str | Path, input_col: str | None = None, output_col: str | None = None,
              system: str | None = None, group_col: str | None = None) -> Task:
    """Every example of the file as a chat row, and every problem in it with its line.

    CSV/TSV (and JSONL whose rows are plain records) need `input_col` and `output_col`: the
    input becomes the user turn, the output the assistant turn, `system` (the learner's
    instruction) a system turn before them. Chat JSONL rows are taken as they are (`system`
    is added to rows that have none); prompt/completion rows become chats. `group_col` names
    the column (or key) whose rows must stay in one split. Raises TaskError for a file that
    cannot be read or arguments that do not fit it; problems in the content never raise.
    """
    path = Path(path)
    if not path.exists():
        raise TaskError(f"{path}: no such file. Fix: give the path of your CSV, TSV or JSONL "
                        f"file of examples.")
    if path.is_dir():
        raise TaskError(f"{path}: a folder, not a file. Fix: name the data file in it.")
    kind = FORMATS.get(path.suffix.lower())
    if kind is None:
        raise TaskError(f"{path}: unknown file type {path.suffix or '(no extension)'!r}. Fix: "
                        f"save it as .csv, .tsv or .jsonl (one JSON object per line).")
    if kind != "jsonl" and not (input_col and output_col):
        raise TaskError(f"{path}: a {kind.upper()} file needs --input-col and --output-col (the "
                        f"columns holding each example's input and the answer wanted); "
                        f"{_header_hint(path, kind)}")
    if system is not None and not system.strip():
        raise TaskError("--system is empty: give the instruction a user would write, or leave "
                        "it out.")
    try:
        raw = path.read_bytes()
    except OSError as err:
        raise TaskError(f"{path}: cannot be read ({err.strerror or err}). Fix: check that the "
                        f"file exists and that you may read it.") from None
    if b"\x00" in raw[:8192]:
        raise TaskError(f"{path}: a binary file (it holds NUL bytes), not text. Fix: export "
                        f"the sheet as CSV UTF-8, or write JSONL.")
    if kind == "jsonl" and not (input_col or output_col):
        task = _read_chat_jsonl(path, system, group_col)
    elif kind == "jsonl":
        task = _read_records_jsonl(path, input_col, output_col, system, group_col)
    else:
        task = _read_table(path, raw, "\t" if kind == "tsv" else ",", input_col, output_col,
                           system, group_col)
    if not task.rows and not task.errors:
        task.add(0, "no examples", "add one example per row below the header (CSV) or one "
                 "object per line (JSONL).", "no_rows")
    _check_lengths(task)
    task.errors.sort(key=lambda p: p.line)
    task.warnings.sort(key=lambda p: p.line)
    return task


def _header_hint(path: Path, kind: str) -> str:
    """'its columns are: a, b, c' read from the file's first line, when it can be read."""
    try:
        with path.open(encoding="utf-8-sig", errors="replace", newline="") as handle:
            header = next(csv.reader(handle, delimiter="\t" if kind == "tsv" else ","), [])
    except OSError:
        return "e.g. --input-col text --output-col label."
    if not header:
        return "its first line, the header, is empty."
    return f"its columns are: {', '.join(header)}."


def _chat(user: str, answer: str, system: str | None) -> list[dict]:
    return ([{"role": "system", "content": system}] if system else []) + [
        {"role": "user", "content": user}, {"role": "assistant", "content": answer}]


def _bad_utf8_lines(raw: bytes) -> dict[int, str]:
    """{line number: what is wrong} for every line that is not valid UTF-8."""
    bad, offset = {}, 0
    for number, line in enumerate(raw.split(b"\n"), start=1):
        try:
            line.decode("utf-8")
        except UnicodeDecodeError as err:
            bad[number] = (f"not valid UTF-8 (byte 0x{line[err.start]:02x} at byte "
                           f"{err.start} of the line, {offset + err.start} of the file)")
        offset += len(line) + 1
    return bad


UTF8_FIX = ("re-save the file as UTF-8 (in Excel: Save As > CSV UTF-8; in Google Sheets: "
            "File > Download > CSV, which is UTF-8).")


def _read_table(path: Path, raw: bytes, delimiter: str, input_col: str, output_col: str,
                system: str | None, group_col: str | None) -> Task:
    """A CSV or TSV file: header on line 1, then one example per record (a quoted cell may
    span lines; a record is named by the line it starts on)."""
    task = Task(str(path), "tsv" if delimiter == "\t" else "csv", [], system=system,
                group_col=group_col)
    if raw.startswith(codecs.BOM_UTF8):
        raw = raw[len(codecs.BOM_UTF8):]  # Excel writes one: harmless here, so not reported
    bad_lines = _bad_utf8_lines(raw)
    for number, message in bad_lines.items():
        task.add(number, message, UTF8_FIX, "invalid_utf8")
    text = raw.decode("utf-8", errors="replace")
    old_limit = csv.field_size_limit()
    csv.field_size_limit(sys.maxsize)  # read huge cells whole, then report them
    try:
        reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
        header, header_end = _next_record(reader, task, 0)
        if header is None:
            task.add(1, "no header line", f"put the column names on line 1, e.g. "
                     f"{input_col}{delimiter}{output_col}.", "no_header")
            return task
        header = [name.strip() for name in header]
        wanted = [("--input-col", input_col), ("--output-col", output_col)]
        if group_col:
            wanted.append(("--group-col", group_col))
        missing = [(flag, name) for flag, name in wanted if name not in header]
        for flag, name in missing:
            task.add(1, f'no column "{name}" in the header (columns: {", ".join(header)})',
                     f"pass {flag} with one of those names, or rename the column in line 1.",
                     "missing_column")
        if missing:
            return task
        where = {name: header.index(name) for _, name in wanted}
        end = header_end
        while True:
            start = end + 1
            record, end = _next_record(reader, task, end)
            if record is None:
                break
            if record == []:
                task.add(start, "blank line", "delete it.", "blank_line")
                continue
            if any(line in bad_lines for line in range(start, end + 1)):
                continue  # already reported, and its text is not what the file says
            if len(record) != len(header):
                task.add(start, f"{len(record)} cells, but the header has {len(header)}",
                         f"quote every cell that holds a {_delimiter_name(delimiter)} or a line "
                         f'break ("like, this"), and give every row one cell per column.',
                         "ragged_row")
                continue
            _add_record(task, start, {name: record[i] for name, i in where.items()},
                        input_col, output_col)
    finally:
        csv.field_size_limit(old_limit)
    return task


def _delimiter_name(delimiter: str) -> str:
    return "tab" if delimiter == "\t" else "comma"


def _next_record(reader, task: Task, end: int) -> tuple[list[str] | None, int]:
    """(the next record or None at the end, the file line it ends on); a record the csv
    module cannot parse (a quote left open) is reported and ends the reading."""
    try:
        record = next(reader)
    except StopIteration:
        return None, end
    except csv.Error as err:
        task.add(end + 1, f"the CSV cannot be parsed from here on ({err})", 'close the quote '
                 'that opens on this line, or double a quote inside a quoted cell ("").',
                 "unparseable")
        return None, end
    return record, reader.line_num


def _add_record(task: Task, line: int, cells: dict, input_col: str, output_col: str) -> None:
    """One example from its input, output and group cells, or the problems that stop it."""
    fine = True
    for name, value in cells.items():
        if name == task.group_col and isinstance(value, (int, float)) and not isinstance(value, bool):
            cells[name] = value = str(value)  # a customer number groups as well as a name
        if not isinstance(value, str):
            task.add(line, f'"{name}" is {data._a_json_type(value)}, not text',
                     f'write "{name}" as a string (JSON-encode a record: json.dumps).',
                     "not_text")
            fine = False
        elif not value.strip():
            task.add(line, f'empty "{name}" cell', "fill it in, or delete the row: an example "
                     "needs an input and the answer wanted.", "empty_cell")
            fine = False
        elif len(value) > MAX_CELL_CHARS:
            task.add(line, f'the "{name}" cell holds {len(value):,} characters (the course '
                     f'reads at most {MAX_CELL_CHARS:,} per cell)', "a cell this long is "
                     "usually a quote left open that swallowed the rows after it: close it; "
                     "a real input this long needs retrieval over chunks, not fine-tuning.",
                     "too_long_cell")
            fine = False
    if fine:
        row = {"id": f"line-{line}", "line": line,
               "messages": _chat(cells[input_col].strip(), cells[output_col].strip(),
                                 task.system)}
        if task.group_col:
            row["group"] = cells[task.group_col].strip()
        task.rows.append(row)


def _read_records_jsonl(path: Path, input_col: str | None, output_col: str | None,
                        system: str | None, group_col: str | None) -> Task:
    """JSONL whose rows are plain records: the named keys play the CSV's columns."""
    if not (input_col and output_col):
        raise TaskError("give both --input-col and --output-col (or neither, for chat or "
                        "prompt/completion JSONL).")
    report = data.validate(path)  # reads every line; its chat checks do not apply here
    task = Task(str(path), "records", [], system=system, group_col=group_col)
    for problem in report.errors + report.warnings:
        if problem.kind in {"invalid_utf8", "invalid_json", "not_object", "blank_line", "bom"}:
            (task.warnings if problem.kind in data.WARNING_KINDS else task.errors).append(problem)
    bad = {p.line for p in task.errors}
    for line, row in zip(report.lines, report.rows):
        if line in bad:
            continue
        names = [input_col, output_col] + ([group_col] if group_col else [])
        absent = [name for name in names if name not in row]
        if absent:
            task.add(line, f"no {', '.join(map(repr, absent))} (keys: "
                     f"{', '.join(map(str, list(row)[:8]))})", "add the key, or pass the "
                     "--input-col / --output-col / --group-col names this file uses.",
                     "missing_key")
            continue
        _add_record(task, line, {name: row[name] for name in names}, input_col, output_col)
    return task


def _read_chat_jsonl(path: Path, system: str | None, group_col: str | None) -> Task:
    """Chat or prompt/completion JSONL, checked by data.validate (chapter 01)."""
    report = data.validate(path)
    formats = report.stats.get("formats", {})
    kind = "prompt_completion" if formats.get("prompt_completion", 0) > formats.get("chat", 0) \
        else "chat"
    task = Task(str(path), kind, [], list(report.errors), list(report.warnings),
                system=system, group_col=group_col)
    bad = {p.line for p in report.errors}
    for line, row in zip(report.lines, report.rows):
        if line in bad:
            continue
        chat = data.to_chat(row)
        messages = [dict(m) for m in chat["messages"]]
        if messages[-1]["role"] != "assistant":
            task.add(line, "the last turn is not the assistant's", "end each example with "
                     "the answer wanted, as an assistant turn.", "no_answer")
            continue
        if system and messages[0]["role"] != "system":
            messages.insert(0, {"role": "system", "content": system})
        out = {"id": str(row.get("id", f"line-{line}")), "line": line, "messages": messages}
        if group_col:
            value = row.get(group_col)
            if value is None or (isinstance(value, str) and not value.strip()):
                task.add(line, f'no "{group_col}" to group by', f'give every row a '
                         f'"{group_col}", or leave out --group-col.', "missing_key")
                continue
            out["group"] = value if isinstance(value, str) else json.dumps(value)
        task.rows.append(out)
    found = {m["content"] for r in task.rows for m in r["messages"][:1] if m["role"] == "system"}
    task.system = system or (found.pop() if len(found) == 1 else None)
    return task


def _check_lengths(task: Task) -> None:
    """Warn, by line, about outputs far longer than the rest: often a pasted-in mistake."""
    lengths = [len(evals.reference(r)) for r in task.rows]
    if len(lengths) < 20:
        return
    ordered = sorted(lengths)
    p95 = ordered[math.ceil(0.95 * len(ordered)) - 1]
    for row, n in zip(task.rows, lengths):
        if n > max(10 * p95, 2000):
            task.add(row["line"], f"the answer is {n:,} characters, over 10 times the 95th "
                     f"percentile ({p95:,})", "check it: a pasted-in mistake trains the model "
                     "to ramble.", "too_long")


def export_csv(rows: list[dict], path: str | Path, input_col: str = "input",
               output_col: str = "output", extra: tuple[str, ...] = ()) -> Path:
    """Write chat rows as a CSV a spreadsheet opens: the last user turn, the answer, and the
    keys in `extra` (e.g. "scenario"). Chapter 09 makes the tickets a stranger's file with it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow([input_col, output_col, *extra])
        for row in rows:
            writer.writerow([prompts.user_text(row), evals.reference(row),
                             *(row.get(key, "") for key in extra)])
    return path


# ---------------------------------------------------------------------------- the split

@dataclass
class Prepared:
    """The de-duplicated examples, split, and what was removed on the way."""

    train: list[dict]
    val: list[dict]
    test: list[dict]
    removed: list[dict]  # {"line", "duplicate_of", "how"} per example removed as a duplicate
    leaks: list[tuple]  # data.leakage's findings (empty when the split is clean)
    folder: Path
    reused: bool  # True when an earlier run's split (of the same data) was read back
    seed: int
    grouped: bool

    def __str__(self) -> str:
        how = "read back from the earlier run" if self.reused else "written"
        by = "whole groups per split" if self.grouped else "rows shuffled"
        return (f"{len(self.train)} train, {len(self.val)} validation, {len(self.test)} test "
                f"({by}, seed {self.seed}; {how} in {self.folder}); "
                f"{len(self.removed)} duplicates removed; {len(self.leaks)} held-out rows "
                f"repeat a training row")


SPLIT_FILE = "split.json"


def prepare(task: Task, folder: str | Path, val: float = 0.15, test: float = 0.15,
            seed: int = 0) -> Prepared:
    """De-duplicate (exact and near, data.dedupe), refuse fewer than MIN_ROWS, split with a
    seed (whole groups when the task has a group column) and check for leakage. The split is
    written into `folder` with the data's fingerprint; a later call on the same data and
    settings reads it back, so a re-run scores the very same rows."""
    if not task.ok:
        raise DataProblems(f"{task.source} has {_count(len(task.errors), 'problem')} to fix "
                           f"first", task.errors)
    folder = Path(folder)
    kept, removed = data.dedupe(task.rows)
    gone = [{"line": task.rows[i]["line"], "duplicate_of": task.rows[j]["line"], "how": how}
            for i, j, how in removed]
    if len(kept) < MIN_ROWS:
        raise DataProblems(
            f"{len(kept)} distinct examples (after removing {len(gone)} duplicates): fewer than "
            f"{MIN_ROWS}. A held-out slice of a few rows cannot tell a fine-tune from luck, and "
            f"so few examples rarely teach a behaviour. Fix: collect more examples (a few "
            f"hundred is typical), or use the prompt: few-shot and retrieval need no training")
    grouped = task.group_col is not None
    settings = {"source_sha256": data.fingerprint(kept), "val": val, "test": test, "seed": seed,
                "group_col": task.group_col}
    recorded = folder / SPLIT_FILE
    if recorded.exists():
        try:
            previous = json.loads(recorded.read_text())
            if previous.get("settings") == settings:
                parts = [data.load_jsonl(folder / f"{name}.jsonl") for name in ("train", "val", "test")]
                return Prepared(*parts, gone, previous.get("leaks", []), folder, True, seed, grouped)
        except (OSError, ValueError, data.DataError):
            pass  # unreadable: split again
    train_rows, val_rows, test_rows = data.split(kept, val=val, test=test, seed=seed,
                                                 group="group" if grouped else None)
    if not val_rows or not test_rows:
        raise DataProblems(f"the split left {len(val_rows)} validation and {len(test_rows)} "
                           f"test rows: with {task.group_col!r} there are too few groups. "
                           f"Fix: group by something with more values, or leave out --group-col")
    leaks = data.leakage(train_rows, val_rows, test_rows)
    folder.mkdir(parents=True, exist_ok=True)
    data.write_splits(train_rows, val_rows, test_rows, folder)
    data.write_json_atomic(recorded, {"settings": settings, "removed": gone,
                                      "leaks": [list(leak) for leak in leaks],
                                      "rows": {"train": len(train_rows), "val": len(val_rows),
                                               "test": len(test_rows)}})
    return Prepared(train_rows, val_rows, test_rows, gone, leaks, folder, False, seed, grouped)


# ---------------------------------------------------------------------------- what the answers are

def answer_kind(rows: list[dict]) -> str:
    """"json" when every answer is one JSON object, "label" when answers are a few short
    values, else "text": it decides how answers are scored."""
    answers = [evals.reference(r) for r in rows]
    if answers and all(evals.parse_json_record(a) is not None for a in answers):
        return "json"
    if answers and all(len(a.split()) <= LABEL_WORDS for a in answers) \
            and len({_label(a) for a in answers}) <= LABEL_VALUES:
        return "label"
    return "text"


def _json_type(value) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    return {float: "number", str: "string", list: "array", dict: "object"}[type(value)]


def infer_schema(rows: list[dict]) -> dict:
    """A JSON schema every training answer satisfies, for constrained decoding: the keys in
    the order the answers write them, required when every answer has them; a field with at
    most ENUM_LIMIT distinct values may take only those; otherwise its types."""
    records = [json.loads(evals.reference(r)) for r in rows]
    keys: list[str] = []
    for record in records:
        keys += [key for key in record if key not in keys]
    properties = {}
    for key in keys:
        values = [record[key] for record in records if key in record]
        distinct = {json.dumps(v, sort_keys=True): v for v in values}
        scalar = all(not isinstance(v, (dict, list)) for v in values)
        if scalar and len(distinct) <= ENUM_LIMIT:
            properties[key] = {"enum": list(distinct.values())}
        else:
            types = sorted({_json_type(v) for v in values})
            if "integer" in types and "number" in types:
                types.remove("integer")
            properties[key] = ({"type": types[0]} if len(types) == 1 else
                               {"anyOf": [{"type": t} for t in types]})
    required = [key for key in keys if all(key in record for record in records)]
    return {"type": "object", "properties": properties, "required": required,
            "additionalProperties": False}


# ---------------------------------------------------------------------------- scoring

def _label(text: str) -> str:
    """A short answer folded for lenient matching: case, spaces, outer quotes and full stops."""
    return evals.normalise(text).strip(" \"'`.!").strip()


def _words(text: str) -> list[str]:
    return re.findall(r"\w+", text.lower())


def rouge_l(prediction: str, reference: str) -> float:
    """ROUGE-L F1 over lower-cased words: the longest common subsequence of the two texts,
    as a share of each, combined. 1 = the same words in the same order; 0 = none shared.
    Written out (a dozen lines) rather than imported, to show what the number counts."""
    a, b = _words(prediction), _words(reference)
    if not a or not b:
        return float(a == b)
    previous = [0] * (len(b) + 1)
    for word in a:
        current = [0]
        for j, other in enumerate(b):
            current.append(previous[j] + 1 if word == other else max(previous[j + 1], current[j]))
        previous = current
    common = previous[-1]
    if not common:
        return 0.0
    precision, recall = common / len(a), common / len(b)
    return 2 * precision * recall / (precision + recall)


@dataclass
class Scores:
    """One system's answers scored: per-row hits on the headline measure, and the rest."""

    kind: str
    measure: str  # what a hit is: "exact match", "normalised match", "ROUGE-L >= 0.5"
    hits: list[bool]
    metrics: dict[str, evals.Metric]  # every rate shown (valid JSON, fields, exact, ...)
    fields: dict[str, list[bool]] = field(default_factory=dict)  # JSON: per-field hits
    similarity: list[float] = field(default_factory=list)  # free text: ROUGE-L per row

    @property
    def metric(self) -> evals.Metric:
        return evals.rate(self.hits)

    def __str__(self) -> str:
        lines = [f"{name:24} {metric}" for name, metric in self.metrics.items()]
        if self.similarity:
            low, high = evals.bootstrap_ci(self.similarity)
            lines.append(f"{'mean ROUGE-L':24} {sum(self.similarity) / len(self.similarity):.3f} "
                         f"[{low:.3f}, {high:.3f}]")
        return "\n".join(lines)


def score(kind: str, answers: list[str], rows: list[dict]) -> Scores:
    """Score answers against each row's reference in the way the task's answers need."""
    if len(answers) != len(rows):
        raise ValueError(f"{len(answers)} answers for {len(rows)} rows: they must pair up")
    if kind == "json":
        found = evals.score_json(answers, rows)
        return Scores(kind, "exact match", found.exact, dict(found.metrics), dict(found.fields))
    references = [evals.reference(r) for r in rows]
    exact = [a.strip() == ref.strip() for a, ref in zip(answers, references)]
    if kind == "label":
        folded = [_label(a) == _label(ref) for a, ref in zip(answers, references)]
        return Scores(kind, "normalised match", folded,
                      {"exact match": evals.rate(exact), "normalised match": evals.rate(folded)})
    if kind != "text":
        raise ValueError(f"kind={kind!r}: one of json, label, text")
    similarity = [rouge_l(a, ref) for a, ref in zip(answers, references)]
    close = [s >= TEXT_HIT for s in similarity]
    return Scores(kind, f"ROUGE-L >= {TEXT_HIT:g}", close,
                  {"exact match": evals.rate(exact), f"ROUGE-L >= {TEXT_HIT:g}": evals.rate(close)},
                  similarity=similarity)


# ---------------------------------------------------------------------------- the cheaper rungs

RUNGS = ("nearest", "zero-shot", "few-shot", "retrieved", "constrained")  # cheapest first
RUNG_NAMES = {"nearest": "nearest training example's answer (no model)",
              "zero-shot": "zero-shot (your instruction)",
              "few-shot": "few-shot (3 fixed examples)",
              "retrieved": "retrieved few-shot (the 3 most similar examples)",
              "constrained": "retrieved few-shot, decoding constrained to the inferred schema"}
SHOTS = 3


def fixed_examples(train_rows: list[dict], k: int = SHOTS) -> list[dict]:
    """k training examples shown to every input: the first example of each of the k most
    common answers (labels), or the first k with different answers."""
    counts = Counter(evals.reference(r) for r in train_rows)
    chosen = []
    for answer, _ in counts.most_common(k):
        chosen.append(next(r for r in train_rows if evals.reference(r) == answer))
    return chosen


def _input_turns(row: dict) -> list[dict]:
    """The turns before the answer, without the system turn (a rung puts its own first)."""
    return [m for m in evals.prompt_messages(row) if m["role"] != "system"]


def _with_examples(row: dict, examples: list[dict], system: str | None) -> list[dict]:
    """Chapter 00's prompt (prompts.as_prompt), ending in all of the row's input turns."""
    return prompts.as_prompt("", system, examples)[:-1] + _input_turns(row)


def rung_prompts(rung: str, rows: list[dict], train_rows: list[dict],
                 system: str | None) -> list[list[dict]]:
    """The chat each row is asked as, on one rung (not "nearest", which asks no model)."""
    if rung == "zero-shot":
        return [_with_examples(row, [], system) for row in rows]
    if rung == "few-shot":
        shots = fixed_examples(train_rows)
        return [_with_examples(row, shots, system) for row in rows]
    if rung in ("retrieved", "constrained"):
        index = rag.BM25([{"text": prompts.user_text(r), "row": r} for r in train_rows])
        return [_with_examples(row, [hit.doc["row"] for hit in
                                     reversed(index.search(prompts.user_text(row), k=SHOTS))],
                               system) for row in rows]
    raise ValueError(f"rung {rung!r}: one of {', '.join(RUNGS[1:])}")


def nearest_answers(rows: list[dict], train_rows: list[dict]) -> list[str]:
    """Each row's answer copied from its most similar training example (BM25 over the
    input): the floor any model has to beat, at no cost."""
    index = rag.BM25([{"text": prompts.user_text(r), "row": r} for r in train_rows])
    return [evals.reference(index.search(prompts.user_text(row), k=1)[0].doc["row"])
            for row in rows]


def max_new_tokens(tokenizer, train_rows: list[dict], profile=None) -> int:
    """Room for the longest training answer and a fifth more (the smoke profile's budget at
    most; 512 at most otherwise)."""
    profile = env.get_profile(profile)
    lengths = [len(ids) for ids in tokenizer([evals.reference(r) for r in train_rows[:2000]],
                                             add_special_tokens=False)["input_ids"]]
    wanted = int(max(lengths, default=16) * 1.2) + 8
    return min(wanted, profile.max_new_tokens if profile.name == "smoke" else 512)


@dataclass
class Rungs:
    """The cheaper rungs' answers and scores: every rung on validation, the best on test."""

    kind: str
    val: dict[str, Scores]
    answers: dict[str, dict[str, list[str]]]  # rung -> split -> answers
    best: str  # chosen on validation (most hits; a tie goes to the cheaper rung)
    test: Scores  # the best rung on the test rows
    schema: dict | None
    skipped: dict[str, str]  # rung -> why it was not run

    def table(self) -> str:
        lines = [f"{'rung (validation)':64} {self.val[self.best].measure}"]
        for rung, found in self.val.items():
            mark = "  <- best" if rung == self.best else ""
            lines.append(f"{RUNG_NAMES[rung]:64} {found.metric}{mark}")
        for rung, why in self.skipped.items():
            lines.append(f"{RUNG_NAMES[rung]:64} not run: {why}")
        lines.append(f"best on test: {RUNG_NAMES[self.best]}: {self.test.metric}")
        return "\n".join(lines)


def cheaper_rungs(model, tokenizer, split: Prepared, system: str | None, name: str,
                  profile=None, show: bool = True) -> Rungs:
    """Every cheaper rung answered on (up to the profile's n_eval) validation rows, the best
    one then on the test rows; answers are cached (runs.generate), so a re-run is quick."""
    from . import runs
    profile = env.get_profile(profile)
    rows = {"val": data.take(split.val, profile.n_eval), "test": data.take(split.test, profile.n_eval)}
    kind = answer_kind(split.train)
    schema = infer_schema(split.train) if kind == "json" else None
    budget = max_new_tokens(tokenizer, split.train, profile)
    answers: dict[str, dict[str, list[str]]] = {}
    skipped = {}

    def answer(rung: str, part: str) -> list[str]:
        if rung == "nearest":
            return nearest_answers(rows[part], split.train)
        chats = rung_prompts(rung, rows[part], split.train, system)
        return runs.generate(f"tune/{name}/{rung}/{part}", model, tokenizer, chats,
                             max_new_tokens=budget, batch_size=profile.gen_batch_size,
                             json_schema=schema if rung == "constrained" else None,
                             profile=profile, show=show)

    for rung in RUNGS:
        if rung == "constrained" and schema is None:
            skipped[rung] = "the answers are not all JSON objects"
            continue
        try:
            answers[rung] = {"val": answer(rung, "val")}
        except ValueError as err:  # a schema xgrammar cannot compile
            skipped[rung] = str(err)
            continue
        if show:
            hits = sum(score(kind, answers[rung]["val"], rows["val"]).hits)
            print(f"  {RUNG_NAMES[rung]}: {hits}/{len(rows['val'])} on validation", flush=True)
    val_scores = {rung: score(kind, a["val"], rows["val"]) for rung, a in answers.items()}
    best = max(val_scores, key=lambda rung: (sum(val_scores[rung].hits), -RUNGS.index(rung)))
    answers[best]["test"] = answer(best, "test")
    return Rungs(kind, val_scores, answers, best, score(kind, answers[best]["test"], rows["test"]),
                 schema, skipped)


# ---------------------------------------------------------------------------- the fine-tune

class TimeBudget:
    """A transformers callback that stops training once `seconds` have passed (the best
    checkpoint so far is then kept, as after early stopping)."""

    def __init__(self, seconds: float):
        from transformers import TrainerCallback

        budget = self

        class _Callback(TrainerCallback):
            def on_train_begin(self, args, state, control, **kwargs):
                budget.start = time.monotonic()

            def on_step_end(self, args, state, control, **kwargs):
                if time.monotonic() - budget.start > budget.seconds:
                    budget.stopped_at = state.global_step
                    control.should_training_stop = True
                    control.should_evaluate = control.should_save = True

        self.seconds, self.start, self.stopped_at = seconds, time.monotonic(), None
        self.callback = _Callback()


@dataclass
class Tuned:
    """The fine-tune: the model with its adapter, its metadata, how it was obtained."""

    model: object
    metadata: dict
    folder: Path  # the saved adapter
    reused: bool  # True when an adapter from an earlier run (same data, same settings) was loaded
    estimate: str  # what was printed before training
    budget_stop: int | None = None  # the step --budget-minutes stopped training at

    @property
    def history(self) -> list[dict]:
        return self.metadata["train"]["history"]


def training_settings(model, split: Prepared, profile=None, **overrides) -> dict:
    """What the fine-tune trains with: the course's ticket LoRA recipe (r 16, alpha 32, lr
    1e-3, up to 4 epochs stopping on validation loss); the smoke profile's few steps instead,
    with two validation points for the curve."""
    from . import train
    profile = env.get_profile(profile)
    stop = ({"max_steps": profile.max_steps, "eval_every": max(1, profile.max_steps // 2)}
            if profile.name == "smoke" else dict(DEFAULT_STOP))
    kwargs = {"learning_rate": 1e-3, **stop, **overrides}
    lora = train.LoraSettings(**DEFAULT_LORA)
    return {"lora": lora, "kwargs": kwargs,
            "resolved": train.sft_settings(model, split.train, lora, profile, validation=True,
                                           **{k: v for k, v in kwargs.items()
                                              if k in ("max_steps", "learning_rate", "max_epochs",
                                                       "patience", "eval_every", "batch_size")})}


def estimate(tokenizer, split: Prepared, resolved: dict, profile=None,
             budget_minutes: float | None = None) -> str:
    """The line printed before training: tokens, steps, and minutes at the measured speed."""
    from . import runs
    tokens = sum(data.token_lengths(split.train, tokenizer))
    seconds, how = runs.estimate_seconds(tokenizer, split.train, resolved, profile)
    epochs = resolved["max_steps"] * resolved["batch_size"] / max(len(split.train), 1)
    line = (f"{len(split.train)} training examples, {tokens:,} tokens a pass; at most "
            f"{resolved['max_steps']} steps of {resolved['batch_size']} ({epochs:.1f} passes), "
            f"about {seconds / 60:.1f} min {how}")
    if resolved.get("patience"):
        line += "; it stops earlier when validation loss stops improving"
    if budget_minutes is not None and seconds > budget_minutes * 60:
        line += f"; capped at {budget_minutes:g} min by --budget-minutes"
    return line


def fine_tune(model, tokenizer, split: Prepared, folder: str | Path, profile=None, *,
              resume: bool = False, budget_minutes: float | None = None,
              callbacks: tuple = (), show: bool = True, **overrides) -> Tuned:
    """A LoRA fine-tune on the training split, stopping on validation loss, saved in
    folder/adapter. Checkpoints go to folder/checkpoints at every evaluation, so an
    interrupted run continues with resume=True. An adapter already in folder/adapter from
    the same data and settings is loaded instead of trained again."""
    from . import train
    folder = Path(folder)
    plan = training_settings(model, split, profile, **overrides)
    resolved = {**plan["resolved"], "budget_minutes": budget_minutes}
    line = estimate(tokenizer, split, plan["resolved"], profile, budget_minutes)
    adapter = folder / "adapter"
    data.restore_folder(adapter)
    if adapter.exists() and not resume:
        with contextlib.suppress(OSError, ValueError, KeyError):
            metadata = train.read_metadata(adapter)
            if metadata.get("settings") == json.loads(json.dumps(resolved)):
                loaded, metadata = train.load_adapter(adapter, model=copy.deepcopy(model))
                if show:
                    print(f"the adapter in {adapter} was trained on this split with these "
                          f"settings: loaded, not trained again (delete the folder to retrain)")
                return Tuned(loaded.eval(), metadata, adapter, True, line)
    if show:
        print(line, flush=True)
    budget = TimeBudget(budget_minutes * 60) if budget_minutes is not None else None
    checkpoints = folder / "checkpoints"
    settings = plan["resolved"]
    save_every = settings["eval_every"] or max(1, settings["max_steps"] // 4)
    val_rows = data.take(split.val, env.get_profile(profile).n_eval)  # all but in smoke
    result = train.sft(model, tokenizer, split.train, val_rows, lora=plan["lora"],
                       profile=profile, output_dir=checkpoints, save_every=save_every,
                       resume=resume, show=show,
                       callbacks=(*callbacks, *([budget.callback] if budget else [])),
                       **plan["kwargs"])
    result.settings = resolved
    train.save_adapter(result, adapter)
    shutil.rmtree(checkpoints, ignore_errors=True)  # the adapter is saved: they served their turn
    stopped = budget.stopped_at if budget else None
    if show and stopped is not None:
        print(f"--budget-minutes {budget_minutes:g} stopped training at step {stopped}")
    return Tuned(result.model, train.read_metadata(adapter), adapter, False, line, stopped)


# ---------------------------------------------------------------------------- the decision

@dataclass
class Decision:
    """The fine-tune against the best cheaper rung on the same test rows."""

    keep: str  # "fine-tune" or "prompt"
    best_rung: str
    prompt: Scores
    tuned: Scores
    test: evals.PairedTest
    fields: evals.FieldTests | None

    @property
    def line(self) -> str:
        t, measure = self.test, self.tuned.measure
        numbers = (f"fine-tune {t.b_hits}/{t.n} {measure} against {t.a_hits}/{t.n} for "
                   f"{RUNG_NAMES[self.best_rung]} (paired p = {t.p_value:.2g})")
        if self.keep == "fine-tune":
            return f"keep the fine-tune: {numbers}"
        why = ("it scores lower" if t.b_hits < t.a_hits else "it ties" if t.b_hits == t.a_hits
               else f"the gain is not above chance (p >= {SIGNIFICANCE:g})")
        return f"keep the prompt: {numbers}; {why}"

    def __str__(self) -> str:
        return self.line


def decide(prompt: Scores, tuned: Scores, best_rung: str) -> Decision:
    """Keep the fine-tune only if it beats the best cheaper rung on the test rows by more
    than chance: more hits, and McNemar's paired p below SIGNIFICANCE."""
    test = evals.paired_test(prompt.hits, tuned.hits)
    keep = "fine-tune" if test.b_hits > test.a_hits and test.p_value < SIGNIFICANCE else "prompt"
    fields = evals.field_tests(prompt.fields, tuned.fields) if prompt.fields else None
    return Decision(keep, best_rung, prompt, tuned, test, fields)


def forgetting_probes(base_model, tuned_model, tokenizer, profile=None) -> evals.Forgetting:
    """Chapter 06's general questions asked before and after: what the fine-tune forgot."""
    profile = env.get_profile(profile)
    probes = data.load_jsonl(data.DATA_DIR / "probes" / "probes.jsonl")
    probes = probes[:12] if profile.name == "smoke" else probes

    def right(net) -> list[bool]:
        replies = evals.generate(net, tokenizer, probes, max_new_tokens=32,
                                 batch_size=profile.gen_batch_size, show=False)
        return evals.score_contains(replies, probes)[0]

    return evals.forgetting(right(base_model), right(tuned_model), ids=[p["id"] for p in probes])


# ---------------------------------------------------------------------------- hand-over

def registry_root() -> Path:
    """The course's registry on this machine: $COURSE_CACHE/registry."""
    from .models import cache_dir
    return cache_dir() / "registry"


def task_name(path: str | Path) -> str:
    """A registry name from a file name: 'My tickets (v2).csv' -> 'my-tickets-v2'."""
    name = re.sub(r"[^a-z0-9]+", "-", Path(path).stem.lower()).strip("-")
    return name[:60] or "task"


@dataclass
class Registered:
    root: Path
    name: str
    prompt_version: int
    adapter_version: int
    live: int

    def serve_command(self) -> str:
        return f"course serve --registry {self.root} --name {self.name}"


def register(decision: Decision, tuned: Tuned, name: str, system: str | None,
             root: str | Path | None = None) -> Registered:
    """File the best prompt and the adapter as versions of `name` in the registry, each with
    its test score, and make the winner live: the adapter only if it beat the prompt (the
    registry's gate checks it again), else the prompt."""
    from .registry import Registry
    registry = Registry(root or registry_root())
    measure = decision.tuned.measure
    prompt = registry.register_prompt(
        name, {measure: decision.prompt.metric},
        {"rung": decision.best_rung, "system": system, "examples": SHOTS},
        base_model=tuned.metadata.get("base_model"),
        description=f"the best cheaper rung on validation: {RUNG_NAMES[decision.best_rung]}")
    from .train import ADAPTER_METADATA, heldout_scores
    metadata_path = tuned.folder / ADAPTER_METADATA  # the test score goes in, for the gate
    metadata = json.loads(metadata_path.read_text())
    metadata["heldout"] = heldout_scores({measure: decision.tuned.metric})
    data.write_json_atomic(metadata_path, metadata)
    adapter = registry.register(tuned.folder, name)
    if decision.keep == "fine-tune":
        live = registry.promote(name, adapter, gate=measure)
    else:
        live = registry.promote(name, prompt, force=True)
    return Registered(registry.root, name, prompt, adapter, live)


def merge_copy(tuned: Tuned, tokenizer, folder: str | Path) -> Path:
    """The adapter folded into the base weights, saved as a plain model folder (for tools
    that cannot load adapters); the served model stays unmerged."""
    from .serve import merge
    folder = Path(folder)
    merged = merge(tuned.model)  # merges a copy
    merged.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


# ---------------------------------------------------------------------------- all of it

@dataclass
class Options:
    """What `course tune` was asked (its command-line flags)."""

    path: str
    out: str
    input_col: str | None = None
    output_col: str | None = None
    system: str | None = None
    group_col: str | None = None
    model: str | None = None
    profile: str | None = None
    name: str | None = None
    registry: str | None = None
    resume: bool = False
    budget_minutes: float | None = None
    merge: bool = False
    seed: int = 0


@dataclass
class Outcome:
    """Everything a run of `tune` found: what the report and summary.json are written from."""

    options: Options
    task: Task
    split: Prepared
    rungs: Rungs
    tuned: Tuned
    answers: list[str]  # the fine-tune's answers to the scored test rows
    test_rows: list[dict]
    decision: Decision
    forgetting: evals.Forgetting
    registered: Registered
    merged: Path | None
    model_name: str
    profile: str
    device: str
    seconds: dict[str, float]  # step -> wall seconds
    peak_memory_mb: float
    files: dict[str, Path] = field(default_factory=dict)


class Steps:
    """Progress through the named steps: a tqdm bar in a notebook, numbered lines elsewhere
    (a terminal, where the training's own tqdm bar shows the long step, or headless: CI, a
    log file); records each step's wall time."""

    def __init__(self, names: list[str], show: bool = True):
        self.names, self.show, self.seconds = names, show, {}
        self.bar = None
        if show and not env.is_headless() and "ipykernel" in sys.modules:
            from tqdm.auto import tqdm
            self.bar = tqdm(total=len(names), desc="course tune", unit="step")

    @contextlib.contextmanager
    def step(self, name: str):
        k = self.names.index(name) + 1
        if self.bar is not None:
            self.bar.set_postfix_str(name)
        elif self.show:
            print(f"[{k}/{len(self.names)}] {name}", flush=True)
        start = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[name] = time.perf_counter() - start
            if self.bar is not None:
                self.bar.update(1)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


STEPS = ["read and validate", "load the model", "de-duplicate and split", "cheaper rungs",
         "fine-tune", "score on test", "forgetting probes", "register", "report"]


def process_peak_mb() -> float:
    """This process's peak resident memory so far, in MB (0 where the OS does not say)."""
    try:
        import resource
    except ImportError:  # Windows
        return 0.0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 1024


def run(options: Options, show: bool = True, callbacks: tuple = ()) -> Outcome:
    """Every step, in order, on the learner's file; the report goes to options.out.
    Raises TaskError (unreadable file, bad arguments) or DataProblems (fix the data)."""
    from . import models, tune_report
    out = Path(options.out)
    steps = Steps(STEPS, show)
    try:
        with steps.step("read and validate"):
            task = read_task(options.path, options.input_col, options.output_col,
                             options.system, options.group_col)
            if show:
                print(task, flush=True)
            if not task.ok:
                raise DataProblems(f"{task.source}: {_count(len(task.errors), 'problem')} to "
                                   f"fix before training (listed above)", task.errors)
        with steps.step("load the model"):
            profile = env.get_profile(options.profile)
            try:
                model, tokenizer = models.load_model(options.model, profile=profile, show=show)
            except (ValueError, models.ModelUnavailableError) as err:
                raise TaskError(f"--model {options.model!r}: {err}") from None
        with steps.step("de-duplicate and split"):
            split = prepare(task, out / "split", seed=options.seed)
            if show:
                print(split, flush=True)
        name = options.name or task_name(options.path)
        with steps.step("cheaper rungs"):
            rungs = cheaper_rungs(model, tokenizer, split, task.system, name, profile, show)
        with steps.step("fine-tune"):
            tuned = fine_tune(model, tokenizer, split, out, profile, resume=options.resume,
                              budget_minutes=options.budget_minutes, callbacks=callbacks,
                              show=show)
        with steps.step("score on test"):
            test_rows = data.take(split.test, profile.n_eval)
            answers = evals.generate(tuned.model, tokenizer, test_rows,
                                     max_new_tokens=max_new_tokens(tokenizer, split.train, profile),
                                     batch_size=profile.gen_batch_size, show=show)
            decision = decide(rungs.test, score(rungs.kind, answers, test_rows), rungs.best)
            if show:
                print(decision, flush=True)
        with steps.step("forgetting probes"):
            # train.sft trained a copy: `model` is still the base model as loaded
            before_after = forgetting_probes(model, tuned.model, tokenizer, profile)
        with steps.step("register"):
            registered = register(decision, tuned, name, task.system, options.registry)
            merged = merge_copy(tuned, tokenizer, out / "merged") if options.merge else None
        with steps.step("report"):
            outcome = Outcome(options, task, split, rungs, tuned, answers, test_rows, decision,
                              before_after, registered, merged, model.course_source
                              if hasattr(model, "course_source") else model.name_or_path,
                              profile.name, env.get_device(), steps.seconds,
                              process_peak_mb())
            outcome.files = tune_report.write(outcome, out)
    finally:
        steps.close()
    return outcome

