"""Colab's install cell, resolved against what Colab has installed.

Every chapter's first cell runs `pip install -r` on the pinned section of requirements.txt
there. That must resolve for Colab's Python, and must not replace Colab's CUDA torch (a CPU or
different CUDA build would break the runtime). This test builds an empty environment that
claims to hold Colab's packages (tests/colab_preinstalled.txt: metadata only, no code) and asks
pip, with --dry-run, what the cell would install for Python 3.13 on Linux. It needs PyPI (as
`make setup` does) and is skipped, saying so, when PyPI cannot be reached.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import venv
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PLATFORMS = ("manylinux_2_28_x86_64", "manylinux_2_27_x86_64", "manylinux_2_24_x86_64",
             "manylinux_2_17_x86_64", "manylinux2014_x86_64", "linux_x86_64")
UNREACHABLE = ("Could not fetch URL", "Failed to establish a new connection",
               "Temporary failure in name resolution", "Network is unreachable")


def colab_packages() -> tuple[str, dict[str, tuple[str, list[str]]]]:
    """Colab's Python version and {name: (version, [requirements])} from the file."""
    python, packages = "", {}
    for line in (ROOT / "tests" / "colab_preinstalled.txt").read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        found = re.fullmatch(r"([\w.-]+)==([\w.]+)(?:\s+requires\s+(.+?)(?:\s+\(.*\))?)?", line)
        assert found, f"tests/colab_preinstalled.txt: cannot read {line!r} (want name==version)"
        name, version, requires = found.groups()
        if name == "python":
            python = version
        else:
            packages[name] = (version, requires.split(",") if requires else [])
    return python, packages


def pretend_installed(site_packages: Path, packages: dict[str, tuple[str, list[str]]]) -> None:
    """A .dist-info folder per package: enough for pip to count it as installed."""
    for name, (version, requires) in packages.items():
        info = site_packages / f"{name}-{version}.dist-info"
        info.mkdir(parents=True)
        (info / "METADATA").write_text("Metadata-Version: 2.1\n" f"Name: {name}\nVersion: {version}\n"
                                       + "".join(f"Requires-Dist: {r.strip()}\n" for r in requires))
        (info / "INSTALLER").write_text("pip\n")
        (info / "RECORD").write_text("")


def colab_cell_requirements() -> str:
    """The section of requirements.txt the Colab cell installs (as its sed command cuts it)."""
    text = (ROOT / "requirements.txt").read_text()
    return text[: text.index("# --- present on Colab")]


def test_the_colab_cell_resolves_and_keeps_colabs_torch(tmp_path):
    python, packages = colab_packages()
    env = tmp_path / "colab"
    venv.create(env, with_pip=False)
    site_packages = next(env.glob("lib/python*/site-packages"))
    pretend_installed(site_packages, packages)
    requirements = tmp_path / "colab-cell.txt"
    requirements.write_text(colab_cell_requirements())
    report = tmp_path / "report.json"
    command = [sys.executable, "-m", "pip", "--python", str(env / "bin" / "python"), "install",
               "--dry-run", "--quiet", "--report", str(report), "--python-version", python,
               "--implementation", "cp", "--only-binary=:all:",
               *[f"--platform={p}" for p in PLATFORMS], "-r", str(requirements)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=600)
    if done.returncode != 0 and any(sign in done.stderr for sign in UNREACHABLE):
        pytest.skip("PyPI cannot be reached: the Colab cell was not resolved")
    errors = "\n".join(line for line in done.stderr.splitlines() if "ERROR" in line)
    assert done.returncode == 0, f"the Colab cell does not resolve for Python {python}:\n{errors}"
    installs = {item["metadata"]["name"].lower(): item["metadata"]["version"]
                for item in json.loads(report.read_text())["install"]}
    kept = {"torch", "triton"}
    replaced = {name: f"{packages[name][0]} -> {installs[name]}" for name in kept if name in installs}
    assert not replaced, f"the Colab cell would replace Colab's own {replaced}: pin what needs it lower"
    for name in ("transformers", "peft", "trl", "accelerate", "datasets"):  # the cell's own pins
        pinned = re.search(rf"^{name}==(\S+)", requirements.read_text(), re.M).group(1)
        assert installs.get(name) == pinned, (name, installs.get(name), pinned)
