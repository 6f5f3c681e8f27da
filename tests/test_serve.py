"""course_utils.serve: the adapter registry (versions, promote, rollback, crash safety) and the
local OpenAI-compatible server (replies, every error, a concurrent burst, adapters per request)."""

import copy
import http.client
import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from course_utils import evals, serve
from course_utils.train import _library_deprecations_hidden

# ---------------------------------------------------------------------------- registry


def fake_adapter(folder: Path, exact: float | None = 0.5, sha: str = "abc") -> Path:
    """A folder shaped like train.save_adapter's output, without a trained model."""
    folder.mkdir(parents=True)
    heldout = {} if exact is None else {"exact match": {"value": exact, "hits": int(exact * 10),
                                                        "n": 10, "low": 0.0, "high": 1.0}}
    (folder / "course_adapter.json").write_text(json.dumps(
        {"base_model": "HuggingFaceTB/SmolLM2-135M-Instruct", "kind": "lora",
         "data_sha256": sha, "heldout": heldout, "saved": "2025-01-01T00:00:00+00:00"}))
    (folder / "adapter_config.json").write_text("{}")
    return folder


def registry_with(tmp_path: Path, scores=(0.5, 0.6, 0.7), name: str = "tickets"):
    registry = serve.Registry(tmp_path / "registry")
    for i, score in enumerate(scores):
        registry.register(fake_adapter(tmp_path / f"run{i}", score, sha=f"sha{i}"), name)
    return registry


def test_register_copies_saved_adapters_in_as_numbered_versions(tmp_path):
    registry = registry_with(tmp_path, scores=(0.5, 0.6))
    assert registry.names() == ["tickets"]
    assert sorted(p.name for p in (tmp_path / "registry" / "tickets").iterdir()) == [
        "v0001", "v0002"]
    rows = registry.versions("tickets")
    assert [r["version"] for r in rows] == [1, 2]
    assert rows[1]["data_sha256"] == "sha1" and rows[1]["heldout"]["exact match"]["value"] == 0.6
    assert rows[0]["base_model"].endswith("SmolLM2-135M-Instruct") and rows[0]["saved"]
    assert not any(r["is_live"] for r in rows) and registry.live("tickets") is None
    assert (tmp_path / "run0" / "course_adapter.json").exists()  # copied, not moved
    assert registry.versions("unknown") == []
    with pytest.raises(ValueError, match="promote"):
        registry.path("tickets")  # nothing live yet: the error says how to make one live


def test_promote_and_rollback_round_trip(tmp_path):
    registry = registry_with(tmp_path)
    assert registry.promote("tickets", 1) == 1
    assert registry.promote("tickets", "v0003") == 3
    assert registry.promote("tickets", 2) == 2
    assert registry.promote("tickets", 2) == 2  # already live: no change to the history
    assert registry.history("tickets") == [1, 3]
    assert registry.path("tickets") == tmp_path / "registry" / "tickets" / "v0002"
    assert [r["is_live"] for r in registry.versions("tickets")] == [False, True, False]
    assert registry.rollback("tickets") == 3
    assert serve.Registry(tmp_path / "registry").live("tickets") == 3  # read back from disk
    assert registry.rollback("tickets") == 1
    with pytest.raises(ValueError, match="no earlier live version"):
        registry.rollback("tickets")
    assert registry.live("tickets") == 1
    with pytest.raises(ValueError, match=r"no version v0009.*registered: v0001, v0002, v0003"):
        registry.promote("tickets", 9)


def test_gate_refuses_a_worse_version_unless_forced(tmp_path):
    registry = registry_with(tmp_path, scores=(0.6, 0.5, 0.6, None))
    registry.promote("tickets", 1, gate="exact match")  # nothing live: nothing to beat
    with pytest.raises(serve.GateError, match=r"v0002 scores exact match 0.500, below .*v0001"):
        registry.promote("tickets", 2, gate="exact match")
    assert registry.live("tickets") == 1
    with pytest.raises(serve.GateError, match="no held-out 'exact match' score"):
        registry.promote("tickets", 4, gate="exact match")
    assert registry.promote("tickets", 3, gate="exact match") == 3  # as good: allowed
    assert registry.promote("tickets", 2, gate="exact match", force=True) == 2
    assert registry.history("tickets") == [1, 3]


def test_gate_refuses_an_adapter_that_does_not_beat_the_prompt(tmp_path):
    registry = registry_with(tmp_path, scores=(0.3, 0.38, 0.6))
    from course_utils import evals
    best_prompt = evals.Metric(23, 60, 0.27, 0.51)  # 0.383
    v4 = registry.register_prompt("tickets", {"exact match": best_prompt},
                                  {"system": "You triage...", "examples": 3},
                                  base_model="HuggingFaceTB/SmolLM2-135M-Instruct",
                                  description="chapter 00's retrieved 3-shot prompt")
    assert v4 == 4 and registry.versions("tickets")[3]["kind"] == "prompt"
    assert not (registry.path("tickets", 4) / "adapter_config.json").exists()
    # nothing live yet, but the adapter still has to beat the prompt
    with pytest.raises(serve.GateError, match=r"v0001 scores exact match 0.300, not above the "
                                              r"prompt v0004 \(0.383\)"):
        registry.promote("tickets", 1, gate="exact match")
    with pytest.raises(serve.GateError, match="not above the prompt"):
        registry.promote("tickets", 2, gate="exact match")  # 0.380 < 0.383
    assert registry.live("tickets") is None
    assert registry.promote("tickets", 3, gate="exact match") == 3  # 0.6 beats it
    assert registry.promote("tickets", 1, gate="exact match", force=True) == 1
    assert registry.promote("tickets", 4, gate="exact match") == 4  # the prompt may serve
    with pytest.raises(ValueError, match="heldout="):
        registry.register_prompt("tickets", {}, {}, base_model="x")
    with pytest.raises(ValueError, match="is a prompt version"):
        serve.load_adapters(None, {"tickets": registry.path("tickets", 4)})


@pytest.mark.parametrize("failing", ["replace", "fsync", "write"])
def test_a_failure_mid_promote_leaves_the_previous_version_live(tmp_path, monkeypatch, failing):
    registry = registry_with(tmp_path)
    registry.promote("tickets", 1)

    def fail(*args, **kwargs):
        raise OSError(f"simulated failure in {failing}")
    with monkeypatch.context() as patch:
        if failing == "write":
            patch.setattr(serve.json, "dumps", fail)
        else:
            patch.setattr(os, failing, fail)
        with pytest.raises(OSError, match="simulated"):
            registry.promote("tickets", 2)
    folder = tmp_path / "registry" / "tickets"
    assert serve.Registry(tmp_path / "registry").live("tickets") == 1
    assert sorted(p.name for p in folder.iterdir() if p.is_file()) == ["LIVE.json"]  # no debris
    assert registry.promote("tickets", 2) == 2 and registry.history("tickets") == [1]


def test_a_process_killed_between_temp_file_and_rename_leaves_the_previous_version_live(tmp_path):
    registry = registry_with(tmp_path)
    registry.promote("tickets", 1)
    crash = ("import os, sys\n"
             "from course_utils import serve\n"
             "os.replace = lambda *args: os._exit(3)  # the process dies right before the rename\n"
             "serve.Registry(sys.argv[1]).promote('tickets', 2)\n")
    done = subprocess.run([sys.executable, "-c", crash, str(tmp_path / "registry")],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 3, done.stderr
    folder = tmp_path / "registry" / "tickets"
    leftovers = list(folder.glob(".LIVE.json.*.tmp"))
    assert len(leftovers) == 1 and json.loads(leftovers[0].read_text())["live"] == 2
    fresh = serve.Registry(tmp_path / "registry")
    assert fresh.live("tickets") == 1 and fresh.path("tickets").name == "v0001"
    assert [r["version"] for r in fresh.versions("tickets")] == [1, 2, 3]
    assert fresh.promote("tickets", 3) == 3 and fresh.rollback("tickets") == 1


def test_registering_a_folder_that_is_not_a_saved_adapter_says_how_to_fix_it(tmp_path):
    registry = serve.Registry(tmp_path / "registry")
    plain = tmp_path / "plain"
    plain.mkdir()
    (plain / "adapter_config.json").write_text("{}")
    with pytest.raises(ValueError, match=r"plain has no course_adapter.json.*save_adapter"):
        registry.register(plain, "tickets")
    with pytest.raises(ValueError, match="is not a folder"):
        registry.register(tmp_path / "missing", "tickets")
    no_weights = fake_adapter(tmp_path / "no-weights")
    (no_weights / "adapter_config.json").unlink()
    with pytest.raises(ValueError, match="no adapter_config.json"):
        registry.register(no_weights, "tickets")
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "course_adapter.json").write_text("{half")
    with pytest.raises(ValueError, match="not valid JSON"):
        registry.register(tmp_path / "broken", "tickets")
    with pytest.raises(ValueError, match="adapter name '../up'"):
        registry.register(fake_adapter(tmp_path / "good"), "../up")
    assert registry.names() == [] and registry.versions("tickets") == []


def test_version_numbers_survive_leftover_staging_folders(tmp_path, monkeypatch):
    registry = registry_with(tmp_path, scores=(0.5,))
    folder = tmp_path / "registry" / "tickets"
    (folder / ".incoming-dead").mkdir()  # a copy that a crashed register left behind
    (folder / ".incoming-dead" / "course_adapter.json").write_text("{")
    (folder / "notes").mkdir()  # and anything else that is not vNNNN
    with monkeypatch.context() as patch:  # a copy failing half-way leaves nothing behind
        patch.setattr(serve.shutil, "copytree", lambda *a, **k: (_ for _ in ()).throw(
            OSError("disk full")))
        with pytest.raises(OSError, match="disk full"):
            registry.register(fake_adapter(tmp_path / "failed"), "tickets")
    assert registry.register(fake_adapter(tmp_path / "next"), "tickets") == 2
    assert [r["version"] for r in registry.versions("tickets")] == [1, 2]
    assert sorted(p.name for p in folder.iterdir() if p.name.startswith(".")) == [
        ".incoming-dead"]


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
    before = len(server.stats.switches)
    order = ["tickets", "voice", BASE, "tickets", BASE, "voice"]
    answers = [call(server.url, "/v1/chat/completions", chat(name, 1))[1] for name in order]
    assert [a["choices"][0]["message"]["content"] for a in answers] == [
        expected[name, 1] for name in order]
    assert len({expected[name, 1] for name in order}) == 3  # the three models answer differently
    switches = server.stats.switches[before:]
    assert [(s["from"], s["to"]) for s in switches][-5:] == list(zip(order, order[1:]))
    assert all(0 <= s["seconds"] < 1 and s["at"] > 0 for s in switches)


def test_a_concurrent_burst_is_answered_without_mixing_adapters(server, adapters):
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
    (chat(BASE, temperature=0.7), 400, "greedily", "temperature"),
    (chat(BASE, stream=True), 400, "stream", "stream"),
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
    model.generate = broken  # an instance attribute hides the method until deleted
    try:
        status, reply = call(server.url, "/v1/chat/completions", chat(BASE))
    finally:
        del model.generate
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
