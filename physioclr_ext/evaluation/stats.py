"""Confidence intervals for evaluation results.

Two kinds of interval are used by the evaluation protocols:

* :func:`mean_ci`: Student-t interval of a mean over repeated runs (seeds, splits);
* :func:`bootstrap_ci` / :func:`bootstrap_cis`: percentile bootstrap of a metric of
  :func:`~physioclr_ext.evaluation.metrics.classification_metrics` over test
  examples, or over whole groups of examples (patients) when ``groups`` is given.
"""

from __future__ import annotations

import math
import warnings
from typing import Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
from scipy import stats as scipy_stats

from physioclr_ext.evaluation.metrics import METRICS, TaskType, classification_metrics

ArrayOrRuns = Union[np.ndarray, Sequence[np.ndarray]]

METRIC_RANGES: Dict[str, Tuple[float, float]] = {m: (0.0, 1.0) for m in METRICS}
"""The range every metric of :data:`~physioclr_ext.evaluation.metrics.METRICS` lies in."""


def metric_range(name: str) -> Optional[Tuple[float, float]]:
    """``(low, high)`` of a metric named in :data:`METRIC_RANGES`, else ``None`` (unbounded)."""
    return METRIC_RANGES.get(name)


def mean_ci(
    values: Sequence[float], confidence: float = 0.95, bounds: Optional[Tuple[float, float]] = None
) -> Dict[str, object]:
    """Mean and Student-t confidence interval of ``values`` (e.g. one metric per seed).

    Non-finite values (NaN: metric undefined in that run) are left out of the mean
    and the interval, and reported as ``None`` in ``values``. The interval is
    ``mean ± t(1 - alpha/2, n - 1) * s / sqrt(n)`` with the sample standard deviation
    ``s`` (ddof=1); with fewer than two finite values its bounds are ``None``.

    Args:
        bounds: the metric's range (e.g. ``(0, 1)`` for AUROC, see :data:`METRIC_RANGES`): the interval
            is clipped to it, since a symmetric t interval over few runs near 0 or 1 leaves it
            (``0.583 [0.009, 1.157]``); the unclipped bounds stay in ``ci_low_unclipped`` and
            ``ci_high_unclipped``.

    Returns:
        ``{"mean", "ci_low", "ci_high", "values", "n"}`` (with ``bounds`` also the two unclipped
        fields); ``n`` counts the finite values, ``mean`` is ``None`` when there are none.

    Example:
        >>> r = mean_ci([1, 2, 3, 4])
        >>> r["mean"], round(r["ci_high"] - r["mean"], 3)
        (2.5, 2.054)
        >>> mean_ci([0.2, 0.9, 1.0], bounds=(0.0, 1.0))["ci_high"]
        1.0
    """
    arr = np.asarray(values, dtype=np.float64).reshape(-1)
    finite = arr[np.isfinite(arr)]
    n = len(finite)
    mean = float(finite.mean()) if n else None
    low = high = None
    if n >= 2:
        half = scipy_stats.t.ppf(0.5 + confidence / 2.0, n - 1) * finite.std(ddof=1) / math.sqrt(n)
        low, high = float(mean - half), float(mean + half)
    out: Dict[str, object] = {
        "mean": mean,
        "ci_low": low,
        "ci_high": high,
        "values": [float(v) if np.isfinite(v) else None for v in arr],
        "n": n,
    }
    if bounds is not None:
        out["ci_low_unclipped"], out["ci_high_unclipped"] = low, high
        out["ci_low"] = None if low is None else max(low, bounds[0])
        out["ci_high"] = None if high is None else min(high, bounds[1])
    return out


def summarize(
    per_run: List[Dict[str, float]], metrics: Sequence[str] = METRICS, confidence: float = 0.95
) -> Dict[str, Dict[str, object]]:
    """:func:`mean_ci` of each metric over runs, clipped to the metric's range; a metric missing from a
    run counts as NaN."""
    return {m: mean_ci([run.get(m, float("nan")) for run in per_run], confidence, metric_range(m)) for m in metrics}


def _resample(n: int, groups: Optional[np.ndarray], n_boot: int, seed: int):
    """Yield ``n_boot`` index arrays drawn with replacement (of examples, or of whole groups)."""
    rng = np.random.default_rng(seed)
    if groups is None:
        for _ in range(n_boot):
            yield rng.integers(0, n, size=n)
        return
    groups = np.asarray(groups).reshape(-1)
    if len(groups) != n:
        raise ValueError(f"groups has {len(groups)} entries for {n} examples")
    _, inverse = np.unique(groups, return_inverse=True)
    members = [np.flatnonzero(inverse == g) for g in range(inverse.max() + 1)]
    for _ in range(n_boot):
        drawn = rng.integers(0, len(members), size=len(members))
        yield np.concatenate([members[g] for g in drawn])


def _as_runs(p: ArrayOrRuns) -> List[np.ndarray]:
    if isinstance(p, np.ndarray) or np.ndim(p[0]) == 0:
        return [np.asarray(p, dtype=np.float64)]
    return [np.asarray(a, dtype=np.float64) for a in p]


def bootstrap_samples(
    y: np.ndarray,
    p: ArrayOrRuns,
    task: TaskType,
    n_boot: int = 1000,
    seed: int = 0,
    groups: Optional[np.ndarray] = None,
    metrics: Sequence[str] = METRICS,
) -> Dict[str, np.ndarray]:
    """Bootstrap distribution of each metric: ``{metric: (B,)}``, undefined resamples dropped.

    Args:
        y: labels in the convention of :mod:`~physioclr_ext.evaluation.metrics`.
        p: probabilities (N,) or (N, K), or a list of such arrays (e.g. one per seed);
            with a list, the statistic of a resample is the mean of the metric over
            the arrays, all scored on the same resampled examples.
        groups: (N,) group id per example (e.g. patient): whole groups are resampled.
    """
    runs = _as_runs(p)
    y = np.asarray(y)
    out: Dict[str, List[float]] = {m: [] for m in metrics}
    with warnings.catch_warnings():
        # Resamples missing a class make sklearn warn about ill-defined scores.
        warnings.simplefilter("ignore")
        for idx in _resample(len(y), groups, n_boot, seed):
            scores = [classification_metrics(y[idx], a[idx], task) for a in runs]
            for m in metrics:
                value = float(np.mean([s[m] for s in scores]))
                if np.isfinite(value):
                    out[m].append(value)
    return {m: np.asarray(v) for m, v in out.items()}


def _percentiles(samples: np.ndarray, confidence: float) -> Tuple[float, float]:
    if len(samples) == 0:
        return float("nan"), float("nan")
    alpha = (1.0 - confidence) / 2.0
    low, high = np.quantile(samples, [alpha, 1.0 - alpha])
    return float(low), float(high)


def bootstrap_cis(
    y: np.ndarray,
    p: ArrayOrRuns,
    task: TaskType,
    n_boot: int = 1000,
    seed: int = 0,
    confidence: float = 0.95,
    groups: Optional[np.ndarray] = None,
    metrics: Sequence[str] = METRICS,
) -> Dict[str, Tuple[float, float]]:
    """Percentile bootstrap intervals of several metrics from one set of resamples.

    Same arguments as :func:`bootstrap_samples`; a metric undefined on every
    resample gets ``(nan, nan)``.
    """
    samples = bootstrap_samples(y, p, task, n_boot, seed, groups, metrics)
    return {m: _percentiles(s, confidence) for m, s in samples.items()}


def bootstrap_ci(
    y: np.ndarray,
    p: ArrayOrRuns,
    metric: str,
    task: TaskType,
    n_boot: int = 1000,
    seed: int = 0,
    confidence: float = 0.95,
    groups: Optional[np.ndarray] = None,
) -> Tuple[float, float]:
    """Percentile bootstrap ``(low, high)`` of one metric over test examples (or groups).

    Resamples on which the metric is undefined (e.g. AUROC with one class drawn)
    are skipped; ``(nan, nan)`` when it is undefined on all of them.

    Example:
        >>> y = np.array([0, 1] * 20); p = np.where(y == 1, .8, .3)
        >>> bootstrap_ci(y, p, "accuracy", "binary", n_boot=50)
        (1.0, 1.0)
    """
    if metric not in METRICS:
        raise ValueError(f"unknown metric {metric!r}; expected one of {', '.join(METRICS)}")
    return bootstrap_cis(y, p, task, n_boot, seed, confidence, groups, (metric,))[metric]
