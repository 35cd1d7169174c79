"""NT-Xent against a direct NumPy computation of the SimCLR formula."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from physioclr_ext.losses import nt_xent_loss


def nt_xent_reference(z1: np.ndarray, z2: np.ndarray, tau: float) -> tuple[float, float, float]:
    """Loop over the 2N anchors: (loss, positive cosine, top-1 accuracy)."""
    z = np.concatenate([z1, z2]).astype(np.float64)
    z /= np.linalg.norm(z, axis=1, keepdims=True)
    n = len(z1)
    losses, hits = [], []
    for a in range(2 * n):
        p = a + n if a < n else a - n
        others = [k for k in range(2 * n) if k != a]
        sims = {k: z[a] @ z[k] / tau for k in others}
        denominator = sum(np.exp(s) for s in sims.values())
        losses.append(-np.log(np.exp(sims[p]) / denominator))
        hits.append(max(others, key=lambda k: sims[k]) == p)
    positive = np.mean([z[i] @ z[i + n] for i in range(n)])
    return float(np.mean(losses)), float(positive), float(np.mean(hits))


def _pair(b: int = 6, e: int = 5, seed: int = 0, noise: float = 0.5) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    z1 = torch.randn(b, e, generator=gen, dtype=torch.float64)
    return z1, z1 + noise * torch.randn(b, e, generator=gen, dtype=torch.float64)


@pytest.mark.parametrize("tau", [0.05, 0.1, 0.5, 1.0])
def test_matches_numpy_reference(tau: float) -> None:
    z1, z2 = _pair()
    loss, logs = nt_xent_loss(z1, z2, temperature=tau)
    ref_loss, ref_pos, ref_acc = nt_xent_reference(z1.numpy(), z2.numpy(), tau)
    assert loss.item() == pytest.approx(ref_loss, rel=1e-10)
    assert logs["nt_xent"] == pytest.approx(ref_loss, rel=1e-10)
    assert logs["positive_similarity"] == pytest.approx(ref_pos, rel=1e-10)
    assert logs["accuracy"] == pytest.approx(ref_acc)


def test_symmetric_in_views_and_scale_invariant() -> None:
    z1, z2 = _pair()
    loss = nt_xent_loss(z1, z2)[0]
    assert nt_xent_loss(z2, z1)[0].item() == pytest.approx(loss.item(), rel=1e-12)
    assert nt_xent_loss(3.0 * z1, 0.2 * z2)[0].item() == pytest.approx(loss.item(), rel=1e-12)


def test_temperature_effect_on_separable_views() -> None:
    # Orthogonal examples, identical views: loss = -log(e^(1/t) / (e^(1/t) + 2N - 2)), falls with t.
    z = torch.eye(4, dtype=torch.float64)
    losses = [nt_xent_loss(z, z.clone(), temperature=t)[0].item() for t in (1.0, 0.5, 0.1)]
    expected = [-np.log(np.exp(1 / t) / (np.exp(1 / t) + 6)) for t in (1.0, 0.5, 0.1)]
    np.testing.assert_allclose(losses, expected, rtol=1e-12)
    assert losses[0] > losses[1] > losses[2]
    assert nt_xent_loss(z, z.clone())[1]["accuracy"] == 1.0


def test_finite_with_small_temperature_and_large_norms() -> None:
    z1, z2 = _pair(b=16, e=8, noise=0.01)
    z1 = (1e4 * z1).float().requires_grad_()
    loss, _ = nt_xent_loss(z1, 1e4 * z2.float(), temperature=0.01)
    loss.backward()
    assert torch.isfinite(loss) and z1.grad is not None and torch.isfinite(z1.grad).all()


def test_gradcheck() -> None:
    z1, z2 = (t.requires_grad_() for t in _pair(b=3, e=4))
    assert torch.autograd.gradcheck(lambda a, b: nt_xent_loss(a, b, temperature=0.3)[0], (z1, z2))


def test_rejects_mismatched_shapes() -> None:
    with pytest.raises(ValueError):
        nt_xent_loss(torch.randn(4, 8), torch.randn(5, 8))
