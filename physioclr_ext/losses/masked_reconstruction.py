"""Masked-patch reconstruction loss of masked autoencoders (MAE; ECG MAE, ST-MEM).

He, Chen, Xie, Li, Dollar, Girshick, "Masked Autoencoders Are Scalable Vision Learners", CVPR 2022
(arXiv 2111.06377): mean squared error on the masked patches only, optionally against targets
normalised per patch (``norm_pix_loss``). ST-MEM (Na et al., ICLR 2024) trains with the same loss, except
that its target normalisation divides by the unbiased variance (``torch.var``'s default, ``/(P - 1)``) where
MAE uses the biased one (``/P``): ``unbiased=True`` reproduces ST-MEM.
"""

from __future__ import annotations

from typing import Dict, Tuple, Union

import torch
from torch import Tensor

__all__ = ["masked_reconstruction_loss", "normalize_patches"]


def normalize_patches(target: Tensor, eps: float = 1e-6, unbiased: bool = False) -> Tensor:
    """Per-patch standardisation ``(t - mean) / sqrt(var + eps)`` over the last dim.

    ``(..., P) -> (..., P)``; the ``norm_pix_loss`` target. ``var`` is the biased variance (``/P``, MAE) or,
    with ``unbiased``, the unbiased one (``/(P - 1)``, ST-MEM).

    Example:
        >>> normalize_patches(torch.tensor([[1.0, 3.0]]))
        tensor([[-1.0000,  1.0000]])
    """
    mean = target.mean(dim=-1, keepdim=True)
    var = target.var(dim=-1, unbiased=unbiased, keepdim=True)
    return (target - mean) / (var + eps).sqrt()


def _flatten_tokens(t: Tensor, name: str, ndim: int) -> Tensor:
    """``(B, C, N, ...)`` -> ``(B, C * N, ...)``; inputs already ``ndim``-D pass through."""
    if t.ndim == ndim + 1:
        return t.flatten(1, 2)
    if t.ndim != ndim:
        raise ValueError(f"{name} must be {ndim}-D or {ndim + 1}-D (leads separate), got shape {tuple(t.shape)}")
    return t


def masked_reconstruction_loss(
    pred: Tensor,
    target: Tensor,
    mask: Tensor,
    norm_target: bool = True,
    eps: float = 1e-6,
    reduction: str = "mean",
    unbiased: bool = False,
) -> Tuple[Tensor, Dict[str, Union[float, int]]]:
    """MSE on masked patches: per-patch error = mean over ``P`` of the squared error, averaged over masked patches.

    Args:
        pred: ``(B, N, P)`` (or ``(B, C, N, P)``) predicted patches.
        target: same shape, the raw patches.
        mask: ``(B, N)`` (or ``(B, C, N)``) bool, True where a patch was masked.
        norm_target: compare against :func:`normalize_patches` of the target.
        eps: variance epsilon of the normalisation.
        reduction: ``"mean"`` (mean over masked patches) or ``"sum"`` (their sum, for a caller that divides
            by the number of masked patches itself, e.g. fairseq's ``sample_size``).
        unbiased: normalise targets with the unbiased variance (ST-MEM) instead of the biased one (MAE).

    Returns:
        ``(loss, logs)``: the scalar loss (only masked patches carry gradient) and ``loss_masked``
        (mean error on masked patches), ``loss_visible`` (mean error on visible patches, 0.0 if none)
        and ``n_masked`` (int).

    Example:
        >>> pred, target = torch.randn(2, 10, 25), torch.randn(2, 10, 25)
        >>> mask = torch.zeros(2, 10, dtype=torch.bool); mask[:, :7] = True
        >>> loss, logs = masked_reconstruction_loss(pred, target, mask)
        >>> logs["n_masked"]
        14
    """
    if reduction not in ("mean", "sum"):
        raise ValueError(f"reduction must be 'mean' or 'sum', got {reduction!r}")
    pred, target = _flatten_tokens(pred, "pred", 3), _flatten_tokens(target, "target", 3)
    mask = _flatten_tokens(mask, "mask", 2)
    if pred.shape != target.shape or mask.shape != pred.shape[:2]:
        raise ValueError(
            f"shapes do not match: pred {tuple(pred.shape)}, target {tuple(target.shape)}, mask {tuple(mask.shape)}"
        )
    if norm_target:
        target = normalize_patches(target, eps, unbiased)
    error = (pred - target.detach()).pow(2).mean(dim=-1)  # (B, N)
    weight = mask.to(error.dtype)
    n_masked = int(mask.sum())
    n_visible = mask.numel() - n_masked
    total = (error * weight).sum()
    loss = total if reduction == "sum" else total / max(n_masked, 1)
    with torch.no_grad():
        visible_sum = float((error * (1.0 - weight)).sum())
    logs: Dict[str, Union[float, int]] = {
        "loss_masked": float(total.detach()) / max(n_masked, 1),
        "loss_visible": visible_sum / n_visible if n_visible else 0.0,
        "n_masked": n_masked,
    }
    return loss, logs
