"""Fixed-length windowing and per-window signal quality checks."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

QUALITY_REASONS = ("nan", "flat", "saturated")


def window_geometry(fs: float, window_seconds: float, overlap_seconds: float) -> tuple[int, int]:
    """Window length and hop in samples at rate ``fs``.

    Returns:
        ``(length, hop)`` with ``hop = length - overlap``; raises when the
        overlap is not strictly shorter than the window.
    """
    length = round(window_seconds * fs)
    overlap = round(overlap_seconds * fs)
    if length <= 0:
        raise ValueError(f"window of {window_seconds} s at {fs} Hz has no samples")
    if not 0 <= overlap < length:
        raise ValueError(f"overlap {overlap_seconds} s must be >= 0 and shorter than the window")
    return length, length - overlap


def window_starts(n_samples: int, length: int, hop: int) -> np.ndarray:
    """Start samples of all complete windows of a ``n_samples``-long signal.

    Returns:
        ``(N,)`` int64 starts ``0, hop, 2*hop, ...`` with ``start + length <= n_samples``;
        empty when the signal is shorter than one window (the tail is dropped).
    """
    if n_samples < length:
        return np.zeros(0, dtype=np.int64)
    return np.arange(0, n_samples - length + 1, hop, dtype=np.int64)


def pair_step(length: int, hop: int) -> int:
    """Index distance between the nearest two windows that do not overlap."""
    return -(-length // hop)


def raw_bounds(start: int, length: int, fs_out: float, fs_in: float, n_raw: int) -> tuple[int, int]:
    """Map an output-rate window ``[start, start + length)`` to raw sample indices.

    Rounding both ends the same way makes adjacent windows share their
    boundary, so every raw sample (and beat) belongs to at most one of them.
    """
    scale = fs_in / fs_out
    lo = min(round(start * scale), n_raw)
    hi = min(round((start + length) * scale), n_raw)
    return lo, hi


@dataclass(frozen=True)
class QualityThresholds:
    """Thresholds of the quality checks.

    Attributes:
        flat: a present lead whose peak-to-peak range (raw units, mV) in the
            window is below this is flat.
        saturation: a present lead with more than this share of samples equal
            to its window minimum or maximum is saturated (clipped).
    """

    flat: float = 0.02
    saturation: float = 0.05


def quality_flags(raw: np.ndarray, present: np.ndarray, thresholds: QualityThresholds) -> list[str]:
    """Quality problems of one window of the raw, lead-selected signal.

    Args:
        raw: ``(L, t)`` window before NaN filling and filtering.
        present: ``(L,)`` mask of real (not zero-filled) leads.
        thresholds: flat / saturation thresholds.

    Returns:
        Sorted subset of ``("flat", "nan", "saturated")``. A flat lead is not
        also counted as saturated (its min and max coincide trivially).
    """
    leads = raw[np.asarray(present, bool)]
    if leads.size == 0:
        return ["flat"]
    flags = set()
    if np.isnan(leads).any():
        flags.add("nan")
    for lead in leads:
        finite = lead[np.isfinite(lead)]
        if finite.size == 0:
            continue
        lo, hi = finite.min(), finite.max()
        if hi - lo < thresholds.flat:
            flags.add("flat")
            continue
        stuck = np.count_nonzero((finite == lo) | (finite == hi)) / finite.size
        if stuck > thresholds.saturation:
            flags.add("saturated")
    return sorted(flags)


FLAG_CHUNK = 512
"""Windows of one lead gathered at once by :func:`quality_flags_batch` (bounds its memory)."""


def quality_flags_batch(
    raw: np.ndarray, present: np.ndarray, bounds: Sequence[tuple[int, int]], thresholds: QualityThresholds
) -> list[list[str]]:
    """``[quality_flags(raw[:, lo:hi], present, thresholds) for lo, hi in bounds]``, with numpy over all the
    windows of each lead at once where they have one length and finite samples (the same comparisons on the
    same numbers); any other window goes through :func:`quality_flags`.

    Args:
        raw: ``(L, T)`` lead-selected raw signal.
        bounds: ``(lo, hi)`` raw sample span of each window.
    """
    rows = np.flatnonzero(np.asarray(present, bool))
    lengths = {hi - lo for lo, hi in bounds}
    width = lengths.pop() if len(lengths) == 1 else 0
    if width <= 0 or rows.size == 0:
        return [quality_flags(raw[:, lo:hi], present, thresholds) for lo, hi in bounds]
    starts = np.asarray([lo for lo, _ in bounds], dtype=np.int64)
    flat = np.zeros(len(bounds), dtype=bool)
    saturated = np.zeros(len(bounds), dtype=bool)
    irregular = np.zeros(len(bounds), dtype=bool)  # a non-finite sample: left to quality_flags
    for row in rows:
        spans = sliding_window_view(raw[row], width)
        for first in range(0, len(bounds), FLAG_CHUNK):
            part = slice(first, first + FLAG_CHUNK)
            windows = spans[starts[part]]  # (k, width)
            lo, hi = windows.min(axis=1), windows.max(axis=1)
            irregular[part] |= ~(np.isfinite(lo) & np.isfinite(hi))
            with np.errstate(invalid="ignore"):  # inf - inf in irregular windows, recomputed below
                is_flat = hi - lo < thresholds.flat
            stuck = np.count_nonzero((windows == lo[:, None]) | (windows == hi[:, None]), axis=1) / width
            flat[part] |= is_flat
            saturated[part] |= ~is_flat & (stuck > thresholds.saturation)
    return [
        quality_flags(raw[:, lo_hi[0] : lo_hi[1]], present, thresholds)
        if bad
        else ["flat"] * bool(f) + ["saturated"] * bool(s)
        for lo_hi, bad, f, s in zip(bounds, irregular.tolist(), flat.tolist(), saturated.tolist())
    ]
