"""Hybrid feature channels: 11 signals of the ECG's own length computed from lead II.

The SMILES 2025 study (tenebrissilvam/smiles_ssl_biosignals, ``ECG_features_extracting_fin_v3.py``) feeds
ECG-JEPA 8 leads plus 11 feature "channels" (c = 19) and reported PTB-XL 5-class AUROC 0.784 against
0.679 without them. ``HYBRID_CHANNELS`` here, in this order, each ``(T,)`` at the signal's rate:

* ``hyb_rpeak``: 1 at the R-peaks, 0 elsewhere.
* step functions over the beats (beat k's value from its R-peak up to the next one; before the first
  R-peak the first beat's value; NaN where unknown): ``hyb_hr`` instantaneous heart rate 60 / RR
  (bpm; RR from the previous R-peak, the first beat uses the next interval, :func:`.beats.beat_rr_ms`);
  ``hyb_hr_roll`` 60 / mean RR, ``hyb_sdnn`` SD of RR (ms, ``ddof=1`` as neurokit2's ``hrv_time``),
  ``hyb_rmssd`` root mean square of successive RR differences (ms), all three over the RR intervals
  ending within ``rolling_seconds / 2`` of the beat; ``hyb_st`` ST level at J + 60 ms and ``hyb_qrs_amp``
  R amplitude, both in mV against the PR baseline (:func:`.beats.measure_beats`: ``st_j60_mv``, ``r_amp_mv``).
* ``hyb_swt_d1`` .. ``hyb_swt_d4``: stationary (undecimated) wavelet transform details of levels 1-4
  with ``db4`` (PyWavelets ``pywt.swt``), the signal mirrored at both ends, each level shifted back by
  its filter delay so that a QRS lines up with its coefficients. At 250 Hz the bands are about
  62-125, 31-62, 16-31 and 8-16 Hz.

R-peaks and waves come from :func:`.extract.extract_features` (``nk.ecg_clean`` -> ``nk.ecg_peaks`` ->
``nk.ecg_delineate``), the same code as the PhysioCLR feature vector. Where the window is rejected there
(noise, failed delineation) the R-peaks are kept and the wave-based channels are NaN.

Differences from the study's code, on purpose: everything is computed at the signal's own rate (the
study called its extractor with ``fs=500`` on 250 Hz signals, so its 600 ms refractory distance was
1.2 s, its heart rates twice the true ones and its ST window twice as late); HR, rolling HR, SDNN, RMSSD and
QRS amplitude vary per beat instead of being one constant per recording; the ST channel is a per-beat
step instead of the raw segment 80-200 ms after R; the four wavelet channels are the four details (with
2500 samples ``pywt.swt`` allows level 2 only, so the study's channels were the level-1 approximation,
details 2 and 1, and zeros); every channel is z-scored with statistics of the training
split (:class:`HybridStats`), where the study used a different scaler per channel (standard, robust,
min-max, log).

Example:
    >>> import neurokit2 as nk
    >>> channels = hybrid_channels(nk.ecg_simulate(duration=10, sampling_rate=250, random_state=0), 250)
    >>> channels.shape
    (11, 2500)
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import cache

import numpy as np

from .beats import beat_rr_ms
from .extract import extract_features, resolve_lead

STEP_CHANNELS: tuple[str, ...] = ("hyb_hr", "hyb_hr_roll", "hyb_st", "hyb_qrs_amp", "hyb_sdnn", "hyb_rmssd")
SWT_CHANNELS: tuple[str, ...] = ("hyb_swt_d1", "hyb_swt_d2", "hyb_swt_d3", "hyb_swt_d4")
HYBRID_CHANNELS: tuple[str, ...] = (
    "hyb_rpeak",
    "hyb_hr",
    "hyb_hr_roll",
    "hyb_st",
    "hyb_qrs_amp",
    "hyb_sdnn",
    "hyb_rmssd",
    *SWT_CHANNELS,
)
N_HYBRID = len(HYBRID_CHANNELS)
HYBRID_LEAD = "II"
MIN_STD = 1e-8  # a constant channel is centred, not scaled


@dataclass(frozen=True)
class HybridOptions:
    """Options of the hybrid channels.

    Attributes:
        rolling_seconds: width of the centred window of RR intervals behind ``hyb_hr_roll``, ``hyb_sdnn``
            and ``hyb_rmssd`` (the study's rolling heart rate used 10 s); ``inf``: the whole signal.
        delineation: ``nk.ecg_delineate`` method (``extract.DELINEATIONS``).
        wavelet: PyWavelets name of the SWT wavelet.
    """

    rolling_seconds: float = 10.0
    delineation: str = "dwt"
    wavelet: str = "db4"


@dataclass
class BeatTrack:
    """The beats of one signal and the value of every step channel per beat.

    Attributes:
        r_peaks: ``(K,)`` int64 R-peak samples.
        values: ``STEP_CHANNELS`` name -> ``(K,)`` float64 (NaN where unknown).
        reason: ``extract_features``' failure reason (empty when the waves were measured).
    """

    r_peaks: np.ndarray
    values: dict[str, np.ndarray] = field(default_factory=dict)
    reason: str = ""


def rolling_rr(r_peaks: np.ndarray, fs: float, seconds: float) -> dict[str, np.ndarray]:
    """Rolling heart rate, SDNN and RMSSD per beat over the RR intervals ending within ``seconds / 2``.

    Args:
        r_peaks: ``(K,)`` sorted R-peak samples.
        fs: sampling rate in Hz.
        seconds: window width (``inf``: every interval of the signal).

    Returns:
        ``{"hyb_hr_roll": bpm, "hyb_sdnn": ms, "hyb_rmssd": ms}``, each ``(K,)``; NaN where the window
        holds fewer intervals than the statistic needs (1 for the rate, 2 for SDNN and RMSSD).
    """
    r = np.asarray(r_peaks, dtype=np.float64)
    out = {name: np.full(len(r), np.nan) for name in ("hyb_hr_roll", "hyb_sdnn", "hyb_rmssd")}
    if len(r) < 2:
        return out
    rr = np.diff(r) * 1000.0 / fs  # interval j ends at r[j + 1]
    half = seconds * fs / 2.0
    for k, centre in enumerate(r):
        inside = rr[np.abs(r[1:] - centre) <= half]
        if inside.size >= 1:
            out["hyb_hr_roll"][k] = 60000.0 / inside.mean()
        if inside.size >= 2:
            out["hyb_sdnn"][k] = inside.std(ddof=1)
            out["hyb_rmssd"][k] = np.sqrt(np.mean(np.diff(inside) ** 2))
    return out


def beat_track(x: np.ndarray, fs: float, options: HybridOptions | None = None) -> BeatTrack:
    """R-peaks and per-beat values of one ``(T,)`` signal (lead II in mV, not z-scored)."""
    options = options or HybridOptions()
    res = extract_features(np.asarray(x, dtype=np.float64), fs, delineation=options.delineation)
    r = np.asarray(res.r_peaks, dtype=np.int64)
    nan = np.full(len(r), np.nan)
    with np.errstate(divide="ignore", invalid="ignore"):
        hr = 60000.0 / beat_rr_ms(r, fs)
    values = {
        "hyb_hr": hr,
        **rolling_rr(r, fs, options.rolling_seconds),
        "hyb_st": np.asarray(res.beats.get("st_j60_mv", nan), dtype=np.float64),
        "hyb_qrs_amp": np.asarray(res.beats.get("r_amp_mv", nan), dtype=np.float64),
    }
    return BeatTrack(r, {name: values[name] for name in STEP_CHANNELS}, res.reason)


def step_channel(r_peaks: np.ndarray, values: np.ndarray, length: int) -> np.ndarray:
    """``(length,)`` zero-order hold of per-beat ``values`` (``(K,)``) from each R-peak to the next.

    Samples before the first R-peak take the first beat's value; all NaN when there is no beat.

    Example:
        >>> step_channel(np.array([2, 5]), np.array([1.0, 2.0]), 7).tolist()
        [1.0, 1.0, 1.0, 1.0, 1.0, 2.0, 2.0]
    """
    r = np.asarray(r_peaks, dtype=np.int64)
    if r.size == 0:
        return np.full(length, np.nan)
    beat = np.clip(np.searchsorted(r, np.arange(length), side="right") - 1, 0, None)
    return np.asarray(values, dtype=np.float64)[beat]


@cache
def _swt_delay(wavelet: str, level: int) -> int:
    """Samples by which ``pywt.swt``'s level-``level`` detail lags behind the signal (energy centre of
    its impulse response)."""
    import pywt

    n = 2 ** (level + 6)
    impulse = np.zeros(n)
    impulse[n // 2] = 1.0
    detail = pywt.swt(impulse, wavelet, level=level, trim_approx=True)[1]  # [cA_level, cD_level, ...]
    energy = detail**2
    return int(round(n // 2 - float((np.arange(n) * energy).sum() / energy.sum())))


def swt_details(x: np.ndarray, wavelet: str = "db4", levels: int = 4) -> np.ndarray:
    """``(levels, T)`` stationary wavelet details of ``x`` (``(T,)``), finest level first, time-aligned.

    The signal is mirrored by the filters' reach at both ends and up to a multiple of ``2 ** levels``
    (``pywt.swt`` needs one), so no length is refused and the circular wrap stays outside ``[0, T)``.
    """
    import pywt

    x = np.asarray(x, dtype=np.float64)
    step = 2**levels
    margin = (pywt.Wavelet(wavelet).dec_len - 1) * (step - 1) + max(
        _swt_delay(wavelet, j) for j in range(1, levels + 1)
    )
    total = x.size + 2 * margin
    padded = np.pad(x, (margin, margin + (-total) % step), mode="symmetric")
    coeffs = pywt.swt(padded, wavelet, level=levels, trim_approx=True)  # [cA_n, cD_n, ..., cD_1]
    out = np.empty((levels, x.size))
    for j in range(1, levels + 1):
        start = margin - _swt_delay(wavelet, j)
        out[j - 1] = coeffs[-j][start : start + x.size]
    return out


def render(x: np.ndarray, track: BeatTrack, options: HybridOptions | None = None) -> np.ndarray:
    """``(N_HYBRID, T)`` float64 channels of ``x`` (``(T,)``) from its beats (NaN where unknown)."""
    options = options or HybridOptions()
    length = len(x)
    out = np.zeros((N_HYBRID, length))
    r = track.r_peaks[(track.r_peaks >= 0) & (track.r_peaks < length)]
    out[0, r] = 1.0
    for i, name in enumerate(STEP_CHANNELS, start=1):
        out[i] = step_channel(track.r_peaks, track.values[name], length)
    out[1 + len(STEP_CHANNELS) :] = swt_details(x, options.wavelet, len(SWT_CHANNELS))
    return out


def hybrid_channels(x: np.ndarray, fs: float, options: HybridOptions | None = None) -> np.ndarray:
    """The 11 hybrid channels of one lead-II signal.

    Args:
        x: ``(T,)`` lead II in mV, not z-scored, at ``fs``.
        fs: sampling rate in Hz (the channels are computed at this rate, whatever it is).

    Returns:
        ``(N_HYBRID, T)`` float64 in the order of ``HYBRID_CHANNELS``, NaN where a value is unknown
        (:meth:`HybridStats.apply` maps NaN to the training mean).
    """
    return render(x, beat_track(x, fs, options), options)


def lead_ii(signal: np.ndarray, lead_names: Sequence[str]) -> np.ndarray:
    """``(T,)`` row of lead II of a ``(C, T)`` signal whose rows are ``lead_names``."""
    return np.asarray(signal)[resolve_lead(HYBRID_LEAD, lead_names, len(lead_names))]


@dataclass
class ChannelMoments:
    """Running count, mean and sum of squared deviations per channel (Chan et al.'s merge), NaN ignored.

    Attributes:
        count, mean, m2: ``(C,)`` float64.
    """

    count: np.ndarray = field(default_factory=lambda: np.zeros(N_HYBRID))
    mean: np.ndarray = field(default_factory=lambda: np.zeros(N_HYBRID))
    m2: np.ndarray = field(default_factory=lambda: np.zeros(N_HYBRID))

    def add(self, channels: np.ndarray) -> None:
        """Add one ``(C, T)`` window (or ``(N, C, T)`` windows)."""
        x = np.asarray(channels, dtype=np.float64)
        x = np.moveaxis(x.reshape(-1, *x.shape[-2:]), 1, 0).reshape(x.shape[-2], -1)  # (C, N * T)
        ok = np.isfinite(x)
        n = ok.sum(axis=1).astype(np.float64)
        total = np.where(ok, x, 0.0).sum(axis=1)
        mean = np.divide(total, n, out=np.zeros_like(total), where=n > 0)
        m2 = np.where(ok, (x - mean[:, None]) ** 2, 0.0).sum(axis=1)
        self.merge(ChannelMoments(n, mean, m2))

    def merge(self, other: ChannelMoments) -> None:
        """Combine with the moments of other windows."""
        n = self.count + other.count
        delta = other.mean - self.mean
        safe = np.where(n > 0, n, 1.0)
        self.mean = self.mean + delta * other.count / safe
        self.m2 = self.m2 + other.m2 + delta**2 * self.count * other.count / safe
        self.count = n


@dataclass
class HybridStats:
    """Per-channel z-score ``(x - mean) / std`` fitted on the training split.

    Attributes:
        mean, std: ``(C,)`` (std is 1 for a constant or empty channel).
        count: ``(C,)`` finite samples the statistics were fitted on.
        names: the ``C`` channel names.
    """

    mean: np.ndarray
    std: np.ndarray
    count: np.ndarray
    names: tuple[str, ...] = HYBRID_CHANNELS

    @classmethod
    def from_moments(cls, moments: ChannelMoments, names: Sequence[str] = HYBRID_CHANNELS) -> HybridStats:
        """Population mean and standard deviation of the accumulated samples."""
        var = np.divide(moments.m2, moments.count, out=np.zeros_like(moments.m2), where=moments.count > 0)
        std = np.sqrt(var)
        return cls(moments.mean.copy(), np.where(std > MIN_STD, std, 1.0), moments.count.copy(), tuple(names))

    @classmethod
    def fit(cls, windows: Iterable[np.ndarray]) -> HybridStats:
        """Statistics of ``(C, T)`` training windows (or ``(N, C, T)`` arrays).

        Example:
            >>> stats = HybridStats.fit([hybrid_channels(x, 250) for x in train_lead_ii])  # doctest: +SKIP
            >>> z = stats.apply(hybrid_channels(x_test, 250))                                # doctest: +SKIP
        """
        moments = ChannelMoments()
        for window in windows:
            moments.add(window)
        return cls.from_moments(moments)

    def apply(self, channels: np.ndarray) -> np.ndarray:
        """``(..., C, T)`` -> z-scored float32 of the same shape; NaN becomes 0 (the training mean)."""
        z = (np.asarray(channels, dtype=np.float64) - self.mean[:, None]) / self.std[:, None]
        return np.nan_to_num(z, nan=0.0, posinf=0.0, neginf=0.0).astype(np.float32)

    def save(self, path: str) -> None:
        """Write the statistics as JSON (atomically)."""
        os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
        payload = {
            "names": list(self.names),
            "mean": self.mean.tolist(),
            "std": self.std.tolist(),
            "count": self.count.tolist(),
            "fitted_on": "train",
        }
        tmp = f"{path}.{os.getpid()}.tmp"
        with open(tmp, "w") as fh:
            json.dump(payload, fh, indent=2)
        os.replace(tmp, path)

    @classmethod
    def load(cls, path: str) -> HybridStats:
        """Read statistics written by :meth:`save`."""
        with open(path) as fh:
            d = json.load(fh)
        return cls(np.asarray(d["mean"]), np.asarray(d["std"]), np.asarray(d["count"]), tuple(d["names"]))
