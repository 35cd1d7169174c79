import pandas as pd
import pytest

from physioclr_ext.preprocess import PreprocessConfig
from physioclr_ext.preprocess.pipeline import make_plan
from physioclr_ext.preprocess.readers import MITDB_SAME_SUBJECT, RecordRef
from physioclr_ext.preprocess.splits import (
    MITBIH_DS1,
    MITBIH_DS2,
    MITBIH_PACED,
    SplitError,
    mitbih_ds1ds2_split,
    random_patient_split,
    read_split_file,
    verify_disjoint,
)


def _patients(n=50):
    return [f"p{i}" for i in range(n)]


def test_random_split_sizes_reproducible_and_seed_dependent():
    a = random_patient_split(_patients(), (0.8, 0.1, 0.1), seed=0)
    assert sorted(a) == sorted(_patients())
    assert [list(a.values()).count(s) for s in ("train", "valid", "test")] == [40, 5, 5]
    assert random_patient_split(list(reversed(_patients())), (0.8, 0.1, 0.1), seed=0) == a
    assert random_patient_split(_patients(), (0.8, 0.1, 0.1), seed=1) != a


def test_random_split_is_patient_level_in_plan(tmp_path):
    refs = [RecordRef(f"r{i}", "", "wfdb", f"p{i // 3}") for i in range(30)]
    plan = make_plan(refs, PreprocessConfig(input=".", output=".", seed=3))
    by_patient = {}
    for ref in refs:
        by_patient.setdefault(ref.patient, set()).add(plan.assignment[ref.record_id])
    assert all(len(s) == 1 for s in by_patient.values())


def _mitdb_patients(merge=True):
    records = MITBIH_DS1 + MITBIH_DS2 + MITBIH_PACED
    return {r: (MITDB_SAME_SUBJECT.get(r, r) if merge else r) for r in records}


def test_ds1ds2_contents_and_202_dropped():
    record_patient = _mitdb_patients()
    assignment, excluded, dropped = mitbih_ds1ds2_split(record_patient, 0.2, seed=0, merge_same_subject=True)
    assert {r for r, s in assignment.items() if s in ("train", "valid")} == set(MITBIH_DS1)
    assert {r for r, s in assignment.items() if s == "test"} == set(MITBIH_DS2) - {"202"}
    assert dropped == ["202"] and excluded["202"] == "dropped_for_patient_overlap"
    assert all(excluded[r] == "paced" for r in MITBIH_PACED)
    assert sum(s == "valid" for s in assignment.values()) == round(0.2 * 22)
    verify_disjoint(assignment, record_patient)
    again, _, _ = mitbih_ds1ds2_split(record_patient, 0.2, seed=0, merge_same_subject=True)
    other, _, _ = mitbih_ds1ds2_split(record_patient, 0.2, seed=5, merge_same_subject=True)
    assert again == assignment and other != assignment


def test_ds1ds2_keep_202_separate_keeps_it_in_test():
    assignment, _excluded, dropped = mitbih_ds1ds2_split(_mitdb_patients(False), 0.0, 0, False)
    assert assignment["202"] == "test" and assignment["201"] == "train" and dropped == []


def test_verify_disjoint_names_the_patient():
    with pytest.raises(SplitError, match="201"):
        verify_disjoint({"201": "train", "202": "test"}, {"201": "201", "202": "201"})


def test_split_file_violating_patient_disjointness_raises(tmp_path):
    path = tmp_path / "split.csv"
    pd.DataFrame({"record": ["201", "202", "100"], "split": ["train", "test", "valid"]}).to_csv(path, index=False)
    refs = [RecordRef(r, "", "mitdb", MITDB_SAME_SUBJECT.get(r, r)) for r in ("100", "201", "202")]
    with pytest.raises(SplitError, match="201"):
        make_plan(refs, PreprocessConfig(input=".", output=".", split_file=str(path)))


def test_split_file_by_patient_and_unlisted_records_excluded(tmp_path):
    path = tmp_path / "split.csv"
    pd.DataFrame({"patient": ["201", "100", "999"], "split": ["valid", "test", "train"]}).to_csv(path, index=False)
    record_patient = {"100": "100", "201": "201", "202": "201", "203": "203"}
    assignment, unmatched = read_split_file(path, record_patient)
    assert assignment == {"100": "test", "201": "valid", "202": "valid"} and unmatched == ["999"]
    bad = tmp_path / "bad.csv"
    pd.DataFrame({"record": ["100"], "split": ["training"]}).to_csv(bad, index=False)
    with pytest.raises(SplitError, match="training"):
        read_split_file(bad, record_patient)
