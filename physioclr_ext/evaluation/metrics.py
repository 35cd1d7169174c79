"""Classification metrics shared by inference and the evaluation protocols.

Every scoring path of the package reports the same five numbers: accuracy, balanced
accuracy, macro F1, AUROC and AUPRC (macro over classes or labels). Scores come as
probabilities; the task type decides how they are turned into predictions:

* ``binary``: ``y`` of shape (N,) in {0, 1}, ``p`` of shape (N,) = P(class 1).
* ``multiclass``: ``y`` of shape (N,) in 0..K-1, ``p`` of shape (N, K) rows summing to 1.
* ``multilabel``: ``y`` of shape (N, K) in {0, 1}, ``p`` of shape (N, K) independent.

A metric that is undefined on the data (AUROC with one class present) is ``nan``;
macro averages skip the classes or labels where it is undefined.
"""

from __future__ import annotations

from typing import Dict, Literal

import numpy as np
from sklearn.metrics import (
    accuracy_score,
    average_precision_score,
    balanced_accuracy_score,
    f1_score,
    roc_auc_score,
)

TaskType = Literal["binary", "multiclass", "multilabel"]
METRICS = ("accuracy", "balanced_accuracy", "macro_f1", "auroc", "auprc")


def sigmoid(x: np.ndarray) -> np.ndarray:
    """Numerically stable logistic function."""
    x = np.asarray(x, dtype=np.float64)
    out = np.empty_like(x)
    pos = x >= 0
    out[pos] = 1.0 / (1.0 + np.exp(-x[pos]))
    ex = np.exp(x[~pos])
    out[~pos] = ex / (1.0 + ex)
    return out


def softmax(x: np.ndarray) -> np.ndarray:
    """Row-wise softmax of (N, K) logits."""
    x = np.asarray(x, dtype=np.float64)
    z = np.exp(x - x.max(axis=1, keepdims=True))
    return z / z.sum(axis=1, keepdims=True)


def infer_task_type(labels: np.ndarray, n_outputs: int) -> TaskType:
    """Guess the task from stored labels (N, L) and the model's output width.

    One output: binary. Several outputs and one label column of class indices:
    multiclass. Several outputs and as many 0/1 label columns: multilabel.
    """
    labels = np.asarray(labels)
    if labels.ndim == 1:
        labels = labels[:, None]
    if n_outputs == 1:
        return "binary"
    if labels.shape[1] == 1:
        return "multiclass"
    if labels.shape[1] == n_outputs:
        return "multilabel"
    raise ValueError(f"labels with {labels.shape[1]} columns do not fit {n_outputs} model outputs")


def probabilities(logits: np.ndarray, task: TaskType) -> np.ndarray:
    """Turn model logits (N, K) into probabilities: (N,) for binary, else (N, K)."""
    logits = np.asarray(logits, dtype=np.float64)
    if logits.ndim == 1:
        logits = logits[:, None]
    if task == "binary":
        return sigmoid(logits[:, 0])
    if task == "multiclass":
        return softmax(logits)
    return sigmoid(logits)


def predictions(p: np.ndarray, task: TaskType, threshold: float = 0.5) -> np.ndarray:
    """Hard predictions: (N,) class indices, or (N, K) 0/1 for multilabel."""
    if task == "multiclass":
        return np.asarray(p).argmax(axis=1)
    return (np.asarray(p) >= threshold).astype(np.int64)


def _mean_defined(values: list) -> float:
    defined = [v for v in values if not np.isnan(v)]
    return float(np.mean(defined)) if defined else float("nan")


def _auc_pair(y: np.ndarray, p: np.ndarray) -> tuple:
    if y.min() == y.max():
        return float("nan"), float("nan")
    return float(roc_auc_score(y, p)), float(average_precision_score(y, p))


def classification_metrics(y: np.ndarray, p: np.ndarray, task: TaskType, threshold: float = 0.5) -> Dict[str, float]:
    """Accuracy, balanced accuracy, macro F1, AUROC and AUPRC.

    Multilabel accuracy and balanced accuracy are the means over labels of the
    per-label values (not exact-match accuracy). Binary macro F1 averages the F1 of
    both classes.

    Example:
        >>> m = classification_metrics(np.array([0, 1, 1]), np.array([.2, .9, .4]), "binary")
        >>> round(m["accuracy"], 3), m["auroc"]
        (0.667, 1.0)
    """
    y = np.asarray(y)
    p = np.asarray(p, dtype=np.float64)
    if len(y) == 0:
        raise ValueError("no examples to score")
    pred = predictions(p, task, threshold)
    if task == "multilabel":
        cols = range(y.shape[1])
        aucs = [_auc_pair(y[:, k], p[:, k]) for k in cols]
        return {
            "accuracy": float(np.mean([accuracy_score(y[:, k], pred[:, k]) for k in cols])),
            "balanced_accuracy": _mean_defined(
                [balanced_accuracy_score(y[:, k], pred[:, k]) if len(np.unique(y[:, k])) > 1 else np.nan for k in cols]
            ),
            "macro_f1": float(f1_score(y, pred, average="macro", zero_division=0)),
            "auroc": _mean_defined([a for a, _ in aucs]),
            "auprc": _mean_defined([b for _, b in aucs]),
        }
    y = y.reshape(-1).astype(np.int64)
    out = {
        "accuracy": float(accuracy_score(y, pred)),
        "balanced_accuracy": float(balanced_accuracy_score(y, pred)),
        "macro_f1": float(f1_score(y, pred, average="macro", zero_division=0)),
    }
    if task == "binary":
        out["auroc"], out["auprc"] = _auc_pair(y, p)
    else:
        aucs = [_auc_pair((y == k).astype(int), p[:, k]) for k in range(p.shape[1])]
        out["auroc"] = _mean_defined([a for a, _ in aucs])
        out["auprc"] = _mean_defined([b for _, b in aucs])
    return out
