"""The adapter registry: numbered versions on disk, one live pointer per name, and a gate.

Introduced in chapter 07 (serving fine-tuned models).

`Registry(root)` keeps every adapter folder that `train.save_adapter` wrote as a numbered
version (root/name/v0001, v0002, ...) and one live pointer per name (root/name/LIVE.json).
`promote` and `rollback` move the pointer. Every write lands whole or not at all (a temporary
file or folder next to the target, fsync, then `os.replace`), so a crash at any moment leaves
the previous version serving, and a lock file (root/name/.lock) makes two processes that
promote at once take turns, so neither loses the other's history.

`promote(name, v, gate="exact match")` applies the course's rule: keep a fine-tune only if it
scores at least as well as the version serving now, and better than the best cheaper rung:
`register_prompt` files that rung (the base model with the best prompt, scored on the same
held-out rows) as a version with no adapter, and the gate refuses any adapter that does not
beat every such version.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import tempfile
import threading
from datetime import datetime, timezone
from pathlib import Path

from .data import write_json_atomic
from .train import ADAPTER_METADATA, heldout_scores

LIVE_FILE = "LIVE.json"
LOCK_FILE = ".lock"  # held while LIVE.json is read, changed and written back
_VERSION_FOLDER = re.compile(r"^v(\d{4,})$")  # v0001; staging folders start with "."
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


class GateError(ValueError):
    """`promote` refused a version that scores below the one serving now."""


class Registry:
    """Adapters on disk, numbered per name, with one live version per name.

    root/
      tickets/
        v0001/  v0002/       copies of folders written by train.save_adapter
        LIVE.json            {"live": 2, "history": [1], "updated": "..."}
    """

    def __init__(self, root: str | Path):
        self.root = Path(root)
        self._lock = threading.Lock()  # threads of this process take turns before the file lock

    def __repr__(self) -> str:
        return f"Registry({str(self.root)!r})"

    def names(self) -> list[str]:
        """The names with at least one registered version."""
        if not self.root.is_dir():
            return []
        return sorted(p.name for p in self.root.iterdir()
                      if p.is_dir() and _NAME.match(p.name) and self._numbers(p.name))

    def register(self, adapter_dir: str | Path, name: str) -> int:
        """Copy an adapter folder saved by `train.save_adapter` in as the next version of
        `name`; returns its number. The copy appears whole or not at all: it is made in a
        staging folder beside the versions, then renamed. Registering does not make it live:
        `promote` does."""
        source = Path(adapter_dir)
        adapter_metadata(source)  # refuses, with the fix, anything but a saved adapter
        folder = self._folder(name)
        folder.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=".incoming-", dir=folder))
        try:
            shutil.copytree(source, staging, dirs_exist_ok=True)
            for _ in range(100):
                version = max(self._numbers(name), default=0) + 1
                try:
                    os.replace(staging, folder / version_folder(version))
                    return version
                except OSError:
                    if not (folder / version_folder(version)).exists():
                        raise
                    # another process took this number meanwhile: take the next one
            raise RuntimeError(f"could not find a free version number in {folder}")
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise

    def register_prompt(self, name: str, heldout: dict, prompt: dict, base_model: str,
                        description: str = "") -> int:
        """File the best cheaper rung as the next version of `name`: the base model with no
        adapter, answering through `prompt` (e.g. {"system": ..., "examples": k}), with its
        `heldout` scores ({"exact match": Metric or number}, the same metric and rows as the
        adapters'). `promote(..., gate=...)` then refuses any adapter that does not beat it."""
        scores = heldout_scores(heldout)
        if not scores:
            raise ValueError(f"register_prompt({name!r}) needs held-out scores, e.g. "
                             f"heldout={{'exact match': metric}}: the gate compares them")
        staging = Path(tempfile.mkdtemp(prefix=".prompt-"))
        try:
            metadata = {"kind": "prompt", "base_model": base_model, "heldout": scores,
                        "prompt": prompt, "description": description, "data_sha256": None,
                        "saved": datetime.now(timezone.utc).isoformat(timespec="seconds")}
            (staging / ADAPTER_METADATA).write_text(json.dumps(metadata, indent=1) + "\n")
            return self.register(staging, name)
        finally:
            shutil.rmtree(staging, ignore_errors=True)

    def versions(self, name: str) -> list[dict]:
        """Every version of `name`, oldest first: version, kind ("lora", "full" or "prompt"),
        base_model, data_sha256, heldout, saved, is_live, path ([] for a name never
        registered)."""
        live = self.live(name) if self._numbers(name) else None
        rows = []
        for number in self._numbers(name):
            path = self._folder(name) / version_folder(number)
            metadata = adapter_metadata(path)
            rows.append({"version": number, "kind": metadata.get("kind", "lora"),
                         "base_model": metadata.get("base_model"),
                         "data_sha256": metadata.get("data_sha256"),
                         "heldout": metadata.get("heldout", {}), "saved": metadata.get("saved"),
                         "is_live": number == live, "path": path})
        return rows

    def live(self, name: str) -> int | None:
        """The version of `name` serving now (None before the first promote)."""
        return self._read_live(name)["live"]

    def history(self, name: str) -> list[int]:
        """The versions that were live before the current one, oldest first."""
        return list(self._read_live(name)["history"])

    def path(self, name: str, version: int | str | None = None) -> Path:
        """The folder of the live version of `name`, or of `version` when given."""
        if version is None:
            version = self.live(name)
            if version is None:
                raise ValueError(f"no version of {name!r} is live yet: make one live with "
                                 f"registry.promote({name!r}, version) "
                                 f"(registered: {self._listing(name)})")
        return self._folder(name) / version_folder(self._existing(name, version))

    def promote(self, name: str, version: int | str, gate: str | None = None,
                force: bool = False) -> int:
        """Make `version` of `name` the live one; returns it. The version live before goes
        onto the history that `rollback` returns to.

        With `gate` (a held-out metric name saved with the adapters, e.g. "exact match"), a
        version scoring lower than the live one is refused with a GateError unless
        force=True: keep a fine-tune only if it beats what serves now. An adapter must also
        score strictly above every prompt version (`register_prompt`): a fine-tune that
        loses to, or only ties, the cheaper rung is not worth serving.
        """
        with self._locked(name):
            number = self._existing(name, version)
            state = self._read_live(name)
            current = state["live"]
            if number == current:
                return number
            if gate and not force:
                if current is not None:
                    self._check_gate(name, number, current, gate)
                self._check_prompt_gate(name, number, gate)
            history = state["history"] + ([current] if current is not None else [])
            self._write_live(name, number, history)
            return number

    def rollback(self, name: str) -> int:
        """Make the previously live version of `name` live again; returns it."""
        with self._locked(name):
            state = self._read_live(name)
            if not state["history"]:
                raise ValueError(f"{name!r} has no earlier live version to roll back to "
                                 f"(live: {_label(state['live'])}); promote a version instead")
            previous = self._existing(name, state["history"][-1])
            self._write_live(name, previous, state["history"][:-1])
            return previous

    # -- internals

    @contextlib.contextmanager
    def _locked(self, name: str):
        """Hold `name`'s lock: one promote or rollback at a time, across threads and processes.
        Without it, two processes that read LIVE.json at once would each write back their own
        history, and one promotion would vanish from it."""
        folder = self._folder(name)
        folder.mkdir(parents=True, exist_ok=True)
        with self._lock, open(folder / LOCK_FILE, "a+b") as handle:
            _lock_file(handle)
            try:
                yield
            finally:
                _unlock_file(handle)

    def _folder(self, name: str) -> Path:
        if not isinstance(name, str) or not _NAME.match(name):
            raise ValueError(f"adapter name {name!r}: use letters, digits, '.', '_' or '-' "
                             f"(up to 64, not starting with '.' or '-'), e.g. 'tickets'")
        return self.root / name

    def _numbers(self, name: str) -> list[int]:
        folder = self._folder(name)
        if not folder.is_dir():
            return []
        return sorted(int(m.group(1)) for p in folder.iterdir()
                      if p.is_dir() and (m := _VERSION_FOLDER.match(p.name)))

    def _listing(self, name: str) -> str:
        return ", ".join(_label(n) for n in self._numbers(name)) or "none"

    def _existing(self, name: str, version: int | str) -> int:
        number = parse_version(version)
        if number not in self._numbers(name):
            raise ValueError(f"{name!r} has no version {_label(number)} in {self.root} "
                             f"(registered: {self._listing(name)}); "
                             f"register one with registry.register(folder, {name!r})")
        return number

    def _read_live(self, name: str) -> dict:
        path = self._folder(name) / LIVE_FILE
        if not path.exists():
            return {"live": None, "history": []}
        try:
            state = json.loads(path.read_text())
            return {"live": state["live"], "history": list(state.get("history", []))}
        except (json.JSONDecodeError, KeyError, TypeError) as error:
            raise ValueError(f"{path} is unreadable ({error}): it is only ever replaced whole, "
                             f"so it was edited by hand. Delete it and promote a version "
                             f"again") from None

    def _write_live(self, name: str, number: int, history: list[int]) -> None:
        write_json_atomic(self._folder(name) / LIVE_FILE, {
            "live": number, "history": history,
            "updated": datetime.now(timezone.utc).isoformat(timespec="seconds")})

    def _score(self, name: str, version: int, gate: str) -> float:
        """A version's held-out `gate` score; a GateError says how to record a missing one."""
        metadata = adapter_metadata(self._folder(name) / version_folder(version))
        score = heldout_value(metadata, gate)
        if score is None:
            known = ", ".join(metadata.get("heldout", {})) or "none"
            raise GateError(f"{name} {_label(version)} has no held-out {gate!r} score "
                            f"(it has: {known}), so the gate cannot compare it: save the "
                            f"adapter with train.save_adapter(..., heldout={{{gate!r}: "
                            f"score}}), or promote with force=True")
        return score

    def _check_prompt_gate(self, name: str, number: int, gate: str) -> None:
        """Refuse an adapter that does not beat the best prompt version of `name`."""
        if adapter_metadata(self._folder(name) / version_folder(number)).get("kind") == "prompt":
            return
        prompts = [v for v in self._numbers(name) if adapter_metadata(
            self._folder(name) / version_folder(v)).get("kind") == "prompt"]
        if not prompts:
            return
        best = max(prompts, key=lambda v: self._score(name, v, gate))
        candidate, floor = self._score(name, number, gate), self._score(name, best, gate)
        if candidate <= floor:
            raise GateError(f"{name} {_label(number)} scores {gate} {candidate:.3f}, not above "
                            f"the prompt {_label(best)} ({floor:.3f}), the best cheaper rung: "
                            f"the course keeps a fine-tune only if it beats the prompt on "
                            f"held-out rows. Promote it anyway with force=True")

    def _check_gate(self, name: str, number: int, current: int, gate: str) -> None:
        scores = {version: self._score(name, version, gate) for version in (number, current)}
        if scores[number] < scores[current]:
            raise GateError(f"{name} {_label(number)} scores {gate} {scores[number]:.3f}, below "
                            f"the live {_label(current)} ({scores[current]:.3f}): the course "
                            f"keeps a fine-tune only if it beats what serves now. Promote it "
                            f"anyway with force=True")


def version_folder(version: int) -> str:
    """The folder name of a version number: 3 -> 'v0003'."""
    return f"v{version:04d}"


def _label(version: int | None) -> str:
    return "none" if version is None else version_folder(version)


def parse_version(version: int | str) -> int:
    """A version number from 3, '3', 'v3' or 'v0003'."""
    text = str(version).strip().lower().removeprefix("v")
    if isinstance(version, bool) or not text.isdigit() or int(text) < 1:
        raise ValueError(f"version {version!r}: give a number from registry.versions(name), "
                         f"e.g. 2 or 'v0002'")
    return int(text)


def heldout_value(metadata: dict, metric: str) -> float | None:
    """A held-out score from adapter metadata as a number (None when not recorded)."""
    score = metadata.get("heldout", {}).get(metric)
    if isinstance(score, dict):
        score = score.get("value")
    return float(score) if isinstance(score, (int, float)) and not isinstance(score, bool) else None


def adapter_metadata(directory: str | Path) -> dict:
    """The metadata of a folder written by `train.save_adapter`, checked: a ValueError names
    what is missing and how to make a proper adapter folder."""
    directory = Path(directory)
    fix = ("save the trained adapter with course_utils.train.save_adapter(result, folder, "
           "heldout=...), which records the base model, data hash and held-out scores, then "
           "register that folder")
    if not directory.is_dir():
        raise ValueError(f"{directory} is not a folder: {fix}")
    path = directory / ADAPTER_METADATA
    if not path.exists():
        raise ValueError(f"{directory} has no {ADAPTER_METADATA}, so it was not written by "
                         f"train.save_adapter: {fix}")
    try:
        metadata = json.loads(path.read_text())
    except json.JSONDecodeError as error:
        raise ValueError(f"{path} is not valid JSON ({error}): {fix}") from None
    if not isinstance(metadata, dict):
        raise ValueError(f"{path} does not hold a JSON object: {fix}")
    if metadata.get("kind") == "prompt":  # the cheaper rung: a base model, no weights of its own
        return metadata
    weights = "config.json" if metadata.get("kind") == "full" else "adapter_config.json"
    if not (directory / weights).exists():
        raise ValueError(f"{directory} has {ADAPTER_METADATA} but no {weights}: the weights are "
                         f"missing. Copy the whole folder that save_adapter wrote")
    return metadata


def _lock_file(handle) -> None:
    """Block until this process holds an exclusive lock on the open file (POSIX or Windows)."""
    try:
        import fcntl
    except ImportError:  # Windows
        import msvcrt
        handle.seek(0)
        while True:
            try:
                msvcrt.locking(handle.fileno(), msvcrt.LK_LOCK, 1)
                return
            except OSError:  # LK_LOCK gives up after 10 s: keep waiting
                continue
    fcntl.flock(handle.fileno(), fcntl.LOCK_EX)


def _unlock_file(handle) -> None:
    try:
        import fcntl
    except ImportError:
        import msvcrt
        handle.seek(0)
        msvcrt.locking(handle.fileno(), msvcrt.LK_UNLCK, 1)
        return
    fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
