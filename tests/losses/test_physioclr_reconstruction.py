"""PhysioCLR's peak-aware reconstruction terms (losses/physioclr_reconstruction.py) against direct
computations of their formulas."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from physioclr_ext.losses import peak_aware_reconstruction_loss, peak_map_loss, peak_weights, r_peak_map


def test_r_peak_map_is_max_of_unit_gaussians() -> None:
    peaks, sr, sigma_s, t = [[40, 55, 200], [], [-1, 120, 500]], 250.0, 0.02, 300
    m = r_peak_map(peaks, t, sr, sigma_s, dtype=torch.float64)
    assert m.shape == (3, t)
    assert m[0, [40, 55, 200]].tolist() == [1.0, 1.0, 1.0] and m[2, 120].item() == 1.0
    assert torch.equal(m[1], torch.zeros(t, dtype=torch.float64))
    sigma = sigma_s * sr
    grid = np.arange(t)
    for row, p in zip(m, peaks):
        p = [k for k in p if 0 <= k < t]
        if p:
            ref = np.max([np.exp(-0.5 * ((grid - k) / sigma) ** 2) for k in p], axis=0)
            np.testing.assert_allclose(row.numpy(), ref, rtol=1e-12, atol=1e-300)
    assert m[0, 200 + 5].item() == pytest.approx(math.exp(-0.5))  # one sigma = 5 samples


def test_peak_weights_box_and_gaussian() -> None:
    w = peak_weights([[100], []], 400, 500.0, width_s=0.06, peak_weight=4.0)
    assert w[0, 70:131].eq(4.0).all() and w[0, :70].eq(1.0).all() and w[0, 131:].eq(1.0).all()
    assert w[1].eq(1.0).all()
    g = peak_weights([[100]], 400, 500.0, width_s=0.06, peak_weight=3.0, profile="gaussian", dtype=torch.float64)
    assert g[0, 100].item() == 3.0 and g[0, 130].item() == pytest.approx(1 + 2 * math.exp(-0.5))
    assert peak_weights([[100]], 400, 500.0, peak_weight=1.0).eq(1.0).all()
    with pytest.raises(ValueError):
        peak_weights([[100]], 400, 500.0, profile="triangle")


def test_weighted_mse_matches_direct_computation() -> None:
    g = torch.Generator().manual_seed(0)
    recon, target = (
        torch.randn(3, 4, 50, generator=g, dtype=torch.float64),
        torch.randn(3, 4, 50, generator=g, dtype=torch.float64),
    )
    w = 1 + torch.rand(3, 50, generator=g, dtype=torch.float64)
    loss, logs = peak_aware_reconstruction_loss(recon, target, w, gather=False)
    num = sum(w[b, t] * (recon[b, c, t] - target[b, c, t]) ** 2 for b in range(3) for c in range(4) for t in range(50))
    assert loss.item() == pytest.approx(float(num / (4 * w.sum())), rel=1e-12)
    assert logs["loss_reconstruction"] == loss.item()
    ones = torch.ones(3, 50, dtype=torch.float64)
    assert peak_aware_reconstruction_loss(recon, target, ones, gather=False)[0].item() == pytest.approx(
        F.mse_loss(recon, target).item(), rel=1e-12
    )


def test_error_near_r_peak_costs_more() -> None:
    t, peaks = 500, [[100, 300]]
    w = peak_weights(peaks, t, 500.0)
    target = torch.zeros(1, 2, t)
    near, far = target.clone(), target.clone()
    near[..., 98:103] = 0.5
    far[..., 198:203] = 0.5
    l_near = peak_aware_reconstruction_loss(near, target, w, gather=False)[0]
    l_far = peak_aware_reconstruction_loss(far, target, w, gather=False)[0]
    assert l_near.item() == pytest.approx(4 * l_far.item())


def test_peak_map_loss_is_mse() -> None:
    g = torch.Generator().manual_seed(1)
    pred, target = torch.rand(4, 30, generator=g), torch.rand(4, 30, generator=g)
    loss, logs = peak_map_loss(pred, target, gather=False)
    assert loss.item() == pytest.approx(F.mse_loss(pred, target).item(), rel=1e-6)
    assert logs == {"loss_peak": loss.item()}
