"""ECG-JEPA's loss (physioclr_ext.losses.jepa) against a direct NumPy computation."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from physioclr_ext.losses.jepa import covariance_penalty, jepa_loss, per_dim_std, variance_hinge


def numpy_reference(pred: np.ndarray, target: np.ndarray, beta: float) -> float:
    mean = target.mean(-1, keepdims=True)
    var = target.var(-1, keepdims=True)
    normed = (target - mean) / np.sqrt(var + 1e-5)
    diff = np.abs(pred - normed)
    return float(np.where(diff < beta, 0.5 * diff**2 / beta, diff - 0.5 * beta).mean())


@pytest.mark.parametrize("beta", [1.0, 0.5])
def test_loss_is_smooth_l1_on_layer_normed_targets(beta):
    g = torch.Generator().manual_seed(0)
    pred, target = torch.randn(2, 8, 5, 16, generator=g) * 2, torch.randn(2, 8, 5, 16, generator=g) * 3 + 1
    loss, logs = jepa_loss(pred, target, beta=beta)
    ref = numpy_reference(pred.double().numpy(), target.double().numpy(), beta)
    assert float(loss) == pytest.approx(ref, rel=1e-5) and logs["loss"] == pytest.approx(ref, rel=1e-5)
    # both branches of SmoothL1 are exercised
    assert (pred - torch.nn.functional.layer_norm(target, (16,))).abs().lt(beta).float().mean().item() not in (0, 1)


def test_sum_reduction_over_tokens_times_the_token_count_is_the_mean():
    pred, target = torch.randn(3, 2, 4, 8), torch.randn(3, 2, 4, 8)
    mean, logs = jepa_loss(pred, target)
    total, _ = jepa_loss(pred, target, reduction="sum")
    assert logs["n_tokens"] == 24
    assert float(total) / logs["n_tokens"] == pytest.approx(float(mean), rel=1e-6)


def test_targets_are_constants_and_unnormalised_targets_are_possible():
    pred = torch.randn(4, 8, requires_grad=True)
    target = torch.randn(4, 8, requires_grad=True)
    loss, _ = jepa_loss(pred, target, normalize_target=False)
    loss.backward()
    assert target.grad is None and pred.grad is not None
    assert float(loss.detach()) == pytest.approx(
        float(torch.nn.functional.smooth_l1_loss(pred, target).detach()), rel=1e-6
    )
    with pytest.raises(ValueError):
        jepa_loss(torch.zeros(2, 3), torch.zeros(3, 2))


def test_per_dimension_std_shows_a_collapse():
    z = torch.randn(100, 6, 12)
    ref = np.std(z.reshape(-1, 12).numpy(), axis=0, ddof=1).mean()
    assert float(per_dim_std(z)) == pytest.approx(float(ref), rel=1e-5)
    collapsed = torch.randn(12).expand(600, 12)
    _, logs = jepa_loss(collapsed, torch.randn(600, 12))
    assert logs["pred_std"] == pytest.approx(0.0, abs=1e-6) and logs["target_std"] > 0.5


def test_variance_hinge_matches_vicreg_on_a_hand_computed_case():
    z = torch.tensor([[0.0, 0.0], [0.6, 4.0]])  # per-dimension variances (unbiased) 0.18 and 8
    expected = (max(0.0, 1 - (0.18 + 1e-4) ** 0.5) + max(0.0, 1 - (8 + 1e-4) ** 0.5)) / 2
    assert float(variance_hinge(z)) == pytest.approx(expected, rel=1e-6)
    at_three = (3 - (0.18 + 1e-4) ** 0.5 + 3 - (8 + 1e-4) ** 0.5) / 2  # both under 3 now
    assert float(variance_hinge(z, target_std=3.0)) == pytest.approx(at_three, rel=1e-6)


def test_variance_hinge_gradient_spreads_a_collapsed_dimension():
    z = torch.tensor([[1.0, -3.0], [1.1, 3.0], [0.9, 0.0]], requires_grad=True)
    variance_hinge(z).backward()
    assert z.grad[:, 1].abs().max() == 0  # spread enough: no gradient
    # the narrow dimension is pushed away from its mean: the largest value up, the smallest down
    assert z.grad[1, 0] < 0 < z.grad[2, 0]
    one = torch.ones(1, 3, requires_grad=True)  # an epoch's last batch of one window: no term, no error
    assert float(variance_hinge(one)) == 0.0
    with pytest.raises(ValueError):
        variance_hinge(torch.zeros(3))


def test_covariance_penalty_is_the_off_diagonal_of_numpys_covariance():
    z = torch.randn(9, 4, generator=torch.Generator().manual_seed(3))
    cov = np.cov(z.numpy(), rowvar=False)
    expected = (cov**2).sum() - (np.diag(cov) ** 2).sum()
    assert float(covariance_penalty(z)) == pytest.approx(expected / 4, rel=1e-5)
    independent = torch.tensor([[1.0, 1.0], [1.0, -1.0], [-1.0, 1.0], [-1.0, -1.0]])  # uncorrelated columns
    assert float(covariance_penalty(independent)) == pytest.approx(0.0, abs=1e-7)
    assert float(covariance_penalty(torch.ones(1, 3))) == 0.0
