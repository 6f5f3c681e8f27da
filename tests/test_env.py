"""course_utils.env: profiles, device, dtype, seeding, timer."""

import pytest
import torch

from course_utils import env


def test_profile_by_name_and_environment(monkeypatch):
    assert env.get_profile("smoke").name == "smoke"
    monkeypatch.setenv("COURSE_PROFILE", "CPU ")
    chosen = env.get_profile()
    assert chosen.name == "cpu" and "COURSE_PROFILE" in chosen.why


def test_default_profile_without_cuda(monkeypatch):
    monkeypatch.delenv("COURSE_PROFILE", raising=False)
    monkeypatch.setattr(env, "_cuda_available", lambda: False)
    assert env.get_profile().name == "cpu"
    monkeypatch.setattr(env, "_cuda_available", lambda: True)
    assert env.get_profile().name == "gpu"


def test_unknown_profile_names_the_choices(monkeypatch):
    monkeypatch.setenv("COURSE_PROFILE", "laptop")
    with pytest.raises(ValueError, match=r"'laptop'.*smoke, cpu, gpu"):
        env.get_profile()


def test_profiles_grow_from_smoke_to_gpu():
    smoke, cpu, gpu = (env.PROFILES[n] for n in env.PROFILE_NAMES)
    assert smoke.n_eval < cpu.n_eval <= gpu.n_eval
    assert smoke.max_steps < cpu.max_steps < gpu.max_steps


def test_scaled_copy_leaves_the_original():
    smoke = env.PROFILES["smoke"]
    assert smoke.scaled(n_eval=3).n_eval == 3 and smoke.n_eval == 8


def test_cpu_dtype_is_float32():
    assert env.get_dtype("cpu") == torch.float32


def test_seed_repeats_random_numbers():
    env.seed_everything(123)
    first = torch.rand(3)
    env.seed_everything(123)
    assert torch.equal(first, torch.rand(3))


def test_setup_prints_profile_device_and_dtype(capsys):
    result = env.setup("smoke")
    out = capsys.readouterr().out
    assert "profile: smoke" in out and "device:  cpu" in out and "float32" in out
    assert "transformers" in out and result.seed == 0


def test_timer_records_seconds(capsys):
    with env.timer("work") as t:
        sum(range(1000))
    assert t["seconds"] >= 0 and "work:" in capsys.readouterr().out


def test_versions_reports_missing_packages():
    found = env.versions(("torch", "surely-not-a-package"))
    assert found["torch"].startswith("2.") and found["surely-not-a-package"] == "not installed"


def test_get_profile_passes_a_profile_through():
    from course_utils import env
    tweaked = env.PROFILES["smoke"].scaled(max_steps=1)
    assert env.get_profile(tweaked) is tweaked
