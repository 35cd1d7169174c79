"""Collapse diagnostics against hand-computed cases and their limits."""

from __future__ import annotations

import numpy as np
import pytest

from physioclr_ext.evaluation.collapse import collapse_report, effective_rank, per_dimension_std


def test_per_dimension_std_is_the_mean_of_column_stds():
    x = np.array([[0.0, 10.0, 5.0], [2.0, 10.0, 1.0], [4.0, 10.0, 3.0]])
    expected = (np.std([0, 2, 4]) + 0.0 + np.std([5, 1, 3])) / 3
    assert per_dimension_std(x) == pytest.approx(expected)


def test_effective_rank_limits():
    rng = np.random.default_rng(0)
    one_direction = rng.normal(size=(50, 1)) @ rng.normal(size=(1, 16))
    assert effective_rank(one_direction) == pytest.approx(1.0, abs=1e-6)
    assert effective_rank(np.ones((10, 4))) == 1.0  # complete collapse
    # k orthogonal directions with equal spread: rank k
    q, _ = np.linalg.qr(rng.normal(size=(16, 16)))
    signs = np.array([[1, 1, 1, 1], [-1, -1, -1, -1], [1, -1, 1, -1], [-1, 1, -1, 1]], dtype=float)
    coords = np.concatenate([np.diag([1.0] * 4) * s for s in (1, -1)])  # +-e_k: centred, equal spread
    assert effective_rank(coords @ q[:4]) == pytest.approx(4.0, rel=1e-6)
    assert 1.0 < effective_rank(signs) < 4.0


def test_effective_rank_matches_the_entropy_formula():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(40, 6)) * np.array([5.0, 3.0, 1.0, 1.0, 0.5, 0.1])
    s = np.linalg.svd(x - x.mean(0), compute_uv=False)
    p = s / s.sum()
    assert effective_rank(x) == pytest.approx(float(np.exp(-(p * np.log(p)).sum())))
    report = collapse_report(x)
    assert report["dim"] == 6 and report["effective_rank"] == pytest.approx(effective_rank(x))


def test_rejects_a_single_sample():
    with pytest.raises(ValueError, match="N >= 2"):
        effective_rank(np.ones((1, 3)))
