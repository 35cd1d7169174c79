"""Bad records, quality handling, CLI behaviour and synthetic MIT-BIH splits."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import scipy.io

from physioclr_ext.preprocess import PreprocessConfig, run
from physioclr_ext.preprocess.__main__ import main
from physioclr_ext.preprocess.cli import config_from_args

SAMPLE = Path(__file__).resolve().parents[2] / "data" / "sample"
FS = 250


def synthetic_ecg(seconds: float, fs: int = FS, seed: int = 0) -> np.ndarray:
    """``(2, T)`` smooth two-lead signal in mV."""
    t = np.arange(int(seconds * fs)) / fs
    noise = np.random.default_rng(seed).normal(0, 0.01, size=(2, t.size))
    return (
        np.vstack([np.sin(2 * np.pi * 1.3 * t) + 0.3 * np.sin(2 * np.pi * 7 * t), 0.5 * np.cos(2 * np.pi * 1.1 * t)])
        + noise
    )


def rows_of(out: Path) -> list[dict[str, str]]:
    with open(out / "windows.csv") as fh:
        return list(csv.DictReader(fh))


@pytest.fixture()
def npy_input(tmp_path: Path) -> Path:
    """npy samples at 250 Hz with leads II, V1: a 10 s record with one bad window of each
    kind (1: NaN, 2: flat V1, 3: clipped II), a 1 s record and an all-NaN record."""
    folder = tmp_path / "in" / "samples"
    folder.mkdir(parents=True)
    x = synthetic_ecg(10.0)
    w = 2 * FS
    x[0, w + 100 : w + 140] = np.nan
    x[1, 2 * w : 3 * w] = 0.1
    x[0, 3 * w : 4 * w] = np.clip(x[0, 3 * w : 4 * w], -0.3, 0.3)
    np.save(folder / "rec.npy", x)
    np.save(folder / "short.npy", synthetic_ecg(1.0))
    np.save(folder / "nans.npy", np.full((2, 10 * FS), np.nan))
    return tmp_path / "in"


def _npy_config(npy_input: Path, out: Path, **extra) -> PreprocessConfig:
    return PreprocessConfig(
        input=str(npy_input),
        output=str(out),
        input_sample_rate=FS,
        sample_rate=FS,
        lead_names=("II", "V1"),
        window_seconds=2.0,
        workers=1,
        progress=False,
        **extra,
    )


def test_quality_drop_counts_reasons_and_bad_records(npy_input, tmp_path):
    summary = run(_npy_config(npy_input, tmp_path / "out"))
    assert summary["format"] == "npy_samples" and summary["labels"]["scheme"] == "none"
    assert [r["window"] for r in rows_of(tmp_path / "out")] == ["0", "4"]
    assert summary["quality"]["dropped_by_reason"] == {"flat": 1, "nan": 1, "saturated": 1}
    failed = {f["record"]: f["reason"] for f in summary["failed_records"]}
    assert "short" not in failed and failed["nans"] == "nan_only"  # too short: skipped, not failed (issue 16)
    assert summary["too_short_records"] == {"short": 1.0} and summary["records"]["too_short"] == 1
    missing = summary["missing_leads"]
    assert missing["records"]["rec"] == ["I", "III", "aVR", "aVL", "aVF", "V2", "V3", "V4", "V5", "V6"]
    mat = scipy.io.loadmat(tmp_path / "out" / "mat" / "rec_4.mat")
    assert mat["feats"].shape == (12, 2 * FS) and mat["label"].tolist() == [[0.0]]
    np.testing.assert_array_equal(mat["feats"][[0, 2, 3, 4, 5, 7, 8, 9, 10, 11]], 0.0)


def test_quality_keep_writes_flagged_windows_without_nan(npy_input, tmp_path):
    summary = run(_npy_config(npy_input, tmp_path / "out", quality="keep"))
    flags = {r["window"]: r["flags"] for r in rows_of(tmp_path / "out")}
    assert flags == {"0": "", "1": "nan", "2": "flat", "3": "saturated", "4": ""}
    assert summary["quality"]["flagged_by_reason"] == {"flat": 1, "nan": 1, "saturated": 1}
    assert summary["quality"]["windows_dropped"] == 0
    for i in range(5):
        feats = scipy.io.loadmat(tmp_path / "out" / "mat" / f"rec_{i}.mat")["feats"]
        assert np.isfinite(feats).all()


def test_corrupt_records_are_skipped_and_named(tmp_path, capsys):
    src = tmp_path / "in"
    src.mkdir()
    for record in ("1", "2", "3"):
        for f in SAMPLE.glob(f"ludb/{record}.*"):
            shutil.copy(f, src / f.name)
    with open(src / "2.dat", "r+b") as fh:
        fh.truncate(1000)
    (src / "bad.hea").write_text("this is not a header\n\x00\x01garbage\n")
    code = main(["--input", str(src), "--output", str(tmp_path / "out"), "--workers", "2", "--no-progress"])
    assert code == 0
    summary = json.loads((tmp_path / "out" / "preprocess.json").read_text())
    assert [f["record"] for f in summary["failed_records"]] == ["2", "bad"]
    assert all(f["reason"].startswith("unreadable") for f in summary["failed_records"])
    assert summary["records"]["succeeded"] == 2
    assert {r["record"] for r in rows_of(tmp_path / "out")} == {"1", "3"}
    err = capsys.readouterr().err
    assert "FAILED 2:" in err and "FAILED bad:" in err


def test_exit_code_nonzero_without_records_or_successes(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    assert main(["--input", str(tmp_path / "empty"), "--output", str(tmp_path / "o1")]) == 2
    assert "no ECG records" in capsys.readouterr().err
    (tmp_path / "junk").mkdir()
    (tmp_path / "junk" / "x.hea").write_text("garbage\n")
    assert main(["--input", str(tmp_path / "junk"), "--output", str(tmp_path / "o2"), "--no-progress"]) == 2
    assert "no record could be processed" in capsys.readouterr().err


def test_cli_preset_is_overridden_by_explicit_options():
    config = config_from_args(["--input", "a", "--output", "b", "--preset", "st_mem", "--sample-rate", "500"])
    assert (config.sample_rate, config.normalize, config.bandpass, config.window_seconds) == (
        500,
        "per_sample",
        (0.67, 40.0),
        10.0,
    )
    few = config_from_args(["--input", "a", "--output", "b", "--preset", "mitbih_fewshot"])
    assert (few.leads, few.sample_rate, few.split, few.label_scheme) == (("II",), 360, "mitbih_ds1ds2", "binary")
    plain = config_from_args(["--input", "a", "--output", "b", "--no-filter", "--leads", "I,V2"])
    assert plain.apply_filter is False and plain.leads == ("I", "V2") and plain.sample_rate == 500
    with pytest.raises(ValueError):
        PreprocessConfig(input="a", output="b", overlap_seconds=5.0)


def test_npy_classes_multiclass_labels(tmp_path):
    for k, name in enumerate(("normal", "afib")):
        (tmp_path / "in" / name).mkdir(parents=True)
        for i in range(3):
            np.save(tmp_path / "in" / name / f"{i}.npy", synthetic_ecg(4.0, seed=10 * k + i))
    summary = run(
        PreprocessConfig(
            input=str(tmp_path / "in"),
            output=str(tmp_path / "out"),
            sample_rate=FS,
            lead_names=("II", "V1"),
            window_seconds=2.0,
            workers=1,
            progress=False,
        )
    )
    assert summary["labels"]["scheme"] == "multiclass" and summary["labels"]["names"] == ["afib", "normal"]
    for row in rows_of(tmp_path / "out"):
        label = scipy.io.loadmat(tmp_path / "out" / row["path"])["label"]
        assert label.tolist() == [[0.0 if row["record"].startswith("afib") else 1.0]]


def _write_mitdb_like(folder: Path, record: str, seconds: float = 30.0) -> None:
    import wfdb

    fs = 360
    signal = synthetic_ecg(seconds, fs=fs, seed=int(record)).T
    wfdb.wrsamp(
        record,
        fs=fs,
        units=["mV", "mV"],
        sig_name=["MLII", "V1"],
        p_signal=signal,
        fmt=["16", "16"],
        write_dir=str(folder),
    )
    beats = np.arange(fs // 2, int(seconds * fs), fs)
    symbols = ["V" if k % 7 == 3 else "N" for k in range(beats.size)]
    wfdb.wrann(record, "atr", beats, symbol=symbols, write_dir=str(folder))


def test_ds1ds2_run_drops_202_and_records_it(tmp_path):
    src = tmp_path / "in"
    src.mkdir()
    for record in ("100", "101", "201", "202", "217"):
        _write_mitdb_like(src, record)
    summary = run(
        PreprocessConfig.from_preset(
            "mitbih_fewshot",
            input=str(src),
            output=str(tmp_path / "out"),
            valid_fraction=0.0,
            workers=1,
            progress=False,
            label_scheme="aami",
        )
    )
    assert summary["dropped_for_patient_overlap"] == ["202"]
    assert summary["excluded_records"] == {"202": "dropped_for_patient_overlap", "217": "paced"}
    splits = {r["record"]: r["split"] for r in rows_of(tmp_path / "out")}
    assert splits == {"100": "test", "101": "train", "201": "train"}
    assert summary["labels"]["names"] == ["N", "S", "V", "F", "Q"]
    labels = {
        r["aami"]: scipy.io.loadmat(tmp_path / "out" / r["path"])["label"].item() for r in rows_of(tmp_path / "out")
    }
    assert labels["V"] == 2.0 and set(labels) == {"V"}  # every 10 s window has a V beat
    assert not (tmp_path / "out" / "pos_weight.txt").exists()
