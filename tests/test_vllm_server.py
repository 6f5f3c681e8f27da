"""course_utils.vllm_server without vLLM: a stand-in process plays the server, so the start,
wait, stop and failure paths run here in seconds (`make test-serve` runs the real vLLM)."""

import os
import stat
import sys
import textwrap
import time
from pathlib import Path

import pytest

from course_utils import serve, vllm_server

FAKE_SERVER = textwrap.dedent('''
    import json, sys
    from http.server import BaseHTTPRequestHandler, HTTPServer
    args = sys.argv[1:]
    port = int(args[args.index("--port") + 1])
    names = [args[args.index("--served-model-name") + 1]]
    if "--lora-modules" in args:
        names += [m.split("=")[0] for m in args[args.index("--lora-modules") + 1:]]
    print("fake vLLM got:", " ".join(args), flush=True)

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            body = json.dumps({"object": "list", "data": [{"id": n} for n in names]}).encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass
    HTTPServer(("127.0.0.1", port), Handler).serve_forever()
''')


def serve_env(tmp_path: Path, monkeypatch, script: str) -> Path:
    """A stand-in .venv-serve whose `python` runs `script` (with vLLM's arguments)."""
    env = tmp_path / "venv-serve"
    (env / "bin").mkdir(parents=True)
    (tmp_path / "fake.py").write_text(script)
    python = env / "bin" / "python"
    python.write_text(f'#!/bin/sh\nexec "{sys.executable}" "{tmp_path / "fake.py"}" "$@"\n')
    python.chmod(python.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setattr(vllm_server, "SERVE_ENV", env)
    return env


def adapter(folder: Path, config: str = '{"r": 16}') -> Path:
    folder.mkdir(parents=True)
    (folder / "adapter_config.json").write_text(config)
    return folder


def test_without_the_environment_it_says_to_build_it(tmp_path, monkeypatch):
    monkeypatch.setattr(vllm_server, "SERVE_ENV", tmp_path / "nowhere")
    with pytest.raises(vllm_server.VLLMUnavailable, match="make serve-env"):
        vllm_server.start_vllm("model-dir")
    assert vllm_server.vllm_version() is None


def test_it_starts_waits_serves_the_adapters_and_stops_the_process(tmp_path, monkeypatch):
    serve_env(tmp_path, monkeypatch, FAKE_SERVER)
    with vllm_server.start_vllm(tmp_path / "smollm2", {"tickets": adapter(tmp_path / "a")},
                                timeout=30) as server:
        assert server.models == ["smollm2", "tickets"] and server.seconds_to_start > 0
        listed = [m["id"] for m in serve.request(server.url, "/v1/models")["data"]]
        assert listed == ["smollm2", "tickets"]
        arguments = server.log.read_text()
        assert "vllm.entrypoints.openai.api_server" in arguments and "--enable-lora" in arguments
        assert f"tickets={tmp_path / 'a'}" in arguments and "--max-lora-rank 16" in arguments
        assert "running" in repr(server)
        process = server.process
    assert process.poll() is not None  # stopped with the block
    with pytest.raises(OSError):
        os.kill(process.pid, 0)


def test_a_server_that_dies_is_reported_with_its_log(tmp_path, monkeypatch):
    serve_env(tmp_path, monkeypatch, 'print("RuntimeError: no CPU kernels for this machine")\n'
                                     'raise SystemExit(3)\n')
    started = time.perf_counter()
    with pytest.raises(vllm_server.VLLMUnavailable,
                       match=r"(?s)exited with status 3.*no CPU kernels for this machine"):
        vllm_server.start_vllm(tmp_path / "smollm2", timeout=30)
    assert time.perf_counter() - started < 15  # at once, not after the timeout


def test_a_server_that_never_answers_times_out_and_is_stopped(tmp_path, monkeypatch):
    serve_env(tmp_path, monkeypatch, "import time\ntime.sleep(60)\n")
    with pytest.raises(vllm_server.VLLMUnavailable, match="did not answer within 2 s"):
        vllm_server.start_vllm(tmp_path / "smollm2", timeout=2)


def test_an_adapter_folder_must_hold_an_adapter(tmp_path, monkeypatch):
    serve_env(tmp_path, monkeypatch, FAKE_SERVER)
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="'tickets'.*no adapter_config.json"):
        vllm_server.start_vllm("m", {"tickets": tmp_path / "empty"})


def test_the_lora_rank_vllm_is_given_holds_every_adapter(tmp_path):
    assert vllm_server.adapter_rank(adapter(tmp_path / "r16")) == 16
    assert vllm_server.adapter_rank(adapter(tmp_path / "peft-default", "{}")) == 8  # PEFT's r
    patterned = adapter(tmp_path / "pattern", '{"r": 8, "rank_pattern": {"q_proj": 24}}')
    assert vllm_server.adapter_rank(patterned) == 24
    assert [vllm_server.vllm_lora_rank(r) for r in (1, 4, 16, 24, 320)] == [1, 8, 16, 32, 320]
    with pytest.raises(ValueError, match="above vLLM's largest.*serve.merge"):
        vllm_server.vllm_lora_rank(1024)
    with pytest.raises(ValueError, match=r"'voice'.*adapter_config.json:2: not valid JSON"):
        vllm_server.adapter_rank(adapter(tmp_path / "broken", '{"r": 16,\n oops}'), "voice")
    with pytest.raises(ValueError, match=r"rank\(s\) \[0\].*positive whole number"):
        vllm_server.adapter_rank(adapter(tmp_path / "zero", '{"r": 0}'))


def test_the_largest_adapter_rank_is_the_servers(tmp_path, monkeypatch):
    serve_env(tmp_path, monkeypatch, FAKE_SERVER)
    adapters = {"small": adapter(tmp_path / "a", '{"r": 4}'), "big": adapter(tmp_path / "b", '{"r": 32}')}
    with vllm_server.start_vllm(tmp_path / "smollm2", adapters, timeout=30) as server:
        arguments = server.log.read_text()
    assert "--max-lora-rank 32" in arguments and "--max-loras 2" in arguments
    assert "--gpu-memory-utilization" not in arguments  # a stand-in is no CUDA build
