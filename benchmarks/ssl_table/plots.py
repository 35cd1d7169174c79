"""Plots of the SSL table and the training-log parsing they need (matplotlib, no framework).

* :func:`plot_label_curves`: a metric against the number of labels, one line per method
  (pretrained solid, random init dashed, same colour), 95% CI as a band.
* :func:`plot_loss_curves`: each method's pretraining loss against updates.
"""

from __future__ import annotations

import math
import re
from typing import Dict, List, Mapping, Optional, Sequence

_PAIR = re.compile(r"(?:^|[\s,|{])\"?([A-Za-z_][\w]*)\"?\s*[=:]\s*\"?(-?[\d.]+(?:e[-+]?\d+)?)\"?")


def parse_train_log(text: str) -> List[Dict[str, float]]:
    """Training records (``num_updates`` and every ``key=value`` number) of a fairseq-signals log.

    Reads the ``simple`` format (``... loss=0.81, ..., num_updates=20, ...``) and the ``json``
    format; validation lines (keys prefixed ``valid_``) and lines without ``num_updates`` are left out.

    >>> parse_train_log("epoch 001: 10 / 99 loss=1.5, num_updates=10, wall=3")[0]["loss"]
    1.5
    """
    records: List[Dict[str, float]] = []
    for line in text.splitlines():
        if "num_updates" not in line or "valid_" in line:
            continue
        values = {
            k.replace("train_inner_", "").replace("train_", "", 1) if k.startswith("train_") else k: float(v)
            for k, v in _PAIR.findall(line)
        }
        if "num_updates" in values and "loss" in values:
            records.append(values)
    return records


def seconds_per_update(records: Sequence[Mapping[str, float]]) -> float:
    """Wall seconds per update between the first and last logged records (``1 / ups`` as fallback)."""
    with_wall = [r for r in records if "wall" in r]
    if len(with_wall) >= 2 and with_wall[-1]["num_updates"] > with_wall[0]["num_updates"]:
        first, last = with_wall[0], with_wall[-1]
        if last["wall"] > first["wall"]:  # fairseq logs whole seconds: a fast run may show no difference
            return (last["wall"] - first["wall"]) / (last["num_updates"] - first["num_updates"])
    ups = [r["ups"] for r in records if r.get("ups")]
    if ups:
        return 1.0 / ups[-1]
    raise ValueError("no timing in the training log (need wall or ups)")


def _label_x(setting: str, n_all: float) -> Optional[float]:
    """``n=10`` -> 10; ``n=all`` -> ``n_all``."""
    value = setting.split("=", 1)[-1]
    if value == "all":
        return n_all
    try:
        return float(value)
    except ValueError:
        return None


def plot_label_curves(
    curves: Mapping[str, Mapping[str, Mapping[str, Mapping[str, object]]]],
    path: str,
    metric: str,
    title: str,
    n_all: float = 1000.0,
) -> str:
    """Write a PNG of ``metric`` against labels.

    Args:
        curves: ``{method: {arm: {setting ("n=10", "n=all"): {metric: {"mean", "ci_low", "ci_high"}}}}}``;
            arm ``pretrained`` is drawn solid, any other (``random``) dashed.
        n_all: where ``n=all`` is drawn on the log x axis (labelled "all").
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for i, (method, arms) in enumerate(curves.items()):
        for arm, settings in arms.items():
            points = sorted(
                (x, cell[metric])
                for s, cell in settings.items()
                if metric in cell and (x := _label_x(s, n_all)) is not None
            )
            points = [(x, c) for x, c in points if c.get("mean") is not None]
            if not points:
                continue
            xs = [x for x, _ in points]
            mean = [c["mean"] for _, c in points]
            low = [c["ci_low"] if c.get("ci_low") is not None else c["mean"] for _, c in points]
            high = [c["ci_high"] if c.get("ci_high") is not None else c["mean"] for _, c in points]
            style = "-" if arm == "pretrained" else "--"
            colour = colours[i % len(colours)]
            ax.plot(xs, mean, style, marker="o", color=colour, label=f"{method} ({arm})")
            ax.fill_between(xs, low, high, color=colour, alpha=0.15 if arm == "pretrained" else 0.07)
    ax.set_xscale("log")
    ticks = sorted(
        {
            x
            for arms in curves.values()
            for settings in arms.values()
            for s in settings
            if (x := _label_x(s, n_all)) is not None
        }
    )
    ax.set_xticks(ticks)
    ax.set_xticklabels(["all" if t == n_all else f"{t:g}" for t in ticks])
    ax.set_xlabel("labelled training windows (per class; 'all' = every training window)")
    ax.set_ylabel(metric)
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="best")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def plot_loss_curves(curves: Mapping[str, Sequence[Mapping[str, float]]], path: str) -> str:
    """Write a PNG with one panel per method: training ``loss`` against ``num_updates``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(curves) or ["(none)"]
    cols = min(3, len(names))
    rows = math.ceil(len(names) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 3.0 * rows), squeeze=False)
    for ax, name in zip(axes.flat, names):
        records = curves.get(name, [])
        ax.plot([r["num_updates"] for r in records], [r["loss"] for r in records], marker=".")
        ax.set_title(name, fontsize=9)
        ax.set_xlabel("update")
        ax.set_ylabel("training loss")
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(names) :]:
        ax.axis("off")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
