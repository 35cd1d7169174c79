"""Labelled datasets through the four scripts (issue 16): a WFDB folder with a CinC 2017 REFERENCE-style
CSV (no header, one class per record: multiclass), a PhysioNet 2021 folder with a multi-hot CSV (patient
and split columns: multilabel) and the PTB-XL fixture (``--preset ptbxl``, superdiagnostic: multilabel).

Each is preprocessed by ``preprocess_ecg.sh``; its windows, manifests and ``label_def.csv`` counts are
checked against labels read from the CSV here. Then one tiny contrastive CNN, pretrained once on the
REFERENCE data, is fine-tuned on each by ``finetuning_ecg.sh --tiny`` and predicts its test split with
``inference_ecg.sh``: the classifier has one output per label and the metrics name them.
"""

from __future__ import annotations

import ast
import csv
import json
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import scipy.io
import torch

from physioclr_ext.evaluation.predictions import Manifest

from ._util import REPO, run

SAMPLE = REPO / "data" / "sample"
PTBXL = REPO / "tests" / "fixtures" / "ptbxl_small"
SPLITS = ("train", "valid", "test")

# CinC 2017's REFERENCE.csv layout (record,class; no header) for the LUDB sample records 1-8, plus a row
# for a record that is not on disk (counted, not processed).
REFERENCE = "1,N\n2,AF\n3,N\n4,O\n5,AF\n6,N\n7,O\n8,N\n9,AF\n"
# Several 0/1 columns with a patient and a split column, for the PhysioNet 2021 sample records.
MULTIHOT = """Recording,AF,PVC,RBBB,subject,split
A0001,1,0,1,s1,train
A0002,0,1,0,s2,train
E00001,1,1,0,s3,train
E00002,0,0,1,s4,train
HR00001,1,0,0,s5,valid
HR00002,0,1,1,s6,valid
JS00001,1,0,1,s7,test
JS00002,0,1,0,s8,test
"""


@dataclass
class Labelled:
    """A preprocessed labelled dataset and the labels its CSV gives (record -> label names)."""

    out: Path
    scheme: str
    names: list[str]
    expected: dict[str, set[str]]


def _preprocess(root: Path, out: Path, *options: str) -> None:
    run(["bash", str(REPO / "preprocess_ecg.sh"), "--input", str(root), "--output", str(out), *options])


def _reference(base: Path) -> Labelled:
    root = base / "cinc_style"
    root.mkdir()
    for path in SAMPLE.glob("ludb/[1-8].*"):
        shutil.copy(path, root / path.name)
    (root / "REFERENCE.csv").write_text(REFERENCE)
    _preprocess(
        root, base / "reference_out", "--method", "contrastive_cnn", "--", "--labels", str(root / "REFERENCE.csv")
    )
    rows = [line.split(",") for line in REFERENCE.split()]
    expected = {record: {label} for record, label in rows if record != "9"}
    return Labelled(base / "reference_out", "multiclass", ["AF", "N", "O"], expected)


def _multihot(base: Path) -> Labelled:
    root = base / "pn2021"
    shutil.copytree(SAMPLE / "physionet2021", root)
    (root / "labels.csv").write_text(MULTIHOT)
    options = ["--labels", str(root / "labels.csv"), "--labels-column", "AF", "PVC", "RBBB"]
    options += ["--patient-column", "subject", "--split-column", "split"]
    _preprocess(root, base / "multihot_out", "--method", "contrastive_cnn", "--", *options)
    names = ["AF", "PVC", "RBBB"]
    expected = {row["Recording"]: {n for n in names if row[n] == "1"} for row in csv.DictReader(MULTIHOT.splitlines())}
    return Labelled(base / "multihot_out", "multilabel", names, expected)


def _ptbxl(base: Path) -> Labelled:
    _preprocess(PTBXL, base / "ptbxl_out", "--preset", "ptbxl", "--method", "contrastive_cnn")
    with open(PTBXL / "scp_statements.csv") as fh:
        classes = {row[""]: row["diagnostic_class"] for row in csv.DictReader(fh) if row["diagnostic"] == "1.0"}
    expected = {}
    with open(PTBXL / "ptbxl_database.csv") as fh:
        for row in csv.DictReader(fh):
            record = Path(row["filename_hr"]).name
            if (PTBXL / f"{row['filename_hr']}.hea").exists():  # rows 1 and 2 name records not in the fixture
                expected[record] = {classes[c] for c in ast.literal_eval(row["scp_codes"]) if c in classes}
    return Labelled(base / "ptbxl_out", "multilabel", ["CD", "HYP", "MI", "NORM", "STTC"], expected)


BUILDERS = {"reference": _reference, "multihot": _multihot, "ptbxl": _ptbxl}


@pytest.fixture(scope="module")
def labelled(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Labelled]:
    base = tmp_path_factory.mktemp("labelled")
    return {name: build(base) for name, build in BUILDERS.items()}


@pytest.fixture(scope="module")
def pretrained(labelled: dict[str, Labelled], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny contrastive CNN, two updates on the REFERENCE windows (12 leads, 500 Hz, 5 s)."""
    out = tmp_path_factory.mktemp("labelled_pretrain")
    script = ["bash", str(REPO / "pre-training_ecg.sh"), "--method", "contrastive_cnn", "--tiny"]
    run([*script, "--data", str(labelled["reference"].out), "--out", str(out), "--", "optimization.max_update=2"])
    return out / "checkpoint_last.pt"


def _windows(out: Path) -> list[dict[str, str]]:
    with open(out / "windows.csv") as fh:
        return list(csv.DictReader(fh))


@pytest.mark.parametrize("name", BUILDERS)
def test_manifests_and_label_counts_follow_the_csv(labelled: dict[str, Labelled], name: str) -> None:
    data = labelled[name]
    summary = json.loads((data.out / "preprocess.json").read_text())
    assert summary["labels"]["scheme"] == data.scheme and summary["labels"]["names"] == data.names
    windows = _windows(data.out)
    assert {w["record"] for w in windows} == set(data.expected)
    for split in SPLITS:  # every window in exactly one manifest, as windows.csv places it
        in_split = [w["path"] for w in windows if w["split"] == split]
        assert in_split and Manifest.read(str(data.out / f"{split}.tsv")).paths == in_split
    with open(data.out / "label_def.csv") as fh:
        label_def = {row["name"]: row for row in csv.DictReader(fh)}
    assert list(label_def) == data.names
    for label in data.names:
        for split in SPLITS:
            has = [w for w in windows if w["split"] == split and label in data.expected[w["record"]]]
            assert int(label_def[label][split]) == len(has), (label, split)
            assert int(label_def[label][f"{split}_records"]) == len({w["record"] for w in has}), (label, split)
    for w in windows:  # the label as fairseq-signals reads it
        label = scipy.io.loadmat(data.out / w["path"])["label"].squeeze(0)
        if data.scheme == "multiclass":
            assert [data.names[int(label[0])]] == sorted(data.expected[w["record"]])
        else:
            assert {n for n, v in zip(data.names, label) if v} == data.expected[w["record"]]


def test_csv_splits_and_unmatched_rows_are_honoured(labelled: dict[str, Labelled]) -> None:
    reference = json.loads((labelled["reference"].out / "preprocess.json").read_text())["labels"]["csv"]
    assert reference["rows_without_record"] == 1 and reference["rows_without_record_examples"] == ["9"]
    multihot = {w["record"]: w["split"] for w in _windows(labelled["multihot"].out)}
    assert multihot == {row["Recording"]: row["split"] for row in csv.DictReader(MULTIHOT.splitlines())}
    with open(PTBXL / "ptbxl_database.csv") as fh:
        folds = {Path(r["filename_hr"]).name: int(r["strat_fold"]) for r in csv.DictReader(fh)}
    for w in _windows(labelled["ptbxl"].out):
        fold = folds[w["record"]]
        assert w["split"] == ("train" if fold <= 8 else "valid" if fold == 9 else "test")


def _predictions(path: Path) -> list[dict[str, str]]:
    with open(path) as fh:
        return list(csv.DictReader(fh))


@pytest.mark.parametrize(
    "name",
    # slow: about 90 s each on 2 cores (a tiny pretraining, fine-tuning and inference through the scripts)
    [pytest.param(name, marks=pytest.mark.slow) for name in ("reference", "multihot", "ptbxl")],
)
def test_finetune_and_predict_end_to_end(
    labelled: dict[str, Labelled], pretrained: Path, tmp_path: Path, name: str
) -> None:
    """REFERENCE labels are class indices: finetuning_ecg.sh takes the cross-entropy config for them (its
    default BCE head used to fail on them: target (B,) against logits (B, 3))."""
    data, k = labelled[name], len(labelled[name].names)
    ft, inf = tmp_path / "ft", tmp_path / "inf"
    run(
        ["bash", str(REPO / "finetuning_ecg.sh"), "--tiny", "--data", str(data.out), "--checkpoint", str(pretrained)]
        + ["--out", str(ft), "--", "optimization.max_update=2"]
    )
    state = torch.load(ft / "checkpoint_best.pt", map_location="cpu", weights_only=False)
    assert state["cfg"]["model"]["num_labels"] == k and state["model"]["head.weight"].shape[0] == k
    criterion = state["cfg"]["criterion"]
    if data.scheme == "multiclass":
        assert criterion["_name"] == "cross_entropy"
    else:
        assert criterion["_name"] == "binary_cross_entropy_with_logits"
        weights = json.loads((data.out / "pos_weight.txt").read_text())
        assert len(weights) == k and list(criterion["pos_weight"]) == pytest.approx(weights)
    run(
        [
            "bash",
            str(REPO / "inference_ecg.sh"),
            "--data",
            str(data.out),
            "--checkpoint",
            str(ft / "checkpoint_best.pt"),
        ]
        + ["--out", str(inf)]
    )
    metrics = json.loads((inf / "metrics_test.json").read_text())
    manifest = Manifest.read(str(data.out / "test.tsv"))
    assert metrics["task"] == data.scheme and metrics["labels"] == data.names
    assert metrics["n_windows"] == len(manifest)
    rows = _predictions(inf / "predictions_test.csv")
    assert [r["path"] for r in rows] == manifest.paths
    record = {w["path"]: w["record"] for w in _windows(data.out)}
    for row in rows:
        probs = np.array([float(row[f"prob_{n}"]) for n in data.names])
        assert ((probs >= 0) & (probs <= 1)).all()
        truth = data.expected[record[row["path"]]]
        if data.scheme == "multiclass":
            assert probs.sum() == pytest.approx(1.0, abs=1e-4)
            assert data.names[int(row["true"])] in truth
            assert probs[int(row["pred"])] >= probs.max() - 1e-6  # the argmax (probabilities are rounded)
        else:
            assert {n for n in data.names if row[f"true_{n}"] == "1"} == truth
