"""Fixed-length windowing and per-window signal quality checks."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

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
