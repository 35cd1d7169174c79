"""The LFBT loss against a direct NumPy computation of run_pt.py's double loop, its two limits, and
two gloo workers against one process on the concatenated batch (loss and model gradients)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import torch.distributed as dist

from physioclr_ext.losses.lead_fusion_barlow_twins import lead_fusion_barlow_twins_loss
from physioclr_ext.modules.lfbt import LFBT, LFBTConfig
from tests._gloo import close, run_gloo_workers


def lfbt_reference(z1: np.ndarray, z2: np.ndarray, gamma: float, lambd: float, eps: float = 1e-5) -> float:
    """run_pt.py's loop: affine-free BatchNorm (training mode) per lead, C for every (i, j), l_ij summed."""

    def bn(z: np.ndarray) -> np.ndarray:
        return (z - z.mean(0)) / np.sqrt(z.var(0) + eps)

    b, n, _ = z1.shape
    intra, inter = 0.0, 0.0
    for i in range(n):
        for j in range(n):
            c = bn(z1[:, i]).T @ bn(z2[:, j]) / b
            on = ((np.diag(c) - 1) ** 2).sum()
            off = (c**2).sum() - (np.diag(c) ** 2).sum()
            if i == j:
                intra += on + lambd * off
            else:
                inter += on + lambd * off
    if n == 1:
        return intra
    return gamma * intra / n + (1 - gamma) * inter / (n * (n - 1))


def _views(b: int, n: int, d: int, seed: int = 0, noise: float = 0.5) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    z1 = torch.randn(b, n, d, generator=gen, dtype=torch.float64)
    return z1, z1 + noise * torch.randn(b, n, d, generator=gen, dtype=torch.float64)


@pytest.mark.parametrize("n", [1, 2, 8])
@pytest.mark.parametrize("gamma", [0.8, 0.6])
def test_matches_numpy_reference(n: int, gamma: float) -> None:
    z1, z2 = _views(b=6, n=n, d=5)
    loss, logs = lead_fusion_barlow_twins_loss(z1, z2, gamma=gamma, lambd=0.0051)
    expected = lfbt_reference(z1.numpy(), z2.numpy(), gamma, 0.0051)
    assert loss.item() == pytest.approx(expected, rel=1e-10)
    assert logs["lfbt"] == pytest.approx(expected, rel=1e-10)


def test_lambda_weights_the_off_diagonal_terms() -> None:
    z1, z2 = _views(b=10, n=3, d=4, seed=3)
    for lambd in (0.0, 0.0051, 1.0):
        expected = lfbt_reference(z1.numpy(), z2.numpy(), 0.8, lambd)
        assert lead_fusion_barlow_twins_loss(z1, z2, lambd=lambd)[0].item() == pytest.approx(expected, rel=1e-10)


def test_gamma_one_is_the_mean_of_per_lead_barlow_twins() -> None:
    z1, z2 = _views(b=8, n=4, d=6, seed=1)
    per_lead = [lead_fusion_barlow_twins_loss(z1[:, [i]], z2[:, [i]])[0] for i in range(4)]
    loss, logs = lead_fusion_barlow_twins_loss(z1, z2, gamma=1.0)
    assert loss.item() == pytest.approx(torch.stack(per_lead).mean().item(), rel=1e-12)
    assert logs["intra"] == pytest.approx(loss.item(), rel=1e-12)
    # gamma = 0 keeps only the inter-lead pairs, which differ from the intra-lead ones
    assert lead_fusion_barlow_twins_loss(z1, z2, gamma=0.0)[0].item() == pytest.approx(logs["inter"], rel=1e-12)
    assert logs["inter"] > logs["intra"]


def test_identical_views_of_decorrelated_features_give_zero() -> None:
    # Columns of an orthogonal matrix: zero mean, orthogonal, equal norms; every lead the same features,
    # so every C (intra and inter) is the identity.
    b, d, n = 16, 6, 3
    q, _ = torch.linalg.qr(torch.randn(b, b, dtype=torch.float64, generator=torch.Generator().manual_seed(0)))
    centred = q - q.mean(0)  # still orthogonal to the constant column
    basis, _ = torch.linalg.qr(centred[:, : d + 1])
    z = (basis[:, :d] * b**0.5).unsqueeze(1).expand(b, n, d).contiguous()
    loss, logs = lead_fusion_barlow_twins_loss(z, z.clone(), eps=0.0)
    assert loss.item() == pytest.approx(0.0, abs=1e-20)
    assert logs["on_diag"] == pytest.approx(1.0)
    # a perturbed view, or correlated features, is positive
    noise = torch.randn(z.shape, dtype=z.dtype, generator=torch.Generator().manual_seed(1))
    assert lead_fusion_barlow_twins_loss(z, z + 0.1 * noise, eps=0.0)[0].item() > 1e-5
    correlated = z.clone()
    correlated[..., 1] = correlated[..., 0]
    assert lead_fusion_barlow_twins_loss(correlated, correlated.clone(), eps=0.0)[0].item() > 1e-3


def test_half_precision_projections_are_reduced_in_float32() -> None:
    z1, z2 = _views(b=64, n=2, d=256, seed=4)
    expected = lead_fusion_barlow_twins_loss(z1, z2)[0].item()
    got = lead_fusion_barlow_twins_loss(z1.half(), z2.half())[0]
    assert got.dtype == torch.float32 and got.item() == pytest.approx(expected, rel=1e-2)


def test_rejects_bad_shapes_and_gamma() -> None:
    z = torch.randn(4, 2, 3)
    with pytest.raises(ValueError, match=r"\(B, N, D\)"):
        lead_fusion_barlow_twins_loss(z, z[:, :1])
    with pytest.raises(ValueError, match="gamma"):
        lead_fusion_barlow_twins_loss(z, z, gamma=1.5)
    with pytest.raises(ValueError, match="at least 2"):
        lead_fusion_barlow_twins_loss(z[:1], z[:1])


SPLIT = [3, 5]  # unequal local batches exercise the padded gather


def _tiny_model(sync: bool) -> LFBT:
    torch.manual_seed(0)
    return LFBT(LFBTConfig(leads=["II", "V1"], alpha=0.0625, projector=[8, 6], sync_batch_norm=sync)).double()


def _inputs() -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(1)
    x1 = torch.randn(sum(SPLIT), 2, 64, generator=gen, dtype=torch.float64)
    return x1, x1 + 0.3 * torch.randn(x1.shape, generator=gen, dtype=torch.float64)


def _model_loss(model: LFBT, x1: torch.Tensor, x2: torch.Tensor, gather: bool) -> torch.Tensor:
    return lead_fusion_barlow_twins_loss(model(x1)[0], model(x2)[0], gather=gather)[0]


def _check(rank: int) -> None:
    rows = slice(sum(SPLIT[:rank]), sum(SPLIT[: rank + 1]))
    z1, z2 = _views(b=sum(SPLIT), n=3, d=4, seed=2)

    # the pure loss: value and gradients of this worker's rows
    a1, a2 = z1.clone().requires_grad_(), z2.clone().requires_grad_()
    ref = lead_fusion_barlow_twins_loss(a1, a2, gather=False)[0]
    ref.backward()
    b1, b2 = z1[rows].clone().requires_grad_(), z2[rows].clone().requires_grad_()
    got = lead_fusion_barlow_twins_loss(b1, b2, gather=True)[0]
    got.backward()
    close(got.detach(), ref.detach())
    assert a1.grad is not None and b1.grad is not None and a2.grad is not None and b2.grad is not None
    close(b1.grad, a1.grad[rows])
    close(b2.grad, a2.grad[rows])

    # the whole network: BatchNorm statistics of the global batch, summed parameter gradients
    x1, x2 = _inputs()
    model = _tiny_model(sync=False)  # the single-process reference, although a process group exists
    single = _model_loss(model, x1, x2, gather=False)
    single.backward()
    expected = {k: p.grad.clone() for k, p in model.named_parameters() if p.grad is not None}
    running = {k: v.clone() for k, v in model.state_dict().items() if "running" in k}
    model = _tiny_model(sync=True)
    shared = _model_loss(model, x1[rows], x2[rows], gather=True)
    shared.backward()
    close(shared.detach(), single.detach())
    assert len(expected) == len(list(model.parameters()))
    for name, param in model.named_parameters():
        assert param.grad is not None
        dist.all_reduce(param.grad)
        close(param.grad, expected[name])
    state = model.state_dict()
    for name, value in running.items():
        close(state[name], value)
    # with per-worker BatchNorm statistics the workers would not reproduce the single process
    local_statistics = _model_loss(_tiny_model(sync=False), x1[rows], x2[rows], gather=True)
    assert not torch.allclose(local_statistics.detach(), single.detach())


def test_two_gloo_workers_match_single_process(tmp_path: Path) -> None:
    run_gloo_workers(_check, 2, tmp_path)
