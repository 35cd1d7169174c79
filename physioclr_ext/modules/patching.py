"""Patching and random masking for masked signal modelling (ECG MAE, ST-MEM).

A patch is ``P`` consecutive samples of one lead: ``(B, C, T) -> (B, C, N, P)`` with ``N = T / P``.
"""

from __future__ import annotations

from typing import Optional, Tuple, Union

import torch
from torch import Tensor

__all__ = ["patchify", "random_masking", "unpatchify"]


def patchify(x: Tensor, patch_size: int) -> Tensor:
    """Cut each lead into non-overlapping patches: ``(B, C, T) -> (B, C, N, P)``, ``N = T // P``.

    Raises:
        ValueError: when ``x`` is not 3-D or ``T`` is not a multiple of ``patch_size``.

    Example:
        >>> patchify(torch.zeros(2, 12, 2500), 50).shape
        torch.Size([2, 12, 50, 50])
    """
    if x.ndim != 3:
        raise ValueError(f"patchify expects (B, C, T), got shape {tuple(x.shape)}")
    b, c, t = x.shape
    if patch_size <= 0 or t % patch_size != 0:
        raise ValueError(
            f"signal length T={t} is not a multiple of patch_size={patch_size}; crop or pad it to "
            f"{(t // max(patch_size, 1)) * max(patch_size, 1)} samples first"
        )
    return x.reshape(b, c, t // patch_size, patch_size)


def unpatchify(p: Tensor) -> Tensor:
    """Exact inverse of :func:`patchify`: ``(B, C, N, P) -> (B, C, N * P)``.

    Example:
        >>> x = torch.randn(2, 3, 100)
        >>> torch.equal(unpatchify(patchify(x, 20)), x)
        True
    """
    if p.ndim != 4:
        raise ValueError(f"unpatchify expects (B, C, N, P), got shape {tuple(p.shape)}")
    b, c, n, size = p.shape
    return p.reshape(b, c, n * size)


def random_masking(
    batch: int,
    n: int,
    ratio: float,
    generator: Optional[torch.Generator] = None,
    device: Union[torch.device, str, None] = None,
) -> Tuple[Tensor, Tensor]:
    """MAE per-sample random masking of ``n`` tokens: shuffle by uniform noise, keep the first ``n_keep``.

    ``n_keep = max(1, int(n * (1 - ratio)))``, the same for every row, so the kept tokens stack into a
    dense ``(B, n_keep, D)`` batch.

    Args:
        batch: rows B.
        n: tokens per row.
        ratio: share of tokens to mask, in ``[0, 1)``.
        generator: source of the noise; ``None`` uses torch's global RNG (which the fairseq-signals
            trainer seeds per update). Must live on ``device``.
        device: device of the outputs.

    Returns:
        ``(keep, mask)``: ``keep`` ``(B, n_keep)`` long indices of the visible tokens, ascending per row;
        ``mask`` ``(B, n)`` bool, True where a token is masked.

    Example:
        >>> keep, mask = random_masking(2, 10, 0.75, torch.Generator().manual_seed(0))
        >>> keep.shape, int(mask.sum())
        (torch.Size([2, 2]), 16)
    """
    if not 0.0 <= ratio < 1.0:
        raise ValueError(f"mask ratio must be in [0, 1), got {ratio}")
    n_keep = max(1, int(n * (1 - ratio)))
    noise = torch.rand(batch, n, generator=generator, device=device)
    keep = noise.argsort(dim=1)[:, :n_keep].sort(dim=1).values
    mask = torch.ones(batch, n, dtype=torch.bool, device=noise.device)
    mask.scatter_(1, keep, False)
    return keep, mask
