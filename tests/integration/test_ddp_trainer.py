"""Data-parallel pretraining through `physioclr-hydra-train` on CPU (issue 15): every method family run with
`distributed_training.distributed_world_size=2` (two gloo workers, started by the `cpu_distributed` fix of
`physioclr_ext.runners.compat`) logs, update by update, the losses of a one-process run that sees the same
global batch, and ends at the same weights (float tolerance).

What each comparison holds fixed, and why:

* Same seed, same initial weights, 3 updates of one batch per epoch, `dataset.required_batch_size_multiple=1`.
* fairseq-signals seeds torch's (and, with the `numpy_seed_per_update` fix, NumPy's) global RNG with
  `seed + num_updates` on every worker, so a draw made in the model (dropout, drop-path, MAE/ST-MEM masks and
  crops, wav2vec 2.0 masks) gives row i of worker 1 what it gives row i of worker 0, not what a one-process batch
  gives its row B + i. Those draws are switched off (dropout, drop-path and PhysioCLR's time mask at 0) or equal
  by construction: ECG-JEPA draws one mask for the whole batch.
* Data randomness is per window (seed, epoch, window index: `physioclr_ext.data`), so augmented views
  (LFBT's crops and time-outs) and PhysioCLR's heartbeat shuffles are the same whichever worker draws the window:
  they stay on.
* BatchNorm. LFBT's `GlobalBatchNorm1d` normalises over the global batch: exact. The contrastive and CLOCS
  encoders use `nn.BatchNorm1d`, whose statistics are those of each worker's batch, and torch has no CPU
  `SyncBatchNorm`. Their comparison therefore uses a global batch of two copies of the same 4 windows, split
  so that each worker holds one copy (the manifest's size column orders the batches), without augmentation:
  per-worker and global statistics are then equal. Since both workers then compute the same gradient, that
  comparison checks the sharding, the cross-worker gathering of the criterion and the logging, not the gradient
  all-reduce, which the other families check.
* Masked reconstruction (ecg_mae, st_mem): the masks and ST-MEM's crops are drawn per row from the per-update
  seed, so no one-process batch of 8 reproduces what two workers of 4 draw. Each worker holds the same 4 windows
  (as above) and the reference is one process with those 4 windows: the global mean over 2 x 4 identical rows
  must equal it.

Trainable weights are compared by their relative difference over the whole model; BatchNorm running statistics
are left out (each worker keeps its own: DDP runs with `broadcast_buffers: false`, and the unbiased variance of
4 rows is not that of 8). Biases just before a BatchNorm have an exactly zero gradient, which Adam scales up to
steps of size lr on float noise: they make the few 1e-3 of difference the tolerance allows. Adam's first steps
are lr times the sign of each gradient, so a component whose true gradient is about float noise moves by a full
lr either way; LFBT's Barlow Twins loss (in the hundreds) amplifies that to 0.4 % in the third loss at its lr of
1e-3 (its gradients themselves are exact to 1e-9 in float64: tests/losses/test_lead_fusion_barlow_twins.py), so
LFBT runs at lr 1e-4 here. The first update's gradient norm, before any amplification, is compared too: Adam
would hide a wrong gradient scale from the losses.
"""

from __future__ import annotations

import math
import re
import shutil
import subprocess
import sys

import pytest

from ._util import REPO, console_script, run

CONFIGS = REPO / "configs" / "pretraining"
LUDB = REPO / "data" / "sample" / "ludb"
UPDATES = 3
K = 4  # windows per copy in the "copies" layouts

NO_DROPOUT_WAV2VEC2 = [  # "+": keys of the model's dataclass that physioclr_tiny.yaml does not set
    "model.apply_mask=false",
    "+model.dropout=0.0",
    "+model.attention_dropout=0.0",
    "+model.activation_dropout=0.0",
    "+model.encoder_layerdrop=0.0",
    "model.dropout_input=0.0",
    "model.dropout_features=0.0",
]

# config, layout of the two-worker run, per-worker batch, layout and batch of the one-process run, overrides
CASES = {
    "contrastive": ("contrastive_cnn_tiny", "copies", K, "copies", 2 * K, ["task.augmentations=null", "+model.encoder_args.dropout=0.0"]),
    "clocs": ("clocs_cmlc_tiny", "copies", K, "copies", 2 * K, ["+model.encoder_args.dropout=0.0"]),
    "ecg_mae": ("ecg_mae_tiny", "copies", K, "one_copy", K, []),
    "st_mem": ("st_mem_vit_s_tiny", "copies", K, "one_copy", K, ["task.sample_rate=null"]),
    "physioclr": ("physioclr_tiny", "distinct", 6, "distinct", 12, NO_DROPOUT_WAV2VEC2),
    "ecg_jepa": ("ecg_jepa_tiny", "distinct", 6, "distinct", 12, ["task.sample_rate=null", "model.drop_path=0.0"]),
    "lfbt": ("lfbt_tiny", "distinct", 6, "distinct", 12, ["optimization.lr=[1e-4]"]),
}  # fmt: skip


@pytest.fixture(scope="module")
def layouts(tmp_path_factory):
    """The 8 bundled LUDB records, preset fairseq_signals (12 leads, 500 Hz, 2500 samples) with features:
    ``distinct`` (its 12 training windows), ``copies`` (4 windows, then the same 4 again, sizes written so that
    each copy is one batch of 4, its windows in the same order) and ``one_copy`` (the 4 windows once, in that
    order: a row's mask depends on its place in the batch)."""
    base = tmp_path_factory.mktemp("ddp_data")
    data = base / "distinct"
    run(
        [sys.executable, "-m", "physioclr_ext.preprocess", "--input", str(LUDB), "--output", str(data),
         "--workers", "1", "--no-progress", "--features", "--features-pca", "none"]
    )  # fmt: skip
    lines = (data / "train.tsv").read_text().splitlines()
    assert len(lines) == 13
    paths = [line.split("\t")[0] for line in lines[1 : K + 1]]
    out = {"distinct": data}
    for name, body in {
        "copies": [f"{p}\t{3000 + K - i}" for i, p in enumerate(paths)] + [f"{p}\t{2000 + K - i}" for i, p in enumerate(paths)],
        "one_copy": [f"{p}\t{3000 + K - i}" for i, p in enumerate(paths)],
    }.items():  # fmt: skip
        layout = base / name
        shutil.copytree(data, layout, ignore=shutil.ignore_patterns("mat", "cmsc", "records"))
        (layout / "train.tsv").write_text("\n".join([str(data), *body]) + "\n")
        out[name] = layout
    return out


def _train(config, data, out, batch, world_size, overrides):
    cmd = [
        console_script("physioclr-hydra-train"), "--config-dir", str(CONFIGS), "--config-name", config,
        f"task.data={data}", f"checkpoint.save_dir={out}", f"hydra.run.dir={out}", "common.log_interval=1",
        f"optimization.max_update={UPDATES}", f"dataset.batch_size={batch}", "dataset.required_batch_size_multiple=1",
        f"distributed_training.distributed_world_size={world_size}", *overrides,
    ]  # fmt: skip
    proc = run(cmd, env={"OMP_NUM_THREADS": "1"})
    return proc.stdout + proc.stderr


def _losses(log):
    return [float(v) for v in re.findall(r"\[train_inner\].*? loss=([-0-9.]+)", log)]


def _gnorms(log):
    return [float(v) for v in re.findall(r"\[train_inner\].*? gnorm=([-0-9.]+)", log)]


def _nsignals(log):
    return [int(v) for v in re.findall(r"\[train_inner\].*? nsignals=([0-9]+)", log)]


def _weights(path):
    import torch

    state = torch.load(path, map_location="cpu", weights_only=False)["model"]
    return {
        k: v.double()
        for k, v in state.items()
        if v.dtype.is_floating_point and "running_" not in k and "num_batches_tracked" not in k
    }


@pytest.mark.slow  # two trainings per family (one with two worker processes): about 40 s each on 2 cores
@pytest.mark.parametrize("family", list(CASES))
def test_two_gloo_workers_match_one_process_with_the_global_batch(family, layouts, tmp_path):
    import torch

    config, ddp_layout, ddp_batch, one_layout, one_batch, overrides = CASES[family]
    ddp_log = _train(config, layouts[ddp_layout], tmp_path / "ddp", ddp_batch, 2, overrides)
    one_log = _train(config, layouts[one_layout], tmp_path / "one", one_batch, 1, overrides)
    assert "initialized host" in ddp_log and "as rank 1" in ddp_log  # two processes joined the group
    ddp, one = _losses(ddp_log), _losses(one_log)
    assert len(ddp) == len(one) == UPDATES, (ddp_log[-3000:], one_log[-3000:])
    assert all(math.isfinite(v) for v in ddp)
    if "nsignals=" in ddp_log:
        assert _nsignals(ddp_log) == [2 * ddp_batch] * UPDATES  # the logged batch is the global one
    # Adam's step does not depend on the gradient's scale: the first gradient norm checks that scale (the
    # all-reduce's average against the criterion's sample size), before later updates amplify float noise
    assert _gnorms(ddp_log)[0] == pytest.approx(_gnorms(one_log)[0], rel=1e-3)
    for a, b in zip(ddp, one):
        assert a == pytest.approx(b, rel=1e-3, abs=1.5e-3), (ddp, one)
    assert len(set(one)) > 1  # the updates changed the model
    a, b = _weights(tmp_path / "ddp/checkpoint_last.pt"), _weights(tmp_path / "one/checkpoint_last.pt")
    assert set(a) == set(b)
    flat_a, flat_b = torch.cat([a[k].flatten() for k in a]), torch.cat([b[k].flatten() for k in a])
    assert float((flat_a - flat_b).norm() / flat_b.norm()) < 1e-3


def test_cpu_workers_start_through_the_fix():
    """The `cpu_distributed` fix is in place after the launcher's patches: fairseq-signals' `call_main` is the
    package's, the process group falls back to gloo without CUDA, and DDP accepts a CPU module."""
    import torch
    from fairseq_signals.distributed import utils as distributed_utils
    from fairseq_signals.models import distributed_model

    from physioclr_ext.runners import compat

    compat.apply_patches()
    assert distributed_utils.call_main is compat.call_main
    assert isinstance(distributed_utils.dist, compat._GlooWithoutCUDA)
    assert getattr(distributed_model.DistributedDataParallel, "_physioclr_patched", False)
    assert compat.patch_cpu_distributed() is False  # idempotent
    if not torch.cuda.is_available():
        code = (
            "import torch.distributed as dist, torch\n"
            "from physioclr_ext.runners import compat\n"
            "compat.apply_patches()\n"
            "from fairseq_signals.distributed import utils as du\n"
            "from fairseq_signals.models import distributed_model as dm\n"
            "du.dist.init_process_group(backend='nccl', init_method='tcp://localhost:PORT', world_size=1, rank=0)\n"
            "assert dist.get_backend() == 'gloo'\n"
            "m = dm.DistributedDataParallel(torch.nn.Linear(2, 2), device_ids=[0], output_device=0)\n"
            "print(du.all_gather_list({'a': 1}), float(m(torch.ones(1, 2)).sum()) == float(m(torch.ones(1, 2)).sum()))\n"
        ).replace("PORT", str(compat._free_port()))
        proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
        assert proc.returncode == 0, proc.stderr[-3000:]
        assert proc.stdout.strip() == "[{'a': 1}] True"


@pytest.fixture(scope="module")
def two_records(tmp_path_factory):
    """Two bundled LUDB records preprocessed (fairseq_signals preset: 4 windows of 12 x 2500) with features."""
    from physioclr_ext.features.pipeline import FeatureOptions, extract_directory
    from physioclr_ext.preprocess import PreprocessConfig
    from physioclr_ext.preprocess import run as preprocess

    source, out = tmp_path_factory.mktemp("two_in"), tmp_path_factory.mktemp("two_out")
    for record in ("1", "2"):
        for path in LUDB.glob(f"{record}.*"):
            shutil.copy(path, source / path.name)
    config = PreprocessConfig.from_preset(
        "fairseq_signals", input=str(source), output=str(out), workers=1, progress=False, split="random",
        split_fractions=(1.0, 0.0, 0.0),
    )  # fmt: skip
    preprocess(config)
    extract_directory(out, FeatureOptions(progress=False))
    return out


def test_a_window_draws_the_same_views_in_any_batch(two_records):
    """Per-window randomness (issue 15): a window's augmented views, its crop to `max_sample_size` and its
    heartbeat-shuffled view depend on (seed, epoch, window index) only, not on the batch, the worker or the
    position, so a resumed run and two workers draw what one uninterrupted process draws; they change with the
    epoch and the seed."""
    import torch

    import physioclr_ext

    physioclr_ext.register()
    from physioclr_ext.data import PhysioCLRDataset
    from physioclr_ext.data.ecg_ssl_dataset import ECGSSLDataset

    manifest = str(two_records / "train.tsv")
    augmentations = [{"name": "time_warp", "p": 0.5}, {"name": "gaussian_noise", "factor": 0.1}]

    def views(batch, epoch=1, seed=1):
        ds = ECGSSLDataset(manifest, None, augmentations=augmentations, seed=seed, max_sample_size=2000)
        ds.set_epoch(epoch)
        out = ds.collator([ds[i] for i in batch])
        return {int(i): out["net_input"]["views"][:, row] for row, i in enumerate(out["id"])}

    alone, together = views([2]), views([0, 3, 2, 1])
    assert together[2].shape == (2, 12, 2000) and not torch.equal(together[2][0], together[2][1])
    assert torch.equal(alone[2], together[2])
    assert not torch.equal(views([2], epoch=2)[2], alone[2]) and not torch.equal(views([2], seed=2)[2], alone[2])

    physioclr = PhysioCLRDataset(manifest, None, pad=True)

    def shuffled(batch):
        out = physioclr.collator([physioclr[i] for i in batch])
        return {int(i): out["net_input"]["shuffled"][row] for row, i in enumerate(out["id"])}

    together = shuffled([3, 1, 0, 2])
    for i in range(len(physioclr)):
        assert torch.equal(shuffled([i])[i], together[i]), i
    # a window with two beats may keep its order (one permutation in two); the four together do not all keep it
    assert any(not torch.equal(together[i], physioclr[i]["source"]) for i in together)
