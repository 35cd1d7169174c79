"""Class-balanced batches for triplet mining: every batch holds ``P`` classes with ``K`` windows each (the
"PK" batches of Hermans, Beyer, Leibe 2017, arXiv 1703.07737), so every anchor has a positive.

With plain shuffled batches a rare class often has a single window in a batch (no positive, so no triplet)
or none. Here each batch draws ``P`` classes uniformly among those with at least two windows (every class
when ``P`` is 0 or larger than their number) and ``K = batch_size // P`` distinct windows of each. A class's
windows are drawn in the order of a shuffled permutation, reshuffled when used up, so within a class every
window is seen about equally often; rare classes are oversampled. One epoch has ``ceil(N / batch_size)``
batches, ``N`` the number of labelled windows.

Labels follow :func:`physioclr_ext.losses.triplet.same_label_matrix`: one column (or a vector) of class
indices, or multi-hot columns where each label is a class of its own and windows with no label at all form
one more class ("no finding"); a window of several labels may be drawn for any of them.

Everything is drawn from ``numpy.random.default_rng((seed, epoch))``: the batches of an epoch depend only on
the labels, the options, the seed and the epoch (the same on every data-parallel worker and in a resumed run).
"""

from __future__ import annotations

from typing import Dict, List

import numpy as np

__all__ = ["class_balanced_batches", "class_members"]

NO_LABEL = -1
"""Class id of the multi-hot windows that carry no label."""


def class_members(labels: np.ndarray) -> Dict[int, np.ndarray]:
    """Window indices of each class, ``{class id: (n_c,) int64}``.

    Args:
        labels: (N,) or (N, 1) class indices, or (N, L) multi-hot labels with L > 1.

    Example:
        >>> {c: m.tolist() for c, m in class_members(np.array([[1, 0], [1, 1], [0, 0]])).items()}
        {-1: [2], 0: [0, 1], 1: [1]}
    """
    y = np.asarray(labels)
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.ndim == 1:
        return {int(c): np.flatnonzero(y == c) for c in np.unique(y)}
    if y.ndim != 2:
        raise ValueError(f"labels must be (N,), (N, 1) or (N, L), not {y.shape}")
    hot = y > 0
    members = {int(c): np.flatnonzero(hot[:, c]) for c in range(y.shape[1]) if hot[:, c].any()}
    empty = np.flatnonzero(~hot.any(axis=1))
    return {NO_LABEL: empty, **members} if len(empty) else members


class _Cycle:
    """Draws distinct windows of one class in the order of shuffled permutations of its members."""

    def __init__(self, members: np.ndarray, rng: np.random.Generator) -> None:
        self.members, self.rng = members, rng
        self.queue = rng.permutation(members)

    def take(self, k: int) -> np.ndarray:
        """``k`` distinct members (``k`` <= number of members)."""
        out = list(self.queue[:k])
        self.queue = self.queue[k:]
        while len(out) < k:
            self.queue = self.rng.permutation(self.members)
            fresh = [int(i) for i in self.queue if i not in out][: k - len(out)]
            self.queue = np.asarray([i for i in self.queue if i not in fresh], dtype=np.int64)
            out.extend(fresh)
        return np.asarray(out, dtype=np.int64)


def class_balanced_batches(
    labels: np.ndarray, batch_size: int, classes_per_batch: int = 0, seed: int = 0, epoch: int = 1
) -> List[np.ndarray]:
    """The batches (window indices) of one epoch, each with ``K`` windows of each of ``P`` classes.

    Args:
        labels: (N,) or (N, 1) class indices, or (N, L) multi-hot labels.
        batch_size: windows per batch at most; ``K = batch_size // P`` per class.
        classes_per_batch: ``P``; 0 (or more than the classes with two windows): every such class.
        seed, epoch: the draws come from ``default_rng((seed, epoch))``.

    Returns:
        ``ceil(N / batch_size)`` arrays of ``P * K'`` window indices, ``K' = min(K, windows of the class)``
        (a multi-hot window drawn for two classes of a batch appears once).

    Example:
        >>> y = np.array([0, 0, 0, 0, 0, 0, 0, 0, 1, 1])  # one window in five of class 1
        >>> [np.bincount(y[b]).tolist() for b in class_balanced_batches(y, 4, seed=0)]
        [[2, 2], [2, 2], [2, 2]]
    """
    members = {c: m for c, m in class_members(labels).items() if len(m) >= 2}
    if len(members) < 2:
        raise ValueError(
            f"class-balanced batches need at least two classes with two windows each, found {len(members)}"
        )
    p = len(members) if classes_per_batch <= 0 else min(classes_per_batch, len(members))
    k = batch_size // p
    if k < 2:
        raise ValueError(f"batch_size {batch_size} leaves fewer than 2 windows for each of {p} classes")
    rng = np.random.default_rng((seed, epoch))
    classes = sorted(members)
    cycles = {c: _Cycle(members[c], rng) for c in classes}
    n_batches = -(-len(np.asarray(labels)) // batch_size)
    batches = []
    for _ in range(n_batches):
        chosen = classes if p == len(classes) else sorted(rng.choice(classes, size=p, replace=False).tolist())
        picks = [cycles[c].take(min(k, len(members[c]))) for c in chosen]
        batches.append(np.unique(np.concatenate(picks)))
    return batches
