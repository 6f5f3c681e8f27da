"""The set-up files agree with each other: requirements, binder, Colab cell, notebooks."""

import json
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
REQUIREMENTS = (ROOT / "requirements.txt").read_text()
COLAB_MARKER = "# --- present on Colab"


def pinned(text: str) -> dict[str, str]:
    return dict(re.findall(r"^([A-Za-z0-9_.-]+)==(\S+)", text, re.M))


def test_every_requirement_is_pinned():
    lines = [line.split("#")[0].strip() for line in REQUIREMENTS.splitlines()]
    assert all("==" in line for line in lines if line), "pin every package with =="


def test_colab_section_holds_the_fine_tuning_stack_but_not_torch():
    colab_part = REQUIREMENTS.split(COLAB_MARKER)[0]
    assert {"transformers", "peft", "trl", "datasets", "accelerate"} <= set(pinned(colab_part))
    assert "torch" not in pinned(colab_part)  # Colab keeps its own CUDA build


def test_binder_uses_the_same_pins_with_cpu_torch():
    binder = (ROOT / "binder" / "requirements.txt").read_text()
    assert "-r ../requirements.txt" in binder and "download.pytorch.org/whl/cpu" in binder
    version = (ROOT / "binder" / "runtime.txt").read_text().strip()
    assert re.fullmatch(r"python-3\.(1[1-9])", version), version  # transformers 5 needs 3.11+


def test_offline_model_pin_matches_the_registry():
    from course_utils.models import MODELS
    spec = MODELS["smollm2-135m"]
    pin = f"{spec.offline_package}=={spec.offline_version}"
    assert pin in (ROOT / "Makefile").read_text() and pin in (ROOT / "binder" / "postBuild").read_text()


def test_chapter_notebooks_have_badges_colab_cell_and_an_assert():
    for path in sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb")):
        cells = json.loads(path.read_text())["cells"]
        text = "".join("".join(c["source"]) for c in cells)
        assert "colab.research.google.com/github/" in text, path
        assert COLAB_MARKER in text, f"{path}: its Colab cell must install the Colab section"
        assert re.search(r"^assert ", text, re.M), f"{path}: state the chapter's result in an assert"


def test_make_lab_starts_as_root_and_headless():
    import os
    import subprocess
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    shown = subprocess.run(["make", "-n", "lab"], cwd=ROOT, env=env, capture_output=True,
                           text=True, check=True).stdout
    command = next(line for line in shown.splitlines() if "jupyter lab" in line)
    assert ("--allow-root" in command) == (os.geteuid() == 0), command
    assert "--no-browser" in command or os.uname().sysname == "Darwin", command


BINDER_GB = 2.0  # mybinder.org's memory limit per session (it guarantees 1 GB, allows 2)


def test_binder_badges_only_where_the_chapter_fits_binders_memory():
    """A Binder badge is a promise that the notebook runs there. Binder has no GPU, so it runs
    the cpu profile: the badge stays only where `course run` measured that profile's peak
    memory under Binder's limit (docs/benchmarks.md), on the notebook and in the README."""
    from course_utils import cli
    peaks = cli.notebook_peaks((ROOT / "docs" / "benchmarks.md").read_text(), "cpu")
    readme = (ROOT / "README.md").read_text()
    for path in sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb")):
        name = f"notebooks/{path.name}"
        fits = peaks.get(name, float("inf")) <= BINDER_GB
        badge = "mybinder.org/v2/gh/" in path.read_text()
        row = next(line for line in readme.splitlines() if f"]({name})" in line)
        assert badge == fits, (f"{name}: cpu-profile peak {peaks.get(name, 'not measured')} GB "
                               f"against Binder's {BINDER_GB} GB, but the badge is "
                               f"{'there' if badge else 'missing'}")
        assert ("mybinder.org/v2/gh/" in row) == fits, f"README's row for {name}"
