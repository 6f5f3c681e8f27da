"""course_utils.registry (as the chapter calls it, through serve): numbered versions, promote,
rollback, the gate, crash safety, and processes promoting at once."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from course_utils import serve

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
            patch.setattr(json, "dumps", fail)
        else:
            patch.setattr(os, failing, fail)
        with pytest.raises(OSError, match="simulated"):
            registry.promote("tickets", 2)
    folder = tmp_path / "registry" / "tickets"
    assert serve.Registry(tmp_path / "registry").live("tickets") == 1
    assert sorted(p.name for p in folder.iterdir() if p.is_file()) == [".lock", "LIVE.json"]  # no debris
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
        patch.setattr(shutil, "copytree", lambda *a, **k: (_ for _ in ()).throw(
            OSError("disk full")))
        with pytest.raises(OSError, match="disk full"):
            registry.register(fake_adapter(tmp_path / "failed"), "tickets")
    assert registry.register(fake_adapter(tmp_path / "next"), "tickets") == 2
    assert [r["version"] for r in registry.versions("tickets")] == [1, 2]
    assert sorted(p.name for p in folder.iterdir() if p.name.startswith(".")) == [
        ".incoming-dead"]




PROMOTE_MANY = """
import sys
from course_utils import serve
registry, versions = serve.Registry(sys.argv[1]), [int(v) for v in sys.argv[2:]]
for i in range(100):
    registry.promote("tickets", versions[i % len(versions)])
"""


def test_two_processes_promoting_at_once_lose_no_history(tmp_path):
    """Each promote reads LIVE.json, adds the live version to the history and writes it
    back: without the lock file, two processes interleave and one's entries vanish."""
    registry = registry_with(tmp_path, scores=(0.5, 0.6, 0.7, 0.8))
    registry.promote("tickets", 1)
    root = str(registry.root)
    workers = [subprocess.Popen([sys.executable, "-c", PROMOTE_MANY, root, *versions])
               for versions in (("2", "3"), ("4", "1"))]
    assert [w.wait(timeout=120) for w in workers] == [0, 0]
    # Every one of the 200 promotions moved the pointer (a process alternates two versions and
    # the other's two are different, so no promotion's target is already live): each must
    # have added the version it replaced to the history, in order.
    chain = [*registry.history("tickets"), registry.live("tickets")]
    assert len(chain) == 201 and chain[0] == 1, chain
    assert all(a != b for a, b in zip(chain, chain[1:])), chain
    assert (registry.root / "tickets" / serve.LOCK_FILE).exists()
