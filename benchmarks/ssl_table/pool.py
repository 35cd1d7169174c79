"""The unlabeled pretraining pool of one input contract: every train and valid window of the
pool's sources (every non-test patient), in one manifest, and the proof that no test patient is in it.

Layout: each source was preprocessed into ``CONTRACT_DIR/<source>/`` (manifests, ``windows.csv``,
``cmsc/``); the pool directory gets ``train.tsv`` and ``valid.tsv`` rooted at ``CONTRACT_DIR``
(paths ``<source>/mat/<record>_<i>.mat``), ``cmsc/train.tsv`` (CLOCS pairs of the same windows)
and ``pool.json`` (windows per source, test patients kept out). Pure file handling, no framework.
"""

from __future__ import annotations

import csv
import json
import os
from dataclasses import dataclass, field
from typing import Dict, List, Mapping, Sequence, Set, Tuple

POOL_SPLITS = ("train", "valid")
"""Splits of a source that may reach pretraining (never ``test``)."""


def read_manifest(path: str) -> Tuple[str, List[Tuple[str, str]]]:
    """``(root, [(relative path, size), ...])`` of a fairseq-signals manifest."""
    with open(path, encoding="utf-8") as fh:
        lines = [line.rstrip("\n") for line in fh if line.strip()]
    if not lines:
        return "", []
    rows = [tuple(line.split("\t")[:2]) for line in lines[1:]]
    return lines[0], [(r[0], r[1]) for r in rows]


def window_patients(source_dir: str) -> Dict[str, Tuple[str, str]]:
    """``{window path: (patient, split)}`` from a source's ``windows.csv``."""
    out = {}
    with open(os.path.join(source_dir, "windows.csv"), newline="", encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            out[row["path"]] = (row["patient"], row["split"])
    return out


def patients_in_test(source_dir: str) -> Set[str]:
    """Patients with at least one window in the source's test split."""
    return {patient for patient, split in window_patients(source_dir).values() if split == "test"}


@dataclass
class Pool:
    """Windows of the pool by split, with the patients each source contributed."""

    root: str
    windows: Dict[str, List[Tuple[str, str]]] = field(default_factory=lambda: {s: [] for s in POOL_SPLITS})
    cmsc: List[str] = field(default_factory=list)
    patients: Dict[str, Set[str]] = field(default_factory=dict)
    counts: Dict[str, Dict[str, int]] = field(default_factory=dict)


def _cmsc_lines(source_dir: str, source: str) -> List[str]:
    lines: List[str] = []
    for split in POOL_SPLITS:
        path = os.path.join(source_dir, "cmsc", f"{split}.tsv")
        if os.path.exists(path):
            with open(path, encoding="utf-8") as fh:
                body = [line.rstrip("\n") for line in fh][2:]  # root line, then the "mat" line
            lines += [f"{source}/{line}" for line in body if line.strip()]
    return lines


def build_pool(contract_dir: str, sources: Sequence[str]) -> Pool:
    """Collect the train and valid windows of ``sources`` (folders of ``contract_dir``).

    Sources that are missing (preprocessing failed or produced nothing) are skipped and
    counted as 0. Raises ``ValueError`` if a window of the pool belongs to a test patient.
    """
    pool = Pool(os.path.abspath(contract_dir))
    for source in sources:
        source_dir = os.path.join(contract_dir, source)
        pool.counts[source] = {s: 0 for s in POOL_SPLITS}
        if not os.path.exists(os.path.join(source_dir, "windows.csv")):
            continue
        owners = window_patients(source_dir)
        banned = {p for p, split in owners.values() if split == "test"}
        pool.patients[source] = set()
        for split in POOL_SPLITS:
            _, rows = read_manifest(os.path.join(source_dir, f"{split}.tsv"))
            for rel, size in rows:
                patient = owners.get(rel, ("?", split))[0]
                if patient in banned:
                    raise ValueError(f"{source}: {rel} belongs to test patient {patient}")
                pool.windows[split].append((f"{source}/{rel}", size))
                pool.patients[source].add(patient)
            pool.counts[source][split] = len(rows)
        pool.cmsc += _cmsc_lines(source_dir, source)
    return pool


def leaked_patients(pool: Pool, test: Mapping[str, Set[str]], same_dataset: Mapping[str, str]) -> Dict[str, Set[str]]:
    """Test patients of evaluation sources found in the pool.

    Args:
        test: evaluation source -> its test patients.
        same_dataset: source key -> dataset identity (e.g. its folder under the data root), so
            that the test patients of ``mitdb_aami`` are checked against the ``mitdb_binary``
            windows of the pool.
    """
    leaks: Dict[str, Set[str]] = {}
    for evaluated, patients in test.items():
        for source, seen in pool.patients.items():
            if same_dataset.get(source) == same_dataset.get(evaluated) and seen & patients:
                leaks.setdefault(evaluated, set()).update(seen & patients)
    return leaks


def write_pool(pool: Pool, out_dir: str, extra: Mapping[str, object] = ()) -> Dict[str, int]:
    """Write ``train.tsv`` (every pool window: the sources' train and valid splits, which pretraining
    reads), ``valid.tsv`` (the valid splits' windows, for configs that validate), ``cmsc/*.tsv`` and
    ``pool.json``; returns the windows per manifest."""
    os.makedirs(os.path.join(out_dir, "cmsc"), exist_ok=True)
    manifests = {"train": [w for split in POOL_SPLITS for w in pool.windows[split]], "valid": pool.windows["valid"]}
    for split, rows in manifests.items():
        with open(os.path.join(out_dir, f"{split}.tsv"), "w", encoding="utf-8") as fh:
            fh.write(pool.root + "\n")
            fh.writelines(f"{rel}\t{size}\n" for rel, size in rows)
    for split in ("train", "valid"):  # CLOCS pairs of every pool window; valid mirrors train (validation is off)
        with open(os.path.join(out_dir, "cmsc", f"{split}.tsv"), "w", encoding="utf-8") as fh:
            fh.write("\n".join([pool.root, "mat", *pool.cmsc]) + "\n")
    sizes = {split: len(rows) for split, rows in manifests.items()}
    report = {
        "root": pool.root,
        "windows": sizes,
        "cmsc_pairs": len(pool.cmsc),
        "per_source": pool.counts,
        "patients_per_source": {s: len(p) for s, p in pool.patients.items()},
        **dict(extra),
    }
    with open(os.path.join(out_dir, "pool.json"), "w", encoding="utf-8") as fh:
        json.dump(report, fh, indent=2)
    return sizes
