"""Patient-level train/valid/test splits.

Every split assigns whole patients, so no patient's windows reach two
splits; ``verify_disjoint`` re-checks that before anything is written.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .config import SPLIT_NAMES
from .readers import RecordRef, natural_key

# de Chazal, O'Dwyer & Reilly 2004, inter-patient protocol.
MITBIH_DS1 = (
    "101",
    "106",
    "108",
    "109",
    "112",
    "114",
    "115",
    "116",
    "118",
    "119",
    "122",
    "124",
    "201",
    "203",
    "205",
    "207",
    "208",
    "209",
    "215",
    "220",
    "223",
    "230",
)
MITBIH_DS2 = (
    "100",
    "103",
    "105",
    "111",
    "113",
    "117",
    "121",
    "123",
    "200",
    "202",
    "210",
    "212",
    "213",
    "214",
    "219",
    "221",
    "222",
    "228",
    "231",
    "232",
    "233",
    "234",
)
MITBIH_PACED = ("102", "104", "107", "217")


class SplitError(ValueError):
    """A split would put one patient into two splits, or a split file is invalid."""


def random_patient_split(patients: Sequence[str], fractions: Sequence[float], seed: int) -> dict[str, str]:
    """Seeded random assignment of patients to train/valid/test.

    The patients are sorted first, so the result depends only on the set of
    patients, the fractions and the seed (not on processing order).
    Split sizes are the rounded cumulative fractions of the patient count.
    """
    unique = sorted(set(patients), key=natural_key)
    order = np.random.default_rng(seed).permutation(len(unique))
    bounds = np.round(np.cumsum(fractions) * len(unique)).astype(int)
    split_of_rank = np.searchsorted(bounds, np.arange(len(unique)), side="right")
    return {unique[i]: SPLIT_NAMES[min(int(s), 2)] for i, s in zip(order, split_of_rank)}


def mitbih_ds1ds2_split(
    record_patient: Mapping[str, str], valid_fraction: float, seed: int, merge_same_subject: bool
) -> tuple[dict[str, str], dict[str, str], list[str]]:
    """DS1 -> train (a seeded share of DS1 patients -> valid), DS2 -> test.

    Args:
        record_patient: record id -> patient id of the records found.
        merge_same_subject: when True, records 201 (DS1) and 202 (DS2) are one
            patient, so 202 is dropped from test to keep the splits disjoint.

    Returns:
        ``(record -> split, excluded record -> reason, records dropped for patient overlap)``.
    """
    assignment: dict[str, str] = {}
    excluded: dict[str, str] = {}
    dropped: list[str] = []
    for record in record_patient:
        if record in MITBIH_DS1:
            assignment[record] = "train"
        elif merge_same_subject and record == "202":
            dropped.append(record)
            excluded[record] = "dropped_for_patient_overlap"
        elif record in MITBIH_DS2:
            assignment[record] = "test"
        else:
            excluded[record] = "paced" if record in MITBIH_PACED else "not_in_ds1_ds2"
    ds1_patients = sorted({record_patient[r] for r, s in assignment.items() if s == "train"}, key=natural_key)
    n_valid = round(valid_fraction * len(ds1_patients))
    rng = np.random.default_rng(seed)
    valid = set(rng.choice(ds1_patients, size=n_valid, replace=False).tolist()) if n_valid else set()
    for record, split in assignment.items():
        if split == "train" and record_patient[record] in valid:
            assignment[record] = "valid"
    return assignment, excluded, dropped


def read_split_file(path: str | Path, record_patient: Mapping[str, str]) -> tuple[dict[str, str], list[str]]:
    """Record -> split from a CSV with columns ``record`` or ``patient``, and ``split``.

    Returns:
        ``(record -> split for the records found, ids in the file that match no record)``.
        Records not covered by the file are left out of the mapping.

    Raises:
        SplitError: missing columns, unknown split names, or an id listed in two splits.
    """
    import pandas as pd

    table = pd.read_csv(path, dtype=str)
    key = "record" if "record" in table.columns else "patient" if "patient" in table.columns else None
    if key is None or "split" not in table.columns:
        raise SplitError(f"{path}: needs columns 'record' (or 'patient') and 'split'")
    bad = sorted(set(table["split"].str.strip()) - set(SPLIT_NAMES))
    if bad:
        raise SplitError(f"{path}: unknown split names {bad}; use train, valid, test")
    ids_in_file, splits_in_file = table[key].str.strip(), table["split"].str.strip()
    splits_of: dict[str, set[str]] = {}
    for rid, split in zip(ids_in_file, splits_in_file):
        splits_of.setdefault(rid, set()).add(split)
    clashes = sorted((rid for rid, found in splits_of.items() if len(found) > 1), key=natural_key)
    if clashes:
        lines = {i: [n + 2 for n, j in enumerate(ids_in_file) if j == i] for i in clashes[:5]}
        shown = "; ".join(f"{i} on lines {', '.join(map(str, ns))}" for i, ns in lines.items())
        raise SplitError(f"{path}: {len(clashes)} {key}(s) listed in two splits ({shown}); keep one line each")
    wanted = dict(zip(ids_in_file, splits_in_file))
    ids = record_patient.keys() if key == "record" else set(record_patient.values())
    unmatched = sorted(set(wanted) - set(ids), key=natural_key)
    by = (lambda r: r) if key == "record" else (lambda r: record_patient[r])
    assignment = {r: wanted[by(r)] for r in record_patient if by(r) in wanted}
    return assignment, unmatched


def verify_disjoint(assignment: Mapping[str, str], record_patient: Mapping[str, str]) -> None:
    """Raise ``SplitError`` naming the patients that occur in more than one split."""
    splits_of: dict[str, set[str]] = {}
    for record, split in assignment.items():
        splits_of.setdefault(record_patient[record], set()).add(split)
    clashes = {p: sorted(s) for p, s in splits_of.items() if len(s) > 1}
    if clashes:
        shown = ", ".join(f"{p} in {'+'.join(s)}" for p, s in sorted(clashes.items())[:10])
        raise SplitError(f"patients in more than one split ({len(clashes)}): {shown}")


@dataclass
class Plan:
    """Records to process and their split.

    Attributes:
        refs: planned records in ``idx`` order.
        assignment: record id -> train/valid/test.
        excluded: record id -> reason for records found but not planned.
    """

    refs: list[RecordRef]
    assignment: dict[str, str]
    excluded: dict[str, str] = field(default_factory=dict)
    dropped_for_patient_overlap: list[str] = field(default_factory=list)
    unmatched_split_ids: list[str] = field(default_factory=list)
