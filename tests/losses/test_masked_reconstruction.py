"""Masked reconstruction loss against a direct NumPy computation; only masked patches carry gradient."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from physioclr_ext.losses.masked_reconstruction import masked_reconstruction_loss, normalize_patches


def _data(seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    pred = torch.randn(3, 10, 8, generator=g, dtype=torch.float64)
    target = 3.0 * torch.randn(3, 10, 8, generator=g, dtype=torch.float64) + 1.0
    mask = torch.rand(3, 10, generator=g) < 0.6
    return pred, target, mask


def _numpy_loss(pred, target, mask, norm: bool, eps: float = 1e-6):
    p, t, m = pred.numpy(), target.numpy(), mask.numpy()
    if norm:
        t = (t - t.mean(-1, keepdims=True)) / np.sqrt(t.var(-1, keepdims=True) + eps)
    err = ((p - t) ** 2).mean(-1)
    return err[m].mean(), err[~m].mean(), err[m].sum()


def test_normalize_patches_matches_direct_computation() -> None:
    x = torch.randn(4, 5, 7, dtype=torch.float64)
    a = x.numpy()
    expected = (a - a.mean(-1, keepdims=True)) / np.sqrt(a.var(-1, keepdims=True) + 1e-6)
    np.testing.assert_allclose(normalize_patches(x).numpy(), expected, rtol=1e-12)
    np.testing.assert_allclose(normalize_patches(torch.tensor([[2.0, 2.0]])).numpy(), [[0.0, 0.0]])  # flat: no nan


@pytest.mark.parametrize("norm", [True, False])
def test_loss_matches_numpy_on_masked_patches(norm: bool) -> None:
    pred, target, mask = _data()
    masked, visible, total = _numpy_loss(pred, target, mask, norm)
    loss, logs = masked_reconstruction_loss(pred, target, mask, norm_target=norm)
    assert float(loss) == pytest.approx(masked, rel=1e-10)
    assert logs["loss_masked"] == pytest.approx(masked, rel=1e-10)
    assert logs["loss_visible"] == pytest.approx(visible, rel=1e-10)
    assert logs["n_masked"] == int(mask.sum())
    loss_sum, _ = masked_reconstruction_loss(pred, target, mask, norm_target=norm, reduction="sum")
    assert float(loss_sum) == pytest.approx(total, rel=1e-10)


def test_visible_patches_get_exactly_zero_gradient() -> None:
    pred, target, mask = _data(1)
    pred.requires_grad_(True)
    loss, _ = masked_reconstruction_loss(pred, target, mask)
    loss.backward()
    assert torch.equal(pred.grad[~mask], torch.zeros_like(pred.grad[~mask]))
    assert (pred.grad[mask].abs().sum(-1) > 0).all()


def test_changing_visible_predictions_leaves_the_loss_unchanged() -> None:
    pred, target, mask = _data(2)
    changed = pred.clone()
    changed[~mask] += 100.0
    a, _ = masked_reconstruction_loss(pred, target, mask)
    b, logs = masked_reconstruction_loss(changed, target, mask)
    assert float(a) == float(b)
    assert logs["loss_visible"] > 1000


def test_lead_separate_shapes_are_flattened() -> None:
    pred, target, mask = _data(3)
    a, logs_a = masked_reconstruction_loss(pred, target, mask)
    b, logs_b = masked_reconstruction_loss(pred.reshape(3, 2, 5, 8), target.reshape(3, 2, 5, 8), mask.reshape(3, 2, 5))
    assert float(a) == pytest.approx(float(b)) and logs_a == logs_b


def test_no_visible_patch_logs_zero_and_bad_shapes_raise() -> None:
    pred, target, _ = _data(4)
    _, logs = masked_reconstruction_loss(pred, target, torch.ones(3, 10, dtype=torch.bool))
    assert logs["loss_visible"] == 0.0
    with pytest.raises(ValueError):
        masked_reconstruction_loss(pred, target, torch.ones(3, 9, dtype=torch.bool))
    with pytest.raises(ValueError):
        masked_reconstruction_loss(pred, target, torch.ones(3, 10, dtype=torch.bool), reduction="none")


def test_unbiased_option_divides_by_p_minus_one_and_the_default_stays_biased() -> None:
    """ST-MEM normalises targets with ``torch.var``'s default (ddof 1); MAE and ECG MAE with ddof 0."""
    a = torch.tensor([[1.0, 3.0]], dtype=torch.float64)  # var: biased 1, unbiased 2
    np.testing.assert_allclose(normalize_patches(a, eps=0.0, unbiased=True).numpy(), [[-(0.5**0.5), 0.5**0.5]])
    np.testing.assert_allclose(normalize_patches(a, eps=0.0).numpy(), [[-1.0, 1.0]])
    pred, target, mask = _data(5)
    p, t, m = pred.numpy(), target.numpy(), mask.numpy()
    t = (t - t.mean(-1, keepdims=True)) / np.sqrt(t.var(-1, ddof=1, keepdims=True) + 1e-6)
    expected = ((p - t) ** 2).mean(-1)[m].mean()
    loss, _ = masked_reconstruction_loss(pred, target, mask, unbiased=True)
    assert float(loss) == pytest.approx(expected, rel=1e-10)
    biased, _ = masked_reconstruction_loss(pred, target, mask)
    assert float(biased) == pytest.approx(_numpy_loss(pred, target, mask, True)[0], rel=1e-10)
    assert abs(float(biased) - float(loss)) > 1e-3
