"""Seeded sampling for evaluation protocols: n-shot subsets and patient-level splits.

Every function draws from ``numpy.random.default_rng(seed)``, so a result depends
only on its arguments.
"""

from __future__ import annotations

from typing import Any, Dict, List, Optional, Sequence, Union

import numpy as np

SPLITS = ("train", "valid", "test")


def _is_multilabel(labels: np.ndarray) -> bool:
    return labels.ndim == 2 and labels.shape[1] > 1


def _class_vector(labels: np.ndarray) -> np.ndarray:
    """(N,) or (N, 1) labels -> (N,)."""
    if labels.ndim == 2 and labels.shape[1] == 1:
        return labels[:, 0]
    if labels.ndim != 1:
        raise ValueError(f"expected labels of shape (N,) or (N, 1), got {labels.shape}")
    return labels


def _balanced_classes(y: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    chosen = []
    for c in np.unique(y):
        members = np.flatnonzero(y == c)
        if len(members) < n:
            raise ValueError(f"class {c:g} has {len(members)} examples; {n} per class requested")
        chosen.append(rng.choice(members, size=n, replace=False))
    return np.concatenate(chosen)


def _balanced_multilabel(y: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    positives = (y > 0).sum(axis=0)
    short = np.flatnonzero(positives < n)
    if len(short):
        k = short[0]
        raise ValueError(f"label {k} has {positives[k]} positive examples; {n} per label requested")
    chosen = np.zeros(len(y), dtype=bool)
    for k in np.argsort(positives, kind="stable"):
        have = int((y[chosen, k] > 0).sum())
        if have >= n:
            continue
        pool = np.flatnonzero((y[:, k] > 0) & ~chosen)
        chosen[rng.choice(pool, size=n - have, replace=False)] = True
    return np.flatnonzero(chosen)


def n_shot_indices(labels: np.ndarray, n: int, seed: int, balanced: bool = False) -> np.ndarray:
    """Sorted indices of a seeded n-shot training subset, drawn without replacement.

    Args:
        labels: (N,) or (N, 1) class labels (binary or multiclass), or (N, K) 0/1
            labels (multilabel).
        n: ``balanced=False``: exactly ``n`` examples in total. ``balanced=True``:
            binary/multiclass: exactly ``n`` examples of every class present in
            ``labels`` (``n * n_classes`` in total). Multilabel: labels are visited
            from the rarest to the most common; for each, positives not drawn yet
            are added until the subset holds ``n`` positives of that label. Every
            label thus gets at least ``n`` positives (exactly ``n`` unless earlier
            draws already brought more, as labels co-occur), at most ``n * K``
            examples are drawn, and examples with no positive label are never drawn.
        seed: seed of the draw.

    Raises:
        ValueError: fewer than ``n`` examples (in total, of a class, or positive
            for a label).
    """
    labels = np.asarray(labels)
    if n < 1:
        raise ValueError(f"n must be at least 1, got {n}")
    rng = np.random.default_rng(seed)
    if not balanced:
        if n > len(labels):
            raise ValueError(f"{n} examples requested but only {len(labels)} available")
        return np.sort(rng.choice(len(labels), size=n, replace=False))
    if _is_multilabel(labels):
        return np.sort(_balanced_multilabel(labels, n, rng))
    return np.sort(_balanced_classes(_class_vector(labels), n, rng))


def _split_sizes(n_patients: int, fractions: Sequence[float]) -> np.ndarray:
    """Patients per split: largest-remainder rounding, every split with a positive fraction >= 1."""
    f = np.asarray(fractions, dtype=np.float64)
    if len(f) != len(SPLITS) or (f < 0).any() or not np.isclose(f.sum(), 1.0):
        raise ValueError(f"fractions must be 3 non-negative numbers summing to 1, got {tuple(fractions)}")
    exact = f * n_patients
    sizes = np.floor(exact).astype(int)
    remainder_order = np.argsort(-(exact - sizes), kind="stable")
    sizes[remainder_order[: n_patients - sizes.sum()]] += 1
    wanted = f > 0
    if n_patients >= wanted.sum():
        for s in np.flatnonzero(wanted & (sizes == 0)):
            sizes[np.argmax(sizes)] -= 1
            sizes[s] = 1
    return sizes


def _patient_strata(inverse: np.ndarray, n_patients: int, stratify: Optional[np.ndarray]) -> np.ndarray:
    """Majority label of each patient (ties: the smallest label), as a stratum index."""
    if stratify is None:
        return np.zeros(n_patients, dtype=int)
    stratify = np.asarray(stratify)
    if len(stratify) != len(inverse):
        raise ValueError(f"stratify has {len(stratify)} entries for {len(inverse)} examples")
    rows = stratify.reshape(len(stratify), -1)
    _, label = np.unique(rows, axis=0, return_inverse=True)
    counts = np.zeros((n_patients, label.max() + 1), dtype=int)
    np.add.at(counts, (inverse, label.reshape(-1)), 1)
    return counts.argmax(axis=1)


def patient_split(
    patients: Union[Sequence[Any], np.ndarray],
    fractions: Sequence[float] = (0.7, 0.15, 0.15),
    seed: int = 0,
    stratify: Optional[np.ndarray] = None,
) -> Dict[str, np.ndarray]:
    """Seeded train/valid/test split of examples that keeps every patient in one split.

    Split sizes count patients (largest-remainder rounding of ``fractions``); with at
    least 3 patients every split with a positive fraction gets at least one.

    With ``stratify`` (per-example labels (N,) or (N, L); a multilabel row counts as
    its label combination), each patient takes its majority label and patients of
    each label are spread evenly over the split order: within a label the m
    patients, shuffled, get the positions ``(j + u) / m`` (``u`` random per label)
    and all patients are then cut in that order. Each split thus receives close to
    ``fractions`` of every label's patients.

    Args:
        patients: (N,) patient id of every example.

    Returns:
        ``{"train", "valid", "test"}``: sorted example indices (disjoint patients).
    """
    patient_ids = np.asarray(patients)
    uniq, inverse = np.unique(patient_ids, return_inverse=True)
    inverse = inverse.reshape(-1)
    rng = np.random.default_rng(seed)
    strata = _patient_strata(inverse, len(uniq), stratify)
    position = np.empty(len(uniq))
    for s in np.unique(strata):
        members = np.flatnonzero(strata == s)
        position[rng.permutation(members)] = (np.arange(len(members)) + rng.random()) / len(members)
    order = np.lexsort((rng.random(len(uniq)), position))
    bounds = np.cumsum(_split_sizes(len(uniq), fractions))[:-1]
    split_of_patient = np.empty(len(uniq), dtype=int)
    for s, block in enumerate(np.split(order, bounds)):
        split_of_patient[block] = s
    per_example = split_of_patient[inverse]
    return {name: np.flatnonzero(per_example == s) for s, name in enumerate(SPLITS)}


def repeated_patient_splits(
    patients: Sequence,
    repeats: int,
    seed: int = 0,
    fractions: Sequence[float] = (0.7, 0.15, 0.15),
    stratify: Optional[np.ndarray] = None,
) -> List[Dict[str, np.ndarray]]:
    """``repeats`` patient splits; repeat ``r`` is :func:`patient_split` with seed ``seed + r``."""
    return [patient_split(patients, fractions, seed + r, stratify) for r in range(repeats)]
