"""neurokit2's DWT delineation (``nk.ecg_delineate(method="dwt")``) without its per-beat pandas work.

In ``ecg_delineate(method="dwt")`` most of the time (about 40 of 55 ms for a 5-s window at 500 Hz) goes to
finding each beat's Q peak: ``ecg_segment`` builds one pandas DataFrame per beat (``epochs_create``) and
``signal_findpeaks`` computes peak bases with pandas searches that the Q peak never uses, and then to
``signal_formatpeaks``, a DataFrame of the waves that the features do not use either. :func:`dwt_waves`
computes the same Q peaks from the same beat segments with numpy (the same ``scipy.signal.find_peaks`` and
``peak_prominences`` calls on the same values), skips the S peaks and the DataFrame, and calls neurokit2's own
DWT steps for everything else (resampling to 2 kHz, the multiscale transform, P/T peaks, onsets and offsets),
so the positions are those of ``ecg_delineate`` exactly, whatever neurokit2 version is installed
(tests/features/test_delineate.py compares them on real LUDB and MIT-BIH windows).

With a neurokit2 other than ``TESTED_NEUROKIT2`` (the versions whose code this reproduces), or without those
private steps, :func:`dwt_waves` runs ``nk.ecg_delineate`` itself.
"""

from __future__ import annotations

import functools
import importlib
import warnings
from typing import Any

import numpy as np
import scipy.signal

WAVES = (
    "ECG_P_Peaks",
    "ECG_P_Onsets",
    "ECG_P_Offsets",
    "ECG_Q_Peaks",
    "ECG_R_Onsets",
    "ECG_R_Offsets",
    "ECG_T_Peaks",
    "ECG_T_Onsets",
    "ECG_T_Offsets",
)
RATIO_PRE = 0.35  # ecg_segment's share of the beat window before the R-peak
MIN_SECONDS = 4  # ecg_segment refuses shorter signals, so ecg_delineate(method="dwt") fails on them
ANALYSIS_RATE = 2000  # _dwt_ecg_delineator's analysis_sampling_rate
DWT_SCALES = 9  # rows of its multiscale transform
# Versions whose ecg_segment / Q-peak / T-P-peak code q_peaks and tp_peaks reproduce (tests/features/test_delineate.py
# compares them with ecg_delineate); any other version runs nk.ecg_delineate itself.
TESTED_NEUROKIT2 = ("0.2.12", "0.3.0")


@functools.lru_cache(maxsize=1)
def _nk_steps() -> Any:
    """neurokit2's private DWT steps, or ``None`` for a neurokit2 not in ``TESTED_NEUROKIT2`` or without them."""
    try:  # the module, not the function that neurokit2.ecg exports under the same name
        import neurokit2

        module = importlib.import_module("neurokit2.ecg.ecg_delineate")
        from neurokit2.signal import signal_rate, signal_resample
    except ImportError:  # pragma: no cover - neurokit2 is a dependency
        return None
    names = (
        "_dwt_compute_multiscales",
        "_dwt_delineate_tp_peaks",
        "_dwt_delineate_qrs_bounds",
        "_dwt_delineate_tp_onsets_offsets",
        "_dwt_resample_points",
        "_dwt_adjust_parameters",
    )
    if neurokit2.__version__ not in TESTED_NEUROKIT2 or not all(hasattr(module, n) for n in names):
        return None
    steps = {n: getattr(module, n) for n in names}
    if hasattr(module, "_dwt_normalize_window"):  # neurokit2 >= 0.3: scale-free T/P candidate scores
        steps["_dwt_normalize_window"] = module._dwt_normalize_window
    steps.update(signal_rate=signal_rate, signal_resample=signal_resample)
    return steps


def q_peaks(ecg: np.ndarray, rpeaks: np.ndarray, fs: float, signal_rate: Any) -> list[Any]:
    """Q peak of every beat as ``_dwt_ecg_delineator`` finds it (``ecg_segment`` + ``_ecg_delineator_peak_Q``).

    Each beat is the segment of ``ecg_segment``: from ``0.35 w`` before to ``0.65 w`` after its R-peak, ``w`` the
    mean RR (s) of the interpolated rate, NaN outside the signal, with a time axis ``linspace`` over those bounds.
    The Q peak is the last local maximum of ``-ecg`` up to time 0 whose prominence is at least 5 % of the range
    of that part, as ``signal_findpeaks`` (``scipy.signal.find_peaks`` + ``peak_prominences``) keeps it.

    Args:
        ecg: ``(T,)`` cleaned signal.
        rpeaks: ``(K,)`` int R-peaks.
        fs: sampling rate (Hz).
        signal_rate: ``nk.signal_rate``.

    Returns:
        ``K`` entries: the Q peak sample (``np.int64``) or ``np.nan``, as neurokit2 lists them.

    Raises:
        ValueError: where ``ecg_segment`` raises (signal shorter than 4 s, empty beat segment).
    """
    if len(ecg) < fs * MIN_SECONDS:
        raise ValueError("The data length is too small to be segmented.")
    heart_rate = np.mean(signal_rate(rpeaks, sampling_rate=fs, desired_length=len(ecg)))
    window = 60 / heart_rate
    start, end = -(RATIO_PRE * window), (1 - RATIO_PRE) * window
    buffer = int((end - start) * fs)  # epochs_create's padding: one beat window
    padded = np.concatenate([np.full(buffer, np.nan), np.asarray(ecg, dtype=np.float64), np.full(buffer, np.nan)])
    out: list[Any] = []
    for rpeak in rpeaks:
        onset = rpeak + buffer
        segment = padded[int(onset + start * fs) : int(onset + end * fs)]
        times = np.linspace(start, end, num=len(segment), endpoint=True)
        r = int(np.searchsorted(times, 0.0, side="right"))  # first time > 0: ``R`` in neurokit2
        if r >= len(times):
            raise ValueError("zero-size array to reduction operation minimum which has no identity")
        left = segment[:r]  # heartbeat.loc[:0]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN part: no minimum height, as pandas
            height_min = 0.05 * (np.nanmax(left) - np.nanmin(left)) if np.isfinite(left).any() else np.nan
        flipped = -1 * left
        peaks, _ = scipy.signal.find_peaks(flipped)
        heights = scipy.signal.peak_prominences(flipped, peaks)[0]
        peaks = peaks[~(heights < height_min)]
        out.append(np.nan if len(peaks) == 0 else rpeak - (r - peaks[-1]))
    return out


def dwt_waves(ecg: np.ndarray, rpeaks: np.ndarray, fs: float) -> dict[str, list[Any]]:
    """The waves of ``nk.ecg_delineate(ecg, rpeaks, fs, method="dwt")[1]`` that the features use (``WAVES``).

    Args:
        ecg: ``(T,)`` cleaned signal (``nk.ecg_clean``).
        rpeaks: ``(K,)`` int64 R-peaks, K >= 1.
        fs: sampling rate (Hz).

    Returns:
        wave name -> list of sample positions (float or int; ``np.nan`` where not found), with neurokit2's
        post-processing: a last position past the signal becomes NaN and positions <= 0 are dropped.

    Raises:
        Whatever ``ecg_delineate`` raises on the same input (e.g. ``ValueError`` below 4 s).
    """
    steps = _nk_steps()
    ecg = np.asarray(ecg)
    if steps is None:  # pragma: no cover - neurokit2 without the private steps
        import neurokit2 as nk

        waves = nk.ecg_delineate(ecg, rpeaks, sampling_rate=fs, method="dwt")[1]
        return {name: list(waves[name]) for name in WAVES}
    qpeaks = q_peaks(ecg, rpeaks, fs, steps["signal_rate"])
    resample = steps["_dwt_resample_points"]
    signal = steps["signal_resample"](ecg, sampling_rate=fs, desired_sampling_rate=ANALYSIS_RATE)
    r2k = resample(rpeaks, fs, ANALYSIS_RATE)
    dwtmatr = steps["_dwt_compute_multiscales"](signal, _scales(steps, r2k))
    q2k = resample(qpeaks, fs, ANALYSIS_RATE)
    tpeaks, ppeaks = tp_peaks(signal, r2k, dwtmatr, steps)
    qrs_on, qrs_off = steps["_dwt_delineate_qrs_bounds"](r2k, dwtmatr, ppeaks, tpeaks, q2k, sampling_rate=ANALYSIS_RATE)
    onsets_offsets = steps["_dwt_delineate_tp_onsets_offsets"]
    p_on, p_off = onsets_offsets(ppeaks, r2k, dwtmatr, sampling_rate=ANALYSIS_RATE)
    t_on, t_off = onsets_offsets(
        tpeaks, r2k, dwtmatr, sampling_rate=ANALYSIS_RATE, onset_weight=0.6, duration_onset=0.6
    )
    at_2k = {
        "ECG_P_Peaks": ppeaks,
        "ECG_P_Onsets": p_on,
        "ECG_P_Offsets": p_off,
        "ECG_R_Onsets": qrs_on,
        "ECG_R_Offsets": qrs_off,
        "ECG_T_Peaks": tpeaks,
        "ECG_T_Onsets": t_on,
        "ECG_T_Offsets": t_off,
    }
    waves = {name: resample(values, ANALYSIS_RATE, desired_sampling_rate=fs) for name, values in at_2k.items()}
    waves["ECG_Q_Peaks"] = qpeaks
    return {name: _sanitized(waves[name], len(ecg)) for name in WAVES}


def tp_peaks(ecg: np.ndarray, rpeaks: list[Any], dwtmatr: np.ndarray, steps: dict[str, Any]) -> tuple[list, list]:
    """neurokit2's ``_dwt_delineate_tp_peaks`` with its defaults, the same arithmetic, one change: the threshold
    ``0.025 * max(dwt_local)``, which it recomputes with Python's ``max`` over the array for every candidate, is
    computed once per beat with ``ndarray.max`` (the same value for finite values; Python's ``max`` where NaN).
    neurokit2 0.3 scores the candidates on the window's amplitude normalised by ``_dwt_normalize_window``, 0.2.12
    on the raw amplitude: the one present is used.

    Args:
        ecg: ``(T2,)`` signal at ``ANALYSIS_RATE``.
        rpeaks: R-peaks at that rate (ints, or NaN).
        dwtmatr: rows of ``_dwt_compute_multiscales``.
        steps: :func:`_nk_steps`.

    Returns:
        ``(T peaks, P peaks)``: one entry per R-peak (sample at ``ANALYSIS_RATE``, or NaN).
    """
    sampling_rate, qrs_width, amplitude_weight = ANALYSIS_RATE, 0.13, 0.3
    adjust, normalize = steps["_dwt_adjust_parameters"], steps.get("_dwt_normalize_window")
    srch_bndry = int(0.5 * qrs_width * sampling_rate)
    degree_add = adjust(rpeaks, sampling_rate, target="degree")
    p2r_duration = adjust(rpeaks, sampling_rate, duration=0.2, target="duration")
    rt_duration = adjust(rpeaks, sampling_rate, duration=0.25, target="duration")

    def best(start: int, end: int, row: int, epsilon: float, score: Any) -> Any:
        dwt_local = dwtmatr[row, start:end]
        if len(dwt_local) == 0:
            return np.nan
        height = epsilon * np.sqrt(np.mean(np.square(dwt_local)))
        ecg_local = ecg[start:end] if normalize is None else normalize(ecg[start:end], amplitude_weight)
        peaks, __ = scipy.signal.find_peaks(np.abs(dwt_local), height=height)
        top = dwt_local.max()
        if np.isnan(top):  # Python's max skips NaN depending on position: keep it
            top = max(dwt_local)
        peaks = list(peaks[np.abs(dwt_local[peaks]) > 0.025 * top])
        if dwt_local[0] > 0:
            peaks = [0] + peaks
        candidates, scores = [], []
        for idx_peak, idx_peak_nxt in zip(peaks[:-1], peaks[1:]):
            if dwt_local[idx_peak] > 0 and dwt_local[idx_peak_nxt] < 0:
                segment = dwt_local[idx_peak : idx_peak_nxt + 1]
                idx_zero = np.nonzero(np.abs(np.diff(np.sign(segment))) > 0)[0][0] + idx_peak  # signal_zerocrossings
                candidates.append(idx_zero)
                scores.append(score(ecg_local[idx_zero], idx_zero))
        if not candidates:
            return np.nan
        return candidates[np.argmax(scores)] + start

    def t_score(amplitude: float, idx_zero: int) -> float:
        return amplitude - (float(idx_zero) / sampling_rate - (rt_duration - 0.5 * qrs_width))

    def p_score(amplitude: float, idx_zero: int) -> float:
        return amplitude - abs(float(idx_zero) / sampling_rate - p2r_duration)

    tpeaks = [
        np.nan
        if np.isnan(r)
        else best(r + srch_bndry, r + 2 * int(rt_duration * sampling_rate), 3 + degree_add, 0.25, t_score)
        for r in rpeaks
    ]
    ppeaks = [
        np.nan
        if np.isnan(r)
        else best(r - 2 * int(p2r_duration * sampling_rate), r - srch_bndry, 2 + degree_add, 0.02, p_score)
        for r in rpeaks
    ]
    return tpeaks, ppeaks


def _scales(steps: dict[str, Any], r2k: list[Any]) -> int:
    """Rows of the multiscale transform to compute: 9 in neurokit2, of which it reads only ``2 + d`` and ``3 + d``
    (``d``: its HR-adjusted degree, 2 at 75 bpm). Row ``k`` depends on rows ``< k`` alone, so computing rows
    ``0 .. 3 + d`` gives the same rows it reads, and skips the costliest (the filters double in length per row).
    Where neurokit2 would index outside its 9 rows (or from the end) all 9 are computed, so it fails alike."""
    degree = steps["_dwt_adjust_parameters"](r2k, ANALYSIS_RATE, target="degree")
    return 4 + degree if 0 <= 2 + degree and 3 + degree < DWT_SCALES else DWT_SCALES


def _sanitized(values: list[Any], length: int) -> list[Any]:
    """``ecg_delineate``'s last steps: a last position past the signal -> NaN; positions <= 0 dropped."""
    values = list(values)
    if values[-1] >= length:
        values[-1] = np.nan
    return [x for x in values if x > 0 or np.isnan(x)]
