"""Feature extraction for a preprocessed output directory.

The ``mat/*.mat`` windows are z-scored, but amplitudes must be in mV. So each record is re-read with
the preprocessing's own reader and DSP (``preprocess.worker.load_and_prepare``: lead selection, NaN filling,
band-pass, resampling, all with the options saved in ``preprocess.json``) and cut at the ``start`` of each window
in ``windows.csv``: the features see exactly the saved window before normalisation, and the R-peaks
index its samples at the window's sample rate.

Records run in parallel processes. Each record's features are cached in
``<data>/features/cache/<record>.npz`` (:mod:`.cache`) under a key of the feature options, the extractor
version, the record's preprocessing key (``records/<record>.json``) and its window starts: a re-run recomputes
only records whose inputs or options changed. Then, per split, ``<split>.npz`` (rows in manifest order),
``names.json``, ``transform.npz`` (fitted on the valid training rows) and ``summary.json`` are written
atomically.

``python -m physioclr_ext.preprocess --features`` (:func:`preprocess_and_extract`) fills that cache in one pass:
the preprocessing worker hands each record it processes, filtered and in memory, to :func:`features_hook`, so
the feature stage re-reads only the records whose cache is missing or stale (e.g. skipped by resume after a
run without ``--features``), then fits the transform and writes the tables as above.
"""

from __future__ import annotations

import csv
import json
import os
from collections import Counter
from collections.abc import Collection, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict, dataclass
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from ..preprocess.config import PreprocessConfig
from ..preprocess.pipeline import run_with_hook, write_summary
from ..preprocess.readers import RecordRef, discover_saved
from ..preprocess.record_hook import RecordPass
from ..preprocess.worker import load_and_prepare
from .cache import EXTRACTOR_VERSION, cache_key, cache_path, read_cache, write_cache
from .extract import DELINEATIONS, extract_features, resolve_lead
from .hybrid_pipeline import add_hybrid_channels
from .names import FEATURE_DIM, FEATURE_NAMES
from .store import FEATURES_DIR, save_split, split_path, transform_path
from .transform import fit_transform, resolve_pca

SPLITS = ("train", "valid", "test")


@dataclass(frozen=True)
class FeatureOptions:
    """Options of a feature run.

    Attributes:
        lead: ``"mean"`` (mean of the present leads), a lead name of the output layout (``"II"``) or a row index.
        pca: number of PCA components of the transformed vectors (``None``: z-score only), or ``"auto"``:
            50 where the training split has at least 500 windows, else none (``transform.resolve_pca``).
        workers: parallel processes over records.
        seed: ``random_state`` of the PCA.
        progress: show a progress bar.
        delineation: ``nk.ecg_delineate`` method (``extract.DELINEATIONS``): ``"dwt"`` (PhysioCLR's) or
            ``"prominence"`` (closer to LUDB's manual delineation, see ``benchmarks/features.py``).
    """

    lead: str = "mean"
    pca: int | str | None = None
    workers: int = 1
    seed: int = 0
    progress: bool = True
    delineation: str = "dwt"


@dataclass(frozen=True)
class RecordJob:
    """One record's windows to extract (picklable)."""

    record: str
    key: str
    config: dict[str, Any]
    fmt: str
    ref: RecordRef
    windows: tuple[tuple[str, int], ...]  # (path, start)
    length: int
    lead: str
    cache: str
    delineation: str = "dwt"


def extract_directory(
    data_dir: str | Path, options: FeatureOptions | None = None, fresh: Collection[str] = ()
) -> dict[str, Any]:
    """Extract, transform and store the features of a preprocessed directory.

    Args:
        fresh: records whose cache this run's preprocessing just wrote (:func:`features_hook`): counted as
            computed, not cached.

    Returns:
        The ``summary.json`` content: per split the window count, valid count and reason counts, plus
        the records computed and taken from the cache, the PCA components used (``pca_components``,
        ``"auto"`` resolved) and the vector widths.
    """
    options = options or FeatureOptions()
    data = Path(data_dir).resolve()
    pca = resolve_pca(options.pca, len(manifest_paths(data, "train") or []))
    jobs, rows_by_path = plan_jobs(data, options)
    results, computed = run_jobs(jobs, options, fresh)
    tables = _split_tables(data, rows_by_path, results)
    train = tables.get("train")
    transform = (
        fit_transform(train["raw"], train["valid"], pca, options.seed)
        if train
        else fit_transform(np.zeros((0, FEATURE_DIM)), np.zeros(0, bool), pca, options.seed)
    )
    out = data / FEATURES_DIR
    transform.save(transform_path(str(data)))
    _write_json(out / "names.json", list(FEATURE_NAMES))
    summary: dict[str, Any] = {
        "options": asdict(options),
        "pca_components": pca,
        "extractor_version": EXTRACTOR_VERSION,
        "raw_dim": FEATURE_DIM,
        "vector_dim": transform.out_dim,
        "records": {"total": len(jobs), "computed": computed, "cached": len(jobs) - computed},
        "splits": {},
    }
    for split, table in tables.items():
        save_split(
            split_path(str(data), split),
            table["fnames"],
            table["raw"],
            transform.apply(table["raw"], table["valid"]),
            table["valid"],
            table["reason"],
            table["r_peaks"],
        )
        reasons = Counter(r for r in table["reason"] if r)
        summary["splits"][split] = {
            "windows": len(table["fnames"]),
            "valid": int(np.sum(table["valid"])),
            "invalid_by_reason": dict(sorted(reasons.items())),
        }
    _write_json(out / "summary.json", summary)
    return summary


def plan_jobs(data: Path, options: FeatureOptions) -> tuple[list[RecordJob], dict[str, tuple[str, int]]]:
    """One job per record of ``windows.csv``; also ``path -> (record, row in the record's result)``."""
    meta = json.loads((data / "preprocess.json").read_text())
    by_record: dict[str, list[tuple[str, int]]] = {}
    with open(data / "windows.csv", newline="") as f:
        for row in csv.DictReader(f):
            by_record.setdefault(row["record"], []).append((row["path"], int(row["start"])))
    check_options(options, list(meta["window"]["leads"]))
    refs = _record_refs(meta)
    length = int(meta["window"]["length_samples"])
    jobs, rows = [], {}
    for record, windows in by_record.items():
        marker = json.loads((data / "records" / f"{record}.json").read_text())
        key = cache_key(marker["key"], windows, length, options.lead, options.delineation)
        cache = cache_path(data, record)
        jobs.append(
            RecordJob(
                record,
                key,
                meta["options"],
                meta["format"],
                refs[record],
                tuple(windows),
                length,
                options.lead,
                cache,
                options.delineation,
            )
        )
        rows.update({path: (record, i) for i, (path, _) in enumerate(windows)})
    return jobs, rows


def check_options(options: FeatureOptions, leads: Sequence[str]) -> None:
    """Raise ValueError when ``options.delineation`` or ``options.lead`` (with the output's ``leads``) is invalid."""
    if options.delineation not in DELINEATIONS:
        raise ValueError(f"delineation {options.delineation!r} is not one of {DELINEATIONS}")
    if options.lead != "mean":
        resolve_lead(options.lead, list(leads), len(leads))


def _record_refs(meta: dict[str, Any]) -> dict[str, RecordRef]:
    return discover_saved(meta)


def run_jobs(
    jobs: Sequence[RecordJob], options: FeatureOptions, fresh: Collection[str] = ()
) -> tuple[dict[str, dict[str, Any]], int]:
    """Results of every job (from the cache where current); returns ``(record -> result, n computed)``, the
    records in ``fresh`` counted as computed (their cache was written by this run's preprocessing)."""
    results: dict[str, dict[str, Any]] = {}
    todo = []
    for job in jobs:
        cached = read_cache(job.cache, job.key, len(job.windows))
        if cached is None:
            todo.append(job)
        else:
            results[job.record] = cached
    with tqdm(
        total=len(jobs), initial=len(results), unit="record", desc="features", disable=not options.progress
    ) as bar:
        for record, result in _execute(todo, options.workers):
            results[record] = result
            bar.update()
    fresh_hits = set(fresh) & (set(results) - {job.record for job in todo})
    return results, len(todo) + len(fresh_hits)


def _execute(jobs: Sequence[RecordJob], workers: int) -> Iterator[tuple[str, dict[str, Any]]]:
    if workers <= 1 or len(jobs) <= 1:
        for job in jobs:
            yield job.record, extract_record(job)
        return
    with ProcessPoolExecutor(max_workers=min(workers, len(jobs))) as pool:
        futures = {pool.submit(extract_record, job): job for job in jobs}
        for future in as_completed(futures):
            job = futures[future]
            try:
                yield job.record, future.result()
            except Exception as exc:  # noqa: BLE001 - e.g. a worker killed by the OS
                yield job.record, _failed_record(job, f"worker crashed: {type(exc).__name__}")


def record_signal(job: RecordJob) -> tuple[np.ndarray, list[str], int]:
    """The record after lead selection, filtering and resampling (before normalisation), in mV.

    Returns:
        ``(signal (L, T) float64, lead names of the rows, sample rate)``.
    """
    prepared = load_and_prepare(job.ref, PreprocessConfig(**job.config))
    return prepared.signal, list(prepared.leads), prepared.sample_rate


def extract_record(job: RecordJob) -> dict[str, Any]:
    """Features of every window of one record; written to the cache. Never raises."""
    try:
        signal, names, fs = record_signal(job)
    except Exception as exc:  # noqa: BLE001 - an unreadable record makes all its windows invalid
        return _failed_record(job, f"unreadable: {type(exc).__name__}")
    starts = [start for _, start in job.windows]
    result = record_features(
        signal, fs, starts, job.length, lead=job.lead, lead_names=names, delineation=job.delineation
    )
    write_cache(job.cache, job.key, result)
    return result


def features_hook(lead: str, delineation: str, record: RecordPass) -> None:
    """The preprocessing worker's hook (:class:`~physioclr_ext.preprocess.record_hook.RecordPass`): the record's
    features from its signal in memory, cached as :func:`extract_record` caches them, so the feature stage
    finds them current. Bound to the options with ``functools.partial`` (picklable). Never raises: on an
    error nothing is cached and the feature stage extracts the record itself, as it would have."""
    try:
        result = record_features(
            record.signal,
            record.sample_rate,
            [start for _, start in record.windows],
            record.length,
            lead=lead,
            lead_names=list(record.leads),
            delineation=delineation,
        )
        key = cache_key(record.key, record.windows, record.length, lead, delineation)
        write_cache(cache_path(record.output, record.record), key, result)
    except Exception:  # noqa: BLE001 - the feature stage retries the record and reports its failure
        pass


def record_features(
    signal: np.ndarray,
    sample_rate: float,
    starts: Sequence[int],
    length: int,
    lead: str | int = "mean",
    lead_names: Sequence[str] | None = None,
    delineation: str = "dwt",
) -> dict[str, Any]:
    """Features of the windows of one record, from the record's signal already in memory.

    The per-record entry point for a caller that holds the record after its DSP, e.g. a preprocessing worker
    computing the features in the same pass as the windows (no second read and filtering of the record).

    Args:
        signal: ``(L, T)`` the record after lead selection, filtering and resampling, before normalisation, in mV.
        sample_rate: Hz of ``signal``.
        starts: first sample of each window.
        length: window length in samples (a window running past the record is invalid,
            ``"window_outside_record"``).
        lead, lead_names, delineation: as :func:`~physioclr_ext.features.extract.extract_features`.

    Returns:
        ``{"raw": (N, FEATURE_DIM) float32, "valid": (N,) bool, "reason": N str, "r_peaks": N int64 arrays}``,
        what ``extract_record`` caches and ``extract_directory`` stores.
    """
    raw = np.zeros((len(starts), FEATURE_DIM), np.float32)
    valid = np.zeros(len(starts), bool)
    reasons, peaks = [], []
    for i, start in enumerate(starts):
        window = signal[:, start : start + length]
        if window.shape[1] != length:
            res = None
        else:
            res = extract_features(window, sample_rate, lead=lead, lead_names=lead_names, delineation=delineation)
        raw[i] = res.vector if res else 0.0
        valid[i] = bool(res and res.valid)
        reasons.append(res.reason if res else "window_outside_record")
        peaks.append(res.r_peaks if res else np.zeros(0, np.int64))
    return {"raw": raw, "valid": valid, "reason": reasons, "r_peaks": peaks}


def _failed_record(job: RecordJob, reason: str) -> dict[str, Any]:
    n = len(job.windows)
    return {
        "raw": np.zeros((n, FEATURE_DIM), np.float32),
        "valid": np.zeros(n, bool),
        "reason": [reason] * n,
        "r_peaks": [np.zeros(0, np.int64)] * n,
    }


def manifest_paths(data: Path, split: str) -> list[str] | None:
    """Window paths of ``<split>.tsv`` in order (``None`` when the manifest is absent)."""
    path = data / f"{split}.tsv"
    if not path.is_file():
        return None
    lines = path.read_text().splitlines()[1:]
    return [line.split("\t")[0] for line in lines if line.strip()]


def _split_tables(
    data: Path, rows: dict[str, tuple[str, int]], results: dict[str, dict[str, Any]]
) -> dict[str, dict[str, Any]]:
    tables = {}
    for split in SPLITS:
        paths = manifest_paths(data, split)
        if paths is None:
            continue
        where = [rows[p] for p in paths]
        tables[split] = {
            "fnames": paths,
            "raw": np.stack([results[r]["raw"][i] for r, i in where]) if where else np.zeros((0, FEATURE_DIM)),
            "valid": np.array([results[r]["valid"][i] for r, i in where], dtype=bool),
            "reason": [results[r]["reason"][i] for r, i in where],
            "r_peaks": [np.asarray(results[r]["r_peaks"][i], np.int64) for r, i in where],
        }
    return tables


def _write_json(path: Path, payload: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".tmp{os.getpid()}")
    tmp.write_text(json.dumps(payload, indent=2) + "\n")
    os.replace(tmp, path)


def feature_options(config: PreprocessConfig) -> FeatureOptions:
    """The feature stage's options from the ``features_*`` fields of a preprocessing config."""
    return FeatureOptions(
        lead=config.features_lead,
        pca=config.features_pca,
        workers=config.workers,
        seed=config.seed,
        progress=config.progress,
        delineation=config.features_delineation,
    )


def preprocess_and_extract(config: PreprocessConfig) -> dict[str, Any]:
    """Preprocess, then extract the features when ``config.features``, then append the hybrid channels
    when ``config.hybrid_channels`` (:func:`.hybrid_pipeline.add_hybrid_channels`).

    The features are computed in the preprocessing workers, from each record as it is processed
    (:func:`features_hook`); the feature stage then extracts only the records preprocessing skipped whose
    cache is not current, fits the transform on train and writes the tables.

    Returns:
        The ``preprocess.json`` summary, with the feature stage's summary under ``"features"`` and the
        hybrid stage's under ``"hybrid"`` when they ran (also written to ``preprocess.json``).

    Example:
        >>> from physioclr_ext.preprocess import PreprocessConfig
        >>> config = PreprocessConfig(input="data/sample/ludb", output="out", features=True, features_pca="auto")
        >>> preprocess_and_extract(config)["features"]["pca_components"]  # 16 training windows < 500
    """
    options = feature_options(config)
    if config.features:
        check_options(options, config.leads)
    hook = partial(features_hook, options.lead, options.delineation) if config.features else None
    result = run_with_hook(config, hook)
    summary = result.summary
    if config.features:
        summary["features"] = extract_directory(config.output, options, fresh=result.processed)
        write_summary(config.output, summary)
    if config.hybrid_channels:
        summary["hybrid"] = add_hybrid_channels(config.output, workers=config.workers, progress=config.progress)
        if "packed" in summary["hybrid"]:  # packed by the hybrid stage, after its rewrite
            summary["packed"] = summary["hybrid"]["packed"]
        write_summary(config.output, summary)
    return summary
