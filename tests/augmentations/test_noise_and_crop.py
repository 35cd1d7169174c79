"""gaussian_noise (relative per-lead level) and random_resized_crop (resized window)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from physioclr_ext.augmentations import gaussian_noise, random_resized_crop

from ._util import assert_close, batch, gen, ramp


@pytest.mark.parametrize("factor", [0.05, 0.1, 0.5])
def test_gaussian_noise_std_is_factor_times_lead_std(factor):
    x = batch(2, 12, 20_000).double()
    x = x * torch.logspace(-2, 1, 12, dtype=torch.float64)[None, :, None]  # leads of very different size
    noise = gaussian_noise(x, gen(0), factor=factor) - x
    ratio = noise.std(-1) / (factor * x.std(-1))
    assert ((ratio - 1).abs() < 0.03).all()
    assert (noise.mean(-1).abs() < 0.03 * factor * x.std(-1)).all()


def test_gaussian_noise_zero_factor_and_flat_lead():
    x = batch(2, 12, 2500)
    assert torch.equal(gaussian_noise(x, gen(0), factor=0.0), x)
    flat = torch.full((1, 2, 100), 3.0)
    assert torch.equal(gaussian_noise(flat, gen(0)), flat)
    with pytest.raises(ValueError, match="factor"):
        gaussian_noise(x, gen(0), factor=-1.0)


def test_random_resized_crop_full_scale_is_identity():
    x = batch(3, 12, 2500)
    assert torch.equal(random_resized_crop(x, gen(0), scale=(1.0, 1.0)), x)


@pytest.mark.parametrize("t,scale", [(2500, (0.5, 1.0)), (5000, (0.2, 0.4))])
def test_random_resized_crop_matches_interpolated_crop(t, scale):
    b = 6
    # Lead 0 is a ramp that reveals each example's crop; lead 1 is checked against F.interpolate.
    x = torch.cat([ramp(b, 1, t), batch(b, 1, t).double()], dim=1)
    out = random_resized_crop(x, gen(1), scale=scale)
    k1, k2 = t // 4, 3 * t // 4
    for row_in, row_out in zip(x, out):
        length = round(float(row_out[0, k2] - row_out[0, k1]) * t / (k2 - k1))
        start = round(float(row_out[0, k1]) - (k1 + 0.5) * length / t + 0.5)
        assert scale[0] * t - 1 <= length <= scale[1] * t + 1
        assert 0 <= start and start + length <= t
        crop = row_in[None, 1:, start : start + length]
        expected = F.interpolate(crop, size=t, mode="linear", align_corners=False)[0, 0]
        assert_close(row_out[1], expected, atol=1e-9)


def test_random_resized_crop_same_window_for_all_leads():
    out = random_resized_crop(ramp(6, 12, 2500), gen(2))
    assert (out == out[:, :1]).all()
    assert not (out[0] == out[1]).all()


@pytest.mark.parametrize("scale", [(0.9, 0.5), (0.0, 1.1)])
def test_random_resized_crop_rejects_bad_scale(scale):
    with pytest.raises(ValueError, match="scale"):
        random_resized_crop(batch(1, 1, 100), gen(0), scale=scale)
