"""PhysioCLR through the real fairseq-signals: registered names, the ecg_feature dataset on real
preprocessed data with neurokit2 features, the model's output lengths, the criterion under
data-parallel training, and pretraining -> fine-tuning -> inference through the scripts on the
bundled MIT-BIH sample (the demo) and on the bundled LUDB sample."""

import json
import os
import re
import sys

import numpy as np
import pytest
import torch

from ._util import REPO, run

CONFIGS = REPO / "configs"
TERMS = ("loss_contrastive", "loss_reconstruction", "loss_peak", "positives_per_anchor")


def _tiny_model(**overrides):
    import yaml
    from omegaconf import OmegaConf

    from physioclr_ext.models.physioclr import PhysioCLRModel, PhysioCLRModelConfig

    model_cfg = yaml.safe_load(open(CONFIGS / "pretraining/physioclr_tiny.yaml"))["model"]
    model_cfg.pop("_name")
    model_cfg.update(overrides)
    cfg = OmegaConf.merge(OmegaConf.structured(PhysioCLRModelConfig), model_cfg)
    return PhysioCLRModel.build_model(cfg)


def _dataset(data, split="train", **kwargs):
    from physioclr_ext.data import PhysioCLRDataset

    return PhysioCLRDataset(str(data / f"{split}.tsv"), sample_rate=500, **kwargs)


def test_registered_names():
    from fairseq_signals.criterions import CRITERION_REGISTRY
    from fairseq_signals.models import MODEL_REGISTRY
    from fairseq_signals.tasks import TASK_REGISTRY

    import physioclr_ext
    from physioclr_ext.data.physioclr_dataset import PhysioCLRDataset

    physioclr_ext.register()

    assert "wav2vec2_physioCLR" in MODEL_REGISTRY and "physioclr" in CRITERION_REGISTRY
    assert "ecg_feature" in TASK_REGISTRY
    assert physioclr_ext.data.PhysioCLRDataset is PhysioCLRDataset


def test_dataset_items_and_batches_on_real_features(demo_dir):
    from physioclr_ext.features.store import load_split

    data = demo_dir / "data/mitdb"
    ds = _dataset(data, pad=True)
    table = load_split(str(data), "train")
    item = ds[0]
    assert item["source"].shape == (12, 2500) and item["features"].shape == (table.vectors.shape[1],)
    assert torch.equal(item["r_peaks"], torch.as_tensor(table.r_peaks[table.row(str(ds.fnames[0]))]))
    assert len(item["r_peaks"]) >= 3 and int(item["r_peaks"].max()) < 2500
    # the neighbour of window 0 of a record is its window 1
    fname = str(ds.fnames[0])
    record, k = re.match(r"mat/(\w+)_(\d+)\.mat", fname).groups()
    assert ds.neighbours[fname] == f"mat/{record}_{int(k) + 1}.mat"
    assert item["neighbour"].shape == (12, 2500)

    ids = list(range(0, 80, 10))
    batch = ds.collator([ds[i] for i in ids])
    net = batch["net_input"]
    assert net["source"].shape == net["shuffled"].shape == net["neighbour"].shape == (8, 12, 2500)
    assert batch["features"].shape == (8, table.vectors.shape[1]) and batch["sample_rate"] == 500
    assert batch["neighbour_valid"].all() and len(batch["r_peaks"]) == 8
    # keep_ends shuffling rearranges whole beats: same samples, another order
    src, shuf = net["source"], net["shuffled"]
    assert torch.equal(src.sort(dim=-1).values, shuf.sort(dim=-1).values)
    assert not torch.equal(src, shuf)
    again = ds.collator([ds[i] for i in ids])
    assert torch.equal(again["net_input"]["shuffled"], shuf)  # seeded by (seed, epoch, ids)
    ds.set_epoch(2)
    assert not torch.equal(ds.collator([ds[i] for i in ids])["net_input"]["shuffled"], shuf)


def _feature_task(data, **overrides):
    from omegaconf import OmegaConf

    from physioclr_ext.tasks.physioclr import PhysioCLRTask, PhysioCLRTaskConfig

    cfg = OmegaConf.structured(PhysioCLRTaskConfig)
    cfg.update(data=str(data), seed=1, **overrides)
    OmegaConf.set_struct(cfg, True)  # as the trainer passes it
    return PhysioCLRTask.setup_task(cfg), cfg


def test_task_reads_feature_dim_from_the_data(demo_dir):
    """task.feature_dim unset: the width saved in features/transform.npz; set and different: one clear error."""
    import physioclr_ext
    from physioclr_ext.features.store import stored_feature_dim

    physioclr_ext.register()
    data = demo_dir / "data/mitdb"
    width, path = stored_feature_dim(str(data))
    assert width == json.loads((data / "features/summary.json").read_text())["vector_dim"]
    task, cfg = _feature_task(data)
    assert task.feature_dim == cfg.feature_dim == width
    task.load_dataset("train")
    assert task.datasets["train"].features.shape[1] == width
    assert _feature_task(data, feature_dim=width)[0].feature_dim == width
    message = rf"task.feature_dim is {width + 1} .* have {width} dimensions \({re.escape(path)}\)"
    with pytest.raises(ValueError, match=message):
        _feature_task(data, feature_dim=width + 1)
    raw_task, _ = _feature_task(data, feature_set="raw")
    assert raw_task.feature_dim == json.loads((data / "features/summary.json").read_text())["raw_dim"]


def test_cropping_shifts_the_r_peaks_with_the_signal(demo_dir):
    data = demo_dir / "data/mitdb"
    full = _dataset(data)
    cropped = _dataset(data, max_sample_size=2000)
    ids = list(range(5, 200, 25))
    batch = cropped.collator([cropped[i] for i in ids])
    assert batch["net_input"]["source"].shape[-1] == 2000
    for row, i in enumerate(ids):
        item = full[i]
        x = batch["net_input"]["source"][row]
        starts = [s for s in range(501) if torch.equal(item["source"][:, s : s + 2000], x)]
        assert len(starts) == 1
        expected = item["r_peaks"] - starts[0]
        assert torch.equal(batch["r_peaks"][row], expected[(expected >= 0) & (expected < 2000)])


@pytest.mark.parametrize("length", [1000, 2500, 2501, 3600, 5000])
def test_reconstruction_and_peak_map_have_the_input_length(length):
    torch.manual_seed(0)
    model = _tiny_model()
    x = torch.randn(2, 12, length)
    out = model(x, shuffled=x.flip(-1), neighbour=x)
    assert out["reconstruction"].shape == (2, 12, length) and out["peak_map"].shape == (2, length)
    assert out["h"].shape == out["h_shuffled"].shape == out["h_neighbour"].shape == (2, model.embed_dim)
    sum(v.square().mean() for v in out.values()).backward()
    assert all(p.grad is not None for p in model.parameters())  # nothing unused: DDP needs no find_unused


def _flat_grads(model):
    """Every parameter's gradient, flattened (zeros for the mask embedding, unused without masking)."""
    return torch.cat([(p.grad if p.grad is not None else torch.zeros_like(p)).flatten() for p in model.parameters()])


def _synthetic_batch(n: int, seed: int) -> dict:
    """A PhysioCLR batch of n random 12-lead windows with their views, features and R-peaks."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 12, 1000, generator=g)
    return {
        "net_input": {"source": x, "shuffled": x.flip(-1), "neighbour": x.roll(50, -1)},
        "features": torch.randn(n, 10, generator=g),
        "r_peaks": [torch.tensor([100, 400, 700]) + i for i in range(n)],
        "sample_rate": 500,
    }


def _ddp_worker(rank, world, init, batch, state, out_dir):
    import torch.distributed as dist

    from physioclr_ext.criterions.physioclr import PhysioCLRCriterion, PhysioCLRCriterionConfig

    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=init, rank=rank, world_size=world)
    model = _tiny_model()
    model.load_state_dict(state)
    model.eval()  # no masking, no dropout: the two runs see the same network
    rows = slice(rank * 4, rank * 4 + 4)
    part = {
        "net_input": {k: v[rows] for k, v in batch["net_input"].items()},
        "features": batch["features"][rows],
        "r_peaks": batch["r_peaks"][rows],
        "sample_rate": 500,
    }
    loss, sample_size, logs = PhysioCLRCriterion(PhysioCLRCriterionConfig(), None)(model, part)
    loss.backward()
    grads = _flat_grads(model)
    dist.all_reduce(grads)  # DDP averages, then the trainer multiplies by world / sum(sample_size)
    grads = grads / world * world / (sample_size * world)
    if rank == 0:
        torch.save({"grads": grads, "logs": logs}, os.path.join(out_dir, "ddp.pt"))
    dist.destroy_process_group()


def test_criterion_is_exact_under_data_parallel_training(tmp_path):
    """Two gloo workers with half the batch each give the single-process loss and gradient."""
    import torch.multiprocessing as mp

    from physioclr_ext.criterions.physioclr import PhysioCLRCriterion, PhysioCLRCriterionConfig

    batch = _synthetic_batch(8, seed=0)
    model = _tiny_model()
    model.eval()
    loss, sample_size, logs = PhysioCLRCriterion(PhysioCLRCriterionConfig(), None)(model, batch)
    assert sample_size == 1 and all(k in logs for k in TERMS) and np.isfinite(logs["loss"])
    loss.backward()
    single = _flat_grads(model)
    mp.spawn(_ddp_worker, args=(2, f"file://{tmp_path}/init", batch, model.state_dict(), str(tmp_path)), nprocs=2)
    ddp = torch.load(tmp_path / "ddp.pt")
    assert abs(ddp["logs"]["loss"] - logs["loss"]) < 1e-5
    assert abs(ddp["logs"]["positives_per_anchor"] - logs["positives_per_anchor"]) < 1e-9
    assert torch.allclose(ddp["grads"], single, rtol=1e-4, atol=1e-6)


def test_criterion_reads_use_neighbour_from_the_task():
    """The temporal neighbour is a positive only where the task's use_neighbour says so."""
    from types import SimpleNamespace

    from physioclr_ext.criterions.physioclr import PhysioCLRCriterion, PhysioCLRCriterionConfig

    batch = _synthetic_batch(4, seed=1)
    model = _tiny_model()
    model.eval()
    logs = {}
    for flag in (True, False):
        task = SimpleNamespace(cfg=SimpleNamespace(use_neighbour=flag))
        criterion = PhysioCLRCriterion(PhysioCLRCriterionConfig(), task)
        assert criterion.use_neighbour is flag
        with torch.no_grad():
            logs[flag] = criterion(model, batch)[2]
    assert logs[True]["positives_per_anchor"] > logs[False]["positives_per_anchor"]


def test_demo_runs_physioclr_end_to_end(demo_dir):
    """The four scripts with no arguments pretrain PhysioCLR, fine-tune physioclr_classifier_tiny, predict."""
    name = run(
        [
            sys.executable,
            "-m",
            "physioclr_ext.runners.checkpoints",
            "model-name",
            str(demo_dir / "pretrain/checkpoint_last.pt"),
        ]
    ).stdout.strip()
    assert name == "wav2vec2_physioCLR"
    log = (demo_dir / "pre-training_ecg.sh.log").read_text()
    for term in TERMS:
        values = [float(v) for v in re.findall(rf"{term}=(-?[0-9.]+)", log)]
        assert values and all(np.isfinite(values)), term
    assert all(float(v) > 0 for v in re.findall(r"positives_per_anchor=([0-9.]+)", log))
    from physioclr_ext.features.store import stored_feature_dim

    width, _ = stored_feature_dim(str(demo_dir / "data/mitdb"))
    n_train = len((demo_dir / "data/mitdb/train.tsv").read_text().splitlines()) - 1
    assert width == (50 if n_train >= 500 else 184)  # preprocess_ecg.sh's --features-pca auto
    assert re.search(rf"task.feature_dim: {width} \(read from \S+/data/mitdb/features/transform.npz\)", log)
    cfg = torch.load(demo_dir / "finetune/checkpoint_best.pt", map_location="cpu", weights_only=False)["cfg"]
    assert cfg["model"]["_name"] == "ecg_ssl_classifier"
    assert cfg["model"]["pretrained_model_cfg"]["_name"] == "wav2vec2_physioCLR"
    assert cfg["distributed_training"]["find_unused_parameters"]  # set by physioclr_classifier_tiny only
    metrics = json.load(open(demo_dir / "inference/metrics_test.json"))
    assert metrics["metrics"]["auroc"] is not None and metrics["metrics"]["macro_f1"] is not None


@pytest.mark.slow
def test_ludb_pretrain_finetune_predict_and_embed(demo_dir, tmp_path):
    """LUDB (multi-label rhythms): the scripts with --data, tiny configs (about 95 s: four script starts)."""
    data = demo_dir / "data/ludb"
    assert (data / "features/train.npz").exists()
    env = {"PHYSIOCLR_DEMO_DIR": str(demo_dir)}
    pt, ft, inf = tmp_path / "pt", tmp_path / "ft", tmp_path / "inf"
    log = run(
        [
            "bash",
            str(REPO / "pre-training_ecg.sh"),
            "--data",
            str(data),
            "--tiny",
            "--out",
            str(pt),
            "--",
            "optimization.max_update=6",
            "common.log_interval=1",
        ],
        env=env,
    )
    text = log.stdout + log.stderr
    assert all(f"{term}=" in text for term in TERMS)
    run(
        [
            "bash",
            str(REPO / "finetuning_ecg.sh"),
            "--data",
            str(data),
            "--checkpoint",
            str(pt / "checkpoint_last.pt"),
            "--tiny",
            "--out",
            str(ft),
            "--",
            "optimization.max_update=6",
        ],
        env=env,
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
            str(inf),
        ],
        env=env,
    )
    metrics = json.load(open(inf / "metrics_test.json"))
    k = len((data / "label_def.csv").read_text().splitlines()) - 1
    assert metrics["task"] == "multilabel" and len(metrics["labels"]) == k
    assert set(metrics["metrics"]) == {"accuracy", "balanced_accuracy", "macro_f1", "auroc", "auprc"}
    run(
        [
            sys.executable,
            "-m",
            "physioclr_ext.evaluation",
            "embed",
            "--checkpoint",
            str(pt / "checkpoint_last.pt"),
            "--data",
            str(data),
            "--out",
            str(tmp_path / "emb"),
        ]
    )
    emb = np.load(tmp_path / "emb/train.npy")
    assert emb.shape[1] == 64 and np.isfinite(emb).all()
