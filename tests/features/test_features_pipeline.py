"""Transform fitting, and the feature stage of the preprocessing on the bundled LUDB sample."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import scipy.io

from physioclr_ext.features import FEATURE_DIM, FEATURE_NAMES, FeatureOptions, extract_directory, load_split
from physioclr_ext.features import transform as transform_module
from physioclr_ext.features.pipeline import plan_jobs, preprocess_and_extract, record_signal
from physioclr_ext.features.store import stored_feature_dim
from physioclr_ext.features.transform import FeatureTransform, fit_transform, resolve_pca
from physioclr_ext.preprocess import PreprocessConfig
from physioclr_ext.preprocess.__main__ import main as preprocess_main
from physioclr_ext.preprocess.dsp import normalize

SAMPLE = Path(__file__).resolve().parents[2] / "data" / "sample"


def test_transform_fitted_on_valid_train_rows_only(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    train = rng.normal(3.0, 2.0, size=(40, 6))
    valid = np.ones(40, bool)
    valid[:5] = False
    train[:5] = 1e6  # invalid rows must not count
    t = fit_transform(train, valid, pca=4, seed=0)
    np.testing.assert_allclose(t.mean, train[5:].mean(axis=0))
    np.testing.assert_allclose(t.std, train[5:].std(axis=0))
    z = t.apply(train[5:])
    assert z.shape == (35, 4)
    np.testing.assert_allclose(z.mean(axis=0), 0, atol=1e-5)  # PCA scores are centred
    assert np.all(np.diff(z.var(axis=0)) <= 1e-6)  # decreasing explained variance
    t.save(str(tmp_path / "transform.npz"))
    back = FeatureTransform.load(str(tmp_path / "transform.npz"))
    np.testing.assert_array_equal(back.apply(train), t.apply(train))
    assert not t.apply(train, valid)[:5].any()
    few = fit_transform(train[5:8], np.ones(3, bool), pca=10)
    assert few.out_dim == 10 and not few.components[3:].any()  # fixed width, zero extra axes
    assert fit_transform(train, valid).apply(train).shape == (40, 6)


@pytest.fixture(scope="module")
def ludb_features(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    """The 8 bundled LUDB records (16 windows of 5 s) preprocessed with --features --features-pca 5."""
    src = tmp_path_factory.mktemp("ludb_in")
    for f in (SAMPLE / "ludb").iterdir():
        shutil.copy(f, src / f.name)
    out = tmp_path_factory.mktemp("ludb_out")
    config = PreprocessConfig.from_preset(
        "fairseq_signals", input=str(src), output=str(out), workers=2, progress=False, features=True, features_pca=5
    )
    return out, preprocess_and_extract(config)


def test_preprocess_features_end_to_end(ludb_features: tuple[Path, dict]) -> None:
    out, summary = ludb_features
    feats = summary["features"]
    assert json.loads((out / "preprocess.json").read_text())["features"] == feats
    assert json.loads((out / "features" / "names.json").read_text()) == list(FEATURE_NAMES)
    total = 0
    for split, counts in summary["splits"].items():
        table = load_split(str(out), split)
        lines = (out / f"{split}.tsv").read_text().splitlines()[1:]
        assert list(table.fnames) == [line.split("\t")[0] for line in lines]
        assert table.raw.shape == (counts["windows"], FEATURE_DIM) and table.vectors.shape[1] == 5
        assert feats["splits"][split]["valid"] == int(table.valid.sum())
        for i in range(len(table)):
            peaks = table.r_peaks[i]
            assert np.all((peaks >= 0) & (peaks < 2500))
            assert table.valid[i] == (table.reason[i] == "")
            if table.valid[i]:
                assert len(peaks) >= 2
        total += len(table)
    assert total == 16 and sum(s["valid"] for s in feats["splits"].values()) >= 14


def test_features_see_the_saved_window_before_normalisation(ludb_features: tuple[Path, dict]) -> None:
    out, _ = ludb_features
    jobs, _ = plan_jobs(out, FeatureOptions())
    job = jobs[0]
    signal, _, _ = record_signal(job)
    path, start = job.windows[1]
    saved = scipy.io.loadmat(out / path)["feats"]
    present = np.abs(signal).sum(axis=1) > 0
    np.testing.assert_allclose(normalize(signal[:, start : start + job.length], "per_lead", present), saved, atol=1e-5)
    assert np.ptp(signal[1, start : start + job.length]) > 0.3  # mV, not z-scored


def test_cache_hit_and_invalidation(ludb_features: tuple[Path, dict], tmp_path: Path) -> None:
    src, _ = ludb_features
    data = tmp_path / "data"
    shutil.copytree(src, data)
    first = extract_directory(data, FeatureOptions(progress=False))
    assert first["records"]["computed"] == 8 or first["records"]["cached"] == 8
    mtimes = {p.name: os.stat(p).st_mtime_ns for p in (data / "features" / "cache").iterdir()}
    again = extract_directory(data, FeatureOptions(progress=False))
    assert again["records"] == {"total": 8, "computed": 0, "cached": 8}
    assert {p.name: os.stat(p).st_mtime_ns for p in (data / "features" / "cache").iterdir()} == mtimes
    changed = extract_directory(data, FeatureOptions(lead="II", progress=False))
    assert changed["records"]["computed"] == 8
    a, b = load_split(str(data), "train"), load_split(str(src), "train")
    assert not np.array_equal(a.raw, b.raw)  # lead II differs from the mean
    with pytest.raises(ValueError):
        extract_directory(data, FeatureOptions(lead="XYZ", progress=False))
    with pytest.raises(ValueError, match="delineation"):
        extract_directory(data, FeatureOptions(delineation="peak", progress=False))


def test_delineation_flag_reaches_the_options_and_the_cache_key(
    ludb_features: tuple[Path, dict], tmp_path: Path
) -> None:
    from physioclr_ext.features.__main__ import main

    src, _ = ludb_features
    data = tmp_path / "data"
    shutil.copytree(src, data)
    assert main([str(data), "--delineation", "prominence", "--no-progress"]) == 0
    summary = json.loads((data / "features" / "summary.json").read_text())
    assert summary["options"]["delineation"] == "prominence" and summary["records"]["computed"] == 8
    a, b = load_split(str(data), "train"), load_split(str(src), "train")
    np.testing.assert_array_equal(a.r_peaks[0], b.r_peaks[0])  # same R-peaks, other delineation
    assert not np.array_equal(a.raw, b.raw)
    again = extract_directory(data, FeatureOptions(progress=False))  # back to dwt: new key again
    assert again["records"]["computed"] == 8


def test_cli_flags_reach_the_config() -> None:
    from physioclr_ext.preprocess.cli import config_from_args

    cfg = config_from_args(
        ["--input", "a", "--output", "b", "--features", "--features-pca", "50", "--features-lead", "II"]
    )
    assert (cfg.features, cfg.features_pca, cfg.features_lead) == (True, 50, "II")
    for text, value in (("auto", "auto"), ("none", None), ("0", None)):
        assert config_from_args(["--input", "a", "--output", "b", "--features-pca", text]).features_pca == value
    assert config_from_args(["--input", "a", "--output", "b"]).features is False
    assert cfg.features_delineation == "dwt"
    cfg = config_from_args(["--input", "a", "--output", "b", "--features", "--features-delineation", "prominence"])
    assert cfg.features_delineation == "prominence"


@pytest.mark.parametrize(
    ("pca", "n_train", "expected"),
    [
        ("auto", 500, 50),
        ("auto", 5000, 50),
        ("auto", 499, None),
        ("auto", 0, None),
        (8, 3, 8),
        (None, 10_000, None),
        (0, 10_000, None),
    ],
)
def test_auto_pca_is_50_from_500_training_windows(pca: int | str | None, n_train: int, expected: int | None) -> None:
    assert resolve_pca(pca, n_train) == expected


def test_resolve_pca_rejects_other_values() -> None:
    for bad in ("all", -1, 2.5, True):
        with pytest.raises(ValueError, match="PCA"):
            resolve_pca(bad, 1000)


def test_auto_pca_counts_the_training_manifest(
    ludb_features: tuple[Path, dict], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Both sides of the threshold through the pipeline (threshold lowered to the sample's size)."""
    src, summary = ludb_features
    data = tmp_path / "data"
    shutil.copytree(src, data)
    n_train = summary["splits"]["train"]["windows"]
    monkeypatch.setattr(transform_module, "PCA_AUTO_MIN_WINDOWS", n_train + 1)
    below = extract_directory(data, FeatureOptions(pca="auto", progress=False))
    assert below["pca_components"] is None and below["vector_dim"] == FEATURE_DIM
    assert load_split(str(data), "train").vectors.shape[1] == FEATURE_DIM
    assert stored_feature_dim(str(data)) == (FEATURE_DIM, str(data / "features" / "transform.npz"))
    monkeypatch.setattr(transform_module, "PCA_AUTO_MIN_WINDOWS", n_train)
    at = extract_directory(data, FeatureOptions(pca="auto", progress=False))
    assert at["pca_components"] == 50 and at["vector_dim"] == 50 and at["options"]["pca"] == "auto"
    assert load_split(str(data), "valid").vectors.shape[1] == 50
    assert stored_feature_dim(str(data))[0] == 50 and stored_feature_dim(str(data), "raw")[0] == FEATURE_DIM


def test_entry_point_chains_preprocessing_and_features(
    ludb_features: tuple[Path, dict], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``python -m physioclr_ext.preprocess --features --features-pca auto``: both stages, one summary."""
    src, _ = ludb_features
    data = tmp_path / "data"
    shutil.copytree(src, data)
    source = json.loads((src / "preprocess.json").read_text())["input"]
    code = preprocess_main(
        [
            "--input",
            source,
            "--output",
            str(data),
            "--features",
            "--features-pca",
            "auto",
            "--workers",
            "2",
            "--no-progress",
        ]
    )
    assert code == 0
    summary = json.loads((data / "preprocess.json").read_text())
    assert summary["records"]["skipped_existing"] == 8 and summary["features"]["records"]["cached"] == 8
    assert summary["features"]["pca_components"] is None  # 16 windows < 500: no PCA
    assert stored_feature_dim(str(data))[0] == FEATURE_DIM
    out = capsys.readouterr().out
    assert "ludb: 8/8 records" in out and "  features {'train':" in out
    with pytest.raises(SystemExit):  # a usage error, as before
        preprocess_main(["--input", source, "--output", str(data), "--features-pca", "many"])


def test_features_cli_takes_auto_pca(ludb_features: tuple[Path, dict], tmp_path: Path) -> None:
    from physioclr_ext.features.__main__ import main

    src, _ = ludb_features
    data = tmp_path / "data"
    shutil.copytree(src, data)
    assert main([str(data), "--pca", "auto", "--no-progress"]) == 0
    assert json.loads((data / "features" / "summary.json").read_text())["pca_components"] is None
    assert main([str(data), "--pca", "3", "--no-progress"]) == 0
    assert stored_feature_dim(str(data)) == (3, str(data / "features" / "transform.npz"))
    with pytest.raises(SystemExit):
        main([str(data), "--pca", "lots"])
