"""Per-lead ECG signal quality indices per window, and one combined score in [0, 1].

Indices (computed per lead and window on the raw, lead-selected signal at its native rate, NaN filled):

- ``bsqi``: agreement of two QRS detectors of different principle, ``matched / (n1 + n2 - matched)``
  with a 150 ms tolerance (Li, Mark & Clifford 2008, Physiol Meas 29:15; Behar et al. 2013, IEEE TBME
  60:1660; Zhao & Zhang 2018's qSQI). The detectors are neurokit2's gradient detector (``neurokit``) and
  Pan & Tompkins 1985's energy detector (``pantompkins1985``; Behar's jqrs is one of its kind).
- ``ksqi``: Pearson kurtosis of the 0.5-40 Hz band-passed window (Li et al. 2008; neurokit2 ``ecg_quality``
  ``zhao2018``'s kSQI): a clean ECG with sharp QRS complexes is above 5, Gaussian noise is 3.
- ``psqi``: power 5-15 Hz / power 5-40 Hz of the raw window (Welch), the QRS share of the spectrum
  (Li et al. 2008; Zhao & Zhang 2018: 0.5-0.8 optimal).
- ``bassqi``: 1 - power 0-1 Hz / power 0-40 Hz of the raw window, the share outside the baseline
  (Li et al. 2008; Zhao & Zhang 2018: >= 0.95 optimal, < 0.9 unqualified).
- ``tsqi``: mean correlation of each beat with the window's average beat, beats one median RR interval long
  centred on the detected R peaks (Orphanidou et al. 2015, IEEE JBHI 19:832, acceptable >= 0.66;
  neurokit2 ``ecg_quality`` ``templatematch``). Orphanidou's heart-rate and RR-ratio rules are left out:
  they reject clean arrhythmic windows (pauses, ectopic beats), which this package is used to classify.

Combined score (:func:`combine`): each index becomes a sub-score in [0, 1] by a piecewise-linear ramp
from its "unqualified" to its "optimal" bound (:data:`RULES`, the bounds of Zhao & Zhang 2018 for
qSQI/pSQI/kSQI/basSQI and of Orphanidou et al. 2015 for the template correlation), and the lead's score is
the weighted mean of the sub-scores (:data:`WEIGHTS`; ``psqi`` has weight 0). A window's score is the minimum over its present
leads: the model sees every lead, one lead swamped by noise or lead-off spikes corrupts the input, and
annotators reject a recording when any lead is unacceptable (PhysioNet/CinC Challenge 2011).
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import scipy.signal as sps
import scipy.stats

INDICES = ("bsqi", "ksqi", "psqi", "bassqi", "tsqi")
MATCH_TOLERANCE_S = 0.15
RECOMMENDED_MIN = 0.5
"""The ``--quality-min`` this package recommends (chosen with ``benchmarks/signal_quality.py``)."""
MIN_SECONDS = 1.0
"""Windows shorter than this get NaN indices (score 0): too short for a spectrum or two beats."""
MIN_RATE = 25.0
"""Leads sampled slower than this (the readers' lowest plausible ECG rate) get NaN indices: no QRS band."""


@dataclass(frozen=True)
class Ramp:
    """Sub-score of an index: 0 at or below ``low``, 1 from ``high`` to ``fall`` (if set), 0 from ``zero``.

    Attributes:
        low, high: rising edge (unqualified bound, optimal bound).
        fall, zero: optional falling edge (optimal upper bound, unqualified upper bound).
    """

    low: float
    high: float
    fall: float | None = None
    zero: float | None = None

    def __call__(self, values: np.ndarray) -> np.ndarray:
        """Sub-scores of ``values`` (any shape); NaN becomes 0."""
        v = np.asarray(values, dtype=np.float64)
        score = np.clip((v - self.low) / (self.high - self.low), 0.0, 1.0)
        if self.fall is not None and self.zero is not None:
            score = np.minimum(score, np.clip((self.zero - v) / (self.zero - self.fall), 0.0, 1.0))
        return np.nan_to_num(score, nan=0.0)


RULES: dict[str, Ramp] = {
    # Zhao & Zhang 2018 qSQI: < 0.6 unqualified, >= 0.9 optimal.
    "bsqi": Ramp(0.6, 0.9),
    # Zhao & Zhang 2018 kSQI: > 5 optimal; 3 is the kurtosis of Gaussian noise.
    "ksqi": Ramp(3.0, 5.0),
    # Zhao & Zhang 2018 pSQI: 0.5-0.8 optimal, 0.4-0.5 suspicious; falling to 0 at 0.9 (mirrors the rise).
    "psqi": Ramp(0.4, 0.5, 0.8, 0.9),
    # Zhao & Zhang 2018 basSQI: < 0.9 unqualified, >= 0.95 optimal.
    "bassqi": Ramp(0.9, 0.95),
    # Orphanidou et al. 2015: mean template correlation >= 0.66 acceptable (centre of the ramp).
    "tsqi": Ramp(0.5, 0.8),
}
WEIGHTS: dict[str, float] = {"bsqi": 0.35, "ksqi": 0.2, "psqi": 0.0, "bassqi": 0.1, "tsqi": 0.35}
"""Weights of the sub-scores in a lead's score (sum 1). The beat-based indices (detector agreement, template
correlation) separate MIT-BIH's noise-annotated windows from clean ones best and weigh most; ``psqi`` weighs
nothing: on the shared data it does not separate them at all (AUROC 0.53, ``benchmarks/signal_quality.py``),
since arrhythmic and paced beats move the QRS share of the spectrum as much as noise does. It is still
computed and reported by the benchmark."""


def _filter(x: np.ndarray, fs: float, low: float, high: float, order: int) -> np.ndarray:
    """Zero-phase Butterworth band-pass, the upper edge clipped below Nyquist."""
    high = min(high, 0.45 * fs)
    sos = sps.butter(order, [low, high], btype="bandpass", fs=fs, output="sos")
    return sps.sosfiltfilt(sos, x)


def detect_beats(x: np.ndarray, fs: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The band-passed lead and the R peaks of two detectors.

    Args:
        x: ``(T,)`` one lead, NaN filled, at rate ``fs``.

    Returns:
        ``(filtered (T,), peaks_neurokit (P1,), peaks_pantompkins (P2,))``: the 0.5-40 Hz band-passed lead
        (neurokit2's detector expects a 0.5 Hz high-passed signal) and sorted int64 sample indices.
        Pan-Tompkins marks the peak of its moving-window integral, ~40 ms after the R peak (within the
        150 ms tolerance of :func:`beat_agreement`).
    """
    import neurokit2 as nk  # lazily: a heavy import, needed only when windows are scored

    filtered = _filter(x, fs, 0.5, 40.0, 3)
    # Pan & Tompkins detect on the 5-15 Hz band (neurokit2's ecg_clean "pantompkins1985": order 1).
    narrow = _filter(x, fs, 5.0, 15.0, 1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        first = nk.ecg_findpeaks(filtered, sampling_rate=int(round(fs)), method="neurokit")["ECG_R_Peaks"]
        second = nk.ecg_findpeaks(narrow, sampling_rate=int(round(fs)), method="pantompkins1985")["ECG_R_Peaks"]
    return filtered, np.sort(np.asarray(first, np.int64)), np.sort(np.asarray(second, np.int64))


def band_power(freqs: np.ndarray, psd: np.ndarray, low: float, high: float) -> np.ndarray:
    """Sum of ``psd (..., F)`` over ``low <= f <= high`` (uniform bins, so proportional to the power)."""
    return psd[..., (freqs >= low) & (freqs <= high)].sum(axis=-1)


def spectral_indices(segments: np.ndarray, fs: float) -> tuple[np.ndarray, np.ndarray]:
    """``(psqi, bassqi)`` of raw windows ``(..., t)``, each ``(...)``: Welch PSD with 4 s Hann segments
    (or the whole window when shorter); NaN where a window has no power below 40 Hz."""
    nperseg = int(min(segments.shape[-1], round(4 * fs)))
    freqs, psd = sps.welch(segments, fs=fs, nperseg=nperseg, detrend="constant", axis=-1)
    qrs, wide = band_power(freqs, psd, 5.0, 15.0), band_power(freqs, psd, 5.0, 40.0)
    base, full = band_power(freqs, psd, 0.0, 1.0), band_power(freqs, psd, 0.0, 40.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        psqi = np.where(wide > 0, qrs / wide, np.nan)
        bassqi = np.where(full > 0, 1.0 - base / full, np.nan)
    return psqi, bassqi


def beat_agreement(first: np.ndarray, second: np.ndarray, lo: int, hi: int, tolerance: int) -> float:
    """bSQI of ``[lo, hi)``: ``matched / (n1 + n2 - matched)``, 0 when neither detector found a beat.

    A peak of ``first`` in the window is matched when ``second`` has a peak within ``tolerance`` samples.
    """
    a = first[(first >= lo) & (first < hi)]
    n_b = int(np.count_nonzero((second >= lo) & (second < hi)))
    if a.size + n_b == 0 or second.size == 0:
        return 0.0
    pos = np.clip(np.searchsorted(second, a), 1, second.size - 1) if second.size > 1 else np.zeros_like(a)
    nearest = np.minimum(np.abs(second[pos] - a), np.abs(second[np.maximum(pos - 1, 0)] - a))
    matched = int(np.count_nonzero(nearest <= tolerance))
    return matched / max(a.size + n_b - matched, 1)


def template_correlation(filtered: np.ndarray, peaks: np.ndarray, lo: int, hi: int) -> float:
    """Orphanidou et al. 2015: mean correlation of the window's beats with their average.

    Beats are ``median RR`` long, centred on the peaks in ``[lo, hi)`` whose beat lies inside the window;
    fewer than two such beats give 0.
    """
    inside = peaks[(peaks >= lo) & (peaks < hi)]
    if inside.size < 3:
        return 0.0
    half = int(np.median(np.diff(inside)) // 2)
    inside = inside[(inside - half >= lo) & (inside + half < hi)]
    if inside.size < 2 or half < 2:
        return 0.0
    beats = filtered[inside[:, None] + np.arange(-half, half)[None, :]]
    beats = beats - beats.mean(axis=1, keepdims=True)
    template = beats.mean(axis=0)
    norms = np.linalg.norm(beats, axis=1) * np.linalg.norm(template)
    corr = np.divide(beats @ template, norms, out=np.zeros(len(beats)), where=norms > 0)
    return float(corr.mean())


def lead_indices(x: np.ndarray, fs: float, bounds: Sequence[tuple[int, int]]) -> dict[str, np.ndarray]:
    """All indices of one lead for each window.

    Args:
        x: ``(T,)`` raw lead (NaN filled) at rate ``fs``.
        bounds: ``N`` windows ``[lo, hi)`` in samples of ``x``.

    Returns:
        ``{index: (N,)}`` for every name of :data:`INDICES`; NaN where a window is under
        :data:`MIN_SECONDS`, the rate under :data:`MIN_RATE` or the lead constant.

    Example:
        >>> idx = lead_indices(ecg, 500.0, [(0, 2500), (2500, 5000)])
        >>> sorted(idx), idx["ksqi"].shape
        (['bassqi', 'bsqi', 'ksqi', 'psqi', 'tsqi'], (2,))
    """
    out = {name: np.full(len(bounds), np.nan) for name in INDICES}
    if fs < MIN_RATE or x.size < MIN_SECONDS * fs or not np.ptp(x) > 0:
        return out
    filtered, first, second = detect_beats(x, fs)
    tolerance = int(round(MATCH_TOLERANCE_S * fs))
    spans = np.asarray(bounds, dtype=np.int64).reshape(-1, 2)
    sizes = spans[:, 1] - spans[:, 0]
    for size in np.unique(sizes[sizes >= MIN_SECONDS * fs]):  # windows of one length at once
        rows = np.flatnonzero(sizes == size)
        take = spans[rows, :1] + np.arange(size)[None, :]
        band = filtered[take]
        varying = np.ptp(band, axis=1) > 0
        out["ksqi"][rows[varying]] = scipy.stats.kurtosis(band[varying], axis=1, fisher=False)
        out["psqi"][rows], out["bassqi"][rows] = spectral_indices(x[take], fs)
        for n in rows:
            lo, hi = spans[n]
            out["bsqi"][n] = beat_agreement(first, second, lo, hi, tolerance)
            out["tsqi"][n] = template_correlation(filtered, first, lo, hi)
    return out


def combine(indices: Mapping[str, np.ndarray], weights: Mapping[str, float] | None = None) -> np.ndarray:
    """A lead's score in [0, 1]: weighted mean of the :data:`RULES` sub-scores (NaN index -> 0).

    Args:
        indices: ``{index: (N,)}`` as from :func:`lead_indices`.
        weights: sub-score weights (default :data:`WEIGHTS`); normalised to sum 1.
    """
    weights = dict(WEIGHTS if weights is None else weights)
    total = sum(weights.values())
    return sum(w / total * RULES[name](indices[name]) for name, w in weights.items())  # type: ignore[return-value]


def window_quality(
    raw: np.ndarray, fs: float, present: np.ndarray, bounds: Sequence[tuple[int, int]]
) -> tuple[np.ndarray, np.ndarray]:
    """Scores of every window of one record.

    Args:
        raw: ``(L, T)`` lead-selected raw signal (NaN filled) at its native rate ``fs``.
        present: ``(L,)`` bool, leads the record has (the others are zero rows and get NaN).
        bounds: ``N`` windows ``[lo, hi)`` in samples of ``raw``.

    Returns:
        ``(window (N,), leads (N, L))``: the minimum over present leads, and each lead's score
        (NaN for absent leads).

    Example:
        >>> window, leads = window_quality(raw, 360.0, np.array([True, True]), [(0, 1800)])
        >>> window.shape, leads.shape, bool(0 <= window[0] <= 1)
        ((1,), (1, 2), True)
    """
    leads = np.full((len(bounds), raw.shape[0]), np.nan)
    for row in np.flatnonzero(np.asarray(present, bool)):
        leads[:, row] = combine(lead_indices(raw[row], fs, bounds))
    if not np.asarray(present, bool).any() or not len(bounds):
        return np.zeros(len(bounds)), leads
    return np.nanmin(leads, axis=1), leads
