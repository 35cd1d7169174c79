"""Signal quality scores (preprocess/quality.py) on real LUDB snippets and ``--quality-min`` end to end."""

from __future__ import annotations

import csv
import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
import scipy.signal
import scipy.stats

from physioclr_ext.preprocess import PreprocessConfig, run
from physioclr_ext.preprocess import quality as q
from physioclr_ext.preprocess.cli import config_from_args
from physioclr_ext.preprocess.config import _RECORD_OPTIONS
from physioclr_ext.preprocess.readers import discover, read_record

SAMPLE = Path(__file__).resolve().parents[2] / "data" / "sample"
FS = 500.0
IN_BAND = scipy.signal.butter(4, [0.5, 40.0], btype="bandpass", fs=FS, output="sos")


@pytest.fixture(scope="module")
def ludb() -> dict[str, np.ndarray]:
    """Bundled LUDB records 1 and 2: ``(12, 5000)`` mV at 500 Hz."""
    refs = {r.record_id: r for r in discover(SAMPLE / "ludb", "ludb")}
    return {rid: read_record(refs[rid], False).signal for rid in ("1", "2")}


def lead_score(x: np.ndarray) -> float:
    """Score of one lead over its whole 10 s."""
    return float(q.combine(q.lead_indices(x, FS, [(0, x.size)]))[0])


def with_noise(x: np.ndarray, snr_db: float, seed: int) -> np.ndarray:
    """``x`` plus Gaussian noise band-limited to 0.5-40 Hz, the ECG's band, at ``snr_db`` (variance of ``x`` over
    the noise's). White noise would not do: at 500 Hz, 84% of its power lies above 40 Hz, where the preprocessing
    band-pass removes it, so a "0 dB" white noise leaves the QRS complexes standing out."""
    rng = np.random.default_rng(seed)
    noise = scipy.signal.sosfiltfilt(IN_BAND, rng.normal(0.0, 1.0, x.size))
    return x + noise * np.sqrt(np.var(x) / 10 ** (snr_db / 10)) / np.std(noise)


def test_ramp_by_hand():
    ramp = q.Ramp(0.4, 0.5, 0.8, 0.9)
    got = ramp(np.array([0.3, 0.45, 0.6, 0.85, 0.95, np.nan]))
    np.testing.assert_allclose(got, [0.0, 0.5, 1.0, 0.5, 0.0, 0.0])


def test_beat_agreement_by_hand():
    first, second = np.array([100, 500, 900]), np.array([110, 520, 2000])
    # 3 + 1 peaks in [0, 1000), 2 matched within 30 samples: 2 / (3 + 2 - 2); 2000 lies outside
    assert q.beat_agreement(first, second, 0, 1000, 30) == pytest.approx(2 / 3)
    assert q.beat_agreement(first, second, 0, 1000, 5) == 0.0
    assert q.beat_agreement(np.array([], np.int64), np.array([], np.int64), 0, 1000, 30) == 0.0


def test_spectral_indices_of_sines():
    t = np.arange(0, 10, 1 / FS)
    psqi, bassqi = q.spectral_indices(np.sin(2 * np.pi * 10 * t), FS)  # all power in the QRS band
    assert psqi == pytest.approx(1.0, abs=1e-3) and bassqi == pytest.approx(1.0, abs=1e-3)
    psqi, bassqi = q.spectral_indices(np.sin(2 * np.pi * 25 * t) + np.sin(2 * np.pi * 0.5 * t), FS)
    assert psqi == pytest.approx(0.0, abs=1e-3) and bassqi == pytest.approx(0.5, abs=0.02)


def test_ksqi_is_pearson_kurtosis_of_the_band_passed_window(ludb):
    x = ludb["1"][1]
    filtered, _, _ = q.detect_beats(x, FS)
    got = q.lead_indices(x, FS, [(0, 2500), (2500, 5000)])["ksqi"]
    want = [scipy.stats.kurtosis(filtered[a:b], fisher=False) for a, b in ((0, 2500), (2500, 5000))]
    np.testing.assert_allclose(got, want)


def test_template_correlation_of_repeated_beats_is_one(ludb):
    x = ludb["1"][1]
    filtered, peaks, _ = q.detect_beats(x, FS)
    beat = filtered[peaks[2] - 200 : peaks[2] + 200]
    tiled = np.tile(beat, 12)
    positions = np.arange(200, tiled.size, 400)
    assert q.template_correlation(tiled, positions, 0, tiled.size) == pytest.approx(1.0)
    assert q.template_correlation(tiled, positions[:2], 0, tiled.size) == 0.0  # fewer than 3 beats


def test_clean_ludb_leads_score_high(ludb):
    scores = [lead_score(ludb[rid][lead]) for rid in ludb for lead in (0, 1, 6, 10)]
    assert min(scores) >= q.RECOMMENDED_MIN
    assert np.median(scores) >= 0.8


@pytest.mark.parametrize("rid", ["1", "2"])
def test_corruptions_lower_the_score(ludb, rid):
    x = ludb[rid][1]
    clean = lead_score(x)
    rng = np.random.default_rng(0)
    spikes = x.copy()  # lead-off spikes: short full-scale pulses at random times, about 2 per second
    for at in rng.choice(x.size - 10, 20, replace=False):
        spikes[at : at + 5] += rng.choice([-1, 1]) * 5 * np.ptp(x)
    jumps = x + np.repeat(rng.normal(0, 2 * np.ptp(x), 8), -(-x.size // 8))[: x.size]  # baseline steps
    low, high = np.percentile(x, [10, 90])
    saturated = np.clip(x, low, high)  # an amplifier clipping every QRS complex
    flat = x.copy()
    flat[1000:4000] = x[1000]  # 6 of the 10 s stuck at one value
    corrupted = {"spikes": spikes, "noise 0 dB": with_noise(x, 0.0, 1), "jumps": jumps, "saturated": saturated}
    for name, bad in {**corrupted, "flat stretch": flat}.items():
        assert lead_score(bad) < clean - 0.1, name
    assert lead_score(with_noise(x, -5.0, 1)) < q.RECOMMENDED_MIN <= clean
    assert lead_score(np.full(x.size, x[0])) == 0.0  # a present but constant lead


def test_score_falls_with_the_noise_level(ludb):
    x = ludb["1"][1]
    levels = [30.0, 10.0, 5.0, 0.0, -5.0]
    scores = [np.mean([lead_score(with_noise(x, snr, seed)) for seed in range(3)]) for snr in levels]
    assert all(a >= b - 1e-9 for a, b in zip(scores, scores[1:])), scores
    assert scores[0] - scores[-1] > 0.3


def test_window_quality_is_the_minimum_over_present_leads(ludb):
    raw = ludb["1"][:3].copy()
    raw[1] = with_noise(raw[1], -5.0, 2)
    raw[2] = 0.0
    window, leads = q.window_quality(raw, FS, np.array([True, True, False]), [(0, 2500), (2500, 5000)])
    assert np.isnan(leads[:, 2]).all()
    np.testing.assert_allclose(window, np.minimum(leads[:, 0], leads[:, 1]))
    assert (leads[:, 1] < leads[:, 0]).all()


def test_an_implausible_rate_scores_zero_instead_of_failing(ludb):
    x = ludb["1"][1][::50]  # 10 Hz: no QRS band to filter
    assert np.isnan(list(q.lead_indices(x, 10.0, [(0, 50), (50, 100)]).values())).all()
    window, _ = q.window_quality(x[None], 10.0, np.array([True]), [(0, 50), (50, 100)])
    np.testing.assert_array_equal(window, [0.0, 0.0])


def _npy_fixture(folder: Path, ludb: dict[str, np.ndarray]) -> Path:
    """``clean.npy`` (LUDB 1) and ``noisy.npy`` (LUDB 2, its second 5 s under noise at -5 dB)."""
    (folder / "samples").mkdir(parents=True)
    np.save(folder / "samples" / "clean.npy", ludb["1"])
    noisy = ludb["2"].copy()
    noisy[:, 2500:] = np.stack([with_noise(lead, -5.0, 3)[2500:] for lead in noisy])
    np.save(folder / "samples" / "noisy.npy", noisy)
    return folder


def _run(src: Path, out: Path, **options) -> tuple[dict, list[dict[str, str]]]:
    config = PreprocessConfig(
        input=str(src),
        output=str(out),
        format="npy_samples",
        input_sample_rate=FS,
        leads=("II", "V1"),
        workers=1,
        progress=False,
        **options,
    )
    summary = run(config)
    with open(out / "windows.csv") as fh:
        return summary, list(csv.DictReader(fh))


def test_quality_min_flags_and_drops_the_noisy_window(tmp_path, ludb):
    src = _npy_fixture(tmp_path / "in", ludb)
    summary, rows = _run(src, tmp_path / "plain", quality_scores=True)
    assert len(rows) == 4 and "quality_min" not in summary["quality"]
    scores = {(r["record"], r["window"]): float(r["quality"]) for r in rows}
    for r in rows:
        assert float(r["quality"]) == pytest.approx(min(float(r["quality_II"]), float(r["quality_V1"])))
    assert scores[("noisy", "1")] < q.RECOMMENDED_MIN <= min(v for k, v in scores.items() if k != ("noisy", "1"))

    summary, rows = _run(src, tmp_path / "drop", quality_min=q.RECOMMENDED_MIN)
    assert {(r["record"], r["window"]) for r in rows} == set(scores) - {("noisy", "1")}
    assert summary["quality"]["low_quality"] == {"flagged": 1, "dropped": 1}
    assert summary["quality"]["dropped_by_reason"] == {"low_quality": 1}
    marker = json.loads((tmp_path / "drop" / "records" / "noisy.json").read_text())
    assert [w["kept"] for w in marker["windows"]] == [True, False]

    summary, rows = _run(src, tmp_path / "keep", quality_min=q.RECOMMENDED_MIN, quality="keep")
    assert len(rows) == 4 and summary["quality"]["low_quality"] == {"flagged": 1, "dropped": 0}
    assert [r["flags"] for r in rows if r["record"] == "noisy"] == ["", "low_quality"]


def test_an_absent_lead_has_no_score_and_does_not_lower_the_window(tmp_path, ludb):
    """V1 all NaN (so treated as absent and zero-filled): its ``quality_V1`` cells are empty and the window's
    score is lead II's, which is that of the same lead in the complete record."""
    (tmp_path / "in" / "samples").mkdir(parents=True)
    np.save(tmp_path / "in" / "samples" / "full.npy", ludb["1"])
    no_v1 = ludb["1"].copy()
    no_v1[6] = np.nan  # V1, the seventh lead of the 12-lead order
    np.save(tmp_path / "in" / "samples" / "no_v1.npy", no_v1)
    summary, rows = _run(tmp_path / "in", tmp_path / "out", quality_scores=True)
    assert summary["missing_leads"]["records"] == {"no_v1": ["V1"]}
    by = {(r["record"], r["window"]): r for r in rows}
    for window in ("0", "1"):
        absent, full = by[("no_v1", window)], by[("full", window)]
        assert absent["quality_V1"] == "" and full["quality_V1"] != ""
        assert absent["quality"] == absent["quality_II"] == full["quality_II"]


def test_quality_min_joins_the_resume_key_only_when_set():
    base = PreprocessConfig(input="in", output="out")
    before = {key: base.to_dict()[key] for key in _RECORD_OPTIONS}  # the key of outputs made before the option
    assert base.record_options_hash() == hashlib.sha256(json.dumps(before, sort_keys=True).encode()).hexdigest()[:16]
    assert (
        base.record_options_hash() != PreprocessConfig(input="in", output="out", quality_min=0.5).record_options_hash()
    )
    with pytest.raises(ValueError, match="quality_min"):
        PreprocessConfig(input="in", output="out", quality_min=1.5)


def test_windows_are_not_scored_unless_asked(tmp_path, ludb, monkeypatch):
    """Default: no quality columns and the scorer never runs; --quality-scores or --quality-min score."""
    src = _npy_fixture(tmp_path / "in", ludb)
    calls = []
    scorer = q.window_quality
    monkeypatch.setattr(q, "window_quality", lambda *a, **k: calls.append(1) or scorer(*a, **k))
    summary, rows = _run(src, tmp_path / "default")
    assert len(rows) == 4 and calls == [] and not any(k.startswith("quality") for k in rows[0])
    assert config_from_args(["--input", "i", "--output", "o"]).scores_quality is False
    assert config_from_args(["--input", "i", "--output", "o", "--quality-scores"]).scores_quality is True
    assert config_from_args(["--input", "i", "--output", "o", "--quality-min", "0.5"]).scores_quality is True
    _, scored = _run(src, tmp_path / "scored", quality_scores=True)
    assert calls and {r["quality"] != "" for r in scored} == {True}


def test_quality_scores_join_the_resume_key_only_when_set():
    base = PreprocessConfig(input="in", output="out")
    scored = PreprocessConfig(input="in", output="out", quality_scores=True)
    assert base.record_options_hash() != scored.record_options_hash()
    assert (
        base.record_options_hash()
        == PreprocessConfig(input="in", output="out", quality_scores=False).record_options_hash()
    )
