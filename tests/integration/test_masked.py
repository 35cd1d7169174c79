"""The ECG masked autoencoder through the real fairseq-signals trainer: pretrain `ecg_mae_tiny` with
`physioclr-hydra-train` (criterion `masked_reconstruction`), then fine-tune it with `ecg_ssl_classifier`."""

import re

import pytest

from ._util import REPO, console_script, run

CONFIGS = REPO / "configs"
MITDB = REPO / "data/sample/mitdb"


@pytest.fixture(scope="module")
def mitdb_data(tmp_path_factory):
    """The bundled MIT-BIH sample preprocessed as the demo does (12 leads, 500 Hz, 2500-sample windows)."""
    from physioclr_ext.preprocess import PreprocessConfig
    from physioclr_ext.preprocess import run as preprocess

    out = tmp_path_factory.mktemp("mae_data")
    preprocess(
        PreprocessConfig.from_preset(
            "fairseq_signals",
            input=str(MITDB),
            output=str(out),
            split="file",
            split_file=str(MITDB / "demo_split.csv"),
            label_scheme="binary",
            progress=False,
        )
    )
    return out


def test_registered_names():
    from fairseq_signals.criterions import CRITERION_REGISTRY
    from fairseq_signals.models import MODEL_REGISTRY

    import physioclr_ext

    physioclr_ext.register()

    assert "ecg_mae" in MODEL_REGISTRY
    assert "masked_reconstruction" in CRITERION_REGISTRY


def test_model_config_is_the_core_config():
    """Each field is declared once, in the core ECGMAEConfig; the registered model's config adds only `_name`."""
    from fairseq_signals.dataclass import Dataclass
    from omegaconf import OmegaConf

    from physioclr_ext.models.ecg_mae import ECGMAEModelConfig
    from physioclr_ext.modules.ecg_mae import ECGMAEConfig

    assert issubclass(ECGMAEModelConfig, ECGMAEConfig) and issubclass(ECGMAEModelConfig, Dataclass)
    assert set(OmegaConf.structured(ECGMAEModelConfig)) == set(ECGMAEConfig.__dataclass_fields__) | {"_name"}


def test_pretrain_ecg_mae_then_finetune(mitdb_data, tmp_path):
    pt, ft = tmp_path / "pt", tmp_path / "ft"
    proc = run(
        [
            console_script("physioclr-hydra-train"),
            "--config-dir",
            str(CONFIGS / "pretraining"),
            "--config-name",
            "ecg_mae_tiny",
            f"task.data={mitdb_data}",
            f"checkpoint.save_dir={pt}",
            f"hydra.run.dir={pt}",
            "optimization.max_update=24",
            "common.log_interval=4",
        ]
    )
    log = proc.stdout + proc.stderr
    assert (pt / "checkpoint_last.pt").exists()
    inner = [line for line in log.splitlines() if "train_inner" in line]
    losses = [float(re.search(r" loss=([0-9.]+)", line).group(1)) for line in inner]
    assert len(losses) == 6 and all(0 < v < 10 for v in losses), log[-3000:]
    assert losses[-1] < 0.8 * losses[0], losses
    assert all("loss_masked=" in line and "loss_visible=" in line for line in inner)

    run(
        [
            console_script("physioclr-hydra-train"),
            "--config-dir",
            str(CONFIGS / "finetuning"),
            "--config-name",
            "ecg_ssl_classifier_tiny",
            f"task.data={mitdb_data}",
            f"model.model_path={pt / 'checkpoint_last.pt'}",
            "model.num_labels=1",
            f"checkpoint.save_dir={ft}",
            f"hydra.run.dir={ft}",
            "optimization.max_update=4",
        ]
    )
    assert (ft / "checkpoint_best.pt").exists()


def test_model_and_criterion_contract():
    """The registered model and criterion on one batch: the loss is the mean over masked patches, and
    ST-MEM's lead-separate (B, C, N, P) outputs are accepted."""
    import torch
    from fairseq_signals.criterions import CRITERION_REGISTRY
    from fairseq_signals.models import MODEL_REGISTRY

    import physioclr_ext

    physioclr_ext.register()
    from physioclr_ext.criterions.masked_reconstruction import MaskedReconstructionCriterionConfig
    from physioclr_ext.models.ecg_mae import ECGMAEModelConfig

    cfg = ECGMAEModelConfig(
        in_channels=2,
        patch_size=50,
        embed_dim=32,
        depth=1,
        heads=2,
        decoder_embed_dim=16,
        decoder_depth=1,
        decoder_heads=2,
        mask_ratio=0.6,
    )
    model = MODEL_REGISTRY["ecg_mae"].build_model(cfg, None)
    criterion = CRITERION_REGISTRY["masked_reconstruction"](MaskedReconstructionCriterionConfig(), None)
    source = torch.randn(3, 2, 500)
    torch.manual_seed(0)
    loss, sample_size, log = criterion(model, {"net_input": {"source": source}})
    assert sample_size == 3 * (20 - int(20 * 0.4)) == log["sample_size"]
    torch.manual_seed(0)
    out = model(source)
    target = out["target"]
    target = (target - target.mean(-1, keepdim=True)) / (target.var(-1, unbiased=False, keepdim=True) + 1e-6).sqrt()
    expected = ((out["pred"] - target) ** 2).mean(-1)[out["mask"]].sum()
    torch.testing.assert_close(loss, expected)
    assert model.extract_embedding(source).shape == (3, model.embed_dim) == (3, 32)
    assert model.reconstruct(source)["masked"].isnan().any()

    class LeadSeparate(torch.nn.Module):
        def forward(self, source, **kwargs):
            out = model(source)
            return {key: value.reshape(3, 2, 10, *value.shape[2:]) for key, value in out.items()}

    torch.manual_seed(0)
    loss2, sample_size2, _ = criterion(LeadSeparate(), {"net_input": {"source": source}})
    torch.testing.assert_close(loss2, loss)
    assert sample_size2 == sample_size
