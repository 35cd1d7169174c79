"""Packed windows (``--packed``): per split, every window of the manifest in one memory-mapped float32 array.

Layout, next to the manifests (which are still written)::

    OUTPUT/packed/<split>.json         the index: array file name, shape, and per window (manifest order)
                                       path, size, curr_sample_rate, patient_id, idx
    OUTPUT/packed/<split>-<key>.npy    (N, C, T) float32; window i is ``[i, :, :size_i]`` (zero tail when a
                                       ``--pad-short mask`` window is shorter than T)

The arrays are copied from the written ``.mat`` files' ``feats`` (the same bits). The index is the commit
point: an array is written under a new name, then its index is written atomically, then unreferenced arrays
are removed. An index never outlives the windows it copied: a run that will rewrite any window removes the
indexes first (:func:`remove_indexes`), so a run killed before packing leaves no index (the datasets then ask
for ``--packed``) rather than a stale one. A split whose index carries the same fingerprint (its window
paths and their records' resume keys) is kept as is, so a resumed run does not copy it again. Runs without
``--packed`` remove ``OUTPUT/packed/``.

With ``--hybrid-channels`` the preprocessing run does not pack: the hybrid stage
(``features.hybrid_pipeline``) rewrites every window with its extra rows, then packs the directory
(:func:`pack_directory`), its fingerprint salted with the hybrid statistics and options. It first removes
the indexes that the rewrite would make stale (:func:`remove_stale_indexes`); a current one is kept, since
its windows are rewritten with the same bits.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import scipy.io

from .config import SPLIT_NAMES
from .outputs import write_atomic
from .worker import load_marker

PACKED_DIR = "packed"
VERSION = 1


def index_path(data_dir: str | Path, split: str) -> Path:
    """``<data>/packed/<split>.json``."""
    return Path(data_dir) / PACKED_DIR / f"{split}.json"


def fingerprint(rows: Sequence[Mapping[str, Any]], keys: Mapping[str, str], salt: str = "") -> str:
    """Hash of a split's window paths (in order), their records' resume keys (``record -> key``) and ``salt``
    (what a later stage that rewrote the windows depends on; empty: none, the hash of earlier outputs)."""
    items = [[r["path"], keys.get(r["record"], "")] for r in rows]
    return hashlib.sha256(json.dumps([VERSION, items, *([salt] if salt else [])]).encode()).hexdigest()[:16]


def _scalar(mat: Mapping[str, Any], key: str, default: int = -1) -> int:
    return int(np.asarray(mat[key]).reshape(-1)[0]) if key in mat else default


def _pack_split(out: Path, split: str, rows: Sequence[Mapping[str, Any]], key: str) -> None:
    """Copy the split's windows into ``packed/<split>-<key>.npy``, then write its index atomically."""
    folder = out / PACKED_DIR
    meta: dict[str, list[Any]] = {k: [] for k in ("paths", "sizes", "sample_rate", "patient_id", "idx")}
    length = max((int(r["size"]) for r in rows), default=0)
    name = f"{split}-{key}.npy"
    tmp = folder / f".{name}.tmp{os.getpid()}"
    array: np.memmap | None = None
    for i, row in enumerate(rows):
        mat = scipy.io.loadmat(out / row["path"])
        feats = np.asarray(mat["feats"], dtype=np.float32)
        if array is None:
            array = np.lib.format.open_memmap(
                tmp, mode="w+", dtype=np.float32, shape=(len(rows), feats.shape[0], length)
            )
        if feats.shape[0] != array.shape[1] or feats.shape[1] > length:
            raise ValueError(f"{row['path']}: shape {feats.shape} does not fit the packed array {array.shape[1:]}")
        array[i, :, : feats.shape[1]] = feats
        meta["paths"].append(row["path"])
        meta["sizes"].append(int(feats.shape[1]))
        meta["sample_rate"].append(_scalar(mat, "curr_sample_rate"))
        meta["patient_id"].append(_scalar(mat, "patient_id"))
        meta["idx"].append(_scalar(mat, "idx"))
    if array is None:  # empty split: a plain (0, 0, 0) array
        with open(tmp, "wb") as fh:  # np.save on a path would append ".npy" to the temporary name
            np.save(fh, np.zeros((0, 0, 0), dtype=np.float32))
        shape: tuple[int, ...] = (0, 0, 0)
    else:
        array.flush()
        shape = tuple(array.shape)
        del array
    os.replace(tmp, folder / name)
    index = {"version": VERSION, "fingerprint": key, "array": name, "shape": list(shape), "dtype": "float32", **meta}
    write_atomic(index_path(out, split), json.dumps(index) + "\n")


def _current(out: Path, split: str, key: str) -> bool:
    try:
        index = json.loads(index_path(out, split).read_text())
    except (OSError, ValueError):
        return False
    return bool(index.get("fingerprint") == key and (out / PACKED_DIR / str(index.get("array"))).is_file())


def write_packed(
    out: Path, rows: Sequence[Mapping[str, Any]], keys: Mapping[str, str], progress: bool = False, salt: str = ""
) -> dict[str, list[int]]:
    """Write (or keep, when current) every split's packed array and index from the written ``.mat`` files.

    Args:
        rows: the run's window rows (``outputs.window_rows``: path, record, size, split), manifest order.
        keys: record -> resume key of its marker (a changed record re-packs its split).
        salt: see :func:`fingerprint`.

    Returns:
        ``{split: [N, C, T]}``, the array shapes.
    """
    folder = out / PACKED_DIR
    folder.mkdir(parents=True, exist_ok=True)
    shapes = {}
    for split in SPLIT_NAMES:
        split_rows = [r for r in rows if r["split"] == split]
        key = fingerprint(split_rows, keys, salt)
        if not _current(out, split, key):
            index_path(out, split).unlink(missing_ok=True)
            _pack_split(out, split, split_rows, key)
        shapes[split] = json.loads(index_path(out, split).read_text())["shape"]
    referenced = {json.loads(index_path(out, s).read_text())["array"] for s in SPLIT_NAMES}
    for path in folder.iterdir():
        if (path.name.endswith(".npy") and path.name not in referenced) or ".tmp" in path.name:
            path.unlink(missing_ok=True)  # superseded arrays and temporaries of killed runs
    return shapes


def directory_rows(out: Path) -> tuple[list[dict[str, Any]], dict[str, str]]:
    """The window rows (path, record, size, split; manifest order) and record resume keys of a written output
    directory, from its manifests, ``windows.csv`` and markers (for a stage after the preprocessing run)."""
    with open(out / "windows.csv", newline="") as fh:
        record = {row["path"]: row["record"] for row in csv.DictReader(fh)}
    rows: list[dict[str, Any]] = []
    for split in SPLIT_NAMES:
        for line in (out / f"{split}.tsv").read_text().splitlines()[1:]:
            path, size = line.split("\t")[:2]
            rows.append({"path": path, "record": record[path], "size": int(size), "split": split})
    keys = {}
    for name in sorted(set(record.values())):
        marker = load_marker(out, name)
        keys[name] = "" if marker is None else str(marker.get("key", ""))
    return rows, keys


def pack_directory(out: Path, salt: str) -> dict[str, list[int]]:
    """:func:`write_packed` for a written output directory (:func:`directory_rows`) after a later stage
    rewrote its windows; ``salt``: what that stage's rewrite depends on."""
    rows, keys = directory_rows(out)
    return write_packed(out, rows, keys, salt=salt)


def remove_stale_indexes(out: Path, salt: str) -> None:
    """Before a later stage rewrites the windows of a written directory: remove every index that will not be
    current once they are rewritten (its fingerprint differs from :func:`pack_directory`'s with ``salt``)."""
    rows, keys = directory_rows(out)
    for split in SPLIT_NAMES:
        if not _current(out, split, fingerprint([r for r in rows if r["split"] == split], keys, salt)):
            index_path(out, split).unlink(missing_ok=True)


def remove_indexes(out: Path) -> None:
    """Remove every split's index (before windows are rewritten: the arrays would no longer match them)."""
    for split in SPLIT_NAMES:
        index_path(out, split).unlink(missing_ok=True)


def remove_packed(out: Path) -> None:
    """Remove ``OUTPUT/packed/`` (a run without ``--packed``: old arrays would disagree with the new windows)."""
    shutil.rmtree(out / PACKED_DIR, ignore_errors=True)


@dataclass
class PackedSplit:
    """One split's packed windows, memory-mapped on first access (not pickled: each worker maps its own).

    Attributes:
        paths, sizes, sample_rate, patient_id, idx: per window, manifest order.
        row: manifest path -> row of the array.
    """

    array_path: Path
    shape: tuple[int, ...]
    paths: list[str]
    sizes: np.ndarray
    sample_rate: np.ndarray
    patient_id: np.ndarray
    idx: np.ndarray

    def __post_init__(self) -> None:
        self.row = {p: i for i, p in enumerate(self.paths)}
        self._array: np.ndarray | None = None

    @classmethod
    def open(cls, data_dir: str | Path, split: str) -> PackedSplit:
        """Read ``<data>/packed/<split>.json``.

        Raises:
            FileNotFoundError: no packed index or array (preprocess with ``--packed``).
        """
        path = index_path(data_dir, split)
        if not path.is_file():
            raise FileNotFoundError(path)
        index = json.loads(path.read_text())
        array_path = path.parent / index["array"]
        if not array_path.is_file():
            raise FileNotFoundError(array_path)
        ints = {k: np.asarray(index[k], dtype=np.int64) for k in ("sizes", "sample_rate", "patient_id", "idx")}
        return cls(array_path, tuple(index["shape"]), list(index["paths"]), **ints)

    @property
    def array(self) -> np.ndarray:
        """The (N, C, T) float32 array, memory-mapped read-only."""
        if self._array is None:
            array = np.load(self.array_path, mmap_mode="r" if self.shape[0] else None)
            if tuple(array.shape) != self.shape:
                raise ValueError(f"{self.array_path} has shape {array.shape}, its index says {self.shape}")
            self._array = array.view(np.ndarray)  # same mapped memory; a plain array indexes faster than a memmap
        return self._array

    def window(self, row: int) -> np.ndarray:
        """Window ``row`` as a writable float32 copy, (C, size_row)."""
        return self.array[row, :, : self.sizes[row]].copy()

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_array": None}
