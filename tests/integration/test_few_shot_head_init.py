"""LP-FT in the few-shot protocol, through the real trainer: each run's head starts from a linear probe on its
starting encoder (the pretrained checkpoint, or the scratch arm's random-init checkpoint).

With a frozen encoder and learning rate 0 the fine-tuned model is its starting point, so its test
probabilities must be the linear probe's on the same encoder's embeddings: the head really was the probe's.
"""

import json
import sys
from pathlib import Path

import numpy as np
import pytest

from ._util import REPO, run

sys.path.insert(0, str(REPO / "benchmarks"))

SUBSETS = ("train", "valid", "test")
SCHEDULE = [
    "optimization.max_update=2",
    "dataset.validate_interval_updates=1",
    "checkpoint.save_interval_updates=1",
    "dataset.batch_size=8",
]


@pytest.fixture(scope="module")
def pretrained(tmp_path_factory):
    """The bundled MIT-BIH sample (binary labels, demo split), a 2-update contrastive CNN-transformer and its
    random initialisation (the ssl_table benchmark's random-init checkpoint)."""
    from ssl_table.stages import random_init_checkpoint

    from physioclr_ext.preprocess import PreprocessConfig
    from physioclr_ext.preprocess import run as preprocess
    from physioclr_ext.runners.finetune_runs import REPO_CONFIGS, TrainSpec, pretrain

    work = tmp_path_factory.mktemp("lpft")
    data = work / "data"
    preprocess(
        PreprocessConfig.from_preset(
            "fairseq_signals",
            input=str(REPO / "data/sample/mitdb"),
            output=str(data),
            split="file",
            split_file=str(REPO / "data/sample/mitdb/demo_split.csv"),
            label_scheme="binary",
            progress=False,
        )
    )
    spec = TrainSpec(
        str(Path(REPO_CONFIGS) / "pretraining"), "contrastive_cnn_transformer_tiny", ["optimization.max_update=2"]
    )
    ckpt = pretrain(spec, str(data), str(work / "pt"), seed=0)
    return data, ckpt, random_init_checkpoint(ckpt, str(work / "pt/checkpoint_random_init.pt"), seed=0)


def _spec(ckpt, overrides):
    from physioclr_ext.runners.checkpoints import checkpoint_finetune_config
    from physioclr_ext.runners.finetune_runs import REPO_CONFIGS, TrainSpec

    config = checkpoint_finetune_config(ckpt, tiny=True)
    return TrainSpec(str(Path(REPO_CONFIGS) / "finetuning"), config, [*SCHEDULE, *overrides])


def _probabilities(checkpoint, data_dir, what="embed", subset="test"):
    from physioclr_ext.runners.extract_embeddings import load_checkpoint, run_subset

    return run_subset(load_checkpoint(str(checkpoint), str(data_dir)), subset, what, progress=False)


@pytest.mark.slow  # about 2 minutes on 2 shared cores: a pretraining and two fine-tuning runs
def test_frozen_zero_lr_run_predicts_what_the_probe_predicts_in_both_arms(pretrained, tmp_path):
    import torch

    from physioclr_ext.evaluation.metrics import probabilities
    from physioclr_ext.evaluation.probes import linear_probe, probe_head
    from physioclr_ext.runners.finetune_runs import few_shot

    data, ckpt, scratch = pretrained
    frozen = _spec(ckpt, ["model.freeze_encoder=true", "optimization.lr=[0]"])
    runs = few_shot(
        str(data), ckpt, str(tmp_path), [6], [0], frozen, balanced=True, head_init=True, scratch_checkpoint=scratch
    )
    assert set(runs) == {"n=6/pretrained", "n=6/scratch"}
    for kind, start in (("pretrained", ckpt), ("scratch", scratch)):
        run_dir = tmp_path / "n6" / "seed0" / kind
        record = json.loads((run_dir / "metrics.json").read_text())
        assert record["head_init"]["checkpoint"] == start and record["head_init"]["task"] == "binary"
        assert record.get("scratch_checkpoint") == (scratch if kind == "scratch" else None)
        x = {s: _probabilities(start, run_dir / "data", subset=s).astype(np.float64) for s in SUBSETS}
        xy = [(x[s], _labels(run_dir / "data", s)) for s in SUBSETS]
        probe = linear_probe(*xy, task="binary", seed=0)
        weight, bias, info = probe_head(*xy[:2], task="binary", seed=0)
        assert record["head_init"]["best_C"] == info["best_C"] == probe["best_C"]
        expected = x["test"] @ weight.T + bias
        np.testing.assert_allclose(probabilities(expected, "binary"), probe["probabilities"], rtol=0, atol=1e-9)
        state = torch.load(run_dir / "checkpoint_last.pt", weights_only=False)["model"]
        saved = np.load(run_dir / "head_init.npz")
        assert np.array_equal(state["head.weight"].numpy(), saved["weight"])  # the head is the probe's, untouched
        assert np.array_equal(state["head.bias"].numpy(), saved["bias"])
        logits = _probabilities(run_dir / "checkpoint_last.pt", run_dir / "data", "logits")
        # float32 rounding: the folded weights scale as 1/std of an embedding dimension, which can be tiny
        terms = np.abs(x["test"]) @ np.abs(weight).T + np.abs(bias)
        assert (np.abs(logits - expected) <= 1e-6 + 16 * np.finfo(np.float32).eps * terms).all()
        np.testing.assert_allclose(probabilities(logits, "binary"), probe["probabilities"], rtol=0, atol=1e-4)
        assert record["metrics"]["auroc"] == pytest.approx(probe["metrics"]["auroc"], abs=1e-3)
    # the two arms start from different encoders, so from different probes
    heads = [np.load(tmp_path / "n6/seed0" / k / "head_init.npz")["weight"] for k in ("pretrained", "scratch")]
    assert heads[0].shape == heads[1].shape == (1, 64) and not np.allclose(heads[0], heads[1])


def _labels(data_dir, subset):
    from physioclr_ext.evaluation.predictions import Manifest, load_window_metadata

    return load_window_metadata(Manifest.read(str(Path(data_dir) / f"{subset}.tsv")))[0][:, 0]


@pytest.mark.slow  # about 80 s: two fine-tuning runs through the CLI
def test_cli_few_shot_with_probe_head_trains_from_it(pretrained, tmp_path):
    import torch

    data, ckpt, scratch = pretrained
    args = ["--data", data, "--checkpoint", ckpt, "--out", tmp_path, "--n", 6, "--seeds", 1, "--balanced"]
    args += ["--head-init", "probe", "--scratch-checkpoint", scratch, "--override", "optimization.max_update=4"]
    args += [a for o in SCHEDULE[1:] for a in ("--override", o)]
    run([sys.executable, "-m", "physioclr_ext.evaluation", "few-shot", *map(str, args)])
    saved = json.loads((tmp_path / "results.json").read_text())
    assert set(saved["results"]) == {"n=6/pretrained", "n=6/scratch"}
    assert saved["meta"]["head_init"] == "probe" and saved["meta"]["scratch_checkpoint"] == str(scratch)
    for kind in ("pretrained", "scratch"):
        run_dir = tmp_path / "n6" / "seed1" / kind
        init = np.load(run_dir / "head_init.npz")
        state = torch.load(run_dir / "checkpoint_last.pt", weights_only=False)["model"]
        moved = np.abs(state["head.weight"].numpy() - init["weight"]).max()
        assert 0 < moved < 0.02  # a few Adam steps of lr 1e-3 away from the probe's head
