"""course_utils.train.dpo vs a plain TRL DPOTrainer run, and LoRA-DPO's memory vs LoRA-SFT's.

    HF_HUB_OFFLINE=1 .venv/bin/python bench/bench_dpo.py [--steps 8] [--out FILE]

Three runs on the same model, LoRA adapter (r 16, all linear layers), house-voice rows, steps,
batch size, maximum length and seed, each in its own Python process:

- plain TRL: what a learner writes from TRL's documentation, a DPOConfig with its defaults
  and `peft_config` (the reference is then the adapter switched off, as in the course);
- `train.dpo`: the same DPO loss from completion positions only, with the chosen and the
  rejected replies back-propagated one after the other (see train._dpo_trainer_class);
- `train.sft` on the same rows (prompt + chosen reply): the memory DPO is compared with.
  "Same batch" means the same number of rows: a DPO batch of 8 pairs holds 8 prompts with
  their chosen reply and the same 8 with their rejected reply.

Throughput counts non-padding tokens the model read (a DPO pair counts its prompt twice).
With --out (`make bench`: docs/benchmarks.md) the table goes in the file's "dpo" section.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from bench_train import peft_config_of, run_in_processes, train_measured  # noqa: E402

from course_utils import benchmarks  # noqa: E402

RUNS = ("plain TRL DPOTrainer", "course_utils.train.dpo", "course_utils.train.sft")


def one_run(kind: str, steps: int, batch_size: int, max_length: int, seed: int) -> dict:
    """Train once in this process and return its measurements."""
    import torch

    from course_utils import data, env, load_model, train
    env.seed_everything(seed)
    model, tokenizer = load_model(show=False)
    lora = train.LoraSettings(r=16, alpha=32, dropout=0.05)
    sizes = dict(lora=lora, max_steps=steps, batch_size=batch_size, max_length=max_length,
                 seed=seed, inplace=True, show=False)
    if kind == "course_utils.train.dpo":
        result = train.dpo(model, tokenizer, data.load_split("voice/pairs", "train"), **sizes)
    elif kind == "course_utils.train.sft":
        result = train.sft(model, tokenizer, data.load_split("voice/sft", "train"), **sizes)
    else:
        result = plain_trl(model, tokenizer, data.load_split("voice/pairs", "train"), lora, steps,
                           batch_size, max_length, seed)
    return {"kind": kind, "seconds": result["seconds"] if isinstance(result, dict) else result.seconds,
            **(result if isinstance(result, dict) else
               {"tokens": result.train_tokens, "peak_mb": result.peak_memory_mb,
                "first_loss": result.losses()[1][0], "last_loss": result.losses()[1][-1]}),
            "device": torch.cuda.get_device_name() if torch.cuda.is_available() else "cpu"}


def plain_trl(model, tokenizer, pairs, lora, steps, batch_size, max_length, seed) -> dict:
    """DPO from TRL's quick start: defaults everywhere except what must match."""
    import tempfile

    import torch
    from datasets import Dataset
    from trl import DPOConfig, DPOTrainer
    rows = Dataset.from_list([{k: p[k] for k in ("prompt", "chosen", "rejected")} for p in pairs])
    cuda = torch.cuda.is_available()
    config = DPOConfig(output_dir=tempfile.mkdtemp(), max_steps=steps,
                       per_device_train_batch_size=batch_size, learning_rate=5e-5, seed=seed,
                       max_length=max_length, logging_steps=1, save_strategy="no",
                       report_to="none", use_cpu=not cuda,
                       bf16=cuda and torch.cuda.is_bf16_supported(), disable_tqdm=True,
                       include_num_input_tokens_seen="non_padding")
    trainer = DPOTrainer(model=model, args=config, train_dataset=rows,
                         processing_class=tokenizer, peft_config=peft_config_of(lora))
    run = train_measured(trainer)
    del run["losses"]
    return run


def section(results: list[dict], steps: int, batch_size: int, max_length: int) -> str:
    """The Markdown section: the three runs and the two ratios."""
    plain, ours, sft = results
    device = ours["device"] if ours["device"] != "cpu" else f"CPU ({benchmarks.machine()})"
    memory = "CUDA max allocated" if ours["device"] != "cpu" else "process RSS"
    lines = [f"## Preference tuning: train.dpo vs plain TRL, and DPO's memory vs SFT's "
             f"({time.strftime('%Y-%m-%d')}, {device})", "",
             f"`bench/bench_dpo.py`: SmolLM2-135M-Instruct, LoRA r 16 on all linear layers, "
             f"{steps} steps x batch {batch_size} of house-voice rows (pairs for DPO, prompt + "
             f"chosen reply for SFT), max length {max_length}, same seed; each run in its own "
             f"process. Tokens are non-padding tokens read (a DPO pair reads its prompt twice).",
             "", f"| run | seconds | tokens/s | peak memory MB ({memory}) | loss first -> last |",
             "|---|---:|---:|---:|---|"]
    for run in results:
        lines.append(f"| {run['kind']} | {run['seconds']:.1f} | "
                     f"{run['tokens'] / run['seconds']:.0f} | {run['peak_mb']:,.0f} | "
                     f"{run['first_loss']:.3f} -> {run['last_loss']:.3f} |")
    speed = (ours["tokens"] / ours["seconds"]) / (plain["tokens"] / plain["seconds"])
    lines += ["", f"train.dpo / plain TRL: **{speed:.2f}x the throughput**, "
                  f"{ours['peak_mb'] / plain['peak_mb']:.2f}x the peak memory. "
                  f"LoRA-DPO / LoRA-SFT at the same batch and length: "
                  f"**{ours['peak_mb'] / sft['peak_mb']:.2f}x the peak memory**.",
              "", "Where it comes from: both DPO runs hold no second model (the reference is "
                  "the adapter switched off). train.dpo scores only the reply tokens (TRL scores "
                  "every position of the policy and the reference), and back-propagates the "
                  "chosen and the rejected replies one after the other, so it holds the "
                  "activations of one reply per pair at a time, as SFT does; the price is one "
                  "extra forward pass without gradients. The rejected replies are longer than "
                  "the chosen ones here, so DPO's rejected half is the bigger one."]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--max-length", type=int, default=384)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=None,
                        help='also write the table into the "dpo" section of this Markdown file')
    parser.add_argument("--one", choices=RUNS, help=argparse.SUPPRESS)  # the child process
    args = parser.parse_args(argv)
    if args.one:
        print(json.dumps(one_run(args.one, args.steps, args.batch_size, args.max_length,
                                 args.seed)))
        return 0
    results = run_in_processes(__file__, RUNS, [
        "--steps", str(args.steps), "--batch-size", str(args.batch_size),
        "--max-length", str(args.max_length), "--seed", str(args.seed)])
    text = section(results, args.steps, args.batch_size, args.max_length)
    print(text)
    if args.out:
        print(f"wrote the dpo section of {benchmarks.write_section(args.out, 'dpo', text)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
