"""Heartbeat shuffling: PhysioCLR's physiology-aware view (whole beats permuted).

Maghsoodi et al., "Domain Knowledge is Power: Leveraging Physiological Priors for
Self-Supervised Representation Learning in Electrocardiography" (arXiv 2509.08116);
re-implemented from the description of ``shuffle_beats`` in nooshinmaghsoodi/PhysioCLR (MIT).

Unlike the augmentations of :data:`~physioclr_ext.augmentations.AUGMENTATIONS`, this one
needs the R-peak positions of every example, so it is not in that registry (a
``Compose`` pipeline only passes ``(x, generator)``); call it directly with the peaks.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import List, Optional, Union

import torch
from torch import Tensor

from physioclr_ext.features.beats import RPeaks, clean_r_peaks

__all__ = ["heartbeat_shuffle", "heartbeat_shuffle_batch"]

MODES = ("keep_ends", "published")


def _fresh_generator() -> torch.Generator:
    """A CPU generator with a non-deterministic seed, so the global RNG is never used."""
    generator = torch.Generator()
    generator.seed()
    return generator


def _shuffle_index(peaks: Tensor, length: int, generator: torch.Generator, mode: str) -> Tensor:
    """Source index of every output sample, ``(T,)`` int64; ``-1`` marks a zero-filled sample."""
    bounds = peaks.tolist()
    if mode == "keep_ends":
        beats = list(zip(bounds[:-1], bounds[1:]))
        head, tail = [(0, bounds[0])], [(bounds[-1], length)]
    else:  # published: the prefix is dropped, the last beat runs to T
        beats = list(zip(bounds, bounds[1:] + [length]))
        head, tail = [], []
    order = torch.randperm(len(beats), generator=generator, device=generator.device).tolist()
    pieces = [torch.arange(s, e) for s, e in head + [beats[k] for k in order] + tail]
    index = torch.cat(pieces)
    if index.numel() < length:
        index = torch.cat([index, index.new_full((length - index.numel(),), -1)])
    return index


def heartbeat_shuffle(
    x: Tensor,
    r_peaks: RPeaks,
    generator: Optional[torch.Generator] = None,
    mode: str = "keep_ends",
) -> Tensor:
    """Cut one recording into beats at its R-peaks and permute the beats, keeping the length.

    A beat is ``[r_k, r_{k+1})`` for consecutive R-peaks; all leads are cut at the same
    samples and permuted together, so inter-lead timing is kept. Peaks are cleaned first
    (sorted, duplicates removed, those outside ``[0, T)`` dropped, see :func:`clean_r_peaks`).

    Modes, both keeping the length ``T``:

    * ``"keep_ends"`` (default): the part before the first R-peak stays at the start and the
      tail from the last R-peak to ``T`` stays at the end; only the complete beats in between
      are permuted. The output is a rearrangement of the input samples: the multiset of
      samples and of beats is unchanged and no zeros are introduced, so the view differs
      from the input only in beat order (the property the augmentation is meant to teach
      invariance to), not in amplitude statistics or a flat-line tail.
    * ``"published"``: as the released PhysioCLR code: the part before the first R-peak is
      dropped, the beats (the last one running from the last R-peak to ``T``) are permuted
      and concatenated from ``t = 0``, and the remaining ``r_0`` samples at the end are
      zero-filled. The zero tail has the length of the dropped prefix.

    With fewer than two complete beats (fewer than three R-peaks) there is nothing to
    reorder and an unchanged copy is returned in both modes. (The released code instead
    returns ``x[r_0:]`` followed by zeros for one peak, and all zeros for none; it also
    treats a peak at sample 0 as padding, which is kept here as a real peak.)

    Args:
        x: ``(C, T)`` signal.
        r_peaks: R-peak sample indices, ``(K,)`` tensor or a sequence of ints.
        generator: source of the permutation (``torch.randperm(..., generator=generator)``).
            ``None`` uses a fresh, non-deterministically seeded generator, never the global RNG.
        mode: ``"keep_ends"`` or ``"published"``.

    Returns:
        ``(C, T)`` new tensor of ``x``'s dtype and device.

    Example:
        >>> x = torch.arange(10.0).expand(2, 10)
        >>> g = torch.Generator().manual_seed(0)
        >>> heartbeat_shuffle(x, [1, 3, 6, 8], g).shape
        torch.Size([2, 10])
    """
    if x.dim() != 2:
        raise ValueError(f"expected a (C, T) tensor, got shape {tuple(x.shape)}")
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    length = x.shape[-1]
    peaks = clean_r_peaks(r_peaks, length)
    if peaks.numel() < 3:
        return x.clone()
    index = _shuffle_index(peaks, length, generator or _fresh_generator(), mode).to(x.device)
    out = x[:, index.clamp(min=0)]
    if mode == "published":
        out = out.masked_fill(index < 0, 0)
    return out


def heartbeat_shuffle_batch(
    x: Tensor,
    r_peaks: Union[Sequence[RPeaks], Tensor],
    generator: Optional[torch.Generator] = None,
    mode: str = "keep_ends",
) -> Tensor:
    """:func:`heartbeat_shuffle` applied to every example of a batch, each with its own permutation.

    Args:
        x: ``(B, C, T)`` signals.
        r_peaks: B peak lists (sequences or tensors), or a ``(B, K)`` tensor padded with ``-1``.
        generator: drawn from once per example with at least two complete beats, in batch
            order; ``None``: a fresh non-deterministic generator (never the global RNG).
        mode: ``"keep_ends"`` or ``"published"`` (see :func:`heartbeat_shuffle`).

    Returns:
        ``(B, C, T)`` new tensor.

    Example:
        >>> x = torch.randn(2, 12, 2500)
        >>> peaks = torch.tensor([[100, 500, 900, 1300], [50, 450, 850, -1]])
        >>> heartbeat_shuffle_batch(x, peaks, torch.Generator().manual_seed(0)).shape
        torch.Size([2, 12, 2500])
    """
    if x.dim() != 3:
        raise ValueError(f"expected a (B, C, T) tensor, got shape {tuple(x.shape)}")
    if len(r_peaks) != x.shape[0]:
        raise ValueError(f"need one R-peak list per example: {len(r_peaks)} lists for B = {x.shape[0]}")
    generator = generator or _fresh_generator()
    views: List[Tensor] = [heartbeat_shuffle(xi, pi, generator, mode) for xi, pi in zip(x, r_peaks)]
    return torch.stack(views) if views else x.clone()
