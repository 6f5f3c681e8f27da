"""The course's server, continuously batching, vs static batching and its first version, side by side.

    HF_HUB_OFFLINE=1 .venv/bin/python bench/bench_serve.py [--requests 16] [--out FILE]

Chapter 07's burst: `--requests` chat completions (held-out tickets, max_tokens 48, greedy)
sent at once from 8 threads (serve.burst), against each server in turn, in this one
process, on the same model, adapter and prompts:

- "previous": course_utils/serve.py as it was at commit PREVIOUS (read from git), which
  generated one request at a time behind a lock with `model.generate`;
- "static batching": course_utils.server with schedule="static": queued requests for one
  adapter decoded together, the next batch formed when the last has ended;
- "continuous batching": course_utils.server now: requests join the running batch at every
  step, base and adapter rows in the same forward pass (PEFT's adapter_names).

Two kinds of traffic: base-only (every request names the base model), and mixed (every other
request names the ticket adapter, a LoRA trained for a few steps here so it answers in the
ticket format). Reported: requests/s over the burst, p50/p95 latency, errors, and how many
answers equal the previous server's answer to the same request (greedy decoding: they
should all). vLLM joins the table when chapter 07's serving environment exists.
With --out (`make bench`: docs/benchmarks.md) the table goes in the file's "serve" section.
"""

from __future__ import annotations

import argparse
import copy
import importlib.util
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from course_utils import benchmarks  # noqa: E402

PREVIOUS = "886ce7e"  # the last commit whose server answered one request at a time
THREADS, MAX_TOKENS = 8, 48


def previous_serve():
    """course_utils/serve.py at PREVIOUS, imported as a module of the package (its relative
    imports resolve to today's data and train, whose names it uses are unchanged)."""
    source = subprocess.run(["git", "-C", str(ROOT), "show", f"{PREVIOUS}:course_utils/serve.py"],
                            capture_output=True, text=True, check=True).stdout
    spec = importlib.util.spec_from_loader("course_utils._serve_previous", loader=None)
    module = importlib.util.module_from_spec(spec)
    module.__package__ = "course_utils"
    sys.modules[spec.name] = module  # dataclasses look their module up there
    exec(compile(source, f"{PREVIOUS}:course_utils/serve.py", "exec"), module.__dict__)
    return module


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=16)
    parser.add_argument("--skip-vllm", action="store_true",
                        help="leave vLLM out even if make serve-env has built it")
    parser.add_argument("--out", default=None,
                        help='also write the table into the "serve" section of this Markdown file')
    args = parser.parse_args(argv)

    import torch

    from course_utils import data, evals, load_model, models, serve, train, vllm_server
    model, tokenizer = load_model(show=False)
    base_name = "base"
    print("training a ticket adapter for the mixed traffic (30 steps) ...", flush=True)
    adapter = train.sft(model, tokenizer, data.load_split("tickets", "train"), max_steps=30,
                        batch_size=8, learning_rate=1e-3, show=False)
    folder = train.save_adapter(adapter, Path(tempfile.mkdtemp()) / "tickets")
    tickets = data.load_split("tickets", "test")
    prompts = [evals.prompt_messages(tickets[i % len(tickets)]) for i in range(args.requests)]
    traffic = {"base only": [(base_name, p) for p in prompts],
               "mixed (half adapter)": [("tickets" if i % 2 else base_name, p)
                                        for i, p in enumerate(prompts)]}
    old = previous_serve()
    servers = {"previous (one at a time)": (old, {}),
               "static batching": (serve, {"schedule": "static"}),
               "continuous batching (now)": (serve, {"schedule": "continuous"})}
    results = {}
    # alternate which server goes first, so neither always gets the warmer machine
    order = [("base only", list(servers)), ("mixed (half adapter)", list(servers)[::-1])]
    for kind, names in order:
        for name in names:
            module, options = servers[name]
            served = module.load_adapters(copy.deepcopy(model), {"tickets": folder})
            with module.start(served, tokenizer, base_name=base_name, **options) as running:
                module.chat_completion(running.url, base_name, prompts[0], max_tokens=4)  # warm
                print(f"{name}, {kind} ...", flush=True)
                results[name, kind] = serve.burst(running.url, traffic[kind], THREADS, MAX_TOKENS)
            del served
    vllm = None if args.skip_vllm else vllm_server.vllm_version()
    if vllm:  # the production engine, same model, adapter and bursts, after the others
        print(f"{vllm}, starting ...", flush=True)
        engine = f"vLLM ({vllm.split()[-1]}, CPU)" if "cpu" in vllm else f"vLLM ({vllm.split()[-1]})"
        with vllm_server.start_vllm(models.offline_cache_path(models.resolve(None)),
                                    {"tickets": folder}, served_name=base_name) as running:
            serve.chat_completion(running.url, base_name, prompts[0], max_tokens=4)  # warm
            for kind, _ in order:
                print(f"{engine}, {kind} ...", flush=True)
                results[engine, kind] = serve.burst(running.url, traffic[kind], THREADS, MAX_TOKENS)
        servers[engine] = (None, {})
    else:
        print("vLLM left out: --skip-vllm, or its environment is not built (make serve-env)")
    lines = [f"Written by `bench/bench_serve.py` on {benchmarks.machine()}, torch "
             f"{torch.__version__}, {torch.get_num_threads()} threads: {args.requests} chat "
             f"completions (held-out tickets, max_tokens {MAX_TOKENS}, greedy) sent at once from "
             f"{THREADS} threads (serve.burst), SmolLM2-135M-Instruct with a LoRA "
             f"ticket adapter (r 16, 30 steps). \"previous\" is course_utils/serve.py at "
             f"{PREVIOUS}, run from git in the same process; "
             + ("vLLM runs as its own process (course_utils.vllm_server, float32, the same "
                "model folder and adapter)." if vllm else
                "vLLM was left out of this run (--skip-vllm, or no make serve-env)."), "",
             "| traffic | server | requests/s | p50 latency | p95 latency | errors | "
             "same answer as previous |", "|---|---|---|---|---|---|---|"]
    for kind, _ in order:
        reference = results[next(iter(servers)), kind].answers
        for name in servers:
            r = results[name, kind]
            same = sum(a is not None and a == b for a, b in zip(r.answers, reference))
            lines.append(f"| {kind} | {name} | {r.requests_per_second:.2f} | "
                         f"{r.percentile(50):.1f} s | {r.percentile(95):.1f} s | "
                         f"{len(r.errors)} | {same}/{len(reference)} |")
    def ratio(name: str, other: str, kind: str) -> str:
        return (f"{results[name, kind].requests_per_second / results[other, kind].requests_per_second:.2f}x")

    now = "continuous batching (now)"
    lines += ["", "Continuous batching serves " + ", ".join(
        f"{ratio(now, 'previous (one at a time)', k)} the requests/s of the previous server and "
        f"{ratio(now, 'static batching', k)} those of static batching on {k} traffic"
        for k, _ in order) + "."]
    engines = [name for name in servers if name.startswith("vLLM")]
    if engines:
        lines[-1] += " Against vLLM: " + ", ".join(
            f"{ratio(now, engines[0], kind)} its requests/s on {kind} traffic"
            for kind, _ in order) + "."
    # where an answer differs from the previous server's: after how many tokens, and how close
    # the model itself was to a tie there (rounding flips a near tie; a whole logit is not that)
    judges = {base_name: model.eval(), "tickets": adapter.model.eval()}
    differences = []
    for kind, _ in order:
        reference = results[next(iter(servers)), kind].answers
        for name in list(servers)[1:]:
            for (served, messages), got, want in zip(traffic[kind], results[name, kind].answers,
                                                     reference):
                if got is not None and got != want:
                    found = evals.parting(judges[served], tokenizer, messages, want, got)
                    differences.append(f"{name}, {kind}, {served} request: {found}")
    if differences:
        lines += ["", "Answers that differ from the previous server's, and where they part "
                      "(the previous server's token first, its logit minus the other's):", ""]
        lines += [f"- {line}" for line in differences]
    text = "\n".join(lines)
    print(text)
    if args.out:
        benchmarks.write_section(args.out, "serve", "## Serving: a burst of requests\n\n" + text)
        print(f"wrote the serve section of {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
