"""Where the course runs: profile, device, dtype, seed, versions, timer.

Introduced in notebooks/00_decide.ipynb (setup cell); every chapter starts with `setup()`.

A *profile* sizes a notebook for the machine it runs on:
- ``smoke``: tests and CI; every chapter in minutes, numbers are not meaningful.
- ``cpu``: a laptop; every chapter shows its real result (the committed outputs).
- ``gpu``: Colab T4 or a rented GPU; bigger evaluations, more steps, half precision.
Choose one with the environment variable ``COURSE_PROFILE``; by default it is ``gpu`` when
CUDA is present, else ``cpu``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib.metadata
import inspect
import os
import platform
import random
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass

PROFILE_NAMES = ("smoke", "cpu", "gpu")


@dataclass(frozen=True)
class Profile:
    """How big a run is: one settings block shared by every chapter."""

    name: str
    model: str  # a name from course_utils.models.MODELS
    n_eval: int  # held-out rows scored per evaluation
    max_new_tokens: int  # generation budget per answer
    gen_batch_size: int  # prompts generated together
    max_steps: int  # optimizer steps per training run
    batch_size: int  # training rows per step
    max_length: int  # tokens per training row (longer rows are cut)
    # train.sft's limit when a caller gives none: passes over the data, stopping early on
    # validation loss when there are validation rows. None (smoke): max_steps, a quick check.
    max_epochs: float | None = None
    why: str = ""  # how this profile was chosen

    def scaled(self, **changes) -> Profile:
        """A copy with some settings changed (a chapter's own tweaks)."""
        return dataclasses.replace(self, **changes)


PROFILES: dict[str, Profile] = {
    "smoke": Profile("smoke", "smollm2-135m", n_eval=8, max_new_tokens=48, gen_batch_size=8,
                     max_steps=4, batch_size=4, max_length=256),
    "cpu": Profile("cpu", "smollm2-135m", n_eval=200, max_new_tokens=64, gen_batch_size=20,
                   max_steps=40, batch_size=8, max_length=384, max_epochs=3),
    "gpu": Profile("gpu", "smollm2-135m", n_eval=200, max_new_tokens=64, gen_batch_size=60,
                   max_steps=120, batch_size=16, max_length=512, max_epochs=3),
}


def get_profile(name: str | Profile | None = None) -> Profile:
    """The profile named (a Profile is returned as it is), else $COURSE_PROFILE, else gpu
    with CUDA and cpu without."""
    if isinstance(name, Profile):
        return name
    if name is not None:
        why = "asked for by name"
    elif os.environ.get("COURSE_PROFILE"):
        name, why = os.environ["COURSE_PROFILE"].strip().lower(), "from $COURSE_PROFILE"
    elif _cuda_available():
        name, why = "gpu", "default: a CUDA GPU is present"
    else:
        name, why = "cpu", "default: no CUDA GPU (set COURSE_PROFILE=smoke for a quick pass)"
    if name not in PROFILES:
        raise ValueError(f"unknown profile {name!r} ({why}); choose one of {', '.join(PROFILES)}, "
                         f"e.g. COURSE_PROFILE=cpu")
    return PROFILES[name].scaled(why=why)


def _cuda_available() -> bool:
    import torch
    return torch.cuda.is_available()


def get_device() -> str:
    """'cuda' when a CUDA GPU is present, 'mps' on Apple silicon, else 'cpu'."""
    import torch
    if torch.cuda.is_available():
        return "cuda"
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return "mps"
    return "cpu"


def to_device(batch, target):
    """`batch` (a tensor, or a dict, list or tuple of them, nested) on the device of `target`
    (a model, or a device such as "cuda"). Every tensor a notebook builds by hand goes to the
    model through this: on a CPU it changes nothing, on a GPU (or Apple's MPS) it is what
    avoids "Expected all tensors to be on the same device"."""
    from collections.abc import Mapping

    import torch
    device = target if isinstance(target, (str, torch.device)) else next(target.parameters()).device
    if isinstance(batch, torch.Tensor):
        return batch.to(device)
    if isinstance(batch, Mapping):  # a dict, or the tokenizer's BatchEncoding
        return {key: to_device(value, device) for key, value in batch.items()}
    if isinstance(batch, (list, tuple)):
        return type(batch)(to_device(value, device) for value in batch)
    return batch


BF16_CAPABILITY = (8, 0)  # Ampere (A100, A10, RTX 30xx) and newer compute in bf16 natively


def get_dtype(device: str | None = None):
    """The compute dtype: bf16 on GPUs of compute capability 8.0 or newer, fp16 below (a T4 is
    7.5), fp32 on CPU and MPS. Decided by the capability, not torch.cuda.is_bf16_supported(),
    which also answers True where bf16 is only emulated (slowly), as on a T4."""
    import torch
    device = device or get_device()
    if device != "cuda":
        return torch.float32
    capability = tuple(torch.cuda.get_device_capability())
    return torch.bfloat16 if capability >= BF16_CAPABILITY else torch.float16


def seed_everything(seed: int = 0) -> None:
    """Seed Python, NumPy and torch, so a cell gives the same numbers on a rerun."""
    import numpy as np
    import torch
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def in_colab() -> bool:
    """True inside Google Colab."""
    return "google.colab" in sys.modules or "COLAB_RELEASE_TAG" in os.environ


def is_headless() -> bool:
    """True when no person is watching: under pytest/nbval, or COURSE_HEADLESS is set."""
    return bool(os.environ.get("PYTEST_CURRENT_TEST") or os.environ.get("COURSE_HEADLESS"))


KEY_PACKAGES = ("torch", "transformers", "peft", "trl", "datasets", "accelerate")


def versions(packages: tuple[str, ...] = KEY_PACKAGES) -> dict[str, str]:
    """Installed version of each package ('not installed' when absent), plus Python."""
    found = {"python": platform.python_version()}
    for name in packages:
        try:
            found[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            found[name] = "not installed"
    return found


@dataclass
class Setup:
    """What a notebook's setup cell found: profile, device, dtype, seed."""

    profile: Profile
    device: str
    dtype: object
    seed: int

    def __str__(self) -> str:
        dtype = str(self.dtype).replace("torch.", "")
        return (f"profile: {self.profile.name} ({self.profile.why})\n"
                f"device:  {self.device}, dtype: {dtype}\nseed:    {self.seed}")


def setup(profile: str | None = None, seed: int = 0, show: bool = True) -> Setup:
    """A notebook's first step: print versions, pick profile, device and dtype, seed."""
    chosen = get_profile(profile)
    device = get_device()
    result = Setup(chosen, device, get_dtype(device), seed)
    seed_everything(seed)
    if show:
        print("  ".join(f"{k} {v}" for k, v in versions().items()))
        print(result)
    return result


@contextlib.contextmanager
def timer(label: str = "", show: bool = True) -> Iterator[dict]:
    """Time a block: `with timer("train") as t: ...`, then t["seconds"]."""
    record = {"seconds": 0.0}
    start = time.perf_counter()
    try:
        yield record
    finally:
        record["seconds"] = time.perf_counter() - start
        if show:
            print(f"{label or 'elapsed'}: {record['seconds']:.1f} s")


def show_source(obj) -> None:
    """Print the source of a course_utils function or class, so nothing is magic."""
    print(inspect.getsource(obj))
