"""Serving: the adapter registry, the local server, and the model helpers around them.

Introduced in chapter 07 (serving fine-tuned models). The parts live in their own modules,
each readable top to bottom, and this one gathers them under the name the chapter uses:

- `course_utils.registry`: `Registry(root)`, numbered adapter versions with one live pointer
  per name, `promote` (through the course's gate: beat the prompt and what serves now) and
  `rollback`; crash-safe writes and a lock file for processes promoting at once.
- `course_utils.server`: `start(model, tokenizer)`, an OpenAI-compatible endpoint on localhost
  that batches continuously (requests join the running batch at every step, each with its
  own adapter), samples and streams; `chat_completion` and
  `request`, a client for it or any OpenAI-compatible server (vLLM's, say).
- `course_utils.export`: `export_gguf` (a fine-tune as one GGUF file for llama.cpp and
  Ollama), `load_gguf` (read one back), `ollama_modelfile`, `llama_cpp_command`.
- here: `load_adapters` (several adapters on one base), `merge` (fold one in) and
  `time_generation`, for the chapter's latency comparison.
"""

from __future__ import annotations

import copy
import statistics
import warnings
from dataclasses import dataclass
from pathlib import Path

from .export import export_gguf, llama_cpp_command, load_gguf, ollama_modelfile
from .registry import (LIVE_FILE, LOCK_FILE, GateError, Registry, adapter_metadata,
                       heldout_value, parse_version, version_folder)
from .server import (Burst, HttpError, ServeError, Server, ServeStats, burst, chat_completion,
                     request, start)
from .train import ADAPTER_METADATA, _library_deprecations_hidden, read_metadata

__all__ = ["LIVE_FILE", "LOCK_FILE", "Burst", "GateError", "HttpError", "Registry", "ServeError",
           "ServeStats", "Server", "Timing", "adapter_metadata", "burst", "chat_completion",
           "export_gguf", "heldout_value", "llama_cpp_command", "load_adapters", "load_gguf",
           "merge", "ollama_modelfile", "parse_version", "request", "start", "time_generation",
           "version_folder"]


def load_adapters(base, adapters: dict[str, str | Path]):
    """One PeftModel carrying several saved adapters, each under its name: e.g.
    load_adapters(base, {"tickets": registry.path("tickets"), "voice": registry.path("voice")}).

    PEFT adds the adapters' layers to `base` in place: pass a copy to keep it plain.
    """
    from peft import PeftModel
    if not adapters:
        raise ValueError("load_adapters needs at least one {name: adapter folder}")
    model = None
    for name, directory in adapters.items():
        directory = Path(directory)
        if (directory / ADAPTER_METADATA).exists() and read_metadata(directory).get("kind") == "prompt":
            raise ValueError(f"{directory} is a prompt version (registry.register_prompt): it has "
                             f"no adapter to load; serve the base model with its prompt, or "
                             f"give an adapter version for {name!r}")
        if not (directory / "adapter_config.json").exists():
            raise ValueError(f"{directory} has no adapter_config.json: give the folder that "
                             f"train.save_adapter (or model.save_pretrained) wrote for {name!r}")
        _warn_on_other_base(base, directory, name)
        with _library_deprecations_hidden():
            if model is None:
                model = PeftModel.from_pretrained(base, str(directory), adapter_name=name)
            else:
                model.load_adapter(str(directory), adapter_name=name)
    return model.eval()


def _warn_on_other_base(base, directory: Path, name: str) -> None:
    """Warn when an adapter's metadata names a different base model than the one given."""
    path = directory / ADAPTER_METADATA
    ours = getattr(base, "course_source", None)
    if not path.exists() or not ours:
        return
    theirs = read_metadata(directory).get("base_model")
    if theirs and theirs != ours:
        warnings.warn(f"adapter {name!r} was trained on {theirs}, and is being loaded on {ours}",
                      stacklevel=3)


def merge(peft_model, adapter: str | None = None):
    """A plain model with the adapter (the active one, or `adapter`) folded into its weights:
    no extra matrix products per token. The PeftModel itself is left as it was."""
    model = copy.deepcopy(peft_model)
    if adapter is not None:
        model.set_adapter(adapter)
    with _library_deprecations_hidden():
        return model.merge_and_unload()


@dataclass
class Timing:
    """Wall-clock seconds of repeated generations of one answer."""

    seconds: list[float]
    new_tokens: int  # tokens in the answer (the same each run: decoding is greedy)

    @property
    def median(self) -> float:
        return statistics.median(self.seconds) if self.seconds else 0.0

    def __str__(self) -> str:
        low, high = min(self.seconds, default=0.0), max(self.seconds, default=0.0)
        return (f"median {self.median * 1000:.0f} ms over {len(self.seconds)} runs "
                f"({low * 1000:.0f}-{high * 1000:.0f} ms), {self.new_tokens} new tokens")


def time_generation(model, tokenizer, messages: list[dict], n: int = 5,
                    max_new_tokens: int = 32) -> Timing:
    """Time `n` greedy answers to one chat, after one untimed answer (the warm-up, which
    also gives the answer's length in tokens)."""
    from .evals import generate_from_messages, time_calls
    answer = generate_from_messages(model, tokenizer, [messages], max_new_tokens=max_new_tokens)[0]
    seconds = time_calls(model, tokenizer, [messages] * n, max_new_tokens=max_new_tokens,
                         warm_up=False)
    return Timing(seconds, len(tokenizer(answer, add_special_tokens=False)["input_ids"]))
