"""course_utils.llama_cpp without llama.cpp built: what it says, and how it reads a run's output
(`make test-gguf` runs llama.cpp itself, after `make llama-env`)."""

import stat
import sys

import pytest

from course_utils import llama_cpp


def test_a_missing_environment_says_how_to_build_it(tmp_path, monkeypatch):
    monkeypatch.setattr(llama_cpp, "LLAMA_ENV", tmp_path / "nowhere")
    assert llama_cpp.llama_cpp_version() is None
    model = tmp_path / "model.gguf"
    model.write_bytes(b"GGUF")
    with pytest.raises(llama_cpp.LlamaCppUnavailable, match="make llama-env"):
        llama_cpp.chat_answers(model, [[{"role": "user", "content": "hi"}]])


def test_a_missing_file_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="no GGUF file at .*absent.gguf"):
        llama_cpp.chat_answers(tmp_path / "absent.gguf", [])


def fake_environment(root, script: str):
    """A llama environment whose `python` runs `script` (a Python program) instead."""
    (root / "bin").mkdir(parents=True)
    python = root / "bin" / "python"
    python.write_text(f"#!{sys.executable}\n{script}")
    python.chmod(python.stat().st_mode | stat.S_IEXEC)
    (root / ".installed").touch()


def test_answers_are_read_one_per_chat_and_a_failure_shows_its_last_words(tmp_path, monkeypatch):
    model = tmp_path / "model.gguf"
    model.write_bytes(b"GGUF")
    chats = [[{"role": "user", "content": f"ticket {i}"}] for i in range(3)]
    env = tmp_path / "env"
    fake_environment(env, "import json, sys\njob = json.load(sys.stdin)\n"
                          "print(json.dumps({'load_seconds': 0.5}))\n"
                          "for chat in job['chats']:\n"
                          "    print(json.dumps({'answer': ' ' + chat[-1]['content'] + ' '}))\n")
    monkeypatch.setattr(llama_cpp, "LLAMA_ENV", env)
    run = llama_cpp.chat_answers(model, chats, max_tokens=8)
    assert run.answers == ["ticket 0", "ticket 1", "ticket 2"] and run.load_seconds == 0.5
    assert "3 answers" in str(run)
    broken = tmp_path / "broken"
    fake_environment(broken, "import sys\nprint('gguf_init_from_file: invalid magic', "
                             "file=sys.stderr)\nsys.exit(1)\n")
    monkeypatch.setattr(llama_cpp, "LLAMA_ENV", broken)
    with pytest.raises(llama_cpp.LlamaCppUnavailable, match="(?s)exit 1, 0 of 3 answers.*invalid magic"):
        llama_cpp.chat_answers(model, chats)
