"""Plots shared by the chapters (matplotlib only).

Introduced in notebooks/00_decide.ipynb.
"""

from __future__ import annotations


def compare_rates(results: dict[str, dict], title: str = "", ax=None):
    """Grouped bars of rates with 95% interval whiskers: results[method][metric] = Metric."""
    import matplotlib.pyplot as plt
    import numpy as np

    methods = list(results)
    metrics = list(dict.fromkeys(m for r in results.values() for m in r))
    if ax is None:
        _, ax = plt.subplots(figsize=(1.8 + 1.6 * len(metrics), 3.2))
    width = 0.8 / len(methods)
    for i, method in enumerate(methods):
        xs = np.arange(len(metrics)) + (i - (len(methods) - 1) / 2) * width
        got = [results[method].get(m) for m in metrics]
        values = [g.value if g else np.nan for g in got]
        errors = [[g.value - g.low if g else 0 for g in got], [g.high - g.value if g else 0 for g in got]]
        ax.bar(xs, values, width, yerr=errors, capsize=3, label=method)
    ax.set_xticks(range(len(metrics)), metrics)
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("share of held-out rows")
    ax.set_title(title)
    ax.legend(fontsize="small", loc="upper left", bbox_to_anchor=(1, 1))
    ax.figure.tight_layout()
    return ax


def loss_curves(runs: dict, title: str = "", ax=None, mark_best: bool = True):
    """Train (solid) and validation (dashed, dots) loss per step for {label: TrainResult};
    with mark_best, a star where each run's validation loss is lowest: the step to stop at."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(6.4, 3.4))
    for i, (label, run) in enumerate(runs.items()):
        color = f"C{i}"
        steps, losses = run.losses("train_loss")
        ax.plot(steps, losses, color=color, alpha=0.8, label=f"{label}: train")
        steps, losses = run.losses("val_loss")
        if steps:
            ax.plot(steps, losses, "o--", color=color, label=f"{label}: validation")
            if mark_best:
                best = min(range(len(losses)), key=losses.__getitem__)
                ax.plot(steps[best], losses[best], "*", color="black", markersize=14, zorder=5)
                ax.annotate(f"lowest validation loss\n(step {steps[best]})",
                            (steps[best], losses[best]), textcoords="offset points",
                            xytext=(8, 12), fontsize="small")
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("loss (mean cross-entropy, answer tokens)")
    ax.set_title(title)
    ax.legend(fontsize="small")
    ax.figure.tight_layout()
    return ax
