"""Model selection by a k-NN on validation embeddings (the SMILES-2025 study's triplet fine-tuning,
METHODS.md section 7): fit a cosine k-NN (k = 5) on a random 80% of the validation embeddings and
score macro F1 or AUROC on the other 20%. The split is drawn with a fixed seed so the score of two
checkpoints is computed on the same windows.
"""

from __future__ import annotations

from typing import Optional

import numpy as np

from physioclr_ext.evaluation.embeddings import infer_task
from physioclr_ext.evaluation.metrics import classification_metrics
from physioclr_ext.evaluation.probes import knn_classify, n_classes_of

__all__ = ["SELECTION_METRICS", "knn_selection_score"]

SELECTION_METRICS = ("macro_f1", "auroc", "accuracy", "balanced_accuracy", "auprc")


def knn_selection_score(
    embeddings: np.ndarray,
    labels: np.ndarray,
    k: int = 5,
    metric: str = "macro_f1",
    fit_fraction: float = 0.8,
    seed: int = 0,
    task: Optional[str] = None,
) -> float:
    """The k-NN ``metric`` of embeddings (N, E) with labels (N,) or (N, L), fitted on ``fit_fraction``.

    ``nan`` with fewer than 2 windows on either side of the split.

    Example:
        >>> x = np.r_[np.ones((10, 2)) * [1, 0], np.ones((10, 2)) * [0, 1]]
        >>> knn_selection_score(x, np.r_[np.zeros(10), np.ones(10)], k=3)
        1.0
    """
    if metric not in SELECTION_METRICS:
        raise ValueError(f"metric must be one of {SELECTION_METRICS}, not {metric!r}")
    x = np.asarray(embeddings, dtype=np.float64).reshape(len(embeddings), -1)
    y = np.asarray(labels)
    y2 = y.reshape(len(y), -1)
    n_fit = int(round(fit_fraction * len(x)))
    if n_fit < 2 or len(x) - n_fit < 2:
        return float("nan")
    order = np.random.default_rng(seed).permutation(len(x))
    fit, held = order[:n_fit], order[n_fit:]
    kind = task or infer_task(y2)
    y_eval = y2 if kind == "multilabel" else y2[:, 0].astype(np.int64)
    n_classes = n_classes_of(kind, y_eval)  # type: ignore[arg-type]
    p = knn_classify(x[fit], y_eval[fit], x[held], kind, k=k, n_classes=n_classes)  # type: ignore[arg-type]
    return float(classification_metrics(y_eval[held], p, kind)[metric])  # type: ignore[arg-type]
