"""Loss curves of a fairseq-signals training run, read back from its log.

fairseq-signals reports training progress through the logger of
``fairseq_signals/logging/progress_bar.py``, renamed for each line to its tag: ``train_inner``
every ``common.log_interval`` updates, ``train`` at the end of each epoch and the subset name
(``valid``) after each validation. Each line comes in one of the ``common.log_format``\\ s:

* ``json``: ``{"epoch": 1, "update": 0.208, "loss": "0.5804", ..., "num_updates": "5", ...}``;
  end-of-epoch and validation lines prefix every key with the tag (``"valid_loss"``);
* ``simple``: ``epoch 001:      5 / 24 loss=0.5804, loss_masked=0.5804, ..., num_updates=5, ...``
  for ``train_inner``, and ``epoch 001 | valid on 'valid' subset | loss 0.228 | ... |
  num_updates 24`` (pipes) for ``train`` and validation;
* ``tqdm`` (the default on a terminal): only the pipe lines; ``train_inner`` goes to the bar.

A line may carry a logging prefix: Hydra's ``[time][tag][INFO] - `` (``hydra_train.log`` in
``hydra.run.dir``, the console), fairseq's ``time | INFO | tag | `` (``common.reset_logging``), or
none (``common.log_file``, which repeats each line once per epoch started so far). Without a
prefix the tag is recovered from the line itself. Every other line is ignored.

:func:`parse_log_text` turns such a log into one :class:`Series` per tag, indexed by update:
the loss and every other term the criterion logged (``loss_masked``, ``loss_visible``, ``nce``,
...); the trainer's bookkeeping (``lr``, ``gnorm``, ``ups``, ``wall``, ...) is left out. A
duplicated line overwrites its twin; a line whose update is below one seen before starts a new
run (a restart from scratch in the same directory), so points of the older run from that update
on are dropped, while a resumed run simply continues the curve. :func:`plot_loss_curves` draws
one panel per term against the update, ``train_inner`` as a line, epoch averages and
validations as markers.

Example::

    curves = read_log("runs/demo/pretrain/loss_curve.log")
    curves.series["train_inner"].updates        # [5, 10, 15, 20]
    curves.series["train_inner"].values["loss"]  # [0.5804, 0.3878, 0.2959, 0.2501]
    plot_loss_curves(curves, "loss_curve.png")
"""

from __future__ import annotations

import json
import math
import os
import re
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Tuple

INNER = "train_inner"
EPOCH = "train"

BOOKKEEPING = frozenset(
    {
        "epoch",
        "update",
        "num_updates",
        "lr",
        "gnorm",
        "clip",
        "loss_scale",
        "ups",
        "wps",
        "wpb",
        "bsz",
        "train_wall",
        "wall",
        "gb_free",
        "nsignals",
        "nsentences",
        "ntokens",
        "sample_size",
    }
)
"""Keys the trainer (not the criterion) logs; never plotted."""

_HYDRA = re.compile(r"^\[[^\]]*\]\[(?P<name>[^\]]+)\]\[[A-Z]+\] - (?P<msg>.*)$")
_FAIRSEQ = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(?:,\d+)? \| [A-Z]+ \| (?P<name>[^|]+?) \| (?P<msg>.*)$")
_INNER = re.compile(r"^epoch (?P<epoch>\d+):\s+\d+ / \d+ (?P<stats>.*)$")
_VALID_ON = re.compile(r"^valid on '(?P<subset>[^']*)' subset$")
_TQDM_CONTROL = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


class LossLogError(ValueError):
    """The log holds no training progress line that could be read."""


@dataclass
class Series:
    """One tag's points: ``updates`` (N,) and, per term, its values (N,) (None where not logged)."""

    updates: List[int] = field(default_factory=list)
    values: Dict[str, List[Optional[float]]] = field(default_factory=dict)

    def to_dict(self) -> Dict[str, object]:
        return {"num_updates": list(self.updates), **{k: list(v) for k, v in self.values.items()}}


@dataclass
class LossCurves:
    """The parsed log: one :class:`Series` per tag (``train_inner``, ``train``, ``valid``, ...)."""

    series: Dict[str, Series]
    terms: List[str]
    formats: List[str]
    source: Optional[str] = None

    def to_dict(self) -> Dict[str, object]:
        return {
            "source": self.source,
            "formats": self.formats,
            "terms": self.terms,
            "series": {tag: s.to_dict() for tag, s in self.series.items()},
        }


def _number(text: object) -> Optional[float]:
    try:
        value = float(text)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


def _strip_tag(stats: Dict[str, object], tag: str) -> Dict[str, object]:
    prefix = tag + "_"
    return {k[len(prefix) :] if k.startswith(prefix) else k: v for k, v in stats.items()}


def _parse_json(msg: str, name: Optional[str]) -> Optional[Tuple[str, Dict[str, object], str]]:
    try:
        stats = json.loads(msg)
    except ValueError:
        return None
    if not isinstance(stats, dict):
        return None
    if name is None:
        if "num_updates" in stats:
            name = INNER
        else:
            name = next((k[: -len("_num_updates")] for k in stats if k.endswith("_num_updates")), None)
            if name is None:
                return None
    return name, (stats if name == INNER else _strip_tag(stats, name)), "json"


def _parse_simple(msg: str, name: Optional[str]) -> Optional[Tuple[str, Dict[str, object], str]]:
    inner = _INNER.match(msg)
    if inner is not None:
        pairs = [p.split("=", 1) for p in inner.group("stats").split(", ")]
        return name or INNER, {p[0]: p[1] for p in pairs if len(p) == 2}, "simple"
    parts = msg.split(" | ")
    if not parts[0].startswith("epoch ") and not _VALID_ON.match(parts[0]):
        return None
    tag = EPOCH
    stats: Dict[str, object] = {}
    for part in parts:
        valid_on = _VALID_ON.match(part)
        if valid_on is not None:
            tag = valid_on.group("subset")
        key, _, value = part.partition(" ")
        stats[key] = value
    return name or tag, stats, "pipes"


def parse_line(line: str) -> Optional[Tuple[str, int, Dict[str, float], str]]:
    """``(tag, update, numeric stats, format)`` of one progress line, or None for any other line.

    ``format`` is ``json``, ``simple`` (a ``train_inner`` line of key=value pairs) or ``pipes``
    (an epoch or validation summary of the simple and tqdm formats).
    """
    line = _TQDM_CONTROL.sub("", line).strip()
    name: Optional[str] = None
    for prefix in (_HYDRA, _FAIRSEQ):
        m = prefix.match(line)
        if m is not None:
            name, line = m.group("name").strip(), m.group("msg").strip()
            break
    parsed = _parse_json(line, name) if line.startswith("{") else _parse_simple(line, name)
    if parsed is None:
        return None
    tag, stats, fmt = parsed
    update = _number(stats.get("num_updates"))
    if update is None:
        return None
    numbers = {k: v for k, v in ((k, _number(v)) for k, v in stats.items()) if v is not None}
    return tag, int(update), numbers, fmt


def _is_term(key: str) -> bool:
    return key not in BOOKKEEPING and not key.startswith(("lr_", "best_"))


def parse_log_text(text: str, source: Optional[str] = None) -> LossCurves:
    """Parse a fairseq-signals training log (any of the formats above) into loss series.

    Raises:
        LossLogError: the text is empty or holds no progress line with ``num_updates``.
    """
    where = f" in {source}" if source else ""
    if not text.strip():
        raise LossLogError(f"the training log{where} is empty")
    points: Dict[str, Dict[int, Dict[str, float]]] = {}
    last: Dict[str, int] = {}
    formats: List[str] = []
    for line in text.splitlines():
        parsed = parse_line(line)
        if parsed is None:
            continue
        tag, update, stats, fmt = parsed
        if fmt not in formats:
            formats.append(fmt)
        if update < last.get(tag, update):  # a new run from an earlier update: drop the old run's tail
            for other in points.values():
                for u in [u for u in other if u >= update]:
                    del other[u]
            last = {t: max(p) for t, p in points.items() if p}
        last[tag] = update
        points.setdefault(tag, {})[update] = stats
    points = {tag: p for tag, p in points.items() if p}
    if not points:
        raise LossLogError(
            f"no training progress line (train_inner/train/valid with num_updates) found{where}; "
            "fairseq-signals writes them with common.log_format=json or simple (tqdm logs epoch summaries only)"
        )
    terms: List[str] = []
    for p in points.values():
        for stats in p.values():
            terms += [k for k in stats if _is_term(k) and k not in terms]
    if not terms:
        raise LossLogError(
            f"the progress lines{where} log no loss term, only the trainer's bookkeeping (lr, gnorm, ...)"
        )
    terms = [t for t in terms if t == "loss"] + [t for t in terms if t != "loss"]
    series = {}
    for tag, p in points.items():
        updates = sorted(p)
        values = {t: [p[u].get(t) for u in updates] for t in terms}
        series[tag] = Series(updates, {t: v for t, v in values.items() if any(x is not None for x in v)})
    return LossCurves(series, terms, formats, source)


def read_log(path: str) -> LossCurves:
    """Parse the training log at ``path`` (see :func:`parse_log_text`)."""
    if not os.path.isfile(path):
        raise LossLogError(f"no training log at {path}")
    with open(path, encoding="utf-8", errors="replace") as f:
        return parse_log_text(f.read(), source=path)


def _tag_order(curves: LossCurves) -> List[str]:
    return sorted(curves.series, key=lambda t: (t != INNER, t != EPOCH, t))


def plot_loss_curves(curves: LossCurves, path: str, title: str = "") -> str:
    """One panel per term, loss vs update: ``train_inner`` as a line (the epoch averages as a line
    where it is missing), epoch averages as squares, each validation subset as circles. Writes a PNG.

    Returns:
        ``path``.
    """
    from matplotlib.figure import Figure  # the object-oriented API renders with Agg, no pyplot

    terms = curves.terms
    ncols = min(3, len(terms))
    nrows = math.ceil(len(terms) / ncols)
    fig = Figure(figsize=(4.2 * ncols, 3.0 * nrows + 0.6), dpi=100)
    axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
    has_inner = INNER in curves.series
    for ax, term in zip(axes, terms):
        for i, tag in enumerate(_tag_order(curves)):
            s = curves.series[tag]
            if term not in s.values:
                continue
            x, y = zip(*[(u, v) for u, v in zip(s.updates, s.values[term]) if v is not None])
            if tag == INNER or (tag == EPOCH and not has_inner):
                ax.plot(x, y, "-", lw=1.4, marker="." if len(x) < 3 else None, color="tab:blue", label="train")
            elif tag == EPOCH:
                ax.plot(x, y, "s", ms=4, color="tab:blue", alpha=0.5, label="train (epoch mean)")
            else:
                ax.plot(x, y, "o--", ms=5, lw=0.8, color=f"C{i % 10 + 1}", label=tag)
        ax.set_title(term, fontsize="medium")
        ax.set_xlabel("update")
        ax.grid(alpha=0.3)
        ax.legend(fontsize="small")
    for ax in axes[len(terms) :]:
        ax.set_visible(False)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    fig.savefig(path, format="png")
    return path


def write_loss_curve(log: str, png: str, json_path: Optional[str] = None, title: str = "") -> LossCurves:
    """Read ``log``, draw ``png`` and write the series to ``json_path`` (default: ``png`` with .json)."""
    curves = read_log(log)
    plot_loss_curves(curves, png, title=title)
    json_path = json_path or os.path.splitext(png)[0] + ".json"
    with open(json_path, "w", encoding="utf-8") as f:
        json.dump(curves.to_dict(), f, indent=1)
    return curves
