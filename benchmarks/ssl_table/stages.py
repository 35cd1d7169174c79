"""The stages of the SSL table that run preprocessing and fairseq-signals.

Each stage writes its outputs under the work directory and is skipped when they exist, so an
interrupted table resumes where it stopped. Pretraining, embedding and fine-tuning go through
the package's console scripts and evaluation protocols (``physioclr-hydra-train``,
``python -m physioclr_ext.evaluation embed / few-shot``); the probes call the same protocol
functions as ``linear-probe`` and ``knn`` in this process.
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence

import numpy as np

from ssl_table.methods import CONTRACTS, SOURCES, TASKS, Contract, Method, source_options
from ssl_table.plots import parse_train_log, seconds_per_update
from ssl_table.pool import read_manifest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CONFIGS = os.path.join(REPO, "configs")
"""The repository's Hydra configs (``finetune_runs.REPO_CONFIGS`` resolves to ``physioclr_ext/configs``
since the runners moved into ``physioclr_ext/runners``, a folder that does not exist)."""
CALIBRATION_UPDATES = 30


def log(message: str) -> None:
    print(f"[ssl_table {time.strftime('%H:%M:%S')}] {message}", flush=True)


def _read_json(path: str) -> Optional[dict]:
    if os.path.exists(path):
        with open(path, encoding="utf-8") as fh:
            return json.load(fh)
    return None


def _write_json(path: str, value: dict) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8") as fh:
        json.dump(value, fh, indent=2)


# ---------------------------------------------------------------- preprocessing


def preprocess_source(
    data_root: str, contract: Contract, key: str, out: str, workers: int, features: bool = False
) -> dict:
    """Preprocess one source with the contract's options into ``out`` (skipped when done)."""
    done = _read_json(os.path.join(out, "preprocess.json"))
    if done is not None:  # preprocessed already; extract the features if they are now needed
        if features and not os.path.exists(os.path.join(out, "features", "train.npz")):
            _extract_features(out, SOURCES[key])
        return {"status": "reused", "windows": done.get("splits")}
    failed = _read_json(os.path.join(out, "failed.json"))
    if failed is not None:  # e.g. WFDB headers without lead names: no lead of the contract can be found
        return failed
    from physioclr_ext.preprocess import PreprocessConfig, run
    from physioclr_ext.preprocess.pipeline import PreprocessError

    source = SOURCES[key]
    options = {**contract.options, **source_options(source)}
    config = PreprocessConfig.from_preset(
        contract.preset,
        input=os.path.join(data_root, source.path),
        output=out,
        workers=workers,
        progress=False,
        **options,
    )
    try:
        if config.hybrid_channels:  # the entry point chains the hybrid stage after preprocessing
            from physioclr_ext.features.pipeline import preprocess_and_extract

            summary = preprocess_and_extract(config)
        else:
            summary = run(config)
    except PreprocessError as err:
        failed = {"status": "failed", "error": str(err)[:500]}
        _write_json(os.path.join(out, "failed.json"), failed)
        return failed
    if features:
        _extract_features(out, source)
    return {"status": "done", "windows": summary.get("splits")}


def _extract_features(out: str, source) -> None:
    """``python -m physioclr_ext.features`` on a preprocessed source (or a copy from a sibling folder)."""
    if not _share_features(out, source):
        subprocess.run([sys.executable, "-m", "physioclr_ext.features", out, "--pca", "auto"], check=True)


def _window_list(source_dir: str) -> list:
    with open(os.path.join(source_dir, "windows.csv"), newline="", encoding="utf-8") as fh:
        return [(r["path"], r["split"], r["start"]) for r in csv.DictReader(fh)]


def _share_features(out: str, source) -> bool:
    """Copy ``features/`` from a sibling folder of the same recordings with the same windows and
    splits (MIT-BIH with binary and with AAMI labels): features do not depend on labels, and the
    feature cache cannot be shared (its keys include the label options). True when copied."""
    import shutil

    for other in SOURCES.values():
        done = os.path.join(os.path.dirname(out), other.key)
        if (
            other.key == source.key
            or other.path != source.path
            or not os.path.exists(os.path.join(done, "features", "train.npz"))
        ):
            continue
        if _window_list(done) == _window_list(out):
            shutil.copytree(
                os.path.join(done, "features"),
                os.path.join(out, "features"),
                dirs_exist_ok=True,
                ignore=shutil.ignore_patterns("cache"),
            )
            return True
    return False


# ---------------------------------------------------------------- pretraining


def _pretrain_overrides(method: Method, contract: Contract, config_dir: str, config: str) -> List[str]:
    import mitbih_fewshot  # the one-lead model overrides of the MIT-BIH benchmarks

    one_lead = contract.name == "one_lead" and method.base is None  # a two-stage model's base knows its leads
    model = list(mitbih_fewshot.model_overrides(config_dir, config)) if one_lead else []
    if method.length_key and method.base is None:  # CLOCS' CNN is built for one window length
        model.append(f"{method.length_key}={contract.window_samples}")
    return (
        list(contract.signal_overrides) + model + ["optimization.max_epoch=0", "checkpoint.no_epoch_checkpoints=true"]
    )


@dataclass(frozen=True)
class Budget:
    """A pretraining budget: wall-clock training minutes on this machine, or windows seen."""

    minutes: Optional[float] = None
    samples: Optional[int] = None

    def describe(self) -> str:
        if self.samples is not None:
            return f"{self.samples} windows seen per method"
        return f"{self.minutes:g} minutes of training time per method on this machine"


def batch_size(config_path: str, overrides: Sequence[str]) -> int:
    """``dataset.batch_size`` of a config after ``overrides`` (the last override wins)."""
    import yaml

    with open(config_path, encoding="utf-8") as fh:
        size = int(yaml.safe_load(fh)["dataset"]["batch_size"])
    for item in overrides:
        if item.startswith("dataset.batch_size="):
            size = int(item.split("=", 1)[1])
    return size


def _calibrate(config_dir: str, config: str, base: List[str], pool_dir: str, out: str) -> dict:
    """Seconds per update from a :data:`CALIBRATION_UPDATES`-update run (its checkpoints removed)."""
    from physioclr_ext.runners.finetune_runs import TrainSpec, pretrain

    calib = _read_json(os.path.join(out, "calibration.json"))
    if calib is not None:
        return calib
    spec = TrainSpec(
        config_dir, config, base + [f"optimization.max_update={CALIBRATION_UPDATES}", "common.log_interval=5"]
    )
    start = time.time()
    pretrain(spec, pool_dir, out, seed=1)
    with open(os.path.join(out, "pretrain.log"), encoding="utf-8") as fh:
        spu = seconds_per_update(parse_train_log(fh.read()))
    calib = {"updates": CALIBRATION_UPDATES, "seconds_per_update": spu, "wall_seconds": time.time() - start}
    _write_json(os.path.join(out, "calibration.json"), calib)
    for name in os.listdir(out):
        if name.endswith(".pt"):
            os.remove(os.path.join(out, name))
    return calib


def run_overrides(
    method: Method, config: str, gpu: bool = False, extra: Sequence[str] = (), base_checkpoint: Optional[str] = None
) -> List[str]:
    """Overrides of a method's training run before its budget: the contract's signal and model overrides, the
    method's own, for stage 2 of a two-stage method the stage-1 checkpoint and input shape
    (:func:`~ssl_table.two_stage.stage2_overrides`), then ``extra`` (the user's, which win)."""
    from ssl_table.two_stage import stage2_overrides

    contract = CONTRACTS[method.contract]
    overrides = _pretrain_overrides(method, contract, os.path.join(CONFIGS, method.config_dir), config)
    overrides += list(method.overrides)
    if not gpu:
        overrides += list(method.cpu_overrides)
    if method.base is not None:
        if base_checkpoint is None:
            raise ValueError(f"{method.name} is two-stage: it needs the {method.base} checkpoint")
        overrides += stage2_overrides(method, contract, base_checkpoint)
    overrides += list(extra)
    if gpu:
        overrides.append("distributed_training.distributed_world_size=1")
    return overrides


def pretrain_method(
    method: Method,
    config: str,
    pool_dir: str,
    out: str,
    budget: Budget,
    gpu: bool = False,
    extra: Sequence[str] = (),
    seed: int = 1,
    base_checkpoint: Optional[str] = None,
) -> dict:
    """Pretrain ``method`` on the pool (``pool_dir``: any data directory with ``train.tsv``) under ``budget``.

    A samples budget sets ``max_update`` = windows / batch size, whatever the machine's load. A
    minutes budget runs a calibration of :data:`CALIBRATION_UPDATES` updates to measure seconds per
    update; the real run gets ``max_update`` = budget / that (so warm-up and cosine schedules end
    on time) and ``optimization.stop_time_hours`` = budget (fairseq-signals' cumulative training
    time, which excludes start-up and data loading before the first update) as the hard stop.
    ``seed`` is ``common.seed`` of the run (initialisation, views, masks, batches).

    A two-stage method (``method.base``) is stage 2: ``base_checkpoint`` (stage 1, frozen) goes under it
    (:func:`~ssl_table.two_stage.stage2_overrides`); a labelled one validates ten times a run and keeps the
    checkpoint its config selects (``method.checkpoint_name``).
    """
    from physioclr_ext.evaluation.results import file_sha256
    from physioclr_ext.runners.finetune_runs import TrainSpec, pretrain
    from ssl_table.two_stage import validation_schedule

    pool_windows = len(read_manifest(os.path.join(pool_dir, "train.tsv"))[1])
    base_sha = file_sha256(base_checkpoint) if base_checkpoint else None
    record = _read_json(os.path.join(out, "pretrain.json"))
    if record is not None and os.path.exists(record["checkpoint"]):
        if record.get("pool_windows") != pool_windows:
            log(
                f"  WARNING {method.name}: pretrained on a pool of {record.get('pool_windows')} windows, the pool now "
                f"has {pool_windows}; delete {out} to pretrain again"
            )
        if record.get("base_sha256") != base_sha:
            log(f"  WARNING {method.name}: trained on another {method.base} checkpoint; delete {out} to train again")
        return record
    contract = CONTRACTS[method.contract]
    config_dir = os.path.join(CONFIGS, method.config_dir)
    base = run_overrides(method, config, gpu, extra, base_checkpoint)
    batch = batch_size(os.path.join(config_dir, config + ".yaml"), base)
    calib = None
    if budget.samples is not None:
        max_update = max(1, -(-budget.samples // batch))
        limits = [f"optimization.max_update={max_update}"]
    else:
        assert budget.minutes is not None
        calib = _calibrate(config_dir, config, base, pool_dir, os.path.join(out, "calibrate"))
        max_update = max(1, int(budget.minutes * 60 / calib["seconds_per_update"]))
        limits = [f"optimization.max_update={max_update}", f"optimization.stop_time_hours={budget.minutes / 60:.6f}"]
    if method.labels is not None:
        limits += validation_schedule(max_update)
    spec = TrainSpec(config_dir, config, base + limits + [f"common.log_interval={max(1, max_update // 100)}"])
    start = time.time()
    ckpt = os.path.join(os.path.dirname(pretrain(spec, pool_dir, out, seed=seed)), method.checkpoint_name)
    if not os.path.exists(ckpt):
        raise RuntimeError(f"no {ckpt} (see {out}/pretrain.log)")
    with open(os.path.join(out, "pretrain.log"), encoding="utf-8") as fh:
        curve = parse_train_log(fh.read())
    reached = int(curve[-1]["num_updates"]) if curve else None
    record = {
        "method": method.name,
        "config": config,
        "contract": contract.name,
        "checkpoint": ckpt,
        "pool_windows": pool_windows,
        "budget": budget.describe(),
        "seed": seed,
        "budget_minutes": budget.minutes,
        "budget_samples": budget.samples,
        "batch_size": batch,
        "planned_updates": max_update,
        "reached_updates": reached,
        "windows_seen": reached * batch if reached is not None else None,
        "wall_seconds": time.time() - start,
        "calibration": calib,
        "overrides": spec.overrides,
        "loss_curve": curve,
        **({"base": method.base, "base_checkpoint": base_checkpoint, "base_sha256": base_sha} if method.base else {}),
        **({"labelled_data": pool_dir} if method.labels else {}),
    }
    _write_json(os.path.join(out, "pretrain.json"), record)
    return record


def import_released(method: Method, weights: str, out: str, data: str) -> dict:
    """Convert a file released with the original code into ``out/checkpoint_imported.pt`` (``python -m
    physioclr_ext.runners.checkpoints import``, ``task.data`` = ``data``: the contract's pool, which the
    random-init rebuild needs) and return a pretraining record for it (no updates here)."""
    record = _read_json(os.path.join(out, "pretrain.json"))
    if record is not None and os.path.exists(record["checkpoint"]):
        return record
    os.makedirs(out, exist_ok=True)
    ckpt = os.path.join(out, "checkpoint_imported.pt")
    from physioclr_ext.evaluation.results import file_sha256

    source = method.name[: -len("_released")]
    command = [sys.executable, "-m", "physioclr_ext.runners.checkpoints", "import", "--from", source, weights]
    subprocess.run(command + ["--out", ckpt, "--data", data, "--force"], check=True)
    record = {
        "method": method.name,
        "config": method.config,
        "contract": method.contract,
        "checkpoint": ckpt,
        "released_weights": weights,
        "weights_sha256": file_sha256(weights),
        "budget": "released weights (pretrained by the original authors on their data)",
        "batch_size": None,
        "planned_updates": None,
        "reached_updates": None,
        "windows_seen": None,
        "wall_seconds": 0.0,
        "loss_curve": [],
    }
    _write_json(os.path.join(out, "pretrain.json"), record)
    return record


def random_init_checkpoint(checkpoint: str, out: str, seed: int = 0) -> str:
    """The pretrained checkpoint's model rebuilt from its own config with fresh weights.

    fairseq-signals treats ``max_update=0`` as "no limit", so a 0-update training run cannot
    give the random-init baseline; instead the model is built by the checkpoint's task (as
    ``load_model_and_task`` does, without loading the state) under ``torch.manual_seed(seed)``
    and its state dict replaces the trained one (optimizer state dropped).

    A model wrapping another checkpoint (``ecg_vqvae``, ``ecg_triplet``: ``model.model_path``) is rebuilt from
    the base's config stored in it (``pretrained_model_cfg``; filled from ``model_path`` where a checkpoint
    lacks it), never from the base's weights: base and head are both at random initialisation, the base
    drawn first, as in the base method's own random arm.
    """
    if os.path.exists(out):
        return out
    import torch
    from fairseq_signals import tasks
    from fairseq_signals.utils import checkpoint_utils

    import physioclr_ext

    physioclr_ext.register()
    state = checkpoint_utils.load_checkpoint_to_cpu(checkpoint)
    cfg = state["cfg"]
    _self_contained(cfg.model)
    task = tasks.setup_task(cfg.task, from_checkpoint=True)
    torch.manual_seed(seed)
    model = task.build_model(cfg.model)
    state["model"] = model.state_dict()
    state["last_optimizer_state"] = None
    state.setdefault("extra_state", {})["random_init_seed"] = seed
    torch.save(state, out + ".tmp")
    os.replace(out + ".tmp", out)
    return out


def _self_contained(model_cfg) -> None:
    """Store the wrapped base's config in a two-stage model's config, so that building it never loads
    ``model_path`` (whose trained weights would otherwise come back into the random arm)."""
    from omegaconf import OmegaConf, open_dict

    if "pretrained_model_cfg" not in model_cfg or model_cfg.pretrained_model_cfg is not None:
        return
    from fairseq_signals.utils import checkpoint_utils

    base = checkpoint_utils.load_checkpoint_to_cpu(model_cfg.model_path)["cfg"]["model"]
    with open_dict(model_cfg):
        model_cfg.pretrained_model_cfg = OmegaConf.create(
            OmegaConf.to_container(base) if OmegaConf.is_config(base) else dict(base)
        )


# ---------------------------------------------------------------- task data and embeddings


def task_data(task_key: str, contract_dir: str, work: str) -> str:
    """The data directory a task is embedded and fine-tuned on (filtered manifests for ``b``)."""
    from physioclr_ext.runners.finetune_runs import write_data_dir

    task = TASKS[task_key]
    source_dir = os.path.join(contract_dir, task.source)
    if task.keep_classes is None:
        return source_dir
    dest = os.path.join(work, "tasks", os.path.basename(contract_dir), task_key)
    if os.path.exists(os.path.join(dest, "test.tsv")):
        return dest
    with open(os.path.join(source_dir, "windows.csv"), newline="", encoding="utf-8") as fh:
        aami = {row["path"]: row["aami"] for row in csv.DictReader(fh)}
    names = ("N", "S", "V", "F", "Q")
    keep = {names[k] for k in task.keep_classes}
    subsets, sizes = {}, {}
    for split in ("train", "valid", "test"):
        root, rows = read_manifest(os.path.join(source_dir, f"{split}.tsv"))
        subsets[split] = [rel for rel, _ in rows if aami.get(rel) in keep]
        sizes.update({rel: int(size) for rel, size in rows})
    return write_data_dir(dest, root, subsets, sizes)


def embed(checkpoint: str, data: str, out: str, device: str) -> str:
    """``python -m physioclr_ext.evaluation embed`` (skipped when ``embed.json`` exists)."""
    if not os.path.exists(os.path.join(out, "embed.json")):
        cmd = [
            sys.executable,
            "-m",
            "physioclr_ext.evaluation",
            "embed",
            "--checkpoint",
            checkpoint,
            "--data",
            data,
            "--out",
            out,
            "--device",
            device,
        ]
        os.makedirs(os.path.dirname(out.rstrip("/")), exist_ok=True)
        with open(out.rstrip("/") + ".log", "w", encoding="utf-8") as log_fh:
            subprocess.run(cmd, check=True, stdout=log_fh, stderr=subprocess.STDOUT)
    return out


def collapse_stats(embeddings: str, subset: str = "test") -> dict:
    """Per-dimension spread and effective rank of one subset's embeddings (signs of collapse)."""
    from physioclr_ext.evaluation.collapse import collapse_report
    from physioclr_ext.evaluation.embeddings import Embeddings

    return collapse_report(Embeddings.load(embeddings, subset).x)


def binary_column(embeddings: str, data: str, column: str, out: str) -> str:
    """Embeddings whose labels are one column (by name in ``label_def.csv``) of multi-hot labels."""
    from physioclr_ext.evaluation.embeddings import Embeddings, read_metadata, write_metadata
    from physioclr_ext.evaluation.predictions import read_label_names

    if os.path.exists(os.path.join(out, "embed.json")):
        return out
    for subset in ("train", "valid", "test"):
        emb = Embeddings.load(embeddings, subset)
        names = read_label_names(os.path.join(data, "label_def.csv"), emb.labels.shape[1])
        col = names.index(column)
        emb.labels = emb.labels[:, col : col + 1]
        emb.save(out, subset)
    write_metadata(out, {**read_metadata(embeddings), "label_column": column})
    return out


# ---------------------------------------------------------------- probes and fine-tuning


def probes(embeddings: str, out: str, ns: Sequence[int], seeds: Sequence[int]) -> Dict[str, dict]:
    """Linear probe and k-NN at ``n`` labels per class (balanced) and with all labels.

    With all labels the probes are deterministic, so that setting runs once (seed 0, no CI). A label
    budget larger than the smallest training class is left out (shown as n/a in the table).
    """
    import contextlib
    import io

    from physioclr_ext.evaluation.embeddings import Embeddings
    from physioclr_ext.evaluation.protocols import run_knn, run_linear_probe

    labels = Embeddings.load(embeddings, "train").labels[:, 0].astype(int)
    smallest = int(np.bincount(labels)[np.unique(labels)].min())
    ns = [n for n in ns if n <= smallest]  # e.g. LUDB: 46 training windows that are not sinus rhythm
    settings = [(f"all_seed{seeds[0]}", {"n_train": None, "seeds": [seeds[0]]})]
    if ns:
        few = "n" + "-".join(map(str, ns)) + "_seeds" + "-".join(map(str, seeds))  # new settings, new folder
        settings.insert(0, (few, {"n_train": list(ns), "balanced": True, "seeds": list(seeds)}))
    found: Dict[str, dict] = {}
    for name, fn in (("linear", run_linear_probe), ("knn", run_knn)):
        found[name] = {}
        for tag, kwargs in settings:
            path = os.path.join(out, name, tag)
            result = _read_json(os.path.join(path, "results.json"))
            if result is None:
                with contextlib.redirect_stdout(io.StringIO()):  # the protocol prints its table
                    fn(embeddings=embeddings, out=path, **kwargs)
                result = _read_json(os.path.join(path, "results.json"))
            found[name].update(result["results"])
    return found


def few_shot(
    method: Method,
    task_key: str,
    data: str,
    checkpoint: str,
    out: str,
    ns: Sequence[int],
    seeds: Sequence[int],
    updates: int,
    extra: Sequence[str] = (),
    balanced: bool = True,
    head_init: bool = False,
    scratch_checkpoint: Optional[str] = None,
) -> Optional[dict]:
    """``python -m physioclr_ext.evaluation few-shot`` at each ``n`` of ``ns`` labels per class (``n`` in all
    without ``balanced``), pretrained and from scratch (the random-init arm: from ``scratch_checkpoint``
    if given, else each seed's random weights); with ``head_init`` the head starts from a linear probe
    (``--head-init probe``, LP-FT). ``None`` where the task's labels need a fine-tuning model the
    method's checkpoint does not have."""
    from physioclr_ext.runners.checkpoints import checkpoint_finetune_config

    done = _read_json(os.path.join(out, "results.json"))
    if done is not None and done["meta"].get("seeds") == list(seeds) and done["meta"].get("n") == list(ns):
        return done["results"]  # other seeds or n: the protocol runs again and reuses its finished runs
    task = TASKS[task_key]
    config = checkpoint_finetune_config(checkpoint, tiny=True)
    if task.label_column is not None:
        return None  # LUDB labels are multi-hot in the .mat files; a one-column view is not wired yet
    if task.finetune_config:
        if not config.startswith("ecg_ssl_classifier"):
            return None
        config = task.finetune_config + "_tiny"
    import mitbih_fewshot

    contract = CONTRACTS[method.contract]
    config_dir = os.path.join(CONFIGS, "finetuning")
    overrides = list(contract.signal_overrides) + [f"optimization.max_update={updates}"]
    if contract.name == "one_lead":
        overrides += mitbih_fewshot.model_overrides(config_dir, config)
    overrides += list(extra)
    cmd = [
        sys.executable,
        "-m",
        "physioclr_ext.evaluation",
        "few-shot",
        "--data",
        data,
        "--checkpoint",
        checkpoint,
        "--out",
        out,
        "--n",
        *map(str, ns),
        *(["--balanced"] if balanced else []),
        "--finetune-config",
        config,
        "--config-dir",
        config_dir,
        "--seeds",
        *map(str, seeds),
        *(["--head-init", "probe"] if head_init else []),
        *(["--scratch-checkpoint", scratch_checkpoint] if scratch_checkpoint else []),
    ]
    for item in overrides:
        cmd += ["--override", item]
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, "few_shot.log"), "w", encoding="utf-8") as log_fh:
        subprocess.run(cmd, check=True, stdout=log_fh, stderr=subprocess.STDOUT)
    return _read_json(os.path.join(out, "results.json"))["results"]


def features_embeddings(data: str, source_dir: str, out: str) -> str:
    """The physiological-feature reference: each window's z-scored, PCA-reduced neurokit2 vector
    (``source_dir/features/<split>.npz`` ``vectors``, the PhysioCLR preprocessing) stored as
    embeddings of the windows of ``data``'s manifests, with their labels."""
    from physioclr_ext.evaluation.embeddings import Embeddings, write_metadata
    from physioclr_ext.evaluation.predictions import Manifest, load_window_metadata
    from physioclr_ext.features.store import load_split

    if os.path.exists(os.path.join(out, "embed.json")):
        return out
    for subset in ("train", "valid", "test"):
        manifest = Manifest.read(os.path.join(data, f"{subset}.tsv"))
        table = load_split(source_dir, subset)
        x = np.stack([table.vectors[table.row(p)] for p in manifest.paths]).astype(np.float32)
        labels, idx, patients = load_window_metadata(manifest)
        Embeddings(x, labels.astype(np.float32), np.asarray(idx), np.asarray(patients), list(manifest.paths)).save(
            out, subset
        )
    write_metadata(
        out, {"checkpoint": None, "checkpoint_sha256": None, "data": data, "model": "neurokit2 features (z-score, PCA)"}
    )
    return out
