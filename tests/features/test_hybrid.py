"""Hybrid feature channels (SMILES 2025 hybrid input of ECG-JEPA) against neurokit2, PyWavelets and LUDB.

LUDB records come from the bundled sample (``data/sample/ludb``, PhysioNet LUDB 1.0.1, ODC-By; its
``.ii`` files are the manual lead-II delineation). The whole database (``/work/shared/data/ludb``) is
used by the slow test only.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from physioclr_ext.features.hybrid import (
    HYBRID_CHANNELS,
    N_HYBRID,
    STEP_CHANNELS,
    ChannelMoments,
    HybridOptions,
    HybridStats,
    beat_track,
    hybrid_channels,
    rolling_rr,
    step_channel,
    swt_details,
)

nk = pytest.importorskip("neurokit2")
wfdb = pytest.importorskip("wfdb")
pywt = pytest.importorskip("pywt")
from scipy.signal import resample_poly  # noqa: E402

SAMPLE_LUDB = Path(__file__).resolve().parents[2] / "data" / "sample" / "ludb"
SHARED_LUDB = Path(os.environ.get("LUDB_DIR", "/work/shared/data/ludb/data"))


def ludb_lead_ii(path: Path, fs: int) -> tuple[np.ndarray, np.ndarray]:
    """Lead II of a LUDB record at ``fs`` (500 native, 250 by ``resample_poly``) and its annotated
    QRS peaks (``N`` in the ``.ii`` file) in seconds."""
    record = wfdb.rdrecord(str(path))
    x = record.p_signal[:, record.sig_name.index("ii")]
    if fs != record.fs:
        x = resample_poly(x, fs, int(record.fs))
    ann = wfdb.rdann(str(path), "ii")
    peaks = np.array([s for s, sym in zip(ann.sample, ann.symbol) if sym == "N"]) / record.fs
    return x, peaks


def share_within(detected_s: np.ndarray, reference_s: np.ndarray, tolerance_s: float = 0.010) -> tuple[int, int]:
    """Annotated beats with a detected R-peak within ``tolerance_s``: ``(hits, beats)``."""
    if detected_s.size == 0:
        return 0, len(reference_s)
    gaps = np.abs(reference_s[:, None] - detected_s[None, :]).min(axis=1)
    return int((gaps <= tolerance_s + 1e-9).sum()), len(reference_s)


def neurokit_peaks(x: np.ndarray, fs: int) -> np.ndarray:
    clean = nk.ecg_clean(x - np.median(x), sampling_rate=fs, method="neurokit")
    _, info = nk.ecg_peaks(clean, sampling_rate=fs)
    return np.asarray(info["ECG_R_Peaks"], dtype=np.int64)


@pytest.fixture(scope="module")
def record1_500() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """LUDB record 1, lead II at 500 Hz: signal, channels (whole-signal HRV window), reference peaks."""
    x, ref = ludb_lead_ii(SAMPLE_LUDB / "1", 500)
    return x, hybrid_channels(x, 500, HybridOptions(rolling_seconds=np.inf)), ref


def test_channels_have_the_signal_length_and_names(record1_500):
    x, channels, _ = record1_500
    assert channels.shape == (N_HYBRID, x.size) == (11, 5000)
    assert len(HYBRID_CHANNELS) == 11 and len(set(HYBRID_CHANNELS)) == 11


def test_r_peaks_heart_rate_and_hrv_agree_with_neurokit2(record1_500):
    x, channels, _ = record1_500
    peaks = neurokit_peaks(x, 500)
    assert np.flatnonzero(channels[0]).tolist() == peaks.tolist()
    assert set(np.unique(channels[0])) == {0.0, 1.0}
    rr_s = np.diff(peaks) / 500
    np.testing.assert_allclose(channels[1, peaks[1:]], 60.0 / rr_s)
    np.testing.assert_allclose(channels[1, peaks[0]], 60.0 / rr_s[0])  # first beat: next interval
    hrv = nk.hrv_time(peaks, sampling_rate=500)
    np.testing.assert_allclose(channels[2], 60000.0 / hrv["HRV_MeanNN"].iloc[0])
    np.testing.assert_allclose(channels[5], hrv["HRV_SDNN"].iloc[0])
    np.testing.assert_allclose(channels[6], hrv["HRV_RMSSD"].iloc[0])


def test_st_and_qrs_amplitude_are_the_beats_of_the_feature_extractor(record1_500):
    from physioclr_ext.features.extract import extract_features

    x, channels, _ = record1_500
    res = extract_features(x, 500)
    assert res.valid
    np.testing.assert_allclose(channels[3, res.r_peaks], res.beats["st_j60_mv"])
    np.testing.assert_allclose(channels[4, res.r_peaks], res.beats["r_amp_mv"])
    # Lead II of LUDB record 1 has upright QRS complexes of several tenths of a mV.
    assert 0.3 < np.nanmedian(res.beats["r_amp_mv"]) < 3.0


@pytest.mark.parametrize("fs", [500, 250])
def test_r_peaks_within_10_ms_of_ludb_annotation(fs):
    x, ref = ludb_lead_ii(SAMPLE_LUDB / "1", fs)
    detected = np.flatnonzero(hybrid_channels(x, fs)[0]) / fs
    hits, beats = share_within(detected, ref)
    assert beats >= 5 and hits / beats >= 0.95


@pytest.mark.slow
@pytest.mark.skipif(not (SHARED_LUDB / "1.hea").is_file(), reason="full LUDB not available")
def test_r_peaks_within_10_ms_of_ludb_annotation_over_the_database():
    """All 200 LUDB records at the ECG-JEPA rate (250 Hz): 97.2% of 1831 annotated beats when written."""
    hits = beats = 0
    for rec in range(1, 201):
        x, ref = ludb_lead_ii(SHARED_LUDB / str(rec), 250)
        h, b = share_within(beat_track(x, 250).r_peaks / 250, ref)
        hits, beats = hits + h, beats + b
    assert hits / beats >= 0.95


def test_step_channels_are_constant_between_beats(record1_500):
    _, channels, _ = record1_500
    x, _ = ludb_lead_ii(SAMPLE_LUDB / "1", 250)
    short = hybrid_channels(x, 250, HybridOptions(rolling_seconds=4.0))
    for chans in (channels, short):
        peaks = np.flatnonzero(chans[0])
        bounds = [0, *peaks[1:].tolist(), chans.shape[1]]
        for i in range(1, 1 + len(STEP_CHANNELS)):
            for lo, hi in zip(bounds[:-1], bounds[1:]):
                seg = chans[i, lo:hi]
                assert np.isnan(seg).all() or np.ptp(seg) == 0.0, (HYBRID_CHANNELS[i], lo, hi)
    # ...and they do step: the instantaneous rate and a 4-s rolling SDNN differ between beats.
    assert np.unique(short[1]).size > 2 and np.unique(short[5][np.isfinite(short[5])]).size > 1


def test_step_channel_by_hand():
    assert step_channel(np.array([2, 5]), np.array([1.0, 2.0]), 7).tolist() == [1, 1, 1, 1, 1, 2, 2]
    assert np.isnan(step_channel(np.zeros(0, np.int64), np.zeros(0), 4)).all()


def test_rolling_rr_by_hand():
    # R-peaks 1 s, 1 s, 2 s apart at fs = 1: intervals 1000, 1000, 2000 ms ending at 1, 2, 4.
    out = rolling_rr(np.array([0, 1, 2, 4]), fs=1.0, seconds=2.0)  # intervals ending within 1 s
    np.testing.assert_allclose(out["hyb_hr_roll"], [60.0, 60.0, 60.0, 30.0])
    np.testing.assert_allclose(out["hyb_sdnn"], [np.nan, 0.0, 0.0, np.nan])
    assert np.isnan(rolling_rr(np.array([3]), 1.0, 10.0)["hyb_sdnn"]).all()


def test_swt_details_match_pywavelets_away_from_the_edges():
    rng = np.random.default_rng(0)
    x = rng.standard_normal(2500)
    details = swt_details(x, "db4", 4)
    direct = pywt.swt(x[:2496], "db4", level=4, trim_approx=True)  # 2496 = 156 * 2**4
    from physioclr_ext.features.hybrid import _swt_delay

    for j in range(1, 5):
        d = _swt_delay("db4", j)
        np.testing.assert_allclose(details[j - 1, 300:2100], direct[-j][300 - d : 2100 - d], atol=1e-10)


def test_swt_details_are_aligned_with_an_impulse():
    x = np.zeros(2500)
    x[1200] = 1.0
    details = swt_details(x)
    assert details.shape == (4, 2500)
    for j in range(4):
        assert abs(int(np.argmax(np.abs(details[j]))) - 1200) <= 2 + j


def test_stats_fit_on_the_given_windows_only_and_apply():
    rng = np.random.default_rng(1)
    train = [rng.normal(loc=3.0, scale=2.0, size=(N_HYBRID, 400)) for _ in range(3)]
    train[0][4, :50] = np.nan
    test = [rng.normal(loc=-5.0, scale=0.5, size=(N_HYBRID, 400))]
    stats = HybridStats.fit(train)
    pooled = np.concatenate(train, axis=1)
    np.testing.assert_allclose(stats.mean, np.nanmean(pooled, axis=1))
    np.testing.assert_allclose(stats.std, np.nanstd(pooled, axis=1))
    assert not np.allclose(stats.mean, HybridStats.fit(train + test).mean)
    z = stats.apply(pooled)
    assert z.dtype == np.float32 and not np.isnan(z).any() and (z[4, :50] == 0).all()
    np.testing.assert_allclose(z[:, 50:].mean(axis=1)[[0, 1, 2]], 0.0, atol=0.05)
    # Merging per-window moments equals fitting on the stacked array.
    stacked = ChannelMoments()
    stacked.add(np.stack(train))
    np.testing.assert_allclose(HybridStats.from_moments(stacked).std, stats.std)


def test_stats_constant_channel_and_roundtrip(tmp_path):
    windows = np.ones((2, N_HYBRID, 10))
    stats = HybridStats.fit(windows)
    assert (stats.std == 1.0).all() and (stats.apply(windows) == 0).all()
    stats.save(str(tmp_path / "hybrid" / "stats.json"))
    back = HybridStats.load(str(tmp_path / "hybrid" / "stats.json"))
    np.testing.assert_array_equal(back.mean, stats.mean)
    assert back.names == HYBRID_CHANNELS


def test_no_beats_gives_nan_steps_and_zero_indicator():
    flat = np.zeros(2500)
    channels = hybrid_channels(flat, 250)
    assert (channels[0] == 0).all() and np.isnan(channels[1 : 1 + len(STEP_CHANNELS)]).all()
    assert np.isfinite(channels[1 + len(STEP_CHANNELS) :]).all()
