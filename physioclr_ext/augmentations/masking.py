"""Masking augmentations: contiguous zero masks, sample dropout and time-out.

``zero_mask`` and ``dropout_mask`` follow KU-AI4H/Contrastive-ECG
(``zero_masking_augmentation``, ``dropout_augmentation``), which re-seed the
global RNG with a fixed seed on every call and so give every batch the same
masks; here each call draws fresh masks from an explicit generator.
``time_out`` follows the TimeOut transformation of Mehari & Strodthoff,
"Self-supervised representation learning from 12-lead ECG data" (Computers in
Biology and Medicine 2022; tmehari/ecg-selfsupervised).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from physioclr_ext.augmentations._common import (
    check_ratio,
    check_signal,
    randint,
    span_lengths,
    span_mask,
    uniform,
)


def zero_mask(x: torch.Tensor, generator: torch.Generator, ratio: float = 0.1) -> torch.Tensor:
    """Zero one contiguous span of ``round(ratio * T)`` samples per example and lead.

    The span start is uniform over ``[0, T - span]``, drawn independently for
    every example and lead.

    Args:
        x: ``(B, C, T)`` float signal.
        generator: source of randomness (any device).
        ratio: masked fraction of the length, in ``[0, 1]`` (0 is the identity).

    Returns:
        ``(B, C, T)`` masked copy of ``x``.

    Example:
        >>> g = torch.Generator().manual_seed(0)
        >>> out = zero_mask(torch.ones(2, 12, 2500), g, ratio=0.1)
        >>> (out == 0).sum(-1).unique().tolist()
        [250]
    """
    b, c, t = check_signal(x)
    span = round(check_ratio(ratio) * t)
    start = randint(torch.full((b, c), t - span, dtype=torch.long, device=x.device), generator)
    return x.masked_fill(span_mask(start, torch.full_like(start, span), t), 0.0)


def dropout_mask(x: torch.Tensor, generator: torch.Generator, ratio: float = 0.1) -> torch.Tensor:
    """Zero exactly ``round(ratio * T)`` random time positions per example and lead.

    The positions are a uniform random subset (without replacement), so the
    count is exact rather than Bernoulli-distributed.

    Args:
        x: ``(B, C, T)`` float signal.
        generator: source of randomness (any device).
        ratio: dropped fraction of the samples, in ``[0, 1]``.

    Returns:
        ``(B, C, T)`` copy of ``x`` with the chosen samples set to zero.

    Example:
        >>> g = torch.Generator().manual_seed(0)
        >>> out = dropout_mask(torch.ones(2, 12, 5000), g, ratio=0.1)
        >>> (out == 0).sum(-1).unique().tolist()
        [500]
    """
    b, c, t = check_signal(x)
    k = round(check_ratio(ratio) * t)
    mask = torch.zeros(b, c, t, dtype=torch.bool, device=x.device)
    if k:
        chosen = uniform((b, c, t), generator, x.device).topk(k, dim=-1, sorted=False).indices
        mask.scatter_(-1, chosen, True)
    return x.masked_fill(mask, 0.0)


def time_out(x: torch.Tensor, generator: torch.Generator, scale: Sequence[float] = (0.0, 0.5)) -> torch.Tensor:
    """Zero a random contiguous span across all leads of each example.

    Per example the span length is ``round(s * T)`` with ``s`` uniform in
    ``scale`` and its start uniform over the positions where it fits.

    Args:
        x: ``(B, C, T)`` float signal.
        generator: source of randomness (any device).
        scale: ``(low, high)`` range of the masked fraction, within ``[0, 1]``.

    Returns:
        ``(B, C, T)`` copy of ``x`` with one span per example set to zero.

    Example:
        >>> g = torch.Generator().manual_seed(0)
        >>> time_out(torch.randn(4, 12, 2500), g, scale=(0.1, 0.3)).shape
        torch.Size([4, 12, 2500])
    """
    b, _, t = check_signal(x)
    length = span_lengths(scale, b, t, generator, x.device)
    start = randint(t - length, generator)
    return x.masked_fill(span_mask(start, length, t).unsqueeze(1), 0.0)
