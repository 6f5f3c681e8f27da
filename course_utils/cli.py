"""The `course` command: what an instructor runs before a workshop.

  course doctor              versions, profile, device, model source, one real generation,
                             and the notebooks whose measured peak memory will not fit here
  course fetch-model         put the offline model in the course cache (idempotent)
  course run [NB ...]        execute notebooks headless, print a time/result summary
                             (--profile cpu --inplace re-executes and saves outputs;
                             --record docs/benchmarks.md also files the times and the peak
                             memory of the kernel and what it started)
  course bench [NB ...]      wall time of notebooks per profile, into docs/benchmarks.md
                             (updates the rows measured, keeps the others)
  course validate FILE       check a chat JSONL file: every problem with file:line and a fix
                             (--max-length N also counts tokens with the course tokenizer);
                             exit 0 when valid, 1 when it has errors, 2 when it cannot be read
  course results             print docs/results.json as the README's table
                             (--readme README.md writes it there; --check exits 1 if stale)
  course runs [NAME ...]     train the course's shared runs into the run cache (make runs)
  course train --config F    train what a config says (configs/train/), on one process or
                             (--processes N [--strategy fsdp], or under `accelerate launch` or
                             torchrun) on many; exit 0 done,
                             1 when the data has errors, 2 for a bad config or arguments
  course tune FILE --out DIR your own task, chapter 09's steps on a CSV/TSV (--input-col,
                             --output-col) or JSONL file: the cheaper rungs, a LoRA fine-tune,
                             the decision, report.md/.html and summary.json in DIR, the adapter
                             in the registry; exit 0 done, 1 when the data has problems (all
                             listed), 2 for an unreadable file or bad arguments, 130 on Ctrl-C
                             (--resume then continues the training)
  course serve --name NAME   serve the live version of NAME from the registry (the course's
                             OpenAI-compatible server, chapter 07) until Ctrl-C
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def cmd_fetch_model(args) -> int:
    """Make sure the model loads offline; build the cache only when it is missing."""
    from . import models
    spec = models.resolve(args.name)
    cached = models.offline_cache_path(spec)
    if (cached / "config.json").exists():
        print(f"offline model ready: {cached}")
        return 0
    start = time.perf_counter()
    print(f"de-quantizing {spec.gguf_file} into {models.build_offline_cache(spec)} "
          f"({time.perf_counter() - start:.0f} s)")
    return 0


def cmd_doctor(args) -> int:
    """Check this machine can run the course; exit 1 when something is wrong."""
    from . import env, models
    print(f"python {platform.python_version()} on {platform.platform()}, {os.cpu_count()} cores")
    print("  ".join(f"{k} {v}" for k, v in env.versions().items()))
    print(env.setup(show=False))
    free_gb = shutil.disk_usage(ROOT).free / 1e9
    print(f"free disk: {free_gb:.1f} GB")
    import psutil
    total_gb = psutil.virtual_memory().total / 1e9
    profile = env.get_profile().name
    benchmarks_md = ROOT / "docs" / "benchmarks.md"
    peaks = notebook_peaks(benchmarks_md.read_text(encoding="utf-8"), profile) \
        if benchmarks_md.exists() else {}
    print(f"memory: {total_gb:.1f} GB; the largest measured notebook peak in the {profile} "
          f"profile is " + (f"{max(peaks.values()):.1f} GB" if peaks else "not measured yet"))
    for line in memory_warnings(peaks, total_gb, profile):
        print(line)
    print(f"hub reachable: {models.hub_reachable()}  (HF_HUB_OFFLINE="
          f"{os.environ.get('HF_HUB_OFFLINE', '')!r})")
    try:
        model, tokenizer = models.load_model()
        start = time.perf_counter()
        answer = models.chat(model, tokenizer, "What is the capital of France?", max_new_tokens=16)
        print(f"generation ({time.perf_counter() - start:.1f} s): {answer!r}")
    except Exception as err:  # the doctor reports every failure rather than crash
        print(f"PROBLEM: the model does not load or generate: {err}")
        return 1
    ok = "paris" in answer.lower()
    print("OK: this machine can run the course" if ok else "PROBLEM: unexpected answer")
    return 0 if ok else 1


def find_notebooks(paths: list[str]) -> list[Path]:
    """Notebook files named, or found under the folders named (solutions included)."""
    found: list[Path] = []
    for item in paths or [str(ROOT / "notebooks")]:
        path = Path(item)
        if path.is_dir():
            found += sorted(p for p in path.rglob("*.ipynb") if ".ipynb_checkpoints" not in p.parts)
        elif path.suffix == ".ipynb" and path.exists():
            found.append(path)
        else:
            raise SystemExit(f"course: {item}: not a notebook or a folder of notebooks")
    return found


class ChildrenPeakMemory:
    """The peak resident memory of this process's children (a notebook's kernel and whatever it
    starts), sampled twice a second in a background thread while the `with` block runs."""

    def __init__(self, every: float = 0.5):
        import threading
        self.every, self.peak = every, 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        import psutil
        me = psutil.Process()
        while not self._stop.wait(self.every):
            total = 0
            for child in me.children(recursive=True):
                try:
                    total += child.memory_info().rss
                except psutil.Error:  # it exited between the listing and the reading
                    pass
            self.peak = max(self.peak, total)

    def __enter__(self) -> "ChildrenPeakMemory":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


def run_notebook(path: Path, profile: str, inplace: bool,
                 timeout: int = 1800) -> tuple[float, str, int]:
    """Execute one notebook in its own folder; return (seconds, 'ok' or the error, the peak
    memory in bytes of its kernel and the processes it started)."""
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError

    os.environ["COURSE_PROFILE"] = profile  # the kernel inherits the environment
    notebook = nbformat.read(path, as_version=4)
    client = NotebookClient(notebook, timeout=timeout, kernel_name="python3",
                            resources={"metadata": {"path": str(path.parent)}})
    start = time.perf_counter()
    with ChildrenPeakMemory() as memory:
        try:
            client.execute()
            status = "ok"
        except CellExecutionError as err:
            status = "error: " + str(err).strip().splitlines()[-1][:200]
    seconds = time.perf_counter() - start
    if inplace and status == "ok":
        nbformat.write(notebook, path)
    elif status != "ok":  # keep what ran, to read the failing cell's output; never committed
        failed = path.parent / "outputs" / f"{path.stem}.failed.ipynb"
        failed.parent.mkdir(exist_ok=True)
        nbformat.write(notebook, failed)
        status += f" (outputs so far in {failed})"
    return seconds, status, memory.peak


def cmd_run(args) -> int:
    """Run notebooks headless and print a summary table; exit 1 if any failed."""
    results, times = [], {}
    for path in find_notebooks(args.paths):
        seconds, status, peak = run_notebook(path, args.profile, args.inplace)
        print(f"{_shown(path)}: {seconds:.0f} s, peak memory {peak / 1e9:.1f} GB, {status}",
              flush=True)
        results.append(status == "ok")
        times[_shown(path)] = {args.profile: _measured(seconds, status, peak)}
    print(f"{sum(results)} passed, {len(results) - sum(results)} failed")
    if args.record and all(results):
        print(f"recorded the times in {record_times(args.record, times)}")
    return 0 if all(results) else 1


def _shown(path: Path) -> str:
    return str(path.relative_to(ROOT) if path.is_absolute() else path)


def _measured(seconds: float, status: str, peak: int = 0) -> str:
    """A cell of the notebooks table: "6.9 min, 5.8 GB" (the time, and the peak memory when
    it was measured), or the error."""
    if status != "ok":
        return status
    return f"{seconds / 60:.1f} min" + (f", {peak / 1e9:.1f} GB" if peak else "")


def notebook_table(text: str) -> dict[str, dict[str, str]]:
    """docs/benchmarks.md's notebooks table as {notebook: {profile: cell}} ("6.9 min, 5.8 GB"),
    leaving out cells never measured ("-"); {} when the file has no such table."""
    import re

    from . import benchmarks
    start, end = benchmarks.section_markers("notebooks")
    if start not in text or end not in text:
        return {}
    lines = text[text.index(start):text.index(end)].splitlines()
    header = next((line for line in lines if line.startswith("| notebook")), "")
    columns = [c.strip() for c in header.strip("|").split("|")][1:]
    table = {}
    for line in lines:
        if re.match(r"\| \S+\.ipynb \|", line):
            cells = [c.strip() for c in line.strip("|").split("|")]
            table[cells[0]] = {p: v for p, v in zip(columns, cells[1:]) if v and v != "-"}
    return table


def notebook_peaks(text: str, profile: str) -> dict[str, float]:
    """From docs/benchmarks.md's notebooks table: {notebook: peak memory in GB} for `profile`,
    for the notebooks whose peak was measured."""
    import re
    peaks = {}
    for notebook, row in notebook_table(text).items():
        found = re.search(r"([\d.]+) GB", row.get(profile, ""))
        if found:
            peaks[notebook] = float(found.group(1))
    return peaks


def memory_warnings(peaks: dict[str, float], total_gb: float, profile: str) -> list[str]:
    """A line for each notebook whose measured peak does not fit in this machine's memory."""
    return [f"WARNING: {nb} peaked at {gb:.1f} GB in the {profile} profile (docs/benchmarks.md); "
            f"this machine has {total_gb:.1f} GB: it will swap or be killed. Run it in a smaller "
            "profile (COURSE_PROFILE=smoke) or on Colab"
            for nb, gb in sorted(peaks.items()) if gb > 0.9 * total_gb]


def cmd_bench(args) -> int:
    """Time every notebook in each profile; write the times into the "notebooks" section."""
    times: dict[str, dict[str, str]] = {}
    for path in find_notebooks(args.paths):
        for profile in args.profiles:
            seconds, status, peak = run_notebook(path, profile, inplace=False)
            times.setdefault(_shown(path), {})[profile] = _measured(seconds, status, peak)
            print(f"{path.name} [{profile}]: {times[_shown(path)][profile]}", flush=True)
    print(f"wrote the notebooks section of {record_times(args.out, times)}")
    return 0


PROFILE_COLUMNS = ("smoke", "cpu", "gpu")


def record_times(out: str | Path, times: dict[str, dict[str, str]]) -> Path:
    """Merge notebook times into the "notebooks" table of `out`: the cells measured now
    replace the old ones, every other notebook and profile keeps its earlier figure."""
    from . import benchmarks
    out = Path(out)
    table = notebook_table(out.read_text(encoding="utf-8") if out.exists() else "")
    for notebook, measured in times.items():
        table.setdefault(notebook, {}).update(measured)
    profiles = [p for p in PROFILE_COLUMNS if any(p in row for row in table.values())]
    machine = benchmarks.machine()
    body = (f"## Notebook wall time (updated {time.strftime('%Y-%m-%d')}, {machine})\n\n"
            "Written by `course bench` and `course run --record`; gpu times come from a GPU "
            "machine.\n\n| notebook | " + " | ".join(profiles) + " |\n|---|"
            + "---|" * len(profiles) + "\n"
            + "\n".join(f"| {name} | " + " | ".join(row.get(p, "-") for p in profiles) + " |"
                        for name, row in sorted(table.items())) + "\n")
    return benchmarks.write_section(out, "notebooks", body)


def load_course_tokenizer():
    """The course model's tokenizer alone, from the offline cache when it is there (fast)."""
    from . import models
    cached = models.offline_cache_path(models.resolve(None))
    if (cached / "tokenizer_config.json").exists():
        from transformers import AutoTokenizer
        return AutoTokenizer.from_pretrained(cached)
    return models.load_model(show=False)[1]


def cmd_validate(args) -> int:
    """Print the validation report of a data file; exit 0 ok, 1 errors, 2 unreadable."""
    from . import data
    try:
        tokenizer = load_course_tokenizer() if args.max_length is not None else None
        report = data.validate(args.file, tokenizer=tokenizer, max_length=args.max_length)
    except data.DataError as err:
        print(f"course validate: {err}", file=sys.stderr)
        return 2
    print(report)
    return 0 if report.ok else 1


def cmd_results(args) -> int:
    """Print the results table, write it into the README, or check the README's copy."""
    from . import results
    recorded = results.load(args.file)
    if not args.readme:
        print(results.readme_table(recorded))
        return 0
    readme = Path(args.readme)
    if not args.check:
        results.write_readme_table(readme, args.file)
        print(f"wrote the results table of {args.file} into {readme}")
        return 0
    if results.readme_with_table(readme.read_text(encoding="utf-8"), recorded) != \
            readme.read_text(encoding="utf-8"):
        print(f"{readme}: its results table differs from {args.file}; regenerate it with "
              f"`course results --readme {readme}`")
        return 1
    print(f"{readme}: results table matches {args.file}")
    return 0


def cmd_runs(args) -> int:
    """Compute the course's runs (or list them) and print what each took."""
    from . import runs
    if args.list:
        print(f"{runs.LADDER:30} {'tickets':8} {'':5} used by 00, 06 (every cheaper rung, "
              f"answered on val and test)")
        for name, recipe in runs.COURSE_RUNS.items():
            print(f"{name:30} {recipe.dataset:8} {'LoRA' if recipe.lora else 'full':5} "
                  f"used by {recipe.used_by}")
        print(f"{runs.VOICE:30} {'voice':8} {'LoRA':5} used by 04 (the prompt rung, the SFT model's "
              f"own mistakes and the DPO sweep of {len(runs.VOICE_DPO_GRID)} runs)")
        print(f"{runs.STUDENT:30} {'tickets':8} {'full':5} used by 05 ({runs.TEACHER} merged labels "
              f"the unlabeled pool; its {runs.STUDENT_LAYERS}-layer cut that drifts least "
              f"on validation learns from it)")
        return 0
    unknown = [n for n in args.names
               if n not in runs.COURSE_RUNS and n not in (runs.LADDER, runs.VOICE, runs.STUDENT)]
    if unknown:
        print(f"course runs: no run {', '.join(map(repr, unknown))}; `course runs --list` "
              f"lists them", file=sys.stderr)
        return 2
    start = time.time()
    report = runs.course_runs(args.names or None, profile=args.profile)
    print(f"\n{'run':30} {'':8} {'steps':>5} {'best':>5} {'train s':>8} {'total s':>8}")
    for row in report:
        how = {True: "cached", False: "trained", None: "answers"}[row["cached"]]
        print(f"{row['name']:30} {how:8} {row['steps'] or '-':>5} {row['best_step'] or '-':>5} "
              f"{row['train_seconds']:8.0f} {row['seconds']:8.0f}")
    print(f"all runs ({args.profile} profile): {(time.time() - start) / 60:.1f} min")
    return 0


def cmd_train(args) -> int:
    """Train what a config file says (configs/train/): the entry point `accelerate launch`
    and torchrun call, so one recipe runs on one process or many."""
    import subprocess
    from . import data, scale
    try:
        config = scale.read_train_config(args.config)
        if args.processes > 1:  # start the launcher, which runs this command in each process
            scale.check_processes(config, args.processes, args.config)
            command = scale.launch_command(args.config, args.processes, args.strategy, args.output)
            print("launching:", " ".join(command), flush=True)
            done = subprocess.run(command)
            return 0 if done.returncode == 0 else (done.returncode if done.returncode in (1, 2) else 1)
        scale.train_from_config(config, args.output)
    except data.DataError as error:
        print(f"course train: {error}", file=sys.stderr)
        return 1
    except (scale.ConfigError, ValueError) as error:
        print(f"course train: {error}", file=sys.stderr)
        return 2
    return 0


def cmd_tune(args) -> int:
    """Run chapter 09's steps on the learner's file; exit 0 done, 1 data problems, 2 bad
    file or arguments, 130 when interrupted (the checkpoints stay: --resume continues)."""
    from . import tune
    if args.budget_minutes is not None and not args.budget_minutes > 0:
        print("course tune: --budget-minutes must be above 0", file=sys.stderr)
        return 2
    options = tune.Options(args.file, args.out, args.input_col, args.output_col, args.system,
                           args.group_col, args.model, args.profile, args.name, args.registry,
                           args.resume, args.budget_minutes, args.merge, args.seed)
    try:
        outcome = tune.run(options)
    except tune.TaskError as error:
        print(f"course tune: {error}", file=sys.stderr)
        return 2
    except tune.DataProblems as error:
        print(f"course tune: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"\ncourse tune: interrupted. Checkpoints of the training so far are in "
              f"{Path(args.out) / 'checkpoints'}; run the same command with --resume to "
              f"continue from the last one.", file=sys.stderr)
        return 130
    print(f"\n{outcome.decision.line}")
    for name, path in outcome.files.items():
        print(f"  {name:13} {path}")
    print(f"serve it: {outcome.registered.serve_command()}")
    return 0


def _stop_on_signals() -> None:
    """Ctrl-C (SIGINT) and SIGTERM stop the server cleanly, even when this process was started
    with SIGINT ignored (a background job of a script, a test runner's worker)."""
    import signal
    import threading
    if threading.current_thread() is not threading.main_thread():
        return  # called in-process from a thread: signals belong to the main thread

    def interrupt(signum, frame):
        raise KeyboardInterrupt
    signal.signal(signal.SIGINT, interrupt)
    signal.signal(signal.SIGTERM, interrupt)


def cmd_serve(args) -> int:
    """Serve the live version of a registry name (an adapter, or the prompt that beat it)
    with the course's server until Ctrl-C."""
    from . import models, serve
    from .registry import adapter_metadata
    registry = serve.Registry(args.registry)
    try:
        folder = registry.path(args.name)
    except (ValueError, KeyError, OSError) as error:
        print(f"course serve: {error}", file=sys.stderr)
        return 2
    metadata = adapter_metadata(folder)
    base, tokenizer = models.load_model(args.model or metadata.get("base_model"))
    adapters = {}
    if metadata.get("kind") == "prompt":
        print(f"{args.name} v{registry.live(args.name)} is a prompt (the fine-tune did not beat "
              f"it): serving the base model; send its system prompt with each request:\n"
              f"{metadata.get('prompt')}")
        model = base
    else:
        model = serve.load_adapters(base, {args.name: folder})
        adapters = {args.name: args.name}
    _stop_on_signals()
    server = serve.start(model, tokenizer, adapters or None, port=args.port)
    print(f"serving {', '.join(server.models)} at {server.url}/v1/chat/completions "
          f"(OpenAI-compatible; Ctrl-C stops)", flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        server.stop()
        print("stopped")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `course` command."""
    parser = argparse.ArgumentParser(prog="course", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("doctor", help="check this machine").set_defaults(func=cmd_doctor)
    fetch = sub.add_parser("fetch-model", help="cache the offline model")
    fetch.add_argument("--name", default=None)
    fetch.set_defaults(func=cmd_fetch_model)
    run = sub.add_parser("run", help="execute notebooks headless")
    run.add_argument("paths", nargs="*")
    run.add_argument("--profile", default="smoke", choices=["smoke", "cpu", "gpu"])
    run.add_argument("--inplace", action="store_true", help="save the executed outputs")
    run.add_argument("--record", metavar="MD", default=None,
                     help="also put the times into the notebooks table of this file "
                          "(docs/benchmarks.md)")
    run.set_defaults(func=cmd_run)
    bench = sub.add_parser("bench", help="time notebooks per profile")
    bench.add_argument("paths", nargs="*")
    bench.add_argument("--profiles", nargs="+", default=["smoke", "cpu"])
    bench.add_argument("--out", default=str(ROOT / "docs" / "benchmarks.md"))
    bench.set_defaults(func=cmd_bench)
    check = sub.add_parser("validate", help="check a chat JSONL data file")
    check.add_argument("file")
    check.add_argument("--max-length", type=int, default=None,
                       help="warn about rows longer than this many tokens (loads the tokenizer)")
    check.set_defaults(func=cmd_validate)
    table = sub.add_parser("results", help="the README's results table from docs/results.json")
    table.add_argument("--file", default=str(ROOT / "docs" / "results.json"))
    table.add_argument("--readme", default=None, help="write the table into this Markdown file")
    table.add_argument("--check", action="store_true",
                       help="with --readme: exit 1 when its table is not the file's")
    table.set_defaults(func=cmd_results)
    train_runs = sub.add_parser("runs", help="compute the course's cached runs (make runs)")
    train_runs.add_argument("names", nargs="*", help="only these runs (default: all)")
    train_runs.add_argument("--profile", default="cpu", choices=["smoke", "cpu", "gpu"])
    train_runs.add_argument("--list", action="store_true", help="list the runs and stop")
    train_runs.set_defaults(func=cmd_runs)
    fit = sub.add_parser("train", help="train what a config file says, on 1 or N processes "
                                       "(accelerate launch ... -m course_utils.cli train)")
    fit.add_argument("--config", required=True, help="a YAML training config (configs/train/): "
                     "SFT, or DPO with method: dpo")
    fit.add_argument("--output", default=None, help="save here instead of the config's output")
    fit.add_argument("--processes", type=int, default=1,
                     help="train on this many processes (accelerate launch, one per GPU or CPU core)")
    fit.add_argument("--strategy", default="ddp", choices=["ddp", "fsdp"],
                     help="with --processes: data parallel, or FSDP2 sharding (configs/accelerate/)")
    fit.set_defaults(func=cmd_train)
    tune = sub.add_parser("tune", help="your own task: from a CSV/TSV/JSONL file to a "
                                       "decision, a report and a served adapter (chapter 09)")
    tune.add_argument("file", help="chat JSONL, prompt/completion JSONL, or CSV/TSV")
    tune.add_argument("--out", required=True, help="folder for the split, the adapter and the report")
    tune.add_argument("--input-col", default=None, help="CSV/TSV: the column with each input")
    tune.add_argument("--output-col", default=None, help="CSV/TSV: the column with the answer wanted")
    tune.add_argument("--system", default=None, help="the instruction (a system prompt)")
    tune.add_argument("--group-col", default=None,
                      help="rows with the same value here stay in one split (customer, document, ...)")
    tune.add_argument("--model", default=None, help="base model: a course model name, hub id or folder")
    tune.add_argument("--profile", default=None, choices=["smoke", "cpu", "gpu"],
                      help="default: gpu with CUDA, else cpu")
    tune.add_argument("--name", default=None, help="registry name (default: from the file name)")
    tune.add_argument("--registry", default=None, help="registry folder (default: $COURSE_CACHE/registry)")
    tune.add_argument("--resume", action="store_true", help="continue an interrupted training")
    tune.add_argument("--budget-minutes", type=float, default=None, help="cap the training time")
    tune.add_argument("--merge", action="store_true", help="also save a merged copy (out/merged)")
    tune.add_argument("--seed", type=int, default=0, help="the split's seed")
    tune.set_defaults(func=cmd_tune)
    served = sub.add_parser("serve", help="serve a registry name's live version (chapter 07's server)")
    served.add_argument("--name", required=True)
    served.add_argument("--registry", default=None, help="default: $COURSE_CACHE/registry")
    served.add_argument("--model", default=None, help="base model (default: the adapter's)")
    served.add_argument("--port", type=int, default=8000)
    served.set_defaults(func=cmd_serve)
    args = parser.parse_args(argv)
    if getattr(args, "func", None) is cmd_serve and args.registry is None:
        from .tune import registry_root
        args.registry = str(registry_root())
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
