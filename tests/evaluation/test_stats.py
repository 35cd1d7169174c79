"""Confidence intervals: Student-t over runs and percentile bootstrap over test examples."""

import math

import numpy as np
import pytest

from physioclr_ext.evaluation.metrics import METRICS, classification_metrics
from physioclr_ext.evaluation.stats import bootstrap_ci, bootstrap_cis, mean_ci, summarize


def _scores(n, seed=0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    p = np.clip(0.35 * y + 0.65 * rng.random(n), 0, 1)
    return y, p


def test_mean_ci_hand_computed():
    r = mean_ci([1, 2, 3, 4])
    half = 3.182446 * 1.290994 / 2  # t(0.975, 3) * s / sqrt(4)
    assert r["mean"] == 2.5 and r["n"] == 4 and r["values"] == [1.0, 2.0, 3.0, 4.0]
    assert r["ci_low"] == pytest.approx(2.5 - half, abs=1e-5)
    assert r["ci_high"] == pytest.approx(2.5 + half, abs=1e-5)
    assert r["ci_high"] - r["mean"] == pytest.approx(2.054, abs=1e-3)


def test_mean_ci_other_confidence():
    r = mean_ci([1, 2, 3, 4], confidence=0.90)
    assert r["ci_high"] - 2.5 == pytest.approx(2.353363 * 1.290994 / 2, abs=1e-5)


def test_mean_ci_excludes_nan_but_keeps_it_in_values():
    r = mean_ci([1.0, float("nan"), 3.0])
    assert r["mean"] == 2.0 and r["n"] == 2 and r["values"] == [1.0, None, 3.0]
    assert r["ci_high"] - 2.0 == pytest.approx(12.706205 * math.sqrt(2) / math.sqrt(2), abs=1e-5)


def test_mean_ci_too_few_values():
    one = mean_ci([0.7, float("nan")])
    assert one["mean"] == 0.7 and one["ci_low"] is None and one["ci_high"] is None
    none = mean_ci([float("nan")])
    assert none["mean"] is None and none["values"] == [None] and none["n"] == 0
    same = mean_ci([0.5, 0.5, 0.5])
    assert same["ci_low"] == same["ci_high"] == 0.5


def test_summarize_per_metric():
    runs = [{m: 0.5 for m in METRICS}, {**{m: 0.7 for m in METRICS}, "auroc": float("nan")}]
    del runs[1]["auprc"]
    s = summarize(runs)
    assert list(s) == list(METRICS)
    assert s["accuracy"]["mean"] == pytest.approx(0.6) and s["accuracy"]["n"] == 2
    assert s["auroc"]["values"] == [0.5, None] and s["auroc"]["ci_low"] is None
    assert s["auprc"]["values"] == [0.5, None]


def test_bootstrap_contains_estimate_and_is_seeded():
    y, p = _scores(300)
    point = classification_metrics(y, p, "binary")["auroc"]
    low, high = bootstrap_ci(y, p, "auroc", "binary", n_boot=60, seed=3)
    assert low < point < high
    assert bootstrap_ci(y, p, "auroc", "binary", n_boot=60, seed=3) == (low, high)
    assert bootstrap_ci(y, p, "auroc", "binary", n_boot=60, seed=4) != (low, high)


def test_bootstrap_shrinks_with_more_samples():
    small = bootstrap_ci(*_scores(100), "accuracy", "binary", n_boot=40)
    large = bootstrap_ci(*_scores(2000), "accuracy", "binary", n_boot=40)
    assert large[1] - large[0] < 0.5 * (small[1] - small[0])


def test_bootstrap_by_groups_resamples_whole_groups():
    y, p = _scores(60, seed=1)
    # every example repeated 4 times as one group: the same draws as resampling examples
    groups = np.repeat(np.arange(60), 4)
    grouped = bootstrap_ci(np.repeat(y, 4), np.repeat(p, 4), "auroc", "binary", n_boot=30, seed=2, groups=groups)
    assert grouped == pytest.approx(bootstrap_ci(y, p, "auroc", "binary", n_boot=30, seed=2))


def test_bootstrap_skips_undefined_resamples():
    y, p = np.array([0, 1, 1]), np.array([0.2, 0.9, 0.6])
    low, high = bootstrap_ci(y, p, "auroc", "binary", n_boot=40)
    assert (low, high) == (1.0, 1.0)
    assert all(math.isnan(v) for v in bootstrap_ci(np.ones(5, int), np.full(5, 0.5), "auroc", "binary", n_boot=20))


def test_bootstrap_of_several_runs_and_metrics():
    y, p = _scores(120)
    both = bootstrap_cis(y, [p, p], "binary", n_boot=25, seed=1)
    single = bootstrap_cis(y, p, "binary", n_boot=25, seed=1)
    assert set(both) == set(METRICS)
    assert all(both[m] == pytest.approx(single[m]) for m in METRICS)
    assert single["auroc"] == bootstrap_ci(y, p, "auroc", "binary", n_boot=25, seed=1)


def test_bootstrap_multiclass_and_errors():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, 90)
    p = np.eye(3)[y] * 0.5 + rng.dirichlet(np.ones(3), 90) * 0.5
    low, high = bootstrap_ci(y, p, "macro_f1", "multiclass", n_boot=20)
    assert 0 <= low <= classification_metrics(y, p, "multiclass")["macro_f1"] <= high <= 1
    with pytest.raises(ValueError, match="unknown metric"):
        bootstrap_ci(y, p, "f1", "multiclass")
    with pytest.raises(ValueError, match="groups"):
        bootstrap_ci(y, p, "accuracy", "multiclass", groups=np.zeros(5))


def test_mean_ci_clipped_to_metric_range_keeps_unclipped():
    """Issue 15: ``macro_f1 0.583 [0.009, 1.157]``; three F1s near both ends of [0, 1]."""
    values = [0.2, 0.6, 0.95]
    raw = mean_ci(values)
    assert raw["ci_low"] < 0.0 and raw["ci_high"] > 1.0  # the t interval leaves the range
    clipped = mean_ci(values, bounds=(0.0, 1.0))
    assert (clipped["ci_low"], clipped["ci_high"]) == (0.0, 1.0)
    assert (clipped["ci_low_unclipped"], clipped["ci_high_unclipped"]) == (raw["ci_low"], raw["ci_high"])
    assert clipped["mean"] == raw["mean"]
    inside = mean_ci([0.5, 0.55, 0.6], bounds=(0.0, 1.0))
    assert inside["ci_low"] == inside["ci_low_unclipped"] and inside["ci_high"] == inside["ci_high_unclipped"]


def test_summarize_clips_every_metric_to_unit_interval():
    runs = [{m: v for m in METRICS} for v in (0.05, 0.5, 0.99)]
    for cell in summarize(runs).values():
        assert 0.0 <= cell["ci_low"] <= cell["mean"] <= cell["ci_high"] <= 1.0
        assert cell["ci_low_unclipped"] < 0.0 and cell["ci_high_unclipped"] > 1.0
