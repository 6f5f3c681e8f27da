"""A local OpenAI-compatible server that batches, written with the standard library only.

Introduced in chapter 07 (serving fine-tuned models).

`start(model, tokenizer)` serves a model on localhost (`http.server`, one thread per
connection): POST /v1/chat/completions in OpenAI's shape, GET /v1/models and GET /health. One
PeftModel can carry several adapters (`serve.load_adapters`); the request's "model" field picks
one per request, and the base model's name picks none.

How it answers many clients with one model (the lesson, so it is written out here rather than
taken from an engine; vLLM, which chapter 07 also runs, does the same with more machinery):

1. A connection's thread checks the request, turns the messages into token ids with the
   server's own copy of the tokenizer (a notebook using the tokenizer meanwhile cannot race
   it), and puts a job on a bounded queue. A full queue is answered 503 at once, rather than
   left hanging, with a Retry-After of about the time the queue ahead takes to clear.
2. One worker thread owns the model and keeps a running batch: one row per request, their
   KV caches side by side (left-padded to one length). Between two decoding steps it admits
   queued jobs into the free rows (up to `max_batch`): one forward pass over their prompts
   (the prefill) fills their cache and gives each its first token, and they join the batch.
   This is continuous batching, as vLLM does it: nobody waits for a batch to end.
3. Each step is one forward pass over the token every row feeds next. Rows may name
   different adapters: PEFT's `adapter_names` runs each row's own LoRA (or none for the base
   model) in the same pass, so mixed traffic shares the steps too. Every row picks its own
   next token (greedy at temperature 0, else sampled with its own temperature, top_p and
   seeded generator); a streaming row sends each new piece of text as a server-sent event;
   a row that ends (its stop token, max_tokens, or its client gone) is answered at once and
   leaves the batch, and the cache columns nobody needs any more are cut.

`start(..., schedule="static")` keeps the older way for comparison: a batch, of one adapter's
requests, is formed only when the model is idle, and a request that arrives meanwhile waits
for the whole batch to end.

`server.stats` records requests, errors, latencies and every forward pass. A bad request
gets a 4xx error in OpenAI's JSON shape, a failure inside the server a 500 with its message:
never a traceback. A client that takes longer than `read_timeout` seconds to send its request
(idle on a kept-alive connection, or trickling bytes) is hung up on, so it cannot hold a
thread.
"""

from __future__ import annotations

import contextlib
import copy
import hmac
import ipaddress
import json
import math
import random
import socket
import statistics
import threading
import time
import urllib.error
import urllib.request
import uuid
import warnings
from collections import deque
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

ROLES = ("system", "user", "assistant")
_ROUTES = {"/v1/chat/completions": "POST", "/v1/models": "GET", "/health": "GET"}
_DRAIN_LIMIT = 16 * 2**20  # an oversized body up to this is read and dropped before the 413
MAX_TEMPERATURE = 2.0  # OpenAI's range: 0 to 2
SCHEDULES = ("continuous", "static")  # when queued requests may join the batch: see start
STEPS_KEPT = 100_000  # ServeStats.steps keeps the latest forward passes (hours of serving)


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
    """What a server has answered: counts, per-request latency, and its decoding steps."""

    requests: int = 0  # every HTTP request answered, errors included
    errors: int = 0  # replies with status 400 or above
    by_status: dict[int, int] = field(default_factory=dict)
    by_model: dict[str, int] = field(default_factory=dict)  # chat completions answered
    # per chat completion: model, seconds (the whole request), queue_seconds (waiting to
    # join the batch), generate_seconds (from joining to its last token), batch_size (the most
    # rows it shared a step with), prompt_tokens, completion_tokens
    latencies: list[dict] = field(default_factory=list)
    # per forward pass, the latest STEPS_KEPT: kind ("prefill": rows joining; "decode": one
    # token for every row), rows, adapters (how many different ones the rows ran), seconds
    steps: list[dict] = field(default_factory=list)
    last_error: str = ""

    def percentile(self, q: float, key: str = "seconds") -> float:
        """The q-th percentile (0-100) of a latency field over the answered completions."""
        return _percentile([r[key] for r in self.latencies], q)

    def __str__(self) -> str:
        text = f"{self.requests} requests, {self.errors} errors"
        if self.latencies:
            text += (f"; latency median {self.percentile(50) * 1000:.0f} ms, "
                     f"p95 {self.percentile(95) * 1000:.0f} ms")
        decodes = [step["rows"] for step in self.steps if step["kind"] == "decode"]
        if decodes:
            text += (f"; {len(decodes)} decoding steps of {statistics.mean(decodes):.1f} rows "
                     f"on average, {len(self.steps) - len(decodes)} prefills")
        return text


def _percentile(values, q: float) -> float:
    """The q-th percentile (0-100) of `values`, as the nearest value (0.0 when empty)."""
    ordered = sorted(values)
    if not ordered:
        return 0.0
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


# ---------------------------------------------------------------------------- jobs, rows, the batch

@dataclass
class _Job:
    """One chat completion waiting for, or in, a batch. The worker answers it through `events`:
    ("text", piece) for a streaming job as it decodes, then ("done", result) or ("error", e)."""

    name: str  # the served name: the base model's or an adapter's
    prompt: list[int]
    max_tokens: int
    temperature: float
    top_p: float
    seed: int | None
    stream: bool
    queued: float = field(default_factory=time.perf_counter)
    events: deque = field(default_factory=deque)
    ready: threading.Condition = field(default_factory=threading.Condition)
    cancelled: bool = False  # its client hung up: the batch stops decoding its row

    def send(self, kind: str, value) -> None:
        with self.ready:
            self.events.append((kind, value))
            self.ready.notify()

    def next_event(self, timeout: float | None = None) -> tuple[str, object]:
        with self.ready:
            if not self.ready.wait_for(lambda: self.events, timeout=timeout):
                raise TimeoutError
            return self.events.popleft()

    def result(self) -> dict:
        """Wait for the whole answer (text pieces of a streaming job are skipped)."""
        while True:
            kind, value = self.next_event()
            if kind == "error":
                raise value
            if kind == "done":
                return value


@dataclass
class _Row:
    """A job being decoded: a row of the running batch."""

    job: _Job
    adapter: str  # the PEFT adapter it runs ("__base__" for none), fixed when it joins
    sample: object  # its sampler: logits -> next token
    joined: float = field(default_factory=time.perf_counter)
    tokens: list[int] = field(default_factory=list)
    sent: str = ""  # the text a streaming row has sent so far
    widest: int = 0  # the most rows it shared a step with


class _Batch:
    """The rows decoding together (the worker thread's), and the tensors they share: the KV
    cache (one row per job, left-padded to one length) and its attention mask, 1 where a row
    has a real token. A row's next token sits at the position that counts its real tokens."""

    def __init__(self, rows: list[_Row] | None = None, cache=None, mask=None):
        self.rows: list[_Row] = rows or []
        self.cache = cache
        self.mask = mask

    def __len__(self) -> int:
        return len(self.rows)

    def keep(self, going: list[int]) -> None:
        """Drop the rows that ended, and the columns no row still running needs."""
        import torch
        if len(going) == len(self.rows):
            return
        self.rows = [self.rows[i] for i in going]
        if not self.rows:
            self.cache = self.mask = None
            return
        index = torch.tensor(going, device=self.mask.device)
        first = int(self.mask[index].any(0).int().argmax())  # the first column any row uses
        self.mask = self.mask[index, first:]
        for layer in self.cache.layers:
            layer.keys, layer.values = (t[index, :, first:] for t in (layer.keys, layer.values))

    def join(self, rows: list[_Row], cache, mask) -> None:
        """Add rows prefilled together (their cache and mask) to the running batch, the
        shorter side padded on the left so every row's latest token is in the last column."""
        import torch
        from torch.nn.functional import pad
        if not rows:
            return
        if not self.rows:
            self.rows, self.cache, self.mask = rows, cache, mask
            return
        width = max(self.mask.shape[1], mask.shape[1])
        grow = [width - self.mask.shape[1], width - mask.shape[1]]
        self.mask = torch.cat([pad(self.mask, (grow[0], 0)), pad(mask, (grow[1], 0))])
        for ours, theirs in zip(self.cache.layers, cache.layers):
            ours.keys = torch.cat([pad(ours.keys, (0, 0, grow[0], 0)),
                                   pad(theirs.keys, (0, 0, grow[1], 0))])
            ours.values = torch.cat([pad(ours.values, (0, 0, grow[0], 0)),
                                     pad(theirs.values, (0, 0, grow[1], 0))])
        self.rows = self.rows + rows


class _Batcher:
    """The bounded queue, and the one worker thread that owns the model: it admits queued
    jobs into the running batch and decodes the batch a token at a time."""

    def __init__(self, app: _App, max_batch: int, max_queue: int, batch_wait: float,
                 schedule: str):
        self.app, self.max_batch, self.max_queue = app, max_batch, max_queue
        self.batch_wait, self.schedule = batch_wait, schedule
        self.waiting: deque[_Job] = deque()
        self.changed = threading.Condition()
        self.stopping = False
        self.thread = threading.Thread(target=self._work, daemon=True, name="course-serve-batch")
        self.thread.start()

    def submit(self, job: _Job) -> None:
        with self.changed:
            if self.stopping:
                raise HttpError(503, "the server is stopping", code="server_stopping")
            if len(self.waiting) >= self.max_queue:
                wait = self._drain_seconds()
                raise HttpError(503, f"the server is busy: {len(self.waiting)} requests are "
                                     f"already queued (its limit). Retry after {wait} s, when "
                                     f"they should be answered, or start the server with a "
                                     f"larger max_queue", code="server_busy",
                                headers={"Retry-After": str(wait)})
            self.waiting.append(job)
            self.changed.notify()

    def _drain_seconds(self) -> int:
        """About how long the queue ahead takes to clear, from the time the last answers took
        to decode, per batch ahead: the Retry-After of a refusal (whole seconds, 1 to 60, as
        OpenAI's client reads it)."""
        with self.app.stats_lock:
            recent = [r["generate_seconds"] for r in self.app.stats.latencies[-5:]]
        per_answer = statistics.median(recent) if recent else 1.0
        batches_ahead = len(self.waiting) / self.max_batch + 1  # the queue and the one running
        return max(1, min(60, math.ceil(per_answer * batches_ahead)))

    def stop(self, timeout: float = 30) -> None:
        """Refuse new jobs, answer the queued ones 503, and let the rows decoding finish."""
        with self.changed:
            self.stopping = True
            left, self.waiting = list(self.waiting), deque()
            self.changed.notify()
        for job in left:
            job.send("error", HttpError(503, "the server stopped before answering",
                                        code="server_stopping"))
        self.thread.join(timeout)

    def _admit(self) -> list[_Job] | None:
        """The queued jobs to start now ([] for none, None to stop). With nothing decoding it
        waits for a job, then `batch_wait` seconds for company. While rows decode, the
        continuous schedule admits jobs into the free rows at every step; the static one
        admits none until the whole batch has ended."""
        busy = len(self.app.batch)
        with self.changed:
            if not busy:
                self.changed.wait_for(lambda: self.waiting or self.stopping)
                if self.batch_wait > 0 and len(self.waiting) < self.max_batch:
                    # give a burst's other requests a moment to arrive and share the prefill
                    self.changed.wait_for(lambda: len(self.waiting) >= self.max_batch
                                          or self.stopping, timeout=self.batch_wait)
            if self.stopping:
                return [] if busy else None  # the rows decoding finish first
            if not self.waiting or (busy and self.schedule == "static"):
                return []
            room = self.max_batch - busy
            if self.schedule == "static":  # a batch of the oldest job's adapter, as before
                name = self.waiting[0].name
                taken = [job for job in self.waiting if job.name == name][:room]
            else:  # the oldest jobs, whatever adapters they name
                taken = list(self.waiting)[:room]
            chosen = set(map(id, taken))
            self.waiting = deque(job for job in self.waiting if id(job) not in chosen)
            return taken

    def _work(self) -> None:
        batch = self.app.batch
        while (jobs := self._admit()) is not None:
            if jobs:
                self._guarded(self.app.prefill, jobs, jobs)
            if batch.rows:
                self._guarded(self.app.step, [row.job for row in batch.rows])

    def _guarded(self, work, jobs: list[_Job], *args) -> None:
        """Run one prefill or step; if it fails, answer its jobs 500 (what failed, not where)
        and drop their rows."""
        try:
            work(*args)
        except Exception as error:
            message = f"the server failed while answering: {type(error).__name__}: {error}"
            failed = set(map(id, jobs))
            batch = self.app.batch
            with self.app.generate_lock:
                batch.keep([i for i, row in enumerate(batch.rows) if id(row.job) not in failed])
            for job in jobs:
                job.send("error", HttpError(500, message))


class _App:
    """The server's state: the model, its served names, the batcher and the stats."""

    def __init__(self, model, tokenizer, adapters: dict[str, str], base_name: str,
                 api_key: str | None, max_tokens_cap: int, default_max_tokens: int,
                 max_body_bytes: int, max_batch: int, max_queue: int, batch_wait: float,
                 schedule: str):
        self.model, self.tokenizer = model, tokenizer
        self.adapters, self.base_name = adapters, base_name
        self.api_key, self.max_tokens_cap = api_key, max_tokens_cap
        self.default_max_tokens, self.max_body_bytes = default_max_tokens, max_body_bytes
        self.is_peft = hasattr(model, "peft_config")
        self.stops = _stop_ids(model, tokenizer)
        self.created = int(time.time())
        # held by the worker for each prefill and step, and by `route` to change the names
        self.generate_lock = threading.Lock()
        self.stats_lock = threading.Lock()
        self.stats = ServeStats()
        self.batch = _Batch()
        self.batcher = _Batcher(self, max_batch, max_queue, batch_wait, schedule)

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
                "requests": self.stats.requests, "queued": len(self.batcher.waiting),
                "decoding": len(self.batch),
                "uptime_seconds": int(time.time()) - self.created}

    def list_models(self) -> dict:
        def entry(name: str, parent: str | None) -> dict:
            return {"id": name, "object": "model", "created": self.created,
                    "owned_by": "course", "parent": parent}
        return {"object": "list", "data": [entry(self.base_name, None),
                                           *(entry(a, self.base_name) for a in self.adapters)]}

    def job(self, body: bytes) -> tuple[_Job, dict]:
        """A checked request, as a job for the batcher, and what its reply echoes."""
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
        sampling = _sampling(request)
        prompt = self._prompt(messages, max_tokens)
        job = _Job(name, prompt, max_tokens, sampling["temperature"], sampling["top_p"],
                   sampling["seed"], sampling["stream"])
        return job, {"include_usage": sampling["include_usage"]}

    def reply(self, job: _Job, result: dict) -> dict:
        """The OpenAI-shaped reply to a finished job."""
        return {"id": f"chatcmpl-{uuid.uuid4().hex[:24]}", "object": "chat.completion",
                "created": int(time.time()), "model": job.name,
                "choices": [{"index": 0, "message": {"role": "assistant",
                                                     "content": result["text"]},
                             "logprobs": None, "finish_reason": result["finish"]}],
                "usage": _usage(len(job.prompt), result["completion_tokens"])}

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

    def _prompt(self, messages: list[dict], max_tokens: int) -> list[int]:
        try:
            text = self.tokenizer.apply_chat_template(messages, tokenize=False,
                                                      add_generation_prompt=True)
        except Exception as error:  # the template's own checks (e.g. role order)
            raise HttpError(400, f"the chat template refused these messages: {error}",
                            param="messages") from None
        prompt = self.tokenizer(text, add_special_tokens=False)["input_ids"]
        limit = getattr(getattr(self.model, "config", None), "max_position_embeddings", None)
        if limit and len(prompt) + max_tokens > limit:
            raise HttpError(400, f"the messages take {len(prompt)} tokens and max_tokens asks "
                                 f"for {max_tokens} more: over this model's {limit}-token "
                                 f"context. Shorten the messages or ask for fewer tokens",
                            param="messages", code="context_length_exceeded")
        return prompt

    # -- decoding (the worker thread only)

    def prefill(self, jobs: list[_Job]) -> None:
        """Start `jobs`: one forward pass over their prompts (left-padded to one width) fills
        their KV cache and gives each its first token; the rows still going join the batch."""
        import torch
        started = time.perf_counter()
        width = max(len(job.prompt) for job in jobs)
        pad = self.tokenizer.pad_token_id
        device = self.model.device
        # left padding: every row's last prompt token sits in the last column
        ids = torch.tensor([[pad] * (width - len(j.prompt)) + j.prompt for j in jobs],
                           device=device)
        mask = torch.tensor([[0] * (width - len(j.prompt)) + [1] * len(j.prompt) for j in jobs],
                            device=device)
        positions = (mask.cumsum(-1) - 1).clamp(min=0)  # each row counts from its first token
        with self.generate_lock:
            rows = [_Row(job, self._adapter(job.name), _sampler(job)) for job in jobs]
            logits, cache = self._forward(rows, ids, mask, positions, None)
            self._record("prefill", rows, started)
            going = self._advance(rows, logits, len(self.batch) + len(rows))
            joining = _Batch(rows, cache, mask)
            joining.keep(going)  # the rows that ended on their first token leave at once
            self.batch.join(joining.rows, joining.cache, joining.mask)

    def step(self) -> None:
        """One decoding step for every running row: one forward pass over the token each row
        feeds next, then each row's own next token, and the rows that ended leave."""
        import torch
        started = time.perf_counter()
        batch = self.batch
        with self.generate_lock:
            ids = torch.tensor([[row.tokens[-1]] for row in batch.rows], device=batch.mask.device)
            positions = batch.mask.sum(-1, keepdim=True)
            batch.mask = torch.cat([batch.mask, batch.mask.new_ones(len(batch), 1)], dim=1)
            logits, batch.cache = self._forward(batch.rows, ids, batch.mask, positions,
                                                batch.cache)
            self._record("decode", batch.rows, started)
            batch.keep(self._advance(batch.rows, logits, len(batch)))

    def _forward(self, rows: list[_Row], ids, mask, positions, cache):
        """The model on these rows: the last position's logits and the grown KV cache. Each
        row runs its own adapter: PEFT's `adapter_names` mixes LoRA adapters in one batch.
        Rows that all run one adapter take PEFT's plain path with it active instead, which is
        faster (no sub-batch per adapter in every layer)."""
        import torch
        kwargs, adapters = {}, {row.adapter for row in rows}
        if self.is_peft and len(adapters) == 1 and "__base__" not in adapters:
            if self.model.active_adapter != rows[0].adapter:
                self.model.set_adapter(rows[0].adapter)
        elif self.is_peft:
            kwargs["adapter_names"] = [row.adapter for row in rows]
        with torch.no_grad():
            out = self.model(input_ids=ids, attention_mask=mask, position_ids=positions,
                             past_key_values=cache, use_cache=True, logits_to_keep=1, **kwargs)
        return out.logits[:, -1, :].float(), out.past_key_values

    def _advance(self, rows: list[_Row], logits, width: int) -> list[int]:
        """Each row's next token from its logits (its own sampler); a row that ends is answered
        at once. Returns the indices of the rows still going."""
        going = []
        for r, row in enumerate(rows):
            job = row.job
            token = row.sample(logits[r])
            row.tokens.append(token)
            row.widest = max(row.widest, width)
            finish = ("stop" if token in self.stops else
                      "length" if len(row.tokens) >= job.max_tokens else
                      "cancelled" if job.cancelled else None)
            if job.stream:
                text = self._text(row.tokens)
                if text.startswith(row.sent) and len(text) > len(row.sent):
                    job.send("text", text[len(row.sent):])
                    row.sent = text
            if finish is None:
                going.append(r)
                continue
            job.send("done", {"text": self._text(row.tokens), "finish": finish,
                              "completion_tokens": len(row.tokens), "batch_size": row.widest,
                              "queue_seconds": row.joined - job.queued,
                              "generate_seconds": time.perf_counter() - row.joined})
        return going

    def _adapter(self, name: str) -> str:
        return "__base__" if name == self.base_name else self.adapters[name]

    def _record(self, kind: str, rows: list[_Row], started: float) -> None:
        with self.stats_lock:
            steps = self.stats.steps
            steps.append({"kind": kind, "rows": len(rows),
                          "adapters": len({row.adapter for row in rows}),
                          "seconds": time.perf_counter() - started})
            if len(steps) > STEPS_KEPT:  # a server that runs for days must not grow forever
                del steps[: len(steps) - STEPS_KEPT]

    def _text(self, tokens: list[int]) -> str:
        text = self.tokenizer.decode(tokens, skip_special_tokens=True).strip()
        return text.rstrip("\ufffd")  # half a multi-byte character waits for its other half


def _sampler(job: _Job):
    """A function from a row's logits to its next token: argmax at temperature 0, else a draw
    from the softmax at `temperature`, cut to the smallest set of tokens holding `top_p` of
    the probability, from the job's own generator (so a seed repeats its answer)."""
    import torch
    if job.temperature == 0:
        return lambda logits: int(logits.argmax())
    generator = None

    def draw(logits) -> int:
        nonlocal generator
        if generator is None:
            generator = torch.Generator(device=logits.device)
            generator.manual_seed(job.seed if job.seed is not None else random.getrandbits(63))
        probs = torch.softmax(logits / job.temperature, dim=-1)
        if job.top_p < 1:
            ordered, order = probs.sort(descending=True)
            keep = ordered.cumsum(-1) - ordered < job.top_p  # the top token is always kept
            probs = torch.zeros_like(probs).scatter(0, order[keep], ordered[keep])
        return int(torch.multinomial(probs, 1, generator=generator))
    return draw


def _usage(prompt_tokens: int, completion_tokens: int) -> dict:
    return {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens}


def _stop_ids(model, tokenizer) -> set[int]:
    """Token ids that end an answer: the generation config's and the tokenizer's end tokens."""
    ids = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
    ids = set(ids if isinstance(ids, (list, tuple)) else [ids] if ids is not None else [])
    return ids | ({tokenizer.eos_token_id} if tokenizer.eos_token_id is not None else set())


# ---------------------------------------------------------------------------- request checks

def _json_object(body: bytes) -> dict:
    try:
        request = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise HttpError(400, f"the body is not valid JSON ({error}): send an object like "
                             f'{{"model": ..., "messages": [...]}}') from None
    except RecursionError:
        raise HttpError(400, "the body nests too deeply to read: a chat request is an object "
                             "of lists of objects, a few levels deep") from None
    except ValueError as error:  # e.g. an integer of more than 4,300 digits
        raise HttpError(400, f"the body holds a value this server cannot read ({error})") from None
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


def _number(request: dict, param: str, default: float, low: float, high: float,
            low_open: bool = False) -> float:
    value = request.get(param)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not (
            (low < value if low_open else low <= value) and value <= high):
        bound = f"above {low:g}" if low_open else f"from {low:g}"
        raise HttpError(400, f"{param} must be a number {bound} to {high:g}, got {value!r}",
                        param=param)
    return float(value)


def _sampling(request: dict) -> dict:
    """temperature (0 = greedy), top_p, seed and stream, checked as OpenAI's API has them."""
    temperature = _number(request, "temperature", 0.0, 0.0, MAX_TEMPERATURE)
    top_p = _number(request, "top_p", 1.0, 0.0, 1.0, low_open=True)
    seed = request.get("seed")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)
                             or not 0 <= seed < 2**63):
        raise HttpError(400, f"seed must be a whole number from 0 to 2**63 - 1, got {seed!r}",
                        param="seed")
    if request.get("n", 1) != 1:
        raise HttpError(400, "n must be 1: this server gives one answer per request (send "
                             "several requests, each with its own seed)", param="n")
    stream = request.get("stream", False)
    if not isinstance(stream, bool):
        raise HttpError(400, f"stream must be true or false, got {stream!r}", param="stream")
    options = request.get("stream_options") or {}
    if not isinstance(options, dict):
        raise HttpError(400, "stream_options must be an object like {\"include_usage\": true}",
                        param="stream_options")
    return {"temperature": temperature, "top_p": top_p, "seed": seed, "stream": stream,
            "include_usage": bool(options.get("include_usage"))}


# ---------------------------------------------------------------------------- HTTP

class _Handler(BaseHTTPRequestHandler):
    """Routes requests to the app; every reply, error or not, is JSON (or a JSON event
    stream for stream=true)."""

    server_version = "course-serve/0.2"
    protocol_version = "HTTP/1.1"  # keep-alive for clients that reuse connections

    def _any_method(self) -> None:
        self._dispatch(self.command)  # HEAD and the others are answered 405 (HEAD: headers only)

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = do_HEAD = _any_method

    def setup(self) -> None:
        self.timeout = self.server.read_timeout + 5  # a backstop behind the watchdog
        super().setup()
        self.server.track(self.connection, add=True)

    def finish(self) -> None:
        self.server.track(self.connection, add=False)
        super().finish()

    def handle_one_request(self) -> None:
        self.server.reading(self.connection)  # the watchdog's clock runs while we read
        super().handle_one_request()

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
            if self.server.expired(self.connection):  # its headers came too slowly
                self._too_slow("the request's headers")
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
                body = self._body(app.max_body_bytes)
                self.server.reading(self.connection, False)
                job, options = app.job(body)
                app.batcher.submit(job)
                if job.stream:
                    return self._stream(app, job, options, start)
                result = job.result()
                reply, model = app.reply(job, result), job.name
                latency = _latency(job, result, start)
            else:
                self.server.reading(self.connection, False)
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

    def _stream(self, app: _App, job: _Job, options: dict, start: float) -> None:
        """Answer as server-sent events, OpenAI's chat.completion.chunk objects: a role,
        the text piece by piece, the finish reason (then usage, if asked for), then [DONE]."""
        chunk_id, created = f"chatcmpl-{uuid.uuid4().hex[:24]}", int(time.time())

        def chunk(delta: dict, finish: str | None = None, usage: dict | None = None) -> bytes:
            body = {"id": chunk_id, "object": "chat.completion.chunk", "created": created,
                    "model": job.name,
                    "choices": [] if usage else [{"index": 0, "delta": delta, "logprobs": None,
                                                  "finish_reason": finish}]}
            if usage:
                body["usage"] = usage
            return b"data: " + json.dumps(body).encode() + b"\n\n"

        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Connection", "close")  # the stream ends when the connection does
        self.end_headers()
        self.close_connection = True
        status, result, error = 200, None, ""
        try:
            self.wfile.write(chunk({"role": "assistant", "content": ""}))
            self.wfile.flush()
            while True:
                kind, value = job.next_event()
                if kind == "text":
                    self.wfile.write(chunk({"content": value}))
                elif kind == "done":
                    result = value
                    self.wfile.write(chunk({}, result["finish"]))
                    if options["include_usage"]:
                        self.wfile.write(chunk({}, usage=_usage(len(job.prompt),
                                                                result["completion_tokens"])))
                    self.wfile.write(b"data: [DONE]\n\n")
                    break
                else:  # the batch failed after the reply started: an error event, as OpenAI
                    status, error = value.status, value.message
                    self.wfile.write(b"data: " + json.dumps(value.body()).encode() + b"\n\n")
                    break
                self.wfile.flush()
            self.wfile.flush()
        except OSError:  # the client hung up: stop decoding its row
            job.cancelled = True
            status, error = 499, "the client closed the connection mid-stream"
        latency = _latency(job, result, start) if result else None
        app.record(status, job.name if result else None, latency, error=error)

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
        try:
            body = self.rfile.read(length)
        except OSError:
            body = b""
        if len(body) < length:  # the watchdog hung up on a body that came too slowly
            self._too_slow(f"the body ({len(body):,} of {length:,} bytes)")
        self._unread = 0
        return body

    def _too_slow(self, what: str) -> None:
        self.close_connection, self._unread = True, 0
        raise HttpError(408, f"{what} took over {self.server.read_timeout:g} s to arrive: "
                             f"send the whole request at once", code="request_timeout")

    def _drain(self) -> None:
        """Read and drop a body left unread (an error came first): closing a socket with
        unread data resets the connection, and the client would lose our reply."""
        unread = getattr(self, "_unread", 0)
        while 0 < unread <= _DRAIN_LIMIT:
            try:
                chunk = self.rfile.read(min(unread, 2**16))
            except OSError:
                break
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


def _latency(job: _Job, result: dict, start: float) -> dict:
    return {"model": job.name, "seconds": time.perf_counter() - start,
            "queue_seconds": result["queue_seconds"],
            "generate_seconds": result["generate_seconds"], "batch_size": result["batch_size"],
            "prompt_tokens": len(job.prompt), "completion_tokens": result["completion_tokens"]}


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False  # stop() never waits on a client's idle keep-alive connection
    request_queue_size = 128  # a burst of connections waits rather than being refused

    def __init__(self, address, app: _App, read_timeout: float):
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        self.app, self.read_timeout = app, read_timeout
        # connection -> when it started reading its current request (None: being answered)
        self.connections: dict[socket.socket, float | None] = {}
        self.too_slow: set[socket.socket] = set()  # hung up on by the watchdog
        self.connections_lock = threading.Lock()
        super().__init__(address, _Handler)
        self.watching = threading.Event()
        self.watchdog = threading.Thread(target=self._watch, daemon=True,
                                         name="course-serve-watchdog")
        self.watchdog.start()

    def track(self, connection: socket.socket, add: bool) -> None:
        with self.connections_lock:
            if add:
                self.connections[connection] = time.monotonic()
            else:
                self.connections.pop(connection, None)
                self.too_slow.discard(connection)

    def reading(self, connection: socket.socket, started: bool = True) -> None:
        with self.connections_lock:
            if connection in self.connections:
                self.connections[connection] = time.monotonic() if started else None

    def expired(self, connection: socket.socket) -> bool:
        with self.connections_lock:
            return connection in self.too_slow

    def _watch(self) -> None:
        """Hang up on connections that have spent over read_timeout reading one request."""
        while not self.watching.wait(min(0.25, self.read_timeout / 4)):
            now = time.monotonic()
            with self.connections_lock:
                slow = [c for c, since in self.connections.items()
                        if since is not None and now - since > self.read_timeout]
                for connection in slow:
                    self.connections[connection] = None
                    self.too_slow.add(connection)
            for connection in slow:  # the reading thread gets end-of-file and finishes
                with contextlib.suppress(OSError):
                    connection.shutdown(socket.SHUT_RD)

    def close_connections(self) -> None:
        """Hang up on every open connection (idle keep-alive ones wait in a read)."""
        self.watching.set()
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
        """A snapshot of the server's counts, latencies and decoding steps."""
        with self._app.stats_lock:
            return copy.deepcopy(self._app.stats)

    def route(self, name: str, adapter: str, timeout: float = 120) -> None:
        """Point requests for `name` at `adapter`, an adapter loaded on the served model (a
        newly promoted version, say), without a restart. Requests that join the batch from
        the next step on get the new adapter; those already decoding finish on the old one,
        so every request is answered whole by one of them. It returns when none of those is
        left (then the old adapter can be deleted)."""
        app = self._app
        if name == app.base_name:
            raise ValueError(f"{name!r} is the base model's name: it always means no adapter")
        with app.generate_lock:  # between two steps
            routes = _served_adapters(app.model, {**app.adapters, name: adapter})
            old, app.adapters = app.adapters.get(name), routes

        def old_ones_decoding() -> bool:
            with app.generate_lock:
                return any(row.job.name == name and row.adapter == old for row in app.batch.rows)
        deadline = time.monotonic() + timeout
        while old != adapter and old_ones_decoding():
            if time.monotonic() > deadline:
                raise TimeoutError(f"requests for {name!r} on {old!r} were still decoding after "
                                   f"{timeout} s: the route is made, but keep {old!r} loaded")
            time.sleep(0.01)

    def stop(self) -> None:
        """Stop answering, hang up open connections and free the port. Queued requests are
        answered 503; the rows still decoding are let finish (up to 30 s) first."""
        if self._thread.is_alive():
            self._httpd.shutdown()  # no new connections
            self._thread.join()
        self._app.batcher.stop(timeout=30)
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
          max_body_bytes: int = 1_000_000, max_batch: int = 8, max_queue: int = 64,
          batch_wait: float = 0.02, read_timeout: float = 20,
          schedule: str = "continuous") -> Server:
    """Serve `model` over HTTP in background threads; returns the running Server.

    `adapters` maps the names requests use to adapters loaded on the PeftModel `model`
    ({"tickets": "tickets"}; a list serves adapters under their own names; None serves every
    loaded adapter). The base model answers to `base_name` (default: its hub id) with all
    adapters off. port=0 takes a free port (see `server.url`). Only this machine can connect
    unless allow_remote=True. With `api_key` (read it from an environment variable, never
    write it in a notebook) requests must send 'Authorization: Bearer <key>'.

    Up to `max_batch` requests decode together, whatever adapters they name; at most
    `max_queue` wait (then 503 with Retry-After); an idle worker waits `batch_wait` seconds for
    a burst's requests to arrive together; a client gets `read_timeout` seconds to send each
    request. schedule="continuous" lets queued requests join the batch at every step;
    "static" forms a batch (of one adapter's requests) only when the last one has ended, as
    servers did before continuous batching: kept to measure the difference.
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
    for label, value in (("max_tokens_cap", max_tokens_cap),
                         ("default_max_tokens", default_max_tokens), ("max_batch", max_batch),
                         ("max_queue", max_queue)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{label} must be a positive whole number, got {value!r}")
    if schedule not in SCHEDULES:
        raise ValueError(f"schedule must be one of {', '.join(SCHEDULES)}, got {schedule!r}")
    other = {name: config.peft_type for name, config in
             (getattr(model, "peft_config", None) or {}).items()
             if getattr(config.peft_type, "value", config.peft_type) != "LORA"}
    if other:
        raise ValueError(f"the server runs LoRA adapters (each request's own, through PEFT's "
                         f"adapter_names); {', '.join(f'{n!r} is {t}' for n, t in other.items())}:"
                         f" merge it into the base (serve.merge) and serve that model instead")
    if not batch_wait >= 0 or not read_timeout > 0:
        raise ValueError(f"batch_wait must be 0 or more and read_timeout above 0 (seconds), "
                         f"got {batch_wait!r} and {read_timeout!r}")
    app = _App(model.eval(), copy.deepcopy(tokenizer), served, base_name, api_key,
               max_tokens_cap, default_max_tokens, max_body_bytes, max_batch, max_queue,
               batch_wait, schedule)
    try:
        httpd = _HTTPServer((host, port), app, read_timeout)
    except BaseException:
        app.batcher.stop()
        raise
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
                    api_key: str | None = None, timeout: float = 120, **sampling) -> dict:
    """One chat completion from an OpenAI-compatible server (this one or another): greedy
    unless `sampling` says otherwise (temperature=..., top_p=..., seed=...)."""
    return request(url, "/v1/chat/completions",
                   {"model": model, "messages": messages, "max_tokens": max_tokens,
                    "temperature": 0, **sampling}, api_key=api_key, timeout=timeout)


@dataclass
class Burst:
    """What a burst of concurrent requests got: the answers in request order (None where
    a request failed), each request's latency, and the whole burst's wall time."""

    answers: list[str | None]
    latencies: list[float]
    seconds: float
    errors: list[str]

    @property
    def requests_per_second(self) -> float:
        return len(self.answers) / self.seconds if self.seconds else 0.0

    def percentile(self, q: float) -> float:
        """The q-th percentile (0-100) of the requests' latencies."""
        return _percentile(self.latencies, q)

    def __str__(self) -> str:
        return (f"{len(self.answers)} requests in {self.seconds:.1f} s: "
                f"{self.requests_per_second:.2f} requests/s, p50 {self.percentile(50):.1f} s, "
                f"p95 {self.percentile(95):.1f} s, {len(self.errors)} errors")


def burst(url: str, jobs: list[tuple[str, list[dict]]], threads: int = 8, max_tokens: int = 48,
          api_key: str | None = None) -> Burst:
    """Send every (model name, messages) job at once from `threads` threads to an
    OpenAI-compatible server (this one, vLLM, llama.cpp's) and time each greedy answer."""
    from concurrent.futures import ThreadPoolExecutor

    def ask(job):
        started = time.perf_counter()
        try:
            reply = chat_completion(url, job[0], job[1], max_tokens=max_tokens, api_key=api_key,
                                    timeout=600)
            return reply["choices"][0]["message"]["content"].strip(), None, \
                time.perf_counter() - started
        except (ServeError, OSError) as error:
            return None, f"{type(error).__name__}: {error}", time.perf_counter() - started

    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=threads) as pool:
        replies = list(pool.map(ask, jobs))
    return Burst([a for a, _, _ in replies], [s for _, _, s in replies],
                 time.perf_counter() - started, [e for _, e, _ in replies if e])
