"""Record-level aggregates of per-beat features, and the fixed-length vector (pure numpy).

Every function tolerates NaN (missing waves) and empty inputs: a statistic over no value is 0, so the
vector is always finite.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from .names import (
    ABNORMAL_FEATURES,
    BEAT_CAP,
    BEAT_FEATURES,
    FEATURE_DIM,
    HRV_FEATURES,
    MORPHOLOGY_FEATURES,
    QUALITY_FEATURES,
    STATS,
)

SHORT_RR_FRACTION = 0.8  # an RR below 0.8 x the median RR is short (premature beat)
INVERTED_T_MV = -0.05
ST_DEVIATION_MV = 0.1
CORR_WINDOW_S = (0.2, 0.4)  # beat segment for adjacent-beat correlation: R - 0.2 s .. R + 0.4 s


def _finite(values: np.ndarray) -> np.ndarray:
    values = np.asarray(values, dtype=np.float64)
    return values[np.isfinite(values)]


def summary_stats(values: np.ndarray) -> dict[str, float]:
    """Mean, population std, median and IQR (q75 - q25) of the finite values; zeros when there are none."""
    v = _finite(values)
    if v.size == 0:
        return {stat: 0.0 for stat in STATS}
    q25, q75 = np.percentile(v, [25, 75])
    return {"mean": float(v.mean()), "std": float(v.std()), "median": float(np.median(v)), "iqr": float(q75 - q25)}


def hrv_features(r: np.ndarray, fs: float) -> dict[str, float]:
    """Heart-rate variability of the R-peak series.

    Args:
        r: ``(K,)`` R-peak samples in time order.
        fs: sampling rate in Hz.

    Returns:
        ``HRV_FEATURES`` -> value: ``n_beats`` = K, ``hr_bpm`` = 60000 / mean RR, RMSSD (ms) of the
        successive RR differences, pNN50 = share of |dRR| > 50 ms, CVRR = std / mean RR, share of RR
        below ``SHORT_RR_FRACTION`` x median RR. Zeros (except ``n_beats``) with fewer than two beats.
    """
    out = {name: 0.0 for name in HRV_FEATURES}
    out["n_beats"] = float(len(r))
    rr = np.diff(np.asarray(r, dtype=np.float64)) * 1000.0 / fs
    if rr.size == 0:
        return out
    out.update(
        hr_bpm=60000.0 / rr.mean(),
        cvrr=rr.std() / rr.mean(),
        short_rr_share=float(np.mean(rr < SHORT_RR_FRACTION * np.median(rr))),
    )
    if rr.size >= 2:
        d = np.diff(rr)
        out.update(rmssd_ms=float(np.sqrt(np.mean(d**2))), pnn50=float(np.mean(np.abs(d) > 50.0)))
    return {k: float(v) for k, v in out.items()}


def _share(mask: np.ndarray, values: np.ndarray) -> float:
    """Share of finite ``values`` where ``mask`` holds (0 when none is finite)."""
    finite = np.isfinite(values)
    return float(mask[finite].mean()) if finite.any() else 0.0


def abnormal_shares(beats: Mapping[str, np.ndarray]) -> dict[str, float]:
    """Shares of abnormal beats among the beats where the value is known.

    Args:
        beats: ``BEAT_FEATURES`` -> ``(K,)`` per-beat values (NaN = missing).

    Returns:
        ``ABNORMAL_FEATURES`` -> value: PR > 200 ms, QRS >= 120 ms, 100 <= QRS < 120 ms, QTc >= 500 ms,
        P absent (no P amplitude, over all K beats), T inverted (< -0.05 mV), |ST| >= 0.1 mV, and
        ``st_mad_mv`` = median |ST - median ST|.
    """
    with np.errstate(invalid="ignore"):
        pr, qrs, qtc = beats["pr_ms"], beats["qrs_ms"], beats["qtc_ms"]
        t, st, p = beats["t_amp_mv"], beats["st_j60_mv"], beats["p_amp_mv"]
        st_f = _finite(st)
        return {
            "pr_gt_200_share": _share(pr > 200, pr),
            "qrs_ge_120_share": _share(qrs >= 120, qrs),
            "qrs_100_119_share": _share((qrs >= 100) & (qrs < 120), qrs),
            "qtc_ge_500_share": _share(qtc >= 500, qtc),
            "p_absent_share": float(np.mean(~np.isfinite(p))) if len(p) else 0.0,
            "t_inverted_share": _share(t < INVERTED_T_MV, t),
            "st_dev_ge_0p1_share": _share(np.abs(st) >= ST_DEVIATION_MV, st),
            "st_mad_mv": float(np.median(np.abs(st_f - np.median(st_f)))) if st_f.size else 0.0,
        }


def beat_segments(x: np.ndarray, fs: float, r: np.ndarray) -> list[np.ndarray]:
    """Segments R - 0.2 s .. R + 0.4 s of the beats that lie entirely inside ``x``."""
    before, after = (int(round(s * fs)) for s in CORR_WINDOW_S)
    return [x[i - before : i + after] for i in np.asarray(r, dtype=np.int64) if i - before >= 0 and i + after <= len(x)]


def best_match_correlation(x: np.ndarray, fs: float, r: np.ndarray) -> float:
    """Median over beats of the best Pearson correlation with any other beat of the signal.

    Unlike the adjacent-beat correlation this stays high for bigeminy (every beat has a twin two beats
    away) and is near 0 for noise. NaN with fewer than 2 beat segments.
    """
    segs = [s for s in beat_segments(x, fs, r) if s.std() > 0]
    if len(segs) < 2:
        return float("nan")
    c = np.corrcoef(np.stack(segs))
    np.fill_diagonal(c, -1.0)
    return float(np.median(c.max(axis=1)))


def beat_correlations(x: np.ndarray, fs: float, r: np.ndarray) -> dict[str, float]:
    """Pearson correlation of adjacent beats (segments of ``beat_segments``).

    Returns:
        ``MORPHOLOGY_FEATURES`` -> mean, std and min over adjacent pairs; zeros with fewer than 2 segments.
    """
    segs = beat_segments(x, fs, r)
    corrs = []
    for a, b in zip(segs[:-1], segs[1:]):
        if a.std() > 0 and b.std() > 0:
            corrs.append(float(np.corrcoef(a, b)[0, 1]))
    if not corrs:
        return {name: 0.0 for name in MORPHOLOGY_FEATURES}
    c = np.asarray(corrs)
    return {"beat_corr_mean": float(c.mean()), "beat_corr_std": float(c.std()), "beat_corr_min": float(c.min())}


def beat_block(beats: Mapping[str, np.ndarray]) -> np.ndarray:
    """``(BEAT_CAP * (len(BEAT_FEATURES) + 1),)``: the first 10 beats (zero-padded, NaN -> 0), then the mask."""
    k = min(BEAT_CAP, len(beats["rr_ms"]))
    values = np.zeros((BEAT_CAP, len(BEAT_FEATURES)))
    for j, name in enumerate(BEAT_FEATURES):
        values[:k, j] = np.nan_to_num(np.asarray(beats[name][:k], dtype=np.float64), nan=0.0)
    mask = np.zeros(BEAT_CAP)
    mask[:k] = 1.0
    return np.concatenate([values.reshape(-1), mask])


def features_to_vector(beats: Mapping[str, np.ndarray], scalars: Mapping[str, float]) -> np.ndarray:
    """Assemble the ``(FEATURE_DIM,)`` vector in the order of ``FEATURE_NAMES``.

    Args:
        beats: ``BEAT_FEATURES`` -> ``(K,)`` per-beat values of all beats of the window.
        scalars: values of ``HRV_FEATURES``, ``ABNORMAL_FEATURES``, ``MORPHOLOGY_FEATURES`` and
            ``QUALITY_FEATURES``.
    """
    per_feature = [summary_stats(beats[name]) for name in BEAT_FEATURES]
    stats = [values[stat] for values in per_feature for stat in STATS]
    tail = [scalars[n] for n in (*HRV_FEATURES, *ABNORMAL_FEATURES, *MORPHOLOGY_FEATURES, *QUALITY_FEATURES)]
    vector = np.concatenate([beat_block(beats), np.asarray(stats), np.asarray(tail, dtype=np.float64)])
    if vector.shape != (FEATURE_DIM,):
        raise AssertionError(f"feature vector has {vector.shape}, expected ({FEATURE_DIM},)")
    return np.nan_to_num(vector, nan=0.0, posinf=0.0, neginf=0.0).astype(np.float32)
