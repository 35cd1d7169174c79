"""Random resized crop along time.

Follows RandomResizedCrop of Mehari & Strodthoff, "Self-supervised
representation learning from 12-lead ECG data" (Computers in Biology and
Medicine 2022; tmehari/ecg-selfsupervised). The reference upsamples by placing
the crop at random sorted output positions and interpolating between them;
here the crop is resampled on a uniform grid with linear interpolation, which
is the plain "resize" the method describes and is deterministic given the crop.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from physioclr_ext.augmentations._common import (
    check_signal,
    position_dtype,
    randint,
    sample_linear,
    span_lengths,
)


def random_resized_crop(
    x: torch.Tensor, generator: torch.Generator, scale: Sequence[float] = (0.5, 1.0)
) -> torch.Tensor:
    """Crop a random window of each example and stretch it back to ``T`` samples.

    Per example (same window for all leads) the crop length is
    ``round(s * T)`` (at least 1) with ``s`` uniform in ``scale`` and its start
    uniform over the positions where it fits; the crop is resized to ``T``
    by linear interpolation (``align_corners=False`` sample geometry).

    Args:
        x: ``(B, C, T)`` float signal.
        generator: source of randomness (any device).
        scale: ``(low, high)`` range of the cropped fraction, within ``[0, 1]``;
            ``(1, 1)`` is the identity.

    Returns:
        ``(B, C, T)`` resized crop of ``x``.

    Example:
        >>> g = torch.Generator().manual_seed(0)
        >>> random_resized_crop(torch.randn(4, 12, 5000), g, scale=(0.5, 1.0)).shape
        torch.Size([4, 12, 5000])
    """
    b, _, t = check_signal(x)
    if t == 0:
        return x.clone()
    length = span_lengths(scale, b, t, generator, x.device).clamp_(min=1)
    start = randint(t - length, generator)
    dtype = position_dtype(x)
    start_f, length_f = start.to(dtype)[:, None, None], length.to(dtype)[:, None, None]
    centers = torch.arange(t, device=x.device, dtype=dtype) + 0.5
    pos = start_f + centers * (length_f / t) - 0.5
    pos = torch.minimum(torch.maximum(pos, start_f), start_f + length_f - 1)
    return sample_linear(x, pos)
