"""Physiological features of one ECG window with neurokit2.

``extract_features`` reduces the window to one signal (mean over the present leads, or one lead),
median-centres it, then ``nk.ecg_clean(method="neurokit")`` -> ``nk.ecg_peaks`` ->
``nk.ecg_delineate(method="dwt")`` (for ``dwt`` through :func:`.delineate.dwt_waves`: the same positions, about 4x
faster) -> per-beat measurements (:mod:`.beats`) -> aggregates and the
fixed-length vector (:mod:`.aggregate`), as PhysioCLR's ``extract_ecg_features.py`` does. It never
raises on a signal: problems give ``valid=False`` with one of ``REASONS``.

``delineation`` picks neurokit2's delineator (``DELINEATIONS``). ``"dwt"`` is PhysioCLR's and the default.
On the cleaned signal, whose 50 Hz filter is a 20-ms moving average that smooths the QRS, dwt's QRS
onset search (from the P peak to the Q peak) often stops on the P wave: against LUDB's manual delineation
(lead II, 200 records) its QRS onsets are 36 ms early (median) and its QRS durations 66 ms too long.
``"prominence"`` (Emrich et al., EUSIPCO 2024) agrees far better; ``"cwt"`` delineates fewer beats
(``benchmarks/features.py --delineation dwt,prominence,cwt``). ``method="peak"`` gives no QRS onset/offset.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from .aggregate import abnormal_shares, beat_correlations, best_match_correlation, features_to_vector, hrv_features
from .beats import FIDUCIALS, Fiducials, measure_beats, sanitize
from .delineate import dwt_waves
from .names import FEATURE_DIM

REASONS = ("nan", "too_short", "flat", "no_r_peaks", "implausible_rate", "noisy", "delineation_failed", "error")
MIN_SECONDS = 2.0  # two beats at 60 bpm; neurokit2's cleaning filters need about this much
FLAT_MV = 0.05  # peak-to-peak below this (after centring) carries no ECG
MAX_NAN_SHARE = 0.1  # up to this share of missing samples is interpolated
HR_RANGE_BPM = (20.0, 300.0)
# Best beat-to-beat correlation (median over beats) below this is noise: white noise gives < 0.1, the
# lowest 5-s window of the MIT-BIH sample (record 208, frequent PVCs) 0.69.
NOISE_CORR = 0.4
DELINEATIONS = ("dwt", "prominence", "cwt")
_NK_WAVES = {
    "p_on": "ECG_P_Onsets",
    "p_peak": "ECG_P_Peaks",
    "p_off": "ECG_P_Offsets",
    "qrs_on": "ECG_R_Onsets",
    "qrs_off": "ECG_R_Offsets",
    "t_on": "ECG_T_Onsets",
    "t_peak": "ECG_T_Peaks",
    "t_off": "ECG_T_Offsets",
}
_BEFORE_R = ("p_on", "p_peak", "p_off", "qrs_on")  # the other waves follow their beat's R-peak


@dataclass
class FeatureResult:
    """Features of one window.

    Attributes:
        vector: ``(FEATURE_DIM,)`` float32 (zeros when not valid).
        valid: whether the window was delineated.
        reason: empty when valid, else one of ``REASONS``.
        r_peaks: ``(K,)`` int64 R-peak samples of the input (kept when found, even if not valid).
        beats: per-beat values of all K beats (``BEAT_FEATURES`` -> ``(K,)``), empty when not valid.
        fiducials: the wave positions found (``FIDUCIALS`` -> ``(K,)`` float, NaN = missing).
        detail: message of the failure (exception text or warning), for logs.
    """

    vector: np.ndarray
    valid: bool
    reason: str
    r_peaks: np.ndarray
    beats: dict[str, np.ndarray] = field(default_factory=dict)
    fiducials: dict[str, np.ndarray] = field(default_factory=dict)
    detail: str = ""


class _Invalid(Exception):
    def __init__(self, reason: str, detail: str = "", r_peaks: np.ndarray | None = None) -> None:
        super().__init__(reason)
        self.reason, self.detail = reason, detail
        self.r_peaks = np.zeros(0, np.int64) if r_peaks is None else r_peaks


def select_signal(
    signal: np.ndarray, lead: str | int = "mean", lead_names: Sequence[str] | None = None
) -> tuple[np.ndarray, int]:
    """One ``(T,)`` signal from ``(C, T)`` or ``(T,)``.

    ``lead="mean"`` averages the leads that are not all zero (zero-filled missing leads would shrink the
    amplitudes); an int picks that row, a name its row in ``lead_names``.

    Returns:
        ``(signal (T,) float64, number of leads used)``.
    """
    x = np.asarray(signal, dtype=np.float64)
    if x.ndim == 1:
        return x, 1
    if x.ndim != 2:
        raise ValueError(f"signal must be (C, T) or (T,), got {x.shape}")
    if lead == "mean":
        present = ~np.all(np.nan_to_num(x, nan=0.0) == 0.0, axis=1)
        if not present.any():
            return x[0], 0
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns average to NaN
            return np.nanmean(x[present], axis=0), int(present.sum())
    index = resolve_lead(lead, lead_names, x.shape[0])
    return x[index], 1


def resolve_lead(lead: str | int, lead_names: Sequence[str] | None, n_leads: int) -> int:
    """Row index of ``lead`` (an index, a digit string or a name in ``lead_names``)."""
    if isinstance(lead, (int, np.integer)) or str(lead).lstrip("-").isdigit():
        index = int(lead)
    elif lead_names is not None and str(lead).lower() in [n.lower() for n in lead_names]:
        index = [n.lower() for n in lead_names].index(str(lead).lower())
    else:
        raise ValueError(f"lead {lead!r} is neither 'mean', an index nor one of {list(lead_names or [])}")
    if not -n_leads <= index < n_leads:
        raise ValueError(f"lead index {index} out of range for {n_leads} leads")
    return index


def _checked(x: np.ndarray, fs: float) -> np.ndarray:
    """Interpolate a few NaNs and median-centre; raise ``_Invalid`` for nan / too_short / flat."""
    bad = ~np.isfinite(x)
    if bad.mean() > MAX_NAN_SHARE if x.size else True:
        raise _Invalid("nan" if x.size else "too_short", f"{int(bad.sum())}/{x.size} samples are not finite")
    if bad.any():
        t = np.arange(x.size)
        x = x.copy()
        x[bad] = np.interp(t[bad], t[~bad], x[~bad])
    if x.size < MIN_SECONDS * fs:
        raise _Invalid("too_short", f"{x.size / fs:.2f} s < {MIN_SECONDS} s")
    x = x - np.median(x)
    if np.ptp(x) < FLAT_MV:
        raise _Invalid("flat", f"peak-to-peak {np.ptp(x):.4f} mV")
    return x


def _r_peaks(x: np.ndarray, fs: float) -> tuple[np.ndarray, np.ndarray]:
    """Cleaned signal and R-peaks; ``_Invalid`` when fewer than 2 peaks or an implausible rate."""
    import neurokit2 as nk

    try:
        clean = np.asarray(nk.ecg_clean(x, sampling_rate=fs, method="neurokit"), dtype=np.float64)
        _, info = nk.ecg_peaks(clean, sampling_rate=fs)
        r = np.unique(np.asarray(info["ECG_R_Peaks"], dtype=np.int64))
    except Exception as exc:  # noqa: BLE001 - any neurokit2 failure is a property of the signal
        raise _Invalid("no_r_peaks", f"{type(exc).__name__}: {exc}") from exc
    r = r[(r >= 0) & (r < x.size)]
    if r.size < 2:
        raise _Invalid("no_r_peaks", f"{r.size} R-peak(s)", r)
    hr = 60.0 * fs / np.median(np.diff(r))
    if not HR_RANGE_BPM[0] <= hr <= HR_RANGE_BPM[1]:
        raise _Invalid("implausible_rate", f"median heart rate {hr:.0f} bpm", r)
    return clean, r


def per_beat(values: Sequence[float], r: np.ndarray, before_r: bool) -> np.ndarray:
    """``(K,)`` positions of one wave, one per beat, from neurokit2's list for that wave.

    A list of one entry per R-peak (``dwt``, ``prominence``) is kept as it is. Otherwise (``cwt`` gives its
    P and T waves per RR interval; ``ecg_delineate`` drops positions <= 0) each position is given to its
    beat: the next R-peak for a wave before R (``before_r``), else the previous one; of two for one beat
    the one nearer R is kept.
    """
    v = np.asarray(values, dtype=np.float64).reshape(-1)
    if v.shape == r.shape:
        return v
    out = np.full(r.shape, np.nan)
    v = np.sort(v[np.isfinite(v)])
    beat = np.searchsorted(r, v, side="right") - (0 if before_r else 1)
    for k, pos in zip(beat, v) if before_r else zip(beat[::-1], v[::-1]):
        if 0 <= k < len(r):
            out[k] = pos  # positions come farthest from R first: the last write is the nearest
    return out


def _delineate(clean: np.ndarray, r: np.ndarray, fs: float, method: str) -> Fiducials:
    """Delineation of every beat; ``_Invalid("delineation_failed")`` when no QRS is delineated."""
    import neurokit2 as nk

    try:
        if method == "dwt":  # the same positions as nk.ecg_delineate, without its per-beat pandas work
            waves = dwt_waves(clean, r, fs)
        else:
            _, waves = nk.ecg_delineate(clean, r, sampling_rate=fs, method=method)
    except Exception as exc:  # noqa: BLE001
        raise _Invalid("delineation_failed", f"{type(exc).__name__}: {exc}", r) from exc
    fid = Fiducials(r=r)
    for name, key in _NK_WAVES.items():
        fid.waves[name] = per_beat(waves.get(key, []), r, name in _BEFORE_R)
    fid = sanitize(fid)
    if not np.isfinite(fid.get("qrs_on")).any() or not np.isfinite(fid.get("qrs_off")).any():
        raise _Invalid("delineation_failed", "no QRS onset/offset delineated", r)
    return fid


def _compute(
    signal: np.ndarray, fs: float, lead: str | int, lead_names: Sequence[str] | None, delineation: str
) -> FeatureResult:
    x, n_leads = select_signal(signal, lead, lead_names)
    x = _checked(x, fs)
    with warnings.catch_warnings():
        # neurokit2/numpy warn on short or odd beats (empty slices, few peaks); the checks below decide.
        warnings.simplefilter("ignore")
        clean, r = _r_peaks(x, fs)
        match = best_match_correlation(x, fs, r)
        if match < NOISE_CORR:
            raise _Invalid("noisy", f"best beat correlation {match:.2f} < {NOISE_CORR}", r)
        fid = _delineate(clean, r, fs, delineation)
        # Amplitudes, slopes and ST on the input (already band-passed by the preprocessing) against the
        # local PR baseline: ecg_clean's 0.5 Hz high-pass shifts the TP and ST segments by up to 0.2 mV.
        beats = measure_beats(x, fs, fid)
        complete = np.isfinite(np.stack([fid.get(n) for n in FIDUCIALS])).all(axis=0)
        scalars = {
            **hrv_features(r, fs),
            **abnormal_shares(beats),
            **beat_correlations(clean, fs, r),
            "delineated_share": float(complete.mean()),
            "beat_match_corr": match if np.isfinite(match) else 0.0,
            "n_leads": float(n_leads),
        }
        vector = features_to_vector(beats, scalars)
    return FeatureResult(vector, True, "", r, beats, dict(fid.waves))


def extract_features(
    signal: np.ndarray,
    sample_rate: float,
    lead: str | int = "mean",
    lead_names: Sequence[str] | None = None,
    delineation: str = "dwt",
) -> FeatureResult:
    """Physiological features of one ECG window; never raises on a signal.

    Args:
        signal: ``(C, T)`` or ``(T,)`` in mV (not z-scored: amplitudes are reported in mV).
        sample_rate: Hz.
        lead: ``"mean"`` (mean of the present leads, PhysioCLR's default), a row index, or a lead
            name found in ``lead_names``.
        lead_names: names of the ``C`` rows (for ``lead`` given by name).
        delineation: ``nk.ecg_delineate`` method, one of ``DELINEATIONS``: ``"dwt"`` (PhysioCLR's) or
            ``"prominence"`` (closer to manual delineation; needs a neurokit2 that has it, e.g. 0.2.12).

    Returns:
        ``FeatureResult``; ``vector`` has ``FEATURE_DIM`` entries in the order of ``FEATURE_NAMES``.

    Raises:
        ValueError: only for a bad ``lead`` or ``delineation`` argument or a signal of more than 2 dimensions.

    Example:
        >>> import neurokit2 as nk
        >>> res = extract_features(nk.ecg_simulate(duration=10, sampling_rate=500, random_state=0), 500)
        >>> res.valid, res.vector.shape
        (True, (184,))
    """
    if delineation not in DELINEATIONS:
        raise ValueError(f"delineation {delineation!r} is not one of {DELINEATIONS}")
    x = np.asarray(signal)
    if x.ndim == 2 and lead != "mean":
        resolve_lead(lead, lead_names, x.shape[0])
    elif x.ndim not in (1, 2):
        raise ValueError(f"signal must be (C, T) or (T,), got {x.shape}")
    try:
        return _compute(x, float(sample_rate), lead, lead_names, delineation)
    except _Invalid as bad:
        return _invalid(bad.reason, bad.detail, bad.r_peaks)
    except Exception as exc:  # noqa: BLE001 - "never crashes on a real record"
        return _invalid("error", f"{type(exc).__name__}: {exc}")


def _invalid(reason: str, detail: str, r_peaks: np.ndarray | None = None) -> FeatureResult:
    peaks = np.zeros(0, np.int64) if r_peaks is None else np.asarray(r_peaks, dtype=np.int64)
    return FeatureResult(np.zeros(FEATURE_DIM, np.float32), False, reason, peaks, detail=detail)
