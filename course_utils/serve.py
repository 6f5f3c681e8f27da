"""Serving: a versioned adapter registry and a local OpenAI-compatible endpoint.

Introduced in chapter 07 (serving fine-tuned models).

`Registry(root)` keeps every adapter folder that `train.save_adapter` wrote as a numbered
version (root/name/v0001, v0002, ...) and one live pointer per name (root/name/LIVE.json).
`promote` and `rollback` move the pointer. Every write lands whole or not at all (a temporary
file or folder next to the target, fsync, then `os.replace`), so a crash at any moment leaves
the previous version serving. `promote(name, v, gate="exact match")` applies the course's rule:
keep a fine-tune only if it scores at least as well as the version serving now, and better
than the best cheaper rung: `register_prompt` files that rung (the base model with the best
prompt, scored on the same held-out rows) as a version with no adapter, and the gate refuses
any adapter that does not beat every such version.

`start(model, tokenizer)` serves a model on localhost with the standard library only
(`http.server` in a background thread): POST /v1/chat/completions in OpenAI's shape,
GET /v1/models and GET /health. One PeftModel can carry several adapters (`load_adapters`); the
request's "model" field picks one per request, and the base model's name picks none.
Generation is greedy, one request at a time (a lock: one model is shared), and `server.stats`
records requests, errors, adapter switches and latencies. A bad request gets a 4xx error in
OpenAI's JSON shape, a failure inside the server a 500 with its message: never a traceback.
`merge` folds an adapter into a plain model and `time_generation` times answers, for the
chapter's latency comparison (adapter on the side versus merged).
"""

from __future__ import annotations

import contextlib
import copy
import hmac
import ipaddress
import json
import os
import re
import shutil
import socket
import statistics
import tempfile
import threading
import time
import urllib.error
import urllib.request
import uuid
import warnings
from dataclasses import dataclass, field
from datetime import datetime, timezone
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

from .data import write_json_atomic
from .train import (ADAPTER_METADATA, _library_deprecations_hidden, heldout_scores,
                    read_metadata)

# ---------------------------------------------------------------------------- registry

LIVE_FILE = "LIVE.json"
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
        self._lock = threading.Lock()  # one promote/rollback at a time within this process

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
        with self._lock:
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
        with self._lock:
            state = self._read_live(name)
            if not state["history"]:
                raise ValueError(f"{name!r} has no earlier live version to roll back to "
                                 f"(live: {_label(state['live'])}); promote a version instead")
            previous = self._existing(name, state["history"][-1])
            self._write_live(name, previous, state["history"][:-1])
            return previous

    # -- internals

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


# ---------------------------------------------------------------------------- models

def load_adapters(base, adapters: dict[str, str | Path]):
    """One PeftModel carrying several saved adapters, each under its name: e.g.
    load_adapters(base, {"tickets": registry.path("tickets"), "voice": registry.path("voice")}).

    PEFT adds the adapters' layers to `base` in place: pass a copy to keep it plain.
    """
    from peft import PeftModel
    if not adapters:
        raise ValueError("load_adapters needs at least one {name: adapter folder}")
    model = None
    for name, directory in adapters.items():
        directory = Path(directory)
        if (directory / ADAPTER_METADATA).exists() and read_metadata(directory).get("kind") == "prompt":
            raise ValueError(f"{directory} is a prompt version (registry.register_prompt): it has "
                             f"no adapter to load; serve the base model with its prompt, or "
                             f"give an adapter version for {name!r}")
        if not (directory / "adapter_config.json").exists():
            raise ValueError(f"{directory} has no adapter_config.json: give the folder that "
                             f"train.save_adapter (or model.save_pretrained) wrote for {name!r}")
        _warn_on_other_base(base, directory, name)
        with _library_deprecations_hidden():
            if model is None:
                model = PeftModel.from_pretrained(base, str(directory), adapter_name=name)
            else:
                model.load_adapter(str(directory), adapter_name=name)
    return model.eval()


def _warn_on_other_base(base, directory: Path, name: str) -> None:
    """Warn when an adapter's metadata names a different base model than the one given."""
    path = directory / ADAPTER_METADATA
    ours = getattr(base, "course_source", None)
    if not path.exists() or not ours:
        return
    theirs = read_metadata(directory).get("base_model")
    if theirs and theirs != ours:
        warnings.warn(f"adapter {name!r} was trained on {theirs}, and is being loaded on {ours}",
                      stacklevel=3)


def merge(peft_model, adapter: str | None = None):
    """A plain model with the adapter (the active one, or `adapter`) folded into its weights:
    no extra matrix products per token. The PeftModel itself is left as it was."""
    model = copy.deepcopy(peft_model)
    if adapter is not None:
        model.set_adapter(adapter)
    with _library_deprecations_hidden():
        return model.merge_and_unload()


@dataclass
class Timing:
    """Wall-clock seconds of repeated generations of one answer."""

    seconds: list[float]
    new_tokens: int  # tokens in the answer (the same each run: decoding is greedy)

    @property
    def median(self) -> float:
        return statistics.median(self.seconds) if self.seconds else 0.0

    def __str__(self) -> str:
        low, high = min(self.seconds, default=0.0), max(self.seconds, default=0.0)
        return (f"median {self.median * 1000:.0f} ms over {len(self.seconds)} runs "
                f"({low * 1000:.0f}-{high * 1000:.0f} ms), {self.new_tokens} new tokens")


def time_generation(model, tokenizer, messages: list[dict], n: int = 5,
                    max_new_tokens: int = 32) -> Timing:
    """Time `n` greedy answers to one chat, after one untimed answer (the warm-up, which
    also gives the answer's length in tokens)."""
    from .evals import generate_from_messages, time_calls
    answer = generate_from_messages(model, tokenizer, [messages], max_new_tokens=max_new_tokens)[0]
    seconds = time_calls(model, tokenizer, [messages] * n, max_new_tokens=max_new_tokens,
                         warm_up=False)
    return Timing(seconds, len(tokenizer(answer, add_special_tokens=False)["input_ids"]))


# ---------------------------------------------------------------------------- HTTP server

ROLES = ("system", "user", "assistant")
_ROUTES = {"/v1/chat/completions": "POST", "/v1/models": "GET", "/health": "GET"}
_DRAIN_LIMIT = 16 * 2**20  # an oversized body up to this is read and dropped before the 413


class HttpError(Exception):
    """An error reply: HTTP status and OpenAI's error object."""

    def __init__(self, status: int, message: str, param: str | None = None,
                 code: str | None = None, headers: dict | None = None):
        super().__init__(message)
        self.status, self.message, self.param, self.code = status, message, param, code
        self.headers = headers or {}

    def body(self) -> dict:
        kind = "server_error" if self.status >= 500 else "invalid_request_error"  # as OpenAI
        return {"error": {"message": self.message, "type": kind, "param": self.param,
                          "code": self.code}}


@dataclass
class ServeStats:
    """What a server has answered: counts, per-request latency, adapter switches."""

    requests: int = 0  # every HTTP request answered, errors included
    errors: int = 0  # replies with status 400 or above
    by_status: dict[int, int] = field(default_factory=dict)
    by_model: dict[str, int] = field(default_factory=dict)  # chat completions answered
    # per chat completion: model, seconds (the whole request), queue_seconds (waiting for the
    # model), generate_seconds, prompt_tokens, completion_tokens
    latencies: list[dict] = field(default_factory=list)
    # per change of the model serving: from, to, seconds the switch itself took, at (epoch)
    switches: list[dict] = field(default_factory=list)
    last_error: str = ""

    def percentile(self, q: float, key: str = "seconds") -> float:
        """The q-th percentile (0-100) of a latency field over the answered completions."""
        values = sorted(r[key] for r in self.latencies)
        if not values:
            return 0.0
        return values[min(len(values) - 1, round(q / 100 * (len(values) - 1)))]

    def __str__(self) -> str:
        text = f"{self.requests} requests, {self.errors} errors"
        if self.latencies:
            text += (f"; latency median {self.percentile(50) * 1000:.0f} ms, "
                     f"p95 {self.percentile(95) * 1000:.0f} ms")
        if self.switches:
            median = statistics.median(s["seconds"] for s in self.switches)
            text += f"; {len(self.switches)} model switches, median {median * 1000:.2f} ms"
        return text


class _App:
    """The server's state: the model, its served names, the generation lock and the stats."""

    def __init__(self, model, tokenizer, adapters: dict[str, str], base_name: str,
                 api_key: str | None, max_tokens_cap: int, default_max_tokens: int,
                 max_body_bytes: int):
        self.model, self.tokenizer = model, tokenizer
        self.adapters, self.base_name = adapters, base_name
        self.api_key, self.max_tokens_cap = api_key, max_tokens_cap
        self.default_max_tokens, self.max_body_bytes = default_max_tokens, max_body_bytes
        self.is_peft = hasattr(model, "peft_config")
        self.created = int(time.time())
        self.generate_lock = threading.Lock()  # one model: one generation at a time
        self.stats_lock = threading.Lock()
        self.stats = ServeStats()
        self.serving: str | None = None  # the name the model was last set up for

    @property
    def names(self) -> list[str]:
        return [self.base_name, *self.adapters]

    def record(self, status: int, model: str | None = None, latency: dict | None = None,
               error: str = "") -> None:
        with self.stats_lock:
            stats = self.stats
            stats.requests += 1
            stats.by_status[status] = stats.by_status.get(status, 0) + 1
            if status >= 400:
                stats.errors += 1
                stats.last_error = f"{status}: {error}"
            if latency is not None:
                stats.by_model[model] = stats.by_model.get(model, 0) + 1
                stats.latencies.append(latency)

    def check_key(self, header: str | None) -> None:
        if self.api_key is None:
            return
        scheme, _, token = (header or "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(token.strip().encode(),
                                                                 self.api_key.encode()):
            raise HttpError(401, "missing or wrong API key: send the header "
                                 "'Authorization: Bearer <key>' with the key the server was "
                                 "started with", code="invalid_api_key",
                            headers={"WWW-Authenticate": "Bearer"})

    # -- routes

    def health(self) -> dict:
        return {"status": "ok", "model": self.base_name, "adapters": list(self.adapters),
                "requests": self.stats.requests,
                "uptime_seconds": int(time.time()) - self.created}

    def list_models(self) -> dict:
        def entry(name: str, parent: str | None) -> dict:
            return {"id": name, "object": "model", "created": self.created,
                    "owned_by": "course", "parent": parent}
        return {"object": "list", "data": [entry(self.base_name, None),
                                           *(entry(a, self.base_name) for a in self.adapters)]}

    def chat_completions(self, body: bytes) -> tuple[dict, dict]:
        """(the OpenAI-shaped reply, its latency record)."""
        request = _json_object(body)
        name = request.get("model")
        if not isinstance(name, str) or not name:
            raise HttpError(400, f"model is required: one of {', '.join(self.names)}",
                            param="model")
        if name not in self.names:
            raise HttpError(404, f"model {name!r} does not exist here: this server has "
                                 f"{', '.join(self.names)} (GET /v1/models lists them)",
                            param="model", code="model_not_found")
        messages = _messages(request.get("messages"))
        max_tokens = self._max_tokens(request)
        _check_sampling(request)
        text, prompt_tokens, completion, finish, timing = self.generate(name, messages,
                                                                        max_tokens)
        reply = {"id": f"chatcmpl-{uuid.uuid4().hex[:24]}", "object": "chat.completion",
                 "created": int(time.time()), "model": name,
                 "choices": [{"index": 0, "message": {"role": "assistant", "content": text},
                              "logprobs": None, "finish_reason": finish}],
                 "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion,
                           "total_tokens": prompt_tokens + completion}}
        return reply, {"model": name, "prompt_tokens": prompt_tokens,
                       "completion_tokens": completion, **timing}

    def _max_tokens(self, request: dict) -> int:
        param = "max_completion_tokens" if "max_completion_tokens" in request else "max_tokens"
        value = request.get(param)
        if value is None:
            return min(self.default_max_tokens, self.max_tokens_cap)
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise HttpError(400, f"{param} must be a positive whole number, got {value!r}",
                            param=param)
        if value > self.max_tokens_cap:
            raise HttpError(400, f"{param}={value} is above this server's cap of "
                                 f"{self.max_tokens_cap}: ask for fewer tokens (or start the "
                                 f"server with a higher max_tokens_cap)", param=param)
        return value

    # -- generation

    def generate(self, name: str, messages: list[dict], max_tokens: int):
        """Greedy answer with the adapter `name` picks: (text, prompt tokens, completion
        tokens, finish reason, timing)."""
        import torch
        tokenizer = self.tokenizer
        try:
            text = tokenizer.apply_chat_template(messages, tokenize=False,
                                                 add_generation_prompt=True)
        except Exception as error:  # the template's own checks (e.g. role order)
            raise HttpError(400, f"the chat template refused these messages: {error}",
                            param="messages") from None
        encoded = tokenizer(text, return_tensors="pt", add_special_tokens=False)
        prompt_tokens = int(encoded["input_ids"].shape[1])
        limit = getattr(getattr(self.model, "config", None), "max_position_embeddings", None)
        if limit and prompt_tokens + max_tokens > limit:
            raise HttpError(400, f"the messages take {prompt_tokens} tokens and max_tokens asks "
                                 f"for {max_tokens} more: over this model's {limit}-token "
                                 f"context. Shorten the messages or ask for fewer tokens",
                            param="messages", code="context_length_exceeded")
        queued = time.perf_counter()
        with self.generate_lock:
            started = time.perf_counter()
            with self._serving(name), torch.no_grad():
                encoded = encoded.to(self.model.device)
                output = self.model.generate(**encoded, max_new_tokens=max_tokens,
                                             do_sample=False,
                                             pad_token_id=tokenizer.pad_token_id)
            finished = time.perf_counter()
        new = output[0, prompt_tokens:].tolist()
        stops = _stop_ids(self.model, tokenizer)
        end = next((i for i, token in enumerate(new) if token in stops), None)
        finish = "stop" if end is not None or len(new) < max_tokens else "length"
        new = new if end is None else new[:end + 1]
        answer = tokenizer.decode(new, skip_special_tokens=True).strip()
        return answer, prompt_tokens, len(new), finish, {
            "queue_seconds": started - queued, "generate_seconds": finished - started}

    @contextlib.contextmanager
    def _serving(self, name: str):
        """Set the model up for `name` (call under the generation lock): its adapter active,
        or every adapter off for the base model. Records the time each change takes."""
        with contextlib.ExitStack() as stack:
            start = time.perf_counter()
            if self.is_peft and name == self.base_name:
                stack.enter_context(self.model.disable_adapter())
            elif self.is_peft and self.model.active_adapter != self.adapters[name]:
                self.model.set_adapter(self.adapters[name])
            seconds = time.perf_counter() - start
            if self.serving is not None and name != self.serving:
                with self.stats_lock:
                    self.stats.switches.append({"from": self.serving, "to": name,
                                                "seconds": seconds, "at": time.time()})
            self.serving = name
            yield


def _stop_ids(model, tokenizer) -> set[int]:
    """Token ids that end an answer: the generation config's and the tokenizer's end tokens."""
    ids = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
    ids = set(ids if isinstance(ids, (list, tuple)) else [ids] if ids is not None else [])
    return ids | ({tokenizer.eos_token_id} if tokenizer.eos_token_id is not None else set())


def _json_object(body: bytes) -> dict:
    try:
        request = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise HttpError(400, f"the body is not valid JSON ({error}): send an object like "
                             f'{{"model": ..., "messages": [...]}}') from None
    if not isinstance(request, dict):
        raise HttpError(400, f"the body must be a JSON object, got {type(request).__name__}: "
                             f'send {{"model": ..., "messages": [...]}}')
    return request


def _messages(messages) -> list[dict]:
    """The request's messages, checked, as plain {role, content} strings."""
    example = '[{"role": "user", "content": "..."}]'
    if messages is None:
        raise HttpError(400, f"messages is required: a list like {example}", param="messages")
    if not isinstance(messages, list) or not messages:
        raise HttpError(400, f"messages must be a non-empty list like {example}",
                        param="messages")
    checked = []
    for i, message in enumerate(messages):
        if not isinstance(message, dict):
            raise HttpError(400, f"messages[{i}] must be an object with role and content",
                            param=f"messages[{i}]")
        role = message.get("role")
        if role is None:
            raise HttpError(400, f"messages[{i}] has no role: use one of {', '.join(ROLES)}",
                            param=f"messages[{i}].role")
        role = "system" if role == "developer" else role  # OpenAI's newer name for system
        if role not in ROLES:
            raise HttpError(400, f"messages[{i}].role is {role!r}: use one of "
                                 f"{', '.join(ROLES)}", param=f"messages[{i}].role")
        checked.append({"role": role, "content": _content(message.get("content"), i)})
    return checked


def _content(content, i: int) -> str:
    """A message's text: a string, or a list of {"type": "text", "text": ...} parts."""
    if isinstance(content, str):
        return content
    if isinstance(content, list) and content and all(
            isinstance(p, dict) and p.get("type") == "text" and isinstance(p.get("text"), str)
            for p in content):
        return "".join(p["text"] for p in content)
    what = "no content" if content is None else f"content of type {type(content).__name__}"
    raise HttpError(400, f"messages[{i}] has {what}: content must be a string (or a list of "
                         f'{{"type": "text", "text": ...}} parts)', param=f"messages[{i}].content")


def _check_sampling(request: dict) -> None:
    """This server decodes greedily: refuse what would ask for anything else."""
    temperature = request.get("temperature")
    if temperature is not None and (isinstance(temperature, bool)
                                    or not isinstance(temperature, (int, float))
                                    or temperature != 0):
        raise HttpError(400, f"temperature={temperature!r}: this server decodes greedily, "
                             f"so send temperature 0 or leave it out", param="temperature")
    if request.get("stream"):
        raise HttpError(400, "stream=true is not supported: this server answers whole replies",
                        param="stream")
    if request.get("n", 1) != 1:
        raise HttpError(400, "n must be 1: greedy decoding gives one answer", param="n")


class _Handler(BaseHTTPRequestHandler):
    """Routes requests to the app; every reply, error or not, is JSON."""

    server_version = "course-serve/0.1"
    protocol_version = "HTTP/1.1"  # keep-alive for clients that reuse connections
    timeout = 60  # a client that stops sending frees its thread after this

    def _any_method(self) -> None:
        self._dispatch(self.command)  # HEAD and the others are answered 405 (HEAD: headers only)

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = do_HEAD = _any_method

    def setup(self) -> None:
        super().setup()
        self.server.track(self.connection, add=True)

    def finish(self) -> None:
        self.server.track(self.connection, add=False)
        super().finish()

    def log_message(self, format: str, *args) -> None:
        pass  # quiet: server.stats keeps the record

    def send_error(self, code: int, message: str | None = None, explain: str | None = None):
        """The standard library's own errors (bad request line, unknown method), as JSON."""
        self.close_connection = True
        error = HttpError(code, message or HTTPStatus(code).phrase)
        self.server.app.record(code, error=error.message)
        self._reply(code, error.body())

    def _dispatch(self, method: str) -> None:
        app: _App = self.server.app
        start = time.perf_counter()
        self._unread = self._declared_length()
        model, latency, headers = None, None, {}
        try:
            path = urlsplit(self.path).path.rstrip("/") or "/"
            if path != "/health":
                app.check_key(self.headers.get("Authorization"))
            allowed = _ROUTES.get(path)
            if allowed is None:
                raise HttpError(404, f"no such path {path}: this server answers "
                                     f"{', '.join(f'{m} {p}' for p, m in _ROUTES.items())}",
                                code="not_found")
            if method != allowed:
                raise HttpError(405, f"{method} {path} is not allowed: use {allowed}",
                                headers={"Allow": allowed})
            if path == "/v1/chat/completions":
                reply, latency = app.chat_completions(self._body(app.max_body_bytes))
                model = latency["model"]
                latency["seconds"] = time.perf_counter() - start
            else:
                reply = app.list_models() if path == "/v1/models" else app.health()
            status = 200
        except HttpError as error:
            status, reply, headers = error.status, error.body(), error.headers
        except Exception as error:  # a failure inside the server: say what, not where
            status = 500
            reply = HttpError(500, f"the server failed while answering: "
                                   f"{type(error).__name__}: {error}").body()
        # counted before the reply goes out, so a client that has its answer sees it counted
        app.record(status, model, latency, error=reply.get("error", {}).get("message", ""))
        self._reply(status, reply, headers)

    def _declared_length(self) -> int:
        try:
            return max(0, int(self.headers.get("Content-Length", 0)))
        except ValueError:
            return 0

    def _body(self, limit: int) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            self.close_connection = True
            raise HttpError(411, "chunked bodies are not supported: send a Content-Length")
        length = self.headers.get("Content-Length")
        if length is None:
            raise HttpError(411, "the request has no Content-Length: send the JSON body with one")
        if not length.strip().isdigit():
            raise HttpError(400, f"Content-Length {length!r} is not a number")
        length = int(length)
        if length > limit:
            raise HttpError(413, f"the body is {length:,} bytes, over this server's limit of "
                                 f"{limit:,}: send fewer or shorter messages (or start the "
                                 f"server with a higher max_body_bytes)",
                            code="request_too_large")
        body = self.rfile.read(length)
        self._unread = 0
        return body

    def _drain(self) -> None:
        """Read and drop a body left unread (an error came first): closing a socket with
        unread data resets the connection, and the client would lose our reply."""
        unread = getattr(self, "_unread", 0)
        while 0 < unread <= _DRAIN_LIMIT:
            chunk = self.rfile.read(min(unread, 2**16))
            if not chunk:
                break
            unread -= len(chunk)
        self._unread = unread

    def _reply(self, status: int, body: dict, headers: dict | None = None) -> None:
        self._drain()
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        if getattr(self, "_unread", 0) or self.close_connection:
            self.close_connection = True  # what is left of the body would read as a request
            self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False  # stop() never waits on a client's idle keep-alive connection
    request_queue_size = 128  # a burst of connections waits rather than being refused

    def __init__(self, address, app: _App):
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        self.app = app
        self.connections: set[socket.socket] = set()
        self.connections_lock = threading.Lock()
        super().__init__(address, _Handler)

    def track(self, connection: socket.socket, add: bool) -> None:
        with self.connections_lock:
            (self.connections.add if add else self.connections.discard)(connection)

    def close_connections(self) -> None:
        """Hang up on every open connection (idle keep-alive ones wait in a read)."""
        with self.connections_lock:
            for connection in self.connections:
                with contextlib.suppress(OSError):
                    connection.shutdown(socket.SHUT_RDWR)

    def handle_error(self, request, client_address) -> None:
        pass  # a client that hung up mid-reply: nothing to tell anyone


class Server:
    """A running server: `url`, `stats`, `stop()`; also a context manager that stops it."""

    def __init__(self, httpd: _HTTPServer, thread: threading.Thread):
        self._httpd, self._thread, self._app = httpd, thread, httpd.app
        host, port = httpd.server_address[:2]
        self.host, self.port = host, port
        self.url = f"http://{f'[{host}]' if ':' in host else host}:{port}"

    @property
    def models(self) -> list[str]:
        """The names a request's "model" field may take: the base model, then the adapters."""
        return self._app.names

    @property
    def base_model(self) -> str:
        return self._app.base_name

    @property
    def stats(self) -> ServeStats:
        """A snapshot of the server's counts, latencies and switches."""
        with self._app.stats_lock:
            return copy.deepcopy(self._app.stats)

    def route(self, name: str, adapter: str) -> None:
        """Point requests for `name` at `adapter`, an adapter loaded on the served model (a
        newly promoted version, say), without a restart. It waits for the generation in
        progress, so every request is answered whole by the old adapter or the new one."""
        if name == self._app.base_name:
            raise ValueError(f"{name!r} is the base model's name: it always means no adapter")
        with self._app.generate_lock:
            routes = _served_adapters(self._app.model, {**self._app.adapters, name: adapter})
            self._app.adapters = routes  # one assignment: a request sees the old map or the new

    def stop(self) -> None:
        """Stop answering, hang up open connections and free the port. A request still
        generating is let finish (up to 30 s) first."""
        if self._thread.is_alive():
            self._httpd.shutdown()  # no new connections
            self._thread.join()
        if self._app.generate_lock.acquire(timeout=30):  # wait out a generation in progress
            self._app.generate_lock.release()
        self._httpd.close_connections()
        self._httpd.server_close()

    def __enter__(self) -> Server:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = "running" if self._thread.is_alive() else "stopped"
        return f"<Server {self.url} {state}: {', '.join(self.models)}>"


def start(model, tokenizer, adapters: dict[str, str] | list[str] | None = None, *,
          host: str = "127.0.0.1", port: int = 0, api_key: str | None = None,
          allow_remote: bool = False, base_name: str | None = None,
          max_tokens_cap: int = 512, default_max_tokens: int = 64,
          max_body_bytes: int = 1_000_000) -> Server:
    """Serve `model` over HTTP in a background thread; returns the running Server.

    `adapters` maps the names requests use to adapters loaded on the PeftModel `model`
    ({"tickets": "tickets"}; a list serves adapters under their own names; None serves every
    loaded adapter). The base model answers to `base_name` (default: its hub id) with all
    adapters off. port=0 takes a free port (see `server.url`). Only this machine can connect
    unless allow_remote=True. With `api_key` (read it from an environment variable, never
    write it in a notebook) requests must send 'Authorization: Bearer <key>'.
    """
    if not _is_loopback(host) and not allow_remote:
        raise ValueError(f"host={host!r} would let other machines query the model: the course "
                         f"serves on 127.0.0.1. Pass allow_remote=True (with an api_key) to "
                         f"serve beyond this machine")
    if not _is_loopback(host) and api_key is None:
        warnings.warn(f"serving on {host} without an api_key: anyone who can reach it can "
                      f"use the model", stacklevel=2)
    if api_key is not None and (not isinstance(api_key, str) or not api_key.strip()):
        raise ValueError("api_key is empty: is the environment variable it comes from set? "
                         "Pass a non-empty key, or None for no key")
    if tokenizer.pad_token_id is None:
        raise ValueError("the tokenizer has no pad token: set tokenizer.pad_token = "
                         "tokenizer.eos_token (models.load_model does this)")
    served = _served_adapters(model, adapters)
    base_name = base_name or _model_name(model)
    if base_name in served:
        raise ValueError(f"adapter name {base_name!r} is the base model's name: rename the "
                         f"adapter or pass another base_name")
    if max_tokens_cap < 1 or not 1 <= default_max_tokens:
        raise ValueError("max_tokens_cap and default_max_tokens must be positive")
    app = _App(model.eval(), tokenizer, served, base_name, api_key, max_tokens_cap,
               default_max_tokens, max_body_bytes)
    httpd = _HTTPServer((host, port), app)
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05},
                              name=f"course-serve-{httpd.server_address[1]}", daemon=True)
    thread.start()
    return Server(httpd, thread)


def _served_adapters(model, adapters) -> dict[str, str]:
    """{request name: PEFT adapter name}, checked against the adapters the model carries."""
    loaded = list(getattr(model, "peft_config", {}) or {})
    if adapters is None:
        return {name: name for name in loaded}
    served = dict(adapters) if isinstance(adapters, dict) else {a: a for a in adapters}
    if served and not loaded:
        raise ValueError("adapters need a PeftModel that carries them: build one with "
                         "serve.load_adapters(base, {name: adapter folder})")
    for name, adapter in served.items():
        if adapter not in loaded:
            raise ValueError(f"adapter {adapter!r} (for {name!r}) is not loaded on the model "
                             f"(loaded: {', '.join(loaded)}): add it with "
                             f"model.load_adapter(folder, adapter_name={adapter!r})")
    return served


def _model_name(model) -> str:
    """The base model's name: the hub id the course records, else its path, else 'base'."""
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    return (getattr(base, "course_source", None) or getattr(base, "name_or_path", None)
            or "base")


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


# ---------------------------------------------------------------------------- client

class ServeError(RuntimeError):
    """An error reply from a server: its status and OpenAI-shaped body."""

    def __init__(self, status: int, body: dict):
        message = (body.get("error") or {}).get("message", "") if isinstance(body, dict) else ""
        super().__init__(f"HTTP {status}: {message or body}")
        self.status, self.body = status, body


def request(url: str, path: str, payload: dict | None = None, api_key: str | None = None,
            timeout: float = 120) -> dict:
    """GET (no payload) or POST JSON to a server; the decoded reply. Error replies raise a
    ServeError carrying the status and the server's error object."""
    data = None if payload is None else json.dumps(payload).encode()
    headers = {"Content-Type": "application/json"}
    if api_key:
        headers["Authorization"] = f"Bearer {api_key}"
    call = urllib.request.Request(url.rstrip("/") + path, data=data, headers=headers)
    try:
        with urllib.request.urlopen(call, timeout=timeout) as response:
            return json.loads(response.read())
    except urllib.error.HTTPError as error:
        text = error.read()
        try:
            body = json.loads(text)
        except json.JSONDecodeError:
            body = {"error": {"message": text.decode(errors="replace")}}
        raise ServeError(error.code, body) from None


def chat_completion(url: str, model: str, messages: list[dict], max_tokens: int = 64,
                    api_key: str | None = None, timeout: float = 120) -> dict:
    """One greedy chat completion from an OpenAI-compatible server (this one or another)."""
    return request(url, "/v1/chat/completions",
                   {"model": model, "messages": messages, "max_tokens": max_tokens,
                    "temperature": 0}, api_key=api_key, timeout=timeout)
