"""Temporal reordering augmentations: segment time warping and segment permutation.

Both follow the transformation set of Sarkar & Etemad, "Self-supervised ECG
representation learning for emotion recognition" (IEEE TAFFC 2020), in the
batched form of KU-AI4H/Contrastive-ECG (``CL_augmentations.py``), but draw
from an explicit generator instead of re-seeding the global RNG per call.
"""

from __future__ import annotations

import torch

from physioclr_ext.augmentations._common import (
    check_signal,
    position_dtype,
    random_permutations,
    sample_linear,
)


def time_warp(x: torch.Tensor, generator: torch.Generator, n_segments: int = 4, warp: float = 0.2) -> torch.Tensor:
    """Stretch a random half of the time segments and compress the other half.

    Each lead of each example is cut into ``n_segments`` equal segments; a
    random half (chosen independently per example and lead) is stretched by
    ``1 + warp`` and the rest compressed by ``1 - warp``, the pieces are
    concatenated and the result is resampled back to ``T`` samples.

    The reference code interpolates every segment and then the concatenation
    (two rounds of ``F.interpolate(mode="linear", align_corners=False)`` with
    integer segment lengths). Here the same piecewise-linear time map is
    applied in one linear-interpolation pass with exact (fractional) segment
    lengths, so nothing is smoothed twice, no remainder samples are dropped
    and ``warp=0`` is the identity.

    Args:
        x: ``(B, C, T)`` float signal.
        generator: source of randomness (any device).
        n_segments: even number ``m >= 2`` of segments.
        warp: relative stretch, ``0 <= warp < 1``.

    Returns:
        ``(B, C, T)`` warped copy of ``x`` (same dtype and device).

    Example:
        >>> g = torch.Generator().manual_seed(0)
        >>> time_warp(torch.randn(2, 12, 5000), g, n_segments=4, warp=0.2).shape
        torch.Size([2, 12, 5000])
    """
    b, c, t = check_signal(x)
    if n_segments < 2 or n_segments % 2:
        raise ValueError(f"n_segments must be an even number >= 2, got {n_segments!r}")
    if not 0.0 <= warp < 1.0:
        raise ValueError(f"warp must be in [0, 1), got {warp!r}")
    m, dtype = int(n_segments), position_dtype(x)
    perm = random_permutations((b, c), m, generator, x.device)
    stretched = torch.zeros(b, c, m, dtype=torch.bool, device=x.device)
    stretched.scatter_(-1, perm[..., : m // 2], True)
    seg_in = t / m
    factor = torch.where(stretched, 1.0 + warp, 1.0 - warp).to(dtype)
    # Warped segment lengths, rescaled so the warped signal has length T again.
    seg_out = factor * (t / factor.sum(-1, keepdim=True))
    ends = seg_out.cumsum(-1)
    centers = (torch.arange(t, device=x.device, dtype=dtype) + 0.5).expand(b, c, t).contiguous()
    seg = torch.searchsorted(ends[..., :-1].contiguous(), centers, right=True)
    seg_start_out = (ends - seg_out).gather(-1, seg)
    src = seg.to(dtype) * seg_in + (centers - seg_start_out) * (seg_in / seg_out.gather(-1, seg))
    return sample_linear(x, (src - 0.5).clamp_(0, t - 1))


def permutation(x: torch.Tensor, generator: torch.Generator, n_segments: int = 4) -> torch.Tensor:
    """Split time into segments and shuffle them, independently per example and lead.

    Segments have ``T // n_segments`` samples, except the last, which also
    takes the remainder; the reference code instead rejects lengths not
    divisible by ``n_segments``.

    Args:
        x: ``(B, C, T)`` float signal.
        generator: source of randomness (any device).
        n_segments: number of segments, ``1 <= n_segments <= T`` (1 is the identity).

    Returns:
        ``(B, C, T)`` copy of ``x`` with its segments reordered.

    Example:
        >>> g = torch.Generator().manual_seed(0)
        >>> permutation(torch.randn(2, 1, 2500), g, n_segments=5).shape
        torch.Size([2, 1, 2500])
    """
    b, c, t = check_signal(x)
    m = int(n_segments)
    if not 1 <= m <= max(t, 1):
        raise ValueError(f"n_segments must be in [1, T={t}], got {n_segments!r}")
    size = t // m
    starts_in = torch.arange(m, device=x.device) * size
    lengths_in = torch.full((m,), size, device=x.device)
    lengths_in[-1] = t - size * (m - 1)
    perm = random_permutations((b, c), m, generator, x.device)
    lengths_out = lengths_in[perm]
    ends_out = lengths_out.cumsum(-1)
    pos = torch.arange(t, device=x.device).expand(b, c, t).contiguous()
    slot = torch.searchsorted(ends_out[..., :-1].contiguous(), pos, right=True)
    src = starts_in[perm].gather(-1, slot) + pos - (ends_out - lengths_out).gather(-1, slot)
    return x.gather(-1, src)
