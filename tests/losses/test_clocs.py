"""CLOCS loss against a direct NumPy computation of the CLOCS code's form."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from physioclr_ext.augmentations.clocs_views import cmlc_views, cmsc_views, cmsmlc_views
from physioclr_ext.losses import clocs_loss

PATIENTS = [0, 0, 1, 2, 2, 3]


def clocs_reference(views: np.ndarray, pids: list[int], tau: float, symmetric: bool = False) -> float:
    """Per view pair: mean of the diagonal row/column terms and the patient terms, then mean over pairs."""
    z = views / np.linalg.norm(views, axis=2, keepdims=True)
    n_views, b, _ = z.shape
    pair_losses = []
    for i, j in itertools.combinations(range(n_views), 2):
        s = np.exp(z[i] @ z[j].T / tau)
        rowsum, colsum = s.sum(axis=1), s.sum(axis=0)
        terms = [
            np.mean([-np.log(s[a, a] / rowsum[a]) for a in range(b)]),
            np.mean([-np.log(s[a, a] / colsum[a]) for a in range(b)]),
        ]
        matches = [(r, c) for r in range(b) for c in range(b) if r != c and pids[r] == pids[c]]
        row_entries = matches if symmetric else [(r, c) for r, c in matches if r < c]
        col_entries = matches if symmetric else [(r, c) for r, c in matches if r > c]
        if row_entries:
            terms.append(np.mean([-np.log(s[r, c] / rowsum[r]) for r, c in row_entries]))
        if col_entries:
            terms.append(np.mean([-np.log(s[r, c] / colsum[c]) for r, c in col_entries]))
        pair_losses.append(np.mean(terms))
    return float(np.mean(pair_losses))


def _views(n_views: int, b: int = 6, e: int = 5, seed: int = 0) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    base = torch.randn(1, b, e, generator=gen, dtype=torch.float64)
    return base + 0.7 * torch.randn(n_views, b, e, generator=gen, dtype=torch.float64)


@pytest.mark.parametrize("n_views", [2, 3, 4])
@pytest.mark.parametrize("symmetric", [False, True])
def test_matches_numpy_reference_with_patient_positives(n_views: int, symmetric: bool) -> None:
    views = _views(n_views)
    loss, logs = clocs_loss(views, torch.tensor(PATIENTS), symmetric_patients=symmetric)
    assert loss.item() == pytest.approx(clocs_reference(views.numpy(), PATIENTS, 0.1, symmetric), rel=1e-10)
    assert logs["clocs"] == pytest.approx(loss.item())
    assert logs["n_pairs"] == n_views * (n_views - 1) / 2
    assert logs["positives_per_anchor"] == pytest.approx(10 / 6)


@pytest.mark.parametrize("tau", [0.05, 0.1, 0.5])
def test_temperature_matches_reference(tau: float) -> None:
    views = _views(3)
    loss, _ = clocs_loss(views, torch.tensor(PATIENTS), temperature=tau)
    assert loss.item() == pytest.approx(clocs_reference(views.numpy(), PATIENTS, tau), rel=1e-10)


def test_distinct_patients_give_instance_infonce() -> None:
    views = _views(2)
    loss, logs = clocs_loss(views, torch.arange(6))
    assert loss.item() == pytest.approx(clocs_reference(views.numpy(), list(range(6)), 0.1), rel=1e-10)
    assert logs["positives_per_anchor"] == 1.0
    assert loss.item() != pytest.approx(clocs_loss(views, torch.tensor(PATIENTS))[0].item())


def test_averages_every_pair_of_views() -> None:
    # The released code keeps only the last pair; here every pair counts equally.
    views, ids = _views(4), torch.tensor(PATIENTS)
    per_pair = [clocs_loss(views[[i, j]], ids)[0].item() for i, j in itertools.combinations(range(4), 2)]
    assert clocs_loss(views, ids)[0].item() == pytest.approx(np.mean(per_pair), rel=1e-12)
    assert clocs_loss(views, ids)[0].item() != pytest.approx(per_pair[-1])


def test_invariant_to_view_order() -> None:
    views, ids = _views(3), torch.tensor(PATIENTS)
    loss = clocs_loss(views, ids)[0].item()
    assert clocs_loss(views[[1, 0]], ids)[0].item() == pytest.approx(clocs_loss(views[[0, 1]], ids)[0].item())
    assert clocs_loss(views[[2, 0, 1]], ids)[0].item() == pytest.approx(loss, rel=1e-12)


def test_symmetric_form_invariant_to_instance_order() -> None:
    views, ids = _views(3), torch.tensor(PATIENTS)
    order = torch.tensor([5, 2, 0, 4, 1, 3])
    loss = clocs_loss(views, ids, symmetric_patients=True)[0].item()
    shuffled = clocs_loss(views[:, order], ids[order], symmetric_patients=True)[0].item()
    assert shuffled == pytest.approx(loss, rel=1e-12)


def test_finite_and_differentiable_at_small_temperature() -> None:
    views = _views(4, b=8).float().mul(100).requires_grad_()
    loss, _ = clocs_loss(views, torch.tensor([0, 0, 0, 1, 1, 2, 3, 3]), temperature=0.01)
    loss.backward()
    assert torch.isfinite(loss) and views.grad is not None and torch.isfinite(views.grad).all()


def test_rejects_bad_shapes() -> None:
    with pytest.raises(ValueError):
        clocs_loss(torch.randn(1, 4, 8), torch.arange(4))
    with pytest.raises(ValueError):
        clocs_loss(torch.randn(2, 4, 8), torch.arange(5))


def test_view_helpers() -> None:
    x = torch.arange(2 * 3 * 10, dtype=torch.float32).reshape(2, 3, 10)
    cmsc = cmsc_views(x)
    assert cmsc.shape == (2, 2, 3, 5)
    assert torch.equal(cmsc[0], x[..., :5]) and torch.equal(cmsc[1], x[..., 5:])
    assert cmsc_views(torch.randn(2, 3, 11)).shape == (2, 2, 3, 5)

    cmlc = cmlc_views(x)
    assert cmlc.shape == (3, 2, 1, 10)
    assert torch.equal(cmlc[1, 0, 0], x[0, 1])

    cmsmlc = cmsmlc_views(x)
    assert cmsmlc.shape == (6, 2, 1, 5)
    assert torch.equal(cmsmlc[3 + 2, 1, 0], x[1, 2, 5:])  # half 1, lead 2, instance 1
    assert torch.equal(cmsmlc[1, 0, 0], x[0, 1, :5])
