"""Two-stage methods: a model trained on top of the frozen checkpoint of another method (stage 1).

``ecg_vqvae`` (a VQ-VAE head on the pooled embedding) trains on the unlabeled pool; ``ecg_triplet``
(a triplet-loss projection head) needs labels and trains on one task's labelled training windows
(:func:`labelled_data_dir`). Both read the stage-1 checkpoint from ``model.model_path``
(:func:`stage2_overrides`) and keep its config, so their checkpoints rebuild (and re-initialise) the
base without it. :func:`hydra_train` is the plain ``physioclr-hydra-train`` call that
``benchmarks/vqvae_codebook.py`` and ``benchmarks/triplet_eval.py`` train both models with.

No fairseq-signals import: the console script runs in a subprocess.
"""

from __future__ import annotations

import os
import subprocess
import sys
from typing import TYPE_CHECKING, Dict, List

from ssl_table.methods import LABELLED_N, LABELLED_SEED, Contract, Method, contract_channels

if TYPE_CHECKING:
    from physioclr_ext.evaluation.predictions import Manifest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def hydra_train(config_dir: str, config: str, data: str, out: str, overrides: List[str]) -> None:
    """``physioclr-hydra-train`` of ``configs/<config_dir>/<config>.yaml`` on ``data`` into ``out`` (log
    ``out/train.log``); skipped when ``out/checkpoint_last.pt`` exists."""
    if os.path.exists(os.path.join(out, "checkpoint_last.pt")):
        return
    os.makedirs(out, exist_ok=True)
    exe = os.path.join(os.path.dirname(sys.executable), "physioclr-hydra-train")
    cmd = [exe, "--config-dir", os.path.join(REPO, "configs", config_dir), "--config-name", config]
    cmd += [f"task.data={data}", f"checkpoint.save_dir={out}", f"hydra.run.dir={out}", *overrides]
    with open(os.path.join(out, "train.log"), "w", encoding="utf-8") as fh:
        subprocess.run(cmd, check=True, stdout=fh, stderr=subprocess.STDOUT)


def base_override(base_checkpoint: str) -> str:
    """The override that puts a stage-1 checkpoint under a two-stage model (frozen by the configs)."""
    return f"model.model_path={os.path.abspath(base_checkpoint)}"


def stage2_overrides(method: Method, contract: Contract, base_checkpoint: str) -> List[str]:
    """Overrides of a stage-2 run: the base checkpoint, and the contract's channels and window length where
    the model reconstructs its input (VQ-VAE: ``model.in_channels``, ``model.signal_len``).

    >>> from ssl_table.methods import CONTRACTS, METHODS
    >>> stage2_overrides(METHODS["ecg_vqvae"], CONTRACTS["one_lead"], "/r/base.pt")
    ['model.model_path=/r/base.pt', 'model.in_channels=1', 'model.signal_len=3600']
    """
    overrides = [base_override(base_checkpoint)]
    if method.channels_key:
        overrides.append(f"{method.channels_key}={contract_channels(contract)}")
    if method.length_key:
        overrides.append(f"{method.length_key}={contract.window_samples}")
    return overrides


def validation_schedule(max_update: int, validations: int = 10) -> List[str]:
    """Validate (and save ``checkpoint_best.pt`` by the config's metric) every ``max_update / validations``
    updates instead of every epoch: with a few hundred labelled windows an epoch is a few batches.

    >>> validation_schedule(95)[:2]
    ['dataset.validate_interval=1000000', 'dataset.validate_interval_updates=9']
    """
    every = max(1, max_update // validations)
    return [
        "dataset.validate_interval=1000000",
        f"dataset.validate_interval_updates={every}",
        "checkpoint.save_interval=1000000",
        f"checkpoint.save_interval_updates={every}",
        "checkpoint.keep_interval_updates=1",
    ]


def labelled_windows(task_dir: str, n: int = LABELLED_N, seed: int = LABELLED_SEED) -> Dict[str, Manifest]:
    """The windows a labelled stage 2 trains and validates on: ``train`` = the probes' class-balanced draw of
    ``n`` per class at ``seed`` from ``task_dir/train.tsv`` (the probes' ``subsample``: ``n_shot_indices`` on
    the labels the embeddings carry, in manifest order), ``valid`` = all of ``valid.tsv``. The test manifest
    is never read."""
    from physioclr_ext.evaluation.predictions import Manifest, load_window_metadata
    from physioclr_ext.evaluation.sampling import n_shot_indices

    train = Manifest.read(os.path.join(task_dir, "train.tsv"))
    labels = load_window_metadata(train)[0]
    picked = n_shot_indices(labels[:, 0] if labels.shape[1] == 1 else labels, n, seed, balanced=True)
    chosen = Manifest(train.root, [train.paths[i] for i in picked], [train.sizes[i] for i in picked])
    return {"train": chosen, "valid": Manifest.read(os.path.join(task_dir, "valid.tsv"))}


def labelled_data_dir(task_dir: str, dest: str, n: int = LABELLED_N, seed: int = LABELLED_SEED) -> str:
    """``dest/train.tsv`` and ``dest/valid.tsv`` of :func:`labelled_windows` (``label_def.csv`` and
    ``preprocess.json`` copied from the task); no ``test.tsv``. Kept when done."""
    import shutil

    if os.path.exists(os.path.join(dest, "valid.tsv")):
        return dest
    tmp = dest + ".tmp"
    os.makedirs(tmp, exist_ok=True)
    for split, manifest in labelled_windows(task_dir, n, seed).items():
        with open(os.path.join(tmp, f"{split}.tsv"), "w", encoding="utf-8") as fh:
            fh.write(manifest.root + "\n")
            fh.writelines(f"{p}\t{size}\n" for p, size in zip(manifest.paths, manifest.sizes))
    for name in ("label_def.csv", "preprocess.json"):
        if os.path.exists(os.path.join(task_dir, name)):
            shutil.copy(os.path.join(task_dir, name), os.path.join(tmp, name))
    if os.path.exists(dest):
        shutil.rmtree(dest)
    os.replace(tmp, dest)
    return dest
