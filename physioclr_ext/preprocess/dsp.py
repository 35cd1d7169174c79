"""Signal operations: NaN filling, zero-phase band-pass, resampling, normalisation.

All functions take and return ``(L, T)`` arrays (leads x time).
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np
from scipy import signal as sps

NORMALIZE_CHOICES = ("per_lead", "per_sample", "none")
# Standard deviations below this (in the signal's unit, mV) count as constant:
# z-scoring them would only amplify numerical residue of the filter.
CONSTANT_STD = 1e-6


def fill_nan(x: np.ndarray, copy: bool = True) -> np.ndarray:
    """Linearly interpolate NaNs along time, holding the edge values.

    Args:
        x: ``(L, T)`` signal. A row that is entirely NaN becomes zeros.
        copy: ``False`` fills a float64 ``x`` in place (and returns it), e.g. a fresh selection of rows.

    Returns:
        ``(L, T)`` copy without NaN (``x`` itself with ``copy=False`` when it is float64).
    """
    out = np.array(x, dtype=np.float64, copy=True) if copy else np.asarray(x, dtype=np.float64)
    t = np.arange(out.shape[1])
    for row in out:
        bad = np.isnan(row)
        if not bad.any():
            continue
        if bad.all():
            row[:] = 0.0
            continue
        row[bad] = np.interp(t[bad], t[~bad], row[~bad])
    return out


def bandpass(
    x: np.ndarray, fs: float, low: float, high: float, order: int, rows: np.ndarray | None = None
) -> np.ndarray:
    """Zero-phase Butterworth band-pass (``butter(..., output="sos")`` + ``sosfiltfilt``).

    Args:
        x: ``(L, T)`` NaN-free signal.
        fs: sampling rate of ``x`` in Hz.
        low, high: pass band edges in Hz, ``0 < low < high < fs / 2``.
        order: Butterworth order of each of the low/high edges.
        rows: optional ``(L,)`` boolean mask; only these rows are filtered,
            the others are returned unchanged (zero-filled missing leads).

    Returns:
        ``(L, T)`` filtered copy.
    """
    if not 0 < low < high < fs / 2:
        raise ValueError(f"band {low}-{high} Hz is not inside (0, {fs / 2}) Hz for fs={fs}")
    sos = sps.butter(order, [low, high], btype="bandpass", fs=fs, output="sos")
    if rows is None:  # sosfiltfilt returns a new array: no copy of x needed
        return np.asarray(sps.sosfiltfilt(sos, np.asarray(x, dtype=np.float64), axis=-1), dtype=np.float64)
    out = np.array(x, dtype=np.float64, copy=True)
    selected = np.asarray(rows, bool)
    if selected.any():
        out[selected] = sps.sosfiltfilt(sos, out[selected], axis=-1)
    return out


def resample_factors(fs_in: float, fs_out: float) -> tuple[int, int]:
    """Smallest integers ``(up, down)`` with ``fs_in * up / down == fs_out``."""
    ratio = Fraction(fs_out).limit_denominator(10_000) / Fraction(fs_in).limit_denominator(10_000)
    return ratio.numerator, ratio.denominator


def resample(x: np.ndarray, fs_in: float, fs_out: float) -> np.ndarray:
    """Polyphase resampling (``scipy.signal.resample_poly``) along time.

    Args:
        x: ``(L, T)`` NaN-free signal at ``fs_in``.

    Returns:
        ``(L, ceil(T * up / down))`` signal at ``fs_out``; ``x`` itself when the rates agree.
    """
    up, down = resample_factors(fs_in, fs_out)
    if up == down:
        return x
    return sps.resample_poly(x, up, down, axis=-1)


def _zscore(x: np.ndarray) -> np.ndarray:
    std = x.std()
    if not np.isfinite(std) or std < CONSTANT_STD:
        return np.zeros_like(x)
    return (x - x.mean()) / std


def normalize(x: np.ndarray, mode: str, present: np.ndarray | None = None) -> np.ndarray:
    """Normalise one window.

    Args:
        x: ``(L, T)`` window.
        mode: ``per_lead`` (z-score each lead over time), ``per_sample`` (one
            mean/std over all present leads and time) or ``none``.
        present: ``(L,)`` mask of real leads. Absent (zero-filled) leads are
            left out of the statistics and stay zero. A constant lead or
            window becomes zeros, never NaN.

    Returns:
        ``(L, T)`` float64 normalised copy.
    """
    if mode not in NORMALIZE_CHOICES:
        raise ValueError(f"normalize must be one of {NORMALIZE_CHOICES}, got {mode!r}")
    out = np.array(x, dtype=np.float64, copy=True)
    rows = np.ones(out.shape[0], dtype=bool) if present is None else np.asarray(present, bool)
    if mode == "none":
        return out
    if mode == "per_lead":
        for i in np.flatnonzero(rows):
            out[i] = _zscore(out[i])
    elif rows.any():
        out[rows] = _zscore(out[rows])
    out[~rows] = 0.0
    return out


def normalize_batch(x: np.ndarray, mode: str, copy: bool = True) -> np.ndarray:
    """Normalise a batch of windows whose leads are all real: equal, bit for bit, to
    ``np.stack([normalize(w, mode) for w in x])`` (the same reductions along the same contiguous axes).

    Args:
        x: ``(N, L, T)`` windows.
        mode: as in :func:`normalize`.
        copy: ``False`` normalises a C-contiguous float64 ``x`` in place (and returns it).

    Returns:
        ``(N, L, T)`` float64 normalised copy (``x`` itself with ``copy=False`` when it is C-contiguous float64).
    """
    if mode not in NORMALIZE_CHOICES:
        raise ValueError(f"normalize must be one of {NORMALIZE_CHOICES}, got {mode!r}")
    out = np.array(x, dtype=np.float64, copy=True, order="C") if copy else np.ascontiguousarray(x, dtype=np.float64)
    if mode == "none" or out.size == 0:
        return out
    axes = (-1,) if mode == "per_lead" else (-2, -1)
    mean = out.mean(axis=axes, keepdims=True)
    std = out.std(axis=axes, keepdims=True)
    constant = ~np.isfinite(std) | (std < CONSTANT_STD)
    out -= mean
    np.divide(out, std, out=out, where=~constant)
    out[np.broadcast_to(constant, out.shape)] = 0.0
    return out
