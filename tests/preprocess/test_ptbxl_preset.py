"""The ``ptbxl`` preset on ``tests/fixtures/ptbxl_small`` (six PTB-XL records in PTB-XL's layout; the
full PTB-XL is not available here, see the fixture's README).

The expected labels are computed independently with pandas and ``ast``, the way PTB-XL's
``example_physionet.py`` (superdiagnostic) and Strodthoff et al.'s benchmark code (diagnostic, form,
rhythm: every statement of the record whose column in ``scp_statements.csv`` is 1) compute them.
"""

from __future__ import annotations

import ast
import csv
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import scipy.io

from physioclr_ext.preprocess import PreprocessConfig, run
from physioclr_ext.preprocess.cli import config_from_args
from physioclr_ext.preprocess.labels_csv import apply_labels_csv
from physioclr_ext.preprocess.readers import discover

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "ptbxl_small"
ON_DISK = {841, 1612, 2132, 7196, 9867, 17292}
FOLD_SPLIT = {**dict.fromkeys(range(1, 9), "train"), 9: "valid", 10: "test"}


def reference_labels(label_set: str) -> dict[str, set[str]]:
    """Record id (``<ecg_id>_hr``) -> label set, computed the PTB-XL way."""
    database = pd.read_csv(FIXTURE / "ptbxl_database.csv", index_col="ecg_id")
    statements = pd.read_csv(FIXTURE / "scp_statements.csv", index_col=0)
    column = "diagnostic" if label_set in ("superdiagnostic", "diagnostic") else label_set
    chosen = statements[statements[column] == 1]
    out = {}
    for ecg_id, codes in database.scp_codes.apply(ast.literal_eval).items():
        if ecg_id in ON_DISK:
            keys = [k for k in codes if k in chosen.index]
            classes = {chosen.loc[k].diagnostic_class for k in keys} if label_set == "superdiagnostic" else set(keys)
            out[f"{ecg_id:05d}_hr"] = classes
    return out


def ptbxl_config(tmp_path: Path, root: Path = FIXTURE, **options: object) -> PreprocessConfig:
    return PreprocessConfig.from_preset(
        "ptbxl", input=str(root), output=str(tmp_path / "out"), workers=1, progress=False, **options
    )


@pytest.fixture(scope="module")
def superdiagnostic_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("ptbxl_out")
    config = PreprocessConfig.from_preset("ptbxl", input=str(FIXTURE), output=str(out), workers=1, progress=False)
    return out, run(config)


def test_superdiagnostic_labels_and_fold_split(superdiagnostic_run: tuple[Path, dict]) -> None:
    out, summary = superdiagnostic_run
    names = summary["labels"]["names"]
    assert summary["labels"]["scheme"] == "multilabel" and names == ["CD", "HYP", "MI", "NORM", "STTC"]
    expected = reference_labels("superdiagnostic")
    database = pd.read_csv(FIXTURE / "ptbxl_database.csv", index_col="ecg_id")
    y = np.load(out / "y.npy")
    with open(out / "windows.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert {r["record"] for r in rows} == set(expected)
    for row in rows:
        label = scipy.io.loadmat(out / row["path"])["label"].squeeze(0)  # as fairseq-signals reads it
        assert {n for n, v in zip(names, label) if v} == expected[row["record"]]
        np.testing.assert_array_equal(y[int(row["idx"])], label)
        ecg_id = int(row["record"].split("_")[0])
        assert row["split"] == FOLD_SPLIT[int(database.loc[ecg_id].strat_fold)]
        assert row["patient"] == str(int(database.loc[ecg_id].patient_id))
    assert {s: c["records"] for s, c in summary["splits"].items()} == {"train": 3, "valid": 1, "test": 2}
    assert summary["splits"]["train"]["patients"] == 2  # 841 and 9867 are one patient


def test_label_def_counts_and_csv_report(superdiagnostic_run: tuple[Path, dict]) -> None:
    out, summary = superdiagnostic_run
    expected = reference_labels("superdiagnostic")
    with open(out / "label_def.csv") as fh:
        label_def = {row["name"]: row for row in csv.DictReader(fh)}
    for name in summary["labels"]["names"]:
        total = sum(int(label_def[name][f"{s}_records"]) for s in ("train", "valid", "test"))
        assert total == sum(name in labels for labels in expected.values())
    report = summary["labels"]["csv"]
    assert report["record_column"] == "filename_hr" and report["kind"] == "codes"
    assert report["rows"] == 8 and report["rows_without_record"] == 2  # ecg_id 1 and 2 are not in the fixture
    assert report["records_outside_labelled_folders"] == 6  # records100/ is the other rate, not "missing"
    assert report["records_not_in_csv"] == 0 and report["records_labelled"] == 6
    assert report["codes_outside_label_set"]["SR"] == 4 and report["unknown_codes"] == {}


@pytest.mark.parametrize("label_set", ["diagnostic", "form", "rhythm"])
def test_other_label_sets_match_the_reference(tmp_path: Path, label_set: str) -> None:
    config = ptbxl_config(tmp_path, ptbxl_labels=label_set)
    refs = discover(FIXTURE, "wfdb")
    labels = apply_labels_csv(config, FIXTURE, refs)
    expected = reference_labels(label_set)
    got = {r.record_id: set(r.labels) for r in labels.refs}
    assert got == {r: s for r, s in expected.items() if s}
    empty = sorted(r for r, s in expected.items() if not s)
    assert sorted(r for r, why in labels.excluded.items() if why == "no_label") == empty
    assert labels.report["records_without_label_dropped"] == len(empty)
    space = labels.label_space("auto", "present", labels.refs)
    assert list(space.names) == sorted({n for s in expected.values() for n in s})


def test_records100_layout_reads_filename_lr(tmp_path: Path) -> None:
    root = tmp_path / "ptbxl100"
    shutil.copytree(FIXTURE / "records100", root / "records100")
    for name in ("ptbxl_database.csv", "scp_statements.csv"):
        shutil.copy(FIXTURE / name, root / name)
    summary = run(ptbxl_config(tmp_path, root, sample_rate=100))
    report = summary["labels"]["csv"]
    assert report["record_column"] == "filename_lr" and report["records_labelled"] == 6
    assert summary["window"]["length_samples"] == 1000
    expected = {r.replace("_hr", "_lr"): s for r, s in reference_labels("superdiagnostic").items()}
    with open(tmp_path / "out" / "windows.csv") as fh:
        got = {row["record"]: {n for n in summary["labels"]["names"] if row[n] == "1"} for row in csv.DictReader(fh)}
    assert got == expected


def test_custom_fold_split_and_cli_options(tmp_path: Path) -> None:
    config = config_from_args(
        ["--input", str(FIXTURE), "--output", str(tmp_path), "--preset", "ptbxl", "--ptbxl-labels", "rhythm"]
        + ["--fold-split", "1-2:train,3-9:valid,10:test"]
    )
    assert config.split == "column" and config.ptbxl_labels == "rhythm"
    labels = apply_labels_csv(config, FIXTURE, discover(FIXTURE, "wfdb"))
    assert labels.splits == {
        "00841_hr": "valid",
        "01612_hr": "valid",
        "02132_hr": "train",
        "07196_hr": "test",
        "09867_hr": "valid",
        "17292_hr": "test",
    }
