"""The report of `course tune` (chapter 09): report.md, a self-contained report.html and
summary.json, all written from one list of blocks so the three always say the same.

A block is ("h2", text), ("p", text), ("pre", text), ("table", header, rows) or
("figure", png bytes, caption). The HTML embeds the figure as a data: URL (no file beside
it, no script, no network); the Markdown links the PNG written next to it.
"""

from __future__ import annotations

import base64
import html
import io
import json
from datetime import datetime, timezone
from pathlib import Path

from . import data, evals, prompts

SAMPLES = 3  # wins and losses shown side by side
LOCAL = ("Everything in this report was computed on this machine; no example, answer or "
         "model left it.")


def _cut(text: str, limit: int = 300) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def curve_png(history: list[dict], best_step: int | None) -> bytes | None:
    """The training and validation loss curves as a PNG (None without validation points)."""
    from .train import series
    steps, val = series(history, "val_loss")
    if not steps:
        return None
    import matplotlib
    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(6, 3.2))
    train_steps, train_loss = series(history, "train_loss")
    if train_steps:
        ax.plot(train_steps, train_loss, label="training loss", alpha=0.6)
    ax.plot(steps, val, marker="o", label="validation loss")
    if best_step:
        ax.axvline(best_step, color="grey", linestyle=":", label=f"kept: step {best_step}")
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    ax.legend()
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110)
    plt.close(fig)
    return buffer.getvalue()


def _per_label(outcome) -> tuple[list[str], list[list[str]]]:
    """Short labels: the best rung and the fine-tune on the test rows of each reference label
    (JSON answers show their fields in the test table instead)."""
    prompt, tuned = outcome.decision.prompt, outcome.decision.tuned
    if prompt.kind != "label":
        return [], []
    labels: dict[str, list[int]] = {}
    for i, row in enumerate(outcome.test_rows):
        labels.setdefault(evals.reference(row), []).append(i)
    header = ["label (reference)", "rows", "best rung", "fine-tune"]
    rows = [[label, str(len(idx)), str(evals.rate([prompt.hits[i] for i in idx])),
             str(evals.rate([tuned.hits[i] for i in idx]))]
            for label, idx in sorted(labels.items(), key=lambda kv: -len(kv[1]))[:20]]
    return header, rows


def _samples(outcome) -> tuple[list[str], list[list[str]]]:
    prompt_answers = outcome.rungs.answers[outcome.rungs.best]["test"]
    prompt, tuned = outcome.decision.prompt.hits, outcome.decision.tuned.hits
    wins = [i for i, (a, b) in enumerate(zip(prompt, tuned)) if b and not a][:SAMPLES]
    losses = [i for i, (a, b) in enumerate(zip(prompt, tuned)) if a and not b][:SAMPLES]
    if outcome.decision.prompt.kind == "text":  # no right/wrong: the first rows, as they came
        wins, losses = list(range(min(2 * SAMPLES, len(tuned)))), []
    rows = []
    for label, found in (("fine-tune right, prompt wrong", wins),
                         ("prompt right, fine-tune wrong", losses)):
        for i in found:
            row = outcome.test_rows[i]
            rows.append([label if outcome.decision.prompt.kind != "text" else f"line {row['line']}",
                         _cut(prompts.user_text(row), 200), _cut(evals.reference(row)),
                         _cut(prompt_answers[i]), _cut(outcome.answers[i])])
    return ["", "input", "reference", "best rung", "fine-tune"], rows


def blocks(outcome) -> list[tuple]:
    """The report as blocks, in reading order."""
    from .tune import RUNG_NAMES
    o, d, split = outcome.options, outcome.decision, outcome.split
    task, tuned = outcome.task, outcome.tuned
    train_record = tuned.metadata["train"]
    out: list[tuple] = [
        ("h1", f"course tune: {Path(o.path).name}"),
        ("p", f"**Decision: {d.line}.**"),
        ("p", f"{LOCAL} Model {outcome.model_name} on {outcome.device}, profile "
              f"{outcome.profile}; written {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC."),
        ("h2", "The data"),
        ("p", f"{len(task.rows)} examples read from {task.source} ({task.format}), "
              f"{len(task.warnings)} warnings; answers scored as **{d.tuned.kind}** "
              f"({d.tuned.measure}). {len(split.removed)} duplicates removed (listed in "
              f"split/split.json). Split: {len(split.train)} train, {len(split.val)} validation, "
              f"{len(split.test)} test" + (f", whole {task.group_col!r} groups per split"
                                           if split.grouped else "") +
              f"; {len(split.leaks)} held-out rows repeat a training row."),
    ]
    if len(split.train) + len(split.val) + len(split.test) < 100:
        out.append(("p", "Fewer than 100 examples: the held-out slices are small, so the "
                         "intervals below are wide. Collect more before trusting a close call."))
    out += [("h2", "The cheaper rungs (validation)"),
            ("table", ["rung", d.prompt.measure],
             [[RUNG_NAMES[r] + (" (best)" if r == outcome.rungs.best else ""), str(s.metric)]
              for r, s in outcome.rungs.val.items()] +
             [[RUNG_NAMES[r], f"not run: {why}"] for r, why in outcome.rungs.skipped.items()])]
    stop = ("stopped by --budget-minutes at step " + str(tuned.budget_stop)
            if tuned.budget_stop is not None else
            "kept the best validation checkpoint, step " + str(train_record.get("best_step"))
            if train_record.get("best_step") else "no early stopping")
    lora = tuned.metadata["settings"].get("lora") or {}
    out += [("h2", "The fine-tune"),
            ("p", f"LoRA r {lora.get('r')}, alpha {lora.get('alpha')}, learning rate "
                  f"{tuned.metadata['settings']['learning_rate']:g}; {train_record['steps']} "
                  f"steps, {stop}; {train_record['seconds'] / 60:.1f} min at "
                  f"{train_record['tokens_per_second']:.0f} tokens/s, peak memory "
                  f"{train_record['peak_memory_mb']:,} MB" +
                  (" (an adapter from an earlier run with the same data and settings, "
                   "loaded)" if tuned.reused else "") + f". Before training: {tuned.estimate}.")]
    png = curve_png(tuned.history, train_record.get("best_step"))
    if png:
        out.append(("figure", png, "Training and validation loss"))
    t = d.test
    out += [("h2", "Test: the fine-tune against the best rung"),
            ("table", ["", RUNG_NAMES[d.best_rung], "fine-tune"],
             [[name, str(d.prompt.metrics[name]), str(d.tuned.metrics[name])]
              for name in d.prompt.metrics]),
            ("p", f"Paired on the same {t.n} test rows: only the fine-tune right on {t.only_b}, "
                  f"only the prompt right on {t.only_a}; difference {t.diff:+.0%} "
                  f"[{t.low:+.0%}, {t.high:+.0%}], McNemar exact p = {t.p_value:.3g}. The "
                  f"course keeps a fine-tune only when it has more hits and p < 0.05.")]
    if d.tuned.similarity:
        mean = lambda xs: sum(xs) / len(xs)  # noqa: E731
        low, high = evals.bootstrap_ci([b - a for a, b in zip(d.prompt.similarity,
                                                              d.tuned.similarity)])
        out.append(("p", f"Mean ROUGE-L: prompt {mean(d.prompt.similarity):.3f}, fine-tune "
                         f"{mean(d.tuned.similarity):.3f} (difference [{low:+.3f}, {high:+.3f}]). "
                         "Free text has no single right answer: ROUGE-L counts shared words in "
                         "order, not whether a reply is correct, kind or on-brand. Have people "
                         "(or a stronger model, checked against people) judge the samples below "
                         "before you decide."))
    header, rows = _per_label(outcome)
    if rows:
        out += [("h3", "Per label"), ("table", header, rows)]
    if d.fields:
        out += [("h3", "Per field, paired (A = the best rung, B = the fine-tune; Holm-corrected "
                       "for testing every field)"), ("pre", str(d.fields))]
    f = outcome.forgetting
    out += [("h2", "Forgetting"),
            ("p", f"General questions the base model answers (chapter 06's probes), asked "
                  f"before and after: {f}. Forgotten: {', '.join(map(str, f.forgotten[:10])) or 'none'}"
                  ". Serve the adapter for this task only, or mix general data into training "
                  "if the model must answer everything.")]
    header, rows = _samples(outcome)
    if rows:
        out += [("h2", "Samples"), ("table", header, rows)]
    r = outcome.registered
    live = "the adapter" if r.live == r.adapter_version else "the prompt"
    out += [("h2", "What was handed over"),
            ("p", f"Registry {r.root}, name {r.name!r}: the prompt as version {r.prompt_version}, "
                  f"the adapter as version {r.adapter_version}; **{live} is live**. The adapter "
                  f"is in {tuned.folder}" + (f", a merged copy in {outcome.merged}"
                                               if outcome.merged else "") + "."),
            ("pre", f"# the course's server (chapter 07), OpenAI-compatible, on this machine\n"
                    f"{r.serve_command()}\n\n"
                    f"# production, on a GPU: vLLM with the adapter per request\n"
                    f"vllm serve {tuned.metadata.get('base_model')} --enable-lora "
                    f"--max-lora-rank {max(16, lora.get('r') or 16)} "
                    f"--lora-modules {r.name}={tuned.folder}"),
            ("h2", "Time and memory"),
            ("table", ["step", "seconds"],
             [[step, f"{seconds:.1f}"] for step, seconds in outcome.seconds.items()] +
             [["peak memory of the process", f"{outcome.peak_memory_mb:,.0f} MB"]])]
    return out


def summary(outcome) -> dict:
    """The report's numbers for scripts (summary.json)."""
    d, t = outcome.decision, outcome.decision.test
    return {"decision": d.keep, "line": d.line, "kind": d.tuned.kind, "measure": d.tuned.measure,
            "best_rung": {"name": d.best_rung, "hits": t.a_hits, "n": t.n},
            "fine_tune": {"hits": t.b_hits, "n": t.n,
                          "interval": [d.tuned.metric.low, d.tuned.metric.high]},
            "p_value": t.p_value, "difference": [t.diff, t.low, t.high],
            "rungs_validation": {rung: {"hits": s.metric.hits, "n": s.metric.n}
                                 for rung, s in outcome.rungs.val.items()},
            "rows": {"read": len(outcome.task.rows), "duplicates": len(outcome.split.removed),
                     "train": len(outcome.split.train), "val": len(outcome.split.val),
                     "test": len(outcome.split.test), "leaks": len(outcome.split.leaks)},
            "forgetting": {"before": outcome.forgetting.before.hits,
                           "after": outcome.forgetting.after.hits,
                           "n": outcome.forgetting.before.n},
            "training": {k: outcome.tuned.metadata["train"][k] for k in
                         ("steps", "best_step", "seconds", "tokens_per_second", "peak_memory_mb")}
            | {"reused": outcome.tuned.reused, "budget_stop": outcome.tuned.budget_stop},
            "registry": {"root": str(outcome.registered.root), "name": outcome.registered.name,
                         "live": outcome.registered.live,
                         "adapter_version": outcome.registered.adapter_version,
                         "prompt_version": outcome.registered.prompt_version},
            "serve_command": outcome.registered.serve_command(),
            "seconds": {k: round(v, 1) for k, v in outcome.seconds.items()},
            "peak_memory_mb": round(outcome.peak_memory_mb),
            "model": outcome.model_name, "profile": outcome.profile, "device": outcome.device}



def _html_inline(text: str) -> str:
    parts = html.escape(text).split("**")
    return "".join(f"<strong>{p}</strong>" if i % 2 else p for i, p in enumerate(parts))


def to_markdown(items: list[tuple], png_name: str = "curve.png") -> str:
    lines: list[str] = []
    for item in items:
        kind = item[0]
        if kind in ("h1", "h2", "h3"):
            lines += ["#" * int(kind[1]) + " " + item[1], ""]
        elif kind == "p":
            lines += [item[1], ""]
        elif kind == "pre":
            lines += ["```", item[1], "```", ""]
        elif kind == "table":
            header, rows = item[1], item[2]
            cell = lambda c: str(c).replace("|", "\\|")  # noqa: E731
            lines += ["| " + " | ".join(map(cell, header)) + " |",
                      "|" + "---|" * len(header)]
            lines += ["| " + " | ".join(map(cell, row)) + " |" for row in rows] + [""]
        elif kind == "figure":
            lines += [f"![{item[2]}]({png_name})", ""]
    return "\n".join(lines)


STYLE = ("body{font-family:system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;"
         "line-height:1.45}table{border-collapse:collapse;margin:.5rem 0}td,th{border:1px solid "
         "#ccc;padding:.25rem .5rem;text-align:left;vertical-align:top}th{background:#f3f3f3}"
         "pre{background:#f6f6f6;padding:.6rem;overflow-x:auto}")


def to_html(items: list[tuple], title: str) -> str:
    body: list[str] = []
    for item in items:
        kind = item[0]
        if kind in ("h1", "h2", "h3"):
            body.append(f"<{kind}>{html.escape(item[1])}</{kind}>")
        elif kind == "p":
            body.append(f"<p>{_html_inline(item[1])}</p>")
        elif kind == "pre":
            body.append(f"<pre>{html.escape(item[1])}</pre>")
        elif kind == "table":
            head = "".join(f"<th>{html.escape(str(c))}</th>" for c in item[1])
            rows = "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in row)
                           + "</tr>" for row in item[2])
            body.append(f"<table><tr>{head}</tr>{rows}</table>")
        elif kind == "figure":
            encoded = base64.b64encode(item[1]).decode("ascii")
            body.append(f'<figure><img alt="{html.escape(item[2])}" '
                        f'src="data:image/png;base64,{encoded}"><figcaption>'
                        f"{html.escape(item[2])}</figcaption></figure>")
    return (f"<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>"
            f"{html.escape(title)}</title><style>{STYLE}</style></head><body>\n"
            + "\n".join(body) + "\n</body></html>\n")


def write(outcome, folder: str | Path) -> dict[str, Path]:
    """Write report.md (+ curve.png), report.html and summary.json into `folder`."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    items = blocks(outcome)
    files = {"report.md": folder / "report.md", "report.html": folder / "report.html",
             "summary.json": folder / "summary.json"}
    for item in items:
        if item[0] == "figure":
            (folder / "curve.png").write_bytes(item[1])
            files["curve.png"] = folder / "curve.png"
    files["report.md"].write_text(to_markdown(items), encoding="utf-8")
    files["report.html"].write_text(to_html(items, items[0][1]), encoding="utf-8")
    data.write_json_atomic(files["summary.json"], summary(outcome))
    answers = {"rungs": outcome.rungs.answers, "fine_tune": {"test": outcome.answers},
               "test_ids": [row["id"] for row in outcome.test_rows]}
    files["answers.json"] = folder / "answers.json"
    files["answers.json"].write_text(json.dumps(answers, indent=1) + "\n", encoding="utf-8")
    return files
