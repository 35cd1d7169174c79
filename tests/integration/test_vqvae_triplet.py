"""VQ-VAE (`ecg_vqvae` + `vqvae`) and triplet fine-tuning (`ecg_triplet` + `triplet`) through the real
fairseq-signals trainer, on checkpoints of other methods of the package.

Default run: the VQ-VAE head on the demo's pretrained checkpoint through `physioclr-hydra-train`, then the
`codebook` report; the triplet model and criterion in-process, with the k-NN selection metric computed by
fairseq-signals' own metrics aggregation. Slow: both through the console scripts from freshly pretrained
contrastive-CNN and ST-MEM checkpoints, the sequence form, the study's setting, and `ecg_ssl_classifier`
fine-tuning a VQ-VAE checkpoint.
"""

import json
import re
from pathlib import Path

import numpy as np
import pytest

from ._util import REPO, console_script, run

CONFIGS = REPO / "configs"
FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "checkpoints_a712cee"


def _train(config_dir, config, data, out, *overrides):
    proc = run(
        [
            console_script("physioclr-hydra-train"),
            "--config-dir",
            str(CONFIGS / config_dir),
            "--config-name",
            config,
            f"task.data={data}",
            f"checkpoint.save_dir={out}",
            f"hydra.run.dir={out}",
            *overrides,
        ]
    )
    return proc.stdout + proc.stderr


def _series(log, key, tag="train_inner"):
    lines = [line for line in log.splitlines() if f"[{tag}]" in line]
    return [float(m.group(1)) for line in lines for m in [re.search(rf"\b{key}[= ]([0-9.eE+-]+|nan)", line)] if m]


def test_vqvae_head_trains_on_a_pretrained_checkpoint_and_reports_its_codebook(demo_dir, tmp_path):
    """~20 s: the demo's PhysioCLR checkpoint (a fairseq-signals wav2vec2 encoder) frozen under the VQ head."""
    data, out = demo_dir / "data" / "mitdb", tmp_path / "vq"
    log = _train(
        "pretraining",
        "ecg_vqvae_tiny",
        data,
        out,
        f"model.model_path={demo_dir / 'pretrain' / 'checkpoint_last.pt'}",
        "optimization.max_update=24",
        "common.log_interval=4",
    )
    rec, ppl, dead = (_series(log, k) for k in ("reconstruction", "perplexity", "dead_codes"))
    assert len(rec) == 6 and len(ppl) == 6 and len(dead) == 6, log[-3000:]
    assert rec[-1] < rec[0], rec
    assert max(ppl[2:]) > 4, ppl  # a batch of 16 windows spreads over several codes, not one

    from physioclr_ext.runners.codebook import codebook_command

    report = codebook_command(str(out / "checkpoint_last.pt"), str(data / "valid.tsv"), str(tmp_path / "cb"))
    assert (tmp_path / "cb" / "codebook.png").stat().st_size > 0
    stored = json.loads((tmp_path / "cb" / "codebook.json").read_text())
    counts = np.asarray(stored["counts"], dtype=float)
    windows = len((data / "valid.tsv").read_text().splitlines()) - 1
    assert counts.sum() == windows and len(counts) == report["codebook_size"] == 64
    p = counts[counts > 0] / counts.sum()
    assert np.isclose(report["perplexity"], np.exp(-(p * np.log(p)).sum()), rtol=1e-5)
    assert report["dead_codes"] == 64 - (counts > 0).sum() and report["perplexity"] > 2


def test_triplet_model_criterion_and_knn_selection_metric(demo_dir):
    """In-process: `ecg_triplet` on an ECG-MAE checkpoint, the `triplet` criterion on a labelled batch, and
    the validation k-NN metric aggregated by fairseq-signals' metrics over several batches."""
    import torch
    from fairseq_signals.criterions import CRITERION_REGISTRY
    from fairseq_signals.logging import metrics
    from fairseq_signals.models import MODEL_REGISTRY
    from omegaconf import OmegaConf

    import physioclr_ext

    physioclr_ext.register()
    from physioclr_ext.criterions.triplet import TripletCriterion, TripletCriterionConfig
    from physioclr_ext.evaluation.knn_selection import knn_selection_score
    from physioclr_ext.models.ecg_triplet import ECGTripletConfig

    cfg = OmegaConf.create({"model": OmegaConf.structured(ECGTripletConfig(hidden_dim=8, out_dim=4))})
    cfg.model.model_path = str(FIXTURES / "ecg_mae_tiny.pt")
    model = MODEL_REGISTRY["ecg_triplet"].build_model(cfg.model, None)
    assert cfg.model.pretrained_model_cfg["_name"] == "ecg_mae"  # the checkpoint will rebuild itself
    assert not any(p.requires_grad for p in model.encoder.parameters())
    criterion = CRITERION_REGISTRY["triplet"](TripletCriterionConfig(mining="hardest"), None)
    assert isinstance(criterion, TripletCriterion)

    g = torch.Generator().manual_seed(0)
    batches = []
    for _ in range(3):
        labels = torch.randint(2, (12, 1), generator=g).float()
        source = torch.randn(12, 12, 2500, generator=g) + 2 * labels[:, :, None]
        batches.append({"net_input": {"source": source}, "label": labels})

    model.train()
    loss, size, log = criterion(model, batches[0])
    loss.backward()
    assert size == 1 and log["n_triplets"] > 0 and "_embeddings" not in log
    assert model.head[0].weight.grad is not None

    model.eval()
    embs, labs = [], []
    with metrics.aggregate(new_root=True) as agg:
        for batch in batches:
            with torch.no_grad():
                _, _, log = criterion(model, batch)
            with metrics.aggregate():
                TripletCriterion.reduce_metrics([log])
            embs.append(log["_embeddings"])
            labs.append(log["_labels"])
    values = agg.get_smoothed_values()
    expected = knn_selection_score(np.concatenate(embs), np.concatenate(labs), 5, "macro_f1", 0.8, 0)
    assert np.isclose(values["knn_macro_f1"], round(expected, 4)) and 0 <= values["knn_macro_f1"] <= 1


def _balanced_task(data, seed):
    from fairseq_signals.tasks import TASK_REGISTRY
    from omegaconf import OmegaConf

    import physioclr_ext

    physioclr_ext.register()
    from physioclr_ext.tasks.ecg_triplet import ECGTripletTaskConfig

    task = TASK_REGISTRY["ecg_triplet"].setup_task(
        OmegaConf.structured(ECGTripletTaskConfig(data=str(data), seed=seed))
    )
    task.load_dataset("train")
    task.load_dataset("valid")
    return task


def _epoch(task, epoch, batch_size=8, shard=(1, 0)):
    """Window ids of each batch of one training epoch through fairseq-signals' EpochBatchIterator."""
    itr = task.get_batch_iterator(
        task.dataset("train"), max_signals=batch_size, seed=1, num_shards=shard[0], shard_id=shard[1], epoch=epoch
    )
    return [tuple(b["id"].tolist()) for b in itr.next_epoch_itr(shuffle=True) if b]


def test_triplet_task_draws_class_balanced_batches_from_its_seed(demo_dir):
    """`ecg_triplet` task: every training batch of fairseq-signals' iterator holds both classes, at least
    two windows each (batch 8: four each), the same batches from the same seed, new ones each epoch."""
    import scipy.io

    data = demo_dir / "data" / "mitdb"
    task = _balanced_task(data, seed=3)
    train = task.dataset("train")
    labels = train.window_labels.reshape(-1)
    first = scipy.io.loadmat(str(Path(train.root_dir) / str(train.fnames[0])))["label"]
    assert labels[0] == first.reshape(-1)[0] and set(labels.tolist()) == {0, 1}
    epoch1 = _epoch(task, 1)
    assert len(epoch1) == -(-len(labels) // 8)
    assert all(sorted(labels[list(b)].tolist()) == [0] * 4 + [1] * 4 for b in epoch1), epoch1
    assert _epoch(_balanced_task(data, seed=3), 1) == epoch1
    assert _epoch(_balanced_task(data, seed=3), 2) != epoch1
    assert _epoch(_balanced_task(data, seed=4), 1) != epoch1
    # data-parallel shards split the same batches; validation keeps plain batches over every window
    shards = [_epoch(_balanced_task(data, seed=3), 1, shard=(2, i)) for i in range(2)]
    assert sorted(shards[0] + shards[1]) == sorted(epoch1)
    assert getattr(task.dataset("valid"), "window_labels", None) is None


@pytest.fixture(scope="module")
def ludb_st_mem(tmp_path_factory):
    from physioclr_ext.preprocess import PreprocessConfig
    from physioclr_ext.preprocess import run as preprocess

    out = tmp_path_factory.mktemp("ludb_st_mem_vq")
    preprocess(
        PreprocessConfig.from_preset(
            "st_mem", input=str(REPO / "data/sample/ludb"), output=str(out), workers=1, progress=False
        )
    )
    return out


@pytest.mark.slow  # ~3 minutes: two pretrainings, then VQ-VAE, triplet and classifier runs on each
@pytest.mark.parametrize("method", ["contrastive_cnn_tiny", "st_mem_vit_s_tiny"])
def test_vqvae_and_triplet_from_two_methods_through_the_console_scripts(method, request, tmp_path):
    st_mem = method.startswith("st_mem")
    data = request.getfixturevalue("ludb_st_mem") if st_mem else request.getfixturevalue("demo_dir") / "data/mitdb"
    _train("pretraining", method, data, tmp_path / "pt", "optimization.max_update=4")
    pretrained = tmp_path / "pt" / "checkpoint_last.pt"

    log = _train(
        "pretraining",
        "ecg_vqvae_tiny",
        data,
        tmp_path / "vq",
        f"model.model_path={pretrained}",
        "optimization.max_update=20",
        "common.log_interval=5",
    )
    assert (
        len(_series(log, "perplexity")) == 4 and _series(log, "reconstruction")[-1] < _series(log, "reconstruction")[0]
    )

    log = _train(
        "finetuning",
        "ecg_triplet_tiny",
        data,
        tmp_path / "tri",
        f"model.model_path={pretrained}",
        "optimization.max_update=12",
        "optimization.max_epoch=2",
        "common.log_interval=4",
    )
    scores = _series(log, "knn_macro_f1", tag="valid")
    assert scores, log[-3000:]
    assert "best_knn_macro_f1" in log
    best = tmp_path / "tri" / ("checkpoint_last.pt" if st_mem else "checkpoint_best.pt")
    if not st_mem:  # the 8 bundled LUDB records leave 1 valid window: too few for a k-NN (nan, no best)
        assert all(0 <= s <= 1 for s in scores) and best.exists(), log[-3000:]

    # a VQ-VAE checkpoint is itself a pretrained encoder: ecg_ssl_classifier fine-tunes on its codes
    _train(
        "finetuning",
        "ecg_ssl_classifier_tiny",
        data,
        tmp_path / "ft",
        f"model.model_path={tmp_path / 'vq' / 'checkpoint_last.pt'}",
        "model.num_labels=1",
        "optimization.max_update=4",
        "criterion._name=binary_cross_entropy_with_logits",
    ) if not st_mem else None
    from physioclr_ext.runners.extract_embeddings import embed_subsets

    meta = embed_subsets(str(best), str(data), str(tmp_path / "emb"), ["valid"])
    assert meta["subsets"]["valid"][1] == 8  # the tiny head's out_dim


@pytest.mark.slow  # ~45 s
@pytest.mark.parametrize("config", ["ecg_vqvae_sequence_tiny", "ecg_vqvae_study_tiny"])
def test_sequence_form_and_study_setting_train(config, demo_dir, tmp_path):
    extra = [] if "sequence" in config else [f"model.model_path={demo_dir / 'pretrain' / 'checkpoint_last.pt'}"]
    log = _train(
        "pretraining",
        config,
        demo_dir / "data" / "mitdb",
        tmp_path / "vq",
        *extra,
        "optimization.max_update=20",
        "common.log_interval=5",
    )
    rec = _series(log, "reconstruction")
    assert len(rec) == 4 and rec[-1] < rec[0], rec
    from physioclr_ext.runners.codebook import codebook_command

    report = codebook_command(
        str(tmp_path / "vq" / "checkpoint_last.pt"), str(demo_dir / "data/mitdb/valid.tsv"), str(tmp_path / "cb")
    )
    assert report["n_assignments"] > 0


def test_triplet_head_standardises_a_nearly_collapsed_embedding():
    """Inputs that differ by 0.1% give the frozen encoder's embeddings almost one point; without
    standardisation the head maps them to one point too (no triplet signal), with it they spread."""
    import torch
    from fairseq_signals.models import MODEL_REGISTRY
    from omegaconf import OmegaConf

    import physioclr_ext

    physioclr_ext.register()
    from physioclr_ext.models.ecg_triplet import ECGTripletConfig

    g = torch.Generator().manual_seed(0)
    source = torch.randn(1, 12, 2500, generator=g) + 1e-3 * torch.randn(16, 12, 2500, generator=g)
    spreads = {}
    for standardize in (False, True):
        cfg = OmegaConf.create(
            {
                "model": OmegaConf.structured(
                    ECGTripletConfig(hidden_dim=8, out_dim=4, standardize_embedding=standardize)
                )
            }
        )
        cfg.model.model_path = str(FIXTURES / "ecg_mae_tiny.pt")
        torch.manual_seed(0)
        model = MODEL_REGISTRY["ecg_triplet"].build_model(cfg.model, None).train()
        out = model(source)
        h, z = out["h"], out["z"]
        assert torch.allclose(h, h[:1].expand_as(h), rtol=0.05, atol=1e-3)  # the encoder's view: nearly one point
        spreads[standardize] = torch.cdist(z, z).pow(2).mean().item()
        if standardize:
            assert (model.norm(h).std(0, unbiased=False) > 0.9).all()  # unit spread per feature
    assert spreads[False] < 1e-3 and spreads[True] > 0.1, spreads
