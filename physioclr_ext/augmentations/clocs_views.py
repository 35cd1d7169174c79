"""CLOCS views: a batch of signals turned into views for one shared encoder.

Kiyasseh, Zhu, Clifton, "CLOCS: Contrastive Learning of Cardiac Signals Across Space,
Time, and Patients", ICML 2021; the loss over these views is :func:`physioclr_ext.losses.clocs.clocs_loss`.

* CMSC, :func:`cmsc_views`: two adjacent, non-overlapping segments of the same recording.
* CMLC, :func:`cmlc_views`: one single-lead view per lead, same time window.
* CMSMLC, :func:`cmsmlc_views`: every lead of each of the two segments.

They are deterministic (no generator) and keep dtype and device.
"""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["cmlc_views", "cmsc_views", "cmsmlc_views"]


def cmsc_views(x: Tensor) -> Tensor:
    """CMSC views: two adjacent non-overlapping halves in time.

    ``(B, C, 2T)`` -> ``(2, B, C, T)``; with an odd length the last sample is dropped. For
    the original single-lead setting, reshape ``(B, C, 2T)`` to ``(B * C, 1, 2T)`` first and
    repeat the patient ids C times (each lead is an instance of its patient).

    Example:
        >>> cmsc_views(torch.randn(4, 12, 5000)).shape
        torch.Size([2, 4, 12, 2500])
    """
    t = x.shape[-1] // 2
    return torch.stack([x[..., :t], x[..., t : 2 * t]])


def cmlc_views(x: Tensor) -> Tensor:
    """CMLC views: one single-lead view per lead of the same window, for a shared encoder.

    ``(B, C, T)`` -> ``(C, B, 1, T)``.

    Example:
        >>> cmlc_views(torch.randn(4, 12, 2500)).shape
        torch.Size([12, 4, 1, 2500])
    """
    return x.transpose(0, 1).unsqueeze(2)


def cmsmlc_views(x: Tensor) -> Tensor:
    """CMSMLC views: every lead of each of the two adjacent halves.

    ``(B, C, 2T)`` -> ``(2C, B, 1, T)``; view ``s * C + c`` is lead c of half s.

    Example:
        >>> cmsmlc_views(torch.randn(4, 12, 5000)).shape
        torch.Size([24, 4, 1, 2500])
    """
    halves = cmsc_views(x)  # (2, B, C, T)
    return torch.cat([cmlc_views(halves[0]), cmlc_views(halves[1])])
