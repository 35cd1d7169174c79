"""Pure parts of the fine-tuning protocols (the runs themselves are in tests/integration)."""

import os

import numpy as np
import pytest
import scipy.io

from physioclr_ext.evaluation.predictions import Manifest
from physioclr_ext.runners.finetune_runs import SCHEDULE_DEFAULTS, Windows, merge_overrides, pos_weight, write_data_dir


def test_merge_overrides_later_groups_win_and_plus_is_kept():
    merged = merge_overrides({"a.b": "1", "c": "2"}, ["+model.x=3", "a.b=4"], ["model.x=5"])
    assert merged == ["c=2", "a.b=4", "model.x=5"]
    assert len(merge_overrides(SCHEDULE_DEFAULTS)) == len(SCHEDULE_DEFAULTS)


def test_pos_weight_is_negatives_over_positives():
    labels = np.array([[1, 0], [0, 0], [0, 0], [1, 0]], float)
    assert pos_weight(labels) == [1.0, 1.0]
    assert pos_weight(np.array([[1], [0], [0], [0]], float)) == [3.0]


def _windows(tmp_path, n=6):
    (tmp_path / "mat").mkdir()
    rows = {"train": [], "valid": [], "test": []}
    for i in range(n):
        rel = f"mat/r{i}_0.mat"
        scipy.io.savemat(
            tmp_path / rel,
            {
                "feats": np.zeros((1, 8), np.float32),
                "curr_sample_rate": 360,
                "label": np.array([[i % 2]], np.float32),
                "idx": i,
                "patient_id": i // 2,
            },
        )
        rows[("train", "train", "valid", "valid", "test", "test")[i]].append(f"{rel}\t8")
    for split, lines in rows.items():
        (tmp_path / f"{split}.tsv").write_text("\n".join([str(tmp_path)] + lines) + "\n")


def test_windows_read_and_subset_manifests(tmp_path):
    _windows(tmp_path)
    w = Windows.read(str(tmp_path))
    assert w.paths == [f"mat/r{i}_0.mat" for i in range(6)]
    assert w.split.tolist() == ["train", "train", "valid", "valid", "test", "test"]
    assert w.patients.tolist() == [0, 0, 1, 1, 2, 2] and w.labels[:, 0].tolist() == [0, 1, 0, 1, 0, 1]
    dest = write_data_dir(str(tmp_path / "sub"), w.root, {"train": w.subset_paths(np.array([1]))}, w.sizes)
    m = Manifest.read(f"{dest}/train.tsv")
    assert m.root == str(tmp_path) and m.paths == ["mat/r1_0.mat"] and m.sizes == [8]


def test_windows_refuse_mixed_roots(tmp_path):
    _windows(tmp_path)
    text = (tmp_path / "test.tsv").read_text().split("\n", 1)
    (tmp_path / "test.tsv").write_text("/elsewhere\n" + text[1])
    with pytest.raises(ValueError, match="one root"):
        Windows.read(str(tmp_path))


def test_repo_configs_is_the_repository_config_folder():
    from physioclr_ext.runners.finetune_runs import REPO_CONFIGS

    for stage, name in (("pretraining", "physioclr_tiny"), ("finetuning", "ecg_ssl_classifier_tiny")):
        assert os.path.isfile(os.path.join(REPO_CONFIGS, stage, f"{name}.yaml"))


def test_few_shot_head_init_needs_the_scratch_arms_checkpoint(tmp_path):
    from physioclr_ext.runners.finetune_runs import TrainSpec, few_shot

    with pytest.raises(ValueError, match="scratch_checkpoint"):
        few_shot(str(tmp_path), "pt.pt", str(tmp_path / "o"), [2], [0], TrainSpec(), head_init=True)


def test_finished_runs_are_reused_only_with_the_same_start(tmp_path):
    from physioclr_ext.runners.finetune_runs import _check_same_start

    plain, lpft = {"n": 2}, {"n": 2, "head_init": {"best_C": 1.0}, "scratch_checkpoint": "/r.pt"}
    _check_same_start(plain, "run", False, None)
    _check_same_start(lpft, "run", True, "/r.pt")
    for record, head, scratch in ((plain, True, None), (plain, False, "/r.pt"), (lpft, True, "/other.pt")):
        with pytest.raises(ValueError, match="run/metrics.json: a finished run"):
            _check_same_start(record, "run", head, scratch)


def test_probe_targets_follow_the_head_width(tmp_path):
    from physioclr_ext.runners.finetune_runs import _probe_targets

    _windows(tmp_path)
    (y_train, y_valid), task = _probe_targets(str(tmp_path), 1)
    assert task == "binary" and y_train.tolist() == [0, 1] and y_valid.tolist() == [0, 1]
    (y_train, _), task = _probe_targets(str(tmp_path), 3)
    assert task == "multiclass" and y_train.dtype == np.int64


def test_head_init_override_appends_the_key_and_needs_ecg_ssl_classifier(tmp_path):
    from physioclr_ext.runners.finetune_runs import REPO_CONFIGS, head_init_override

    ours = os.path.join(REPO_CONFIGS, "finetuning", "ecg_ssl_classifier_tiny.yaml")
    assert head_init_override(ours, "/r/h.npz") == "+model.head_init=/r/h.npz"
    listed = tmp_path / "listed.yaml"
    listed.write_text("model:\n  _name: ecg_ssl_classifier\n  head_init: null\n")
    assert head_init_override(str(listed), "/r/h.npz") == "model.head_init=/r/h.npz"
    theirs = os.path.join(REPO_CONFIGS, "finetuning", "ecg_transformer_classifier_tiny.yaml")
    with pytest.raises(ValueError, match="needs the ecg_ssl_classifier model.*ecg_transformer_classifier"):
        head_init_override(theirs, "/r/h.npz")


def test_check_head_init_model_returns_the_model_section_or_refuses():
    from physioclr_ext.runners.finetune_runs import REPO_CONFIGS, check_head_init_model

    ours = os.path.join(REPO_CONFIGS, "finetuning", "ecg_ssl_classifier_tiny.yaml")
    assert check_head_init_model(ours)["_name"] == "ecg_ssl_classifier"
    theirs = os.path.join(REPO_CONFIGS, "finetuning", "ecg_transformer_classifier_tiny.yaml")
    with pytest.raises(ValueError, match="ecg_transformer_classifier"):
        check_head_init_model(theirs)
