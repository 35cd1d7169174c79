"""On-disk format of pooled embeddings (written by the ``embed`` command) and its reader.

Layout of an embeddings directory ``DIR``, one set of files per subset (``train``,
``valid``, ``test``, ...), rows in manifest order::

    DIR/<subset>.npy          float32 (N, E)  pooled embedding of each window
    DIR/<subset>.labels.npy   float32 (N, L)  the ``label`` stored in each window's .mat
    DIR/<subset>.idx.npy      int64   (N,)    record index of each window
    DIR/<subset>.patient.npy  int64   (N,)    patient id of each window
    DIR/<subset>.paths.txt    N lines         manifest path of each window
    DIR/embed.json            free metadata (e.g. "checkpoint", "checkpoint_sha256")
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import Any, Dict, List, Sequence, Union

import numpy as np

from physioclr_ext.evaluation.metrics import TaskType

META_FILE = "embed.json"
_SUFFIXES = {"labels": ".labels.npy", "idx": ".idx.npy", "patients": ".patient.npy", "paths": ".paths.txt"}


@dataclass
class Embeddings:
    """Pooled embeddings of one subset with per-window labels, record and patient ids.

    Attributes:
        x: float32 (N, E) embeddings.
        labels: float32 (N, L) labels (a 1-D array is taken as (N, 1)).
        idx: int64 (N,) record index.
        patients: int64 (N,) patient id.
        paths: N manifest paths.
    """

    x: np.ndarray
    labels: np.ndarray
    idx: np.ndarray
    patients: np.ndarray
    paths: List[str]

    def __post_init__(self) -> None:
        self.x = np.asarray(self.x, dtype=np.float32)
        self.labels = np.asarray(self.labels, dtype=np.float32)
        if self.labels.ndim == 1:
            self.labels = self.labels[:, None]
        self.idx = np.asarray(self.idx, dtype=np.int64)
        self.patients = np.asarray(self.patients, dtype=np.int64)
        self.paths = [str(p) for p in self.paths]
        _validate(self, "embeddings")

    def __len__(self) -> int:
        return len(self.x)

    def select(self, indices: Union[Sequence[int], np.ndarray]) -> Embeddings:
        """The rows ``indices`` as a new :class:`Embeddings`."""
        rows = np.asarray(indices, dtype=np.int64)
        return Embeddings(
            self.x[rows], self.labels[rows], self.idx[rows], self.patients[rows], [self.paths[int(i)] for i in rows]
        )

    def targets(self, task: TaskType) -> np.ndarray:
        """Labels in the convention of :mod:`~physioclr_ext.evaluation.metrics`.

        binary/multiclass: int64 (N,) from the first label column; multilabel: int64 (N, L).
        """
        if task == "multilabel":
            return self.labels.astype(np.int64)
        return self.labels[:, 0].astype(np.int64)

    def save(self, directory: str, subset: str) -> Dict[str, str]:
        """Write the subset's files into ``directory``; returns ``{field: path}``."""
        os.makedirs(directory, exist_ok=True)
        files = _files(directory, subset)
        np.save(files["x"], self.x)
        np.save(files["labels"], self.labels)
        np.save(files["idx"], self.idx)
        np.save(files["patients"], self.patients)
        with open(files["paths"], "w", encoding="utf-8") as fh:
            fh.writelines(p + "\n" for p in self.paths)
        return files

    @classmethod
    def load(cls, directory: str, subset: str) -> Embeddings:
        """Read one subset, checking that every file is there and has N rows."""
        files = _files(directory, subset)
        missing = [os.path.basename(p) for p in files.values() if not os.path.exists(p)]
        if missing:
            raise FileNotFoundError(f"{directory}: subset {subset!r} lacks {', '.join(missing)}")
        with open(files["paths"], encoding="utf-8") as fh:
            paths = [line.rstrip("\n") for line in fh]
        arrays = {k: np.load(files[k]) for k in ("x", "labels", "idx", "patients")}
        return cls(paths=paths, **{k: _check_ndim(v, k, files[k]) for k, v in arrays.items()})


def _check_ndim(array: np.ndarray, field: str, path: str) -> np.ndarray:
    expected = {"x": 2, "labels": 2, "idx": 1, "patients": 1}[field]
    if array.ndim != expected:
        raise ValueError(f"{path}: expected a {expected}-D array, got shape {array.shape}")
    return array


def _validate(emb: Embeddings, where: str) -> None:
    if emb.x.ndim != 2:
        raise ValueError(f"{where}: x must be (N, E), got shape {emb.x.shape}")
    if emb.labels.ndim != 2:
        raise ValueError(f"{where}: labels must be (N, L), got shape {emb.labels.shape}")
    n = len(emb.x)
    lengths = {"labels": len(emb.labels), "idx": len(emb.idx), "patients": len(emb.patients), "paths": len(emb.paths)}
    wrong = {k: v for k, v in lengths.items() if v != n}
    if wrong:
        detail = ", ".join(f"{k} has {v}" for k, v in wrong.items())
        raise ValueError(f"{where}: {n} embeddings but {detail} rows")
    if any("\n" in p for p in emb.paths):
        raise ValueError(f"{where}: paths must not contain newlines")


def _files(directory: str, subset: str) -> Dict[str, str]:
    files = {"x": os.path.join(directory, subset + ".npy")}
    files.update({k: os.path.join(directory, subset + s) for k, s in _SUFFIXES.items()})
    return files


def subsets(directory: str) -> List[str]:
    """Sorted names of the subsets with embeddings (``<subset>.npy``) in ``directory``."""
    companions = tuple(s for s in _SUFFIXES.values() if s.endswith(".npy"))
    names = [f[: -len(".npy")] for f in os.listdir(directory) if f.endswith(".npy") and not f.endswith(companions)]
    return sorted(names)


def write_metadata(directory: str, meta: Dict[str, Any]) -> str:
    """Write ``embed.json``; returns its path."""
    os.makedirs(directory, exist_ok=True)
    path = os.path.join(directory, META_FILE)
    with open(path, "w", encoding="utf-8") as fh:
        json.dump(meta, fh, indent=2)
    return path


def read_metadata(directory: str) -> Dict[str, Any]:
    """The content of ``embed.json``, or ``{}`` when there is none."""
    path = os.path.join(directory, META_FILE)
    if not os.path.exists(path):
        return {}
    with open(path, encoding="utf-8") as fh:
        return json.load(fh)


def infer_task(labels: np.ndarray) -> TaskType:
    """Task type of (N, L) labels: several columns multilabel; one 0/1 column binary; else multiclass."""
    labels = np.asarray(labels)
    if labels.ndim == 2 and labels.shape[1] > 1:
        return "multilabel"
    values = np.unique(labels)
    return "binary" if set(values.tolist()) <= {0.0, 1.0} else "multiclass"
