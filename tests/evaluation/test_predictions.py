"""Joining inference outputs with a manifest."""

import csv
import json

import numpy as np
import pytest
import scipy.io

from physioclr_ext.evaluation.predictions import Manifest, write_predictions


def _write_windows(tmp_path, labels):
    (tmp_path / "mat").mkdir()
    lines = [str(tmp_path)]
    for i, lab in enumerate(labels):
        rel = f"mat/rec{i // 2}_{i % 2}.mat"
        scipy.io.savemat(
            tmp_path / rel,
            {
                "feats": np.zeros((12, 10), np.float32),
                "curr_sample_rate": 500,
                "label": np.array([lab], np.float32),
                "idx": i // 2,
                "patient_id": i // 4,
            },
        )
        lines.append(f"{rel}\t10")
    (tmp_path / "test.tsv").write_text("\n".join(lines) + "\n")
    return tmp_path / "test.tsv"


def test_binary_predictions_csv_and_json(tmp_path):
    manifest = _write_windows(tmp_path, [[0], [1], [1], [0]])
    logits = np.array([[-2.0], [3.0], [-1.0], [-4.0]], np.float32)
    np.save(tmp_path / "outputs_test.npy", logits)
    report = write_predictions(str(tmp_path / "outputs_test.npy"), str(manifest), str(tmp_path / "out"))
    assert report["task"] == "binary"
    assert report["n_windows"] == 4 and report["n_records"] == 2 and report["n_patients"] == 1
    assert report["metrics"]["accuracy"] == pytest.approx(3 / 4)
    assert report["metrics"]["auroc"] == pytest.approx(1.0)
    rows = list(csv.DictReader(open(tmp_path / "out" / "predictions_test.csv")))
    assert [r["path"] for r in rows] == Manifest.read(str(manifest)).paths
    assert [int(r["pred"]) for r in rows] == [0, 1, 0, 0]
    assert float(rows[1]["prob"]) == pytest.approx(1 / (1 + np.exp(-3.0)), abs=1e-6)
    saved = json.load(open(tmp_path / "out" / "metrics_test.json"))
    assert saved["metrics"] == report["metrics"]


def test_row_count_mismatch_is_an_error(tmp_path):
    manifest = _write_windows(tmp_path, [[0], [1]])
    np.save(tmp_path / "o.npy", np.zeros((3, 1), np.float32))
    with pytest.raises(ValueError, match="3 rows"):
        write_predictions(str(tmp_path / "o.npy"), str(manifest), str(tmp_path / "out"))


def test_undefined_auc_is_null_in_json(tmp_path):
    manifest = _write_windows(tmp_path, [[1], [1]])
    np.save(tmp_path / "o.npy", np.array([[1.0], [2.0]], np.float32))
    report = write_predictions(str(tmp_path / "o.npy"), str(manifest), str(tmp_path / "out"))
    assert report["metrics"]["auroc"] is None
    assert json.load(open(tmp_path / "out" / "metrics_test.json"))["metrics"]["auroc"] is None
