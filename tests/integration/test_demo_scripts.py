"""The README's demo: the four scripts, no arguments, on the bundled sample, for real."""

import csv
import json

import numpy as np
import scipy.io

from physioclr_ext.evaluation.predictions import Manifest


def test_preprocess_writes_patient_disjoint_manifests(demo_dir):
    data = demo_dir / "data" / "mitdb"
    patients = {}
    for split in ("train", "valid", "test"):
        manifest = Manifest.read(str(data / f"{split}.tsv"))
        assert len(manifest) > 0
        patients[split] = {int(scipy.io.loadmat(data / p)["patient_id"].item()) for p in manifest.paths[::40]}
    assert not (patients["train"] & patients["valid"]) and not (patients["train"] & patients["test"])
    assert (demo_dir / "data" / "ludb" / "train.tsv").exists()


def test_pretraining_and_finetuning_write_checkpoints(demo_dir):
    assert (demo_dir / "pretrain" / "checkpoint_last.pt").stat().st_size > 0
    assert (demo_dir / "finetune" / "checkpoint_best.pt").stat().st_size > 0
    log = (demo_dir / "finetuning_ecg.sh.log").read_text()
    assert "fine-tuned checkpoint:" in log


def test_inference_writes_one_prediction_per_test_window(demo_dir):
    data = demo_dir / "data" / "mitdb"
    manifest = Manifest.read(str(data / "test.tsv"))
    rows = list(csv.DictReader(open(demo_dir / "inference" / "predictions_test.csv")))
    assert [r["path"] for r in rows] == manifest.paths
    for row in rows[:20]:
        label = scipy.io.loadmat(data / row["path"])["label"].item()
        assert int(row["true"]) == int(label)
        assert 0.0 <= float(row["prob"]) <= 1.0 and int(row["pred"]) == int(float(row["prob"]) >= 0.5)
    metrics = json.load(open(demo_dir / "inference" / "metrics_test.json"))
    assert metrics["task"] == "binary" and metrics["n_windows"] == len(manifest)
    assert set(metrics["metrics"]) == {"accuracy", "balanced_accuracy", "macro_f1", "auroc", "auprc"}
    probs = np.array([float(r["prob"]) for r in rows])
    assert probs.std() > 0, "the fine-tuned model predicts a constant"


def test_validate_console_script_agrees_with_inference_metrics(demo_dir):
    """physioclr-hydra-validate's own metrics on the test split equal those inference_ecg.sh wrote."""
    import re

    import torch

    from ._util import REPO, console_script, run

    out, ckpt = demo_dir / "validate", demo_dir / "finetune" / "checkpoint_best.pt"
    task = torch.load(ckpt, map_location="cpu", weights_only=False)["cfg"]["task"]
    assert task["leads_to_load"] == "[1]" and task["enable_padding_leads"]  # the demo fine-tunes on lead II only
    leads = [f"+task.leads_to_load='{task['leads_to_load']}'", "task.enable_padding_leads=true"]
    proc = run(
        [
            console_script("physioclr-hydra-validate"),
            "--config-dir",
            str(REPO / "configs/inference"),
            "--config-name",
            "classifier",
            f"task.data={demo_dir / 'data' / 'mitdb'}",
            f"common_eval.path={ckpt}",
            f"common_eval.results_path={out}",
            f"hydra.run.dir={out}",
            "dataset.valid_subset=test",
            *leads,
        ]
    )
    line = [ln for ln in (proc.stdout + proc.stderr).splitlines() if "valid on 'test' subset" in ln][-1]
    reported = {k: float(v) for k, v in re.findall(r"\| (accuracy|auroc|auprc) ([0-9.]+)", line)}
    ours = json.load(open(demo_dir / "inference" / "metrics_test.json"))["metrics"]
    for key in ("accuracy", "auroc", "auprc"):
        assert abs(reported[key] - ours[key]) < 1e-4, (key, reported[key], ours[key])


def _positives(data, split):
    """(positive windows, windows) of a demo split, from label_def.csv and the manifest."""
    row = next(csv.DictReader(open(data / "label_def.csv")))
    return int(row[split]), len(Manifest.read(str(data / f"{split}.tsv")))


def test_demo_held_out_patients_hold_both_classes(demo_dir):
    """Validation and test must score both classes: the old validation patient (208) was 98% arrhythmia."""
    data = demo_dir / "data" / "mitdb"
    for split in ("valid", "test"):
        pos, n = _positives(data, split)
        assert 0.2 <= pos / n <= 0.8, (split, pos, n)


def test_demo_classifier_beats_chance_on_the_test_patient(demo_dir):
    """Issue "Evidence that pretraining pays": the demo's classifier used to predict one class for all
    361 test windows (AUROC 0.505, balanced accuracy 0.50)."""
    import re

    metrics = json.load(open(demo_dir / "inference" / "metrics_test.json"))["metrics"]
    assert metrics["auroc"] >= 0.80, metrics
    assert metrics["balanced_accuracy"] >= 0.65, metrics
    printed = re.findall(r'"auroc": ([0-9.]+)', (demo_dir / "inference_ecg.sh.log").read_text())
    assert printed and abs(float(printed[-1]) - metrics["auroc"]) < 1e-9  # what the demo shows its user
