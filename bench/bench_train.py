"""course_utils.train.sft vs a plain TRL SFTTrainer run, side by side: throughput and memory.

    HF_HUB_OFFLINE=1 .venv/bin/python bench/bench_train.py [--steps 16] [--out FILE]

Both runs train the same LoRA adapter (r 16, all linear layers) on the same model, the same
ticket rows, for the same steps, batch size, learning rate and seed. The plain run is what a
learner writes from TRL's documentation: an SFTConfig with its defaults (gradient
checkpointing on, padded batches, TRL's loss over every position), given the rows as
prompt/completion pairs so that it too trains on the answers only. `train.sft` differs in
three ways: no gradient checkpointing (a 135M model's activations fit), padding-free batches,
and logits only where the loss is (see train._assistant_token_loss).

Each run gets its own Python process, so one run's memory cannot inflate the other's peak.
Throughput counts non-padding tokens only. On a GPU it also reports MFU: achieved FLOPs
(6 x parameters x tokens/s, the usual training estimate) over the GPU's peak.
With --out (`make bench`: docs/benchmarks.md) the table goes in the file's "train" section.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from course_utils import benchmarks  # noqa: E402

RUNS = ("plain TRL", "course_utils.train.sft")
# Dense bf16 peak TFLOPS by GPU name (vendor data sheets), for MFU.
PEAK_TFLOPS = {"H200": 989.0, "H100": 989.0, "A100": 312.0, "L4": 121.0, "A10": 125.0,
               "T4": 65.0, "V100": 125.0}


def one_run(kind: str, steps: int, batch_size: int, seed: int) -> dict:
    """Train once in this process and return its measurements."""
    import torch

    from course_utils import data, env, load_model, train
    env.seed_everything(seed)
    model, tokenizer = load_model(show=False)
    rows = data.load_split("tickets", "train")
    lora = train.LoraSettings(r=16, alpha=32, dropout=0.05)
    if kind == "course_utils.train.sft":
        result = train.sft(model, tokenizer, rows, lora=lora, max_steps=steps,
                           batch_size=batch_size, learning_rate=1e-3, seed=seed,
                           inplace=True, show=False)
        seconds, tokens, peak = result.seconds, result.train_tokens, result.peak_memory_mb
        losses = result.losses()[1]
    else:
        seconds, tokens, peak, losses = plain_trl(model, tokenizer, rows, lora, steps,
                                                  batch_size, seed)
    n_params = sum(p.numel() for p in model.parameters())
    return {"kind": kind, "seconds": seconds, "tokens": tokens, "peak_mb": peak,
            "tokens_per_second": tokens / seconds, "first_loss": losses[0],
            "last_loss": losses[-1], "n_params": n_params,
            "device": torch.cuda.get_device_name() if torch.cuda.is_available() else "cpu"}


def plain_trl(model, tokenizer, rows, lora, steps, batch_size, seed):
    """The run from TRL's quick start: defaults everywhere except what must match."""
    import tempfile

    import torch
    from datasets import Dataset
    from trl import SFTConfig, SFTTrainer

    pairs = Dataset.from_list([{"prompt": r["messages"][:-1], "completion": r["messages"][-1:]}
                               for r in rows])
    cuda = torch.cuda.is_available()
    config = SFTConfig(output_dir=tempfile.mkdtemp(), max_steps=steps,
                       per_device_train_batch_size=batch_size, learning_rate=1e-3, seed=seed,
                       logging_steps=1, save_strategy="no", report_to="none", use_cpu=not cuda,
                       bf16=cuda and torch.cuda.is_bf16_supported(), disable_tqdm=True,
                       include_num_input_tokens_seen="non_padding")
    trainer = SFTTrainer(model=model, args=config, train_dataset=pairs,
                         processing_class=tokenizer, peft_config=peft_config_of(lora))
    run = train_measured(trainer)
    return run["seconds"], run["tokens"], run["peak_mb"], run["losses"]


def peft_config_of(lora):
    """PEFT's LoraConfig for course LoraSettings, written out as a TRL user would."""
    from peft import LoraConfig
    return LoraConfig(r=lora.r, lora_alpha=lora.alpha, lora_dropout=lora.dropout,
                      target_modules=lora.target_modules, task_type="CAUSAL_LM")


def train_measured(trainer) -> dict:
    """trainer.train(), timed, with peak memory, real tokens seen and the logged losses."""
    from course_utils.train import PeakMemory
    with PeakMemory() as memory:
        start = time.perf_counter()
        trainer.train()
        seconds = time.perf_counter() - start
    losses = [log["loss"] for log in trainer.state.log_history if "loss" in log]
    return {"seconds": seconds, "tokens": int(trainer.state.num_input_tokens_seen),
            "peak_mb": memory.peak_mb, "losses": losses, "first_loss": losses[0],
            "last_loss": losses[-1]}


def mfu(run: dict) -> str:
    """Model FLOPs utilisation on a GPU, '-' on a CPU or an unknown GPU."""
    peak = next((v for k, v in PEAK_TFLOPS.items() if k in run["device"]), None)
    if run["device"] == "cpu" or peak is None:
        return "-"
    return f"{6 * run['n_params'] * run['tokens_per_second'] / (peak * 1e12):.1%}"


def section(results: list[dict], steps: int, batch_size: int) -> str:
    """The Markdown section: the two runs and the ratios."""
    plain, ours = results
    device = ours["device"] if ours["device"] != "cpu" else (
        f"CPU ({benchmarks.machine()})")
    lines = [f"## Training throughput: train.sft vs plain TRL ({time.strftime('%Y-%m-%d')}, "
             f"{device})", "",
             f"`bench/bench_train.py`: SmolLM2-135M-Instruct, LoRA r 16 on all linear layers, "
             f"{steps} steps x batch {batch_size} of course tickets, same seed; each run in its "
             f"own process. Tokens are non-padding tokens.", "",
             "| run | seconds | tokens/s | peak memory MB | MFU | loss first -> last |",
             "|---|---:|---:|---:|---:|---|"]
    for run in results:
        lines.append(f"| {run['kind']} | {run['seconds']:.1f} | {run['tokens_per_second']:.0f} | "
                     f"{run['peak_mb']:,.0f} | {mfu(run)} | "
                     f"{run['first_loss']:.3f} -> {run['last_loss']:.3f} |")
    lines += ["", f"train.sft / plain TRL: **{ours['tokens_per_second'] / plain['tokens_per_second']:.2f}x "
                  f"the throughput**, {ours['peak_mb'] / plain['peak_mb']:.2f}x the peak memory "
                  f"({'CUDA max allocated' if ours['device'] != 'cpu' else 'process RSS'}).",
              "", "Where the difference comes from: train.sft turns off gradient checkpointing "
                  "(a small model's activations fit), packs each batch without padding, and "
                  "computes logits only at the answer's positions. The two runs render rows with "
                  "different code (TRL's prompt/completion path and `data.render`), so their "
                  "first losses differ slightly."]
    return "\n".join(lines) + "\n"


def run_in_processes(script: str, kinds: tuple[str, ...], argv: list[str]) -> list[dict]:
    """Run `script --one KIND ARGV...` for each kind in a fresh Python process (so no run's
    memory inflates another's peak) and collect the JSON line each prints last."""
    results = []
    for kind in kinds:
        print(f"running {kind} ...", flush=True)
        child = subprocess.run([sys.executable, script, "--one", kind, *argv],
                               capture_output=True, text=True,
                               env={**os.environ, "COURSE_HEADLESS": "1"})
        if child.returncode:
            print(child.stderr[-3000:], file=sys.stderr)
            raise SystemExit(f"the {kind} run failed (exit {child.returncode})")
        results.append(json.loads(child.stdout.strip().splitlines()[-1]))
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=16)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=None,
                        help='also write the table into the "train" section of this Markdown file')
    parser.add_argument("--one", choices=RUNS, help=argparse.SUPPRESS)  # the child process
    args = parser.parse_args(argv)
    if args.one:
        print(json.dumps(one_run(args.one, args.steps, args.batch_size, args.seed)))
        return 0
    results = run_in_processes(__file__, RUNS, ["--steps", str(args.steps), "--batch-size",
                                                str(args.batch_size), "--seed", str(args.seed)])
    text = section(results, args.steps, args.batch_size)
    print(text)
    if args.out:
        print(f"wrote the train section of {benchmarks.write_section(args.out, 'train', text)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
