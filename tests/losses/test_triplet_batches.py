"""Class-balanced (PK) batches for triplet mining: every batch has positives, draws repeat from the seed."""

import numpy as np
import pytest

from physioclr_ext.losses.triplet_batches import NO_LABEL, class_balanced_batches, class_members


def _imbalanced(seed: int = 0) -> np.ndarray:
    """500 windows of 5 classes, from 400 down to 5 windows (shuffled)."""
    y = np.repeat(np.arange(5), [400, 60, 25, 10, 5])
    return np.random.default_rng(seed).permutation(y)


@pytest.mark.parametrize("classes_per_batch", [0, 2, 3, 5])
def test_every_batch_has_two_windows_of_each_sampled_class(classes_per_batch):
    y = _imbalanced()
    batches = class_balanced_batches(y, 32, classes_per_batch, seed=3, epoch=1)
    p = 5 if classes_per_batch == 0 else classes_per_batch
    assert len(batches) == -(-len(y) // 32)
    for b in batches:
        assert len(np.unique(b)) == len(b) <= 32  # distinct windows, batch size respected
        counts = np.bincount(y[b], minlength=5)
        sampled = np.flatnonzero(counts)
        assert len(sampled) == p
        assert (counts[sampled] >= 2).all()
        assert (counts[sampled] == np.minimum(32 // p, np.bincount(y)[sampled])).all()


def test_rare_classes_are_oversampled_and_windows_of_a_class_cycle():
    y = np.repeat([0, 1], [90, 6])
    batches = class_balanced_batches(y, 4, seed=0, epoch=1)  # K = 2 per class, every class every batch
    assert len(batches) == 24
    ones = [b[y[b] == 1] for b in batches]
    # the 6 windows of class 1 are drawn as permutations: each group of 3 batches covers all of them once
    for start in range(0, 24, 3):
        assert sorted(np.concatenate(ones[start : start + 3]).tolist()) == list(range(90, 96))
    zeros = np.concatenate([b[y[b] == 0] for b in batches])
    assert len(np.unique(zeros)) == len(zeros) == 48  # 48 of the 90 windows of class 0, none twice


def test_reproducible_from_seed_and_epoch():
    y = _imbalanced()
    a = class_balanced_batches(y, 16, 3, seed=7, epoch=2)
    b = class_balanced_batches(y, 16, 3, seed=7, epoch=2)
    assert all(np.array_equal(x, z) for x, z in zip(a, b)) and len(a) == len(b)
    for other in (class_balanced_batches(y, 16, 3, seed=8, epoch=2), class_balanced_batches(y, 16, 3, seed=7, epoch=3)):
        assert not all(np.array_equal(x, z) for x, z in zip(a, other))


def test_multi_hot_labels_and_the_no_label_class():
    y = np.array([[1, 0], [1, 0], [1, 1], [0, 1], [0, 1], [0, 0], [0, 0], [0, 0]])
    members = class_members(y)
    assert {c: m.tolist() for c, m in members.items()} == {NO_LABEL: [5, 6, 7], 0: [0, 1, 2], 1: [2, 3, 4]}
    for b in class_balanced_batches(y, 6, seed=1, epoch=1):
        hot = y[b]
        assert len(np.unique(b)) == len(b)
        assert (hot[:, 0] > 0).sum() >= 2 and (hot[:, 1] > 0).sum() >= 2 and (hot.sum(1) == 0).sum() >= 2


def test_column_vector_labels_match_a_vector():
    y = _imbalanced(1)
    a = class_balanced_batches(y, 10, 2, seed=0)
    b = class_balanced_batches(y[:, None].astype(float), 10, 2, seed=0)
    assert all(np.array_equal(x, z) for x, z in zip(a, b))


def test_unusable_settings_fail_with_a_reason():
    with pytest.raises(ValueError, match="two classes"):
        class_balanced_batches(np.array([0, 0, 0, 1]), 4)  # class 1 has a single window
    with pytest.raises(ValueError, match="fewer than 2"):
        class_balanced_batches(_imbalanced(), 8, classes_per_batch=5)
