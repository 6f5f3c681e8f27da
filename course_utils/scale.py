"""Past one device: what each of N processes holds when they shard a model (chapter 08).

`memory.estimate(..., devices=N, sharding=...)` predicts the bytes per device; this module
measures them. `measure_fsdp_shards` starts N CPU processes with torchrun over the gloo
backend, shards a randomly initialised model of a memory.Shape with PyTorch's FSDP2
(`fully_shard` on every decoder block, then on the whole model, as accelerate's FSDP plugin
wraps a Llama), takes one AdamW step and reports, per process, the bytes of its own shard of
the weights, the gradients and AdamW's state. The same commands run on GPUs with the nccl
backend; only the CPU path is tested here.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from . import memory


def measure_fsdp_shards(shape: memory.Shape, processes: int = 2, timeout: float = 600) -> list[dict]:
    """One FSDP2 training step of a model of `shape` on `processes` CPU processes; returns one
    dict per rank: {"rank", "world", "weights", "gradients", "optimizer", "loss"} (bytes of
    that rank's local shards; the optimizer's step counters left out)."""
    if int(processes) != processes or processes < 1:
        raise ValueError(f"processes={processes!r}: a whole number of at least 1")
    with tempfile.TemporaryDirectory(prefix="course-fsdp-") as out:
        command = [sys.executable, "-m", "torch.distributed.run", "--standalone",
                   f"--nproc_per_node={processes}", "-m", "course_utils.scale", "shards",
                   json.dumps(shape.__dict__), out]
        environment = {**os.environ, "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}
        try:
            done = subprocess.run(command, capture_output=True, text=True, timeout=timeout,
                                  env=environment)
        except subprocess.TimeoutExpired as error:
            raise RuntimeError(f"{processes} FSDP processes did not finish in {timeout:.0f} s; "
                               f"is another job holding the cores?") from error
        if done.returncode != 0:
            raise RuntimeError(f"torchrun with {processes} processes failed (exit "
                               f"{done.returncode}); its last output:\n{done.stderr[-3000:]}")
        reports = [json.loads(p.read_text()) for p in sorted(Path(out).glob("rank*.json"))]
    if len(reports) != processes:
        raise RuntimeError(f"{len(reports)} of {processes} processes reported back")
    return sorted(reports, key=lambda r: r["rank"])


def _local_bytes(tensor) -> int:
    """Bytes this process stores for a tensor: its shard when the tensor is a DTensor."""
    local = tensor.to_local() if hasattr(tensor, "to_local") else tensor
    return local.numel() * local.element_size()


def _shards_worker(shape_json: str, out: str) -> None:
    """Inside torchrun: shard, step once, write rank<k>.json with what this rank holds."""
    import torch
    import torch.distributed as dist
    from torch.distributed.fsdp import fully_shard
    from transformers import LlamaConfig, LlamaForCausalLM

    dist.init_process_group("gloo")
    rank, world = dist.get_rank(), dist.get_world_size()
    shape = memory.Shape(**json.loads(shape_json))
    torch.manual_seed(0)  # the same initial weights in every process
    config = LlamaConfig(hidden_size=shape.hidden, intermediate_size=shape.intermediate,
                         num_hidden_layers=shape.layers, num_attention_heads=shape.heads,
                         num_key_value_heads=shape.kv_heads, vocab_size=shape.vocab,
                         tie_word_embeddings=shape.tied_embeddings)
    model = LlamaForCausalLM(config)
    for block in model.model.layers:
        fully_shard(block)
    fully_shard(model)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    torch.manual_seed(1 + rank)  # each process its own batch, as data parallelism gives it
    batch = torch.randint(0, shape.vocab, (2, 16))
    loss = model(input_ids=batch, labels=batch).loss
    loss.backward()
    gradients = sum(_local_bytes(p.grad) for p in model.parameters() if p.grad is not None)
    optimizer.step()
    report = {"rank": rank, "world": world, "loss": loss.item(), "gradients": gradients,
              "weights": sum(_local_bytes(p) for p in model.parameters()),
              "optimizer": sum(_local_bytes(v) for state in optimizer.state.values()
                               for k, v in state.items() if k != "step")}
    Path(out, f"rank{rank}.json").write_text(json.dumps(report))
    dist.destroy_process_group()


# ---------------------------------------------------------------------------- one recipe, N processes

# What a training config may say (`course train --config FILE`), and the type of each value.
CONFIG_KEYS: dict[str, tuple[type, ...]] = {
    "model": (str,), "train": (str,), "val": (str,), "output": (str,), "lora": (dict, type(None)),
    "max_steps": (int,), "max_epochs": (int, float), "patience": (int,), "batch_size": (int,),
    "learning_rate": (float, int), "max_length": (int,), "seed": (int,), "eval_every": (int,),
    "backend": (str,), "method": (str,), "beta": (float, int), "start_from": (str,),
}
BACKENDS = ("gloo", "nccl")  # torch.distributed's: gloo runs anywhere, nccl on NVIDIA GPUs
# method: sft (train.sft, on chat rows) or dpo (train.dpo, on preference pairs); the keys only
# one of them takes. DPO trains max_steps (train.dpo has no early stopping); `start_from` is
# an adapter folder `course train` saved (the SFT run DPO refines: merged, it is the reference).
METHODS = ("sft", "dpo")
ONLY_FOR = {"max_epochs": "sft", "patience": "sft", "beta": "dpo", "start_from": "dpo"}
REQUIRED_KEYS = ("model", "train", "output")
LORA_KEYS = ("r", "alpha", "dropout", "target_modules", "rslora")


class ConfigError(ValueError):
    """A training config that cannot be used: the message names the file, the line and the fix."""


def read_train_config(path: str | Path) -> dict:
    """A training config (YAML, or JSON, which YAML reads too), checked: every key known, of the
    right type, the required ones there. Problems raise ConfigError naming FILE:LINE."""
    import yaml
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: no such config file")
    text = path.read_text(encoding="utf-8")
    try:
        root = yaml.compose(text)
        config = yaml.safe_load(text)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark else str(path)
        raise ConfigError(f"{where}: not valid YAML ({getattr(error, 'problem', error)})") from None
    if not isinstance(config, dict) or root is None:
        raise ConfigError(f"{path}: a training config is a mapping of keys to values, e.g. "
                          f"'model: smollm2-135m'; see configs/train/")
    lines = {key.value: key.start_mark.line + 1 for key, _ in root.value}
    problems = []
    for key, value in config.items():
        where = f"{path}:{lines.get(key, 1)}"
        if key not in CONFIG_KEYS:
            problems.append(f"{where}: unknown key {key!r}; the keys are {', '.join(CONFIG_KEYS)}")
        elif isinstance(value, bool) or not isinstance(value, CONFIG_KEYS[key]):
            wanted = " or ".join("null" if t is type(None) else t.__name__ for t in CONFIG_KEYS[key])
            hint = (f" (YAML reads {value} as text: write it with a decimal point, e.g. "
                    f"{float(value)!r})" if isinstance(value, str) and _is_number(value) else "")
            problems.append(f"{where}: {key} is {value!r}; it must be {wanted}{hint}")
        elif key == "lora":
            problems += [f"{where}: lora has no setting {k!r}; its settings are "
                         f"{', '.join(LORA_KEYS)}" for k in value if k not in LORA_KEYS]
        elif key == "backend":
            problems += _backend_problems(value, where)
        elif key == "method" and value not in METHODS:
            problems.append(f"{where}: method {value!r} is not one of {', '.join(METHODS)} "
                            f"(sft trains on chat rows, dpo on preference pairs)")
    method = config.get("method", "sft")
    if method in METHODS:  # keys the other method takes
        problems += [f"{path}:{lines.get(key, 1)}: {key} is for method: {ONLY_FOR[key]}, and "
                     f"this config trains with {method}"
                     + (" (DPO trains max_steps: train.dpo has no early stopping)"
                        if method == "dpo" else "") + f"; remove it"
                     for key in config if ONLY_FOR.get(key, method) != method]
    required = [k for k in REQUIRED_KEYS if not (k == "model" and "start_from" in config)]
    problems += [f"{path}: no {key!r}; add e.g. "
                 f"'{key}: {dict(model='smollm2-135m', train='data/tickets/train.jsonl', output='outputs/train/tickets')[key]}'"
                 for key in required if key not in config]
    if "model" in config and "start_from" in config:
        problems.append(f"{path}:{lines['model']}: model and start_from both name the model to "
                        f"train: start_from's folder brings its base model; remove model")
    if problems:
        raise ConfigError("\n".join(problems))
    return config


def _backend_problems(backend: str, where: str) -> list[str]:
    """Why a torch.distributed backend cannot run on this machine (an empty list when it can)."""
    if backend not in BACKENDS:
        return [f"{where}: backend {backend!r} is not one of {', '.join(BACKENDS)}"]
    if backend == "nccl":
        import torch
        if not torch.cuda.is_available():
            return [f"{where}: backend 'nccl' needs NVIDIA GPUs with CUDA, and this machine has "
                    f"none: use 'gloo', or leave the key out (the trainer picks the backend)"]
    return []


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def rank() -> int:
    """This process's rank among those training together (0 when alone)."""
    return int(os.environ.get("RANK", "0"))


def train_from_config(config: dict, output: str | Path | None = None) -> Path | None:
    """Train what a config (read_train_config) says, with train.sft or (method: dpo)
    train.dpo, on one process or on each of those `accelerate launch` or torchrun started;
    the first saves the result (train.save_adapter) to `output` (default: the config's) and
    returns its folder, the others return None."""
    from . import data, train
    from .models import load_model
    first = rank() == 0
    method = config.get("method", "sft")
    rows = {split: data.load_jsonl(config[split]) for split in ("train", "val") if split in config}
    if method == "dpo":
        for split, pairs in rows.items():
            _check_pairs_of(pairs, config[split])
    if "start_from" in config:
        model, tokenizer = _adapter_start(config["start_from"], first)
    else:
        model, tokenizer = load_model(config["model"], show=first)
    lora = config.get("lora", {})
    settings = {k: v for k, v in config.items()
                if k not in ("model", "train", "val", "output", "lora", "backend", "method",
                             "start_from")}
    if "backend" in config:
        settings["ddp_backend"] = config["backend"]
    fit = train.dpo if method == "dpo" else train.sft
    result = fit(model, tokenizer, rows["train"], rows.get("val"),
                 lora=None if lora is None else train.LoraSettings(**lora), show=first,
                 **settings)
    if not first:
        return None
    folder = train.save_adapter(result, output or config["output"])
    print(f"{result.steps} steps on {train.processes()} process(es) in {result.seconds:.0f} s; "
          f"saved to {folder}")
    return folder


def _check_pairs_of(pairs: list[dict], path: str) -> None:
    """DPO's rows, checked before any training: a bad one is a DataError naming file:line."""
    from . import data, train
    try:
        train._check_pairs(pairs, where=lambda index: f"{path}:{index + 1}")
    except ValueError as error:
        raise data.DataError(str(error)) from None


def _adapter_start(folder: str, show: bool):
    """(model, tokenizer) of a folder train.save_adapter wrote (e.g. an SFT run's), loaded on
    its base model: what `start_from` names."""
    from . import train
    from .models import load_model
    if not (Path(folder) / train.ADAPTER_METADATA).is_file():
        raise ConfigError(f"start_from: {folder}: nothing `course train` saved is there (no "
                          f"{train.ADAPTER_METADATA}); train the SFT config first, or fix the path")
    metadata = train.read_metadata(folder)
    if metadata["kind"] == "full":  # a whole model, with its tokenizer
        return load_model(folder, show=show)
    model, tokenizer = load_model(metadata["base_model"], show=show)
    return train.load_adapter(folder, model=model)[0], tokenizer


STRATEGIES = ("ddp", "fsdp")  # configs/accelerate/<strategy>.yaml


def check_processes(config: dict, processes: int, config_path: str | Path = "the config") -> None:
    """Refuse, before any process starts, a batch that `processes` cannot split evenly."""
    from . import env, train
    try:
        train.check_batch_splits(config.get("batch_size") or env.get_profile().batch_size, processes)
    except ValueError as error:
        raise ConfigError(f"{config_path}: {error}") from None


def launch_command(config_path: str | Path, processes: int, strategy: str = "ddp",
                   output: str | Path | None = None) -> list[str]:
    """The `accelerate launch` command that runs `course train --config` on `processes`
    processes with the repo's DDP or FSDP config."""
    import shutil
    if strategy not in STRATEGIES:
        raise ConfigError(f"strategy {strategy!r}: use one of {', '.join(STRATEGIES)} "
                          f"(configs/accelerate/<strategy>.yaml)")
    if int(processes) != processes or processes < 2:
        raise ConfigError(f"processes={processes!r}: launch 2 or more (one process needs no launcher)")
    beside = Path(sys.executable).with_name("accelerate")
    launcher = str(beside) if beside.exists() else shutil.which("accelerate")
    if launcher is None:
        raise ConfigError("accelerate's launcher (`accelerate`) is not installed in this "
                          "environment: `pip install accelerate==1.15.0` (requirements.txt "
                          "pins it), or launch with `torchrun --nproc_per_node N -m "
                          "course_utils.cli train --config FILE`")
    configs = Path(__file__).resolve().parents[1] / "configs" / "accelerate"
    command = [launcher, "launch", "--config_file", str(configs / f"{strategy}.yaml"),
               f"--num_processes={processes}", "-m", "course_utils.cli", "train",
               "--config", str(config_path)]
    return command + (["--output", str(output)] if output else [])


if __name__ == "__main__":
    if len(sys.argv) != 4 or sys.argv[1] != "shards":
        sys.exit("usage: python -m course_utils.scale shards SHAPE_JSON OUT_DIR (run by torchrun)")
    _shards_worker(sys.argv[2], sys.argv[3])
