"""Result files of the evaluation protocols: ``results.json`` and ``results.md``.

``results.json``::

    {"meta": {...}, "results": {SETTING: {METRIC: {"mean", "ci_low", "ci_high", "values"}}}}

where a ``SETTING`` (e.g. ``"n=10"``) may also hold a nested group of settings
(``{"pretrained": {"n=10": {...}}}``) and NaN is written as ``null``.
``results.md`` lists the meta (command, seeds, split, checkpoint and its sha256, CI
kind) above a table with one row per setting (nested names joined by ``/``) and one
column per metric, formatted ``0.912 [0.880, 0.944]``, or ``0.912`` without a CI.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import shlex
import sys
from typing import Any, Dict, Iterator, List, Mapping, Optional, Sequence, Tuple

from physioclr_ext.evaluation.metrics import METRICS

MD_META = (
    ("command", "command"),
    ("seeds", "seeds"),
    ("split", "split"),
    ("checkpoint", "checkpoint"),
    ("checkpoint_sha256", "checkpoint sha256"),
    ("ci", "CI"),
    ("task", "task"),
)
CI_FIELDS = ("mean", "ci_low", "ci_high", "values")
UNCLIPPED_FIELDS = ("ci_low_unclipped", "ci_high_unclipped")


def file_sha256(path: str) -> str:
    """Hex SHA-256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def command_line() -> str:
    """The command that started this process, as a user would type it
    (``python -m physioclr_ext.evaluation ...`` or ``python benchmarks/x.py ...``)."""
    argv = list(sys.argv)
    spec = getattr(sys.modules.get("__main__"), "__spec__", None)
    if spec is not None and spec.name:
        module = spec.name[: -len(".__main__")] if spec.name.endswith(".__main__") else spec.name
        return shlex.join(["python", "-m", module] + argv[1:])
    return shlex.join(["python"] + argv)


def build_meta(
    seeds: Sequence[int],
    split: Any,
    checkpoint: Optional[str] = None,
    checkpoint_sha256: Optional[str] = None,
    ci: str = "t",
    command: Optional[str] = None,
    **extra: Any,
) -> Dict[str, Any]:
    """Meta block with the required keys; hashes ``checkpoint`` when no sha256 is given and it exists."""
    if checkpoint_sha256 is None and checkpoint and os.path.isfile(checkpoint):
        checkpoint_sha256 = file_sha256(checkpoint)
    meta = {
        "command": command if command is not None else command_line(),
        "seeds": list(seeds),
        "split": split,
        "checkpoint": checkpoint,
        "checkpoint_sha256": checkpoint_sha256,
        "ci": ci,
    }
    meta.update(extra)
    return meta


def json_safe(value: Any) -> Any:
    """Nested copy with NaN/inf floats as ``None`` and numpy scalars/arrays as Python values."""
    if isinstance(value, Mapping):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if hasattr(value, "tolist"):
        return json_safe(value.tolist())
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _is_leaf(node: Mapping[str, Any]) -> bool:
    return any(m in node for m in METRICS)


def _cell(value: Any) -> Dict[str, Any]:
    """A metric entry: a mean_ci-like dict or a bare number -> the four CI fields."""
    if isinstance(value, Mapping):
        cell = {f: value.get(f, [] if f == "values" else None) for f in CI_FIELDS}
        # A t interval clipped to the metric's range keeps its unclipped bounds (stats.mean_ci).
        cell.update({f: value[f] for f in UNCLIPPED_FIELDS if f in value})
        return cell
    return {"mean": value, "ci_low": None, "ci_high": None, "values": [value]}


def normalize_results(results: Mapping[str, Any]) -> Dict[str, Any]:
    """Results in the JSON layout: leaves ``{metric: {"mean", "ci_low", "ci_high", "values"}}``."""
    out: Dict[str, Any] = {}
    for name, node in results.items():
        if _is_leaf(node):
            out[name] = {m: _cell(v) for m, v in node.items()}
        else:
            out[name] = normalize_results(node)
    return json_safe(out)


def flatten(results: Mapping[str, Any], prefix: str = "") -> Iterator[Tuple[str, Dict[str, Any]]]:
    """``(setting path joined by '/', leaf)`` in insertion order."""
    for name, node in results.items():
        path = f"{prefix}/{name}" if prefix else str(name)
        if _is_leaf(node):
            yield path, node
        else:
            yield from flatten(node, path)


def format_cell(cell: Optional[Mapping[str, Any]], digits: int = 3) -> str:
    """``0.912 [0.880, 0.944]``, ``0.912`` without CI, ``n/a`` without a mean."""
    if not cell or cell.get("mean") is None:
        return "n/a"
    text = f"{cell['mean']:.{digits}f}"
    if cell.get("ci_low") is not None and cell.get("ci_high") is not None:
        text += f" [{cell['ci_low']:.{digits}f}, {cell['ci_high']:.{digits}f}]"
    return text


def _meta_value(value: Any) -> str:
    if isinstance(value, (list, tuple)):
        return ", ".join(str(v) for v in value)
    if isinstance(value, Mapping):
        return ", ".join(f"{k}={v}" for k, v in value.items())
    return "n/a" if value is None else str(value)


def render_markdown(results: Mapping[str, Any], meta: Mapping[str, Any]) -> str:
    """Markdown of normalised results: meta bullet list, then one table row per setting."""
    lines = [
        f"- {label}: `{_meta_value(meta[key])}`" if key == "command" else f"- {label}: {_meta_value(meta[key])}"
        for key, label in MD_META
        if key in meta
    ]
    rows = list(flatten(results))
    present = {m for _, leaf in rows for m in leaf}
    columns: List[str] = [m for m in METRICS if m in present]
    lines += ["", "| setting | " + " | ".join(columns) + " |", "|---" * (len(columns) + 1) + "|"]
    for name, leaf in rows:
        lines.append(f"| {name} | " + " | ".join(format_cell(leaf.get(m)) for m in columns) + " |")
    return "\n".join(lines) + "\n"


def write_results(out_dir: str, results: Mapping[str, Any], meta: Mapping[str, Any]) -> Dict[str, str]:
    """Write ``results.json`` and ``results.md`` into ``out_dir``.

    Args:
        results: setting name -> ``{metric: mean_ci dict or float}``, or -> a nested
            group of settings.
        meta: at least ``command``, ``seeds``, ``split``, ``checkpoint``,
            ``checkpoint_sha256`` and ``ci`` (see :func:`build_meta`).

    Returns:
        ``{"json": path, "markdown": path}``.
    """
    missing = [k for k in ("command", "seeds", "split", "checkpoint", "checkpoint_sha256", "ci") if k not in meta]
    if missing:
        raise ValueError(f"meta lacks {', '.join(missing)}")
    table = normalize_results(results)
    safe_meta = json_safe(meta)
    os.makedirs(out_dir, exist_ok=True)
    paths = {"json": os.path.join(out_dir, "results.json"), "markdown": os.path.join(out_dir, "results.md")}
    with open(paths["json"], "w", encoding="utf-8") as fh:
        json.dump({"meta": safe_meta, "results": table}, fh, indent=2, allow_nan=False)
    with open(paths["markdown"], "w", encoding="utf-8") as fh:
        fh.write(render_markdown(table, safe_meta))
    return paths


def write_run_results(out: str, runs: Dict[str, List[dict]], meta: dict) -> Dict[str, str]:
    """Mean and 95% Student-t CI over each setting's runs (``{setting: [{"metrics": ...}, ...]}``),
    written as ``results.json``/``results.md`` in ``out`` (``meta`` must carry what
    :func:`~physioclr_ext.evaluation.results.write_results` requires); prints the markdown table."""
    from physioclr_ext.evaluation.stats import summarize  # stats imports metrics, as results does

    results = {setting: summarize([r["metrics"] for r in records]) for setting, records in runs.items()}
    paths = write_results(out, results, {"ci": "t", **meta})
    with open(paths.get("markdown", os.path.join(out, "results.md")), encoding="utf-8") as fh:
        print(fh.read())
    return paths
