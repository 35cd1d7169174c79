"""Pooling of frame sequences into one vector per signal."""

from __future__ import annotations

from typing import Optional

import torch


def masked_mean(x: torch.Tensor, padding_mask: Optional[torch.Tensor] = None) -> torch.Tensor:
    """Mean over frames of ``x`` (B, T', D), frames where ``padding_mask`` (B, T') is True excluded -> (B, D).

    >>> x = torch.tensor([[[1.0], [3.0], [100.0]]])
    >>> masked_mean(x, torch.tensor([[False, False, True]])).tolist()
    [[2.0]]
    """
    if padding_mask is None or not padding_mask.any():
        return x.mean(dim=1)
    keep = (~padding_mask).unsqueeze(-1).to(x.dtype)
    return (x * keep).sum(dim=1) / keep.sum(dim=1).clamp(min=1)
