"""Patching round-trips exactly; random masking keeps a fixed, sorted, reproducible subset."""

from __future__ import annotations

import pytest
import torch

from physioclr_ext.modules.patching import patchify, random_masking, unpatchify


@pytest.mark.parametrize("c, t, p", [(1, 3600, 100), (12, 2500, 50), (2, 90, 90), (3, 12, 1)])
def test_patchify_round_trip_is_exact(c: int, t: int, p: int) -> None:
    x = torch.randn(2, c, t, generator=torch.Generator().manual_seed(c + t))
    patches = patchify(x, p)
    assert patches.shape == (2, c, t // p, p)
    assert torch.equal(patches[1, c - 1, 0], x[1, c - 1, :p])  # patch k of lead c holds samples k*P..(k+1)*P-1
    assert torch.equal(patches[0, 0, -1], x[0, 0, t - p :])
    assert torch.equal(unpatchify(patches), x)


@pytest.mark.parametrize("t, p", [(2500, 75), (100, 0), (10, 11)])
def test_patchify_rejects_lengths_that_are_not_multiples(t: int, p: int) -> None:
    with pytest.raises(ValueError, match="multiple of patch_size"):
        patchify(torch.zeros(1, 2, t), p)


def test_patchify_rejects_wrong_rank() -> None:
    with pytest.raises(ValueError, match=r"\(B, C, T\)"):
        patchify(torch.zeros(2, 100), 10)


@pytest.mark.parametrize("n, ratio, n_keep", [(60, 0.75, 15), (50, 0.6, 20), (30, 0.5, 15), (3, 0.9, 1), (7, 0.0, 7)])
def test_random_masking_keeps_n_keep_sorted_indices(n: int, ratio: float, n_keep: int) -> None:
    keep, mask = random_masking(8, n, ratio, torch.Generator().manual_seed(0))
    assert keep.shape == (8, n_keep) and keep.dtype == torch.long
    assert mask.shape == (8, n) and mask.dtype == torch.bool
    assert (mask.sum(dim=1) == n - n_keep).all()
    assert (keep[:, 1:] > keep[:, :-1]).all()  # ascending, hence distinct
    assert not mask.gather(1, keep).any()  # kept tokens are exactly the unmasked ones


def test_random_masking_is_reproducible_with_a_seeded_generator() -> None:
    a = random_masking(4, 40, 0.75, torch.Generator().manual_seed(7))
    b = random_masking(4, 40, 0.75, torch.Generator().manual_seed(7))
    c = random_masking(4, 40, 0.75, torch.Generator().manual_seed(8))
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    assert not torch.equal(a[1], c[1])
    assert not torch.equal(a[1][0], a[1][1])  # rows are masked independently


def test_random_masking_rejects_bad_ratio() -> None:
    with pytest.raises(ValueError):
        random_masking(1, 10, 1.0)
