"""One physiological feature store for a pool of several preprocessed sources (PhysioCLR).

PhysioCLR's task reads ``DATA/features/<split>.npz`` next to ``DATA/<split>.tsv`` (rows keyed by
the manifest path) and ``DATA/windows.csv`` for temporal neighbours. The pool's manifests name
windows ``<source>/mat/<record>_<i>.mat`` across several source folders, each with its own
feature tables. This module writes the pool's tables: each source's *raw* features and R-peaks
under the pool's paths, and one z-score (and PCA) fitted on the valid rows of the whole pool, so
that every window's feature vector lives in one space. Uses only the core feature store.
"""

from __future__ import annotations

import csv
import json
import os
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from physioclr_ext.features.store import FEATURES_DIR, FeatureSplit, load_split, save_split, transform_path
from physioclr_ext.features.transform import fit_transform, resolve_pca
from ssl_table.pool import POOL_SPLITS, read_manifest


def _source_tables(contract_dir: str, source: str) -> Dict[str, FeatureSplit]:
    return {split: load_split(os.path.join(contract_dir, source), split) for split in POOL_SPLITS}


def _names(contract_dir: str, sources: Sequence[str]) -> List[str]:
    """The raw feature names, identical in every source (else the tables cannot be stacked)."""
    found: Optional[List[str]] = None
    for source in sources:
        with open(os.path.join(contract_dir, source, FEATURES_DIR, "names.json"), encoding="utf-8") as fh:
            names = json.load(fh)
        if found is not None and names != found:
            raise ValueError(f"{source}: feature names differ from the other sources'")
        found = names
    return found or []


def _rows(
    paths: Sequence[str], tables: Dict[str, Dict[str, FeatureSplit]]
) -> Tuple[np.ndarray, np.ndarray, List[str], List[np.ndarray]]:
    """Raw features, validity, reasons and R-peaks of the pool ``paths`` (``<source>/<rel>``), in order."""
    where = {
        f"{source}/{name}": (table, i)
        for source, splits in tables.items()
        for table in splits.values()
        for i, name in enumerate(table.fnames)
    }
    raw, valid, reason, peaks = [], [], [], []
    for path in paths:
        if path not in where:
            raise KeyError(f"{path} has no feature row; extract the features of its source again")
        table, i = where[path]
        raw.append(table.raw[i])
        valid.append(bool(table.valid[i]))
        reason.append(str(table.reason[i]))
        peaks.append(table.r_peaks[i])
    return np.asarray(raw, dtype=np.float32), np.asarray(valid, dtype=bool), reason, peaks


def merge_pool_features(contract_dir: str, pool_dir: str, pca: object = "auto", seed: int = 0) -> dict:
    """Write ``pool_dir/features/{train,valid}.npz``, ``transform.npz``, ``names.json`` and a merged
    ``pool_dir/windows.csv`` for the windows of ``pool_dir``'s manifests.

    Args:
        contract_dir: folder of the preprocessed sources (the pool manifests' root).
        pool_dir: the pool (``train.tsv``, ``valid.tsv``).
        pca: as ``--features-pca`` (``"auto"``: 50 components from 500 training windows).

    Returns:
        A summary: windows and valid windows per split, feature width.
    """
    manifests = {split: read_manifest(os.path.join(pool_dir, f"{split}.tsv"))[1] for split in ("train", "valid")}
    sources = sorted({rel.split("/", 1)[0] for rows in manifests.values() for rel, _ in rows})
    tables = {s: _source_tables(contract_dir, s) for s in sources}
    names = _names(contract_dir, sources)
    rows = {split: _rows([rel for rel, _ in manifests[split]], tables) for split in manifests}
    train_raw, train_valid = rows["train"][0], rows["train"][1]
    transform = fit_transform(train_raw, train_valid, resolve_pca(pca, len(train_raw)), seed=seed)
    summary: dict = {"sources": sources, "feature_dim": transform.out_dim, "splits": {}}
    for split, (raw, valid, reason, peaks) in rows.items():
        paths = [rel for rel, _ in manifests[split]]
        save_split(
            os.path.join(pool_dir, FEATURES_DIR, f"{split}.npz"),
            paths,
            raw,
            transform.apply(raw, valid),
            valid,
            reason,
            peaks,
        )
        summary["splits"][split] = {"windows": len(paths), "valid": int(valid.sum())}
    transform.save(transform_path(pool_dir))
    with open(os.path.join(pool_dir, FEATURES_DIR, "names.json"), "w", encoding="utf-8") as fh:
        json.dump(names, fh)
    _merge_windows(contract_dir, sources, pool_dir)
    with open(os.path.join(pool_dir, FEATURES_DIR, "summary.json"), "w", encoding="utf-8") as fh:
        json.dump(summary, fh, indent=2)
    return summary


def _merge_windows(contract_dir: str, sources: Sequence[str], pool_dir: str) -> None:
    """``windows.csv`` of every source with ``path`` and ``record`` prefixed by the source, so that
    temporal neighbours stay within a record of one source."""
    out_rows: List[dict] = []
    fields: List[str] = []
    for source in sources:
        with open(os.path.join(contract_dir, source, "windows.csv"), newline="", encoding="utf-8") as fh:
            reader = csv.DictReader(fh)
            fields += [f for f in reader.fieldnames or [] if f not in fields]  # sources differ (MIT-BIH: aami, ...)
            for row in reader:
                if row["split"] in POOL_SPLITS:
                    out_rows.append({**row, "path": f"{source}/{row['path']}", "record": f"{source}/{row['record']}"})
    with open(os.path.join(pool_dir, "windows.csv"), "w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=fields, restval="")
        writer.writeheader()
        writer.writerows(out_rows)
