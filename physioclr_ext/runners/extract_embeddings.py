"""Run a fairseq-signals checkpoint over a manifest: pooled embeddings or logits.

Works for any checkpoint that fairseq-signals can load: this package's models, and
fairseq-signals' own ``wav2vec2``, ``ecg_transformer`` and ``*_classifier`` models.
Windows are read through the checkpoint's own task and dataset (so lead selection,
normalisation and sampling-rate checks are those of training), in manifest order,
without augmentation and without gradients.

The representation is :func:`physioclr_ext.models.representation.pooled_embedding`.

This module imports fairseq-signals: use it where fairseq-signals is installed.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Iterator, List, Optional, Tuple

import numpy as np
import torch

from physioclr_ext.models.representation import pooled_embedding


@dataclass
class LoadedCheckpoint:
    """A model restored from a checkpoint with the task that reads its data."""

    model: Any
    task: Any
    cfg: Any
    path: str


def load_checkpoint(path: str, data: str, device: str = "cpu") -> LoadedCheckpoint:
    """Restore ``path`` for inference on the manifests in ``data``.

    Fine-tuning models are rebuilt from their own configuration
    (``model_path=None, no_pretrained_weights=True``), as fairseq-signals'
    inference does, so the pretrained checkpoint they started from is not needed.
    """
    from fairseq_signals.utils import checkpoint_utils

    import physioclr_ext

    physioclr_ext.register()  # the plugin's models, and the compat fixes

    overrides = {"model_path": None, "no_pretrained_weights": True, "data": os.path.abspath(data)}
    model, cfg, task = checkpoint_utils.load_model_and_task(path, checkpoint_overrides=overrides)
    model.eval().to(device)
    return LoadedCheckpoint(model, task, cfg, path)


def _load_subset(loaded: LoadedCheckpoint, subset: str) -> Any:
    if callable(getattr(loaded.task, "load_windows", None)):  # windows one by one, whatever the pretraining views
        loaded.task.load_windows(subset)
    else:
        loaded.task.load_dataset(subset, combine=False, epoch=1, task_cfg=loaded.cfg.task, label=False, shuffle=False)
    dataset = loaded.task.dataset(subset)
    if hasattr(dataset, "training"):
        dataset.training = False  # no augmentation when embedding a "train" subset
    return dataset


def _batches(dataset: Any, batch_size: int) -> Iterator[Tuple[List[int], dict]]:
    for start in range(0, len(dataset), batch_size):
        ids = list(range(start, min(start + batch_size, len(dataset))))
        yield ids, dataset.collator([dataset[i] for i in ids])


def model_logits(model: Any, net_input: dict) -> torch.Tensor:
    """Classifier logits of a batch, (B, K)."""
    return model.get_logits(model(**net_input))


def run_subset(
    loaded: LoadedCheckpoint,
    subset: str,
    what: str = "embed",
    batch_size: int = 64,
    device: str = "cpu",
    progress: bool = True,
) -> np.ndarray:
    """Embeddings (N, E) or logits (N, K) of every window of ``<data>/<subset>.tsv``, in order."""
    from tqdm import tqdm

    fn = pooled_embedding if what == "embed" else model_logits
    dataset = _load_subset(loaded, subset)
    out: List[np.ndarray] = []
    bar = tqdm(total=len(dataset), desc=f"{what} {subset}", unit="window", disable=not progress)
    with torch.no_grad():
        for ids, batch in _batches(dataset, batch_size):
            net_input = {k: v.to(device) if torch.is_tensor(v) else v for k, v in batch["net_input"].items()}
            out.append(fn(loaded.model, net_input).float().cpu().numpy())
            bar.update(len(ids))
    bar.close()
    result = np.concatenate(out) if out else np.zeros((0, 0), np.float32)
    return result.reshape(len(result), -1)


def embed_subsets(
    checkpoint: str,
    data: str,
    out_dir: str,
    subsets: List[str],
    batch_size: int = 64,
    device: Optional[str] = None,
    progress: bool = True,
) -> dict:
    """Write pooled embeddings of each subset with their labels, record and patient ids.

    Layout: see :class:`physioclr_ext.evaluation.embeddings.Embeddings`.
    """
    from physioclr_ext.evaluation.embeddings import Embeddings, write_metadata
    from physioclr_ext.evaluation.predictions import Manifest, load_window_metadata
    from physioclr_ext.evaluation.results import file_sha256

    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    loaded = load_checkpoint(checkpoint, data, device)
    shapes = {}
    for subset in subsets:
        x = run_subset(loaded, subset, "embed", batch_size, device, progress)
        manifest = Manifest.read(os.path.join(data, f"{subset}.tsv"))
        labels, idx, patients = load_window_metadata(manifest)
        Embeddings(
            x.astype(np.float32), labels.astype(np.float32), np.asarray(idx), np.asarray(patients), list(manifest.paths)
        ).save(out_dir, subset)
        shapes[subset] = list(x.shape)
    meta = {
        "checkpoint": os.path.abspath(checkpoint),
        "checkpoint_sha256": file_sha256(checkpoint),
        "data": os.path.abspath(data),
        "subsets": shapes,
        "model": str(loaded.cfg.model.get("_name")),
    }
    write_metadata(out_dir, meta)
    return meta
