"""course_utils.server (as the chapter calls it, through serve): the local OpenAI-compatible
server against real HTTP requests: replies, every error, bursts batched (requests joining a
running batch, adapters mixed in it) without an answer reaching the wrong request, sampling,
streaming, a full queue, slow clients; and serve's model helpers."""

import copy
import http.client
import json
import socket
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from course_utils import evals, serve
from course_utils.train import _library_deprecations_hidden

# ---------------------------------------------------------------------------- server

BASE = "tiny-llama"
MAX_TOKENS = 6
PROMPTS = [[{"role": "user", "content": f"Ticket {i}: my invoice is wrong"}] for i in range(4)]


def random_adapter(base, folder: Path, seed: int) -> Path:
    """A LoRA adapter with random (non-zero) weights, saved the way PEFT saves them."""
    import torch
    from peft import LoraConfig, get_peft_model
    torch.manual_seed(seed)
    config = LoraConfig(r=4, lora_alpha=16, target_modules=["q_proj", "v_proj"],
                        init_lora_weights=False, task_type="CAUSAL_LM")
    with _library_deprecations_hidden():
        get_peft_model(copy.deepcopy(base), config).save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def adapters(tiny_model, tmp_path_factory):
    """Two saved adapters on the tiny model, and each model's greedy answer to each prompt."""
    from peft import PeftModel
    base, tokenizer = tiny_model
    root = tmp_path_factory.mktemp("adapters")
    folders = {name: random_adapter(base, root / name, seed)
               for name, seed in (("tickets", 1), ("voice", 2))}
    with _library_deprecations_hidden():
        references = {BASE: base, **{name: PeftModel.from_pretrained(copy.deepcopy(base), str(f))
                                     for name, f in folders.items()}}
    expected = {(name, i): evals.generate_from_messages(model, tokenizer, [prompt],
                                                        max_new_tokens=MAX_TOKENS)[0]
                for name, model in references.items() for i, prompt in enumerate(PROMPTS)}
    return folders, expected


@pytest.fixture(scope="module")
def server(tiny_model, adapters):
    """One PeftModel carrying both adapters, served on a free local port."""
    base, tokenizer = tiny_model
    model = serve.load_adapters(copy.deepcopy(base), adapters[0])
    with serve.start(model, tokenizer, base_name=BASE, max_tokens_cap=32,
                     max_body_bytes=20_000) as running:
        yield running


def call(url: str, path: str, body=None, method: str | None = None, raw: bytes | None = None,
         headers: dict | None = None) -> tuple[int, dict]:
    """(status, decoded JSON body) of one real HTTP request; error statuses included."""
    data = raw if raw is not None else None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url + path, data=data, method=method,
                                     headers={"Content-Type": "application/json",
                                              **(headers or {})})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def chat(model: str, prompt: int = 0, **extra) -> dict:
    return {"model": model, "messages": PROMPTS[prompt], "max_tokens": MAX_TOKENS,
            "temperature": 0, **extra}


def test_a_chat_completion_has_openais_shape(server, adapters):
    status, reply = call(server.url, "/v1/chat/completions", chat(BASE))
    assert status == 200, reply
    assert reply["object"] == "chat.completion" and reply["id"].startswith("chatcmpl-")
    assert reply["model"] == BASE and isinstance(reply["created"], int)
    choice = reply["choices"][0]
    assert choice["message"] == {"role": "assistant", "content": adapters[1][BASE, 0]}
    assert choice["finish_reason"] in ("stop", "length")
    usage = reply["usage"]
    assert 0 < usage["completion_tokens"] <= MAX_TOKENS and usage["prompt_tokens"] > 5
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]
    # the client helper gets the same answer, and raises the server's error message
    again = serve.chat_completion(server.url, BASE, PROMPTS[0], max_tokens=MAX_TOKENS)
    assert again["choices"][0]["message"]["content"] == adapters[1][BASE, 0]
    with pytest.raises(serve.ServeError, match="HTTP 404: model 'nope' does not exist"):
        serve.chat_completion(server.url, "nope", PROMPTS[0])


def test_models_and_health(server):
    status, models = call(server.url, "/v1/models")
    assert status == 200 and models["object"] == "list"
    assert [m["id"] for m in models["data"]] == [BASE, "tickets", "voice"] == server.models
    assert [m["parent"] for m in models["data"]] == [None, BASE, BASE]
    status, health = call(server.url, "/health")
    assert status == 200 and health["status"] == "ok" and health["adapters"] == ["tickets", "voice"]


def test_each_request_gets_the_adapter_it_names(server, adapters):
    expected = adapters[1]
    before = len(server.stats.steps)
    order = ["tickets", "voice", BASE, "tickets", BASE, "voice"]
    answers = [call(server.url, "/v1/chat/completions", chat(name, 1))[1] for name in order]
    assert [a["choices"][0]["message"]["content"] for a in answers] == [
        expected[name, 1] for name in order]
    assert len({expected[name, 1] for name in order}) == 3  # the three models answer differently
    steps = server.stats.steps[before:]  # one at a time: a prefill each, one row, one adapter
    assert [s["kind"] for s in steps].count("prefill") == len(order)
    assert all(s["rows"] == 1 and s["adapters"] == 1 and s["seconds"] > 0 for s in steps)


def test_a_concurrent_burst_mixes_adapters_in_a_batch_and_answers_each_its_own(server, adapters):
    expected, names = adapters[1], [BASE, "tickets", "voice"]
    jobs = [(names[i % 3], i % len(PROMPTS)) for i in range(16)]
    before = server.stats
    with ThreadPoolExecutor(max_workers=16) as pool:
        replies = list(pool.map(lambda job: call(server.url, "/v1/chat/completions",
                                                 chat(job[0], job[1])), jobs))
    assert [status for status, _ in replies] == [200] * 16
    assert [r["choices"][0]["message"]["content"] for _, r in replies] == [
        expected[job] for job in jobs]
    after = server.stats
    assert after.requests - before.requests == 16 and after.errors == before.errors
    burst = after.latencies[-16:]
    assert all(r["seconds"] >= r["generate_seconds"] > 0 and r["queue_seconds"] >= 0
               for r in burst)
    steps = after.steps[len(before.steps):]
    assert max(s["adapters"] for s in steps) > 1  # rows of different adapters in one pass
    assert sum(s["rows"] for s in steps if s["kind"] == "prefill") == 16
    assert "requests" in str(after) and "latency median" in str(after)


@pytest.mark.parametrize("body, status, message, param", [
    (b"{not json", 400, "not valid JSON", None),
    (b"[1, 2]", 400, "must be a JSON object", None),
    ({"model": BASE}, 400, "messages is required", "messages"),
    ({"model": BASE, "messages": []}, 400, "non-empty list", "messages"),
    ({"model": BASE, "messages": "hi"}, 400, "non-empty list", "messages"),
    ({"model": BASE, "messages": ["hi"]}, 400, "must be an object", "messages[0]"),
    ({"model": BASE, "messages": [{"content": "hi"}]}, 400, "has no role", "messages[0].role"),
    ({"model": BASE, "messages": [{"role": "user"}]}, 400, "no content", "messages[0].content"),
    ({"model": BASE, "messages": [{"role": "user", "content": 3}]}, 400, "content of type int",
     "messages[0].content"),
    ({"model": BASE, "messages": [{"role": "wizard", "content": "hi"}]}, 400, "'wizard'",
     "messages[0].role"),
    ({"messages": PROMPTS[0]}, 400, "model is required", "model"),
    (chat("gpt-4"), 404, "model 'gpt-4' does not exist", "model"),
    (chat(BASE, max_tokens=0), 400, "positive whole number", "max_tokens"),
    (chat(BASE, max_tokens="ten"), 400, "positive whole number", "max_tokens"),
    (chat(BASE, max_tokens=2.5), 400, "positive whole number", "max_tokens"),
    (chat(BASE, max_tokens=True), 400, "positive whole number", "max_tokens"),
    (chat(BASE, max_tokens=1000), 400, "above this server's cap of 32", "max_tokens"),
    (chat(BASE, max_completion_tokens=-1), 400, "positive", "max_completion_tokens"),
    (chat(BASE, temperature=2.5), 400, "from 0 to 2", "temperature"),
    (chat(BASE, temperature="hot"), 400, "from 0 to 2", "temperature"),
    (chat(BASE, top_p=0), 400, "above 0 to 1", "top_p"),
    (chat(BASE, seed=-1), 400, "whole number", "seed"),
    (chat(BASE, n=2), 400, "n must be 1", "n"),
    (chat(BASE, stream="yes"), 400, "true or false", "stream"),
    (b"[" * 9000 + b"]" * 9000, 400, "nests too deeply", None),
    (b"{\"max_tokens\": " + b"9" * 5000 + b"}", 400, "cannot read", None),
    (b'{"pad": "' + b"x" * 30_000 + b'"}', 413, "over this server's limit of 20,000", None),
])
def test_bad_requests_get_clear_errors_in_openais_shape(server, body, status, message, param):
    raw = body if isinstance(body, bytes) else None
    got, reply = call(server.url, "/v1/chat/completions", body=None if raw else body, raw=raw)
    assert got == status, reply
    error = reply["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert message in error["message"] and error["param"] == param
    assert error["type"] == "invalid_request_error"
    if status == 404:
        assert error["code"] == "model_not_found"


@pytest.mark.parametrize("method, path, status", [
    ("GET", "/v1/completions", 404), ("GET", "/", 404), ("POST", "/v2/chat", 404),
    ("GET", "/v1/chat/completions", 405), ("POST", "/v1/models", 405),
    ("DELETE", "/health", 405), ("PUT", "/v1/chat/completions", 405),
    ("OPTIONS", "/v1/models", 405), ("BREW", "/v1/models", 501),
])
def test_unknown_paths_and_wrong_methods(server, method, path, status):
    got, reply = call(server.url, path, body={} if method != "GET" else None, method=method)
    assert got == status and set(reply["error"]) == {"message", "type", "param", "code"}
    assert (path in reply["error"]["message"]) if status == 404 else (
        method in reply["error"]["message"])


def raw_exchange(server, data: bytes) -> bytes:
    with socket.create_connection((server.host, server.port), timeout=10) as connection:
        connection.sendall(data)
        return connection.makefile("rb").read()


def test_malformed_http_gets_json_errors_too(server):
    # a one-word request line is HTTP/0.9 to the standard library: a body and no headers
    reply = raw_exchange(server, b"NONSENSE\r\n\r\n")
    assert "Bad request syntax" in json.loads(reply)["error"]["message"]
    headers = b"".join(b"X-%d: 1\r\n" % i for i in range(120))
    head, _, body = raw_exchange(server, b"GET /health HTTP/1.1\r\n" + headers + b"\r\n"
                                 ).partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 431") and b"application/json" in head
    assert json.loads(body)["error"]["message"] == "Too many headers"


def test_stop_hangs_up_idle_keep_alive_connections_promptly(tiny_model):
    model, tokenizer = tiny_model
    server = serve.start(model, tokenizer, base_name=BASE)
    client = http.client.HTTPConnection(server.host, server.port, timeout=10)
    client.request("GET", "/health")
    assert client.getresponse().read() and client.sock is not None  # kept alive
    start = time.perf_counter()
    server.stop()
    assert time.perf_counter() - start < 5
    with pytest.raises((OSError, http.client.HTTPException)):
        client.request("GET", "/health")
        client.getresponse()


def test_a_failure_inside_the_server_is_a_500_with_its_message(server):
    model = server._app.model

    def broken(*args, **kwargs):
        raise RuntimeError("out of memory (simulated)")
    model.forward = broken  # an instance attribute hides the method until deleted
    try:
        status, reply = call(server.url, "/v1/chat/completions", chat(BASE))
    finally:
        del model.forward
    assert status == 500 and reply["error"]["type"] == "server_error"
    assert reply["error"]["message"] == ("the server failed while answering: RuntimeError: "
                                         "out of memory (simulated)")
    assert "Traceback" not in json.dumps(reply)
    assert call(server.url, "/v1/chat/completions", chat(BASE))[0] == 200  # still serving
    assert server.stats.last_error.startswith("500:")


def test_an_api_key_is_required_when_given(tiny_model):
    model, tokenizer = tiny_model
    with serve.start(model, tokenizer, api_key="s3cret", base_name=BASE) as server:
        assert server.models == [BASE]  # a plain model serves no adapters
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "s3cret"}):
            status, reply = call(server.url, "/v1/models", headers=headers)
            assert status == 401 and reply["error"]["code"] == "invalid_api_key"
            assert reply["error"]["type"] == "invalid_request_error"
            assert "Authorization: Bearer" in reply["error"]["message"]
        good = {"Authorization": "Bearer s3cret"}
        assert call(server.url, "/v1/models", headers=good)[0] == 200
        assert call(server.url, "/v1/chat/completions", chat(BASE), headers=good)[0] == 200
        assert call(server.url, "/health")[0] == 200  # health checks need no key
        url = server.url
    with pytest.raises(urllib.error.URLError):  # stopped: the port no longer answers
        urllib.request.urlopen(url + "/health", timeout=5)


def test_start_refuses_what_it_cannot_serve_safely(tiny_model, server):
    model, tokenizer = tiny_model
    with pytest.raises(ValueError, match="allow_remote=True"):
        serve.start(model, tokenizer, host="0.0.0.0")
    with pytest.raises(ValueError, match="api_key is empty"):
        serve.start(model, tokenizer, api_key="")
    with pytest.raises(ValueError, match="load_adapters"):
        serve.start(model, tokenizer, adapters=["tickets"])
    with pytest.raises(ValueError, match=r"'legal'.*not loaded.*tickets, voice"):
        serve.start(server._app.model, tokenizer, adapters={"legal": "legal"})


def test_merge_folds_an_adapter_in_and_time_generation_times_it(server, tiny_model, adapters):
    import torch
    from peft import PeftModel
    base, tokenizer = tiny_model
    peft_model = server._app.model
    merged = serve.merge(peft_model, "voice")
    assert not hasattr(merged, "peft_config")
    assert list(peft_model.peft_config) == ["tickets", "voice"]  # the served model is untouched
    with _library_deprecations_hidden():
        reference = PeftModel.from_pretrained(copy.deepcopy(base), str(adapters[0]["voice"]))
    ids = tokenizer("hello there", return_tensors="pt")["input_ids"]
    with torch.no_grad():
        assert torch.allclose(merged(ids).logits, reference(ids).logits, atol=1e-4)
    timing = serve.time_generation(merged, tokenizer, PROMPTS[0], n=2, max_new_tokens=4)
    assert len(timing.seconds) == 2 and timing.median > 0 and "median" in str(timing)


def test_route_points_a_name_at_another_loaded_adapter_without_a_restart(tiny_model, adapters):
    base, tokenizer = tiny_model
    folders, expected = adapters
    model = serve.load_adapters(copy.deepcopy(base), folders)
    with serve.start(model, tokenizer, adapters={"live": "tickets"}, base_name=BASE,
                     max_tokens_cap=32) as running:
        def ask() -> str:
            return call(running.url, "/v1/chat/completions", chat("live", 1))[1][
                "choices"][0]["message"]["content"]

        assert ask() == expected["tickets", 1]
        with ThreadPoolExecutor(max_workers=4) as pool:  # requests during the swap all succeed
            during = [pool.submit(ask) for _ in range(6)]
            running.route("live", "voice")
            assert all(f.result() in (expected["tickets", 1], expected["voice", 1])
                       for f in during)
        assert ask() == expected["voice", 1]
        with pytest.raises(ValueError, match="not loaded"):
            running.route("live", "no-such-adapter")
        with pytest.raises(ValueError, match="base model"):
            running.route(BASE, "voice")
        assert ask() == expected["voice", 1]  # a refused route changes nothing


# ---------------------------------------------------------------------------- batching

def test_a_burst_for_one_adapter_is_decoded_in_shared_batches(server, adapters):
    expected = adapters[1]
    before = len(server.stats.steps)
    jobs = [("tickets", i % len(PROMPTS)) for i in range(8)]
    with ThreadPoolExecutor(max_workers=8) as pool:
        replies = list(pool.map(lambda job: call(server.url, "/v1/chat/completions",
                                                 chat(job[0], job[1])), jobs))
    assert [r["choices"][0]["message"]["content"] for _, r in replies] == [
        expected[job] for job in jobs]  # batched rows: each answer the one it gets alone
    steps = server.stats.steps[before:]
    assert sum(s["rows"] for s in steps if s["kind"] == "prefill") == 8
    assert max(s["rows"] for s in steps) > 1 and all(s["adapters"] == 1 for s in steps)
    assert all(s["rows"] <= 8 for s in steps)  # max_batch
    latencies = server.stats.latencies[-8:]
    assert max(r["batch_size"] for r in latencies) > 1
    assert "decoding steps of" in str(server.stats)


@pytest.mark.parametrize("schedule", ["continuous", "static"])
def test_a_request_joins_the_running_batch_only_when_continuous(tiny_model, adapters, schedule):
    """A long answer is decoding when a short request arrives: continuously batched, the short
    one joins at the next step and is answered first, each answer still its own; statically
    batched, it waits for the long one to end."""
    base, tokenizer = tiny_model
    model = serve.load_adapters(copy.deepcopy(base), adapters[0])
    model.register_forward_pre_hook(lambda *_: time.sleep(0.02))  # a slower model: 20 ms a step
    with serve.start(model, tokenizer, base_name=BASE, max_tokens_cap=32,
                     schedule=schedule) as running:
        app = running._app
        with ThreadPoolExecutor(max_workers=2) as pool:
            long = pool.submit(call, running.url, "/v1/chat/completions",
                               chat("voice", 0, max_tokens=30))
            deadline = time.monotonic() + 30
            while not app.batch.rows:  # the long answer is decoding
                assert time.monotonic() < deadline, "the server never started the first request"
                time.sleep(0.005)
            short = pool.submit(call, running.url, "/v1/chat/completions", chat("tickets", 1))
            (_, short_reply), (_, long_reply) = short.result(), long.result()
        stats = running.stats
    assert short_reply["choices"][0]["message"]["content"] == adapters[1]["tickets", 1]
    assert long_reply["usage"]["completion_tokens"] == 30  # this tiny model never stops early
    shared = max(s["rows"] for s in stats.steps if s["kind"] == "decode")
    if schedule == "continuous":
        assert shared == 2 and max(s["adapters"] for s in stats.steps) == 2
        assert stats.latencies[0]["model"] == "tickets"  # answered first
    else:
        assert shared == 1 and [r["model"] for r in stats.latencies] == ["voice", "tickets"]


def test_start_checks_the_schedule(tiny_model):
    model, tokenizer = tiny_model
    with pytest.raises(ValueError, match="schedule must be one of continuous, static"):
        serve.start(model, tokenizer, schedule="greedy")


def test_sampling_follows_temperature_top_p_and_seed(server, adapters):
    def answer(**sampling) -> str:
        status, reply = call(server.url, "/v1/chat/completions", chat(BASE, 2, **sampling))
        assert status == 200, reply
        return reply["choices"][0]["message"]["content"]

    hot = dict(temperature=2.0, max_tokens=MAX_TOKENS)
    assert answer(seed=7, **hot) == answer(seed=7, **hot)  # a seed repeats its answer
    assert len({answer(seed=seed, **hot) for seed in range(5)}) > 1  # other seeds differ
    # top_p keeps the smallest set of tokens holding that much probability: the top one alone
    assert answer(temperature=1.0, top_p=1e-9) == adapters[1][BASE, 2] == answer(temperature=0)


def stream(server, body: dict) -> tuple[str, list]:
    """(the response head, the decoded events) of one streaming request."""
    data = json.dumps({**body, "stream": True}).encode()
    connection = http.client.HTTPConnection(server.host, server.port, timeout=30)
    connection.request("POST", "/v1/chat/completions", data,
                       {"Content-Type": "application/json"})
    response = connection.getresponse()
    head = f"{response.status} {response.getheader('Content-Type')}"
    events = [line.removeprefix(b"data: ").decode() for line in response.read().split(b"\n\n")
              if line.startswith(b"data: ")]
    connection.close()
    return head, [e if e == "[DONE]" else json.loads(e) for e in events]


def test_stream_true_sends_openais_chunks_as_server_sent_events(server, adapters):
    head, events = stream(server, {**chat("voice", 3), "stream_options": {"include_usage": True}})
    assert head == "200 text/event-stream" and events[-1] == "[DONE]"
    chunks = events[:-1]
    assert all(c["object"] == "chat.completion.chunk" and c["model"] == "voice" for c in chunks)
    assert len({c["id"] for c in chunks}) == 1
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    pieces = [c["choices"][0]["delta"].get("content", "") for c in chunks if c["choices"]]
    assert "".join(pieces) == adapters[1]["voice", 3]  # the pieces add up to the whole answer
    assert len([p for p in pieces if p]) > 1  # and came piece by piece
    finish = [c["choices"][0]["finish_reason"] for c in chunks if c["choices"]]
    assert finish[-1] in ("stop", "length") and set(finish[:-1]) == {None}
    usage = chunks[-1]["usage"]  # asked for: a last chunk with no choices and the usage
    assert chunks[-1]["choices"] == [] and 0 < usage["completion_tokens"] <= MAX_TOKENS


def test_openais_client_streams_from_it(server, adapters):
    from openai import OpenAI
    client = OpenAI(base_url=f"{server.url}/v1", api_key="none", max_retries=0)
    pieces = [chunk.choices[0].delta.content or "" for chunk in client.chat.completions.create(
        model="tickets", messages=PROMPTS[1], max_tokens=MAX_TOKENS, temperature=0,
        stream=True) if chunk.choices]
    assert "".join(pieces) == adapters[1]["tickets", 1]


def test_a_client_that_hangs_up_mid_stream_leaves_the_server_serving(server):
    connection = socket.create_connection((server.host, server.port), timeout=10)
    data = json.dumps({**chat(BASE, 0, max_tokens=32), "stream": True}).encode()
    connection.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nContent-Type: application/json"
                       b"\r\nContent-Length: %d\r\n\r\n" % len(data) + data)
    assert connection.recv(64).startswith(b"HTTP/1.1 200")
    connection.close()
    assert call(server.url, "/v1/chat/completions", chat(BASE))[0] == 200


def test_a_full_queue_is_answered_503_with_retry_after_at_once(tiny_model):
    model, tokenizer = tiny_model
    with serve.start(model, tokenizer, base_name=BASE, max_batch=1, max_queue=2,
                     batch_wait=0) as running:
        app = running._app
        submitted = []  # every job the server queued, counted (the real submit does the rest)
        real_submit = app.batcher.submit
        app.batcher.submit = lambda job: (real_submit(job), submitted.append(job))

        def until(condition, what: str) -> None:
            deadline = time.monotonic() + 30
            while not condition():
                assert time.monotonic() < deadline, f"the server never {what}"
                time.sleep(0.01)

        with ThreadPoolExecutor(max_workers=3) as pool:
            with app.generate_lock:  # the model is busy: the worker cannot start a batch
                # one request taken by the worker (queued, then out of the queue), before two
                # more fill the queue: sent at once, all three could reach the queue (limit 2)
                # before the worker takes one, and the third would be refused
                waiting = [pool.submit(call, running.url, "/v1/chat/completions", chat(BASE, 0))]
                until(lambda: submitted and not app.batcher.waiting, "took the first request")
                waiting += [pool.submit(call, running.url, "/v1/chat/completions", chat(BASE, i))
                            for i in (1, 2)]
                until(lambda: len(app.batcher.waiting) == 2, "queued two requests")
                started = time.perf_counter()
                body = json.dumps(chat(BASE)).encode()
                refused = raw_exchange(running, b"POST /v1/chat/completions HTTP/1.1\r\n"
                                       b"Content-Length: %d\r\nConnection: close\r\n\r\n"
                                       % len(body) + body)
                refused_in = time.perf_counter() - started
                health = raw_exchange(running, b"GET /health HTTP/1.1\r\nConnection: close\r\n\r\n")
            assert [f.result()[0] for f in waiting] == [200, 200, 200]  # then all answered
    head, _, body = refused.partition(b"\r\n\r\n")
    # no answer has been timed yet, so an answer counts a second: the 2 queued and the one
    # decoding take 2 batches of 1 (max_batch 1) + 1 = 3 s to clear
    assert head.startswith(b"HTTP/1.1 503") and b"\r\nRetry-After: 3\r\n" in head
    error = json.loads(body)["error"]
    assert error["code"] == "server_busy" and "2 requests are already queued" in error["message"]
    assert refused_in < 5  # at once, not after the queue drains
    assert b'"queued": 2' in health  # health shows the queue
    assert running.stats.by_status == {200: 4, 503: 1}


def test_slow_clients_are_hung_up_on_after_read_timeout(tiny_model):
    model, tokenizer = tiny_model
    with serve.start(model, tokenizer, base_name=BASE, read_timeout=1) as running:
        # idle on a kept-alive connection
        idle = http.client.HTTPConnection(running.host, running.port, timeout=10)
        idle.request("GET", "/health")
        idle.getresponse().read()
        started = time.perf_counter()
        assert idle.sock.recv(1) == b""  # the server hung up
        assert 0.8 < time.perf_counter() - started < 4
        # trickling a body: a 408 that says so
        with socket.create_connection((running.host, running.port), timeout=10) as slow:
            slow.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nContent-Length: 100\r\n\r\n{")
            started = time.perf_counter()
            for _ in range(20):
                time.sleep(0.2)
                try:
                    slow.sendall(b" ")
                except OSError:
                    break
            reply = slow.makefile("rb").read()
        assert reply.startswith(b"HTTP/1.1 408") and b"request_timeout" in reply
        assert time.perf_counter() - started < 4.5
        # trickling the headers: a 408 too, never an answer to half a request
        with socket.create_connection((running.host, running.port), timeout=10) as slow:
            slow.sendall(b"GET /health HTTP/1.1\r\n")
            for byte in b"X-Slow: 1\r\nX-Slower: 2":
                try:
                    slow.sendall(bytes([byte]))
                except OSError:
                    break
                time.sleep(0.1)
            reply = slow.makefile("rb").read()
        assert reply.startswith(b"HTTP/1.1 408") and b"headers took over 1 s" in reply
        assert call(running.url, "/health")[0] == 200  # everyone else is served


class _NoChanges:
    """A tokenizer that raises if anyone sets an attribute on it (padding_side, say)."""

    def __init__(self, tokenizer):
        object.__setattr__(self, "_tokenizer", tokenizer)

    def __getattr__(self, name):
        return getattr(self._tokenizer, name)

    def __call__(self, *args, **kwargs):
        return self._tokenizer(*args, **kwargs)

    def __setattr__(self, name, value):
        raise AssertionError(f"the tokenizer's {name} was changed")


def test_a_notebook_using_the_tokenizer_cannot_race_the_server(tiny_model, server, adapters):
    base, tokenizer = tiny_model
    # generation no longer flips padding_side on the tokenizer it is given...
    assert evals.generate_from_messages(base, _NoChanges(tokenizer), PROMPTS[:2],
                                        max_new_tokens=MAX_TOKENS) == [
        adapters[1][BASE, 0], adapters[1][BASE, 1]]
    # ...and the server has its own copy: batch-encoding with right padding meanwhile, in
    # another thread, changes nothing it answers
    assert server._app.tokenizer is not tokenizer
    stop, failures = False, []

    def hammer():
        while not stop:
            try:
                tokenizer(["a", "a longer text"], padding=True, padding_side="right")
            except Exception as error:  # noqa: BLE001 - the test reports any failure
                failures.append(error)

    with ThreadPoolExecutor(max_workers=9) as pool:
        noise = pool.submit(hammer)
        jobs = [(BASE, i % len(PROMPTS)) for i in range(8)]
        replies = list(pool.map(lambda job: call(server.url, "/v1/chat/completions",
                                                 chat(*job)), jobs))
        stop = True
        noise.result()
    assert [r["choices"][0]["message"]["content"] for _, r in replies] == [
        adapters[1][job] for job in jobs]
    assert failures == []


def test_burst_times_concurrent_requests_and_counts_failures(server, adapters):
    jobs = [("tickets", PROMPTS[0]), (BASE, PROMPTS[1]), ("nope", PROMPTS[2])]
    result = serve.burst(server.url, jobs, threads=3, max_tokens=MAX_TOKENS)
    assert result.answers[:2] == [adapters[1]["tickets", 0], adapters[1][BASE, 1]]
    assert result.answers[2] is None and len(result.errors) == 1 and "404" in result.errors[0]
    assert len(result.latencies) == 3 and result.seconds >= max(result.latencies) > 0
    assert result.requests_per_second == pytest.approx(3 / result.seconds)
    assert "3 requests in" in str(result) and "1 errors" in str(result)
