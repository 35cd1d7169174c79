"""PhysioCLR's peak-aware reconstruction terms: R-peak maps, peak weights and their losses.

Maghsoodi et al., "Domain Knowledge is Power: Leveraging Physiological Priors for
Self-Supervised Representation Learning in Electrocardiography" (arXiv 2509.08116).
The released ``criterions/physioclr_criterion.py`` (nooshinmaghsoodi/PhysioCLR, MIT) scores a
plain ``MSE(reconstruction, source)`` and ``MSE(peaks_hat, peaks)``; re-implemented here, not copied:

* :func:`r_peak_map`: the target map, a Gaussian bump at every R-peak, ``(B, T)``;
* :func:`peak_weights`: per-sample weights, heavier around the R-peaks, ``(B, T)``;
* :func:`peak_aware_reconstruction_loss`: weighted MSE of ``(B, C, T)`` signals;
* :func:`peak_map_loss`: MSE of ``(B, T)`` peak maps.

Both losses take ``gather``: the value is then the single-process loss on the concatenated batch
of every data-parallel worker and the gradient this worker's share (see
:mod:`physioclr_ext.losses.distributed`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Dict, Optional, Tuple, Union

import torch
from torch import Tensor

from physioclr_ext.features.beats import clean_r_peaks
from physioclr_ext.losses.distributed import sum_value_over_workers

__all__ = ["BatchPeaks", "peak_aware_reconstruction_loss", "peak_map_loss", "peak_weights", "r_peak_map"]

BatchPeaks = Union[Sequence[Union[Sequence[int], Tensor]], Tensor]
Logs = Dict[str, float]


def _peak_distance(r_peaks: BatchPeaks, length: int, device: Optional[torch.device]) -> Tensor:
    """Distance in samples from every sample to its nearest R-peak, ``(B, T)`` float64 (inf without peaks)."""
    t = torch.arange(length, dtype=torch.float64)
    rows = []
    for peaks in r_peaks:
        p = clean_r_peaks(peaks, length).to(torch.float64)
        if p.numel() == 0:
            rows.append(torch.full((length,), float("inf"), dtype=torch.float64))
            continue
        right = torch.searchsorted(p, t).clamp(max=p.numel() - 1)
        left = (right - 1).clamp(min=0)
        rows.append(torch.minimum((t - p[left]).abs(), (t - p[right]).abs()))
    out = torch.stack(rows) if rows else torch.zeros(0, length, dtype=torch.float64)
    return out.to(device) if device is not None else out


def r_peak_map(
    r_peaks: BatchPeaks,
    length: int,
    sample_rate: float,
    sigma_s: float = 0.02,
    device: Optional[torch.device] = None,
    dtype: torch.dtype = torch.float32,
) -> Tensor:
    """Target R-peak map: a Gaussian bump of height 1 and width ``sigma_s`` at every R-peak.

    The maximum over the bumps equals the bump of the nearest peak, so the map is computed
    from the distance to the nearest peak. Peaks outside ``[0, length)`` are ignored (so a
    ``(B, K)`` tensor padded with ``-1`` works); an example without peaks gets zeros.

    Args:
        r_peaks: B peak lists (sample indices) or a ``(B, K)`` tensor.
        length: T, samples per window.
        sample_rate: Hz, to turn ``sigma_s`` into samples.
        sigma_s: standard deviation of the bumps in seconds (20 ms).

    Returns:
        ``(B, T)`` map in ``[0, 1]``, exactly 1 at each peak.

    Example:
        >>> m = r_peak_map([[10, 30]], length=40, sample_rate=500.0)
        >>> m[0, 10].item(), m[0, 30].item()
        (1.0, 1.0)
    """
    distance = _peak_distance(r_peaks, length, device)
    sigma = sigma_s * sample_rate
    return torch.exp(-0.5 * (distance / sigma) ** 2).to(dtype)


def peak_weights(
    r_peaks: BatchPeaks,
    length: int,
    sample_rate: float,
    width_s: float = 0.06,
    peak_weight: float = 4.0,
    profile: str = "box",
    device: Optional[torch.device] = None,
    dtype: torch.dtype = torch.float32,
) -> Tensor:
    """Per-sample weights of the peak-aware reconstruction: heavier around the R-peaks.

    ``profile="box"`` (default): ``peak_weight`` within ``+-width_s`` of an R-peak (the QRS
    complex is about 80-120 ms wide), 1 elsewhere. ``profile="gaussian"``:
    ``1 + (peak_weight - 1) * exp(-d^2 / (2 width^2))`` with d the distance to the nearest peak.
    ``peak_weight=1`` gives uniform weights, i.e. the released plain MSE.

    Returns:
        ``(B, T)`` weights >= 1 (for ``peak_weight >= 1``); 1 everywhere without peaks.

    Example:
        >>> w = peak_weights([[100]], length=200, sample_rate=500.0)  # +-30 samples
        >>> w[0, 100].item(), w[0, 130].item(), w[0, 131].item()
        (4.0, 4.0, 1.0)
    """
    distance = _peak_distance(r_peaks, length, device)
    width = width_s * sample_rate
    if profile == "box":
        bump = (distance <= width).to(torch.float64)
    elif profile == "gaussian":
        bump = torch.exp(-0.5 * (distance / width) ** 2)
    else:
        raise ValueError(f"profile must be 'box' or 'gaussian', got {profile!r}")
    return (1.0 + (peak_weight - 1.0) * bump).to(dtype)


def _global_mean(total: Tensor, count: Tensor, gather: bool) -> Tensor:
    """``total / count`` over all workers: value global, gradient this worker's share."""
    count = count.detach()
    if gather:
        count = sum_value_over_workers(count)
        return sum_value_over_workers(total / count.clamp(min=1e-12))
    return total / count.clamp(min=1e-12)


def peak_aware_reconstruction_loss(
    recon: Tensor, target: Tensor, weights: Tensor, gather: bool = True
) -> Tuple[Tensor, Logs]:
    """Weighted mean squared error ``sum w[b, t] (recon - target)^2 / (C * sum w[b, t])``.

    With uniform weights this is the released ``MSE(reconstruction, source)``.

    ``recon`` and ``target`` are ``(B, C, T)``; ``weights`` ``(B, T)`` is shared by all leads
    (:func:`peak_weights`); ``gather``: average over every data-parallel worker's samples.
    Returns ``(loss, {"loss_reconstruction": float})``.

    Example:
        >>> x = torch.zeros(2, 12, 100)
        >>> peak_aware_reconstruction_loss(x + 1, x, torch.ones(2, 100))[0].item()
        1.0
    """
    if recon.shape != target.shape or recon.ndim != 3 or weights.shape != (recon.shape[0], recon.shape[2]):
        raise ValueError(
            f"need recon, target (B, C, T) and weights (B, T), got {tuple(recon.shape)}, "
            f"{tuple(target.shape)}, {tuple(weights.shape)}"
        )
    w = weights.to(recon.dtype)
    total = ((recon - target) ** 2 * w[:, None, :]).sum()
    loss = _global_mean(total, w.sum() * recon.shape[1], gather)
    return loss, {"loss_reconstruction": float(loss.detach())}


def peak_map_loss(pred: Tensor, target: Tensor, gather: bool = True) -> Tuple[Tensor, Logs]:
    """Mean squared error between a predicted and the target R-peak map (the released ``MSE(peaks_hat, peaks)``).

    ``pred`` and ``target`` are ``(B, T)`` (:func:`r_peak_map`); ``gather``: average over every
    data-parallel worker's samples. Returns ``(loss, {"loss_peak": float})``.

    Example:
        >>> peak_map_loss(torch.ones(2, 10), torch.zeros(2, 10))[0].item()
        1.0
    """
    if pred.shape != target.shape:
        raise ValueError(f"pred and target must have the same shape, got {tuple(pred.shape)}, {tuple(target.shape)}")
    total = ((pred - target.to(pred.dtype)) ** 2).sum()
    loss = _global_mean(total, torch.tensor(float(pred.numel()), device=pred.device), gather)
    return loss, {"loss_peak": float(loss.detach())}
