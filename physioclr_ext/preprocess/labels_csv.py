"""Record labels, patients and splits from a CSV (``--labels CSV``), for every input format.

A labels CSV has one row per record: a record column (an id, a file name or a path relative to the
input folder, with or without extension) and the labels in one of three forms:

* ``class``: one column, one label per record (multi-class by name; CinC 2017's ``REFERENCE.csv``);
* ``multihot``: several 0/1 columns, one per label (multi-label);
* ``codes``: one column of separated codes (``"AF;PVC"``) or a dict/list literal of codes (PTB-XL's
  ``scp_codes``, ``"{'NORM': 100.0, 'SR': 0.0}"``), optionally mapped to classes by a second table
  (code -> class, as PTB-XL's ``scp_statements.csv`` maps statements to superclasses).

Optional columns: a patient id (splits stay patient-level) and a split (``train``/``valid``/``test``)
or fold number (PTB-XL's ``strat_fold``: folds 1-8 train, 9 valid, 10 test). A UTF-8 BOM, a missing
or repeated header row, blank rows and stray whitespace are handled; rows naming no record on disk,
records missing from the CSV and records left without a label are each counted in the summary.

Reference: Wagner et al., "PTB-XL, a large publicly available electrocardiography dataset",
Sci. Data 7:154 (2020); Strodthoff et al., "Deep learning for ECG analysis: benchmarks and insights
from PTB-XL", IEEE JBHI 25(5) (2021) for the label sets and the fold convention.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .config import PreprocessConfig
from .csv_tables import (
    CodeMap,
    Table,
    is_flag,
    normalise_id,
    parse_codes,
    parse_flag,
    parse_fold_split,
    read_code_map,
    read_table,
    split_of,
    strip_extension,
)
from .labels import LabelSpace, order_label_names
from .readers import RecordRef, natural_key

RECORD_COLUMNS = ("record", "record_id", "record_name", "recording", "filename", "file", "ecg_id", "id", "name")
PATIENT_COLUMNS = ("patient", "patient_id", "subject", "subject_id")

# PTB-XL statement sets (scp_statements.csv): (class column or None for the code itself, filter column).
PTBXL_LABEL_SETS: dict[str, tuple[str | None, str | None]] = {
    "superdiagnostic": ("diagnostic_class", "diagnostic"),
    "subdiagnostic": ("diagnostic_subclass", "diagnostic"),
    "diagnostic": (None, "diagnostic"),
    "form": (None, "form"),
    "rhythm": (None, "rhythm"),
    "all": (None, None),
}


class RecordIndex:
    """Finds the record a CSV value names: relative path, then record id, then file stem.

    A record taken apart into channels (``channels_as_records``) is found as its source record.
    """

    def __init__(self, refs: Sequence[RecordRef], root: Path) -> None:
        self.by_path: dict[str, set[str]] = {}
        self.by_name: dict[str, set[str]] = {}
        self.relative: dict[str, str] = {}
        for ref in refs:
            rel = _relative(ref.path, root)
            self.relative[ref.record_id] = rel
            self.by_path.setdefault(rel, set()).add(source_id(ref))
            for name in (source_id(ref), Path(rel).name):
                self.by_name.setdefault(name, set()).add(source_id(ref))

    def find(self, value: str) -> tuple[str | None, bool]:
        """``(source record id or None, ambiguous)`` for a CSV record cell."""
        key = strip_extension(normalise_id(value))
        found = self.by_path.get(key) or self.by_name.get(key) or self.by_name.get(Path(key).name, set())
        if len(found) == 1:
            return next(iter(found)), False
        return None, len(found) > 1


def source_id(ref: RecordRef) -> str:
    """The id of the record on disk (a channel record's source)."""
    return ref.source or ref.record_id


def _relative(path: str, root: Path) -> str:
    target = Path(strip_extension(path))
    try:
        return target.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        return target.name


@dataclass
class CsvLabels:
    """What a labels CSV gives the run.

    Attributes:
        refs: the records to process, with ``labels`` (and ``patient`` where a patient column is
            given) taken from the CSV, in discovery order.
        splits: record id -> train/valid/test from the split/fold column (empty without one).
        excluded: record id -> reason for records found on disk but not processed.
        kind: ``class``, ``multihot`` or ``codes``.
        table: label names in table order (the columns, or the mapping table's classes).
        report: the counts for ``preprocess.json`` (``labels.csv``).
    """

    refs: list[RecordRef]
    splits: dict[str, str]
    excluded: dict[str, str]
    kind: str
    table: tuple[str, ...]
    report: dict[str, Any] = field(default_factory=dict)

    def label_space(self, scheme: str, label_set: str, refs: Sequence[RecordRef]) -> LabelSpace:
        """Scheme ``auto``: ``multiclass`` for one class column, else ``multilabel`` (``(1, K)`` multi-hot)."""
        if scheme == "auto":
            scheme = "multiclass" if self.kind == "class" else "multilabel"
        if scheme in ("binary", "aami"):
            raise ValueError(f"label scheme {scheme!r} needs beat annotations; a labels CSV gives record labels")
        if scheme == "multiclass" and any(len(r.labels) != 1 for r in refs):
            raise ValueError("label scheme 'multiclass' needs exactly one label per record in the labels CSV")
        found = {name for r in refs for name in r.labels}
        if scheme == "none":
            return LabelSpace("none", ())
        if scheme == "multiclass":
            return LabelSpace(scheme, tuple(sorted(found, key=natural_key)))
        table = self.table if self.kind == "multihot" else tuple(sorted(self.table, key=natural_key))
        use_table = label_set == "table" or self.kind == "multihot"
        return LabelSpace(scheme, tuple(order_label_names(found, table, use_table)))


def resolve_path(template: str, root: Path) -> str:
    """A path option with ``{input}`` replaced by the input folder (presets name files inside it)."""
    return template.replace("{input}", str(root))


def apply_labels_csv(config: PreprocessConfig, root: Path, refs: Sequence[RecordRef]) -> CsvLabels:
    """Match the rows of ``config.labels_csv`` to the discovered records and read their labels.

    Raises:
        ValueError: a column is missing, a cell cannot be parsed, or no record is labelled.
    """
    path = resolve_path(str(config.labels_csv), root)
    index = RecordIndex(refs, root)
    table = read_table(path, lambda cell: index.find(cell)[0] is not None)
    record_i = _record_column(table, _record_column_option(config, root))
    patient_i = _optional_column(table, config.labels_patient_column, PATIENT_COLUMNS)
    split_i = None if config.labels_split_column is None else table.column(config.labels_split_column)
    label_is, kind = _label_columns(table, config, {record_i, patient_i, split_i})
    code_map = _code_map(config, root) if kind == "codes" else None
    rows = _read_rows(table, index, record_i, patient_i, split_i, label_is, kind, code_map, config)
    result = _assemble(refs, index, rows, kind, config)
    result.table = code_map.classes if code_map else tuple(table.header[i].strip() for i in label_is)
    result.report.update(
        file=path,
        header_row=table.has_header,
        bom=table.bom,
        blank_rows=table.blank_rows,
        repeated_header_rows=table.repeated_header_rows,
        record_column=table.header[record_i].strip(),
        patient_column=None if patient_i is None else table.header[patient_i].strip(),
        split_column=None if split_i is None else table.header[split_i].strip(),
        label_columns=[table.header[i].strip() for i in label_is],
        kind=kind,
        mapping=None if code_map is None else resolve_path(str(config.labels_map), root),
    )
    if not result.refs:
        raise ValueError(f"{path}: no record on disk is labelled by it ({_short(result.report)})")
    return result


def _record_column_option(config: PreprocessConfig, root: Path) -> str | None:
    """PTB-XL with only its 100 Hz records on disk reads ``filename_lr`` instead of ``filename_hr``."""
    option = config.labels_record_column
    if option == "filename_hr" and not (root / "records500").is_dir() and (root / "records100").is_dir():
        return "filename_lr"
    return option


def _record_column(table: Table, option: str | None) -> int:
    if option is not None:
        return table.column(option)
    found = _optional_column(table, None, RECORD_COLUMNS) if table.has_header else None
    return 0 if found is None else found


def _optional_column(table: Table, option: str | None, names: Sequence[str]) -> int | None:
    if option is not None:
        return table.column(option)
    if not table.has_header:
        return None
    lowered = [h.strip().lower() for h in table.header]
    return next((lowered.index(n) for n in names if n in lowered), None)


def _label_columns(table: Table, config: PreprocessConfig, used: set[int | None]) -> tuple[list[int], str]:
    """Label column indices and the kind (``labels_kind`` auto: one column -> class, or codes when it
    holds literals or a mapping table is given; several 0/1 columns -> multihot)."""
    if config.labels_columns:
        columns = [table.column(c) for c in config.labels_columns]
    else:
        columns = [i for i in range(len(table.header)) if i not in used]
    kind = config.labels_kind
    if kind == "auto":
        if len(columns) > 1:
            if not all(is_flag(table.cell(r, i)) for r in table.rows for i in columns):
                names = [table.header[i] for i in columns]
                raise ValueError(
                    f"several columns {names} and not all 0/1: name the label column(s) with --labels-column"
                )
            kind = "multihot"
        else:
            literal = any(table.cell(r, columns[0])[:1] in ("{", "[") for r in table.rows) if columns else False
            kind = "codes" if literal or config.labels_map or config.ptbxl_labels else "class"
    if not columns or (kind != "multihot" and len(columns) != 1):
        raise ValueError(f"labels kind {kind!r} needs {'one label column' if kind != 'multihot' else 'label columns'}")
    return columns, kind


def _code_map(config: PreprocessConfig, root: Path) -> CodeMap | None:
    class_column, where = PTBXL_LABEL_SETS.get(config.ptbxl_labels or "", (None, None))
    if config.ptbxl_labels == "all" or not config.labels_map:
        if config.ptbxl_labels not in (None, "all"):
            raise ValueError(f"PTB-XL label set {config.ptbxl_labels!r} needs --labels-map scp_statements.csv")
        return None
    code_column: str | int = 0
    if config.labels_map_columns:
        code_column, class_column = config.labels_map_columns
    elif config.ptbxl_labels is None:
        class_column = "1"
    where = config.labels_map_where or where
    return read_code_map(resolve_path(config.labels_map, root), code_column, class_column, where)


@dataclass
class _Row:
    labels: tuple[str, ...]
    patient: str | None
    split_cell: str | None


def _read_rows(
    table: Table,
    index: RecordIndex,
    record_i: int,
    patient_i: int | None,
    split_i: int | None,
    label_is: Sequence[int],
    kind: str,
    code_map: CodeMap | None,
    config: PreprocessConfig,
) -> dict[str, Any]:
    """Parse every row; returns matched rows by record id and the row-level counts."""
    matched: dict[str, _Row] = {}
    missing: list[str] = []
    counts: Counter[str] = Counter()
    unmapped: Counter[str] = Counter()
    header_offset = 2 if table.has_header else 1
    for n, row in enumerate(table.rows, start=header_offset):
        value = table.cell(row, record_i)
        source, ambiguous = index.find(value) if value else (None, False)
        if source is None:
            counts["ambiguous_rows" if ambiguous else "rows_without_record"] += 1
            if not ambiguous and value:
                missing.append(value)
            continue
        if source in matched:
            counts["duplicate_rows"] += 1
            continue
        where = f"{config.labels_csv} row {n}"
        labels = _row_labels(table, row, label_is, kind, code_map, config, where, counts, unmapped)
        patient = normalise_id(table.cell(row, patient_i)) if patient_i is not None else ""
        split_cell = table.cell(row, split_i) if split_i is not None else None
        matched[source] = _Row(tuple(labels), patient or None, split_cell)
    counts["rows"] = len(table.rows)
    return {"matched": matched, "missing": missing, "counts": counts, "unmapped": unmapped}


def _row_labels(
    table: Table,
    row: Sequence[str],
    label_is: Sequence[int],
    kind: str,
    code_map: CodeMap | None,
    config: PreprocessConfig,
    where: str,
    counts: Counter[str],
    unmapped: Counter[str],
) -> list[str]:
    if kind == "class":
        value = table.cell(row, label_is[0])
        return [value] if value else []
    if kind == "multihot":
        return [table.header[i].strip() for i in label_is if parse_flag(table.cell(row, i), where)]
    try:
        codes, below = parse_codes(table.cell(row, label_is[0]), config.labels_separator, config.labels_min_likelihood)
    except (ValueError, SyntaxError) as exc:
        raise ValueError(f"{where}: cannot read the codes {table.cell(row, label_is[0])!r} ({exc})") from None
    counts["codes_below_min_likelihood"] += below
    return code_map.apply(codes, unmapped) if code_map else list(dict.fromkeys(codes))


def _assemble(
    refs: Sequence[RecordRef], index: RecordIndex, parsed: Mapping[str, Any], kind: str, config: PreprocessConfig
) -> CsvLabels:
    """Records to process, their splits and the excluded records, with the record-level counts."""
    matched: dict[str, _Row] = parsed["matched"]
    scope = _labelled_folders(refs, index, matched)
    considered = [r for r in refs if scope is None or index.relative[r.record_id].split("/")[0] in scope]
    folds = parse_fold_split(config.fold_split)
    excluded: dict[str, str] = {}
    kept: list[RecordRef] = []
    splits: dict[str, str] = {}
    unmapped_splits: Counter[str] = Counter()
    for ref in considered:
        row = matched.get(source_id(ref))
        reason = _exclusion(row, config, folds, unmapped_splits)
        if reason:
            excluded[ref.record_id] = reason
            continue
        assert row is not None
        kept.append(dataclasses.replace(ref, labels=row.labels, patient=row.patient or ref.patient))
        if row.split_cell is not None:
            splits[ref.record_id] = str(split_of(row.split_cell, folds))
    reasons = Counter(excluded.values())
    counts = parsed["counts"]
    report = {
        "rows": counts["rows"],
        "rows_without_record": counts["rows_without_record"],
        "rows_without_record_examples": parsed["missing"][:10],
        "ambiguous_rows": counts["ambiguous_rows"],
        "duplicate_rows": counts["duplicate_rows"],
        "records_on_disk": len(refs),
        "records_outside_labelled_folders": len(refs) - len(considered),
        "records_not_in_csv": reasons["not_in_labels_csv"],
        "records_not_in_csv_examples": [r for r, why in excluded.items() if why == "not_in_labels_csv"][:10],
        "records_without_label": sum(1 for row in matched.values() if not row.labels),
        "records_without_label_dropped": reasons["no_label"],
        "records_without_split": reasons["no_split_in_labels_csv"],
        "unmapped_split_values": dict(unmapped_splits),
        "records_labelled": len(kept),
        "unknown_codes": _prefixed(parsed["unmapped"], "unknown:"),
        "codes_outside_label_set": _prefixed(parsed["unmapped"], "outside:"),
        "codes_below_min_likelihood": counts["codes_below_min_likelihood"],
        "split_counts": {s: sum(1 for v in splits.values() if v == s) for s in ("train", "valid", "test")},
    }
    return CsvLabels(kept, splits, excluded, kind, (), report)


def _labelled_folders(refs: Sequence[RecordRef], index: RecordIndex, matched: Mapping[str, _Row]) -> set[str] | None:
    """Top folders of the records the CSV names by path (PTB-XL: ``records500``), else ``None``.

    Records outside them (PTB-XL's other rate) are not counted as missing from the CSV.
    """
    paths = [index.relative[r.record_id] for r in refs if source_id(r) in matched]
    if not paths or not all("/" in p for p in paths):
        return None
    return {p.split("/")[0] for p in paths}


def _exclusion(row: _Row | None, config: PreprocessConfig, folds: Mapping[int, str], unmapped: Counter[str]) -> str:
    if row is None:
        return "not_in_labels_csv"
    if not row.labels and (config.labels_empty == "drop" or config.label_scheme == "multiclass"):
        return "no_label"
    if row.split_cell is not None and split_of(row.split_cell, folds) is None:
        unmapped[row.split_cell] += 1
        return "no_split_in_labels_csv"
    return ""


def _prefixed(counts: Counter[str], prefix: str) -> dict[str, int]:
    return {k[len(prefix) :]: n for k, n in sorted(counts.items()) if k.startswith(prefix)}


def _short(report: Mapping[str, Any]) -> str:
    keys = ("rows", "rows_without_record", "records_on_disk", "records_not_in_csv", "records_without_label_dropped")
    return ", ".join(f"{k}={report.get(k)}" for k in keys)


def summary_line(report: Mapping[str, Any]) -> str:
    """One line for the command's report."""
    return (
        f"labels CSV: {report['records_labelled']} records labelled from {report['rows']} rows; "
        f"{report['rows_without_record']} rows name no record on disk, {report['records_not_in_csv']} records "
        f"not in the CSV, {report['records_without_label']} without a label "
        f"({report['records_without_label_dropped']} dropped), {report['records_without_split']} without a split, "
        f"{report['duplicate_rows']} duplicate rows"
    )
