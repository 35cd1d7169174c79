"""`python -m physioclr_ext.evaluation` subcommands on the demo's checkpoints, for real:
fairseq-signals' built-in wav2vec2 (pretrained) and ecg_transformer_classifier (fine-tuned)."""

import json
import sys

import numpy as np
import pytest

from physioclr_ext.evaluation.embeddings import Embeddings
from physioclr_ext.evaluation.predictions import Manifest

from ._util import run

METRICS = {"accuracy", "balanced_accuracy", "macro_f1", "auroc", "auprc"}
TINY = [
    "--override",
    "optimization.max_update=4",
    "--override",
    "dataset.validate_interval_updates=2",
    "--override",
    "checkpoint.save_interval_updates=2",
    "--override",
    "dataset.batch_size=8",
]


def evaluation(*args):
    return run([sys.executable, "-m", "physioclr_ext.evaluation", *map(str, args)])


def _check_results(path, settings):
    saved = json.load(open(path / "results.json"))
    assert set(saved["results"]) == set(settings)
    for cell in saved["results"].values():
        assert set(cell) == METRICS
        # t intervals clipped to [0, 1] keep their unclipped bounds (issue 15)
        unclipped = {"ci_low_unclipped", "ci_high_unclipped"}
        assert all(set(v) - unclipped == {"mean", "ci_low", "ci_high", "values"} for v in cell.values())
    for key in ("command", "seeds", "split", "checkpoint", "checkpoint_sha256"):
        assert key in saved["meta"]
    return saved


@pytest.fixture(scope="module", params=["pretrain/checkpoint_last.pt", "finetune/checkpoint_best.pt"])
def embedded(request, demo_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("emb")
    evaluation("embed", "--checkpoint", demo_dir / request.param, "--data", demo_dir / "data/mitdb", "--out", out)
    return out, demo_dir / "data/mitdb"


def test_embed_writes_one_row_per_window_with_ids_and_labels(embedded):
    out, data = embedded
    for subset in ("train", "valid", "test"):
        emb = Embeddings.load(str(out), subset)
        manifest = Manifest.read(str(data / f"{subset}.tsv"))
        assert emb.x.shape == (len(manifest), 64) and np.isfinite(emb.x).all()
        assert list(emb.paths) == manifest.paths
        assert emb.x.std(axis=0).mean() > 0
    assert len(json.load(open(out / "embed.json"))["checkpoint_sha256"]) == 64


def test_probes_and_clustering_on_embeddings(embedded, tmp_path):
    out, _ = embedded
    evaluation("linear-probe", "--embeddings", out, "--out", tmp_path / "lp", "--n-train", 20, "--seeds", 0, 1, 2)
    lp = _check_results(tmp_path / "lp", ["n=20"])
    assert len(lp["results"]["n=20"]["accuracy"]["values"]) == 3
    evaluation("knn", "--embeddings", out, "--out", tmp_path / "knn", "--k", 5)
    _check_results(tmp_path / "knn", ["n=all"])
    evaluation("cluster", "--embeddings", out, "--out", tmp_path / "cl")
    assert (tmp_path / "cl" / "projection_test.png").stat().st_size > 1000


@pytest.mark.slow
def test_few_shot_runs_pretrained_and_scratch_through_the_trainer(demo_dir, tmp_path):
    evaluation(
        "few-shot",
        "--data",
        demo_dir / "data/mitdb",
        "--checkpoint",
        demo_dir / "pretrain/checkpoint_last.pt",
        "--out",
        tmp_path,
        "--n",
        6,
        "--seeds",
        0,
        1,
        "--balanced",
        *TINY,
    )
    saved = _check_results(tmp_path, ["n=6/pretrained", "n=6/scratch"])
    assert saved["meta"]["seeds"] == [0, 1]
    for seed in (0, 1):
        run_json = json.load(open(tmp_path / "n6" / f"seed{seed}" / "pretrained" / "metrics.json"))
        assert run_json["train_windows"] == 12  # 6 per class, two classes
        lines = (tmp_path / "n6" / f"seed{seed}" / "pretrained" / "data" / "train.tsv").read_text().splitlines()
        assert len(lines) == 1 + 12


@pytest.mark.slow
def test_repeated_pretrains_on_training_patients_only(demo_dir, tmp_path):
    evaluation(
        "repeated",
        "--data",
        demo_dir / "data/mitdb",
        "--out",
        tmp_path,
        "--repeats",
        2,
        "--fractions",
        0.6,
        0.2,
        0.2,
        "--pretrain-config",
        "wav2vec2_tiny",
        "--pretrain-override",
        "optimization.max_update=2",
        *TINY,
    )
    saved = _check_results(tmp_path, ["repeated"])
    assert saved["meta"]["pretrained_on_train_patients_only"] is True
    for r in (0, 1):
        record = json.load(open(tmp_path / f"repeat{r}" / "metrics.json"))
        train, valid, test = (set(record["patients"][k]) for k in ("train", "valid", "test"))
        assert train and valid and test and not (train & valid) and not (train & test) and not (valid & test)
        pre = (tmp_path / f"repeat{r}" / "data" / "train.tsv").read_text()
        assert "checkpoint_last.pt" in record["checkpoint"] and pre.count("\n") > 1


@pytest.mark.slow
def test_scripts_expose_the_protocols(demo_dir, tmp_path):
    from ._util import REPO

    env = {"PHYSIOCLR_DEMO_DIR": str(demo_dir)}
    data, pre = demo_dir / "data/mitdb", demo_dir / "pretrain/checkpoint_last.pt"
    run(
        [
            "bash",
            str(REPO / "inference_ecg.sh"),
            "--data",
            str(data),
            "--checkpoint",
            str(pre),
            "--embed",
            "--out",
            str(tmp_path / "inf"),
        ],
        env=env,
    )
    assert not (tmp_path / "inf" / "predictions_test.csv").exists()  # a pretrained model: embeddings only
    _check_results(tmp_path / "inf" / "linear_probe", ["n=all"])
    assert (tmp_path / "inf" / "cluster" / "projection_test.png").exists()
    run(
        [
            "bash",
            str(REPO / "finetuning_ecg.sh"),
            "--data",
            str(data),
            "--checkpoint",
            str(pre),
            "--few-shot",
            "4",
            "--seeds",
            "0 1",
            "--out",
            str(tmp_path / "fs"),
            "--",
            "optimization.max_update=2",
            "dataset.validate_interval_updates=2",
            "checkpoint.save_interval_updates=2",
        ],
        env=env,
    )
    _check_results(tmp_path / "fs", ["n=4/pretrained", "n=4/scratch"])
