"""Per-beat measurements and aggregates on hand-built inputs (no neurokit2)."""

from __future__ import annotations

import numpy as np
import pytest

from physioclr_ext.features.aggregate import abnormal_shares, features_to_vector, hrv_features, summary_stats
from physioclr_ext.features.beats import Fiducials, measure_beats, sanitize
from physioclr_ext.features.names import (
    BEAT_CAP,
    BEAT_FEATURES,
    FEATURE_DIM,
    FEATURE_INDEX,
    FEATURE_NAMES,
    HRV_FEATURES,
)

FS = 500.0


def test_names_unique_and_fixed_length() -> None:
    assert len(FEATURE_NAMES) == len(set(FEATURE_NAMES)) == FEATURE_DIM == 184
    assert FEATURE_NAMES[0] == "beat0_rr_ms" and FEATURE_NAMES[BEAT_CAP * len(BEAT_FEATURES)] == "beat0_present"


def test_hrv_on_known_rr_series() -> None:
    rr = np.array([800.0, 860.0, 790.0, 805.0, 600.0, 900.0])
    r = np.concatenate([[100.0], 100.0 + np.cumsum(rr) * FS / 1000.0])
    h = hrv_features(r, FS)
    d = np.diff(rr)
    assert h["n_beats"] == 7
    assert h["rmssd_ms"] == pytest.approx(np.sqrt(np.mean(d**2)))
    assert h["pnn50"] == pytest.approx(np.mean(np.abs(d) > 50))  # 60, 70, 195, 300 -> 4/5
    assert h["pnn50"] == pytest.approx(4 / 5)
    assert h["cvrr"] == pytest.approx(rr.std() / rr.mean())
    assert h["short_rr_share"] == pytest.approx(1 / 6)  # 600 < 0.8 * 802.5
    assert h["hr_bpm"] == pytest.approx(60000 / rr.mean())
    assert hrv_features(np.array([5.0]), FS) == {**{k: 0.0 for k in HRV_FEATURES}, "n_beats": 1.0}


def test_abnormal_shares_on_crafted_beats() -> None:
    nan = np.nan
    beats = {
        "pr_ms": np.array([150, 210, 250, nan]),
        "qrs_ms": np.array([90, 105, 120, 130]),
        "qtc_ms": np.array([420, 510, nan, 480]),
        "p_amp_mv": np.array([0.1, nan, 0.2, nan]),
        "t_amp_mv": np.array([0.3, -0.1, -0.04, 0.2]),
        "st_j60_mv": np.array([0.0, 0.15, -0.1, 0.05]),
    }
    s = abnormal_shares(beats)
    assert s["pr_gt_200_share"] == pytest.approx(2 / 3)
    assert s["qrs_ge_120_share"] == pytest.approx(2 / 4)
    assert s["qrs_100_119_share"] == pytest.approx(1 / 4)
    assert s["qtc_ge_500_share"] == pytest.approx(1 / 3)
    assert s["p_absent_share"] == pytest.approx(2 / 4)
    assert s["t_inverted_share"] == pytest.approx(1 / 4)
    assert s["st_dev_ge_0p1_share"] == pytest.approx(2 / 4)
    assert s["st_mad_mv"] == pytest.approx(np.median(np.abs(beats["st_j60_mv"] - 0.025)))


def test_summary_stats_ignore_nan_and_empty() -> None:
    s = summary_stats(np.array([1.0, 2.0, np.nan, 4.0, 3.0]))
    assert s == pytest.approx({"mean": 2.5, "std": np.std([1, 2, 3, 4]), "median": 2.5, "iqr": 1.5})
    assert summary_stats(np.array([np.nan])) == {"mean": 0.0, "std": 0.0, "median": 0.0, "iqr": 0.0}


def _gauss(t: np.ndarray, mu: float, sigma: float, height: float) -> np.ndarray:
    return height * np.exp(-0.5 * ((t - mu) / sigma) ** 2)


def test_amplitudes_against_baseline_on_sum_of_gaussians() -> None:
    """One beat: P 0.15 mV, R 1.2 mV, T 0.35 mV on a 0.3 mV offset; known fiducials in samples."""
    t = np.arange(1000) / FS
    x = 0.3 + _gauss(t, 0.30, 0.02, 0.15) + _gauss(t, 0.50, 0.008, 1.2) + _gauss(t, 0.80, 0.04, 0.35)
    fid = Fiducials(
        r=np.array([250, 650]),
        waves={
            "p_on": np.array([120.0, np.nan]),
            "p_peak": np.array([150.0, np.nan]),
            "p_off": np.array([180.0, np.nan]),
            "qrs_on": np.array([235.0, np.nan]),
            "qrs_off": np.array([265.0, np.nan]),
            "t_on": np.array([340.0, np.nan]),
            "t_peak": np.array([400.0, np.nan]),
            "t_off": np.array([460.0, np.nan]),
        },
    )
    b = measure_beats(x, FS, sanitize(fid))
    assert b["r_amp_mv"][0] == pytest.approx(1.2, abs=1e-3)  # baseline = 0.3 (80 ms before onset is flat)
    assert b["p_amp_mv"][0] == pytest.approx(0.15, abs=1e-3)
    assert b["t_amp_mv"][0] == pytest.approx(0.35, abs=1e-3)
    assert b["pr_ms"][0] == pytest.approx(230.0) and b["qrs_ms"][0] == pytest.approx(60.0)
    assert b["qtc_ms"][0] == pytest.approx(450.0 / np.sqrt(0.8))  # QT 225 samples, RR 400 samples
    # ST at J + 60 ms = sample 295: tails of R and T only
    assert b["st_j60_mv"][0] == pytest.approx(x[295] - np.median(x[195:235]), abs=1e-12)
    # steepest upstroke of a Gaussian: height / (sigma * sqrt(e)), per ms
    assert b["qrs_slope_mv_per_ms"][0] == pytest.approx(1.2 / (0.008 * np.sqrt(np.e)) / 1000, rel=0.02)
    assert np.isnan(b["pr_ms"][1]) and np.isnan(b["p_amp_mv"][1])


def test_sanitize_drops_p_offset_inside_qrs() -> None:
    fid = Fiducials(
        r=np.array([100, 500]),
        waves={"p_on": np.array([40.0, 420.0]), "p_off": np.array([90.0, 460.0]), "qrs_on": np.array([80.0, 470.0])},
    )
    clean = sanitize(fid)
    assert np.isnan(clean.get("p_off")[0]) and clean.get("p_off")[1] == 460.0


def test_vector_layout_beat_block_and_mask() -> None:
    k = 12
    beats = {name: np.arange(k, dtype=float) + j for j, name in enumerate(BEAT_FEATURES)}
    beats["pr_ms"][1] = np.nan
    scalars = {name: 0.5 for name in FEATURE_NAMES[BEAT_CAP * (len(BEAT_FEATURES) + 1) + 44 :]}
    v = features_to_vector(beats, scalars)
    assert v.shape == (FEATURE_DIM,) and np.isfinite(v).all()
    assert v[FEATURE_INDEX["beat3_qrs_ms"]] == 3 + 2
    assert v[FEATURE_INDEX["beat1_pr_ms"]] == 0.0
    assert v[FEATURE_INDEX["beat9_present"]] == 1.0
    assert v[FEATURE_INDEX["rr_ms_median"]] == pytest.approx(5.5)  # aggregates use all 12 beats
    short = {name: values[:3] for name, values in beats.items()}
    w = features_to_vector(short, scalars)
    assert w[FEATURE_INDEX["beat2_present"]] == 1.0 and w[FEATURE_INDEX["beat3_present"]] == 0.0
    assert w[FEATURE_INDEX["beat5_rr_ms"]] == 0.0
