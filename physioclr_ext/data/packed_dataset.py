"""Datasets that read the packed windows of ``python -m physioclr_ext.preprocess ... --packed``.

One memory-mapped (N, C, T) float32 array per split (:mod:`physioclr_ext.preprocess.packed`) instead of
one ``scipy.io.loadmat`` per window. Each class subclasses its ``.mat`` dataset and overrides only the
per-window read (``_read``, or ``_load`` for PhysioCLR): manifests, crops, views, collators and every other
option are the ``.mat`` dataset's, so items and batches are equal bit for bit (tests/integration/test_packed_dataset.py).

Selected by ``task.packed: true`` in the tasks ``ecg_ssl_pretraining`` and ``ecg_feature``.
"""

from __future__ import annotations

import os
from typing import Any, Dict, Tuple

import numpy as np
import torch

from physioclr_ext.data.ecg_ssl_dataset import ECGSegmentPairDataset, ECGSSLDataset
from physioclr_ext.data.physioclr_dataset import PhysioCLRDataset
from physioclr_ext.preprocess.packed import PackedSplit, index_path


def open_packed(data_dir: str, split: str, fnames: Any) -> PackedSplit:
    """The packed split of ``data_dir`` that holds every window path in ``fnames``.

    Raises:
        FileNotFoundError: no packed index/array (names the ``--packed`` option).
        ValueError: a manifest window is not in the packed index (stale: preprocess again with ``--packed``).
    """
    try:
        packed = PackedSplit.open(data_dir, split)
    except FileNotFoundError as exc:
        raise FileNotFoundError(
            f"task.packed is set but the packed windows of split {split!r} are missing ({exc.args[0]}); "
            f"preprocess with --packed (python -m physioclr_ext.preprocess ... --packed --output {data_dir}), "
            "or set task.packed=false to read the .mat files"
        ) from None
    missing = [str(f) for f in fnames if str(f) not in packed.row][:3]
    if missing:
        raise ValueError(
            f"{index_path(data_dir, split)} lacks windows of the manifest (e.g. {missing}): the packed arrays are "
            "stale; preprocess again with --packed"
        )
    return packed


def _split_and_dir(manifest_path: str, levels: int = 1) -> Tuple[str, str]:
    """(split, data dir) of ``<data>/<split>.tsv`` (``levels=2``: ``<data>/cmsc/<split>.tsv``)."""
    data_dir = os.path.abspath(manifest_path)
    for _ in range(levels):
        data_dir = os.path.dirname(data_dir)
    return os.path.splitext(os.path.basename(manifest_path))[0], data_dir


class _LeadSelectMixin:
    """fairseq-signals' ``load_specific_leads`` with the same rows, faster: no copy when every lead is kept in
    order, else ``index_select`` with a cached index. Its indexing with a Python list costs ~50 us on one
    thread and milliseconds with several threads on a busy machine (10 ms on 2 threads here), more than
    reading the packed window itself."""

    leads_bucket: Any
    pad_leads: bool

    def load_specific_leads(self, feats: torch.Tensor, leads_to_load: Any, pad: bool = True) -> torch.Tensor:
        if self.leads_bucket:  # draws from numpy's global RNG: keep fairseq-signals' code
            return super().load_specific_leads(feats, leads_to_load, pad=pad)  # type: ignore[misc]
        leads = tuple(int(lead) for lead in leads_to_load)
        if leads == tuple(range(feats.size(0))) and not (self.pad_leads and pad):
            return feats  # every lead in order: the rows as they are (``feats`` is this item's own copy)
        index = self._lead_index(leads)
        feats = feats.index_select(0, index)
        if self.pad_leads and pad:
            feats = torch.zeros((12, feats.size(-1))).index_copy_(0, index, feats)
        return feats

    def _lead_index(self, leads: Tuple[int, ...]) -> torch.Tensor:
        cache: Dict[Tuple[int, ...], torch.Tensor] = self.__dict__.setdefault("_lead_indices", {})
        if leads not in cache:  # building it from a list costs more than the selection
            cache[leads] = torch.tensor(leads, dtype=torch.long)
        return cache[leads]


class _PackedReadMixin(_LeadSelectMixin):
    """``_read`` from the packed array: the ``.mat`` keys the datasets use, with the ``.mat``'s types."""

    packed: PackedSplit

    def _read(self, fname: str) -> Dict[str, Any]:
        packed = self.packed
        row = packed.row[fname]
        one = slice(row, row + 1)  # (1, 1) views, the shape loadmat gives a scalar
        mat = {
            "feats": packed.window(row),
            "curr_sample_rate": packed.sample_rate[one, None],
            "idx": packed.idx[one, None],
        }
        if packed.patient_id[row] >= 0:  # -1: the .mat had none (windows of older runs)
            mat["patient_id"] = packed.patient_id[one, None]
        return mat


class PackedECGSSLDataset(_PackedReadMixin, ECGSSLDataset):
    """:class:`ECGSSLDataset` reading ``<data>/packed/<split>``; same arguments."""

    def __init__(self, manifest_path: str, *args: Any, **kwargs: Any) -> None:
        super().__init__(manifest_path, *args, **kwargs)
        split, data_dir = _split_and_dir(manifest_path)
        self.packed = open_packed(data_dir, split, self.fnames)


class PackedECGSegmentPairDataset(_PackedReadMixin, ECGSegmentPairDataset):
    """:class:`ECGSegmentPairDataset` (``<data>/cmsc/<split>.tsv``) reading ``<data>/packed/<split>``."""

    def __init__(self, manifest_path: str, *args: Any, **kwargs: Any) -> None:
        super().__init__(manifest_path, *args, **kwargs)
        split, data_dir = _split_and_dir(manifest_path, levels=2)
        names = [f if isinstance(f, str) else f.as_py() for f in self.fnames]
        paths = [f"{n}_{s}.{self.ext}" for n, segments in zip(names, self.segments) for s in segments[:2]]
        self.packed = open_packed(data_dir, split, paths)


class PackedPhysioCLRDataset(_LeadSelectMixin, PhysioCLRDataset):
    """:class:`PhysioCLRDataset` reading ``<data>/packed/<split>`` (windows and temporal neighbours)."""

    def __init__(self, manifest_path: str, *args: Any, **kwargs: Any) -> None:
        super().__init__(manifest_path, *args, **kwargs)
        split, data_dir = _split_and_dir(manifest_path)
        self.packed = open_packed(data_dir, split, self.fnames)

    def _load(self, fname: str) -> Tuple[torch.Tensor, int]:
        row = self.packed.row.get(fname)
        if row is None:  # a neighbour dropped from this split's manifest (e.g. by min_sample_size)
            return super()._load(fname)
        rate = int(self.packed.sample_rate[row])
        feats = torch.from_numpy(self.packed.window(row))
        return self.postprocess(feats, np.full((1, 1), rate)), rate
