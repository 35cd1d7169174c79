"""zero_mask, dropout_mask and time_out: exactly what is zeroed."""

from __future__ import annotations

import pytest
import torch

from physioclr_ext.augmentations import dropout_mask, time_out, zero_mask

from ._util import batch, gen


def _single_zero_run(row: torch.Tensor) -> tuple[int, int]:
    """``(start, length)`` of the zeros of ``row``, asserting they form one contiguous run."""
    idx = torch.nonzero(row == 0).flatten()
    if idx.numel() == 0:
        return -1, 0
    assert torch.equal(idx, torch.arange(int(idx[0]), int(idx[0]) + idx.numel()))
    return int(idx[0]), idx.numel()


@pytest.mark.parametrize("t,ratio", [(2500, 0.1), (5000, 0.25), (2500, 1.0), (333, 0.123)])
def test_zero_mask_zeros_one_span_of_exact_length_per_lead(t, ratio):
    x = batch(3, 12, t)
    out = zero_mask(x, gen(0), ratio=ratio)
    span = round(ratio * t)
    starts = set()
    for a, b in zip(x.reshape(-1, t), out.reshape(-1, t)):
        start, length = _single_zero_run(b)
        assert length == span
        keep = b != 0
        assert torch.equal(a[keep], b[keep])
        starts.add(start)
    if span < t:
        assert len(starts) > 1  # independent per example and lead


def test_zero_mask_ratio_zero_is_identity():
    x = batch(2, 12, 2500)
    assert torch.equal(zero_mask(x, gen(0), ratio=0.0), x)


def test_zero_mask_spans_reach_both_ends():
    out = zero_mask(torch.ones(200, 1, 50), gen(1), ratio=0.5)
    starts = torch.tensor([_single_zero_run(row)[0] for row in out.reshape(-1, 50)])
    assert starts.min() == 0 and starts.max() == 25


@pytest.mark.parametrize("t,ratio", [(2500, 0.1), (5000, 0.3), (2500, 0.0), (2500, 1.0)])
def test_dropout_mask_zeros_exact_fraction(t, ratio):
    x = batch(3, 12, t)
    out = dropout_mask(x, gen(2), ratio=ratio)
    zeros = out == 0
    assert (zeros.sum(-1) == round(ratio * t)).all()
    assert torch.equal(out[~zeros], x[~zeros])


def test_dropout_mask_positions_differ_between_leads_and_calls():
    g = gen(3)
    x = batch(2, 12, 1000)
    a, b = dropout_mask(x, g, ratio=0.2) == 0, dropout_mask(x, g, ratio=0.2) == 0
    assert not torch.equal(a[0, 0], a[0, 1]) and not torch.equal(a, b)


@pytest.mark.parametrize("fn", [zero_mask, dropout_mask])
@pytest.mark.parametrize("ratio", [-0.1, 1.5])
def test_masks_reject_bad_ratio(fn, ratio):
    with pytest.raises(ValueError, match="ratio"):
        fn(batch(1, 1, 100), gen(0), ratio=ratio)


@pytest.mark.parametrize("scale", [(0.0, 0.5), (0.2, 0.2), (0.1, 0.9)])
def test_time_out_zeros_one_span_shared_by_all_leads(scale):
    t = 2500
    x = batch(16, 12, t)
    out = time_out(x, gen(4), scale=scale)
    lengths = []
    for a, b in zip(x, out):
        zeros = b == 0
        assert (zeros == zeros[0]).all()  # same span on every lead
        _, length = _single_zero_run(b[0])
        assert scale[0] * t - 0.5 <= length <= scale[1] * t + 0.5
        assert torch.equal(a[~zeros], b[~zeros])
        lengths.append(length)
    if scale[0] < scale[1]:
        assert len(set(lengths)) > 1


def test_time_out_zero_scale_is_identity():
    x = batch(2, 12, 2500)
    assert torch.equal(time_out(x, gen(0), scale=(0.0, 0.0)), x)


@pytest.mark.parametrize("scale", [(0.5, 0.2), (-0.1, 0.5), (0.0, 1.5), (0.3,)])
def test_time_out_rejects_bad_scale(scale):
    with pytest.raises(ValueError, match="scale"):
        time_out(batch(1, 1, 100), gen(0), scale=scale)
