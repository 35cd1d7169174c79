"""Check a preprocessed data directory before a command spends minutes on it.

fairseq-signals reads manifests lazily: a line pointing to a missing ``.mat``, a length column
that is not a number, a window without ``feats`` or labels that disagree with ``label_def.csv``
end, batches later, in a traceback far from the cause. :func:`check_data_dir` reads every
manifest line and every window's variable list (``scipy.io.whosmat``: names and shapes, not the
samples; those of the first window of each manifest) and raises :class:`DataError` with one line naming the file, the line and the fix.

Example:
    >>> check_data_dir("out/", ["train", "valid"])  # doctest: +SKIP
    {'train': 812, 'valid': 96}
"""

from __future__ import annotations

import csv
import os
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import scipy.io

REGENERATE = "rerun python -m physioclr_ext.preprocess on the records to regenerate it"


class DataError(ValueError):
    """A preprocessed data directory that a command cannot use (the message is one line)."""


def read_manifest_lines(path: str) -> Tuple[str, List[Tuple[int, str, int]]]:
    """The root and ``(line number, relative path, length)`` of each window line of a manifest.

    Raises:
        DataError: the manifest is missing or empty, or a line lacks a whole-number length.
    """
    if not os.path.isfile(path):
        raise DataError(f"{path}: no such manifest; run python -m physioclr_ext.preprocess first or pick other subsets")
    with open(path, encoding="utf-8") as fh:
        lines = fh.read().splitlines()
    if not lines or not lines[0].strip():
        raise DataError(f"{path}: empty manifest (no root line); {REGENERATE}")
    rows = []
    for number, line in enumerate(lines[1:], start=2):
        if not line.strip():
            continue
        cols = line.split("\t")
        if len(cols) < 2 or not cols[1].strip().isdigit() or int(cols[1]) <= 0:
            shown = cols[1] if len(cols) > 1 else "(missing)"
            raise DataError(
                f"{path}:{number}: length column {shown!r} is not a positive whole number of samples "
                f"(expected 'path<TAB>length'); {REGENERATE}"
            )
        rows.append((number, cols[0], int(cols[1])))
    return lines[0].strip(), rows


def label_def_width(data: str) -> Optional[int]:
    """Number of classes in ``data/label_def.csv`` (``None`` when the data has no label file)."""
    path = os.path.join(data, "label_def.csv")
    if not os.path.isfile(path):
        return None
    with open(path, encoding="utf-8", newline="") as fh:
        return sum(1 for _ in csv.DictReader(fh))


def _window_shapes(mat: str, where: str) -> Dict[str, Tuple[Tuple[int, ...], str]]:
    try:
        return {name: (tuple(shape), kind) for name, shape, kind in scipy.io.whosmat(mat)}
    except Exception as exc:  # noqa: BLE001 - any unreadable file is the same user error
        raise DataError(f"{where}: {mat} is not a readable .mat file ({type(exc).__name__}); {REGENERATE}") from None


def check_window(mat: str, length: int, n_classes: Optional[int], where: str, full: bool = False) -> None:
    """One window file against its manifest line and ``label_def.csv``; with ``full`` its samples too.

    Raises:
        DataError: missing or unreadable file, no 2-D real ``feats``, ``feats`` shorter than the manifest's
            length, or a ``label`` width that ``label_def.csv`` contradicts.
    """
    if not os.path.isfile(mat):
        raise DataError(f"{where}: {mat} does not exist; {REGENERATE}, or remove the line")
    shapes = _window_shapes(mat, where)
    if "feats" not in shapes:
        raise DataError(f"{where}: {mat} has no 'feats' variable (has {sorted(shapes)}); {REGENERATE}")
    shape, kind = shapes["feats"]
    if len(shape) != 2 or kind not in ("double", "single") or 0 in shape:
        raise DataError(
            f"{where}: {mat} 'feats' is {kind} {shape}, expected real (leads, samples) floats; {REGENERATE}"
        )
    if full:  # whosmat calls complex data "double": read the samples of one window per manifest
        feats = scipy.io.loadmat(mat, variable_names=("feats",))["feats"]
        if np.iscomplexobj(feats) or not np.isfinite(feats).all():
            what = "complex" if np.iscomplexobj(feats) else "NaN or infinite"
            raise DataError(f"{where}: {mat} 'feats' holds {what} values, expected real finite floats; {REGENERATE}")
    if shape[1] < length:
        raise DataError(f"{where}: manifest length {length} exceeds the {shape[1]} samples of {mat}; {REGENERATE}")
    if n_classes is not None and "label" in shapes:
        width = max(shapes["label"][0][-1:] or (0,))
        if width not in (1, n_classes):
            raise DataError(
                f"{where}: {mat} holds {width} labels but label_def.csv names {n_classes} classes; "
                f"{REGENERATE} (label_def.csv and the windows come from different runs)"
            )


def check_data_dir(data: str, subsets: Sequence[str]) -> Dict[str, int]:
    """Check the manifests ``data/<subset>.tsv`` and every window they list.

    Returns:
        ``{subset: number of windows}``.

    Raises:
        DataError: the first problem found, in one line naming the file and the fix.
    """
    if not os.path.isdir(data):
        raise DataError(f"{data}: no such data directory; pass the OUTPUT folder of python -m physioclr_ext.preprocess")
    n_classes = label_def_width(data)
    counts = {}
    for subset in subsets:
        manifest = os.path.join(data, f"{subset}.tsv")
        root, rows = read_manifest_lines(manifest)
        if not rows:
            raise DataError(
                f"{manifest}: no windows; choose a split that gives this subset records (see preprocess.json)"
            )
        for number, rel, length in rows:
            check_window(os.path.join(root, rel), length, n_classes, f"{manifest}:{number}", number == rows[0][0])
        counts[subset] = len(rows)
    return counts
