"""Probes on frozen embeddings: logistic-regression linear probe and cosine k-NN.

Data are passed as ``(x, y)`` pairs: ``x`` float (N, E) embeddings and ``y`` labels in
the convention of :mod:`~physioclr_ext.evaluation.metrics` (binary (N,) in {0, 1},
multiclass (N,) class indices, multilabel (N, K) 0/1). Use
``(emb.x, emb.targets(task))`` for an :class:`~physioclr_ext.evaluation.embeddings.Embeddings`.
"""

from __future__ import annotations

import math
import warnings
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler

from physioclr_ext.evaluation.metrics import TaskType, classification_metrics

XY = Tuple[np.ndarray, np.ndarray]
DEFAULT_CS = (1e-3, 1e-2, 1e-1, 1.0, 10.0, 100.0)


def n_classes_of(task: TaskType, *ys: np.ndarray) -> int:
    """Probability columns: 1 for binary, labels' width for multilabel, max class + 1 for multiclass."""
    if task == "binary":
        return 1
    if task == "multilabel":
        return int(np.asarray(ys[0]).shape[1])
    return int(max(np.asarray(y).max() for y in ys if len(y)) + 1)


class _Constant:
    """Stands in for a classifier when the training labels hold a single class."""

    def __init__(self, value: int) -> None:
        self.value = value


def _fit_logistic(x: np.ndarray, y: np.ndarray, C: float, seed: int):
    if len(np.unique(y)) < 2:
        return _Constant(int(y[0]))
    # Balanced class weights: unweighted, a rare class (a 9%-positive label) is never predicted at
    # the 0.5 threshold whatever the AUROC, so balanced accuracy would sit at 0.5 for every n.
    model = LogisticRegression(C=C, max_iter=5000, random_state=seed, class_weight="balanced")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # non-convergence at extreme C is expected, not actionable
        return model.fit(x, y)


def _proba_binary(model, x: np.ndarray) -> np.ndarray:
    """P(class 1), (N,)."""
    if isinstance(model, _Constant):
        return np.full(len(x), float(model.value))
    return model.predict_proba(x)[:, 1]


def _fit(x: np.ndarray, y: np.ndarray, task: TaskType, C: float, seed: int):
    if task == "binary":
        return _fit_logistic(x, y, C, seed)
    if task == "multilabel":
        return [_fit_logistic(x, y[:, k], C, seed) for k in range(y.shape[1])]
    if len(np.unique(y)) < 2:
        return _Constant(int(y[0]))
    # lbfgs on more than two classes fits the multinomial (softmax) model
    return _fit_logistic(x, y, C, seed)


def _proba(model, x: np.ndarray, task: TaskType, n_classes: int) -> np.ndarray:
    """(N,) for binary, (N, K) otherwise; classes absent from training get probability 0."""
    if task == "binary":
        return _proba_binary(model, x)
    if task == "multilabel":
        return np.stack([_proba_binary(m, x) for m in model], axis=1)
    out = np.zeros((len(x), n_classes))
    if isinstance(model, _Constant):
        out[:, model.value] = 1.0
    else:
        out[:, model.classes_.astype(int)] = model.predict_proba(x)
    return out


def selection_score(y: np.ndarray, p: np.ndarray, task: TaskType) -> Tuple[str, float, float]:
    """``(name, primary, secondary)`` used to rank C on the validation split.

    Primary: macro AUROC, or balanced accuracy where AUROC is undefined on ``y``;
    secondary (tie-break): balanced accuracy.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a one-class validation split is handled by the fallback
        m = classification_metrics(y, p, task)
    if math.isnan(m["auroc"]):
        return "balanced_accuracy", m["balanced_accuracy"], m["balanced_accuracy"]
    return "auroc", m["auroc"], m["balanced_accuracy"]


def _select_probe(
    train: XY, valid: XY, task: TaskType, Cs: Sequence[float], seed: int, n_classes: int
) -> Tuple[StandardScaler, Any, Dict[str, Any]]:
    """The scaler fit on ``train``, the model of the C that scores best on ``valid``, and the selection record."""
    (xtr, ytr), (xva, yva) = train, valid
    scaler = StandardScaler().fit(xtr)
    xtr, xva = (scaler.transform(np.asarray(a, dtype=np.float64)) for a in (xtr, xva))
    best: Optional[Tuple[Tuple[float, float], float, str, Any]] = None
    scores: List[float] = []
    for C in Cs:
        model = _fit(xtr, ytr, task, C, seed)
        name, primary, secondary = selection_score(yva, _proba(model, xva, task, n_classes), task)
        scores.append(primary)
        if best is None or (primary, secondary) > best[0]:
            best = ((primary, secondary), C, name, model)
    assert best is not None, "Cs must not be empty"
    (primary, _), C, name, model = best
    return scaler, model, {"best_C": C, "selection_metric": name, "valid_score": primary, "valid_scores": scores}


def linear_probe(
    train: XY,
    valid: XY,
    test: XY,
    task: TaskType,
    Cs: Sequence[float] = DEFAULT_CS,
    seed: int = 0,
) -> Dict[str, Any]:
    """Logistic-regression probe on standardised embeddings, C chosen on ``valid``.

    Features are standardised with the training mean and std. For every C in ``Cs``
    a model is fit on ``train`` (binary: one logistic regression; multiclass:
    multinomial; multilabel: one independent binary model per label), each with
    balanced class weights (``n / (n_classes * count)``, so thresholded predictions and
    balanced accuracy are meaningful on imbalanced labels), and scored on
    ``valid`` by :func:`selection_score`; ties keep the earlier C. The model fit on
    ``train`` with the best C (not refit on train+valid) scores ``test``.

    Returns:
        ``best_C``; ``selection_metric`` and ``valid_score`` (its value for best_C);
        ``valid_scores`` (primary score per C, in Cs order); ``metrics`` on test
        (:func:`~physioclr_ext.evaluation.metrics.classification_metrics`);
        ``probabilities`` on test, (N,) for binary, else (N, K).
    """
    xte, yte = test
    n_classes = n_classes_of(task, train[1], valid[1], yte)
    scaler, model, record = _select_probe(train, valid, task, Cs, seed, n_classes)
    p_test = _proba(model, scaler.transform(np.asarray(xte, dtype=np.float64)), task, n_classes)
    return {**record, "metrics": classification_metrics(yte, p_test, task), "probabilities": p_test}


SATURATED_LOGIT = 1e4
"""Logit of a probability the probe sets to exactly 0 or 1 (a class absent from its training labels):
large enough that sigmoid and softmax round it to 0 or 1 in float32 and float64, finite for the optimiser."""


def _binary_row(model: Any) -> Tuple[np.ndarray, float]:
    """``(w (D_or_0,), b)`` of P(class 1) = sigmoid(w . x + b); a constant model has no weights."""
    if isinstance(model, _Constant):
        return np.zeros(0), SATURATED_LOGIT if model.value else -SATURATED_LOGIT
    return model.coef_[0], float(model.intercept_[0])


def _standardised_head(model: Any, task: TaskType, n_outputs: int, dim: int) -> Tuple[np.ndarray, np.ndarray]:
    """Head ``(W (K, D), b (K,))`` on standardised features whose logits give the model's probabilities."""
    weight, bias = np.zeros((n_outputs, dim)), np.zeros(n_outputs)
    if task in ("binary", "multilabel"):
        for k, m in enumerate([model] if task == "binary" else model):
            w, bias[k] = _binary_row(m)
            weight[k, : len(w)] = w
        return weight, bias
    if isinstance(model, _Constant):  # one training class: probability 1 there, 0 elsewhere
        bias[:] = -SATURATED_LOGIT
        bias[model.value] = 0.0
        return weight, bias
    classes = model.classes_.astype(int)
    bias[:] = -SATURATED_LOGIT  # classes absent from training get probability 0, as in linear_probe
    if len(classes) == 2:  # a binary fit: softmax([0, d]) = [1 - sigmoid(d), sigmoid(d)]
        bias[classes[0]] = 0.0
        weight[classes[1]], bias[classes[1]] = model.coef_[0], model.intercept_[0]
    else:  # multinomial: predict_proba is the softmax of the decision function
        weight[classes], bias[classes] = model.coef_, model.intercept_
    return weight, bias


def probe_head(
    train: XY,
    valid: XY,
    task: TaskType,
    Cs: Sequence[float] = DEFAULT_CS,
    seed: int = 0,
    n_outputs: Optional[int] = None,
) -> Tuple[np.ndarray, np.ndarray, Dict[str, Any]]:
    """The :func:`linear_probe` classifier as a linear head on the raw embeddings (LP-FT).

    Fits the probe exactly as :func:`linear_probe` does (standardised features, balanced
    class weights, C chosen on ``valid``) and folds the standardisation into the weights
    (``w' = w / sigma``, ``b' = b - sum(w * mu / sigma)``; a constant feature has sigma 1, as
    in ``StandardScaler``), so that the head's logits on raw embeddings give the probe's
    probabilities: binary, one logit (sigmoid); multiclass, ``K`` logits (softmax);
    multilabel, one logit per label (sigmoid). Initialising a fine-tuned classifier's head
    with it, then fine-tuning, is LP-FT (Kumar et al., "Fine-Tuning can Distort Pretrained
    Features and Underperform Out-of-Distribution", ICLR 2022).

    Args:
        train, valid: ``(x (N, D), y)`` as for :func:`linear_probe`.
        n_outputs: head rows for multiclass (default: max class in ``train``/``valid`` + 1).

    Returns:
        ``weight`` (K, D) and ``bias`` (K,) in float64 (K = 1 for binary, the number of
        classes or labels otherwise) and the selection record of :func:`linear_probe`
        (``best_C``, ``selection_metric``, ``valid_score``, ``valid_scores``).

    Example:
        >>> w, b, info = probe_head((x_tr, y_tr), (x_va, y_va), "binary")
        >>> p = 1 / (1 + np.exp(-(x_te @ w.T + b)[:, 0]))  # linear_probe's test probabilities
    """
    n_classes = n_classes_of(task, train[1], valid[1])
    if n_outputs is not None and task == "multiclass":
        if n_outputs < n_classes:
            raise ValueError(f"n_outputs={n_outputs} is fewer than the {n_classes} classes in the labels")
        n_classes = n_outputs
    scaler, model, record = _select_probe(train, valid, task, Cs, seed, n_classes)
    weight, bias = _standardised_head(model, task, n_classes, len(scaler.scale_))
    weight = weight / scaler.scale_
    return weight, bias - weight @ scaler.mean_, record


def _l2_normalise(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    norm = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.where(norm > 0, norm, 1.0)


def nearest_neighbours(train_x: np.ndarray, test_x: np.ndarray, k: int, chunk: int = 1024) -> np.ndarray:
    """Indices (N_test, k) of the k training rows of highest cosine similarity, most similar first."""
    a, b = _l2_normalise(test_x), _l2_normalise(train_x)
    k = min(k, len(b))
    out = np.empty((len(a), k), dtype=np.int64)
    for start in range(0, len(a), chunk):
        sims = a[start : start + chunk] @ b.T
        top = np.argpartition(-sims, k - 1, axis=1)[:, :k]
        order = np.argsort(-np.take_along_axis(sims, top, axis=1), axis=1, kind="stable")
        out[start : start + chunk] = np.take_along_axis(top, order, axis=1)
    return out


def knn_classify(
    train_x: np.ndarray,
    train_y: np.ndarray,
    test_x: np.ndarray,
    task: TaskType,
    k: int = 5,
    n_classes: Optional[int] = None,
) -> np.ndarray:
    """Cosine k-NN probabilities: the share of the k nearest training examples per class.

    Embeddings are L2-normalised; neighbours are the ``k`` training rows of highest
    cosine similarity (``k`` is capped at the training size), uniformly weighted.

    Args:
        train_x: (M, E); train_y: labels of the training rows; test_x: (N, E).
        n_classes: multiclass columns (default: max training class + 1).

    Returns:
        binary: (N,) share of positive neighbours; multiclass: (N, K) share per
        class; multilabel: (N, K) share of neighbours positive for each label.
    """
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}")
    if len(train_x) == 0:
        raise ValueError("knn_classify needs at least one training example")
    neighbours = nearest_neighbours(train_x, test_x, k)
    train_y = np.asarray(train_y)
    if task == "binary":
        return train_y.reshape(-1)[neighbours].astype(np.float64).mean(axis=1)
    if task == "multilabel":
        return train_y[neighbours].astype(np.float64).mean(axis=1)
    n_classes = n_classes or int(train_y.max()) + 1
    onehot = np.eye(n_classes)[train_y.reshape(-1).astype(np.int64)]
    return onehot[neighbours].mean(axis=1)
