from pathlib import Path

import numpy as np
import pytest

from physioclr_ext.preprocess.readers import RecordRef, assign_ids, detect_format, discover, natural_key, read_record

SAMPLE = Path(__file__).resolve().parents[2] / "data" / "sample"


@pytest.mark.parametrize("folder, fmt", [("mitdb", "mitdb"), ("ludb", "ludb"), ("physionet2021", "physionet2021")])
def test_detect_format_of_samples(folder, fmt):
    assert detect_format(SAMPLE / folder) == fmt


def test_mitdb_patients_merge_201_202(tmp_path):
    for record in ("201", "202", "100"):
        (tmp_path / f"{record}.hea").write_text(f"{record} 1 360 10\n")
    refs = discover(tmp_path, "mitdb")
    assert [(r.record_id, r.patient) for r in refs] == [("100", "100"), ("201", "201"), ("202", "201")]
    assert [r.patient for r in discover(tmp_path, "mitdb", merge_same_subject=False)] == ["100", "201", "202"]


def test_ludb_labels_from_header_and_csv():
    refs = {r.record_id: r for r in discover(SAMPLE / "ludb", "ludb")}
    assert [r.record_id for r in refs.values()] == [str(i) for i in range(1, 9)]
    assert refs["1"].labels == ("Sinus bradycardia",)
    assert all(r.labels for r in refs.values())


def test_physionet2021_labels_and_signal_in_mv():
    refs = {r.record_id: r for r in discover(SAMPLE / "physionet2021", "physionet2021")}
    assert refs["A0001"].labels == ("RBBB",) and refs["A0002"].labels == ("NSR",)
    record = read_record(refs["A0001"], with_beats=False)
    assert record.signal.shape == (12, 7500) and record.fs == 500
    assert 0.05 < np.nanstd(record.signal) < 5  # mV, not ADC units


def test_mitdb_reader_returns_sorted_beats():
    ref = RecordRef("106", str(SAMPLE / "mitdb" / "106"), "mitdb", "106")
    record = read_record(ref, with_beats=True)
    assert record.signal.shape == (2, 650000) and record.lead_names == ["MLII", "V1"]
    assert len(record.beat_samples) == len(record.beat_symbols) > 2000
    assert np.all(np.diff(record.beat_samples) >= 0)


def test_ids_are_sanitised_and_unique(tmp_path):
    paths = [tmp_path / "a" / "x y.hea", tmp_path / "b" / "x y.hea", tmp_path / "c" / "z.hea"]
    ids = assign_ids(paths, tmp_path)
    assert ids == ["a_x_y", "b_x_y", "z"]
    assert sorted(["10", "2", "1"], key=natural_key) == ["1", "2", "10"]


def test_npy_layouts(tmp_path):
    (tmp_path / "samples").mkdir()
    np.save(tmp_path / "samples" / "s1.npy", np.zeros((12, 100)))
    assert detect_format(tmp_path) == "npy_samples"
    ref = discover(tmp_path, "npy_samples")[0]
    record = read_record(ref, False, npy_fs=100.0)
    assert record.signal.shape == (12, 100) and record.lead_names[1] == "II"
    with pytest.raises(ValueError):
        read_record(ref, False, npy_fs=100.0, npy_leads=["I", "II"])
    classes = tmp_path / "cls"
    for name in ("afib", "normal"):
        (classes / name).mkdir(parents=True)
        np.save(classes / name / "1.npy", np.zeros((2, 50)))
    assert detect_format(classes) == "npy_classes"
    assert [(r.record_id, r.labels) for r in discover(classes, "npy_classes")] == [
        ("afib_1", ("afib",)),
        ("normal_1", ("normal",)),
    ]
