"""Whole MIT-BIH and LUDB (../shared/data): patient-disjoint manifests whose counts match
the summary, and a truncated record named and skipped. Skipped where the data is absent."""

from __future__ import annotations

import os
import shutil
from collections import Counter
from pathlib import Path

import pytest

from physioclr_ext.preprocess import PreprocessConfig, run

SHARED = Path(os.environ.get("PHYSIOCLR_SHARED_DATA", Path(__file__).resolve().parents[3] / "shared" / "data"))
pytestmark = pytest.mark.skipif(not (SHARED / "mitdb").is_dir(), reason=f"no shared ECG data at {SHARED}")


def _manifest_rows(path: Path) -> list[str]:
    lines = path.read_text().splitlines()
    return [line.split("\t")[0] for line in lines[1:]]


def _patients_by_split(out: Path) -> dict[str, set[str]]:
    import pandas as pd

    table = pd.read_csv(out / "windows.csv", dtype=str)
    return {split: set(group["patient"]) for split, group in table.groupby("split")}


def _check_counts_and_disjoint(out: Path, summary: dict) -> None:
    for split in ("train", "valid", "test"):
        rows = _manifest_rows(out / f"{split}.tsv")
        assert summary["splits"][split]["windows"] == len(rows)
        assert all((out / r).exists() for r in rows[:: max(1, len(rows) // 50)])
    patients = _patients_by_split(out)
    for a, b in (("train", "valid"), ("train", "test"), ("valid", "test")):
        assert not (patients.get(a, set()) & patients.get(b, set())), f"patients in {a} and {b}"


def test_mitbih_ds1ds2_with_a_truncated_record(tmp_path):
    src = tmp_path / "mitdb"
    shutil.copytree(SHARED / "mitdb", src)
    data = (src / "105.dat").read_bytes()
    (src / "105.dat").write_bytes(data[: len(data) // 1000])  # truncated: wfdb cannot read it whole
    out = tmp_path / "out"
    summary = run(
        PreprocessConfig(
            input=str(src),
            output=str(out),
            split="mitbih_ds1ds2",
            leads="II",
            label_scheme="binary",
            workers=2,
            progress=False,
        )
    )
    failed = {f["record"] for f in summary["failed_records"]}
    assert failed == {"105"}
    _check_counts_and_disjoint(out, summary)
    assert summary["dropped_for_patient_overlap"] == ["202"]
    splits = Counter(
        line.split("\t")[0].split("/")[1].split("_")[0] for line in (out / "test.tsv").read_text().splitlines()[1:]
    )
    assert "202" not in splits and "100" in splits


def test_ludb_seeded_split(tmp_path):
    out = tmp_path / "ludb"
    summary = run(PreprocessConfig(input=str(SHARED / "ludb"), output=str(out), seed=3, workers=2, progress=False))
    assert summary["failed_records"] == []
    assert sum(summary["splits"][s]["records"] for s in ("train", "valid", "test")) == 200
    _check_counts_and_disjoint(out, summary)
