"""Run-level outputs built from the per-record markers: manifests (plain and
CMSC pairs), ``windows.csv`` and the label files (``y.npy``, ``label_def.csv``,
``pos_weight.txt``)."""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .config import SPLIT_NAMES
from .labels import LabelSpace
from .windows import pair_step

Row = dict[str, Any]


def write_atomic(path: Path, data: str | bytes) -> None:
    """Write ``data`` to a temporary name beside ``path``, then rename it: a killed run leaves the previous
    file or the whole new one under ``path``, never a part (text is written as UTF-8, newlines as given)."""
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    tmp.write_bytes(data.encode("utf-8") if isinstance(data, str) else data)
    os.replace(tmp, path)


def window_rows(markers: Sequence[Mapping[str, Any]], assignment: Mapping[str, str]) -> list[Row]:
    """One row per written window, ordered by record ``idx`` then window index."""
    rows = []
    for marker in sorted(markers, key=lambda m: m["idx"]):
        for window in sorted(marker["windows"], key=lambda w: w["i"]):
            if not window["kept"]:
                continue
            rows.append(
                {
                    "path": window["path"],
                    "record": marker["record"],
                    "patient": marker["patient"],
                    "patient_id": marker["patient_id"],
                    "idx": marker["idx"],
                    "window": window["i"],
                    "start": window["start"],
                    "size": window.get("size", marker["window_length"]),
                    "split": assignment[marker["record"]],
                    "flags": ";".join(window["flags"]),
                    "label": window["label"],
                    "aami": window.get("aami"),
                    "n_beats": window.get("n_beats"),
                    "quality": window.get("quality"),
                    "quality_leads": window.get("quality_leads"),
                }
            )
    return rows


def write_manifests(out: Path, rows: Sequence[Row]) -> dict[str, int]:
    """``OUTPUT/{train,valid,test}.tsv``: root line, then ``mat/<record>_<i>.mat<TAB>T``.

    Returns:
        Number of window lines per split (every split file is written, maybe empty).
    """
    counts = {}
    for split in SPLIT_NAMES:
        lines = [f"{r['path']}\t{r['size']}" for r in rows if r["split"] == split]
        write_atomic(out / f"{split}.tsv", "\n".join([str(out), *lines]) + "\n")
        counts[split] = len(lines)
    return counts


def cmsc_pairs(kept: Sequence[int], step: int) -> list[tuple[int, int]]:
    """Greedy pairs ``(i, i + step)`` of kept window indices, each used once, in time order."""
    available = set(kept)
    pairs = []
    for i in sorted(kept):
        if i in available and i + step in available:
            pairs.append((i, i + step))
            available -= {i, i + step}
    return pairs


def write_cmsc(out: Path, markers: Sequence[Mapping[str, Any]], assignment: Mapping[str, str]) -> dict[str, int]:
    """``OUTPUT/cmsc/{split}.tsv`` for fairseq-signals' ``CMSCECGDataset``.

    Format: root line, ``mat`` line, then ``mat/<record><TAB>T<TAB>0<TAB>i,j`` where
    windows ``i`` and ``j`` of one record are adjacent in time without overlap.
    """
    lines: dict[str, list[str]] = {split: [] for split in SPLIT_NAMES}
    for marker in sorted(markers, key=lambda m: m["idx"]):
        kept = [w["i"] for w in marker["windows"] if w["kept"]]
        step = pair_step(marker["window_length"], marker["hop"])
        for i, j in cmsc_pairs(kept, step):
            lines[assignment[marker["record"]]].append(f"mat/{marker['record']}\t{marker['window_length']}\t0\t{i},{j}")
    (out / "cmsc").mkdir(parents=True, exist_ok=True)
    for split, body in lines.items():
        write_atomic(out / "cmsc" / f"{split}.tsv", "\n".join([str(out), "mat", *body]) + "\n")
    return {split: len(body) for split, body in lines.items()}


def write_windows_csv(out: Path, rows: Sequence[Row], labels: LabelSpace, leads: Sequence[str] = ()) -> None:
    """``OUTPUT/windows.csv``: one row per written window with its label columns by name.

    With ``leads`` (the output lead names), the signal quality score of the window (``quality``) and of each
    lead (``quality_<lead>``) come before the labels; empty for absent leads and for windows of markers
    written before the scores existed.
    """
    fields = ["path", "record", "patient", "patient_id", "idx", "window", "start", "split", "flags"]
    beat_fields = ["aami", "n_beats"] if labels.uses_beats else []
    quality_fields = ["quality", *(f"quality_{lead}" for lead in leads)] if leads else []
    fh = io.StringIO(newline="")
    writer = csv.writer(fh)
    writer.writerow(fields + beat_fields + quality_fields + list(labels.names))
    for row in rows:
        scores = [row.get("quality"), *(row.get("quality_leads") or [None] * len(leads))] if leads else []
        writer.writerow([row[f] for f in fields + beat_fields] + scores + labels.positives(row["label"]))
    write_atomic(out / "windows.csv", fh.getvalue())


def label_counts(rows: Sequence[Row], labels: LabelSpace) -> dict[str, dict[str, dict[str, int]]]:
    """Positive windows and records per split and label: ``{split: {name: {"windows", "records"}}}``."""
    counts = {s: {n: {"windows": 0, "records": 0} for n in labels.names} for s in SPLIT_NAMES}
    seen: set[tuple[str, str]] = set()
    for row in rows:
        for name, positive in zip(labels.names, labels.positives(row["label"])):
            if positive:
                counts[row["split"]][name]["windows"] += 1
                if (row["record"], name) not in seen:
                    seen.add((row["record"], name))
                    counts[row["split"]][name]["records"] += 1
    return counts


def pos_weights(rows: Sequence[Row], labels: LabelSpace) -> list[float]:
    """negatives / positives over the train windows per label (1.0 where there are no positives)."""
    train = np.array([labels.positives(r["label"]) for r in rows if r["split"] == "train"], dtype=float)
    train = train.reshape(-1, len(labels.names))
    positives = train.sum(axis=0)
    negatives = train.shape[0] - positives
    return [float(n / p) if p > 0 else 1.0 for n, p in zip(negatives, positives)]


def write_label_files(
    out: Path, rows: Sequence[Row], labels: LabelSpace, record_labels: Sequence[Sequence[float]]
) -> dict[str, Any]:
    """``label_def.csv``; ``pos_weight.txt`` (binary, multilabel); ``y.npy`` (multilabel).

    Args:
        record_labels: ``(n_records, K)`` encoded record labels indexed by ``idx``.

    Returns:
        Label counts per split, for the summary.
    """
    for stale in ("label_def.csv", "pos_weight.txt", "y.npy"):
        (out / stale).unlink(missing_ok=True)
    if labels.scheme == "none":
        return {}
    counts = label_counts(rows, labels)
    fh = io.StringIO(newline="")
    writer = csv.writer(fh)
    writer.writerow(["name", "index"] + list(SPLIT_NAMES) + [f"{s}_records" for s in SPLIT_NAMES])
    for index, name in enumerate(labels.names):
        writer.writerow(
            [name, index]
            + [counts[s][name]["windows"] for s in SPLIT_NAMES]
            + [counts[s][name]["records"] for s in SPLIT_NAMES]
        )
    write_atomic(out / "label_def.csv", fh.getvalue())
    if labels.scheme in ("binary", "multilabel"):
        weights = ",".join(f"{w:.6g}" for w in pos_weights(rows, labels))
        write_atomic(out / "pos_weight.txt", f"[{weights}]\n")
    if labels.scheme == "multilabel":
        y = np.asarray(record_labels, dtype=np.float32).reshape(len(record_labels), len(labels.names))
        buffer = io.BytesIO()
        np.save(buffer, y)
        write_atomic(out / "y.npy", buffer.getvalue())
    return {s: {n: c["windows"] for n, c in counts[s].items()} for s in SPLIT_NAMES}
