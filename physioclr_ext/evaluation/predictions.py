"""Per-record predictions and metrics from fairseq-signals inference outputs.

``fairseq-hydra-inference`` (and ``physioclr-hydra-inference``) writes the logits of
every window of a subset, in manifest order, to ``outputs_<subset>.npy``. This module
joins them with the manifest and the labels stored in each window's ``.mat`` file
and writes

* ``predictions_<subset>.csv``: one row per window: path, record index (``idx``),
  patient id, true label(s), probability(ies) and predicted label(s);
* ``metrics_<subset>.json``: the five metrics of :mod:`physioclr_ext.evaluation.metrics`,
  the task type, counts and the inputs used.
"""

from __future__ import annotations

import csv
import json
import math
import os
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import scipy.io

from physioclr_ext.evaluation.metrics import (
    TaskType,
    classification_metrics,
    infer_task_type,
    predictions,
    probabilities,
)


@dataclass
class Manifest:
    """A fairseq-signals manifest: a root directory, then ``path<TAB>size`` lines."""

    root: str
    paths: List[str]
    sizes: List[int]

    @classmethod
    def read(cls, path: str) -> Manifest:
        with open(path, encoding="utf-8") as fh:
            root = fh.readline().strip()
            rows = [line.rstrip("\n").split("\t") for line in fh if line.strip()]
        bad = [r for r in rows if len(r) != 2]
        if bad:
            raise ValueError(f"{path}: expected 'path<TAB>size' lines, got {bad[0]!r}")
        return cls(root, [r[0] for r in rows], [int(r[1]) for r in rows])

    def __len__(self) -> int:
        return len(self.paths)


def load_outputs(path: str) -> np.ndarray:
    """Read inference logits (N, K).

    fairseq-signals' stores write a raw memory map plus ``<name>_header.pkl`` holding
    its shape and dtype; a regular ``.npy`` file is read as well.
    """
    header = path[:-4] + "_header.pkl" if path.endswith(".npy") else path + "_header.pkl"
    if os.path.exists(header):
        import pickle

        with open(header, "rb") as fh:
            meta = pickle.load(fh)
        array = np.array(np.memmap(path, mode="r", shape=tuple(meta["shape"]), dtype=meta.get("dtype", "float32")))
    else:
        array = np.load(path)
    return array[:, None] if array.ndim == 1 else array


def load_window_metadata(manifest: Manifest) -> Tuple[np.ndarray, List[int], List[int]]:
    """Labels (N, L), record indices and patient ids of every window in a manifest."""
    labels, idx, patients = [], [], []
    for rel in manifest.paths:
        mat = scipy.io.loadmat(os.path.join(manifest.root, rel), variable_names=("label", "idx", "patient_id"))
        labels.append(np.asarray(mat["label"], dtype=np.float64).reshape(-1))
        idx.append(int(np.asarray(mat.get("idx", [[-1]])).reshape(-1)[0]))
        patients.append(int(np.asarray(mat.get("patient_id", [[-1]])).reshape(-1)[0]))
    return np.stack(labels), idx, patients


def read_label_names(label_def: Optional[str], n: int) -> List[str]:
    """Label names from a ``label_def.csv`` (first column ``name``), else ``label_k``."""
    if label_def and os.path.exists(label_def):
        with open(label_def, encoding="utf-8") as fh:
            names = [row["name"] for row in csv.DictReader(fh)]
        if len(names) == n:
            return names
    return [f"label_{k}" for k in range(n)]


def _json_safe(metrics: Dict[str, float]) -> Dict[str, Optional[float]]:
    return {k: (None if math.isnan(v) else v) for k, v in metrics.items()}


def _csv_rows(
    manifest: Manifest,
    y: np.ndarray,
    p: np.ndarray,
    pred: np.ndarray,
    idx: Sequence[int],
    patients: Sequence[int],
    task: TaskType,
    names: List[str],
) -> Tuple[List[str], List[list]]:
    header = ["path", "idx", "patient_id"]
    if task == "multilabel":
        header += [f"true_{n}" for n in names] + [f"prob_{n}" for n in names] + [f"pred_{n}" for n in names]
    elif task == "multiclass":
        header += ["true", "pred"] + [f"prob_{n}" for n in names]
    else:
        header += ["true", "prob", "pred"]
    rows = []
    for i, rel in enumerate(manifest.paths):
        row: list = [rel, idx[i], patients[i]]
        if task == "multilabel":
            row += [int(v) for v in y[i]] + [f"{v:.6f}" for v in p[i]] + [int(v) for v in pred[i]]
        elif task == "multiclass":
            row += [int(y[i]), int(pred[i])] + [f"{v:.6f}" for v in p[i]]
        else:
            row += [int(y[i]), f"{p[i]:.6f}", int(pred[i])]
        rows.append(row)
    return header, rows


def write_predictions(
    outputs: str,
    manifest_path: str,
    out_dir: str,
    subset: str = "test",
    threshold: float = 0.5,
    label_def: Optional[str] = None,
    task: Optional[TaskType] = None,
) -> Dict[str, object]:
    """Join inference logits with a manifest; write the CSV and the metrics JSON.

    Args:
        outputs: ``outputs_<subset>.npy`` of logits (N, K) written by inference
            (a fairseq-signals memory map with its ``_header.pkl``, or plain ``.npy``).
        manifest_path: the manifest the logits were computed on (same order).
        out_dir: where ``predictions_<subset>.csv`` and ``metrics_<subset>.json`` go.
        threshold: probability threshold for binary and multilabel predictions.
        label_def: optional ``label_def.csv`` naming the labels.
        task: ``binary``, ``multiclass`` or ``multilabel``; inferred when omitted.

    Returns:
        The metrics JSON content.
    """
    logits = load_outputs(outputs)
    manifest = Manifest.read(manifest_path)
    if len(manifest) != len(logits):
        raise ValueError(f"{outputs} has {len(logits)} rows but {manifest_path} lists {len(manifest)} windows")
    labels, idx, patients = load_window_metadata(manifest)
    task = task or infer_task_type(labels, logits.shape[1])
    p = probabilities(logits, task)
    y = labels if task == "multilabel" else labels[:, 0]
    pred = predictions(p, task, threshold)
    names = read_label_names(label_def, logits.shape[1] if task != "binary" else 1)
    header, rows = _csv_rows(manifest, y, p, pred, idx, patients, task, names)
    os.makedirs(out_dir, exist_ok=True)
    csv_path = os.path.join(out_dir, f"predictions_{subset}.csv")
    with open(csv_path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(header)
        writer.writerows(rows)
    report: Dict[str, object] = {
        "subset": subset,
        "task": task,
        "n_windows": len(manifest),
        "n_records": len(set(idx)),
        "n_patients": len(set(patients)),
        "threshold": threshold,
        "labels": names,
        "metrics": _json_safe(classification_metrics(y, p, task, threshold)),
        "outputs": os.path.abspath(outputs),
        "manifest": os.path.abspath(manifest_path),
        "predictions_csv": os.path.abspath(csv_path),
    }
    with open(os.path.join(out_dir, f"metrics_{subset}.json"), "w", encoding="utf-8") as fh:
        json.dump(report, fh, indent=2)
    return report
