"""Dataset of the ``ecg_feature`` task (PhysioCLR): windows with their physiological features,
R-peaks, a heartbeat-shuffled view and their temporal neighbour.

:class:`PhysioCLRDataset` reads a fairseq-signals window manifest (``<data>/<split>.tsv``) and the
feature table written by feature extraction (``<data>/features/<split>.npz``, see
:mod:`physioclr_ext.features.store`). The temporal neighbour of a window is the next window of
the same record in ``<data>/windows.csv`` (else the previous one); a record with one window, or
data without ``windows.csv``, has none, and the batch flags it (``neighbour_valid``).

Items: ``source`` (C, T), ``features`` (F,), ``feature_valid``, ``r_peaks`` (int64, indices in
the window at its own rate), ``neighbour`` (C, T) or None. Batches::

    net_input = {source (B, C, T), shuffled (B, C, T), neighbour (B, C, T) (zeros where missing),
                 [padding_mask (B, C, T)]}
    features (B, F), feature_valid (B,), neighbour_valid (B,), r_peaks [B tensors], sample_rate

Each window's shuffled view is drawn with its own generator seeded from (seed, epoch, window index),
as in :mod:`physioclr_ext.data.ecg_ssl_dataset`: the same whatever batch, data-parallel worker or
resumed run draws it. Windows longer than the batch length are cropped with that generator and
their R-peaks shifted (peaks outside the crop dropped), so the peaks always index the collated signal.

Reads: each item needs its window and its neighbour, and a window is also the neighbour of the one
before it, so reading both from disk per item reads every ``.mat`` twice an epoch. A small LRU cache
per dataset copy (so per DataLoader worker) of the last ``window_cache`` windows read, keyed by path,
makes the second read free when the two accesses are close (a record's windows in order, as in an
unshuffled validation pass: about half the reads). Under a shuffled order the two accesses are far
apart and the cache rarely hits, so after ``CACHE_PROBATION`` misses it stops taking windows (reads cost what they
did before); there ``task.packed`` (:class:`~physioclr_ext.data.packed_dataset.
PackedPhysioCLRDataset`) reads windows and neighbours from one memory-mapped array with no ``.mat``
read at all. The cache holds the arrays as read, before ``postprocess``, and hands out copies, so items
and batches are the same bit for bit with or without it.
"""

from __future__ import annotations

import csv
import os
from collections import OrderedDict, defaultdict
from typing import Any, Dict, List, Optional, Tuple

import numpy as np
import scipy.io
import torch
from fairseq_signals.data.ecg.raw_ecg_dataset import FileECGDataset

from physioclr_ext.augmentations.heartbeat_shuffle import heartbeat_shuffle_batch
from physioclr_ext.data.ecg_ssl_dataset import _ViewsMixin
from physioclr_ext.features.store import load_split

FEATURE_SETS = ("vectors", "raw")
CACHE_PROBATION = 64  # misses before the window cache judges whether it pays
CACHE_MIN_HIT_RATIO = 4  # it keeps taking windows while it hits at least once per this many misses


def temporal_neighbours(data_dir: str) -> Dict[str, str]:
    """Manifest path -> the next window of the same record (else the previous one), from ``windows.csv``.

    Windows of records with a single window are absent; an absent ``windows.csv`` gives ``{}``.
    """
    path = os.path.join(data_dir, "windows.csv")
    if not os.path.exists(path):
        return {}
    records: Dict[str, List[Tuple[int, str]]] = defaultdict(list)
    with open(path, newline="") as f:
        for row in csv.DictReader(f):
            records[row["record"]].append((int(row["window"]), row["path"]))
    neighbours: Dict[str, str] = {}
    for windows in records.values():
        paths = [p for _, p in sorted(windows)]
        for i, p in enumerate(paths):
            if len(paths) > 1:
                neighbours[p] = paths[i + 1] if i + 1 < len(paths) else paths[i - 1]
    return neighbours


def read_window(path: str) -> Tuple[np.ndarray, Any]:
    """One ``.mat`` window: ``feats`` (C, T) as float32 and ``curr_sample_rate`` as stored (a (1, 1) array).

    The dataset's only disk read (one ``scipy.io.loadmat``); tests count its calls.
    """
    mat = scipy.io.loadmat(path)
    return np.asarray(mat["feats"], dtype=np.float32), mat["curr_sample_rate"]


def _fit(x: torch.Tensor, length: int, start: int = 0) -> torch.Tensor:
    """``x`` (C, T) cropped from ``start`` or zero-padded on the right to ``(C, length)``."""
    x = x[:, start : start + length]
    return torch.nn.functional.pad(x, (0, length - x.shape[-1])) if x.shape[-1] < length else x


class PhysioCLRDataset(_ViewsMixin, FileECGDataset):
    """Windows of ``<data>/<split>.tsv`` with features, R-peaks, shuffled view and neighbour.

    Args:
        manifest_path: ``<data>/<split>.tsv``; the feature table is ``<data>/features/<split>.npz``.
        sample_rate: expected sampling rate (None: no check).
        feature_set: ``vectors`` (z-scored, PCA-reduced) or ``raw`` features.
        shuffle_mode: heartbeat shuffling mode (``keep_ends`` or ``published``).
        use_neighbour: load the temporal neighbour of each window.
        window_cache: windows kept in memory after a read (LRU, per worker; 0: none, every access reads
            its ``.mat``). A record's windows read in order need 3; 8 windows of 12 x 2,500 float32 are 1 MB.
        seed: seeds the shuffles and crops together with the epoch and the window ids.
        **kwargs: fairseq-signals ``FileECGDataset`` options (pad, leads_to_load, max_sample_size, ...).
    """

    def __init__(
        self,
        manifest_path: str,
        sample_rate: Optional[int],
        feature_set: str = "vectors",
        shuffle_mode: str = "keep_ends",
        use_neighbour: bool = True,
        seed: int = 1,
        window_cache: int = 8,
        **kwargs: Any,
    ) -> None:
        if window_cache < 0:
            raise ValueError(f"window_cache must be >= 0, not {window_cache}")
        if feature_set not in FEATURE_SETS:
            raise ValueError(f"feature_set must be one of {FEATURE_SETS}, not {feature_set!r}")
        super().__init__(manifest_path=manifest_path, sample_rate=sample_rate, **kwargs)
        self.mode, self.view_maker, self.seed = "physioclr", None, seed
        self.shuffle_mode, self.use_neighbour = shuffle_mode, use_neighbour
        data_dir = os.path.dirname(os.path.abspath(manifest_path))
        split = os.path.splitext(os.path.basename(manifest_path))[0]
        table = load_split(data_dir, split)
        self.rows = np.array([table.row(str(f)) for f in self.fnames], dtype=np.int64)
        self.features = np.asarray(getattr(table, feature_set), dtype=np.float32)
        self.feature_valid, self.r_peaks = table.valid, table.r_peaks
        self.neighbours = temporal_neighbours(data_dir) if use_neighbour else {}
        self.window_cache = window_cache
        self._cache: OrderedDict[str, Tuple[np.ndarray, Any]] = OrderedDict()
        self._cache_stats = [0, 0]  # hits, misses

    def __getstate__(self) -> Dict[str, Any]:
        state = self.__dict__.copy()
        state["_cache"] = OrderedDict()  # a pickled copy (spawned worker) starts with its own empty cache
        state["_cache_stats"] = [0, 0]
        return state

    def _read(self, fname: str) -> Tuple[np.ndarray, Any, bool]:
        """``read_window`` of ``fname`` through the LRU cache: ``(feats, rate, cached)``; ``cached``: ``feats`` is
        the cache's own array (to be copied before any write).

        The cache stops taking new windows once it has missed ``CACHE_PROBATION`` times with fewer than one hit per
        ``CACHE_MIN_HIT_RATIO`` misses (a shuffled epoch: the window and its neighbour come far apart): keeping
        arrays alive and copying them cost more there (~10 %, allocation) than the rare hit saves.
        """
        if not self.window_cache:
            return (*read_window(os.path.join(self.root_dir, fname)), False)
        cache = self.__dict__.setdefault("_cache", OrderedDict())
        stats = self.__dict__.setdefault("_cache_stats", [0, 0])  # hits, misses
        hit = cache.get(fname)
        if hit is not None:
            stats[0] += 1
            cache.move_to_end(fname)
            return (*hit, True)
        stats[1] += 1
        feats, rate = read_window(os.path.join(self.root_dir, fname))
        if stats[1] < CACHE_PROBATION or stats[0] * CACHE_MIN_HIT_RATIO >= stats[1]:
            cache[fname] = (feats, rate)
            while len(cache) > self.window_cache:
                cache.popitem(last=False)
            return feats, rate, True
        return feats, rate, False

    def _load(self, fname: str) -> Tuple[torch.Tensor, int]:
        feats, rate, cached = self._read(fname)
        if cached:  # postprocess may write into its input (normalize): never the cached array
            feats = feats.copy(order="K")
        return self.postprocess(torch.from_numpy(feats), rate), int(np.asarray(rate).reshape(-1)[0])

    def __getitem__(self, index: int) -> Dict[str, Any]:
        fname = str(self.fnames[index])
        source, rate = self._load(fname)
        row = self.rows[index]
        neighbour = self.neighbours.get(fname)
        return {
            "id": index,
            "source": source,
            "sample_rate": rate,
            "features": torch.from_numpy(self.features[row]),
            "feature_valid": bool(self.feature_valid[row]),
            "r_peaks": torch.as_tensor(self.r_peaks[row], dtype=torch.long),
            "neighbour": self._load(neighbour)[0] if neighbour is not None else None,
        }

    def _target_size(self, sizes: List[int]) -> int:
        return min(max(sizes) if self.pad else min(sizes), self.max_sample_size)

    def collator(self, samples: List[Dict[str, Any]]) -> Dict[str, Any]:
        samples = [s for s in samples if s["source"] is not None]
        if not samples:
            return {}
        ids = torch.tensor([s["id"] for s in samples], dtype=torch.long)
        generators = [self._generator(s["id"]) for s in samples]
        length = self._target_size([s["source"].shape[-1] for s in samples])
        sources, neighbours, peaks = [], [], []
        padding_mask = torch.zeros(len(samples), samples[0]["source"].shape[0], length, dtype=torch.bool)
        for i, (s, generator) in enumerate(zip(samples, generators)):
            size = s["source"].shape[-1]
            start = int(torch.randint(0, size - length + 1, (1,), generator=generator)) if size > length else 0
            sources.append(_fit(s["source"], length, start))
            padding_mask[i, :, size - start :] = True
            r = s["r_peaks"] - start
            peaks.append(r[(r >= 0) & (r < min(length, size - start))])
            n = s["neighbour"]
            neighbours.append(_fit(n, length) if n is not None else torch.zeros_like(sources[-1]))
        source = torch.stack(sources)
        shuffled = torch.cat(
            [
                heartbeat_shuffle_batch(source[i : i + 1], [peaks[i]], generator=generator, mode=self.shuffle_mode)
                for i, generator in enumerate(generators)
            ]
        )
        net_input = {"source": source, "shuffled": shuffled, "neighbour": torch.stack(neighbours)}
        if self.pad:
            net_input["padding_mask"] = padding_mask
        return {
            "id": ids,
            "net_input": net_input,
            "features": torch.stack([s["features"] for s in samples]),
            "feature_valid": torch.tensor([s["feature_valid"] for s in samples], dtype=torch.bool),
            "neighbour_valid": torch.tensor([s["neighbour"] is not None for s in samples], dtype=torch.bool),
            "r_peaks": peaks,
            "sample_rate": samples[0]["sample_rate"],
        }
