"""Latent prediction loss of ECG-JEPA (Kim, arXiv 2410.08559; code sehunfromdaegu/ECG_JEPA).

The target encoder's outputs at the masked time columns are layer-normed over the feature dimension
(``F.layer_norm`` without affine parameters) and compared with the predictor's outputs by
``SmoothL1Loss(beta=1)``, averaged over every element (the released code; the v5 paper text says L1).
The per-dimension standard deviations of targets and predictions are logged so a collapse (all
representations alike) shows in the training log.
"""

from __future__ import annotations

from typing import Dict, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["covariance_penalty", "jepa_loss", "per_dim_std", "variance_hinge"]


def per_dim_std(z: Tensor) -> Tensor:
    """Mean over dimensions of the standard deviation of each dimension across all tokens: ``(..., D) -> ()``.

    Near 0 when the representations have collapsed to one point.

    Example:
        >>> float(per_dim_std(torch.tensor([[0.0, 1.0], [2.0, 1.0]])))
        0.7071067690849304
    """
    flat = z.detach().reshape(-1, z.shape[-1]).float()
    if flat.shape[0] < 2:
        return flat.new_zeros(())
    return flat.std(dim=0, unbiased=True).mean()


def variance_hinge(z: Tensor, target_std: float = 1.0, eps: float = 1e-4) -> Tensor:
    """VICReg's variance term (Bardes et al., ICLR 2022): ``mean_d relu(target_std - sqrt(var_d + eps))``.

    Not part of ECG-JEPA: an option against dimensional collapse of the pooled representation, zero once
    every dimension of ``z`` (N, D) varies across the batch by at least ``target_std``; 0 for N = 1.

    Example:
        >>> round(float(variance_hinge(torch.zeros(4, 3))), 4)  # no spread at all: about target_std
        0.99
        >>> float(variance_hinge(torch.tensor([[-2.0], [2.0]])))  # std 2.83 > 1
        0.0
    """
    if z.ndim != 2:
        raise ValueError(f"need (N, D) representations, got shape {tuple(z.shape)}")
    if z.shape[0] < 2:  # one sample (an epoch's last batch) has no spread to measure: no term
        return z.sum() * 0.0
    std = torch.sqrt(z.float().var(dim=0) + eps)
    return F.relu(target_std - std).mean()


def covariance_penalty(z: Tensor) -> Tensor:
    """VICReg's covariance term: the squared off-diagonal entries of the covariance of ``z`` (N, D), summed, / D.

    Not part of ECG-JEPA: with :func:`variance_hinge`, an option against dimensional collapse (the variance term
    alone is met by dimensions that all move together); 0 for N = 1.

    Example:
        >>> float(covariance_penalty(torch.tensor([[1.0, 1.0], [-1.0, -1.0]])))  # cov [[2, 2], [2, 2]]: 2 * 4 / 2
        4.0
    """
    if z.ndim != 2:
        raise ValueError(f"need (N, D) representations, got shape {tuple(z.shape)}")
    n, d = z.shape
    if n < 2:
        return z.sum() * 0.0
    centred = z.float() - z.float().mean(dim=0)
    cov = centred.T @ centred / (n - 1)
    off = cov - torch.diag(torch.diagonal(cov))
    return off.pow(2).sum() / d


def jepa_loss(
    pred: Tensor,
    target: Tensor,
    beta: float = 1.0,
    normalize_target: bool = True,
    reduction: str = "mean",
) -> Tuple[Tensor, Dict[str, float]]:
    """SmoothL1 between predictions and layer-normed targets.

    Args:
        pred: predictions at the masked columns ``(..., D)``, e.g. (B, C, n_mask, D).
        target: target-encoder outputs, same shape (treated as constants).
        beta: SmoothL1 threshold (1 in the original).
        normalize_target: layer-norm the targets over D first (the original does).
        reduction: ``mean`` over every element (the original), or ``sum`` over tokens of the per-token mean
            over D, for a trainer that divides by the number of tokens (``n_tokens``).

    Returns:
        The loss and logs: ``loss`` (the mean), ``target_std`` and ``pred_std`` (:func:`per_dim_std`) and
        ``n_tokens``.

    Example:
        >>> loss, logs = jepa_loss(torch.zeros(2, 3, 4), torch.randn(2, 3, 4))
        >>> loss.ndim, sorted(logs)
        (0, ['loss', 'n_tokens', 'pred_std', 'target_std'])
    """
    if pred.shape != target.shape:
        raise ValueError(f"pred {tuple(pred.shape)} and target {tuple(target.shape)} differ")
    if reduction not in ("mean", "sum"):
        raise ValueError(f"reduction must be mean or sum, got {reduction!r}")
    target = target.detach()
    if normalize_target:
        target = F.layer_norm(target, (target.shape[-1],))
    elementwise = F.smooth_l1_loss(pred, target.to(pred.dtype), reduction="none", beta=beta)
    mean = elementwise.mean()
    n_tokens = elementwise.numel() // elementwise.shape[-1]
    loss = mean if reduction == "mean" else elementwise.sum() / elementwise.shape[-1]
    logs = {
        "loss": float(mean.detach()),
        "target_std": float(per_dim_std(target)),
        "pred_std": float(per_dim_std(pred)),
        "n_tokens": float(n_tokens),
    }
    return loss, logs
