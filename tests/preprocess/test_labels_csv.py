"""Labels from a CSV (``--labels``): every label form, header/BOM/whitespace handling, the counts of
rows naming no record and records missing from the CSV, patient and split columns, and the labels read
back the way fairseq-signals reads them (``label`` field of each ``.mat``, ``y.npy`` by ``idx``)."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import scipy.io

from physioclr_ext.preprocess import PreprocessConfig, run
from physioclr_ext.preprocess.csv_tables import (
    parse_codes,
    parse_fold_split,
    read_code_map,
    read_table,
    split_of,
)
from physioclr_ext.preprocess.splits import SplitError

SAMPLE = Path(__file__).resolve().parents[2] / "data" / "sample"
RATE = 100


def make_npy_records(root: Path, names: list[str], seconds: float = 2.0) -> Path:
    """``root/samples/<name>.npy``: seeded (12, T) noise, T = seconds * RATE."""
    folder = root / "samples"
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for name in names:
        np.save(folder / f"{name}.npy", rng.normal(size=(12, int(seconds * RATE))))
    return root


def run_npy(root: Path, out: Path, **options: object) -> dict:
    config = PreprocessConfig(
        input=str(root),
        output=str(out),
        format="npy_samples",
        input_sample_rate=RATE,
        sample_rate=RATE,
        window_seconds=2.0,
        apply_filter=False,
        workers=1,
        progress=False,
        **options,
    )
    return run(config)


def mat_labels(out: Path) -> dict[str, np.ndarray]:
    """Record -> label as fairseq-signals' dataset returns it: ``loadmat(...)["label"].squeeze(0)``."""
    labels = {}
    with open(out / "windows.csv") as fh:
        for row in csv.DictReader(fh):
            labels[row["record"]] = scipy.io.loadmat(out / row["path"])["label"].squeeze(0)
    return labels


def label_def(out: Path) -> list[dict[str, str]]:
    with open(out / "label_def.csv") as fh:
        return list(csv.DictReader(fh))


# --- reading the CSV ---------------------------------------------------------------------------------


def test_read_table_handles_bom_whitespace_blank_and_repeated_header_rows(tmp_path: Path) -> None:
    path = tmp_path / "labels.csv"
    path.write_bytes("\ufeff record , label \n\n a1 ,  N \r\n record,label\n a2,AF \n ,\n".encode())
    table = read_table(path)
    assert table.bom and table.has_header
    assert table.header == ["record", "label"]
    assert table.rows == [["a1", "N"], ["a2", "AF"]]
    assert table.blank_rows == 2 and table.repeated_header_rows == 1


def test_read_table_without_header_row_and_with_semicolons(tmp_path: Path) -> None:
    path = tmp_path / "REFERENCE.csv"
    path.write_text("A00001;N\nA00002;AF\n")
    table = read_table(path, lambda cell: cell.startswith("A0"))
    assert not table.has_header and table.header == ["0", "1"]
    assert table.rows == [["A00001", "N"], ["A00002", "AF"]]
    assert table.column("1") == 1 and table.column(0) == 0
    with pytest.raises(ValueError, match="not found"):
        table.column("label")


def test_parse_codes_dict_list_and_separated_forms() -> None:
    assert parse_codes("{'NORM': 100.0, 'LVOLT': 0.0, 'SR': 0.0}", ",;") == (["NORM", "LVOLT", "SR"], 0)
    assert parse_codes("{'IMI': 15.0, 'NORM': 80.0}", ",;", min_likelihood=50) == (["NORM"], 1)
    assert parse_codes("['AF', ' PVC ']", ",;") == (["AF", "PVC"], 0)
    assert parse_codes(" 164889003, 59118001 ;426783006", ",;") == (["164889003", "59118001", "426783006"], 0)
    assert parse_codes("   ", ",;") == ([], 0)


def test_fold_split_and_split_cells() -> None:
    folds = parse_fold_split("1-8:train,9:valid,10:test")
    assert [folds[f] for f in range(1, 11)] == ["train"] * 8 + ["valid", "test"]
    assert split_of(" 9 ", folds) == "valid" and split_of("10.0", folds) == "test" and split_of("11", folds) is None
    assert split_of("Validation", folds) == "valid" and split_of("TRAIN", folds) == "train"
    with pytest.raises(ValueError, match="FOLDS:SPLIT"):
        parse_fold_split("1-8=train")


def test_code_map_keeps_only_classed_rows_of_the_where_column(tmp_path: Path) -> None:
    path = tmp_path / "map.csv"
    path.write_text("code,class,scored\nA,Arr,1\nB,Arr,1.0\nC,Cond,0\nD,,1\n")
    mapping = read_code_map(path, "code", "class", "scored")
    assert mapping.mapping == {"A": ("Arr",), "B": ("Arr",), "C": (), "D": ()}
    assert mapping.classes == ("Arr",)
    identity = read_code_map(path, 0, None, None)
    assert identity.mapping["C"] == ("C",)


# --- whole runs ---------------------------------------------------------------------------------------


def test_single_label_csv_without_header_is_multiclass_and_counts_missing(tmp_path: Path) -> None:
    """CinC 2017 REFERENCE.csv style: no header, BOM, whitespace; a row for a record that is not on disk
    and a record on disk that is not in the CSV are both counted, neither processed."""
    root = make_npy_records(tmp_path / "in", ["A01", "A02", "A03", "A04", "A05"])
    reference = tmp_path / "REFERENCE.csv"
    reference.write_bytes("\ufeffA01,N\n A02 , AF\nA03.npy,~\nA04,N\nA99,AF\n".encode())
    summary = run_npy(root, tmp_path / "out", labels_csv=str(reference))
    out = tmp_path / "out"
    assert summary["labels"]["scheme"] == "multiclass"
    assert summary["labels"]["names"] == ["AF", "N", "~"]
    report = summary["labels"]["csv"]
    assert not report["header_row"] and report["bom"]
    assert report["rows"] == 5 and report["rows_without_record"] == 1
    assert report["rows_without_record_examples"] == ["A99"]
    assert report["records_not_in_csv"] == 1 and report["records_not_in_csv_examples"] == ["A05"]
    assert summary["excluded_records"] == {"A05": "not_in_labels_csv"}
    expected = {"A01": "N", "A02": "AF", "A03": "~", "A04": "N"}
    labels = mat_labels(out)
    assert set(labels) == set(expected)
    for record, name in expected.items():
        assert labels[record].shape == (1,)
        assert summary["labels"]["names"][int(labels[record][0])] == name
    counts = {row["name"]: sum(int(row[f"{s}_records"]) for s in ("train", "valid", "test")) for row in label_def(out)}
    assert counts == {"AF": 1, "N": 2, "~": 1}


def test_multihot_columns_read_back_from_mat_and_y_npy(tmp_path: Path) -> None:
    root = make_npy_records(tmp_path / "in", ["r1", "r2", "r3"])
    table = tmp_path / "labels.csv"
    table.write_text("id,AF,PVC,RBBB\nr1,1,0,1\nr2, 0 ,1.0,\nr3,0,0,0\n")
    summary = run_npy(root, tmp_path / "out", labels_csv=str(table), labels_empty="keep")
    out = tmp_path / "out"
    assert summary["labels"]["scheme"] == "multilabel"
    assert summary["labels"]["names"] == ["AF", "PVC", "RBBB"]
    assert summary["labels"]["csv"]["kind"] == "multihot"
    assert summary["labels"]["csv"]["records_without_label"] == 1
    expected = {"r1": [1, 0, 1], "r2": [0, 1, 0], "r3": [0, 0, 0]}
    labels = mat_labels(out)
    y = np.load(out / "y.npy")
    with open(out / "windows.csv") as fh:
        idx = {row["record"]: int(row["idx"]) for row in csv.DictReader(fh)}
    for record, vector in expected.items():
        np.testing.assert_array_equal(labels[record], vector)
        np.testing.assert_array_equal(y[idx[record]], vector)
    assert [row["name"] for row in label_def(out)] == ["AF", "PVC", "RBBB"]


def test_multihot_needs_named_columns_when_other_columns_are_not_flags(tmp_path: Path) -> None:
    root = make_npy_records(tmp_path / "in", ["r1"])
    table = tmp_path / "labels.csv"
    table.write_text("id,age,AF\nr1,63,1\n")
    with pytest.raises(ValueError, match="--labels-column"):
        run_npy(root, tmp_path / "out", labels_csv=str(table))
    summary = run_npy(root, tmp_path / "out2", labels_csv=str(table), labels_columns=("AF",), labels_kind="multihot")
    assert summary["labels"]["names"] == ["AF"]


def test_separated_codes_with_mapping_table_drop_and_count(tmp_path: Path) -> None:
    root = make_npy_records(tmp_path / "in", ["r1", "r2", "r3", "r4"])
    table = tmp_path / "labels.csv"
    table.write_text('record,dx\nr1,"164889003,59118001"\nr2,426783006\nr3,999\nr4,164889003;426783006\n')
    mapping = tmp_path / "map.csv"
    mapping.write_text("snomed,class\n164889003,AF\n59118001,RBBB\n713427006,RBBB\n426783006,NSR\n164909002,LBBB\n")
    summary = run_npy(
        root, tmp_path / "out", labels_csv=str(table), labels_map=str(mapping), labels_map_columns=("snomed", "class")
    )
    report = summary["labels"]["csv"]
    assert report["kind"] == "codes" and report["unknown_codes"] == {"999": 1}
    assert report["records_without_label"] == 1 and report["records_without_label_dropped"] == 1
    assert summary["excluded_records"] == {"r3": "no_label"}
    assert summary["labels"]["names"] == ["AF", "NSR", "RBBB"]
    labels = mat_labels(tmp_path / "out")
    np.testing.assert_array_equal(labels["r1"], [1, 0, 1])
    np.testing.assert_array_equal(labels["r2"], [0, 1, 0])
    np.testing.assert_array_equal(labels["r4"], [1, 1, 0])
    table_set = run_npy(root, tmp_path / "out_table", labels_csv=str(table), labels_map=str(mapping), label_set="table")
    assert table_set["labels"]["names"] == ["AF", "LBBB", "NSR", "RBBB"]  # every map class (columns 0 and 1)


def test_patient_and_split_columns_give_patient_level_splits(tmp_path: Path) -> None:
    root = make_npy_records(tmp_path / "in", ["r1", "r2", "r3", "r4", "r5"])
    table = tmp_path / "labels.csv"
    table.write_text(
        "record,label,subject_id,split\nr1,N,p1,train\nr2,N,p1,train\nr3,AF,p2,val\nr4,AF,p3,test\nr5,N,p4,\nr1,AF,p9,test\n"
    )
    summary = run_npy(root, tmp_path / "out", labels_csv=str(table), labels_split_column="split")
    report = summary["labels"]["csv"]
    assert summary["options"]["split"] == "column"
    assert report["patient_column"] == "subject_id" and report["duplicate_rows"] == 1
    assert report["records_without_split"] == 1 and summary["excluded_records"] == {"r5": "no_split_in_labels_csv"}
    assert {s: c["records"] for s, c in summary["splits"].items()} == {"train": 2, "valid": 1, "test": 1}
    assert summary["splits"]["train"]["patients"] == 1  # r1 and r2 are patient p1
    table.write_text("record,label,patient,fold\nr1,N,p1,1\nr2,N,p1,10\n")
    with pytest.raises(SplitError, match="p1"):
        run_npy(root, tmp_path / "out2", labels_csv=str(table), labels_split_column="fold")


def test_wfdb_records_with_a_reference_csv(tmp_path: Path) -> None:
    """Another input format: LUDB WFDB records, labels from the CSV instead of their header rhythms."""
    root = tmp_path / "ludb"
    root.mkdir()
    for path in SAMPLE.glob("ludb/[12].*"):
        shutil.copy(path, root / path.name)
    (root / "REFERENCE.csv").write_text("Recording,Label\n1,Normal\n2,Other\n")
    config = PreprocessConfig(
        input=str(root),
        output=str(tmp_path / "out"),
        labels_csv="{input}/REFERENCE.csv",
        labels_record_column="Recording",
        window_seconds=10.0,
        workers=1,
        progress=False,
    )
    summary = run(config)
    assert summary["format"] == "ludb" and summary["labels"]["names"] == ["Normal", "Other"]
    labels = mat_labels(tmp_path / "out")
    assert {r: int(v[0]) for r, v in labels.items()} == {"1": 0, "2": 1}
    assert json.loads((tmp_path / "out" / "preprocess.json").read_text())["labels"]["csv"]["records_labelled"] == 2
