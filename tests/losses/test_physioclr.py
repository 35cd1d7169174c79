"""PhysioCLR contrastive and combined losses against direct computations of their formulas, and under two
gloo workers (the reconstruction terms: test_physioclr_reconstruction.py)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import numpy as np
import pytest
import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import Tensor

from physioclr_ext.losses import (
    PhysioCLRLossConfig,
    feature_similarity_masks,
    physioclr_contrastive_loss,
    physioclr_loss,
    r_peak_map,
)
from tests._gloo import close, run_gloo_workers

# Angles (degrees) of 2-D feature vectors: record 0 is within 70 deg of every other (cos >= 0.34 >= delta),
# so it has no negatives; records 1 and 2 are 120 deg apart (negatives of each other).
ANGLES = [0, 60, -60, 70, -70, 20, -10, 65]


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def masks_reference(f: np.ndarray, delta: float, valid: np.ndarray, exclude_self: bool) -> Tuple[np.ndarray, ...]:
    """Double loop over record pairs."""
    n = len(f)
    pos, neg = np.zeros((n, n), bool), np.zeros((n, n), bool)
    for i in range(n):
        for j in range(n):
            if not (valid[i] and valid[j]) or (exclude_self and i == j):
                continue
            cos = f[i] @ f[j] / (np.linalg.norm(f[i]) * np.linalg.norm(f[j]))
            pos[i, j], neg[i, j] = cos >= delta, cos < delta
    return pos, neg


def contrastive_reference(
    a: np.ndarray,
    s: np.ndarray,
    f: np.ndarray,
    nb: Optional[np.ndarray] = None,
    nb_valid: Optional[np.ndarray] = None,
    f_valid: Optional[np.ndarray] = None,
    tau: float = 0.1,
    delta: float = 0.25,
    exclude_self: bool = True,
    in_denominator: bool = False,
) -> Tuple[float, float, float, int]:
    """Per-anchor loop: (loss, mean positives, mean negatives, anchors without negatives)."""
    a, s = _unit(a), _unit(s)
    n = len(a)
    f_valid = np.ones(n, bool) if f_valid is None else f_valid
    pos_m, neg_m = masks_reference(f, delta, f_valid, exclude_self)
    losses, n_pos, n_neg = [], [], []
    for i in range(n):
        pos = [a[i] @ s[i] / tau]
        if nb is not None and (nb_valid is None or nb_valid[i]):
            pos.append(a[i] @ _unit(nb)[i] / tau)
        pos += [a[i] @ a[j] / tau for j in range(n) if pos_m[i, j]]
        neg = [a[i] @ a[j] / tau for j in range(n) if neg_m[i, j]]
        n_pos.append(len(pos))
        n_neg.append(len(neg))
        if not neg:
            continue
        lse_pos = np.log(np.sum(np.exp(pos)))
        lse_neg = np.log(np.sum(np.exp(pos + neg) if in_denominator else np.exp(neg)))
        losses.append(lse_neg - lse_pos)
    loss = float(np.mean(losses)) if losses else 0.0
    return loss, float(np.mean(n_pos)), float(np.mean(n_neg)), n - len(losses)


def _data(n: int = 8, e: int = 6, f: int = 5, seed: int = 0) -> Dict[str, Tensor]:
    g = torch.Generator().manual_seed(seed)
    a = torch.randn(n, e, generator=g, dtype=torch.float64)
    return {
        "anchor": a,
        "shuffled": a + 0.5 * torch.randn(n, e, generator=g, dtype=torch.float64),
        "neighbour": a + 0.8 * torch.randn(n, e, generator=g, dtype=torch.float64),
        "features": torch.randn(n, f, generator=g, dtype=torch.float64),
    }


def _angle_features() -> Tensor:
    rad = np.deg2rad(ANGLES)
    return torch.from_numpy(np.stack([np.cos(rad), np.sin(rad)], axis=1))


# ---------------------------------------------------------------- masks


@pytest.mark.parametrize("exclude_self", [True, False])
def test_masks_match_double_loop_with_invalid_rows(exclude_self: bool) -> None:
    f = _data(n=12)["features"]
    valid = torch.ones(12, dtype=torch.bool)
    valid[[3, 7]] = False
    for delta in (0.0, 0.25, 0.6):
        pos, neg = feature_similarity_masks(f, delta, valid, exclude_self)
        ref_pos, ref_neg = masks_reference(f.numpy(), delta, valid.numpy(), exclude_self)
        np.testing.assert_array_equal(pos.numpy(), ref_pos)
        np.testing.assert_array_equal(neg.numpy(), ref_neg)
        assert not (pos & neg).any()
        assert not pos[3].any() and not neg[:, 7].any()
        assert bool(pos.diagonal()[valid].all()) == (not exclude_self)


def test_masks_treat_non_finite_and_zero_features_as_invalid() -> None:
    f = _data(n=5)["features"]
    f[1, 2] = float("nan")
    f[4] = 0.0
    pos, neg = feature_similarity_masks(f, 0.25)
    for k in (1, 4):
        assert not (pos[k].any() or neg[k].any() or pos[:, k].any() or neg[:, k].any())
    assert (pos | neg)[[0, 2, 3]][:, [0, 2, 3]].sum() == 6  # all off-diagonal pairs of the valid rows


# ---------------------------------------------------------------- contrastive loss


@pytest.mark.parametrize("with_neighbour", [False, True])
@pytest.mark.parametrize("exclude_self", [True, False])
@pytest.mark.parametrize("in_denominator", [False, True])
def test_contrastive_matches_per_anchor_loop(with_neighbour: bool, exclude_self: bool, in_denominator: bool) -> None:
    d = _data(n=10)
    nb_valid = torch.tensor([True, False] * 5)
    kw = {"neighbour": d["neighbour"], "neighbour_valid": nb_valid} if with_neighbour else {}
    loss, logs = physioclr_contrastive_loss(
        d["anchor"],
        d["shuffled"],
        d["features"],
        gather=False,
        exclude_self=exclude_self,
        positives_in_denominator=in_denominator,
        **kw,
    )
    ref = contrastive_reference(
        d["anchor"].numpy(),
        d["shuffled"].numpy(),
        d["features"].numpy(),
        d["neighbour"].numpy() if with_neighbour else None,
        nb_valid.numpy(),
        exclude_self=exclude_self,
        in_denominator=in_denominator,
    )
    assert loss.item() == pytest.approx(ref[0], rel=1e-10)
    assert logs["loss_contrastive"] == pytest.approx(ref[0], rel=1e-10)
    assert logs["positives_per_anchor"] == pytest.approx(ref[1])
    assert logs["negatives_per_anchor"] == pytest.approx(ref[2])
    assert logs["n_no_negative"] == ref[3]
    if in_denominator:
        assert loss.item() > 0


def test_anchors_without_negatives_are_dropped_and_counted() -> None:
    d = _data(n=len(ANGLES), f=2)
    f = _angle_features()
    f_valid = torch.ones(len(ANGLES), dtype=torch.bool)
    f_valid[5] = False
    loss, logs = physioclr_contrastive_loss(
        d["anchor"], d["shuffled"], f, d["neighbour"], feature_valid=f_valid, gather=False
    )
    ref = contrastive_reference(
        d["anchor"].numpy(), d["shuffled"].numpy(), f.numpy(), d["neighbour"].numpy(), f_valid=f_valid.numpy()
    )
    assert ref[3] == 2  # record 0 (everything similar) and record 5 (invalid features)
    assert logs["n_no_negative"] == 2
    assert loss.item() == pytest.approx(ref[0], rel=1e-10)
    assert math.isfinite(loss.item())


def test_no_negatives_anywhere_gives_zero_loss_with_a_graph() -> None:
    d = _data(n=4)
    a = d["anchor"].clone().requires_grad_()
    loss, logs = physioclr_contrastive_loss(a, d["shuffled"], d["features"], delta=-2.0, gather=False)
    loss.backward()
    assert loss.item() == 0.0 and logs["n_no_negative"] == 4 and torch.equal(a.grad, torch.zeros_like(a))


def test_release_formula_without_self_exclusion() -> None:
    # The released criterion: logits of each anchor against cat([shuffled, adjacent, anchors]), adjacent = next
    # anchor, masks on 3B columns. With every anchor having a negative it equals exclude_self=False.
    d = _data(n=6, f=3, seed=2)
    a, s, f = (d[k] for k in ("anchor", "shuffled", "features"))
    b = len(a)
    adj = a[(torch.arange(b) + 1) % b]
    cos = F.normalize(f, dim=1) @ F.normalize(f, dim=1).T
    logits = F.normalize(a, dim=1) @ F.normalize(torch.cat([s, adj, a]), dim=1).T / 0.1
    eye = torch.eye(b, dtype=torch.bool)
    pos = torch.cat([eye, eye, cos >= 0.25], dim=1)
    neg = torch.cat([torch.zeros(b, 2 * b, dtype=torch.bool), cos < 0.25], dim=1)
    assert neg.any(dim=1).all()
    release = (-logits.masked_fill(~pos, -1e4).logsumexp(1) + logits.masked_fill(~neg, -1e4).logsumexp(1)).mean()
    ours, _ = physioclr_contrastive_loss(a, s, f, neighbour=adj, gather=False, exclude_self=False)
    assert ours.item() == pytest.approx(release.item(), rel=1e-10)


def test_invariant_to_embedding_scale() -> None:
    d = _data()
    loss = physioclr_contrastive_loss(d["anchor"], d["shuffled"], d["features"], d["neighbour"], gather=False)[0]
    scaled = physioclr_contrastive_loss(
        3.0 * d["anchor"], 0.1 * d["shuffled"], 7.0 * d["features"], 20.0 * d["neighbour"], gather=False
    )[0]
    assert scaled.item() == pytest.approx(loss.item(), rel=1e-12)


def test_gradient_reaches_anchor_shuffled_and_neighbour() -> None:
    d = {k: v.clone().requires_grad_() for k, v in _data().items()}
    loss, _ = physioclr_contrastive_loss(d["anchor"], d["shuffled"], d["features"], d["neighbour"], gather=False)
    loss.backward()
    for key in ("anchor", "shuffled", "neighbour"):
        grad = d[key].grad
        assert grad is not None and torch.isfinite(grad).all() and grad.abs().sum() > 0, key
    assert d["features"].grad is None


def test_gradcheck() -> None:
    d = {k: v.requires_grad_(k != "features") for k, v in _data(n=5, e=3).items()}

    def fn(a: Tensor, s: Tensor, n: Tensor) -> Tensor:
        return physioclr_contrastive_loss(a, s, d["features"], n, gather=False, temperature=0.5)[0]

    assert torch.autograd.gradcheck(fn, (d["anchor"], d["shuffled"], d["neighbour"]))


def test_rejects_mismatched_shapes() -> None:
    d = _data()
    with pytest.raises(ValueError):
        physioclr_contrastive_loss(d["anchor"], d["shuffled"][:4], d["features"], gather=False)
    with pytest.raises(ValueError):
        physioclr_contrastive_loss(d["anchor"], d["shuffled"], d["features"][:4], gather=False)


# ---------------------------------------------------------------- combined


def _full_inputs(n: int = 8, c: int = 3, t: int = 400, seed: int = 3) -> Dict[str, object]:
    d = _data(n=n, seed=seed)
    g = torch.Generator().manual_seed(seed)
    peaks: List[List[int]] = [sorted(torch.randint(0, t, (k % 4,), generator=g).tolist()) for k in range(n)]
    return {
        **d,
        "recon": torch.randn(n, c, t, generator=g, dtype=torch.float64),
        "target": torch.randn(n, c, t, generator=g, dtype=torch.float64),
        "pred_peak_map": torch.rand(n, t, generator=g, dtype=torch.float64),
        "r_peaks": peaks,
        "nb_valid": torch.arange(n) % 3 != 0,
        "f_valid": torch.arange(n) != 2,
    }


def _combined(x: Dict[str, object], rows: slice = slice(None), gather: bool = False, **kw: object):
    t = {k: v[rows] for k, v in x.items()}
    return physioclr_loss(
        t["anchor"],
        t["shuffled"],
        t["features"],
        t["recon"],
        t["target"],
        t["pred_peak_map"],
        t["r_peaks"],
        500.0,
        neighbour=t["neighbour"],
        neighbour_valid=t["nb_valid"],
        feature_valid=t["f_valid"],
        cfg=PhysioCLRLossConfig(gather=gather, **kw),
    )


def test_combined_is_weighted_sum_of_logged_terms() -> None:
    x = _full_inputs()
    loss, logs = _combined(x, alpha=0.3, beta=0.7)
    expected = logs["loss_contrastive"] + 0.3 * logs["loss_reconstruction"] + 0.7 * logs["loss_peak"]
    assert loss.item() == pytest.approx(expected, rel=1e-12) and logs["loss_physioclr"] == loss.item()
    # Each logged term is the standalone function's value.
    con = physioclr_contrastive_loss(
        x["anchor"], x["shuffled"], x["features"], x["neighbour"], x["nb_valid"], x["f_valid"], gather=False
    )[0]
    peaks = r_peak_map(x["r_peaks"], 400, 500.0, dtype=torch.float64)
    assert logs["loss_contrastive"] == pytest.approx(con.item(), rel=1e-12)
    assert logs["loss_peak"] == pytest.approx(F.mse_loss(x["pred_peak_map"], peaks).item(), rel=1e-12)
    plain = _combined(x, peak_weight=1.0)[1]["loss_reconstruction"]
    assert plain == pytest.approx(F.mse_loss(x["recon"], x["target"]).item(), rel=1e-12)


def test_default_config_is_the_papers_and_the_default_of_the_loss() -> None:
    cfg = PhysioCLRLossConfig()
    assert (cfg.temperature, cfg.delta, cfg.alpha, cfg.beta) == (0.1, 0.25, 0.2, 0.1)
    x = _full_inputs()
    args = (x["anchor"], x["shuffled"], x["features"], x["recon"], x["target"], x["pred_peak_map"], x["r_peaks"], 500.0)
    assert physioclr_loss(*args)[1] == physioclr_loss(*args, cfg=cfg)[1]


# ---------------------------------------------------------------- data parallel

SPLIT = [3, 5]


def _grads(x: Dict[str, object], rows: slice, gather: bool) -> Tuple[Tensor, Dict[str, float], List[Tensor]]:
    """Loss, logs and the gradients of ``rows`` of every differentiable input."""
    names = ("anchor", "shuffled", "neighbour", "recon", "pred_peak_map")
    leaves = {k: x[k].detach().clone().requires_grad_() for k in names}
    loss, logs = _combined({**x, **leaves}, rows, gather)
    loss.backward()
    return loss.detach(), logs, [leaves[k].grad[rows] for k in names]


def _through_layer(x: Dict[str, object], layer: torch.nn.Module, rows: slice, gather: bool) -> Tensor:
    t = {k: v[rows] for k, v in x.items()}
    t.update({k: layer(t[k]) for k in ("anchor", "shuffled", "neighbour")})
    return _combined(t, gather=gather)[0]


def _check(rank: int) -> None:
    x = _full_inputs()
    rows = slice(sum(SPLIT[:rank]), sum(SPLIT[: rank + 1]))
    ref_loss, ref_logs, ref_grads = _grads(x, slice(None), gather=False)
    got_loss, got_logs, got_grads = _grads(x, rows, gather=True)
    close(got_loss, ref_loss)
    assert got_logs == pytest.approx(ref_logs)
    for got, ref in zip(got_grads, ref_grads):
        close(got, ref[rows])

    # Parameter gradients: the workers' shares sum to the single-process gradient.
    torch.manual_seed(1)
    layer = torch.nn.Linear(6, 4).double()
    _through_layer(x, layer, slice(None), gather=False).backward()
    expected = layer.weight.grad.clone()
    layer.weight.grad = None
    _through_layer(x, layer, rows, gather=True).backward()
    dist.all_reduce(layer.weight.grad)
    close(layer.weight.grad, expected)


def test_two_gloo_workers_match_single_process(tmp_path: Path) -> None:
    run_gloo_workers(_check, len(SPLIT), tmp_path)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_matches_cpu() -> None:
    x = _full_inputs()
    on_gpu = {k: v.cuda() if isinstance(v, Tensor) else v for k, v in x.items()}
    loss, logs = _combined(on_gpu)
    ref_loss, ref_logs = _combined(x)
    assert loss.device.type == "cuda"
    assert loss.item() == pytest.approx(ref_loss.item(), rel=1e-9)
    assert logs == pytest.approx(ref_logs)
