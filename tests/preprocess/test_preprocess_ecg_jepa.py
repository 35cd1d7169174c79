"""The ``ecg_jepa`` preset and ``--hybrid-channels`` on the 8 bundled LUDB records (10 s, 500 Hz)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import scipy.io
from scipy.signal import resample_poly

from physioclr_ext.features.hybrid import HYBRID_CHANNELS, HybridStats, hybrid_channels
from physioclr_ext.preprocess import PreprocessConfig, run
from physioclr_ext.preprocess.__main__ import main
from physioclr_ext.preprocess.cli import config_from_args

wfdb = pytest.importorskip("wfdb")
pytest.importorskip("neurokit2")

LUDB = Path(__file__).resolve().parents[2] / "data" / "sample" / "ludb"
JEPA_LEADS = ("I", "II", "V1", "V2", "V3", "V4", "V5", "V6")


def windows(out: Path) -> list[dict[str, str]]:
    with open(out / "windows.csv") as fh:
        return list(csv.DictReader(fh))


def feats(out: Path, rel: str) -> tuple[np.ndarray, int]:
    mat = scipy.io.loadmat(out / rel)
    return mat["feats"], int(mat["curr_sample_rate"].squeeze())


@pytest.fixture(scope="module")
def plain(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("jepa_plain")
    run(PreprocessConfig.from_preset("ecg_jepa", input=str(LUDB), output=str(out), workers=1, progress=False))
    return out


def _hybrid_args(out: Path) -> list[str]:
    return ["--input", str(LUDB), "--output", str(out), "--preset", "ecg_jepa", "--hybrid-channels"] + [
        "--workers",
        "1",
        "--no-progress",
    ]


@pytest.fixture(scope="module")
def hybrid(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("jepa_hybrid")
    assert main(_hybrid_args(out)) == 0
    return out


def test_preset_options_and_flag():
    config = config_from_args(["--input", "i", "--output", "o", "--preset", "ecg_jepa"])
    assert (config.sample_rate, config.window_seconds, config.apply_filter, config.normalize) == (
        250,
        10.0,
        False,
        "none",
    )
    assert config.leads == JEPA_LEADS and config.hybrid_channels is False
    flagged = config_from_args(["--input", "i", "--output", "o", "--preset", "ecg_jepa", "--hybrid-channels"])
    assert flagged.hybrid_channels is True
    # Turning the channels on reprocesses the records; configs without them keep their earlier hashes.
    assert flagged.record_options_hash() != config.record_options_hash()


def test_preset_writes_raw_8_lead_windows_at_250_hz(plain):
    rows = windows(plain)
    assert len(rows) == 8  # one 10-s window per record
    for row in rows:
        x, fs = feats(plain, row["path"])
        assert x.shape == (8, 2500) and fs == 250
        record = wfdb.rdrecord(str(LUDB / row["record"]))
        rows_in = [record.sig_name.index(lead.lower()) for lead in JEPA_LEADS]
        # No filter, no normalisation: the window is the record resampled 500 -> 250 Hz, in mV.
        expected = resample_poly(record.p_signal[:, rows_in].T, 1, 2, axis=-1)[:, :2500]
        np.testing.assert_allclose(x, expected, atol=1e-5)


def test_hybrid_channels_append_11_rows_fitted_on_train(plain, hybrid):
    meta = json.loads((hybrid / "preprocess.json").read_text())["hybrid"]
    assert meta["n_channels"] == 19 and meta["channels"] == list(JEPA_LEADS) + list(HYBRID_CHANNELS)
    assert meta["leads_to_load"] == str(list(range(19)))
    stats = HybridStats.load(str(hybrid / meta["stats"]))
    rows = windows(hybrid)
    raw = {r["path"]: feats(plain, r["path"])[0] for r in rows}
    direct = {path: hybrid_channels(x[1].astype(np.float64), 250) for path, x in raw.items()}
    train = [direct[r["path"]] for r in rows if r["split"] == "train"]
    assert 0 < len(train) < len(rows)
    expected = HybridStats.fit(train)
    np.testing.assert_allclose(stats.mean, expected.mean, rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(stats.std, expected.std, rtol=1e-6)
    assert not np.allclose(stats.mean, HybridStats.fit(direct.values()).mean)
    for r in rows:
        x, fs = feats(hybrid, r["path"])
        assert x.shape == (19, 2500) and fs == 250
        np.testing.assert_array_equal(x[:8], raw[r["path"]])
        np.testing.assert_allclose(x[8:], stats.apply(direct[r["path"]]), atol=1e-5)


def test_hybrid_rerun_rewrites_rather_than_appends(hybrid):
    rows = windows(hybrid)
    before = feats(hybrid, rows[0]["path"])[0]
    assert main(_hybrid_args(hybrid)) == 0  # records skipped (markers current), channels recomputed
    after = feats(hybrid, rows[0]["path"])[0]
    assert after.shape == (19, 2500)
    np.testing.assert_array_equal(after, before)  # statistics combined in record order: same bits
