"""Additive noise augmentation scaled to each lead's own amplitude.

Follows the noise addition of Sarkar & Etemad, "Self-supervised ECG
representation learning for emotion recognition" (IEEE TAFFC 2020), in the
per-lead relative form of KU-AI4H/Contrastive-ECG
(``gaussian_noise_augmentation``).
"""

from __future__ import annotations

import torch

from physioclr_ext.augmentations._common import check_signal, normal


def gaussian_noise(x: torch.Tensor, generator: torch.Generator, factor: float = 0.1) -> torch.Tensor:
    """Add white Gaussian noise with std ``factor`` times each lead's std.

    The std is taken over time, separately for every example and lead, so
    leads of very different amplitude get proportionally the same noise level
    and a flat lead stays flat.

    Args:
        x: ``(B, C, T)`` float signal.
        generator: source of randomness (any device).
        factor: noise std relative to the lead std, ``>= 0``.

    Returns:
        ``(B, C, T)`` noisy copy of ``x``.

    Example:
        >>> g = torch.Generator().manual_seed(0)
        >>> gaussian_noise(torch.randn(2, 12, 5000), g, factor=0.05).shape
        torch.Size([2, 12, 5000])
    """
    check_signal(x)
    if factor < 0:
        raise ValueError(f"factor must be >= 0, got {factor!r}")
    if x.shape[-1] < 2 or x.numel() == 0:
        return x.clone()
    # Half-precision std is inaccurate over thousands of samples.
    std = x.to(torch.promote_types(x.dtype, torch.float32)).std(dim=-1, keepdim=True)
    noise = normal(tuple(x.shape), generator, x.device) * (factor * std)
    return x + noise.to(x.dtype)
