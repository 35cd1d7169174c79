"""time_warp and permutation: their defining invariants."""

from __future__ import annotations

import pytest
import torch

from physioclr_ext.augmentations import permutation, time_warp

from ._util import assert_close, batch, gen, ramp


def test_time_warp_zero_warp_is_identity():
    x = batch(3, 12, 2500)
    assert_close(time_warp(x, gen(0), warp=0.0), x, atol=1e-5)


@pytest.mark.parametrize("t", [2500, 5003])
def test_time_warp_is_piecewise_linear_stretch_of_half_the_segments(t):
    warp, m = 0.2, 4
    out = time_warp(ramp(2, 12, t), gen(1), n_segments=m, warp=warp)
    slope = out.diff(dim=-1)
    # A ramp through the warp has slope 1/(1+warp) where stretched and 1/(1-warp) where compressed.
    slow = (slope - 1 / (1 + warp)).abs() < 1e-6
    fast = (slope - 1 / (1 - warp)).abs() < 1e-6
    n = t - 1
    # Stretched halves fill (1+warp)/2 of the output; a few samples straddle segment borders.
    assert ((slow.sum(-1) - n * (1 + warp) / 2).abs() <= m).all()
    assert ((fast.sum(-1) - n * (1 - warp) / 2).abs() <= m).all()
    assert (slope > 0).all()
    assert out[..., 0].max() < 1 and out[..., -1].min() > t - 2


def test_time_warp_chooses_segments_independently_per_example_and_lead():
    out = time_warp(ramp(4, 12, 2000), gen(2), n_segments=4, warp=0.3)
    # The position sampled at the first segment's end tells whether it was stretched.
    first_stretched = out[..., 500] < 500
    assert 0 < first_stretched.sum() < first_stretched.numel()


@pytest.mark.parametrize("kwargs", [{"n_segments": 3}, {"n_segments": 0}, {"warp": 1.0}, {"warp": -0.1}])
def test_time_warp_rejects_bad_parameters(kwargs):
    with pytest.raises(ValueError):
        time_warp(batch(1, 1, 100), gen(0), **kwargs)


def _segment_order(out_row: torch.Tensor, bounds: list[tuple[int, int]]) -> list[int]:
    """Read an output lead of a permuted ramp as a sequence of input segment ids."""
    order, pos = [], 0
    while pos < out_row.numel():
        seg = next(i for i, (lo, hi) in enumerate(bounds) if lo <= int(out_row[pos]) < hi)
        lo, hi = bounds[seg]
        assert torch.equal(out_row[pos : pos + hi - lo], torch.arange(lo, hi, dtype=out_row.dtype))
        order.append(seg)
        pos += hi - lo
    return order


@pytest.mark.parametrize("t,m", [(2500, 4), (2503, 4), (5000, 7)])
def test_permutation_keeps_the_multiset_of_segments(t, m):
    out = permutation(ramp(3, 12, t), gen(4), n_segments=m)
    size = t // m
    bounds = [(i * size, (i + 1) * size if i < m - 1 else t) for i in range(m)]
    orders = {tuple(_segment_order(row, bounds)) for row in out.reshape(-1, t)}
    assert all(sorted(order) == list(range(m)) for order in orders)
    assert len(orders) > 1


def test_permutation_segment_tuples_sorted_match_input():
    x = batch(2, 12, 2500)
    out = permutation(x, gen(5), n_segments=5)
    for a, b in zip(x.reshape(-1, 2500), out.reshape(-1, 2500)):
        assert sorted(map(tuple, a.view(5, -1).tolist())) == sorted(map(tuple, b.view(5, -1).tolist()))


def test_permutation_with_one_segment_is_identity():
    x = batch(2, 12, 2500)
    assert torch.equal(permutation(x, gen(0), n_segments=1), x)


def test_permutation_rejects_bad_segment_counts():
    with pytest.raises(ValueError):
        permutation(batch(1, 1, 10), gen(0), n_segments=0)
    with pytest.raises(ValueError):
        permutation(batch(1, 1, 10), gen(0), n_segments=11)
