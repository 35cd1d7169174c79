"""Evaluation protocols on stored embeddings: linear probe, k-NN and clustering.

Each protocol reads an embeddings directory (:mod:`~physioclr_ext.evaluation.embeddings`)
and writes its result files; they back the ``linear-probe``, ``knn`` and ``cluster``
subcommands of ``python -m physioclr_ext.evaluation``.

Linear probe and k-NN: for every training size ``n`` (default: the whole training
subset, named ``n=all``) and every seed, the training subset is subsampled with
:func:`~physioclr_ext.evaluation.sampling.n_shot_indices` (seeded by the run's seed),
the probe is fit and the test subset scored. Each setting ``n=<n>`` reports the
mean over seeds of each metric, with

* ``ci="t"``: the Student-t 95% interval of that mean across seeds
  (:func:`~physioclr_ext.evaluation.stats.mean_ci`; training-sample variability);
* ``ci="bootstrap"``: the percentile 95% interval of the same statistic (the metric
  averaged over the seeds' test predictions) under resampling of the test examples,
  or of test patients with ``bootstrap_by="patient"``; every resample scores all
  seeds on the same drawn examples (test-set variability). ``n_boot`` resamples.
"""

from __future__ import annotations

import json
import os
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

from physioclr_ext.evaluation.clustering import cluster_embeddings, plot_projection
from physioclr_ext.evaluation.embeddings import Embeddings, infer_task, read_metadata
from physioclr_ext.evaluation.metrics import TaskType, classification_metrics
from physioclr_ext.evaluation.probes import DEFAULT_CS, knn_classify, linear_probe, n_classes_of
from physioclr_ext.evaluation.results import build_meta, json_safe, write_results
from physioclr_ext.evaluation.sampling import n_shot_indices
from physioclr_ext.evaluation.stats import bootstrap_cis, mean_ci, metric_range

# fit(train subset, seed) -> (test probabilities, per-run extras)
FitFn = Callable[[Embeddings, int], Tuple[np.ndarray, Dict[str, Any]]]


def subsample(train: Embeddings, task: TaskType, n: Optional[int], seed: int, balanced: bool) -> Embeddings:
    """The n-shot training subset of a run (the whole subset when ``n`` is None)."""
    if n is None:
        return train
    labels = train.labels if task == "multilabel" else train.labels[:, 0]
    return train.select(n_shot_indices(labels, n, seed, balanced))


def aggregate(
    runs: List[Dict[str, float]],
    probs: List[np.ndarray],
    y_test: np.ndarray,
    task: TaskType,
    ci: str,
    n_boot: int = 1000,
    groups: Optional[np.ndarray] = None,
    boot_seed: int = 0,
) -> Dict[str, Dict[str, Any]]:
    """Per metric: mean over runs, interval (``t`` or ``bootstrap``) and per-run values."""
    if ci not in ("t", "bootstrap"):
        raise ValueError(f"ci must be 't' or 'bootstrap', got {ci!r}")
    summary = {m: mean_ci([r[m] for r in runs], bounds=metric_range(m)) for m in runs[0]}
    if ci == "bootstrap":
        for m, (low, high) in bootstrap_cis(y_test, probs, task, n_boot, boot_seed, groups=groups).items():
            summary[m]["ci_low"] = None if np.isnan(low) else low
            summary[m]["ci_high"] = None if np.isnan(high) else high
    return summary


def evaluate_settings(
    train: Embeddings,
    test: Embeddings,
    task: TaskType,
    fit: FitFn,
    n_train: Optional[Sequence[int]],
    seeds: Sequence[int],
    balanced: bool = False,
    ci: str = "t",
    n_boot: int = 1000,
    bootstrap_by: str = "example",
) -> Tuple[Dict[str, Any], Dict[str, List[Dict[str, Any]]]]:
    """Run ``fit`` for every training size and seed; ``(results, extras per setting)``."""
    y_test = test.targets(task)
    groups = test.patients if bootstrap_by == "patient" else None
    results: Dict[str, Any] = {}
    extras: Dict[str, List[Dict[str, Any]]] = {}
    sizes: List[Optional[int]] = list(n_train) if n_train else [None]
    for n in sizes:
        name = "n=all" if n is None else f"n={n}"
        runs, probs, extras[name] = [], [], []
        for seed in seeds:
            p, extra = fit(subsample(train, task, n, seed, balanced), seed)
            runs.append(classification_metrics(y_test, p, task))
            probs.append(p)
            extras[name].append(extra)
        results[name] = aggregate(runs, probs, y_test, task, ci, n_boot, groups)
    return results, extras


def _load(directory: str, names: Dict[str, str], task: Optional[TaskType]) -> Tuple[Dict[str, Embeddings], TaskType]:
    subsets = {role: Embeddings.load(directory, name) for role, name in names.items()}
    if task is None:
        task = infer_task(np.concatenate([e.labels for e in subsets.values()]))
    return subsets, task


def _finish(out: str, results: Dict[str, Any], meta: Dict[str, Any]) -> Dict[str, Any]:
    paths = write_results(out, results, meta)
    with open(paths["markdown"], encoding="utf-8") as fh:
        markdown = fh.read()
    print(markdown, end="")
    return {"results": results, "meta": meta, "paths": paths, "markdown": markdown}


def _meta(
    embeddings: str,
    names: Dict[str, str],
    sets: Dict[str, Embeddings],
    task: TaskType,
    seeds: Sequence[int],
    ci: str,
    n_boot: int,
    bootstrap_by: str,
    **extra: Any,
) -> Dict[str, Any]:
    embed = read_metadata(embeddings)
    boot: Dict[str, Any] = {"n_boot": n_boot, "bootstrap_by": bootstrap_by} if ci == "bootstrap" else {}
    return build_meta(
        seeds,
        names,
        embed.get("checkpoint"),
        embed.get("checkpoint_sha256"),
        ci,
        task=task,
        embeddings=os.path.abspath(embeddings),
        n_examples={r: len(e) for r, e in sets.items()},
        embed=embed,
        **boot,
        **extra,
    )


def run_linear_probe(
    embeddings: str,
    out: str,
    train_subset: str = "train",
    valid_subset: str = "valid",
    test_subset: str = "test",
    n_train: Optional[Sequence[int]] = None,
    balanced: bool = False,
    seeds: Sequence[int] = (0, 1, 2, 3, 4),
    ci: str = "t",
    task: Optional[TaskType] = None,
    Cs: Sequence[float] = DEFAULT_CS,
    n_boot: int = 1000,
    bootstrap_by: str = "example",
) -> Dict[str, Any]:
    """Linear-probe protocol (see the module docstring); writes results.json/results.md into ``out``."""
    names = {"train": train_subset, "valid": valid_subset, "test": test_subset}
    sets, task = _load(embeddings, names, task)
    valid = (sets["valid"].x, sets["valid"].targets(task))
    test = (sets["test"].x, sets["test"].targets(task))

    def fit(train: Embeddings, seed: int) -> Tuple[np.ndarray, Dict[str, Any]]:
        r = linear_probe((train.x, train.targets(task)), valid, test, task, Cs, seed)
        return r["probabilities"], {"best_C": r["best_C"], "valid_score": r["valid_score"]}

    results, extras = evaluate_settings(
        sets["train"], sets["test"], task, fit, n_train, seeds, balanced, ci, n_boot, bootstrap_by
    )
    meta = _meta(
        embeddings,
        names,
        sets,
        task,
        seeds,
        ci,
        n_boot,
        bootstrap_by,
        protocol="linear-probe",
        n_train=list(n_train) if n_train else None,
        balanced=balanced,
        Cs=list(Cs),
        runs=extras,
    )
    return _finish(out, results, meta)


def run_knn(
    embeddings: str,
    out: str,
    train_subset: str = "train",
    test_subset: str = "test",
    n_train: Optional[Sequence[int]] = None,
    balanced: bool = False,
    seeds: Sequence[int] = (0, 1, 2, 3, 4),
    ci: str = "t",
    task: Optional[TaskType] = None,
    k: int = 5,
    n_boot: int = 1000,
    bootstrap_by: str = "example",
) -> Dict[str, Any]:
    """Cosine k-NN protocol (see the module docstring); writes results.json/results.md into ``out``."""
    names = {"train": train_subset, "test": test_subset}
    sets, task = _load(embeddings, names, task)
    test = sets["test"]
    n_classes = n_classes_of(task, sets["train"].targets(task), test.targets(task))

    def fit(train: Embeddings, seed: int) -> Tuple[np.ndarray, Dict[str, Any]]:
        return knn_classify(train.x, train.targets(task), test.x, task, k, n_classes), {}

    results, _ = evaluate_settings(sets["train"], test, task, fit, n_train, seeds, balanced, ci, n_boot, bootstrap_by)
    meta = _meta(
        embeddings,
        names,
        sets,
        task,
        seeds,
        ci,
        n_boot,
        bootstrap_by,
        protocol="knn",
        k=k,
        n_train=list(n_train) if n_train else None,
        balanced=balanced,
    )
    return _finish(out, results, meta)


CLUSTER_SCORES = ("silhouette", "davies_bouldin", "calinski_harabasz", "adjusted_rand", "nmi")


def run_cluster(
    embeddings: str,
    out: str,
    subset: str = "test",
    seed: int = 0,
    n_clusters: Optional[int] = None,
) -> Dict[str, Any]:
    """k-means scores (``cluster_<subset>.json``), assignments (``clusters_<subset>.npy``)
    and the PCA plot (``projection_<subset>.png``) of one subset."""
    emb = Embeddings.load(embeddings, subset)
    found = cluster_embeddings(emb.x, emb.labels, n_clusters, seed)
    os.makedirs(out, exist_ok=True)
    png = plot_projection(
        emb.x, emb.labels, os.path.join(out, f"projection_{subset}.png"), seed, title=f"{subset}: PCA of embeddings"
    )
    np.save(os.path.join(out, f"clusters_{subset}.npy"), found["assignments"])
    embed = read_metadata(embeddings)
    report = {
        "meta": build_meta(
            [seed],
            {"subset": subset},
            embed.get("checkpoint"),
            embed.get("checkpoint_sha256"),
            ci="none",
            protocol="cluster",
            embeddings=os.path.abspath(embeddings),
            n_examples=len(emb),
        ),
        "metrics": {k: found[k] for k in ("n_clusters", "n_classes", *CLUSTER_SCORES)},
        "projection": png,
    }
    path = os.path.join(out, f"cluster_{subset}.json")
    with open(path, "w", encoding="utf-8") as fh:
        json.dump(json_safe(report), fh, indent=2, allow_nan=False)
    lines = ["| metric | value |", "|---|---|"] + [
        f"| {k} | {'n/a' if np.isnan(found[k]) else f'{found[k]:.3f}'} |" for k in CLUSTER_SCORES
    ]
    print("\n".join(lines))
    return {**report, "json": path}
