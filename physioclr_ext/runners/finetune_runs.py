"""Fine-tuning protocols through the real fairseq-signals trainer: few-shot and repeated sub-sampling.

Each run writes its own data directory (manifests that point at the original windows),
fine-tunes with ``physioclr-hydra-train`` in a subprocess, keeps the checkpoint with the
best validation loss (fairseq-signals' ``checkpoint_best.pt``) and scores it on the
test manifest in this process. Runs that finished (their ``metrics.json`` exists) are
skipped on a re-run, so an interrupted protocol resumes where it stopped.

* :func:`few_shot`: exactly ``n`` labelled training windows (optionally ``n`` per
  class) per seed, fine-tuned from a pretrained checkpoint and, on the same windows,
  the same architecture from scratch; optionally with the head initialised from a
  linear probe on each run's starting encoder (LP-FT).
* :func:`repeated`: ``K`` times, a new patient split of all windows into
  train/valid/test; optionally a fresh pretraining on the training patients of that
  repeat only, so validation and test patients never reach pretraining.

This module needs fairseq-signals (training runs through its console scripts).
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

from physioclr_ext.evaluation.metrics import TaskType, classification_metrics, infer_task_type, probabilities
from physioclr_ext.evaluation.predictions import Manifest, load_window_metadata

# <repo>/configs (this file is <repo>/physioclr_ext/runners/finetune_runs.py)
REPO_CONFIGS = os.path.normpath(
    os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir, os.pardir, "configs")
)

SCHEDULE_DEFAULTS = {
    "optimization.max_update": "100",
    "optimization.max_epoch": "0",
    "dataset.validate_interval": "1000000",
    "dataset.validate_interval_updates": "20",
    "checkpoint.save_interval": "1000000",
    "checkpoint.save_interval_updates": "20",
    "checkpoint.keep_interval_updates": "1",
    "checkpoint.no_epoch_checkpoints": "true",
}
"""Update-based schedule: with few labels an epoch is one batch, so validation and the
checkpoint choice happen every 20 updates instead of every epoch."""


@dataclass
class TrainSpec:
    """How to run one fine-tuning (or pretraining) job."""

    config_dir: str = os.path.join(REPO_CONFIGS, "finetuning")
    config_name: str = "ecg_transformer_classifier_tiny"
    overrides: List[str] = field(default_factory=list)
    python: str = sys.executable

    def console_script(self, name: str = "physioclr-hydra-train") -> str:
        path = os.path.join(os.path.dirname(self.python), name)
        return path if os.path.exists(path) else name


def _key(override: str) -> str:
    return override.split("=", 1)[0].lstrip("+")


def merge_overrides(defaults: Dict[str, str], *groups: Sequence[str]) -> List[str]:
    """Defaults as ``key=value`` unless a later group sets the key; later groups win."""
    merged: Dict[str, str] = {k: f"{k}={v}" for k, v in defaults.items()}
    for group in groups:
        for item in group:
            merged.pop(_key(item), None)
            merged[_key(item)] = item
    return list(merged.values())


def write_data_dir(dest: str, root: str, subsets: Dict[str, Sequence[str]], sizes: Dict[str, int]) -> str:
    """Manifests ``dest/<subset>.tsv`` listing the given window paths (relative to ``root``)."""
    os.makedirs(dest, exist_ok=True)
    for subset, paths in subsets.items():
        with open(os.path.join(dest, f"{subset}.tsv"), "w", encoding="utf-8") as fh:
            fh.write(root + "\n")
            fh.writelines(f"{p}\t{sizes[p]}\n" for p in paths)
    return dest


def pos_weight(labels: np.ndarray) -> List[float]:
    """Negatives / positives per label column (1.0 where a column has no positive)."""
    labels = labels.reshape(len(labels), -1)
    pos = labels.sum(axis=0)
    neg = len(labels) - pos
    return [float(n / p) if p > 0 else 1.0 for n, p in zip(neg, pos)]


def _run_logged(cmd: List[str], log_path: str) -> None:
    with open(log_path, "w", encoding="utf-8") as log:
        proc = subprocess.run(cmd, stdout=log, stderr=subprocess.STDOUT, text=True)
    if proc.returncode != 0:
        with open(log_path, encoding="utf-8") as log:
            tail = log.read()[-4000:]
        raise RuntimeError(f"{' '.join(cmd[:3])} ... failed ({proc.returncode}); log {log_path}:\n{tail}")


def architecture_of(checkpoint: str, config_path: str) -> List[str]:
    """The checkpoint's encoder architecture as overrides for the fine-tuning config."""
    from physioclr_ext.runners.checkpoints import finetuning_overrides

    return finetuning_overrides(checkpoint, config_path)


def fit_to_data(spec: TrainSpec, data: str, checkpoint: Optional[str] = None) -> TrainSpec:
    """``spec`` with the overrides that fit its config to the shape of ``data`` (its ``preprocess.json``;
    with ``checkpoint``, the leads the checkpoint was trained on) before its own, which win.

    Raises:
        physioclr_ext.runners.data_shape.DataShapeError: the data cannot go through the config or checkpoint.
    """
    from physioclr_ext.runners.data_shape import shape_overrides

    config = os.path.join(spec.config_dir, spec.config_name + ".yaml")
    shape = shape_overrides(config, data, spec.overrides, checkpoint)
    return dataclasses.replace(spec, overrides=[*shape, *spec.overrides])


def finetune(
    spec: TrainSpec,
    data_dir: str,
    out_dir: str,
    checkpoint: Optional[str],
    seed: int,
    num_labels: int,
    weights: Optional[List[float]] = None,
    scratch: bool = False,
    head_init: Optional[str] = None,
) -> str:
    """Fine-tune (or, with ``scratch``, train the same architecture from random
    weights) on ``data_dir``, the head starting from the ``.npz`` at ``head_init`` if given;
    returns the path of ``checkpoint_best.pt``."""
    if checkpoint is None:
        raise ValueError("fine-tuning needs a pretrained checkpoint (give --checkpoint or --pretrain-config)")
    config_path = os.path.join(spec.config_dir, spec.config_name + ".yaml")
    ours = [
        f"task.data={data_dir}",
        f"model.model_path={checkpoint}",
        f"model.num_labels={num_labels}",
        f"checkpoint.save_dir={out_dir}",
        f"hydra.run.dir={out_dir}",
        f"common.seed={seed}",
    ]
    if scratch:
        ours.append("model.no_pretrained_weights=true")
    if head_init is not None:
        ours.append(head_init_override(config_path, head_init))
    if weights is not None:
        ours.append("criterion.pos_weight=[" + ",".join(f"{w:.6g}" for w in weights) + "]")
    overrides = merge_overrides(SCHEDULE_DEFAULTS, architecture_of(checkpoint, config_path), ours, spec.overrides)
    cmd = [spec.console_script(), "--config-dir", spec.config_dir, "--config-name", spec.config_name, *overrides]
    os.makedirs(out_dir, exist_ok=True)
    _run_logged(cmd, os.path.join(out_dir, "train.log"))
    best = os.path.join(out_dir, "checkpoint_best.pt")
    if not os.path.exists(best):
        raise RuntimeError(f"no {best}: the run never validated (see {out_dir}/train.log)")
    return best


def check_head_init_model(config_path: str) -> dict:
    """The fine-tuning config's ``model`` section, if its model can start from a probe's head.

    Raises:
        ValueError: the config's model is not ``ecg_ssl_classifier``, the one model with ``head_init``.
    """
    from physioclr_ext.runners.checkpoints import yaml_model_section

    model = yaml_model_section(config_path)
    if model.get("_name") != "ecg_ssl_classifier":
        raise ValueError(
            f"a head initialised from a linear probe needs the ecg_ssl_classifier model; {config_path} "
            f"fine-tunes {model.get('_name')}"
        )
    return model


def head_init_override(config_path: str, path: str) -> str:
    """The override that gives ``ecg_ssl_classifier`` the head at ``path`` (appended where the config lacks the key).

    Raises:
        ValueError: see :func:`check_head_init_model`.
    """
    model = check_head_init_model(config_path)
    return ("" if "head_init" in model else "+") + f"model.head_init={path}"


def pretrain(spec: TrainSpec, data_dir: str, out_dir: str, seed: int) -> str:
    """Pretrain on ``data_dir/train.tsv``; returns ``checkpoint_last.pt``."""
    ours = [
        f"task.data={data_dir}",
        f"checkpoint.save_dir={out_dir}",
        f"hydra.run.dir={out_dir}",
        f"common.seed={seed}",
    ]
    cmd = [
        spec.console_script(),
        "--config-dir",
        spec.config_dir,
        "--config-name",
        spec.config_name,
        *merge_overrides({}, ours, spec.overrides),
    ]
    os.makedirs(out_dir, exist_ok=True)
    _run_logged(cmd, os.path.join(out_dir, "pretrain.log"))
    return os.path.join(out_dir, "checkpoint_last.pt")


def score(checkpoint: str, data_dir: str, subset: str = "test", threshold: float = 0.5) -> Dict[str, float]:
    """Metrics of ``checkpoint`` on ``data_dir/<subset>.tsv`` (logits computed in-process)."""
    from physioclr_ext.runners.extract_embeddings import load_checkpoint, run_subset

    logits = run_subset(load_checkpoint(checkpoint, data_dir), subset, "logits", progress=False)
    labels, _, _ = load_window_metadata(Manifest.read(os.path.join(data_dir, f"{subset}.tsv")))
    task = infer_task_type(labels, logits.shape[1])
    y = labels if task == "multilabel" else labels[:, 0]
    return classification_metrics(y, probabilities(logits, task), task, threshold)


@dataclass
class Windows:
    """All windows of the manifests of one preprocessed data directory."""

    root: str
    paths: List[str]
    sizes: Dict[str, int]
    labels: np.ndarray
    patients: np.ndarray
    split: np.ndarray

    @classmethod
    def read(cls, data: str, subsets: Sequence[str] = ("train", "valid", "test")) -> Windows:
        manifests = {
            s: Manifest.read(os.path.join(data, f"{s}.tsv"))
            for s in subsets
            if os.path.exists(os.path.join(data, f"{s}.tsv"))
        }
        roots = sorted({m.root for m in manifests.values()})
        if len(roots) != 1:
            raise ValueError(f"{data}: manifests must share one root, found {roots}")
        paths: List[str] = []
        sizes: Dict[str, int] = {}
        labels: List[Any] = []
        patients: List[Any] = []
        split: List[str] = []
        for subset, manifest in manifests.items():
            lab, _, pat = load_window_metadata(manifest)
            paths += manifest.paths
            sizes.update(zip(manifest.paths, manifest.sizes))
            labels.append(lab)
            patients += pat
            split += [subset] * len(manifest)
        return cls(roots[0], paths, sizes, np.concatenate(labels), np.asarray(patients), np.asarray(split))

    def subset_paths(self, indices: np.ndarray) -> List[str]:
        return [self.paths[i] for i in indices]


def _save_run(path: str, record: dict) -> None:
    with open(path, "w", encoding="utf-8") as fh:
        json.dump(record, fh, indent=2)


def _load_run(path: str) -> Optional[dict]:
    if os.path.exists(path):
        with open(path, encoding="utf-8") as fh:
            return json.load(fh)
    return None


def few_shot(
    data: str,
    checkpoint: str,
    out: str,
    ns: Sequence[int],
    seeds: Sequence[int],
    spec: TrainSpec,
    balanced: bool = False,
    scratch: bool = True,
    progress: bool = True,
    head_init: bool = False,
    scratch_checkpoint: Optional[str] = None,
) -> Dict[str, List[dict]]:
    """Fine-tune with exactly ``n`` labelled training windows per seed; returns the per-run
    metrics grouped by setting ``"n=<n>/pretrained"`` and ``"n=<n>/scratch"``.

    The scratch arm starts from ``scratch_checkpoint`` (a random initialisation of the same
    architecture) if given, else from the run seed's own random weights
    (``model.no_pretrained_weights``). With ``head_init`` each run first fits
    :func:`~physioclr_ext.evaluation.probes.probe_head` on its starting encoder's embeddings of its
    training and validation windows and starts the head there (LP-FT, Kumar et al., ICLR 2022);
    the scratch arm then needs ``scratch_checkpoint``, whose encoder is the one fine-tuned.
    """
    from tqdm import tqdm

    from physioclr_ext.evaluation.sampling import n_shot_indices

    if head_init and scratch and scratch_checkpoint is None:
        raise ValueError(
            "head_init with the scratch arm needs scratch_checkpoint (a random initialisation saved as a "
            "checkpoint, e.g. benchmarks/ssl_table/stages.random_init_checkpoint): the probe is fit on the "
            "encoder the run starts from"
        )
    # Hydra changes the working directory of each run: every path it gets is absolute.
    data, checkpoint, out = (os.path.abspath(p) for p in (data, checkpoint, out))
    scratch_checkpoint = os.path.abspath(scratch_checkpoint) if scratch_checkpoint else None
    spec = fit_to_data(spec, data, checkpoint)  # the run directories hold manifests only
    if head_init:  # before any run: the fine-tuning model must take a head
        check_head_init_model(os.path.join(spec.config_dir, spec.config_name + ".yaml"))
    windows = Windows.read(data)
    train = np.flatnonzero(windows.split == "train")
    num_labels = windows.labels.shape[1] if windows.labels.shape[1] > 1 else _n_outputs(windows.labels)
    kinds = ["pretrained", "scratch"] if scratch else ["pretrained"]
    jobs = [(n, s, k) for n in ns for s in seeds for k in kinds]
    valid_embeddings: Dict[str, np.ndarray] = {}  # per starting checkpoint: every run shares the valid split
    results: Dict[str, List[dict]] = {}
    for n, seed, kind in tqdm(jobs, desc="few-shot runs", disable=not progress):
        run_dir = os.path.join(out, f"n{n}", f"seed{seed}", kind)
        start = scratch_checkpoint if kind == "scratch" and scratch_checkpoint else checkpoint
        from_random = kind == "scratch" and scratch_checkpoint is None
        record = _load_run(os.path.join(run_dir, "metrics.json"))
        if record is not None:
            _check_same_start(record, run_dir, head_init, None if kind == "pretrained" else scratch_checkpoint)
        else:
            chosen = train[n_shot_indices(_class_labels(windows.labels[train]), n, seed, balanced)]
            data_dir = write_data_dir(
                os.path.join(run_dir, "data"),
                windows.root,
                {
                    "train": windows.subset_paths(chosen),
                    "valid": windows.subset_paths(np.flatnonzero(windows.split == "valid")),
                    "test": windows.subset_paths(np.flatnonzero(windows.split == "test")),
                },
                windows.sizes,
            )
            weights = pos_weight(windows.labels[chosen]) if num_labels == windows.labels.shape[1] else None
            head = write_probe_head(start, data_dir, run_dir, num_labels, seed, valid_embeddings) if head_init else None
            head_path = head["path"] if head else None
            best = finetune(spec, data_dir, run_dir, start, seed, num_labels, weights, from_random, head_path)
            record = {
                "n": n,
                "seed": seed,
                "kind": kind,
                "train_windows": len(chosen),
                "metrics": score(best, data_dir),
            }
            if kind == "scratch" and scratch_checkpoint:
                record["scratch_checkpoint"] = scratch_checkpoint
            if head is not None:
                record["head_init"] = {k: v for k, v in head.items() if k != "path"}
            _save_run(os.path.join(run_dir, "metrics.json"), record)
            os.remove(best)  # keep disk use flat over many runs
        results.setdefault(f"n={n}/{kind}", []).append(record)
    return results


def _check_same_start(record: dict, run_dir: str, head_init: bool, scratch_checkpoint: Optional[str]) -> None:
    """A finished run is reused only if it started as asked (same head initialisation and scratch weights)."""
    found = (record.get("head_init") is not None, record.get("scratch_checkpoint"))
    if found != (head_init, scratch_checkpoint):
        raise ValueError(
            f"{run_dir}/metrics.json: a finished run with head_init={found[0]}, scratch_checkpoint={found[1]}, "
            f"not head_init={head_init}, scratch_checkpoint={scratch_checkpoint}; give another output directory"
        )


def write_probe_head(
    checkpoint: str,
    data_dir: str,
    run_dir: str,
    num_labels: int,
    seed: int,
    valid_cache: Optional[Dict[str, np.ndarray]] = None,
) -> Dict[str, Any]:
    """Fit :func:`~physioclr_ext.evaluation.probes.probe_head` on ``checkpoint``'s pooled embeddings of
    ``data_dir``'s train and valid windows and save it as ``run_dir/head_init.npz`` (what ``model.head_init`` reads).

    ``valid_cache`` (keyed by checkpoint) spares embedding the same validation windows in every run.
    Returns the probe's selection record with ``path``.
    """
    from physioclr_ext.evaluation.probes import probe_head
    from physioclr_ext.runners.extract_embeddings import load_checkpoint, run_subset

    loaded = load_checkpoint(checkpoint, data_dir)
    x_train = run_subset(loaded, "train", "embed", progress=False)
    cache = valid_cache if valid_cache is not None else {}
    if checkpoint not in cache:
        cache[checkpoint] = run_subset(loaded, "valid", "embed", progress=False)
    (y_train, y_valid), task = _probe_targets(data_dir, num_labels)
    weight, bias, info = probe_head(
        (x_train, y_train), (cache[checkpoint], y_valid), task, seed=seed, n_outputs=num_labels
    )
    path = os.path.join(run_dir, "head_init.npz")
    np.savez(path, weight=weight.astype(np.float32), bias=bias.astype(np.float32))
    return {"path": path, "checkpoint": checkpoint, "task": task, **info}


def _probe_targets(data_dir: str, num_labels: int) -> Tuple[Tuple[np.ndarray, np.ndarray], TaskType]:
    """The train and valid labels of ``data_dir`` in the probes' convention, and the task of a ``num_labels`` head."""
    labels = [load_window_metadata(Manifest.read(os.path.join(data_dir, f"{s}.tsv")))[0] for s in ("train", "valid")]
    task = infer_task_type(labels[0], num_labels)
    if task == "multilabel":
        return (labels[0], labels[1]), task
    cast = (lambda a: a[:, 0].astype(np.int64)) if task == "multiclass" else (lambda a: a[:, 0])
    return (cast(labels[0]), cast(labels[1])), task


def _class_labels(labels: np.ndarray) -> np.ndarray:
    return labels[:, 0] if labels.shape[1] == 1 else labels


def _n_outputs(labels: np.ndarray) -> int:
    """Outputs for one label column: 1 for 0/1 labels, else the number of classes."""
    values = np.unique(labels[:, 0])
    return 1 if set(values.tolist()) <= {0.0, 1.0} else int(values.max()) + 1


def repeated(
    data: str,
    out: str,
    repeats: int,
    seed: int,
    spec: TrainSpec,
    checkpoint: Optional[str] = None,
    pretrain_spec: Optional[TrainSpec] = None,
    fractions: Sequence[float] = (0.7, 0.15, 0.15),
    progress: bool = True,
) -> Dict[str, List[dict]]:
    """Repeated random sub-sampling over patients; per repeat a new split (seed + r),
    fine-tuning on train, checkpoint choice on valid, scores on test. With
    ``pretrain_spec`` each repeat first pretrains on its own training patients."""
    from tqdm import tqdm

    from physioclr_ext.evaluation.sampling import patient_split

    if checkpoint is None and pretrain_spec is None:
        raise ValueError("give a pretrained checkpoint or a pretraining configuration")
    data, out = os.path.abspath(data), os.path.abspath(out)
    checkpoint = os.path.abspath(checkpoint) if checkpoint else None
    windows = Windows.read(data)
    num_labels = windows.labels.shape[1] if windows.labels.shape[1] > 1 else _n_outputs(windows.labels)
    if pretrain_spec is not None:
        pretrain_spec = fit_to_data(pretrain_spec, data)
    results: Dict[str, List[dict]] = {}
    for r in tqdm(range(repeats), desc="repeats", disable=not progress):
        run_dir = os.path.join(out, f"repeat{r}")
        record = _load_run(os.path.join(run_dir, "metrics.json"))
        if record is None:
            split = patient_split(
                windows.patients,
                fractions,
                seed + r,
                stratify=_class_labels(windows.labels) if windows.labels.shape[1] == 1 else None,
            )
            data_dir = write_data_dir(
                os.path.join(run_dir, "data"),
                windows.root,
                {k: windows.subset_paths(v) for k, v in split.items()},
                windows.sizes,
            )
            ckpt = checkpoint
            if pretrain_spec is not None:
                ckpt = pretrain(pretrain_spec, data_dir, os.path.join(run_dir, "pretrain"), seed + r)
            weights = pos_weight(windows.labels[split["train"]]) if num_labels == windows.labels.shape[1] else None
            fitted = fit_to_data(spec, data, ckpt)
            best = finetune(fitted, data_dir, os.path.join(run_dir, "finetune"), ckpt, seed + r, num_labels, weights)
            record = {
                "repeat": r,
                "seed": seed + r,
                "checkpoint": ckpt,
                "pretrained_on_train_patients_only": pretrain_spec is not None,
                "patients": {k: sorted({int(p) for p in windows.patients[v]}) for k, v in split.items()},
                "metrics": score(best, data_dir),
            }
            _save_run(os.path.join(run_dir, "metrics.json"), record)
            os.remove(best)
        results.setdefault("repeated", []).append(record)
    return results
