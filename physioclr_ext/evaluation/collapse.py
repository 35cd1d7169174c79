"""Signs of representation collapse: per-dimension spread and effective rank of embeddings.

A collapsed encoder maps every input to (nearly) the same vector (complete collapse: every
dimension's standard deviation near zero) or to a low-dimensional subspace (dimensional
collapse: a few singular values carry all the variance). Self-supervised methods without
negatives (JEPA, BYOL-style EMA targets, Barlow Twins) are watched with both numbers
(RankMe, Garrido et al., ICML 2023, for the effective rank).
"""

from __future__ import annotations

from typing import Dict

import numpy as np


def per_dimension_std(x: np.ndarray) -> float:
    """Mean over dimensions of each dimension's standard deviation across samples.

    Args:
        x: ``(N, D)`` embeddings.

    Example:
        >>> round(per_dimension_std(np.array([[0.0, 1.0], [2.0, 1.0]])), 3)
        0.5
    """
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2 or x.shape[0] < 2:
        raise ValueError(f"need (N >= 2, D) embeddings, got shape {x.shape}")
    return float(x.std(axis=0).mean())


def effective_rank(x: np.ndarray, eps: float = 1e-12) -> float:
    """``exp(H(p))`` with ``p`` the singular values of the centred ``x`` normalised to sum 1.

    Between 1 (all variance along one direction) and ``min(N, D)`` (all singular values equal).

    Args:
        x: ``(N, D)`` embeddings.

    Example:
        >>> round(effective_rank(np.eye(4)), 6)  # centred, rank 3 with equal singular values
        3.0
    """
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2 or x.shape[0] < 2:
        raise ValueError(f"need (N >= 2, D) embeddings, got shape {x.shape}")
    s = np.linalg.svd(x - x.mean(axis=0), compute_uv=False)
    total = s.sum()
    if total <= eps:
        return 1.0
    p = s / total
    p = p[p > eps]
    return float(np.exp(-(p * np.log(p)).sum()))


def collapse_report(x: np.ndarray) -> Dict[str, float]:
    """``{"per_dim_std": ..., "effective_rank": ..., "dim": D}`` of ``(N, D)`` embeddings."""
    return {"per_dim_std": per_dimension_std(x), "effective_rank": effective_rank(x), "dim": float(np.shape(x)[1])}
