"""Per-beat measurements from wave fiducials (pure numpy, no neurokit2), and R-peak cleaning.

Conventions (PhysioCLR's ``extract_ecg_features.py``): PR = P onset -> QRS onset, QRS = QRS onset ->
QRS offset, QT = QRS onset -> T offset, QTc = QT / sqrt(RR in s) (Bazett), amplitudes against the PR
baseline (median of the 80 ms before QRS onset), QRS upstroke slope = max |dV/dt| from QRS onset to
the R-peak, ST level at J + 60 ms (J = QRS offset). A beat's RR is the interval from the previous
R-peak; the first beat of a window has no previous one in the window and uses the next interval.

:func:`clean_r_peaks` (torch) normalises a window's R-peak list for heartbeat shuffling and the
PhysioCLR peak-aware losses. It imports torch when called: feature extraction and preprocessing, which
import this module, never load torch (3-4 s of every preprocessing command otherwise).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Union

import numpy as np

if TYPE_CHECKING:
    from torch import Tensor

from .names import BEAT_FEATURES

FIDUCIALS = ("p_on", "p_peak", "p_off", "qrs_on", "qrs_off", "t_on", "t_peak", "t_off")
BASELINE_MS = 80.0
ST_OFFSET_MS = 60.0


@dataclass
class Fiducials:
    """Sample indices of one signal's waves, one entry per beat (NaN where missing).

    Attributes:
        r: ``(K,)`` R-peak samples (int).
        waves: name in ``FIDUCIALS`` -> ``(K,)`` float sample indices, NaN where not delineated.
    """

    r: np.ndarray
    waves: dict[str, np.ndarray] = field(default_factory=dict)

    def get(self, name: str) -> np.ndarray:
        """``(K,)`` float positions of ``name`` (all NaN when absent)."""
        return np.asarray(self.waves.get(name, np.full(len(self.r), np.nan)), dtype=np.float64)


def sanitize(fid: Fiducials) -> Fiducials:
    """Fiducials with impossible positions set to NaN.

    Within a beat the order must be P on < P peak < P off <= QRS on < R < QRS off <= T on < T peak < T off,
    the P wave after the previous R-peak and the T wave before the next one. DWT delineation sometimes
    puts a P offset inside the QRS; such a position is dropped rather than measured.
    """
    r = np.asarray(fid.r, dtype=np.float64)
    prev_r = np.concatenate([[-np.inf], r[:-1]])
    next_r = np.concatenate([r[1:], [np.inf]])
    w = {name: fid.get(name).copy() for name in FIDUCIALS}
    with np.errstate(invalid="ignore"):
        w["qrs_on"][~((w["qrs_on"] < r) & (w["qrs_on"] > prev_r))] = np.nan
        w["qrs_off"][~((w["qrs_off"] > r) & (w["qrs_off"] < next_r))] = np.nan
        upper = np.where(np.isfinite(w["qrs_on"]), w["qrs_on"], r)
        lower = np.where(np.isfinite(w["qrs_off"]), w["qrs_off"], r)
        for name in ("p_on", "p_peak", "p_off"):
            w[name][~((w[name] > prev_r) & (w[name] <= upper))] = np.nan
        for name in ("t_on", "t_peak", "t_off"):
            w[name][~((w[name] >= lower) & (w[name] < next_r))] = np.nan
        for a, b in (
            ("p_on", "p_peak"),
            ("p_peak", "p_off"),
            ("p_on", "p_off"),
            ("t_on", "t_peak"),
            ("t_peak", "t_off"),
            ("t_on", "t_off"),
        ):
            broken = w[a] >= w[b]
            w[a][broken] = np.nan
            w[b][broken] = np.nan
    return Fiducials(r=np.asarray(fid.r), waves=w)


def beat_rr_ms(r: np.ndarray, fs: float) -> np.ndarray:
    """``(K,)`` RR per beat in ms: previous interval, the next one for the first beat; NaN when K < 2."""
    r = np.asarray(r, dtype=np.float64)
    if len(r) < 2:
        return np.full(len(r), np.nan)
    diffs = np.diff(r) * 1000.0 / fs
    return np.concatenate([diffs[:1], diffs])


def _interval(start: np.ndarray, end: np.ndarray, fs: float) -> np.ndarray:
    """``(end - start)`` in ms, NaN where either is missing or the interval is not positive."""
    ms = (end - start) * 1000.0 / fs
    return np.where(ms > 0, ms, np.nan)


def _index(x: np.ndarray, position: float) -> int | None:
    """Integer sample of a float position, ``None`` when missing or outside the signal."""
    if not np.isfinite(position):
        return None
    i = int(round(position))
    return i if 0 <= i < len(x) else None


def baselines(x: np.ndarray, fs: float, qrs_on: np.ndarray) -> np.ndarray:
    """``(K,)`` PR baseline: median of ``x`` over the ``BASELINE_MS`` before each QRS onset (NaN if none)."""
    span = max(1, int(round(BASELINE_MS * fs / 1000.0)))
    out = np.full(len(qrs_on), np.nan)
    for k, on in enumerate(qrs_on):
        i = _index(x, on)
        if i is not None and i > 0:
            out[k] = float(np.median(x[max(0, i - span) : i]))
    return out


def wave_amplitude(x: np.ndarray, on: float, off: float, peak: float, base: float) -> float:
    """Signed amplitude of a wave against ``base``: the largest deviation in ``[on, off]``.

    Falls back to the value at ``peak`` when the boundaries are missing; NaN when nothing is known.
    """
    if not np.isfinite(base):
        return float("nan")
    lo, hi = _index(x, on), _index(x, off)
    if lo is not None and hi is not None and hi > lo:
        seg = x[lo : hi + 1] - base
        return float(seg[np.argmax(np.abs(seg))])
    i = _index(x, peak)
    return float(x[i] - base) if i is not None else float("nan")


def upstroke_slope(x: np.ndarray, fs: float, on: float, r: float) -> float:
    """Max ``|dV/dt|`` in mV/ms between QRS onset and the R-peak (NaN when undefined)."""
    lo, hi = _index(x, on), _index(x, r)
    if lo is None or hi is None or hi - lo < 1:
        return float("nan")
    return float(np.abs(np.diff(x[lo : hi + 1])).max() * fs / 1000.0)


def measure_beats(x: np.ndarray, fs: float, fid: Fiducials) -> dict[str, np.ndarray]:
    """Per-beat features of one signal.

    Args:
        x: ``(T,)`` signal in mV.
        fs: sampling rate in Hz.
        fid: fiducials of the ``K`` beats (pass them through ``sanitize`` first).

    Returns:
        ``BEAT_FEATURES`` name -> ``(K,)`` float64, NaN where the waves needed are missing.
    """
    r = np.asarray(fid.r, dtype=np.float64)
    p_on, p_off, qrs_on, qrs_off = fid.get("p_on"), fid.get("p_off"), fid.get("qrs_on"), fid.get("qrs_off")
    t_on, t_off = fid.get("t_on"), fid.get("t_off")
    rr = beat_rr_ms(r, fs)
    qt = _interval(qrs_on, t_off, fs)
    base = baselines(x, fs, qrs_on)
    st_shift = ST_OFFSET_MS * fs / 1000.0
    out = {
        "rr_ms": rr,
        "pr_ms": _interval(p_on, qrs_on, fs),
        "qrs_ms": _interval(qrs_on, qrs_off, fs),
        "qtc_ms": qt / np.sqrt(rr / 1000.0),
        "p_dur_ms": _interval(p_on, p_off, fs),
        "t_dur_ms": _interval(t_on, t_off, fs),
        "r_amp_mv": np.array([wave_amplitude(x, np.nan, np.nan, rk, b) for rk, b in zip(r, base)]),
        "p_amp_mv": np.array(
            [wave_amplitude(x, a, b, c, d) for a, b, c, d in zip(p_on, p_off, fid.get("p_peak"), base)]
        ),
        "t_amp_mv": np.array(
            [wave_amplitude(x, a, b, c, d) for a, b, c, d in zip(t_on, t_off, fid.get("t_peak"), base)]
        ),
        "qrs_slope_mv_per_ms": np.array([upstroke_slope(x, fs, on, rk) for on, rk in zip(qrs_on, r)]),
        "st_j60_mv": np.array([wave_amplitude(x, np.nan, np.nan, j + st_shift, b) for j, b in zip(qrs_off, base)]),
    }
    return {name: np.asarray(out[name], dtype=np.float64).reshape(len(r)) for name in BEAT_FEATURES}


RPeaks = Union[Sequence[int], "Tensor"]


def clean_r_peaks(r_peaks: RPeaks, length: int) -> Tensor:
    """R-peak indices as a sorted, duplicate-free int64 CPU tensor ``(K,)`` inside ``[0, length)``.

    Peaks outside the window are dropped rather than clamped: clamping would invent a beat
    boundary at 0 or ``length - 1``. Dropping them also lets a batch pad its peak lists with
    ``-1``.

    Example:
        >>> clean_r_peaks([900, -1, 300, 300, 2600], 2500).tolist()
        [300, 900]
    """
    import torch

    peaks = torch.as_tensor(r_peaks).detach().to("cpu", torch.long).reshape(-1)
    peaks = peaks[(peaks >= 0) & (peaks < length)]
    return torch.unique(peaks)  # sorted
