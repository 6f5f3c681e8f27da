"""Data: read, check, de-duplicate, split and measure the course's JSONL files.

Introduced in notebooks/00_decide.ipynb (loading the frozen splits); chapter 01 introduces
validation, duplicates, splitting, formats and statistics.

Sections: reading and writing · validation (`validate` returns a `Report` of every problem,
each with file:line and a fix) · formats (chat and prompt/completion) · token lengths ·
duplicates (exact, and near: MinHash + LSH written out with NumPy) · splits and leakage ·
rendering (what the chat template makes of a row, and which tokens carry loss).
"""

from __future__ import annotations

import contextlib
import hashlib
import heapq
import json
import math
import os
import random
import re
import shutil
import statistics
import tempfile
import zlib
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

DATA_DIR = Path(__file__).resolve().parent.parent / "data"
ROLES = ("system", "user", "assistant")
UTF8_BOM = b"\xef\xbb\xbf"
WARNING_KINDS = frozenset({"bom", "blank_line", "duplicate", "too_long"})  # the rest are errors
SHOW_PROBLEMS = 20  # how many problems a printed Report lists
_UNREADABLE = object()  # a line that holds no JSON value (JSON null is a value: None)


class DataError(ValueError):
    """A data file is malformed; the message names the file, the line and the fix."""


# ---------------------------------------------------------------------------- reading and writing

@dataclass
class Problem:
    """One thing wrong in a data file: where (line), what, how to fix it, and its kind."""

    line: int  # 1-based line of the file, or position in a list of rows; 0 = the whole input
    message: str
    fix: str
    kind: str  # e.g. "invalid_json", "empty_content", "duplicate": for filtering and tests
    source: str = "<rows>"  # the file as it was named, or <rows> for a list

    def __str__(self) -> str:
        where = f"{self.source}:{self.line}" if self.line else self.source
        return f"{where}: {self.message}. Fix: {self.fix}"


def _missing_file(path: Path) -> DataError:
    """The error for a file that is not there, saying where course data comes from."""
    return DataError(f"{path}: no such file. Course data lives under {DATA_DIR}; "
                     f"regenerate it with `python data/generate.py`.")


def _iter_lines(path: Path) -> Iterator[tuple[int, bytes, int]]:
    """(line number, the line's bytes without its newline, byte offset in the file) per line."""
    offset = 0
    try:
        if not path.exists():
            raise _missing_file(path)
        if path.is_dir():
            raise DataError(f"{path}: a folder, not a file. Fix: name a .jsonl file in it.")
        with path.open("rb") as handle:
            for number, raw in enumerate(handle, start=1):
                yield number, raw[:-1] if raw.endswith(b"\n") else raw, offset
                offset += len(raw)
    except OSError as err:
        raise DataError(f"{path}: cannot be read ({err.strerror or err}). Fix: check that the "
                        f"file exists and that you may read it.") from None


def _json_type(value) -> str:
    """The JSON name of a value's type, as a learner would say it."""
    if isinstance(value, bool):
        return "true/false"
    names = {dict: "object", list: "list", str: "string", int: "number", float: "number",
             type(None): "null"}
    return names.get(type(value), type(value).__name__)


def _a_json_type(value) -> str:
    """The JSON name of a value's type with its article: 'an object', 'a list', 'null'."""
    name = _json_type(value)
    if name in ("null", "true/false"):
        return name
    return ("an " if name[0] in "aeiou" else "a ") + name


def _short(value, limit: int = 40) -> str:
    """repr(value), cut to `limit` characters, for quoting a bad value in a message."""
    try:
        text = repr(value)
    except (ValueError, RecursionError):  # an int too long to print, a list nested 1000s deep
        return f"<{_a_json_type(value)}>"
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _parse_line(raw: bytes, number: int, offset: int, source: str) -> tuple[object, list[Problem]]:
    """The JSON value on one line (or _UNREADABLE) and the problems met reading it."""
    problems = []
    if raw.startswith(UTF8_BOM):  # at the start of the file, or of a file joined on (cat a b)
        raw, offset = raw[len(UTF8_BOM):], offset + len(UTF8_BOM)
        where = "the file starts" if number == 1 else "the line starts"
        problems.append(Problem(number, f"{where} with a UTF-8 byte-order mark (BOM); it was "
                                "stripped", "re-save the file as UTF-8 without BOM (one inside a "
                                "file comes from joining files that had one); some tools read "
                                "the mark as part of the row.", "bom", source))
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        problems.append(Problem(number, f"not valid UTF-8 (byte 0x{raw[err.start]:02x} at byte "
                                f"{err.start} of the line, {offset + err.start} of the file)",
                                "re-save the file as UTF-8.", "invalid_utf8", source))
        return _UNREADABLE, problems
    if not text.strip():
        problems.append(Problem(number, "blank line", "delete it: JSONL has one object per line "
                                "(load_jsonl refuses blank lines).", "blank_line", source))
        return _UNREADABLE, problems
    try:
        value = json.loads(text)
    except json.JSONDecodeError as err:
        reason = f"{err.msg} at column {err.colno}"
    except (ValueError, RecursionError) as err:  # a 5000-digit number, nesting 1000s deep
        reason = str(err).split(";")[0]
    else:
        if not isinstance(value, dict):
            problems.append(Problem(number, f"a JSON {_json_type(value)}, not an object",
                                    'each line must be one {...} record, e.g. {"messages": '
                                    '[...]}.', "not_object", source))
        return value, problems
    problems.append(Problem(number, f"not valid JSON ({reason})", "fix the JSON or delete the "
                            "line: each line holds one complete {...} object (write line breaks "
                            "inside strings as \\n).", "invalid_json", source))
    return _UNREADABLE, problems


def load_jsonl(path: str | Path) -> list[dict]:
    """Rows of a JSONL file (one JSON object per line); raises DataError naming file:line.

    A UTF-8 byte-order mark at the start of a line is skipped; everything else that is not one
    object per line stops the read. `validate(path)` reports every problem instead of the first.
    """
    path = Path(path)
    rows = []
    for number, raw, offset in _iter_lines(path):
        value, problems = _parse_line(raw, number, offset, str(path))
        errors = [problem for problem in problems if problem.kind != "bom"]
        if errors:
            raise DataError(str(errors[0]))
        rows.append(value)
    return rows


def write_jsonl(rows: list[dict], path: str | Path) -> Path:
    """Write rows as JSONL (UTF-8, one object per line); returns the path.

    A row holding text that UTF-8 cannot store raises DataError before anything is written
    (a half-written file would lose rows without a word).
    """
    path = Path(path)
    lines = []
    for index, row in enumerate(rows):
        text = json.dumps(row, ensure_ascii=False)
        try:
            lines.append(text.encode("utf-8") + b"\n")
        except UnicodeEncodeError as err:
            raise DataError(f"{path}: nothing written: rows[{index}] holds an unpaired surrogate "
                            f"{text[err.start]!r}, which UTF-8 cannot store. Fix: repair the text "
                            f"(validate(rows) reports it as bad_unicode).") from None
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"".join(lines))
    return path


def fingerprint(rows: Sequence[dict]) -> str:
    """SHA-256 of the rows as canonical JSON lines: the same rows in the same order give the
    same hash on any machine (saved with every adapter, so a model names its data)."""
    digest = hashlib.sha256()
    for row in rows:
        digest.update(json.dumps(row, ensure_ascii=False, sort_keys=True).encode("utf-8",
                                                                              "surrogatepass"))
        digest.update(b"\n")
    return digest.hexdigest()


def write_json_atomic(path: str | Path, value) -> None:
    """Write JSON so that readers see the old file or the new one, never half of either: a
    temporary file in the same folder, flushed to disk (fsync), then renamed over the target."""
    path = Path(path)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(handle, "w") as file:
            file.write(json.dumps(value, indent=1) + "\n")
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise
    with contextlib.suppress(OSError):  # make the rename itself durable (POSIX only)
        folder = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(folder)
        finally:
            os.close(folder)


def replace_folder(staging: str | Path, final: str | Path) -> Path:
    """Put the finished folder `staging` in place of `final` without ever deleting the old
    copy before the new one is in place: the old folder is renamed aside (".NAME.previous"),
    the new one renamed in, and only then is the old one deleted. Both renames are atomic; a
    crash between them leaves the old copy aside, and the next call (or `restore_folder`)
    puts it back before anything else happens."""
    staging, final = Path(staging), Path(final)
    restore_folder(final)
    aside = _aside(final)
    if aside.exists():  # a finished swap's leftover: `final` is in place
        shutil.rmtree(aside)
    if final.exists():
        os.replace(final, aside)
    try:
        os.replace(staging, final)
    except BaseException:
        restore_folder(final)
        raise
    shutil.rmtree(aside, ignore_errors=True)
    return final


def restore_folder(final: str | Path) -> bool:
    """Undo a `replace_folder` that stopped between its two renames: if `final` is missing
    and its old copy is aside, put it back. True when it did."""
    final = Path(final)
    aside = _aside(final)
    if final.exists() or not aside.exists():
        return False
    os.replace(aside, final)
    return True


def _aside(final: Path) -> Path:
    return final.parent / f".{final.name}.previous"


def load_split(dataset: str, split: str) -> list[dict]:
    """A frozen split of a course dataset: load_split('tickets', 'test') reads
    data/tickets/test.jsonl; a dataset with several files names one as folder/kind:
    load_split('voice/pairs', 'train') reads data/voice/pairs_train.jsonl."""
    folder, _, kind = dataset.partition("/")
    path = DATA_DIR / folder / (f"{kind}_{split}.jsonl" if kind else f"{split}.jsonl")
    if not path.exists():
        known = sorted({f"{p.parent.name}/{p.stem.rpartition('_')[0]}".rstrip("/")
                        for p in DATA_DIR.glob("*/*.jsonl")
                        if p.stem.rpartition("_")[2] in ("train", "val", "test")})
        raise FileNotFoundError(f"no split {split!r} of {dataset!r} ({path} does not exist); "
                                f"datasets with train/val/test splits: {', '.join(known)}")
    return load_jsonl(path)


def take(rows: list, n: int) -> list:
    """n rows spread evenly through `rows`, in order (all when n >= len): a small but
    representative evaluation slice, the same on every run."""
    if n >= len(rows):
        return list(rows)
    return [rows[i * len(rows) // n] for i in range(n)]


def subset(rows: Sequence[dict], n: int, seed: int = 0) -> list[dict]:
    """The first n rows of a seeded shuffle of `rows`: smaller subsets are inside larger ones
    (subset(rows, 25) is the start of subset(rows, 400)), so a size sweep adds rows and
    changes nothing else."""
    if not 0 < n <= len(rows):
        raise ValueError(f"subset of {n} rows: give 1 to {len(rows)} (the rows there are)")
    return random.Random(seed).sample(list(rows), len(rows))[:n]


def corrupt_labels(rows: Sequence[dict], share: float, choices: dict[str, Sequence[str]],
                   seed: int = 0) -> list[dict]:
    """A copy of chat rows whose JSON answers (the last message) get a wrong value in each
    field of `choices` for a seeded `share` of the rows: a hurried labeller, on purpose.
    `choices` maps a field to its allowed values; the wrong one is drawn from the others."""
    if not 0 <= share <= 1:
        raise ValueError(f"share={share!r}: the fraction of rows to corrupt, from 0 to 1")
    rng = random.Random(seed)
    noisy = json.loads(json.dumps(list(rows)))  # a deep copy
    for row in rng.sample(noisy, round(share * len(noisy))):
        record = json.loads(row["messages"][-1]["content"])
        for name, values in choices.items():
            record[name] = rng.choice([v for v in values if v != record[name]])
        row["messages"][-1]["content"] = json.dumps(record)
    return noisy


# ---------------------------------------------------------------------------- validation

@dataclass
class Report:
    """What `validate` found: errors (must fix), warnings (look at them), statistics, rows."""

    source: str  # the file as named, or <rows>
    errors: list[Problem] = field(default_factory=list)
    warnings: list[Problem] = field(default_factory=list)
    stats: dict = field(default_factory=dict)
    rows: list[dict] = field(default_factory=list)  # every line that parsed as an object, in order
    lines: list[int] = field(default_factory=list)  # the line number of each of `rows`

    @property
    def ok(self) -> bool:
        """True when there is no error (warnings allowed)."""
        return not self.errors

    @property
    def valid_rows(self) -> list[dict]:
        """The rows with no error, in order: what is safe to train on."""
        bad_lines = {problem.line for problem in self.errors}
        return [row for line, row in zip(self.lines, self.rows) if line not in bad_lines]

    def add(self, problem: Problem) -> None:
        """File a problem under errors or warnings, by its kind."""
        (self.warnings if problem.kind in WARNING_KINDS else self.errors).append(problem)

    def __str__(self) -> str:
        verdict = "OK" if self.ok else "NOT OK"
        lines = [f"{self.source}: {verdict}: {self.stats.get('rows_read', 0)} rows read, "
                 f"{self.stats.get('valid_rows', 0)} valid; {_count(len(self.errors), 'error')}, "
                 f"{_count(len(self.warnings), 'warning')}"]
        lines += ["  " + line for line in _stats_lines(self.stats)]
        kinds = Counter(problem.kind for problem in self.errors + self.warnings)
        if kinds:
            lines.append("  problems: " + ", ".join(f"{k} {n}" for k, n in kinds.most_common()))
        room = SHOW_PROBLEMS
        for title, problems in (("errors", self.errors), ("warnings", self.warnings)):
            if problems[:room]:
                lines += [f"{title}:"] + [f"  {problem}" for problem in problems[:room]]
            room -= len(problems[:room])
        hidden = len(self.errors) + len(self.warnings) - (SHOW_PROBLEMS - room)
        if hidden:
            lines.append(f"... and {hidden} more (all of them: report.errors, report.warnings)")
        return "\n".join(lines)


def _count(n: int, noun: str) -> str:
    """'1 error', '3 errors'."""
    return f"{n} {noun}{'' if n == 1 else 's'}"


def _stats_lines(stats: dict) -> list[str]:
    """The statistics of a Report as one or two readable lines."""
    def listing(counts: dict) -> str:
        return ", ".join(f"{key} {value}" for key, value in counts.items()) or "-"
    turns = ", ".join(f"{n} ({rows} rows)" for n, rows in stats.get("turns_per_row", {}).items())
    lines = [f"formats: {listing(stats.get('formats', {}))}; turns per row: {turns or '-'}; "
             f"roles: {listing(stats.get('roles', {}))}; duplicates: {stats.get('duplicates', 0)}"]
    tokens = stats.get("tokens")
    if tokens and tokens["count"]:
        over = (f"; {tokens['n_over']} over max_length {tokens['max_length']}"
                if tokens.get("max_length") else "")
        lines.append(f"tokens per row: min {tokens['min']}, median {tokens['median']:g}, "
                     f"p95 {tokens['p95']}, max {tokens['max']}{over}")
    return lines


def validate(rows_or_path: str | Path | Iterable[dict], tokenizer=None,
             max_length: int | None = None) -> Report:
    """Check a JSONL file (or a list of rows) and report every problem with its line and fix.

    Unlike `load_jsonl`, it does not stop at the first bad line. With a tokenizer it measures
    token lengths through the chat template; with max_length too it warns about rows that
    training would truncate. A missing file raises DataError; bad content never raises.
    """
    if max_length is not None and tokenizer is None:
        raise ValueError("validate(max_length=...) needs a tokenizer to count tokens: pass "
                         "tokenizer= too (e.g. the one from course_utils.load_model()).")
    report = _read_rows(rows_or_path)
    valid = _check_rows(report)
    _check_duplicates(report, valid)
    if tokenizer is not None:
        _check_lengths(report, valid, tokenizer, max_length)
    if not report.stats["rows_read"]:
        report.add(Problem(0, "no rows", "write one JSON object per line; an empty file trains "
                           "nothing.", "no_rows", report.source))
    report.errors.sort(key=lambda problem: problem.line)
    report.warnings.sort(key=lambda problem: problem.line)
    return report


def _read_rows(rows_or_path) -> Report:
    """A Report holding the rows that parse as objects, and the problems met reading them."""
    if isinstance(rows_or_path, (str, Path)):
        report, lines_read, blank = Report(str(rows_or_path)), 0, 0
        for number, raw, offset in _iter_lines(Path(rows_or_path)):
            value, problems = _parse_line(raw, number, offset, report.source)
            for problem in problems:
                report.add(problem)
            blank += any(problem.kind == "blank_line" for problem in problems)
            lines_read = number
            if isinstance(value, dict):
                report.rows.append(value)
                report.lines.append(number)
        report.stats["rows_read"] = lines_read - blank
        return report
    if isinstance(rows_or_path, dict):
        raise TypeError("validate takes a path or a list of rows, not one row: validate([row]).")
    report = Report("<rows>")
    rows = list(rows_or_path)
    for position, row in enumerate(rows, start=1):
        if isinstance(row, dict):
            report.rows.append(row)
            report.lines.append(position)
        else:
            report.add(Problem(position, f"{_a_json_type(row)}, not an object (dict)", "make "
                               'each row a dict such as {"messages": [...]}.', "not_object"))
    report.stats["rows_read"] = len(rows)
    return report


def _check_rows(report: Report) -> list[tuple[int, dict]]:
    """Check every object row; return (line, chat row) for those without errors."""
    formats, turns, roles = Counter(), Counter(), Counter()
    valid = []
    for line, row in zip(report.lines, report.rows):
        found, chat, problems = _check_row(row)
        formats[found or "unknown"] += 1
        for message, fix, kind in problems:
            report.add(Problem(line, message, fix, kind, report.source))
        if not problems:
            valid.append((line, chat))
            turns[len(chat["messages"])] += 1
            roles.update(message["role"] for message in chat["messages"])
    report.stats.update(valid_rows=len(valid), formats=dict(formats),
                        turns_per_row=dict(sorted(turns.items())),
                        roles={role: roles[role] for role in ROLES if roles[role]})
    return valid


def _check_row(row: dict) -> tuple[str | None, dict | None, list[tuple[str, str, str]]]:
    """(format, the row as a chat row, [(message, fix, kind), ...]) for one object row."""
    if "messages" in row:
        return "chat", row, _check_messages(row["messages"], lambda i: f"message {i + 1}")
    keys = ", ".join(_short(key, 20) for key in list(row)[:6]) + (", ..." if len(row) > 6 else "")
    if "prompt" in row and "completion" in row:
        chat = to_chat(row)
        return "prompt_completion", chat, _check_messages(chat["messages"], _part_names(row))
    if "chosen" in row and "rejected" in row:
        return None, None, [("a preference pair (prompt, chosen, rejected: for DPO, chapter 04), "
                             "not a training chat", 'validate its SFT view instead: to_chat({'
                             '"prompt": row["prompt"], "completion": row["chosen"]}).',
                             "no_messages")]
    if "prompt" in row or "completion" in row:
        have, lack = ("prompt", "completion") if "prompt" in row else ("completion", "prompt")
        return None, None, [(f'has "{have}" but no "{lack}" (keys: {keys})', f'add "{lack}", '
                             'or write the row as {"messages": [...]}.', "no_messages")]
    return None, None, [(f'no "messages" (keys: {keys or "none"})', 'put the conversation in '
                         '"messages": [{"role": "user", "content": ...}, {"role": "assistant", '
                         '"content": ...}], or write {"prompt": ..., "completion": ...}.',
                         "no_messages")]


def _part_names(row: dict) -> Callable[[int], str]:
    """How to name message i of a prompt/completion row in a message: 'the prompt', ..."""
    prompt = row["prompt"]
    if not isinstance(prompt, list) and not isinstance(row["completion"], list):
        return lambda i: "the prompt" if i == 0 else "the completion"
    in_prompt = len(prompt) if isinstance(prompt, list) else 1
    return lambda i: (f"prompt message {i + 1}" if i < in_prompt
                      else f"completion message {i - in_prompt + 1}")


def _check_messages(messages, name: Callable[[int], str]) -> list[tuple[str, str, str]]:
    """Problems with a list of messages: its type, each message, then the order of turns."""
    if not isinstance(messages, list):
        return [(f'"messages" is {_a_json_type(messages)}, not a list', 'write "messages": '
                 '[{"role": ..., "content": ...}, ...].', "messages_not_list")]
    if not messages:
        return [('"messages" is empty', "add the user's turn and the assistant's reply, or drop "
                 "the row.", "messages_empty")]
    problems = []
    for index, message in enumerate(messages):
        problems += _check_message(message, name(index))
    if not problems:
        problems += _check_turns([message["role"] for message in messages], name)
    return problems


def _check_message(message, where: str) -> list[tuple[str, str, str]]:
    """Problems with one message: not an object, role missing or unknown, content."""
    if not isinstance(message, dict):
        return [(f"{where} is {_a_json_type(message)}, not an object", 'write each message as '
                 '{"role": ..., "content": ...}.', "message_not_object")]
    problems = []
    if "role" not in message:
        problems.append((f'{where} has no "role"', 'add "role": "user", "assistant" or '
                         '"system".', "missing_role"))
    elif not isinstance(message["role"], str) or message["role"] not in ROLES:
        problems.append((f"role {_short(message['role'])} of {where} is not one of "
                         f"{', '.join(ROLES)}", 'use one of those (e.g. "bot" -> "assistant", '
                         '"human" -> "user").', "unknown_role"))
    if "content" not in message:
        problems.append((f'{where} has no "content"', 'add the text of the turn as "content".',
                         "missing_content"))
    else:
        problems += _check_content(message["content"], where, message.get("role"))
    return problems


def _check_content(content, where: str, role) -> list[tuple[str, str, str]]:
    """Problems with a message's content: not a string, empty, or not encodable as UTF-8."""
    if not isinstance(content, str):
        return [(f"content of {where} is {_a_json_type(content)}, not a string", "write the "
                 "content as one string (join a list of parts into one text).",
                 "content_not_string")]
    if not content.strip():
        fill = {"assistant": "write the reply, or drop the row.",
                "system": "write the instruction, or remove the system message."}
        return [(f"content of {where} is empty" + (" (only whitespace)" if content else ""),
                 fill.get(role if isinstance(role, str) else None,
                          "write the message, or drop the row."), "empty_content")]
    try:
        content.encode("utf-8")
    except UnicodeEncodeError as err:
        return [(f"content of {where} holds an unpaired surrogate {content[err.start]!r} at "
                 f"character {err.start}", "repair the text: it cannot be saved as UTF-8 (often "
                 "half of an emoji escaped as \\ud83d...).", "bad_unicode")]
    return []


def _check_turns(roles: list[str], name: Callable[[int], str]) -> list[tuple[str, str, str]]:
    """The first problem with the order of turns: [system], user, assistant, user, ... assistant."""
    if "assistant" not in roles:
        return [("no assistant turn", 'add the reply to learn as the last message: {"role": '
                 '"assistant", "content": ...}.', "no_assistant")]
    fix = "reorder the turns, merge two turns in a row into one, or drop the stray turn."
    start = 1 if roles[0] == "system" else 0
    for index in range(start, len(roles)):
        expected = "user" if (index - start) % 2 == 0 else "assistant"
        if roles[index] == "system":
            return [(f"{name(index)} is a system message; one may only come first", fix,
                     "turn_order")]
        if roles[index] != expected:
            return [(f"{name(index)} is {roles[index]}, expected {expected} (after an optional "
                     f"system message, user and assistant alternate, starting with user)", fix,
                     "turn_order")]
    if roles[-1] != "assistant":
        return [(f"the last turn ({name(len(roles) - 1)}) is {roles[-1]}; a row must end with "
                 f"the assistant's reply", "add the reply, or drop the trailing turn.",
                 "turn_order")]
    return []


def _check_duplicates(report: Report, valid: list[tuple[int, dict]]) -> None:
    """Warn about each valid row whose conversation repeats an earlier one (case, spaces folded)."""
    first_line: dict[str, int] = {}
    repeats = 0
    for line, chat in valid:
        first = first_line.setdefault(_conversation_key(chat["messages"]), line)
        if first != line:
            repeats += 1
            report.add(Problem(line, f"duplicate of line {first}", "drop it: a repeated row "
                               "counts twice in training and can leak into a held-out split "
                               "(dedupe(rows) removes repeats).", "duplicate", report.source))
    report.stats["duplicates"] = repeats


def _check_lengths(report: Report, valid: list[tuple[int, dict]], tokenizer,
                   max_length: int | None) -> None:
    """Token-length statistics of the valid rows; warn about rows longer than max_length."""
    lengths = token_lengths([chat for _, chat in valid], tokenizer)
    report.stats["tokens"] = _length_summary(lengths, max_length)
    if max_length is None:
        return
    for (line, _), length in zip(valid, lengths):
        if length > max_length:
            report.add(Problem(line, f"{length} tokens, longer than max_length {max_length}",
                               "training cuts it at max_length and loses the end of the reply: "
                               "shorten the row, or raise max_length.", "too_long",
                               report.source))


# ---------------------------------------------------------------------------- formats

def to_chat(row: dict, system: str | None = None) -> dict:
    """A {"prompt", "completion"} row as a chat row {"messages": [...]}, other keys kept.

    Prompt and completion may be strings (a user turn and an assistant turn) or lists of
    messages (TRL's conversational form). A row that already has "messages" is returned as is.
    """
    if "messages" in row:
        return dict(row)
    if "prompt" not in row or "completion" not in row:
        raise DataError(f"to_chat needs a row with \"prompt\" and \"completion\" (or "
                        f"\"messages\"); this one has keys {list(row)[:6]}.")
    prompt, completion = row["prompt"], row["completion"]
    messages = [] if system is None else [{"role": "system", "content": system}]
    messages += list(prompt) if isinstance(prompt, list) else [{"role": "user", "content": prompt}]
    messages += (list(completion) if isinstance(completion, list)
                 else [{"role": "assistant", "content": completion}])
    extra = {key: value for key, value in row.items() if key not in ("prompt", "completion")}
    return {**extra, "messages": messages}


def to_prompt_completion(row: dict, tokenizer=None) -> dict:
    """A chat row as {"prompt", "completion"}, other keys kept: completion = the last assistant
    turn; prompt = the turns before it through the chat template (with a tokenizer), else the
    last user turn's text (a system message is then dropped: to_chat(..., system=) restores it).
    """
    messages = row.get("messages")
    roles = ([m.get("role") if isinstance(m, dict) else None for m in messages]
             if isinstance(messages, list) else [])
    if "assistant" not in roles:
        raise DataError("to_prompt_completion needs a chat row with an assistant turn; run "
                        "validate(rows) to find the rows that lack one.")
    last = len(roles) - 1 - roles[::-1].index("assistant")
    before = messages[:last]
    if tokenizer is not None:
        prompt = tokenizer.apply_chat_template(before, tokenize=False, add_generation_prompt=True)
    else:
        users = [m.get("content", "") for m, role in zip(before, roles) if role == "user"]
        prompt = users[-1] if users else ""
    extra = {key: value for key, value in row.items() if key != "messages"}
    return {**extra, "prompt": prompt, "completion": messages[last].get("content", "")}


# ---------------------------------------------------------------------------- token lengths

TOKEN_BATCH = 8192  # rows per tokenizer call: batched for speed, bounded for memory


def token_lengths(rows: Sequence[dict], tokenizer) -> list[int]:
    """Tokens in each row as training sees it (through the chat template), batched."""
    conversations = [to_chat(row)["messages"] for row in rows]
    lengths: list[int] = []
    for start in range(0, len(conversations), TOKEN_BATCH):
        texts = tokenizer.apply_chat_template(conversations[start: start + TOKEN_BATCH],
                                              tokenize=False)
        backend = getattr(tokenizer, "backend_tokenizer", None)  # the Rust tokenizer, if fast
        # A padded batch call (generation) can leave padding switched on in the Rust tokenizer;
        # then every text would count as long as the longest, so go through the tokenizer.
        if backend is not None and backend.padding is None and backend.truncation is None:
            lengths += [len(encoding) for encoding in
                        backend.encode_batch(texts, add_special_tokens=False)]
        else:
            lengths += [len(ids) for ids in tokenizer(texts, add_special_tokens=False, padding=False,
                                                      truncation=False)["input_ids"]]
    return lengths


def _length_summary(lengths: list[int], max_length: int | None) -> dict:
    """count, min, median, p95, max of token lengths, and how many exceed max_length."""
    ordered = sorted(lengths)
    count = len(ordered)
    return {"count": count,
            "min": ordered[0] if count else None,
            "median": statistics.median(ordered) if count else None,
            "p95": ordered[math.ceil(0.95 * count) - 1] if count else None,
            "max": ordered[-1] if count else None,
            "max_length": max_length,
            "n_over": None if max_length is None else sum(n > max_length for n in ordered)}


def length_stats(rows: Sequence[dict], tokenizer, max_length: int | None = None) -> dict:
    """Token lengths through the chat template: count, min, median, p95, max, n_over."""
    return _length_summary(token_lengths(rows, tokenizer), max_length)


# ---------------------------------------------------------------------------- duplicates

def _fold(text: str) -> str:
    """Text with runs of whitespace made one space, and case folded: 'Hi  There' -> 'hi there'."""
    return " ".join(text.split()).casefold()


def _conversation_key(messages: list[dict]) -> str:
    """What makes two conversations the same: each turn's role and folded content."""
    return "\x1e".join(f"{message['role']}\x1f{_fold(message['content'])}" for message in messages)


def _row_key(row: dict) -> str:
    """The duplicate key of any row: its conversation when it has one, else its JSON sans id."""
    if "messages" not in row and "prompt" in row and "completion" in row:
        row = to_chat(row)
    messages = row.get("messages")
    if isinstance(messages, list) and all(
            isinstance(m, dict) and isinstance(m.get("role"), str)
            and isinstance(m.get("content"), str) for m in messages):
        return _conversation_key(messages)
    return json.dumps({k: v for k, v in row.items() if k != "id"}, sort_keys=True, default=repr)


def exact_duplicates(rows: Sequence[dict]) -> list[tuple[int, int]]:
    """(index, index of its first occurrence) for each row repeating an earlier conversation.

    Rows are compared on role and content with case and runs of whitespace folded; ids,
    labels and other metadata are ignored.
    """
    first_index: dict[str, int] = {}
    found = []
    for index, row in enumerate(rows):
        first = first_index.setdefault(_row_key(row), index)
        if first != index:
            found.append((index, first))
    return found


# Near duplicates: MinHash + LSH, written out. Each text becomes a set of word 3-grams
# ("shingles"). The Jaccard similarity of two sets (shared / all) is the chance that one random
# hash function takes its minimum over both sets on the same shingle, so NUM_PERM seeded hash
# functions give each row a signature whose matching entries estimate it. Signatures are cut
# into bands of r entries; rows equal on a whole band land in the same bucket and become
# candidates, and every candidate pair is checked with the exact Jaccard similarity.
SHINGLE_WORDS = 3
NUM_PERM = 128
MINHASH_SEED = 0
LSH_RECALL = 0.999  # chance that a pair exactly at the threshold becomes a candidate (more above)
_WORD_PATTERN = re.compile(r"\w+")


class _WordCodes(dict):
    """word -> crc32 of its UTF-8 bytes, computed once per distinct word."""

    def __missing__(self, word: str) -> int:
        code = self[word] = zlib.crc32(word.encode("utf-8", "surrogatepass"))
        return code


def _texts(rows: Sequence[dict], field: str | Callable | None) -> list[str]:
    """The text compared for near duplicates: row[field], field(row), or the user turns."""
    texts = []
    for index, row in enumerate(rows):
        if callable(field):
            texts.append(str(field(row)))
        elif field is not None:
            if field not in row:
                raise ValueError(f"row {index} has no {field!r}: pick a key every row has.")
            texts.append(str(row[field]))
        elif "messages" in row or "prompt" in row:  # a chat, prompt/completion, preference pair
            messages = to_chat({"completion": "", **row})["messages"]
            messages = messages if isinstance(messages, list) else []
            texts.append(" ".join(m["content"] for m in messages if isinstance(m, dict)
                                  and m.get("role") == "user" and isinstance(m.get("content"), str)))
        else:
            raise ValueError(f"row {index} has no messages: pass field= (a key such as 'text', "
                             f"or a function of the row) to say what to compare.")
    return texts


def _distinct_texts(texts: list[str]) -> tuple[list[list[str]], list[int], list[int]]:
    """Word lists of the distinct texts, their row indices, and each row's first same-text row."""
    first_seen: dict[str, int] = {}
    words_of, distinct, first_of = [], [], []
    for index, text in enumerate(texts):
        words = _WORD_PATTERN.findall(text.casefold())
        first = first_seen.setdefault(" ".join(words), index)
        first_of.append(first)
        if first == index:
            distinct.append(index)
            words_of.append(words)
    return words_of, distinct, first_of


def _shingle_hashes(words_of: list[list[str]]) -> tuple[np.ndarray, np.ndarray]:
    """Every text's word-3-gram hashes (uint32) in one flat array, and each text's start in it.

    A text shorter than 3 words is one shingle (its words); an empty text, one fixed shingle.
    """
    codes = _WordCodes()
    word_codes = np.fromiter((code for words in words_of for code in map(codes.__getitem__, words)),
                             dtype=np.uint64)
    n_words = np.array([len(words) for words in words_of], dtype=np.int64)
    word_starts = np.concatenate([[0], np.cumsum(n_words)[:-1]]).astype(np.int64)
    row_end = np.repeat(word_starts + n_words, n_words)
    position = np.arange(len(word_codes))
    mixed = np.zeros(len(word_codes), dtype=np.uint64)
    multipliers = np.array([0x9E3779B97F4A7C15, 0xC2B2AE3D27D4EB4F, 0x165667B19E3779F9],
                           dtype=np.uint64)
    for k in range(SHINGLE_WORDS):  # shingle = mix of the k-th following word, 0 past the end
        ahead = np.minimum(position + k, max(len(word_codes) - 1, 0))
        mixed += np.where(position + k < row_end, word_codes[ahead], 0) * multipliers[k]
    offset = position - np.repeat(word_starts, n_words)
    n_shingles = np.maximum(n_words - SHINGLE_WORDS + 1, 1)
    keep = offset < np.repeat(n_shingles, n_words)
    hashes = ((mixed[keep] ^ (mixed[keep] >> np.uint64(29))) >> np.uint64(32)).astype(np.uint32)
    empty = np.flatnonzero(n_words == 0)  # give each empty text one shingle, hash 0
    starts = np.concatenate([[0], np.cumsum(n_shingles)[:-1]]).astype(np.int64)
    hashes = np.insert(hashes, starts[empty] - np.arange(len(empty)), 0)
    return hashes, starts


def _minhash(hashes: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """MinHash signatures (texts x NUM_PERM, uint32) from flat shingle hashes and text starts.

    Hash function p maps shingle x to (a_p * x + b_p) mod 2**64 >> 32 (multiply-shift, seeded
    odd a_p); a text's entry p is the minimum over its shingles. One flat pass per function:
    NumPy's reduceat is ~10x faster on a 1-D array than along the rows of a 2-D block.
    """
    rng = np.random.default_rng(MINHASH_SEED)
    a = rng.integers(1, 2**63, NUM_PERM, dtype=np.uint64) * np.uint64(2) + np.uint64(1)
    b = rng.integers(0, 2**63, NUM_PERM, dtype=np.uint64)
    shingles = hashes.astype(np.uint64)
    hashed = np.empty_like(shingles)
    signatures = np.empty((len(starts), NUM_PERM), dtype=np.uint32)
    for p in range(NUM_PERM):
        np.multiply(shingles, a[p], out=hashed)
        hashed += b[p]
        signatures[:, p] = np.minimum.reduceat(hashed, starts) >> np.uint64(32)  # min, then shift
    return signatures


def _rows_per_band(threshold: float) -> int:
    """The most signature entries per band (fewest stray candidates) that still makes a pair
    exactly at `threshold` a candidate with probability >= LSH_RECALL."""
    for rows in range(NUM_PERM, 0, -1):
        if 1 - (1 - threshold ** rows) ** (NUM_PERM // rows) >= LSH_RECALL:
            return rows
    return 1


def _bucket_ids(signatures: np.ndarray, rows_per_band: int) -> np.ndarray:
    """texts x bands array of bucket numbers (unique across bands); -1 where a text is alone."""
    n_bands = NUM_PERM // rows_per_band
    weights = np.random.default_rng(MINHASH_SEED + 1).integers(1, 2**63, rows_per_band,
                                                               dtype=np.uint64)
    buckets = np.full((len(signatures), n_bands), -1, dtype=np.int64)
    next_id = 0
    for band in range(n_bands):
        block = signatures[:, band * rows_per_band:(band + 1) * rows_per_band].astype(np.uint64)
        keys = (block * weights).sum(axis=1)  # one 64-bit key per band slice (wraps around)
        _, inverse, counts = np.unique(keys, return_inverse=True, return_counts=True)
        shared = counts[inverse] > 1
        buckets[shared, band] = inverse[shared] + next_id
        next_id += len(counts)
    return buckets


def _jaccard(a: frozenset, b: frozenset) -> float:
    """|a & b| / |a | b|: the exact similarity of two shingle sets."""
    shared = len(a & b)
    return shared / (len(a) + len(b) - shared)


def _earlier_candidates(lists: list[list[int]]) -> Iterator[int]:
    """The numbers in several ascending lists, ascending, each once, produced lazily (so a
    match found early skips the rest of a large bucket)."""
    last = -1
    for number in heapq.merge(*lists):
        if number != last:
            yield number
            last = number


def _first_matches(hashes: np.ndarray, starts: np.ndarray, threshold: float,
                   indexed: Callable[[int, tuple | None], bool]) -> dict[int, tuple[int, float]]:
    """For each text, the first earlier indexed text with Jaccard >= threshold: {j: (i, sim)}.

    Texts are taken in order; `indexed(j, match)` says whether text j may match later ones.
    Only texts sharing a bucket with another are ever compared.
    """
    buckets = _bucket_ids(_minhash(hashes, starts), _rows_per_band(threshold))
    ends = np.append(starts[1:], len(hashes))
    sets: dict[int, frozenset] = {}

    def shingles(k: int) -> frozenset:
        if k not in sets:
            sets[k] = frozenset(hashes[starts[k]:ends[k]].tolist())
        return sets[k]

    members: dict[int, list[int]] = {}
    matches: dict[int, tuple[int, float]] = {}
    shared = np.flatnonzero((buckets >= 0).any(axis=1))
    for j, row_buckets in zip(shared.tolist(), buckets[shared].tolist()):
        keys = [key for key in row_buckets if key >= 0]
        match = None
        for i in _earlier_candidates([members[key] for key in keys if key in members]):
            similarity = _jaccard(shingles(i), shingles(j))
            if similarity >= threshold:
                match = matches[j] = (i, similarity)
                break
        if indexed(j, match):
            for key in keys:
                members.setdefault(key, []).append(j)
    return matches


def _near_matches(texts: list[str], threshold: float,
                  indexed: Callable[[int, tuple | None], bool]) -> list[tuple[int, int, float]]:
    """(j, i, similarity): for each text j, the first earlier indexed text i that is similar."""
    if not 0 < threshold <= 1:
        raise ValueError(f"threshold={threshold!r}: a Jaccard similarity in (0, 1], e.g. 0.8.")
    words_of, distinct, first_of = _distinct_texts(texts)
    if not distinct:
        return []
    hashes, starts = _shingle_hashes(words_of)
    found = _first_matches(hashes, starts, threshold,
                           lambda k, match: indexed(distinct[k], match))
    matches = {distinct[k]: (distinct[i], similarity) for k, (i, similarity) in found.items()}
    result = []
    for j, first in enumerate(first_of):
        if j in matches:
            result.append((j, *matches[j]))
        elif first != j and first in matches:  # same words as an earlier text: same match
            result.append((j, *matches[first]))
        elif first != j and indexed(first, None):
            result.append((j, first, 1.0))
    return result


def near_duplicates(rows: Sequence[dict], threshold: float = 0.8,
                    field: str | Callable | None = None) -> list[tuple[int, int, float]]:
    """(index, index of an earlier similar row, Jaccard similarity): one entry per row that
    nearly repeats an earlier one, paired with the first such row.

    Compares word 3-grams of the user turns (or row[field], or field(row)), case folded, with
    MinHash + LSH to find candidates, then the exact Jaccard similarity; deterministic.
    """
    return _near_matches(_texts(rows, field), threshold, lambda j, match: True)


def dedupe(rows: Sequence[dict], threshold: float = 0.8, field: str | Callable | None = None
           ) -> tuple[list[dict], list[tuple[int, int, str]]]:
    """(kept rows, removed): the first of each group of exact or near duplicates is kept;
    removed lists (index, index of the row it duplicates, "exact" or "near"), nothing silent."""
    removed = [(index, first, "exact") for index, first in exact_duplicates(rows)]
    gone = {index for index, _, _ in removed}
    remaining = [index for index in range(len(rows)) if index not in gone]
    texts = _texts([rows[index] for index in remaining], field)
    for j, i, _ in _near_matches(texts, threshold, lambda j, match: match is None):
        removed.append((remaining[j], remaining[i], "near"))
    removed.sort()
    gone = {index for index, _, _ in removed}
    return [row for index, row in enumerate(rows) if index not in gone], removed


# ---------------------------------------------------------------------------- splits and leakage

def _check_fractions(val: float, test: float) -> None:
    """Raise ValueError unless val and test are fractions that leave rows for training."""
    for name, value in (("val", val), ("test", test)):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < 1:
            raise ValueError(f"{name}={value!r}: give the fraction of rows to hold out, from 0 "
                             f"up to (not including) 1, e.g. {name}=0.1.")
    if val + test >= 1:
        raise ValueError(f"val={val} and test={test} add up to {val + test:g}, which leaves no "
                         f"rows to train on: keep val + test below 1 (e.g. 0.1 each).")


def _strata(rows: Sequence[dict], stratify: str | Callable | None) -> dict[object, list[int]]:
    """Row indices grouped by label (in order of first appearance); one group without stratify."""
    groups: dict[object, list[int]] = {}
    for index, row in enumerate(rows):
        if stratify is None:
            label = None
        elif callable(stratify):
            label = stratify(row)
        elif stratify in row:
            label = row[stratify]
        else:
            raise ValueError(f"row {index} has no {stratify!r} to stratify on: give every row "
                             f"one, or pass stratify=a function of the row.")
        try:
            groups.setdefault(label, []).append(index)
        except TypeError:  # an unhashable label such as a list
            groups.setdefault(_short(label, 200), []).append(index)
    return groups


def _held_out_counts(n: int, val: float, test: float) -> tuple[int, int]:
    """(val rows, test rows) out of n: in proportion, at least 1 each from 3 rows up, and
    always at least one row left for training."""
    n_val, n_test = math.floor(n * val + 0.5), math.floor(n * test + 0.5)
    if n >= 3:
        n_val, n_test = max(n_val, int(val > 0)), max(n_test, int(test > 0))
    while n_val + n_test >= n > 0 and n_val + n_test:
        if n_val >= n_test:
            n_val -= 1
        else:
            n_test -= 1
    return n_val, n_test


def split(rows: Sequence[dict], val: float = 0.1, test: float = 0.1, seed: int = 0,
          stratify: str | Callable | None = None, group: str | Callable | None = None
          ) -> tuple[list[dict], list[dict], list[dict]]:
    """(train, val, test): a seeded shuffle cut in the given fractions; every row lands in one.

    stratify = a key (e.g. "label") or a function of the row: each label is split in the same
    proportions, and a label with 3 or more rows gets at least one val and one test row.

    group = a key (e.g. "scenario", "customer", "source document") or a function of the row:
    rows of one group stay together, so no held-out row shares a group with a training row;
    the fractions then count groups, not rows. With stratify too, the groups of each label are
    split in proportion (every row of a group must have the same label).
    """
    _check_fractions(val, test)
    if group is not None:
        return _group_split(rows, val, test, seed, stratify, group)
    rng = random.Random(seed)
    train, held_val, held_test = [], [], []
    for indices in _strata(rows, stratify).values():
        rng.shuffle(indices)
        n_val, n_test = _held_out_counts(len(indices), val, test)
        held_val += indices[:n_val]
        held_test += indices[n_val:n_val + n_test]
        train += indices[n_val + n_test:]
    for part in (train, held_val, held_test):
        rng.shuffle(part)  # mix the labels
    return ([rows[i] for i in train], [rows[i] for i in held_val], [rows[i] for i in held_test])


def _group_split(rows: Sequence[dict], val: float, test: float, seed: int,
                 stratify: str | Callable | None, group: str | Callable
                 ) -> tuple[list[dict], list[dict], list[dict]]:
    """split() by group: whole groups are drawn for val and test."""
    members = _strata(rows, group)  # group -> row indices, in first-seen order
    labels: dict[object, list] = {}
    for key, indices in members.items():
        found = {next(iter(_strata([rows[i]], stratify))) for i in indices}
        if len(found) > 1:
            raise ValueError(f"group {_short(key, 80)} (rows {indices[:5]}...) has rows with "
                             f"different {stratify!r} values; a group can only be stratified "
                             f"when all its rows share one: stratify on a group property")
        labels.setdefault(found.pop(), []).append(key)
    rng = random.Random(seed)
    parts: tuple[list, list, list] = ([], [], [])
    for keys in labels.values():
        rng.shuffle(keys)
        n_val, n_test = _held_out_counts(len(keys), val, test)
        for k, key in enumerate(keys):
            part = 1 if k < n_val else 2 if k < n_val + n_test else 0
            parts[part].extend(members[key])
    for part in parts:
        rng.shuffle(part)
    return tuple([rows[i] for i in part] for part in parts)


def write_splits(train: list[dict], val: list[dict], test: list[dict],
                 folder: str | Path) -> dict[str, Path]:
    """Write train.jsonl, val.jsonl and test.jsonl into a folder; returns {split: path}."""
    folder = Path(folder)
    return {name: write_jsonl(rows, folder / f"{name}.jsonl")
            for name, rows in (("train", train), ("val", val), ("test", test))}


def leakage(train: Sequence[dict], *others: Sequence[dict], threshold: float = 0.8,
            names: Sequence[str] | None = None, field: str | Callable | None = None
            ) -> list[tuple[str, int, int, float]]:
    """(split name, index, train index, similarity) for each held-out row that repeats a
    training row exactly (1.0) or nearly (Jaccard >= threshold, as in near_duplicates).

    leakage(train, val, test) names the splits "val" and "test"; pass names= otherwise.
    """
    names = list(names or (["val", "test"] if len(others) == 2 else
                           [f"held_out_{k + 1}" for k in range(len(others))]))
    if len(names) != len(others):
        raise ValueError(f"{len(others)} held-out splits but {len(names)} names: give one each.")
    owner = [(name, k) for name, rows in zip(names, others) for k in range(len(rows))]
    rows = list(train) + [row for rows in others for row in rows]
    n_train = len(train)
    train_keys: dict[str, int] = {}
    for index, row in enumerate(train):
        train_keys.setdefault(_row_key(row), index)
    found = {j: (train_keys[_row_key(rows[j])], 1.0) for j in range(n_train, len(rows))
             if _row_key(rows[j]) in train_keys}
    for j, i, similarity in _near_matches(_texts(rows, field), threshold,
                                          lambda j, match: j < n_train):
        if j >= n_train and j not in found:
            found[j] = (i, similarity)
    return [(*owner[j - n_train], i, similarity) for j, (i, similarity) in sorted(found.items())]


# ---------------------------------------------------------------------------- rendering

@dataclass
class Rendered:
    """One chat row as the model trains on it: token ids, and which of them carry loss."""

    input_ids: list[int]
    loss_mask: list[bool]  # True on assistant tokens (their content and end-of-turn token)
    text: str  # the chat template's rendering
    truncated: bool  # True when the row was longer than max_length and got cut

    @property
    def labels(self) -> list[int]:
        """Training targets: the token id where loss is taken, -100 (ignored) elsewhere."""
        return [t if m else -100 for t, m in zip(self.input_ids, self.loss_mask)]


def render(row: dict, tokenizer, max_length: int | None = None) -> Rendered:
    """Render a chat row through the tokenizer's chat template and mark the assistant tokens.

    Each assistant turn's span is found by rendering the conversation up to that turn with and
    without it; tokens whose characters fall inside a span carry loss. The end-of-turn token
    is inside, so the model learns to stop.
    """
    messages = row["messages"]
    text = tokenizer.apply_chat_template(messages, tokenize=False)
    spans = []
    for i, message in enumerate(messages):
        if message["role"] == "assistant":
            start = len(tokenizer.apply_chat_template(messages[:i], tokenize=False,
                                                      add_generation_prompt=True))
            end = len(tokenizer.apply_chat_template(messages[: i + 1], tokenize=False).rstrip())
            spans.append((start, end))
    encoded = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    ids, offsets = encoded["input_ids"], encoded["offset_mapping"]
    mask = [any(s <= lo and hi <= e for s, e in spans) and hi > lo for lo, hi in offsets]
    truncated = max_length is not None and len(ids) > max_length
    if truncated:
        ids, mask = ids[:max_length], mask[:max_length]
    return Rendered(ids, mask, text, truncated)


def show_loss_mask(rendered: Rendered, tokenizer) -> str:
    """The rendered text with the tokens that carry loss wrapped in [[...]], for reading."""
    pieces, inside = [], False
    for token_id, masked in zip(rendered.input_ids, rendered.loss_mask):
        if masked != inside:
            pieces.append("[[" if masked else "]]")
            inside = masked
        pieces.append(tokenizer.decode([token_id]))
    return "".join(pieces) + ("]]" if inside else "")
