"""Seeded n-shot subsets and patient-level splits."""

import numpy as np
import pytest

from physioclr_ext.evaluation.sampling import (
    _patient_strata,
    n_shot_indices,
    patient_split,
    repeated_patient_splits,
)

LABELS = np.repeat([0, 1, 2], [20, 12, 8])


def test_n_shot_exact_sorted_unique():
    idx = n_shot_indices(LABELS, 7, seed=0)
    assert len(idx) == 7 and len(set(idx)) == 7
    assert np.all(np.diff(idx) > 0) and idx.min() >= 0 and idx.max() < len(LABELS)
    assert len(n_shot_indices(LABELS, len(LABELS), seed=0)) == len(LABELS)


def test_n_shot_balanced_per_class():
    idx = n_shot_indices(LABELS, 5, seed=1, balanced=True)
    assert np.bincount(LABELS[idx]).tolist() == [5, 5, 5]
    column = n_shot_indices(LABELS[:, None].astype(np.float32), 5, seed=1, balanced=True)
    assert np.array_equal(column, idx)


def test_n_shot_seeded():
    a = n_shot_indices(LABELS, 6, seed=3)
    assert np.array_equal(a, n_shot_indices(LABELS, 6, seed=3))
    assert not np.array_equal(a, n_shot_indices(LABELS, 6, seed=4))
    b = n_shot_indices(LABELS, 3, seed=3, balanced=True)
    assert not np.array_equal(b, n_shot_indices(LABELS, 3, seed=4, balanced=True))


def test_n_shot_multilabel_balanced():
    onehot = np.eye(3, dtype=int)[LABELS]
    idx = n_shot_indices(onehot, 4, seed=0, balanced=True)
    assert onehot[idx].sum(axis=0).tolist() == [4, 4, 4]
    rng = np.random.default_rng(0)
    multi = (rng.random((200, 4)) < [0.6, 0.3, 0.1, 0.05]).astype(int)
    idx = n_shot_indices(multi, 3, seed=0, balanced=True)
    assert (multi[idx].sum(axis=0) >= 3).all() and len(idx) <= 12
    assert multi[idx].any(axis=1).all()


def test_n_shot_errors():
    with pytest.raises(ValueError, match="41 examples requested but only 40"):
        n_shot_indices(LABELS, 41, seed=0)
    with pytest.raises(ValueError, match="class 2 has 8 examples; 9 per class"):
        n_shot_indices(LABELS, 9, seed=0, balanced=True)
    with pytest.raises(ValueError, match="label 2 has 8 positive examples"):
        n_shot_indices(np.eye(3)[LABELS], 9, seed=0, balanced=True)
    with pytest.raises(ValueError, match="at least 1"):
        n_shot_indices(LABELS, 0, seed=0)


PATIENTS = np.repeat(np.arange(20), 3)


def _patients_of(split):
    return {k: set(PATIENTS[v]) for k, v in split.items()}


def test_patient_split_disjoint_complete_sized():
    split = patient_split(PATIENTS, seed=0)
    groups = _patients_of(split)
    assert [len(groups[k]) for k in ("train", "valid", "test")] == [14, 3, 3]
    assert not (
        groups["train"] & groups["valid"] or groups["train"] & groups["test"] or groups["valid"] & groups["test"]
    )
    assert np.array_equal(np.sort(np.concatenate(list(split.values()))), np.arange(len(PATIENTS)))
    assert all(np.all(np.diff(v) > 0) for v in split.values())


def test_patient_split_seeded():
    a = patient_split(PATIENTS, seed=5)
    assert all(np.array_equal(a[k], patient_split(PATIENTS, seed=5)[k]) for k in a)
    assert not np.array_equal(a["train"], patient_split(PATIENTS, seed=6)["train"])


def test_patient_split_three_patients_all_non_empty():
    split = patient_split(["a", "b", "b", "c"], fractions=(0.8, 0.1, 0.1), seed=0)
    assert all(len(v) > 0 for v in split.values())
    assert sum(len(v) for v in split.values()) == 4


def test_patient_split_stratified():
    labels = np.where(PATIENTS < 10, 0, 1)
    split = patient_split(PATIENTS, fractions=(0.5, 0.25, 0.25), seed=2, stratify=labels)
    train_labels = [labels[PATIENTS == p][0] for p in _patients_of(split)["train"]]
    assert sorted(train_labels) == [0] * 5 + [1] * 5
    for name in ("valid", "test"):
        assert set(labels[split[name]]) == {0, 1}


def test_patient_majority_label():
    _, inverse = np.unique([7, 7, 7, 9, 9], return_inverse=True)
    strata = _patient_strata(inverse, 2, np.array([2, 2, 1, 1, 2]))
    # strata are ranks of the distinct labels: 1 -> 0, 2 -> 1; the 1-1 tie goes to the smaller label
    assert strata.tolist() == [1, 0]


def test_patient_split_errors():
    with pytest.raises(ValueError, match="fractions"):
        patient_split(PATIENTS, fractions=(0.5, 0.2, 0.2))
    with pytest.raises(ValueError, match="stratify has 3 entries"):
        patient_split(PATIENTS, stratify=np.zeros(3))


def test_repeated_patient_splits_use_seed_plus_r():
    splits = repeated_patient_splits(PATIENTS, 3, seed=10, fractions=(0.6, 0.2, 0.2))
    assert len(splits) == 3
    for r, split in enumerate(splits):
        expected = patient_split(PATIENTS, (0.6, 0.2, 0.2), seed=10 + r)
        assert all(np.array_equal(split[k], expected[k]) for k in expected)
