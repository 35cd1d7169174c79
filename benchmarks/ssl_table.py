"""Evidence that pretraining pays: every pretraining method, the same budget, the same pool, one table.

Stages (each skips work whose outputs exist under ``--out``, so a crash loses nothing):

1. data      preprocess every source in each method's input contract (``ssl_table/methods.py``:
             ``one_lead`` = lead II, 360 Hz, 10 s; ``twelve_lead`` = 12 leads, 500 Hz, 5 s; ``st_mem``
             = the ST-MEM preset), from ``--data-root`` (MIT-BIH, LUDB, the PhysioNet 2021 sample, ``pool/``).
2. pool      per contract, one manifest of every train and valid window of the pool's sources (MIT-BIH
             DS1, LUDB and PhysioNet 2021 training patients, all of ``pool/``); 12-lead contracts take the
             12-lead sources only. Fails if a test patient of an evaluated task is in it.
3. pretrain  each method through ``physioclr-hydra-train`` for ``--budget-minutes`` of training time on
             this machine (fairseq-signals' cumulative training time; ``max_update`` is set from a
             30-update calibration run so schedules end on time, ``optimization.stop_time_hours`` stops it).
4. init      the same architecture at random initialisation (rebuilt from the checkpoint's config).
5. embed     ``python -m physioclr_ext.evaluation embed`` of both checkpoints on each task's windows.
6. probes    the ``linear-probe`` and ``knn`` protocols at n = ``--n`` labels per class (balanced) over
             ``--seeds``, and with all training labels.
7. finetune  the ``few-shot`` protocol at ``--finetune-n`` labels per class, pretrained and from scratch;
             with ``--finetune-head-init`` the head starts from a linear probe on the run's starting
             encoder (LP-FT) and the scratch arm from the random-init checkpoint of stage 4.
8. refs      ``features``: the neurokit2 vector of the PhysioCLR preprocessing (z-scored, PCA) with the
             linear probe; ``supervised``: the first method's architecture trained on all training labels.
9. report    ``results.json``, ``results.md`` (one row per method and initialisation, random init right
             below), ``curves_<task>_<protocol>.png`` (metric against labels, CI bands) and ``pretraining_loss.png``.

Tasks: ``a`` MIT-BIH DS2 normal vs arrhythmia; ``b`` MIT-BIH AAMI N/S/V (balanced accuracy is macro over
classes); ``c`` LUDB sinus rhythm vs other (patient split). Test patients never reach pretraining.

Two-stage methods (``Method.base``): ``ecg_vqvae`` (a VQ-VAE head, SMILES-2025) and ``ecg_triplet`` (a
triplet-loss projection head) train on top of the frozen checkpoint of a stage-1 method of the same
``--out`` (``--two-stage-base``, default ``contrastive_cnn_transformer``; pretrained first if missing, as
its own row only when it is in ``--methods``), in that method's input contract. Stage 2 runs under the
same budget rule (``--budget-samples`` windows seen by stage 2, or ``--budget-minutes`` of its training
time). ``ecg_vqvae`` trains on the unlabeled pool. ``ecg_triplet`` USES LABELS: it trains on task a's
training windows, 100 per class (the probes' class-balanced draw at probe seed 0), and keeps the checkpoint
with the best kNN macro F1 on task a's validation split; the table marks its row. Their random-init arm is
the whole two-stage model at random initialisation (base and head), their embeddings the head's output
(``extract_embedding``). A base other than the default names the rows ``<method>_on_<base>``.

PhysioCLR pretrains on a merged feature store of the pool (``ssl_table/pool_features.py``); the QT
Database and MIT-BIH Supraventricular records join the one-lead pool with each channel as its own
record (their headers name no standard lead). ST-MEM and ECG-JEPA pretrain on lead II of every
source; CLOCS CMLC/CMSMLC and LFBT, which contrast leads, on the 8- and 12-lead sources only.

Not yet in this version (see the report of ``results.md`` for what a run covered):

* Patient ids are indices per preprocessed folder, so in a pool of several folders two patients of
  different datasets can share an id; CLOCS (CMSC/CMSMLC) counts such windows as same-patient positives.
* Fine-tuning runs for tasks ``a`` and ``b`` only (task ``c``'s windows carry multi-hot LUDB labels;
  the one-column view exists for the probes only), and ``b`` only for models fine-tuned with
  ``ecg_ssl_classifier`` (fairseq-signals' transformer classifier has no multi-class config here).

Usage (Python environment with fairseq-signals)::

    python benchmarks/ssl_table.py --out /tmp/ssl_table_quick --quick --budget-minutes 1
    python benchmarks/ssl_table.py --out runs/ssl_table                     # every method, CPU configs
    python benchmarks/ssl_table.py --out runs/ssl_table_gpu --gpu --budget-minutes 60
    python benchmarks/ssl_table.py --out DIR --tasks a --methods ecg_vqvae ecg_triplet --budget-samples 32000
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

from ssl_table import plots, stages, table, two_stage  # noqa: E402
from ssl_table.methods import (  # noqa: E402
    CONTRACTS,
    METHODS,
    QUICK_METHODS,
    RELEASED_SOURCES,
    SOURCES,
    TASKS,
    TWO_STAGE_BASE,
    UNSUPPORTED,
    Method,
    pool_sources,
    task_sources,
    two_stage_note,
    with_base,
)
from ssl_table.pool import build_pool, leaked_patients, patients_in_test, read_manifest, write_pool  # noqa: E402
from ssl_table.pool_features import merge_pool_features  # noqa: E402

log = stages.log
METRICS = ("balanced_accuracy", "auroc")


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", required=True, help="work and result directory")
    p.add_argument("--data-root", default=str(REPO.parent / "shared" / "data"))
    p.add_argument(
        "--methods",
        nargs="*",
        default=None,
        choices=sorted(METHODS),
        help=f"default: all (--quick: {' '.join(QUICK_METHODS)}); none with --released only",
    )
    p.add_argument("--tasks", nargs="+", default=None, choices=sorted(TASKS), help="default: a b c (--quick: a)")
    p.add_argument(
        "--budget-minutes",
        type=float,
        default=None,
        help="training minutes per method on this machine (default 10; --quick 2)",
    )
    p.add_argument(
        "--budget-samples",
        type=int,
        default=None,
        help="windows seen per method instead of minutes (max_update = windows / batch size; independent of the "
        "machine's load)",
    )
    p.add_argument(
        "--pretrain-override",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="pretraining config override for every method, after the method's own (e.g. dataset.batch_size=16)",
    )
    p.add_argument(
        "--pretrain-seed",
        type=int,
        default=1,
        help="common.seed of every pretraining run (weights, views, masks, batches); use another --out per seed",
    )
    p.add_argument(
        "--random-init-seed",
        type=int,
        default=0,
        help="torch seed of the random-initialisation arm's weights (the same architecture, not trained); "
        "vary it with --pretrain-seed to compare pretraining seeds with initialisation seeds",
    )
    p.add_argument(
        "--two-stage-base",
        default=TWO_STAGE_BASE,
        choices=sorted(k for k, m in METHODS.items() if m.base is None),
        help="stage-1 method under the two-stage methods (ecg_vqvae, ecg_triplet): its checkpoint of this --out, "
        "pretrained first if missing (default %(default)s; another base names the rows <method>_on_<base>)",
    )
    p.add_argument(
        "--two-stage-override",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="config override of the stage-2 runs (--pretrain-override applies to one-stage methods and bases)",
    )
    p.add_argument(
        "--pool-exclude",
        nargs="+",
        default=[],
        choices=sorted(k for k, s in SOURCES.items() if s.in_pool),
        help="sources left out of the pretraining pool (they are still preprocessed when a task needs them)",
    )
    p.add_argument("--quick", action="store_true", help="two methods, task a, 3 seeds, no fine-tuning or references")
    p.add_argument("--gpu", action="store_true", help="paper-size configs, embeddings on cuda")
    p.add_argument("--n", type=int, nargs="+", default=[10, 100], help="labels per class for the probes")
    p.add_argument("--seeds", type=int, nargs="+", default=None, help="default 0 1 2 3 4 (--quick: 0 1 2)")
    p.add_argument("--finetune", dest="finetune", action="store_true", default=None)
    p.add_argument("--no-finetune", dest="finetune", action="store_false")
    p.add_argument("--finetune-n", type=int, nargs="+", default=[100], help="labels per class for fine-tuning")
    p.add_argument(
        "--finetune-methods", nargs="+", default=None, choices=sorted(METHODS), help="default: every method run"
    )
    p.add_argument("--finetune-updates", type=int, default=100)
    p.add_argument(
        "--finetune-override",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="fine-tuning config override for both arms, e.g. model.freeze_encoder_updates=50 or optimization.lr=[3e-4]",
    )
    p.add_argument(
        "--finetune-head-init",
        action="store_true",
        help="LP-FT: each fine-tuning run's head starts from a linear probe on its starting encoder's embeddings "
        "(few-shot --head-init probe); the random-init arm then starts from the probes' random-init checkpoint",
    )
    p.add_argument(
        "--references",
        nargs="*",
        default=None,
        choices=["features", "supervised"],
        help="reference rows (default both; --quick none)",
    )
    p.add_argument(
        "--released",
        action="append",
        default=[],
        metavar="METHOD=WEIGHTS",
        help="also evaluate a file released with the original code (METHOD: lfbt), converted by "
        "python -m physioclr_ext.runners.checkpoints import, as the row METHOD_released (no pretraining here)",
    )
    p.add_argument("--workers", type=int, default=2, help="preprocessing processes")
    args = p.parse_args(argv)
    try:
        args.released = dict(released_method(spec) for spec in args.released)
    except ValueError as err:
        p.error(str(err))
    args.methods = args.methods if args.methods is not None else list(QUICK_METHODS if args.quick else METHODS)
    args.tasks = args.tasks or (["a"] if args.quick else ["a", "b", "c"])
    if args.budget_samples is not None and args.budget_minutes is not None:
        p.error("give --budget-minutes or --budget-samples, not both")
    if args.budget_samples is None and args.budget_minutes is None:
        args.budget_minutes = 2.0 if args.quick else 10.0
    args.budget = stages.Budget(minutes=args.budget_minutes, samples=args.budget_samples)
    args.finetune_methods = [
        resolve(METHODS[m], args.two_stage_base).name for m in (args.finetune_methods or args.methods)
    ]
    args.collapse = {}  # filled by the embed stage: {task: {method: {arm: collapse_report}}}
    args.seeds = args.seeds or ([0, 1, 2] if args.quick else [0, 1, 2, 3, 4])
    args.finetune = (not args.quick) if args.finetune is None else args.finetune
    args.references = (
        args.references if args.references is not None else ([] if args.quick else ["features", "supervised"])
    )
    args.out = os.path.abspath(args.out)
    return args


def resolve(method: Method, base: str) -> Method:
    """``method`` with ``--two-stage-base`` as its base where it is two-stage."""
    return with_base(method, base) if method.base is not None else method


def with_bases(methods):
    """``methods`` and the stage-1 methods of the two-stage ones (whose data, pool and features they need)."""
    bases = [METHODS[m.base] for m in methods if m.base is not None]
    return list(methods) + [b for b in dict.fromkeys(bases) if b not in methods]


def released_method(spec: str):
    """``METHOD=WEIGHTS`` -> (the row's :class:`Method`, the weights' absolute path): the base method's input
    contract and paper-size config, under the name ``METHOD_released``."""
    name, sep, weights = spec.partition("=")
    if not sep or name not in RELEASED_SOURCES:
        raise ValueError(f"--released {spec}: give METHOD=WEIGHTS with METHOD one of {', '.join(RELEASED_SOURCES)}")
    if not os.path.isfile(weights):
        raise ValueError(f"--released {spec}: no such file {weights}")
    base = METHODS[name]
    method = Method(f"{name}_released", base.gpu_config, base.gpu_config, base.contract, base.needs, base.length_key)
    return method, os.path.abspath(weights)


def stage_data(args, methods) -> dict:
    log("stage 1/9 data: preprocessing each source in each input contract")
    report = {}
    for contract in sorted({m.contract for m in methods}):
        in_pool = pool_sources(CONTRACTS[contract], args.pool_exclude)
        labelled = task_sources([m.labels for m in methods if m.labels and m.contract == contract])
        keys = sorted(set(in_pool) | set(task_sources(args.tasks)) | set(labelled))
        for key in keys:
            features = (
                "features" in args.references and contract == "one_lead" and key in task_sources(args.tasks)
            ) or (key in in_pool and _needs_features(methods, contract))
            start = time.time()
            out = os.path.join(args.out, "data", contract, key)
            report[f"{contract}/{key}"] = stages.preprocess_source(
                args.data_root, CONTRACTS[contract], key, out, args.workers, features
            )
            r = report[f"{contract}/{key}"]
            why = (
                f": {r['error'][:160]}"
                if r["status"] == "failed"
                else ", windows " + " / ".join(f"{k} {v.get('windows')}" for k, v in (r.get("windows") or {}).items())
            )
            log(f"  {contract}/{key}: {r['status']} ({time.time() - start:.0f} s){why}")
    return report


def _needs_features(methods, contract: str) -> bool:
    """Whether a method pretrained on ``contract`` reads physiological features (PhysioCLR)."""
    return any("features" in m.needs and m.contract == contract for m in methods)


def stage_pool(args, methods) -> dict:
    log("stage 2/9 pool: one unlabeled manifest per contract, test patients kept out")
    report = {}
    for contract in sorted({m.contract for m in methods}):
        contract_dir = os.path.join(args.out, "data", contract)
        pool = build_pool(contract_dir, pool_sources(CONTRACTS[contract], args.pool_exclude))
        tests = {
            k: patients_in_test(os.path.join(contract_dir, k))
            for k in task_sources(args.tasks)
            if os.path.exists(os.path.join(contract_dir, k, "windows.csv"))
        }
        leaks = leaked_patients(pool, tests, {k: s.path for k, s in SOURCES.items()})
        if leaks:
            raise SystemExit(f"test patients in the {contract} pool: {leaks}")
        sizes = write_pool(
            pool,
            os.path.join(args.out, "pool", contract),
            {"contract": CONTRACTS[contract].describe, "test_patients_excluded": {k: len(v) for k, v in tests.items()}},
        )
        report[contract] = {"windows": sizes, "per_source": pool.counts}
        if _needs_features(methods, contract):  # PhysioCLR: one feature store, one z-score/PCA over the pool
            report[contract]["features"] = merge_pool_features(contract_dir, os.path.join(args.out, "pool", contract))
            log(f"  {contract}: pool feature store {report[contract]['features']['splits']}")
        log(
            f"  {contract}: {sizes['train']} windows ({sizes['valid']} of them of validation patients) from "
            f"{sum(1 for c in pool.counts.values() if c['train'] + c['valid'])} sources; no test patient"
        )
    return report


def stage_pretrain(args, methods) -> dict:
    log(f"stage 3/9 pretrain: {len(methods)} methods, {args.budget.describe()}")
    records: dict = {}
    bases: dict = {}  # stage-1 records, each pretrained (or loaded) once
    for method in methods:
        out = os.path.join(args.out, "pretrain", method.name)
        if method in args.released:
            pool = os.path.join(args.out, "pool", method.contract)
            records[method.name] = stages.import_released(method, args.released[method], out, pool)
            log(f"  {method.name}: released weights {args.released[method]} converted")
            continue
        if method.base is None:
            record = _pretrain_one(args, method)
        else:  # stage 1 first (pretrained here if it is not in --methods; no row for it then)
            base = records.get(method.base) or bases.get(method.base)
            if base is None:
                base = bases[method.base] = _pretrain_one(args, METHODS[method.base])
            record = _pretrain_one(args, method, base["checkpoint"]) if base else None
            if record is not None:
                record = {**record, "base_updates": base["reached_updates"], "base_batch_size": base["batch_size"]}
        if record is not None:
            records[method.name] = record
    return records


def _pretrain_one(args, method, base_checkpoint=None):
    """Pretrain one method (stage 2 of a two-stage one on ``base_checkpoint``); its record, None on failure."""
    config = method.gpu_config if args.gpu else method.config
    out = os.path.join(args.out, "pretrain", method.name)
    data = os.path.join(args.out, "pool", method.contract)
    if method.labels is not None:
        task_dir = stages.task_data(method.labels, os.path.join(args.out, "data", method.contract), args.out)
        data = two_stage.labelled_data_dir(task_dir, os.path.join(args.out, "labelled", method.contract, method.labels))
    start = time.time()
    try:
        r = stages.pretrain_method(
            method,
            config,
            data,
            out,
            args.budget,
            args.gpu,
            args.two_stage_override if method.base else args.pretrain_override,
            args.pretrain_seed,
            base_checkpoint,
        )
    except (RuntimeError, subprocess.CalledProcessError, ValueError) as err:
        log(f"  {method.name}: FAILED ({str(err).splitlines()[0]}); see {out}")
        return None
    on = f" on {method.base}" if method.base else ""
    log(
        f"  {method.name} ({config}{on}): {r['reached_updates']} of {r['planned_updates']} updates "
        f"({time.time() - start:.0f} s here, {r['wall_seconds']:.0f} s when trained)"
    )
    return r


def _override_tag(args) -> str:
    """A folder suffix per set of fine-tuning overrides and head initialisation, so that runs with other
    settings are never reused (none for the defaults, what earlier runs wrote)."""
    import hashlib

    settings = [*args.finetune_override, *(["head_init=probe"] if args.finetune_head_init else [])]
    if not settings:
        return ""
    return "_" + hashlib.sha1("\n".join(settings).encode()).hexdigest()[:8]


def stage_evaluate(args, methods, pretrained: dict, results: dict) -> None:
    device = "cuda" if args.gpu else "cpu"
    log("stage 4/9 init, 5/9 embed, 6/9 probes, 7/9 finetune")
    for method in methods:
        if method.name not in pretrained:
            continue
        try:
            evaluate_method(args, method, pretrained[method.name]["checkpoint"], device, results)
        except (subprocess.CalledProcessError, RuntimeError, ValueError) as err:  # the other methods still run
            log(f"  {method.name}: evaluation FAILED ({str(err).splitlines()[0][:300]}); logs under {args.out}")


def _random_init_tag(args) -> str:
    """File-name suffix of a random-init checkpoint: none for seed 0 (what earlier runs wrote), else ``_seedN``."""
    return f"_seed{args.random_init_seed}" if args.random_init_seed else ""


def _random_init(args, ckpt: str) -> str:
    """The random-init checkpoint next to ``ckpt`` (made on first use): the probes' random arm and, with
    ``--finetune-head-init``, the fine-tuning scratch arm's start."""
    path = os.path.join(os.path.dirname(ckpt), f"checkpoint_random_init{_random_init_tag(args)}.pt")
    return stages.random_init_checkpoint(ckpt, path, seed=args.random_init_seed)


def _head_init_kwargs(args, ckpt: str) -> dict:
    """``stages.few_shot``'s LP-FT arguments: the probe head in both arms, the scratch arm from the random init."""
    if not args.finetune_head_init:
        return {}
    return {"head_init": True, "scratch_checkpoint": _random_init(args, ckpt)}


def evaluate_method(args, method, ckpt: str, device: str, results: dict) -> None:
    """Stages 4-7 for one method: random init, embeddings, probes and few-shot fine-tuning per task."""
    arms = {"pretrained": ckpt, "random": _random_init(args, ckpt)}
    contract_dir = os.path.join(args.out, "data", method.contract)
    for task_key in args.tasks:
        task = TASKS[task_key]
        data = stages.task_data(task_key, contract_dir, args.out)
        for arm, checkpoint in arms.items():
            start = time.time()
            arm_dir = arm + (_random_init_tag(args) if arm == "random" else "")  # cached outputs per init seed
            emb = stages.embed(
                checkpoint, data, os.path.join(args.out, "embed", task_key, method.name, arm_dir), device
            )
            args.collapse.setdefault(task_key, {}).setdefault(method.name, {})[arm] = stages.collapse_stats(emb)
            if task.label_column:
                emb = stages.binary_column(emb, data, task.label_column, emb + "_binary")
            found = stages.probes(
                emb, os.path.join(args.out, "probes", task_key, method.name, arm_dir), args.n, args.seeds
            )
            for protocol, settings in found.items():
                table.add_result(results, task_key, method.name, arm, protocol, settings)
            log(f"  {task_key}/{method.name}/{arm}: embedded and probed ({time.time() - start:.0f} s)")
        if args.finetune and method.name in args.finetune_methods:
            start = time.time()
            fs = stages.few_shot(
                method,
                task_key,
                data,
                ckpt,
                os.path.join(args.out, "finetune" + _override_tag(args), task_key, method.name),
                args.finetune_n,
                args.seeds,
                args.finetune_updates,
                args.finetune_override,
                **_head_init_kwargs(args, ckpt),
            )
            if fs is None:
                log(f"  {task_key}/{method.name}: few-shot not available for this task and model")
                continue
            for arm, settings in table.fewshot_arms(fs).items():
                table.add_result(results, task_key, method.name, arm, "finetune", settings)
            log(f"  {task_key}/{method.name}: few-shot n={args.finetune_n} ({time.time() - start:.0f} s)")


def stage_references(args, methods, pretrained: dict, results: dict) -> None:
    log(f"stage 8/9 references: {', '.join(args.references) or 'none'}")
    for task_key in args.tasks if "features" in args.references else []:
        task = TASKS[task_key]
        source_dir = os.path.join(args.out, "data", "one_lead", task.source)
        if not os.path.exists(os.path.join(source_dir, "features", "train.npz")):
            log(f"  features/{task_key}: no {source_dir}/features; skipped")
            continue
        data = stages.task_data(task_key, os.path.dirname(source_dir), args.out)
        emb = stages.features_embeddings(data, source_dir, os.path.join(args.out, "embed", task_key, "features"))
        if task.label_column:
            emb = stages.binary_column(emb, data, task.label_column, emb + "_binary")
        found = stages.probes(emb, os.path.join(args.out, "probes", task_key, "features"), args.n, args.seeds)
        table.add_result(results, task_key, "features (neurokit2, PCA)", "reference", "linear", found["linear"])
        log(f"  features/{task_key}: linear probe on the physiological features")
    trained = [m for m in methods if m.name in pretrained and m.base is None]
    for task_key in args.tasks if "supervised" in args.references and trained else []:
        # the few-shot protocol with every training window: its scratch arm is the supervised ceiling,
        # its pretrained arm the full fine-tuning of the first method
        method = trained[0]
        data = stages.task_data(task_key, os.path.join(args.out, "data", method.contract), args.out)
        n_train = len(read_manifest(os.path.join(data, "train.tsv"))[1])
        start = time.time()
        fs = stages.few_shot(
            method,
            task_key,
            data,
            pretrained[method.name]["checkpoint"],
            os.path.join(args.out, "finetune" + _override_tag(args), task_key, method.name + "_all"),
            [n_train],
            args.seeds,
            args.finetune_updates,
            args.finetune_override,
            balanced=False,
            **_head_init_kwargs(args, pretrained[method.name]["checkpoint"]),
        )
        if fs is None:
            log(f"  supervised/{task_key}: not available for this task and model")
            continue
        arms = {arm: {"n=all": next(iter(settings.values()))} for arm, settings in table.fewshot_arms(fs).items()}
        table.add_result(results, task_key, method.name, "pretrained", "finetune", arms["pretrained"])
        table.add_result(
            results, task_key, f"supervised ({method.name} architecture)", "reference", "finetune", arms["random"]
        )
        log(f"  supervised/{task_key}: {n_train} labelled windows ({time.time() - start:.0f} s)")


def report_header(args, methods, data_report, pool_report, pretrained) -> list:
    """The lines above the tables of ``results.md``: budget, pool, seeds, contracts, protocols.

    A run whose rows all come from ``--released`` weights trained nothing here, so it states that
    instead of a budget, pool and pretraining seed.
    """
    trained_here = any("released_weights" not in r for r in pretrained.values())
    return [
        (
            f"- budget: {args.budget.describe()} ({'GPU, paper-size configs' if args.gpu else 'CPU configs'}); "
            if trained_here
            else "- no pretraining run here (released weights only); "
        )
        + "updates reached (batch size): "
        + ", ".join(
            f"{k} {r['reached_updates']} ({r.get('batch_size', '?')})"
            if "released_weights" not in r
            else f"{k} released weights {os.path.basename(r['released_weights'])} (sha256 {r['weights_sha256'][:12]})"
            for k, r in pretrained.items()
        ),
        *(
            [f"- pretraining overrides for every method: {' '.join(args.pretrain_override)}"]
            if args.pretrain_override
            else []
        ),
        *(
            [
                "- pool windows (train): " + ", ".join(f"{c} {r['windows']['train']}" for c, r in pool_report.items()),
                f"- pretraining seed {args.pretrain_seed}; random-init seed {args.random_init_seed}"
                + (f"; left out of the pool: {' '.join(args.pool_exclude)}" if args.pool_exclude else ""),
            ]
            if trained_here
            else []
        ),
        "- input contracts: "
        + "; ".join(f"{m.name} {m.contract}" for m in methods if m.name in pretrained)
        + " ("
        + "; ".join(f"{c}: {CONTRACTS[c].describe}" for c in sorted({m.contract for m in methods}))
        + ")",
        *(
            f"- source not in the pool: {k} ({r['error'][:120]})"
            for k, r in data_report.items()
            if r["status"] == "failed"
        ),
        f"- seeds: {' '.join(map(str, args.seeds))}; probes at n = {' '.join(map(str, args.n))} per class "
        "(balanced) and all labels (one seed: deterministic); "
        + (
            f"fine-tuning ({', '.join(args.finetune_methods)}) at n = {' '.join(map(str, args.finetune_n))} per "
            f"class, {args.finetune_updates} updates{', ' + ' '.join(args.finetune_override) if args.finetune_override else ''}, "
            + (
                "head from a linear probe (LP-FT) on the starting encoder's embeddings of the run's training "
                "windows in both arms, random-init arm fine-tuned from the random-init checkpoint on the same windows"
                if args.finetune_head_init
                else "random-init arm trained from scratch on the same windows"
            )
            if args.finetune
            else "no fine-tuning"
        ),
        *(f"- {m}: not run ({why})" for m, why in UNSUPPORTED.items() if m in args.methods),
        *(
            f"- {m.name}: {two_stage_note(m)} (stage 1: {pretrained[m.name].get('base_updates')} updates of "
            f"{pretrained[m.name].get('base_batch_size')}; stage 2: {pretrained[m.name].get('reached_updates')} updates"
            + (f" on {pretrained[m.name].get('pool_windows')} labelled windows)" if m.labels else ")")
            for m in methods
            if m.base is not None and m.name in pretrained
        ),
    ]


def row_notes(methods) -> dict:
    """The note beside each row that needs one: two-stage methods (and whether they used labels), and
    contracts that pretrain on the 12-lead sources only."""
    notes = {}
    for m in methods:
        contract = CONTRACTS[m.contract]
        text = "; ".join(n for n in (two_stage_note(m), contract.describe if contract.twelve_lead_only else "") if n)
        if text:
            notes[m.name] = text
    return notes


def stage_report(args, methods, data_report, pool_report, pretrained, results) -> None:
    log("stage 9/9 report: results.json, results.md, plots")
    notes = row_notes(methods)
    titles = {k: f"Task {k}: {t.describe}" for k, t in TASKS.items()}
    markdown = table.render_tables(results, METRICS, titles, notes)
    if args.collapse:
        markdown += "\n" + table.render_collapse(args.collapse)
    pngs = []
    for task_key, task_results in results.items():
        for protocol in ("linear", "knn", "finetune"):
            curves = table.label_curves(task_results, protocol)
            if curves:
                path = os.path.join(args.out, f"curves_{task_key}_{protocol}.png")
                pngs.append(plots.plot_label_curves(curves, path, METRICS[0], f"{titles[task_key]} ({protocol})"))
    pngs.append(
        plots.plot_loss_curves(
            {k: r["loss_curve"] for k, r in pretrained.items() if r["loss_curve"]},
            os.path.join(args.out, "pretraining_loss.png"),
        )
    )
    header = report_header(args, methods, data_report, pool_report, pretrained)
    with open(os.path.join(args.out, "results.md"), "w", encoding="utf-8") as fh:
        fh.write("\n".join(header) + "\n\n" + markdown)
    meta = {
        "command": " ".join([sys.executable, *sys.argv]),
        "args": {
            **{k: v for k, v in vars(args).items() if k not in ("budget", "collapse", "released")},
            "released": {method.name: weights for method, weights in args.released.items()},
        },
        "data": data_report,
        "pool": pool_report,
        "pretraining": {k: {f: v for f, v in r.items() if f != "loss_curve"} for k, r in pretrained.items()},
        "budget": {
            "minutes": args.budget.minutes,
            "samples": args.budget.samples,
            "kind": "windows seen"
            if args.budget.samples is not None
            else "wall-clock training minutes on this machine",
        },
        "plots": pngs,
    }
    with open(os.path.join(args.out, "results.json"), "w", encoding="utf-8") as fh:
        json.dump(
            {
                "meta": meta,
                "results": results,
                "collapse": args.collapse,
                "loss_curves": {k: r["loss_curve"] for k, r in pretrained.items()},
            },
            fh,
            indent=2,
        )
    print("\n".join(header) + "\n\n" + markdown)


def main(argv=None) -> int:
    args = parse_args(argv)
    os.makedirs(args.out, exist_ok=True)
    skipped = [m for m in args.methods if m in UNSUPPORTED]
    for m in skipped:
        log(f"{m}: not run ({UNSUPPORTED[m]})")
    methods = [resolve(METHODS[m], args.two_stage_base) for m in args.methods if m not in UNSUPPORTED]
    methods += list(args.released)
    start = time.time()
    data_report = stage_data(args, with_bases(methods))
    pool_report = stage_pool(args, with_bases(methods))
    pretrained = stage_pretrain(args, methods)
    results: dict = {}
    stage_evaluate(args, methods, pretrained, results)
    stage_references(args, methods, pretrained, results)
    stage_report(args, methods, data_report, pool_report, pretrained, results)
    log(f"done in {time.time() - start:.0f} s: {args.out}/results.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
