"""LFBT through the real fairseq-signals trainer: records preprocessed with the `lfbt` preset, pretrained with
`pre-training_ecg.sh --method lfbt --tiny`, then embedded; on the full LUDB (slow) also linear probe, kNN and
few-shot fine-tuning with `ecg_ssl_classifier` on a seeded label subset."""

import json
import math
import re
import sys
from pathlib import Path

import numpy as np
import pytest

from ._util import REPO, run

LEADS_8 = "task.leads_to_load='[0,1,2,3,4,5,6,7]'"
SHARED_LUDB = REPO.parent / "shared/data/ludb"


def _preprocess(source, out):
    from physioclr_ext.preprocess import PreprocessConfig
    from physioclr_ext.preprocess import run as preprocess

    preprocess(PreprocessConfig.from_preset("lfbt", input=str(source), output=str(out), workers=1, progress=False))
    return out


@pytest.fixture(scope="module")
def ludb_lfbt(tmp_path_factory):
    """The 8 bundled LUDB records -> 8 leads (II, III, V1-V6), 500 Hz, 5000 samples, one z-score per ECG."""
    return _preprocess(REPO / "data/sample/ludb", tmp_path_factory.mktemp("ludb_lfbt"))


def _pretrain(data, out, *overrides):
    proc = run(
        [
            "bash",
            str(REPO / "pre-training_ecg.sh"),
            "--method",
            "lfbt",
            "--tiny",
            "--data",
            str(data),
            "--out",
            str(out),
            "--",
            "common.log_interval=1",
            *overrides,
        ]
    )
    assert (out / "checkpoint_last.pt").exists()
    return proc.stdout + proc.stderr


def test_model_config_is_the_core_config():
    """Each field is declared once, in the core LFBTConfig; the registered model's config adds only `_name`."""
    from omegaconf import OmegaConf

    import physioclr_ext

    physioclr_ext.register()
    from fairseq_signals.criterions import CRITERION_REGISTRY
    from fairseq_signals.models import MODEL_REGISTRY

    from physioclr_ext.models.lfbt import LFBTModel, LFBTModelConfig
    from physioclr_ext.modules.lfbt import LFBTConfig

    assert "lfbt" in MODEL_REGISTRY and "lead_fusion_barlow_twins" in CRITERION_REGISTRY
    node = OmegaConf.structured(LFBTModelConfig)
    assert set(node) == set(LFBTConfig.__dataclass_fields__) | {"_name"}
    node.merge_with(OmegaConf.create({"leads": ["II", "V1"], "projector": [16, 8], "share_weights": True}))
    model = LFBTModel.build_model(node)
    assert type(model.net.cfg) is LFBTConfig and model.net.leads == ["II", "V1"] and model.embed_dim == 128
    assert len(model.net.encoders) == 1


def test_pretrain_through_the_script_then_embed(ludb_lfbt, tmp_path):
    """`pre-training_ecg.sh --method lfbt --tiny` logs a finite loss and its terms; the checkpoint's
    representation is the 8 per-lead 64-d features, concatenated."""
    import scipy.io
    import torch

    from physioclr_ext.runners.extract_embeddings import load_checkpoint

    log = _pretrain(ludb_lfbt, tmp_path, "optimization.max_update=2")
    losses = [float(v) for v in re.findall(r"\bloss=([0-9.]+)", log)]
    intra = [float(v) for v in re.findall(r"\bintra=([0-9.]+)", log)]
    assert len(losses) == 2 and len(intra) == 2 and all(math.isfinite(v) and v > 0 for v in losses + intra)
    model = load_checkpoint(str(tmp_path / "checkpoint_last.pt"), str(ludb_lfbt)).model.eval()
    paths = [line.split("\t")[0] for line in (ludb_lfbt / "train.tsv").read_text().splitlines()[1:]]
    x = torch.from_numpy(np.stack([scipy.io.loadmat(ludb_lfbt / p)["feats"] for p in paths])).float()
    assert x.shape[1:] == (8, 5000)
    with torch.no_grad():
        emb = model.extract_embedding(x)
        expected = torch.cat([enc(x[:, [i]]) for i, enc in enumerate(model.net.encoders)], dim=1)
    assert emb.shape == (len(paths), 512) and model.embed_dim == 512
    torch.testing.assert_close(emb, expected)


def evaluation(*args):
    return run([sys.executable, "-m", "physioclr_ext.evaluation", *map(str, args)])


@pytest.mark.slow  # about 4 minutes on 2 shared cores: 200 records, 30 updates, 2 fine-tuning runs
@pytest.mark.skipif(not SHARED_LUDB.exists(), reason=f"needs the full LUDB in {SHARED_LUDB}")
def test_linear_probe_knn_and_seeded_few_shot_on_ludb(tmp_path):
    from physioclr_ext.evaluation.sampling import n_shot_indices
    from physioclr_ext.runners.finetune_runs import Windows

    data = _preprocess(SHARED_LUDB, tmp_path / "data")
    log = _pretrain(data, tmp_path / "pt", "optimization.max_update=30", "common.log_interval=5")
    losses = [float(v) for v in re.findall(r"\bloss=([0-9.]+)", log)]
    assert len(losses) >= 5 and losses[-1] < losses[0]
    ckpt = tmp_path / "pt/checkpoint_last.pt"

    evaluation("embed", "--checkpoint", ckpt, "--data", data, "--out", tmp_path / "emb")
    train = np.load(tmp_path / "emb/train.npy")
    assert train.shape == (160, 512) and np.isfinite(train).all() and train.std(axis=0).mean() > 0
    evaluation("linear-probe", "--embeddings", tmp_path / "emb", "--out", tmp_path / "lp", "--seeds", 0, 1)
    evaluation("knn", "--embeddings", tmp_path / "emb", "--out", tmp_path / "knn", "--k", 5)
    for name in ("lp", "knn"):
        cell = json.load(open(tmp_path / name / "results.json"))["results"]["n=all"]
        assert 0.0 <= cell["accuracy"]["mean"] <= 1.0

    out = tmp_path / "fs"
    overrides = [LEADS_8, "task.sample_rate=500", "optimization.max_update=4", "dataset.batch_size=8"]
    overrides += ["dataset.validate_interval_updates=2", "checkpoint.save_interval_updates=2"]
    evaluation(
        "few-shot", "--data", data, "--checkpoint", ckpt, "--out", out, "--n", 20, "--seeds", 3,
        *[arg for o in overrides for arg in ("--override", o)],
    )  # fmt: skip
    # The label subset is drawn from the seed (the original's --fraction is not seeded): the same 20
    # training windows for the pretrained and the from-scratch run, the ones n_shot_indices picks.
    windows = Windows.read(str(data))
    train_rows = np.flatnonzero(windows.split == "train")
    expected = sorted(windows.subset_paths(train_rows[n_shot_indices(windows.labels[train_rows], 20, seed=3)]))
    for kind in ("pretrained", "scratch"):
        lines = (out / "n20/seed3" / kind / "data/train.tsv").read_text().splitlines()[1:]
        assert sorted(Path(line.split("\t")[0]).as_posix() for line in lines) == expected
        assert json.load(open(out / "n20/seed3" / kind / "metrics.json"))["train_windows"] == 20


@pytest.mark.slow  # the paper-size projectors (8 x 64-2048-2048-2048) for two CPU-sized updates
def test_paper_config_builds_and_trains(ludb_lfbt, tmp_path):
    from ._util import console_script

    proc = run(
        [
            console_script("physioclr-hydra-train"),
            "--config-dir",
            str(REPO / "configs/pretraining"),
            "--config-name",
            "lfbt",
            f"task.data={ludb_lfbt}",
            f"checkpoint.save_dir={tmp_path}",
            f"hydra.run.dir={tmp_path}",
            "optimization.max_update=2",
            "dataset.batch_size=4",
            "dataset.num_workers=0",
            "common.log_format=simple",
            "common.log_interval=1",
        ]
    )
    losses = [float(v) for v in re.findall(r"\bloss=([0-9.]+)", proc.stdout + proc.stderr)]
    assert len(losses) == 2 and all(math.isfinite(v) and v > 0 for v in losses)
    assert (tmp_path / "checkpoint_last.pt").exists()
