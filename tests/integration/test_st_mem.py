"""ST-MEM through the real fairseq-signals trainer: the bundled LUDB records preprocessed with the `st_mem`
preset, pretrained with every ST-MEM config, then fine-tuned with `ecg_ssl_classifier` and used for inference."""

import json
import math
import re
import sys

import pytest

from ._util import REPO, console_script, run

CONFIGS = REPO / "configs"
# the paper-size configs (slow: about a minute on 2 cores) run two CPU-sized updates to prove they build and train
PRETRAIN = {
    "st_mem_vit_s_tiny": ["optimization.max_update=6"],
    "st_mem_vit_b_tiny": ["optimization.max_update=6"],
    "st_mem_vit_s": [
        "optimization.max_update=2",
        "dataset.batch_size=2",
        "dataset.num_workers=0",
        "common.log_format=simple",
    ],
    "st_mem_vit_b": [
        "optimization.max_update=2",
        "dataset.batch_size=2",
        "dataset.num_workers=0",
        "common.log_format=simple",
    ],
}


@pytest.fixture(scope="module")
def ludb_st_mem(tmp_path_factory):
    """The 8 bundled LUDB records (12 leads, 500 Hz, 10 s) -> 250 Hz windows of 2500 samples, rhythm labels."""
    from physioclr_ext.preprocess import PreprocessConfig
    from physioclr_ext.preprocess import run as preprocess

    out = tmp_path_factory.mktemp("ludb_st_mem")
    preprocess(
        PreprocessConfig.from_preset(
            "st_mem", input=str(REPO / "data/sample/ludb"), output=str(out), workers=1, progress=False
        )
    )
    return out


def _pretrain(config, data, out, overrides):
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
            "common.log_interval=1",
            *overrides,
        ]
    )
    return proc.stdout + proc.stderr


def test_st_mem_is_registered():
    from fairseq_signals.criterions import CRITERION_REGISTRY
    from fairseq_signals.models import MODEL_REGISTRY

    import physioclr_ext

    physioclr_ext.register()

    assert "st_mem" in MODEL_REGISTRY and "masked_reconstruction" in CRITERION_REGISTRY


def test_model_config_is_the_core_config():
    """Each field is declared once, in the core STMEMConfig; the registered model's config adds only `_name`."""
    from fairseq_signals.dataclass import Dataclass
    from omegaconf import OmegaConf

    from physioclr_ext.models.st_mem import STMEMModel, STMEMModelConfig
    from physioclr_ext.modules.st_mem import STMEMConfig

    assert issubclass(STMEMModelConfig, STMEMConfig) and issubclass(STMEMModelConfig, Dataclass)
    node = OmegaConf.structured(STMEMModelConfig)
    assert set(node) == set(STMEMConfig.__dataclass_fields__) | {"_name"}
    node.merge_with(
        OmegaConf.create(
            {
                "embed_dim": 32,
                "depth": 1,
                "heads": 2,
                "decoder_embed_dim": 16,
                "decoder_depth": 1,
                "decoder_heads": 2,
                "crop_starts": [250],
            }
        )
    )
    net = STMEMModel.build_model(node).net
    assert type(net.cfg) is STMEMConfig and net.cfg.crop_starts == [250] and net.cfg.embed_dim == 32


def test_criterion_normalises_st_mem_targets_with_the_unbiased_variance():
    """`masked_reconstruction` follows the model's convention by default (ST-MEM: unbiased, as the original's
    `torch.var`), `unbiased_var` overrides it; an old-layout checkpoint stops with the options that load it."""
    import torch
    from fairseq_signals.criterions import CRITERION_REGISTRY
    from fairseq_signals.models import MODEL_REGISTRY

    import physioclr_ext

    physioclr_ext.register()
    from physioclr_ext.criterions.masked_reconstruction import MaskedReconstructionCriterionConfig
    from physioclr_ext.models.st_mem import STMEMModelConfig

    sizes = dict(embed_dim=32, depth=1, heads=2, decoder_embed_dim=16, decoder_depth=1, decoder_heads=2)
    model = MODEL_REGISTRY["st_mem"].build_model(STMEMModelConfig(**sizes), None).eval()
    source = torch.randn(2, 12, 2500)
    losses = {}
    for unbiased in (None, True, False):
        criterion = CRITERION_REGISTRY["masked_reconstruction"](
            MaskedReconstructionCriterionConfig(unbiased_var=unbiased), None
        )
        torch.manual_seed(0)
        losses[unbiased] = criterion(model, {"net_input": {"source": source}})[0]
    torch.manual_seed(0)
    out = model(source)
    target = out["target"]
    target = (target - target.mean(-1, keepdim=True)) / (target.var(-1, unbiased=True, keepdim=True) + 1e-6).sqrt()
    expected = ((out["pred"] - target) ** 2).mean(-1)[out["mask"]].sum()
    torch.testing.assert_close(losses[None], expected)
    torch.testing.assert_close(losses[True], expected)
    assert abs(float((losses[False] - expected).detach())) > 1e-3

    old = dict(sizes, position_layout="shifted", pool_norm="fc_norm", decoder_block_norm_eps=1e-6)
    state = MODEL_REGISTRY["st_mem"].build_model(STMEMModelConfig(**old), None).state_dict()
    with pytest.raises(ValueError, match="pool_norm=fc_norm"):
        model.load_state_dict(dict(state), strict=True)
    MODEL_REGISTRY["st_mem"].build_model(STMEMModelConfig(**old), None).load_state_dict(state, strict=True)


@pytest.mark.parametrize(
    "config", [pytest.param(name, marks=[pytest.mark.slow] if "tiny" not in name else []) for name in PRETRAIN]
)
def test_pretraining_logs_a_finite_masked_loss(config, ludb_st_mem, tmp_path):
    log = _pretrain(config, ludb_st_mem, tmp_path, PRETRAIN[config])
    assert (tmp_path / "checkpoint_last.pt").exists()
    losses = [float(v) for v in re.findall(r"\bloss=([0-9.]+)", log)]
    masked = [float(v) for v in re.findall(r"loss_masked=([0-9.]+)", log)]
    assert losses and masked and all(math.isfinite(v) and 0 < v < 50 for v in losses + masked)


def test_pretraining_refuses_windows_at_the_wrong_rate(tmp_path):
    """The demo data (500 Hz) is not ST-MEM's input: the task's rate check stops the run."""
    import subprocess

    from physioclr_ext.preprocess import PreprocessConfig
    from physioclr_ext.preprocess import run as preprocess

    data = tmp_path / "data500"
    preprocess(
        PreprocessConfig.from_preset(
            "fairseq_signals", input=str(REPO / "data/sample/ludb"), output=str(data), workers=1, progress=False
        )
    )
    proc = subprocess.run(
        [
            console_script("physioclr-hydra-train"),
            "--config-dir",
            str(CONFIGS / "pretraining"),
            "--config-name",
            "st_mem_vit_s_tiny",
            f"task.data={data}",
            f"checkpoint.save_dir={tmp_path}",
            f"hydra.run.dir={tmp_path}",
            "optimization.max_update=1",
        ],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=600,
    )
    assert proc.returncode != 0 and "need 250" in proc.stdout + proc.stderr


def test_embed_averages_the_three_test_crops(ludb_st_mem, tmp_path):
    """`python -m physioclr_ext.evaluation embed` on a pretrained checkpoint: the mean over the crops at
    0, 125 and 250 of the LayerNorm-ed token mean."""
    import numpy as np
    import scipy.io
    import torch

    from physioclr_ext.runners.extract_embeddings import load_checkpoint

    _pretrain("st_mem_vit_s_tiny", ludb_st_mem, tmp_path / "pt", ["optimization.max_update=2"])
    ckpt = tmp_path / "pt/checkpoint_last.pt"
    run(
        [
            sys.executable,
            "-m",
            "physioclr_ext.evaluation",
            "embed",
            "--checkpoint",
            str(ckpt),
            "--data",
            str(ludb_st_mem),
            "--out",
            str(tmp_path / "emb"),
        ]
    )
    emb = np.load(tmp_path / "emb/train.npy")
    paths = (tmp_path / "emb/train.paths.txt").read_text().split()
    assert emb.shape == (6, 48) and len(paths) == 6
    net = load_checkpoint(str(ckpt), str(ludb_st_mem)).model.net
    x = torch.from_numpy(np.stack([scipy.io.loadmat(ludb_st_mem / p)["feats"] for p in paths]))
    with torch.no_grad():
        expected = torch.stack([net.embedding(x[..., s : s + 2250]) for s in (0, 125, 250)]).mean(0)
    np.testing.assert_allclose(emb, expected.numpy(), atol=1e-4)


@pytest.mark.slow  # 28 s; fine-tuning is covered by the contrastive and masked tests
def test_finetune_ecg_ssl_classifier_then_predict(ludb_st_mem, tmp_path):
    import torch

    _pretrain("st_mem_vit_s_tiny", ludb_st_mem, tmp_path / "pt", ["optimization.max_update=4"])
    k = len((ludb_st_mem / "label_def.csv").read_text().splitlines()) - 1
    ft = tmp_path / "ft"
    run(
        [
            console_script("physioclr-hydra-train"),
            "--config-dir",
            str(CONFIGS / "finetuning"),
            "--config-name",
            "ecg_ssl_classifier_tiny",
            f"task.data={ludb_st_mem}",
            "task.sample_rate=250",
            f"model.model_path={tmp_path / 'pt/checkpoint_last.pt'}",
            f"model.num_labels={k}",
            f"checkpoint.save_dir={ft}",
            f"hydra.run.dir={ft}",
            "optimization.max_update=4",
        ]
    )
    best = ft / "checkpoint_best.pt"
    assert best.exists()
    state = torch.load(best, weights_only=False)
    assert state["cfg"]["model"]["pretrained_model_cfg"]["_name"] == "st_mem"
    assert any(key.startswith("encoder.net.encoder.blocks.") for key in state["model"])
    run(
        [
            "bash",
            str(REPO / "inference_ecg.sh"),
            "--data",
            str(ludb_st_mem),
            "--checkpoint",
            str(best),
            "--out",
            str(tmp_path / "inf"),
        ]
    )
    metrics = json.load(open(tmp_path / "inf/metrics_test.json"))
    assert metrics["task"] == "multilabel" and len(metrics["labels"]) == k and metrics["n_windows"] == 1
