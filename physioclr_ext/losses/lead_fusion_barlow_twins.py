"""The lead-fusion Barlow Twins loss of LFBT.

Liu, Pan, Li, Chang, Huang, Jiang, "Lead-fusion Barlow twins: A fused self-supervised learning
method for multi-lead electrocardiograms", Information Fusion 114 (2025) 102698; code
Aiwiscal/ECG_SSL_LFBT ``run_pt.py`` (reference sheet section 4). Barlow Twins: Zbontar, Jing,
Misra, LeCun, Deny, ICML 2021.
"""

from __future__ import annotations

from typing import Dict, Tuple

import torch
from torch import Tensor

from physioclr_ext.losses.distributed import gather_with_grad, replicated_loss

__all__ = ["batch_standardize", "lead_fusion_barlow_twins_loss", "pairwise_barlow_twins"]


def batch_standardize(z: Tensor, eps: float = 1e-5) -> Tensor:
    """What an affine-free ``BatchNorm1d`` does in training: ``(B, ...)`` standardised over the batch
    (dim 0) with the biased variance, ``(z - mean) / sqrt(var + eps)``."""
    mean = z.mean(dim=0, keepdim=True)
    var = z.var(dim=0, unbiased=False, keepdim=True)
    return (z - mean) * torch.rsqrt(var + eps)


def pairwise_barlow_twins(n1: Tensor, n2: Tensor, lambd: float) -> Tensor:
    """Barlow Twins terms of every lead pair, ``l[i, j]`` for ``C = n1[:, i]^T n2[:, j] / B``.

    ``l_ij = sum_k (1 - C_kk)^2 + lambd * sum_{k != l} C_kl^2``. The ``N^2`` matrices ``C`` (D x D each,
    1 GB at 8 leads and D = 2048) are never formed: ``sum_{k,l} C_kl^2`` equals the Frobenius product
    of the batch Gram matrices ``n1_i n1_i^T`` and ``n2_j n2_j^T`` (B x B) over ``B^2``, and the
    diagonals ``C_kk`` are one ``einsum``.

    Args:
        n1, n2: ``(B, N, D)`` batch-standardised projections of the two views.
        lambd: weight of the off-diagonal terms.

    Returns:
        ``(N, N)`` tensor of ``l_ij``.
    """
    b = n1.shape[0]
    diag = torch.einsum("bik,bjk->ijk", n1, n2) / b  # (N, N, D): C_kk of every pair
    gram1 = torch.einsum("bik,cik->ibc", n1, n1)  # (N, B, B)
    gram2 = torch.einsum("bjk,cjk->jbc", n2, n2)
    squares = torch.einsum("ibc,jbc->ij", gram1, gram2) / b**2  # sum_{k,l} C_kl^2
    on_diag = (1 - diag).pow(2).sum(-1)
    off_diag = squares - diag.pow(2).sum(-1)
    return on_diag + lambd * off_diag


def lead_fusion_barlow_twins_loss(
    z1: Tensor,
    z2: Tensor,
    gamma: float = 0.8,
    lambd: float = 0.0051,
    eps: float = 1e-5,
    gather: bool = True,
) -> Tuple[Tensor, Dict[str, float]]:
    """LFBT's loss over every pair of leads (Liu et al., Information Fusion 2025).

    Each lead's projections of each view are standardised over the batch (the original's affine-free
    ``BatchNorm1d`` per lead, in training mode), then for every lead pair (i, j)
    ``C = BN(z1_i)^T BN(z2_j) / B`` and ``l_ij = sum_k (1 - C_kk)^2 + lambd * sum_{k != l} C_kl^2``;
    ``L = gamma * mean_i l_ii + (1 - gamma) * mean_{i != j} l_ij`` (intra-lead and inter-lead terms).
    With one lead there is no inter-lead pair and ``L = l_11``, plain Barlow Twins.

    Differences from ``run_pt.py``: ``B`` is the actual batch (the original divides by the configured
    batch size, also in a smaller last batch), and one lead is allowed (the original divides by zero).

    With ``gather=True`` under torch.distributed the projections of every worker are gathered (with
    gradient) first, so the standardisation and ``C`` use the global batch: every worker returns the
    single-process loss on the concatenated batch, and its gradient w.r.t. this worker's rows is the
    single-process gradient for them (parameter gradients are summed over workers, see
    :mod:`physioclr_ext.losses.distributed`).

    Args:
        z1: ``(B, N, D)`` projections of the first view, lead ``i`` in ``z1[:, i]``.
        z2: ``(B, N, D)`` projections of the second view.
        gamma: weight of the intra-lead term (the paper's 0.8; its released checkpoints also 0.6).
        lambd: weight of the off-diagonal (redundancy) terms, Barlow Twins' 0.0051.
        eps: the BatchNorm epsilon.
        gather: use the global batch under data-parallel training.

    Returns:
        ``(loss, logs)``: the scalar loss and floats ``lfbt`` (the loss), ``intra`` (mean ``l_ii``),
        ``inter`` (mean ``l_ij``, i != j; 0 with one lead) and ``on_diag`` (mean ``C_kk`` over all pairs).

    Example:
        >>> z1, z2 = torch.randn(16, 8, 64), torch.randn(16, 8, 64)
        >>> loss, logs = lead_fusion_barlow_twins_loss(z1, z2)
        >>> sorted(logs)
        ['inter', 'intra', 'lfbt', 'on_diag']
    """
    if z1.ndim != 3 or z1.shape != z2.shape:
        raise ValueError(f"z1 and z2 must both be (B, N, D), got {tuple(z1.shape)} and {tuple(z2.shape)}")
    if not 0.0 <= gamma <= 1.0:
        raise ValueError(f"gamma must be in [0, 1], got {gamma}")
    if z1.dtype in (torch.float16, torch.bfloat16):  # sums over the batch and D overflow in half precision
        z1, z2 = z1.float(), z2.float()
    if gather:
        z1, z2 = gather_with_grad(z1), gather_with_grad(z2)
    if z1.shape[0] < 2:
        raise ValueError("the batch-normalised cross-correlation needs a (global) batch of at least 2")
    n1, n2 = batch_standardize(z1, eps), batch_standardize(z2, eps)
    terms = pairwise_barlow_twins(n1, n2, lambd)
    n = terms.shape[0]
    intra = terms.diagonal().mean()
    if n > 1:
        inter = (terms.sum() - terms.diagonal().sum()) / (n * (n - 1))
        loss = gamma * intra + (1 - gamma) * inter
    else:
        inter, loss = torch.zeros_like(intra), intra
    if gather:
        loss = replicated_loss(loss)
    with torch.no_grad():
        on_diag = torch.einsum("bik,bjk->ij", n1, n2).mean() / (n1.shape[0] * n1.shape[2])
    logs = {
        "lfbt": float(loss.detach()),
        "intra": float(intra.detach()),
        "inter": float(inter.detach()),
        "on_diag": float(on_diag),
    }
    return loss, logs
