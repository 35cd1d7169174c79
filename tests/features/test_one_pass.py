"""Features computed in the preprocessing worker (one pass) against the feature stage re-reading every record
(two passes, as before issue 14): the same files, byte for byte, on real LUDB and MIT-BIH records.

One pass: ``preprocess_and_extract`` with ``features=True``, the record re-read of the feature stage made to
fail, so that any record it had to re-read would come out invalid. Two passes: ``run`` without features, then
``extract_directory`` on its output. Both with a PCA fitted on train.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import wfdb

from physioclr_ext.features import extract_directory, load_split
from physioclr_ext.features import pipeline as feature_pipeline
from physioclr_ext.features.pipeline import RecordJob, preprocess_and_extract
from physioclr_ext.preprocess import PreprocessConfig, run

SAMPLE = Path(__file__).resolve().parents[2] / "data" / "sample"
MITDB_SECONDS = 60


def _ludb(dest: Path) -> Path:
    """The 8 bundled LUDB records (10 s, 12 leads)."""
    shutil.copytree(SAMPLE / "ludb", dest)
    return dest


def _mitdb(dest: Path) -> Path:
    """The first minute of the bundled MIT-BIH records 100 (DS2), 106, 119 (DS1), with their beats."""
    dest.mkdir()
    for name in ("100", "106", "119"):
        source = str(SAMPLE / "mitdb" / name)
        record = wfdb.rdrecord(source, sampto=360 * MITDB_SECONDS, physical=False)
        record.wrsamp(write_dir=str(dest))
        beats = wfdb.rdann(source, "atr", sampto=360 * MITDB_SECONDS)
        wfdb.wrann(name, "atr", beats.sample, beats.symbol, write_dir=str(dest), fs=record.fs)
    return dest


def _config(source: Path, out: Path, workers: int, features: bool) -> PreprocessConfig:
    return PreprocessConfig.from_preset(
        "fairseq_signals",
        input=str(source),
        output=str(out),
        workers=workers,
        progress=False,
        features=features,
        features_pca=3,
    )


def _two_pass(config: PreprocessConfig) -> dict[str, Any]:
    run(config)
    return extract_directory(config.output, feature_pipeline.feature_options(config))


def _tree(out: Path) -> dict[str, bytes]:
    """Every file under ``out``, with the output folder's path (manifests and summaries name it) as ``<OUT>``."""
    return {
        str(p.relative_to(out)): p.read_bytes().replace(str(out).encode(), b"<OUT>")
        for p in sorted(out.rglob("*"))
        if p.is_file()
    }


def _no_reread(job: RecordJob) -> tuple[np.ndarray, list[str], int]:
    raise RuntimeError(f"the feature stage re-read {job.record}")


@pytest.mark.parametrize(("dataset", "workers"), [("ludb", 2), ("mitdb", 1)])
def test_one_pass_writes_the_two_pass_files(
    dataset: str, workers: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = {"ludb": _ludb, "mitdb": _mitdb}[dataset](tmp_path / "input")
    two, one = tmp_path / "two", tmp_path / "one"
    two_summary = _two_pass(_config(source, two, workers, features=False))
    with monkeypatch.context() as patch:
        patch.setattr(feature_pipeline, "record_signal", _no_reread)
        one_summary = preprocess_and_extract(_config(source, one, workers, features=True))

    assert one_summary["features"] == two_summary
    n = one_summary["records"]["succeeded"]
    assert two_summary["records"] == {"total": n, "computed": n, "cached": 0} and n >= 3
    assert two_summary["pca_components"] == 3
    expected, got = _tree(two), _tree(one)
    assert sorted(got) == sorted(expected)
    assert len([k for k in got if k.startswith("features/cache/")]) == n
    assert [k for k in expected if got[k] != expected[k]] == ["preprocess.json"]
    meta, two_meta = json.loads(got["preprocess.json"]), json.loads(expected["preprocess.json"])
    assert meta.pop("features") == two_summary
    assert (meta["options"].pop("features"), two_meta["options"].pop("features")) == (True, False)
    assert meta == two_meta
    reasons = [str(r) for split in ("train", "valid", "test") for r in load_split(str(one), split).reason]
    assert len(reasons) == sum(s["windows"] for s in one_summary["splits"].values())
    assert not any(r.startswith("unreadable") for r in reasons)  # no row came from a re-read
    assert reasons.count("") >= len(reasons) // 2


def test_records_skipped_by_resume_are_extracted_by_the_feature_stage(tmp_path: Path) -> None:
    """Preprocessed without features, then with: no record is processed again (no hook runs), the feature stage
    re-reads them all, and the files equal those of a run that computed them in the workers."""
    source = _ludb(tmp_path / "input")
    resumed, one = tmp_path / "resumed", tmp_path / "one"
    run(_config(source, resumed, 2, features=False))
    summary = preprocess_and_extract(_config(source, resumed, 2, features=True))
    assert summary["records"]["skipped_existing"] == 8 and summary["records"]["processed"] == 0
    assert summary["features"]["records"] == {"total": 8, "computed": 8, "cached": 0}
    preprocess_and_extract(_config(source, one, 2, features=True))
    expected, got = _tree(one), _tree(resumed)
    assert sorted(got) == sorted(expected)
    assert [k for k in expected if got[k] != expected[k]] == ["preprocess.json"]  # its resume counts

    again = preprocess_and_extract(_config(source, one, 2, features=True))
    assert again["records"]["skipped_existing"] == 8
    assert again["features"]["records"] == {"total": 8, "computed": 0, "cached": 8}
    before, after = (json.loads(t["features/summary.json"]) for t in (expected, _tree(one)))
    assert before.pop("records") != after.pop("records") and before == after
