"""Triplet margin loss with online mining in each batch.

``L = mean_(a,p,n) max(0, ||f_a - f_p||^2 - ||f_a - f_n||^2 + margin)`` on squared Euclidean distances
(Schroff, Kalenichenko, Philbin, "FaceNet", CVPR 2015, eq. 1), as the SMILES-2025 study's
``TripletLoss(margin=1.0)`` (METHODS.md section 7). Triplets are mined in the batch:

* ``random`` (the study's): per anchor, one positive and one negative drawn at random;
* ``semi-hard`` (FaceNet): every anchor-positive pair, with the closest negative inside the margin
  window ``d_ap < d_an < d_ap + margin``; pairs without such a negative are left out;
* ``hardest`` (batch-hard, Hermans, Beyer, Leibe 2017, arXiv 1703.07737): per anchor, the farthest
  positive and the closest negative.

Label rule: one label column holds class indices (binary 0/1 included): same class = positive. Several
columns are multi-hot: two samples sharing at least one label are positives, two samples with no label
at all are positives (the "no finding" class), every other pair is negative. Anchors without a
positive or a negative in the batch give no triplet.
"""

from __future__ import annotations

from typing import Dict, Optional, Tuple

import torch
from torch import Tensor

__all__ = ["MINING", "mine_triplets", "same_label_matrix", "squared_distances", "triplet_loss"]

MINING = ("random", "semi-hard", "hardest")


def same_label_matrix(labels: Tensor) -> Tensor:
    """(B, B) bool: whether samples i and j count as the same label (see the module's label rule).

    Args:
        labels: (B,) or (B, 1) class indices, or (B, L) multi-hot labels with L > 1.

    Example:
        >>> same_label_matrix(torch.tensor([[1, 0], [1, 1], [0, 0]])).int().tolist()
        [[1, 1, 0], [1, 1, 0], [0, 0, 1]]
    """
    if labels.ndim == 1 or (labels.ndim == 2 and labels.shape[1] == 1):
        y = labels.reshape(-1)
        return y[:, None] == y[None, :]
    y = (labels > 0).float()
    empty = y.sum(1) == 0
    return (y @ y.t() > 0) | (empty[:, None] & empty[None, :])


def squared_distances(x: Tensor) -> Tensor:
    """(B, B) squared Euclidean distances between the rows of ``x`` (B, E)."""
    sq = x.pow(2).sum(1)
    return (sq[:, None] - 2 * x @ x.t() + sq[None, :]).clamp_min(0)


def _random_pick(mask: Tensor, generator: Optional[torch.Generator]) -> Tensor:
    """Per row of ``mask`` (B, B), a uniformly random column where it is true."""
    scores = torch.rand(mask.shape, generator=generator).to(mask.device)
    return torch.where(mask, scores, torch.full_like(scores, -1.0)).argmax(1)


def mine_triplets(
    embeddings: Tensor,
    labels: Tensor,
    mining: str = "random",
    margin: float = 1.0,
    generator: Optional[torch.Generator] = None,
) -> Tuple[Tensor, Tensor, Tensor]:
    """Indices ``(anchor, positive, negative)``, each (M,), of the triplets mined in a batch.

    Args:
        embeddings: (B, E); distances are computed without gradient.
        labels: see :func:`same_label_matrix`.
        mining: one of :data:`MINING`.
        margin: the semi-hard window's width.
        generator: randomness of ``random`` mining.
    """
    if mining not in MINING:
        raise ValueError(f"mining must be one of {MINING}, not {mining!r}")
    b = embeddings.shape[0]
    same = same_label_matrix(labels.to(embeddings.device))
    eye = torch.eye(b, dtype=torch.bool, device=embeddings.device)
    pos, neg = same & ~eye, ~same
    d = squared_distances(embeddings.detach().float())
    if mining == "semi-hard":
        a, p = pos.nonzero(as_tuple=True)
        d_ap = d[a, p][:, None]
        window = neg[a] & (d[a] > d_ap) & (d[a] < d_ap + margin)
        inf = torch.full_like(d[a], float("inf"))
        n = torch.where(window, d[a], inf).argmin(1)
        keep = window.any(1)
        return a[keep], p[keep], n[keep]
    valid = pos.any(1) & neg.any(1)
    anchors = valid.nonzero().flatten()
    if mining == "hardest":
        p = torch.where(pos, d, torch.full_like(d, -1.0)).argmax(1)
        n = torch.where(neg, d, torch.full_like(d, float("inf"))).argmin(1)
    else:
        p, n = _random_pick(pos, generator), _random_pick(neg, generator)
    return anchors, p[anchors], n[anchors]


def triplet_loss(
    embeddings: Tensor,
    labels: Tensor,
    margin: float = 1.0,
    mining: str = "random",
    generator: Optional[torch.Generator] = None,
) -> Tuple[Tensor, Dict[str, float]]:
    """Mean triplet margin loss over the mined triplets (0, with gradient, when there is none).

    Args:
        embeddings: (B, E), l2-normalised by the model in the study.
        labels: (B,), (B, 1) class indices or (B, L) multi-hot.

    Returns:
        the loss and logs: ``n_triplets``, ``active`` (share of triplets with a positive loss),
        ``d_ap`` and ``d_an`` (mean squared distances).

    Example:
        >>> x = torch.tensor([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0], [0.0, 1.0]])
        >>> float(triplet_loss(x, torch.tensor([0, 0, 1, 1]), margin=1.0, mining="hardest")[0])
        0.0
    """
    a, p, n = mine_triplets(embeddings, labels, mining, margin, generator)
    if len(a) == 0:
        zero = embeddings.sum() * 0.0
        return zero, {"n_triplets": 0.0, "active": 0.0, "d_ap": 0.0, "d_an": 0.0}
    d_ap = (embeddings[a] - embeddings[p]).pow(2).sum(1)
    d_an = (embeddings[a] - embeddings[n]).pow(2).sum(1)
    losses = torch.relu(d_ap - d_an + margin)
    logs = {
        "n_triplets": float(len(a)),
        "active": float((losses > 0).float().mean()),
        "d_ap": float(d_ap.detach().mean()),
        "d_an": float(d_an.detach().mean()),
    }
    return losses.mean(), logs
