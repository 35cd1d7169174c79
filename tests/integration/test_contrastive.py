"""The contrastive family through the real fairseq-signals trainer: every encoder with NT-Xent,
every CLOCS mode, then `ecg_ssl_classifier` fine-tuned from a checkpoint and used for inference."""

import json
import re
import sys

import pytest

from ._util import REPO, console_script, run

CONFIGS = REPO / "configs"
PRETRAIN = [
    "contrastive_cnn_tiny",
    "contrastive_cnn_lstm_tiny",
    "contrastive_cnn_attention_lstm_tiny",
    "contrastive_cnn_transformer_tiny",
    "clocs_cmsc_tiny",
    "clocs_cmlc_tiny",
    "clocs_cmsmlc_tiny",
]


def test_registered_names():
    from fairseq_signals.criterions import CRITERION_REGISTRY
    from fairseq_signals.models import MODEL_REGISTRY
    from fairseq_signals.tasks import TASK_REGISTRY

    import physioclr_ext

    physioclr_ext.register()

    assert {"ecg_contrastive", "ecg_ssl_classifier"} <= set(MODEL_REGISTRY)
    assert {"nt_xent", "clocs"} <= set(CRITERION_REGISTRY)
    assert "ecg_ssl_pretraining" in TASK_REGISTRY


def test_clocs_criterion_takes_the_mode_from_the_task():
    """The CLOCS mode is a data option: the criterion has no `mode` of its own, reads task.mode and checks
    the number of views against it."""
    from types import SimpleNamespace

    import torch

    import physioclr_ext

    physioclr_ext.register()
    from physioclr_ext.criterions.clocs import ClocsCriterion, ClocsCriterionConfig

    assert "mode" not in ClocsCriterionConfig.__dataclass_fields__
    z = torch.nn.functional.normalize(torch.randn(3, 4, 8), dim=-1)

    def model(**net_input):
        return {"z": net_input["views"]}

    sample = {"net_input": {"views": z}, "patient_id": torch.arange(4)}
    cfg = ClocsCriterionConfig(gather=False)
    assert torch.isfinite(ClocsCriterion(cfg, SimpleNamespace(cfg=SimpleNamespace(mode="cmlc")))(model, sample)[0])
    with pytest.raises(ValueError, match="cmsc got 3 views"):
        ClocsCriterion(cfg, SimpleNamespace(cfg=SimpleNamespace(mode="cmsc")))(model, sample)
    with pytest.raises(ValueError, match="task.mode"):
        ClocsCriterion(cfg, SimpleNamespace(cfg=SimpleNamespace(mode="views")))


def _pretrain(config, data, out, updates=6):
    proc = run(
        [
            console_script("physioclr-hydra-train"),
            "--config-dir",
            str(CONFIGS / "pretraining"),
            "--config-name",
            config,
            f"task.data={data}",
            f"checkpoint.save_dir={out}",
            f"hydra.run.dir={out}",
            f"optimization.max_update={updates}",
            "common.log_interval=1",
        ]
    )
    return proc.stdout + proc.stderr


@pytest.mark.parametrize("config", PRETRAIN)
def test_pretraining_runs_and_logs_a_finite_loss(config, demo_dir, tmp_path):
    log = _pretrain(config, demo_dir / "data/mitdb", tmp_path)
    assert (tmp_path / "checkpoint_last.pt").exists()
    losses = [float(v) for v in re.findall(r"loss=([0-9.]+)", log)]
    assert len(losses) >= 5 and all(0 < v < 50 for v in losses)
    if config.startswith("clocs_cmlc"):
        assert "n_pairs=66" in log  # every pair of the 12 single-lead views counts
    if config.startswith("clocs_cmsmlc"):
        assert "n_pairs=276" in log


def test_finetune_ecg_ssl_classifier_then_predict(demo_dir, tmp_path):
    data = demo_dir / "data/mitdb"
    _pretrain("contrastive_cnn_tiny", data, tmp_path / "pt")
    env = {"PHYSIOCLR_DEMO_DIR": str(demo_dir)}
    run(
        [
            "bash",
            str(REPO / "finetuning_ecg.sh"),
            "--data",
            str(data),
            "--checkpoint",
            str(tmp_path / "pt/checkpoint_last.pt"),
            "--out",
            str(tmp_path / "ft"),
            "--",
            "optimization.max_update=10",
            "optimization.max_epoch=1",
            "dataset.batch_size=32",
            "dataset.num_workers=0",
        ],
        env=env,
    )
    best = tmp_path / "ft/checkpoint_best.pt"
    assert best.exists()
    # the default fine-tuning config for a package checkpoint is ecg_ssl_classifier
    name = run([sys.executable, "-m", "physioclr_ext.runners.checkpoints", "model-name", str(best)]).stdout.strip()
    assert name == "ecg_ssl_classifier"
    run(
        [
            "bash",
            str(REPO / "inference_ecg.sh"),
            "--data",
            str(data),
            "--checkpoint",
            str(best),
            "--out",
            str(tmp_path / "inf"),
        ],
        env=env,
    )
    metrics = json.load(open(tmp_path / "inf/metrics_test.json"))
    assert metrics["n_windows"] > 0 and metrics["metrics"]["auroc"] is not None


@pytest.mark.slow  # 17 s
def test_linear_probe_mode_freezes_the_encoder(demo_dir, tmp_path):
    import torch

    data = demo_dir / "data/mitdb"
    _pretrain("clocs_cmsc_tiny", data, tmp_path / "pt", updates=3)
    ft = tmp_path / "ft"
    run(
        [
            console_script("physioclr-hydra-train"),
            "--config-dir",
            str(CONFIGS / "finetuning"),
            "--config-name",
            "ecg_ssl_classifier_tiny",
            f"task.data={data}",
            f"model.model_path={tmp_path / 'pt/checkpoint_last.pt'}",
            "model.num_labels=1",
            "model.freeze_encoder=true",
            f"checkpoint.save_dir={ft}",
            f"hydra.run.dir={ft}",
            "optimization.max_update=5",
        ]
    )
    before = torch.load(tmp_path / "pt/checkpoint_last.pt", weights_only=False)["model"]
    after = torch.load(ft / "checkpoint_last.pt", weights_only=False)["model"]
    for key, value in before.items():
        assert torch.equal(after["encoder." + key], value), key


@pytest.mark.slow  # 70 s; the binary fine-tuning tests cover the classifier in the default run
@pytest.mark.parametrize("labels", ["multiclass", "multilabel"])
def test_ecg_ssl_classifier_multiclass_and_multilabel(labels, demo_dir, tmp_path):
    """AAMI classes (cross_entropy, class indices) on MIT-BIH; LUDB rhythms (multi-hot, BCE)."""
    from physioclr_ext.preprocess import PreprocessConfig
    from physioclr_ext.preprocess import run as preprocess

    _pretrain("contrastive_cnn_tiny", demo_dir / "data/mitdb", tmp_path / "pt", updates=3)
    if labels == "multiclass":
        data, config, k = tmp_path / "aami", "ecg_ssl_classifier_multiclass_tiny", 5
        preprocess(
            PreprocessConfig.from_preset(
                "fairseq_signals",
                input=str(REPO / "data/sample/mitdb"),
                output=str(data),
                split="file",
                split_file=str(REPO / "data/sample/mitdb/demo_split.csv"),
                label_scheme="aami",
                progress=False,
            )
        )
    else:
        data, config = demo_dir / "data/ludb", "ecg_ssl_classifier_tiny"
        k = len((data / "label_def.csv").read_text().splitlines()) - 1
    ft = tmp_path / "ft"
    run(
        [
            console_script("physioclr-hydra-train"),
            "--config-dir",
            str(CONFIGS / "finetuning"),
            "--config-name",
            config,
            f"task.data={data}",
            f"model.model_path={tmp_path / 'pt/checkpoint_last.pt'}",
            f"model.num_labels={k}",
            f"checkpoint.save_dir={ft}",
            f"hydra.run.dir={ft}",
            "optimization.max_update=4",
        ]
    )
    run(
        [
            "bash",
            str(REPO / "inference_ecg.sh"),
            "--data",
            str(data),
            "--checkpoint",
            str(ft / "checkpoint_best.pt"),
            "--out",
            str(tmp_path / "inf"),
        ]
    )
    metrics = json.load(open(tmp_path / "inf/metrics_test.json"))
    assert metrics["task"] == labels and len(metrics["labels"]) == k


def test_checkpoint_with_encoder_args_reloads_exactly(demo_dir, tmp_path):
    """fairseq-signals prunes dict-valued config fields with a non-empty default when it rebuilds a
    model from a checkpoint; ``encoder_args`` (channel sizes) must survive, or embed/inference load
    a model of the wrong size."""
    import torch

    from physioclr_ext.runners.extract_embeddings import load_checkpoint

    data = demo_dir / "data/mitdb"
    _pretrain("contrastive_cnn_tiny", data, tmp_path / "pt", updates=2)
    path = tmp_path / "pt/checkpoint_last.pt"
    loaded = load_checkpoint(str(path), str(data))
    saved = torch.load(path, weights_only=False)["model"]
    restored = loaded.model.state_dict()
    assert set(saved) == set(restored)
    for key, value in saved.items():
        assert torch.equal(restored[key], value), key
