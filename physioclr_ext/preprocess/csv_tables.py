"""Lenient reading of label tables: CSV files with or without a header row, a BOM, blank rows and
stray whitespace; label cells (0/1 flags, separated codes, dict literals of codes); code -> class
mapping tables; fold -> split rules. Used by ``labels_csv`` (``--labels CSV``)."""

from __future__ import annotations

import ast
import csv
import io
import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SPLIT_SYNONYMS = {"train": "train", "training": "train", "valid": "valid", "val": "valid", "validation": "valid"}
SPLIT_SYNONYMS.update({"dev": "valid", "test": "test", "testing": "test"})
EXTENSIONS = (".hea", ".dat", ".mat", ".npy", ".edf", ".csv", ".xml")
_TRUE = ("1", "true", "yes", "y", "t")
_FALSE = ("", "0", "false", "no", "n", "f", "nan")


@dataclass
class Table:
    """A CSV read leniently: ``header`` names (``"0"``, ``"1"``, ... without a header row) and rows."""

    header: list[str]
    rows: list[list[str]]
    has_header: bool
    bom: bool
    blank_rows: int = 0
    repeated_header_rows: int = 0

    def column(self, ref: str | int) -> int:
        """Index of a column given by name (exact, then case-insensitive) or by 0-based position."""
        names = [h.strip() for h in self.header]
        text = str(ref).strip()
        for candidates in (names, [n.lower() for n in names]):
            key = text if candidates is names else text.lower()
            if key in candidates:
                return candidates.index(key)
        if text.isdigit() and int(text) < len(names):
            return int(text)
        raise ValueError(f"column {text!r} not found; the columns are {names}")

    def cell(self, row: Sequence[str], index: int) -> str:
        return row[index].strip() if index < len(row) else ""


def read_table(path: str | Path, first_cell_is_data: Any = None) -> Table:
    """Read a CSV (``,`` ``;`` or tab separated) with a BOM, blank rows and a header row or none.

    Args:
        first_cell_is_data: called with the first row's first cell; ``True`` means the file has no
            header row (e.g. CinC 2017's ``REFERENCE.csv``: ``A00001,N``). ``None``: always a header.
    """
    raw = Path(path).read_bytes()
    bom = raw.startswith(b"\xef\xbb\xbf")
    text = raw.decode("utf-8-sig", errors="replace").lstrip("\ufeff")
    try:
        dialect: Any = csv.Sniffer().sniff(text[:4096], delimiters=",;\t")
    except csv.Error:
        dialect = csv.excel
    rows = list(csv.reader(io.StringIO(text), dialect))
    data = [[c.strip().lstrip("\ufeff") for c in r] for r in rows if any(c.strip() for c in r)]
    if not data:
        raise ValueError(f"{path}: no rows")
    headerless = first_cell_is_data is not None and bool(first_cell_is_data(data[0][0]))
    width = max(len(r) for r in data)
    header = [str(i) for i in range(width)] if headerless else data[0]
    body = data if headerless else data[1:]
    kept = [r for r in body if headerless or r != header]
    return Table(header, kept, not headerless, bom, len(rows) - len(data), len(body) - len(kept))


def normalise_id(value: str) -> str:
    """Record or patient id as written: stripped, ``\\`` -> ``/``, no ``./``, ``1.0`` -> ``1``."""
    text = value.strip().replace("\\", "/")
    while text.startswith("./"):
        text = text[2:]
    if re.fullmatch(r"-?\d+\.0*", text):
        text = text.split(".")[0]
    return text


def strip_extension(text: str) -> str:
    for ext in EXTENSIONS:
        if text.lower().endswith(ext):
            return text[: -len(ext)]
    return text


def parse_flag(value: str, where: str) -> bool:
    """A multi-hot cell: ``1``/``0``, ``1.0``, ``true``/``false``, ``yes``/``no``; empty is 0."""
    text = value.strip().lower()
    if text in _TRUE or text in _FALSE:
        return text in _TRUE
    try:
        return float(text) > 0
    except ValueError:
        raise ValueError(f"{where}: {value!r} is not a 0/1 value") from None


def parse_codes(value: str, separators: str, min_likelihood: float | None = None) -> tuple[list[str], int]:
    """Codes of one cell: a dict literal (code -> likelihood), a list literal, or separated codes.

    Returns:
        ``(codes in order, number of codes dropped for a likelihood below min_likelihood)``.

    Example:
        >>> parse_codes("{'NORM': 100.0, 'SR': 0.0}", ",;")
        (['NORM', 'SR'], 0)
        >>> parse_codes(" AF; PVC ", ",;")
        (['AF', 'PVC'], 0)
    """
    text = value.strip()
    if text[:1] in ("{", "[", "("):
        parsed = ast.literal_eval(text)
        if isinstance(parsed, dict):
            kept = [str(k).strip() for k, v in parsed.items() if min_likelihood is None or float(v) >= min_likelihood]
            return kept, len(parsed) - len(kept)
        return [str(c).strip() for c in parsed if str(c).strip()], 0
    parts = re.split(f"[{re.escape(separators)}]", text) if separators else [text]
    return [p.strip() for p in parts if p.strip()], 0


@dataclass(frozen=True)
class CodeMap:
    """Code -> classes from a mapping table; ``classes`` in table order (the ``table`` label set)."""

    mapping: dict[str, tuple[str, ...]]
    classes: tuple[str, ...]

    def apply(self, codes: Iterable[str], counts: Counter[str]) -> list[str]:
        """Classes of the codes (each once, first-seen order).

        Codes missing from the table are counted as ``unknown:<code>``, codes in it without a class
        (outside the chosen label set, e.g. PTB-XL's rhythm codes for superdiagnostic) as ``outside:<code>``.
        """
        out: list[str] = []
        for code in codes:
            if code not in self.mapping:
                counts[f"unknown:{code}"] += 1
            elif not self.mapping[code]:
                counts[f"outside:{code}"] += 1
            out += [c for c in self.mapping.get(code, ()) if c not in out]
        return out


def read_code_map(
    path: str | Path, code_column: str | int, class_column: str | int | None, where: str | None
) -> CodeMap:
    """Mapping table: rows with an empty class, or a false ``where`` cell, map their code to nothing.

    Args:
        class_column: ``None`` maps each kept code to itself (PTB-XL's diagnostic/form/rhythm sets).
    """
    table = read_table(path)
    code_i = table.column(code_column)
    class_i = code_i if class_column is None else table.column(class_column)
    where_i = None if where is None else table.column(where)
    mapping: dict[str, tuple[str, ...]] = {}
    for n, row in enumerate(table.rows, start=2):
        code, klass = table.cell(row, code_i), table.cell(row, class_i)
        keep = where_i is None or parse_flag(table.cell(row, where_i), f"{path} row {n}")
        if code:
            mapping[code] = mapping.get(code, ()) + ((klass,) if klass and keep else ())
    classes = tuple(dict.fromkeys(c for cs in mapping.values() for c in cs))
    return CodeMap(mapping, classes)


def parse_fold_split(spec: str) -> dict[int, str]:
    """``"1-8:train,9:valid,10:test"`` -> fold -> split (PTB-XL's benchmark convention)."""
    folds: dict[int, str] = {}
    for part in filter(None, (p.strip() for p in spec.split(","))):
        span, _, split = part.partition(":")
        lo, _, hi = span.partition("-")
        if split.strip() not in ("train", "valid", "test") or not lo.strip().isdigit():
            raise ValueError(f"fold split {spec!r}: use FOLDS:SPLIT items such as 1-8:train,9:valid,10:test")
        for fold in range(int(lo), int(hi or lo) + 1):
            folds[fold] = split.strip()
    return folds


def split_of(value: str, folds: Mapping[int, str]) -> str | None:
    """Split of a split/fold cell: a split name (or synonym) or a fold number; ``None`` if neither."""
    text = normalise_id(value).lower()
    if text in SPLIT_SYNONYMS:
        return SPLIT_SYNONYMS[text]
    return folds.get(int(text)) if text.lstrip("-").isdigit() else None


def is_flag(value: str) -> bool:
    """Strictly 0/1 (an age of 63 parses as a flag but is none)."""
    text = value.strip().lower()
    try:
        return text in _TRUE or text in _FALSE or float(text) in (0.0, 1.0)
    except ValueError:
        return False
