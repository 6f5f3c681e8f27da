"""llama.cpp, run from the course: the engine that reads the GGUF files `serve.export_gguf` writes.

Introduced in chapter 07 (serving fine-tuned models).

llama.cpp is C++; its Python binding, `llama-cpp-python`, is compiled from source when pip
installs it (PyPI has no Linux wheel), so it lives in its own small environment (`make
llama-env`: .venv-llama/, about 6 minutes to build on 2 cores) and the course never imports it.
`chat_answers` runs that environment's Python on a GGUF file and a list of chats, and returns
llama.cpp's greedy answers. The chats go through the chat template stored in the file, as
`llama-server --jinja` and Ollama use it, so the check covers the template too.

    python -m course_utils.llama_cpp check     # what `make test-gguf` runs
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LLAMA_ENV = ROOT / ".venv-llama"

# Run with the llama environment's Python: {"path", "chats", "max_tokens", "threads"} on stdin,
# one JSON answer per chat on stdout. temperature 0 is llama.cpp's greedy sampling.
_ANSWER = """
import json, sys, time
from llama_cpp import Llama
job = json.load(sys.stdin)
started = time.perf_counter()
llm = Llama(model_path=job["path"], n_ctx=2048, n_threads=job["threads"], seed=0, verbose=False)
print(json.dumps({"load_seconds": time.perf_counter() - started}), flush=True)
for chat in job["chats"]:
    reply = llm.create_chat_completion(messages=chat, temperature=0.0,
                                       max_tokens=job["max_tokens"])
    print(json.dumps({"answer": reply["choices"][0]["message"]["content"]}), flush=True)
"""


class LlamaCppUnavailable(RuntimeError):
    """llama.cpp's environment is missing, or it could not read the file: the message says why."""


@dataclass
class LlamaCppRun:
    """What llama.cpp answered: one greedy answer per chat, and how long it took."""

    answers: list[str]
    load_seconds: float
    seconds: float  # answering, after loading

    def __str__(self) -> str:
        return (f"llama.cpp: {len(self.answers)} answers in {self.seconds:.1f} s "
                f"(the file loaded in {self.load_seconds:.1f} s)")


def llama_python() -> Path:
    """The llama environment's Python; a LlamaCppUnavailable says how to build it."""
    python = LLAMA_ENV / "bin" / "python"
    if not (python.exists() and (LLAMA_ENV / ".installed").exists()):
        raise LlamaCppUnavailable(f"llama.cpp's environment {LLAMA_ENV} is not built: build it "
                                  f"with `make llama-env` (about 6 minutes, once: pip compiles "
                                  f"llama.cpp, so a C++ compiler and cmake are needed)")
    return python


def llama_cpp_version() -> str | None:
    """The llama-cpp-python release in the llama environment (None if it is not built)."""
    try:
        python = llama_python()
    except LlamaCppUnavailable:
        return None
    found = subprocess.run([str(python), "-c", "import importlib.metadata as m; "
                            "print(m.version('llama-cpp-python'))"],
                           capture_output=True, text=True)
    return f"llama-cpp-python {found.stdout.strip()}" if found.returncode == 0 else None


def chat_answers(gguf_path: str | Path, chats: list[list[dict]], max_tokens: int = 64,
                 threads: int | None = None, timeout: float = 600) -> LlamaCppRun:
    """llama.cpp's greedy answer to each chat (a list of {role, content} messages), from the
    GGUF file alone: its weights, its tokenizer and its chat template."""
    path = Path(gguf_path)
    if not path.is_file():
        raise FileNotFoundError(f"no GGUF file at {path}: write one with serve.export_gguf")
    job = {"path": str(path.resolve()), "chats": chats, "max_tokens": max_tokens,
           "threads": threads or os.cpu_count() or 1}
    started = time.perf_counter()
    with tempfile.TemporaryFile("w+") as errors:
        done = subprocess.run([str(llama_python()), "-c", _ANSWER], input=json.dumps(job),
                              stdout=subprocess.PIPE, stderr=errors, text=True, timeout=timeout)
        errors.seek(0)
        stderr = errors.read()
    lines = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode != 0 or len(lines) != len(chats) + 1:
        tail = "\n".join(stderr.strip().splitlines()[-15:])
        raise LlamaCppUnavailable(f"llama.cpp could not answer from {path.name} (exit "
                                  f"{done.returncode}, {max(len(lines) - 1, 0)} of {len(chats)} "
                                  f"answers); its last words:\n{tail}")
    load_seconds = lines[0]["load_seconds"]
    return LlamaCppRun([line["answer"].strip() for line in lines[1:]], load_seconds,
                       time.perf_counter() - started - load_seconds)


# ---------------------------------------------------------------------------- make test-gguf

def check(n_tickets: int = 8) -> int:
    """`make test-gguf`: export the offline model with a small random LoRA adapter merged in,
    as f16 and as q8_0, and ask llama.cpp the greedy answers to held-out tickets; compare each
    with transformers' answer from the model that was exported. Exit 0 when the f16 file gives
    every answer (the test of the writer: tensor names, the rotary reordering, tokenizer and
    chat template) and llama.cpp answers every chat from q8_0; 1 when not (the differences
    printed); 2 when llama.cpp is not built or cannot read the file. q8_0's agreement is
    printed, not required: on this untrained adapter's free-form answers 8-bit rounding flips
    near ties (4 of 8 answers parted, 5 or more tokens in, when measured); chapter 07 checks it
    on the trained tickets adapter, whose answers are not near ties (20 of 20 there)."""
    from . import data, evals, load_model, models, serve
    base, tokenizer = load_model(show=False)
    adapted = models.random_adapter(base, ["q_proj", "v_proj", "down_proj"])
    chats = [evals.prompt_messages(row) for row in data.load_split("tickets", "test")[:n_tickets]]
    max_tokens = 32
    expected = evals.generate_from_messages(adapted, tokenizer, chats, max_new_tokens=max_tokens)
    print(f"{llama_cpp_version() or 'llama.cpp not built'}; {n_tickets} held-out tickets, "
          f"{max_tokens} tokens each, against transformers on the exported model")
    work = Path(tempfile.mkdtemp(prefix="course-test-gguf-"))
    allowed = {"f16": 0, "q8_0": None}  # differences each format may have (None: reported)
    passed = True
    try:
        for quant, allow in allowed.items():
            written = serve.export_gguf(adapted, tokenizer, work / f"check-{quant}.gguf", quant=quant)
            try:
                run = chat_answers(written.path, chats, max_tokens=max_tokens)
            except LlamaCppUnavailable as error:
                print(f"test-gguf: {error}", file=sys.stderr)
                return 2
            same = [a == b for a, b in zip(run.answers, expected)]
            print(f"{written}: {run}; the same answer as transformers on {sum(same)} of {len(same)}")
            for ok, got, want in zip(same, run.answers, expected):
                if not ok:
                    print(f"   llama.cpp: {got!r}\n   HF:        {want!r}")
            passed &= len(run.answers) == len(chats) and all(run.answers) and (
                allow is None or len(same) - sum(same) <= allow)
            written.path.unlink()
    finally:
        for left in work.glob("*"):
            left.unlink()
        work.rmdir()
    if passed:
        print("test-gguf: llama.cpp reads both files, and from f16 answers exactly as transformers does")
        return 0
    print(f"test-gguf: more differences than allowed ({allowed}): see above", file=sys.stderr)
    return 1


if __name__ == "__main__":
    if sys.argv[1:] != ["check"]:
        raise SystemExit("usage: python -m course_utils.llama_cpp check")
    raise SystemExit(check())
