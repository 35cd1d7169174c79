"""Datasets of the ``ecg_ssl_pretraining`` task: windows with their patient ids, and views.

* :class:`ECGSSLDataset` reads a window manifest (``train.tsv``); mode ``views`` makes two
  augmented views per window in the collator, mode ``cmlc`` one single-lead view per lead.
* :class:`ECGSegmentPairDataset` reads the CMSC pair manifest (``cmsc/train.tsv``) written by
  ``python -m physioclr_ext.preprocess``: each item is two adjacent, non-overlapping windows of
  one record joined in time, (C, 2T); modes ``cmsc`` (the two halves) and ``cmsmlc`` (each lead
  of each half).

Batches carry ``net_input["views"]`` of shape (V, B, C', T) and ``patient_id`` (B,) from the
``.mat`` files (the patient, not the record, so that CLOCS can treat every instance of a patient
as a positive). Every random draw of a window (its views, a crop to ``max_sample_size``) comes from
a generator seeded from (seed, epoch, window index) alone, without touching the global RNG: a
window gets the same views whatever batch, data-parallel worker or resumed run draws it, so a run
resumed from a checkpoint and a two-worker run repeat the draws of one uninterrupted process, and
they differ in every epoch.
"""

from __future__ import annotations

import hashlib
import os
from typing import Any, Dict, List, Optional, Sequence

import numpy as np
import scipy.io
import torch
from fairseq_signals.data.ecg.cmsc_ecg_dataset import CMSCECGDataset
from fairseq_signals.data.ecg.raw_ecg_dataset import FileECGDataset, RawECGDataset

from physioclr_ext.augmentations import Compose, TwoViews
from physioclr_ext.augmentations.clocs_views import cmlc_views, cmsc_views, cmsmlc_views

MODES = ("views", "cmsc", "cmlc", "cmsmlc")


def _patient_id(mat: Dict[str, Any]) -> int:
    key = "patient_id" if "patient_id" in mat else "idx"
    return int(np.asarray(mat[key]).reshape(-1)[0])


class _ViewsMixin:
    """Turns a collated batch into views (shared by both datasets)."""

    mode: str
    view_maker: Optional[TwoViews]
    seed: int
    epoch: int = 1

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def _generator(self, index: int, stream: str = "views") -> torch.Generator:
        """The generator of one window's ``stream`` of draws in this epoch, from (seed, epoch, index) alone."""
        return torch.Generator().manual_seed(item_seed(self.seed, self.epoch, int(index), stream))

    def _crop_items(self, samples: List[Dict[str, Any]], pad: bool, max_size: int) -> None:
        """Crop, in place, every ``source`` longer than the batch length (fairseq-signals' rule: the
        shortest window, or with ``pad`` the longest, at most ``max_size``), each at a start drawn from
        its own generator (fairseq-signals draws it from numpy's global RNG, which a resumed run does
        not restore and a data-loading thread shares)."""
        sizes = [s["source"].shape[-1] for s in samples]
        if not sizes:
            return
        length = min(max(sizes) if pad else min(sizes), max_size)
        for s, size in zip(samples, sizes):
            if size > length:
                start = int(torch.randint(0, size - length + 1, (1,), generator=self._generator(s["id"], "crop")))
                s["source"] = s["source"][..., start : start + length]

    def _add_views(self, out: Dict[str, Any], samples: List[Dict[str, Any]]) -> Dict[str, Any]:
        if not out:
            return out
        source = out["net_input"]["source"]
        out["patient_id"] = torch.tensor([s["patient_id"] for s in samples], dtype=torch.long)
        if self.mode == "views":
            if self.view_maker is None:
                views: Sequence[torch.Tensor] = (source, source.clone())
            else:
                pairs = [
                    self.view_maker(source[i : i + 1], self._generator(int(index))) for i, index in enumerate(out["id"])
                ]
                views = (torch.cat([a for a, _ in pairs]), torch.cat([b for _, b in pairs]))
            out["net_input"]["views"] = torch.stack(list(views))
        elif self.mode == "cmlc":
            out["net_input"]["views"] = cmlc_views(source)
        elif self.mode == "cmsc":
            out["net_input"]["views"] = cmsc_views(source)
        else:
            out["net_input"]["views"] = cmsmlc_views(source)
        return out


def item_seed(seed: int, epoch: int, index: int, stream: str = "views") -> int:
    """A 63-bit seed for the draws of window ``index`` in ``epoch`` (``stream`` keeps, e.g., a crop and
    the views apart): a hash, so nearby seeds, epochs and indices give unrelated streams."""
    digest = hashlib.blake2b(f"{seed}/{epoch}/{index}/{stream}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") % (2**63)


def _view_maker(augmentations: Optional[Sequence[Dict[str, Any]]]) -> Optional[TwoViews]:
    return TwoViews(Compose.from_config(list(augmentations))) if augmentations else None


class ECGSSLDataset(_ViewsMixin, FileECGDataset):
    """Windows of a ``path<TAB>size`` manifest; modes ``views`` and ``cmlc``."""

    def __init__(
        self,
        manifest_path: str,
        sample_rate: Optional[int],
        mode: str = "views",
        augmentations: Optional[Sequence[Dict[str, Any]]] = None,
        seed: int = 1,
        **kwargs: Any,
    ) -> None:
        if mode not in ("views", "cmlc"):
            raise ValueError(f"ECGSSLDataset serves modes views and cmlc, not {mode!r}")
        super().__init__(manifest_path=manifest_path, sample_rate=sample_rate, **kwargs)
        self.mode, self.seed = mode, seed
        self.view_maker = _view_maker(augmentations) if mode == "views" else None

    def _read(self, fname: str) -> Dict[str, Any]:
        """The ``.mat`` contents of window ``fname`` (a manifest path); the packed datasets override it."""
        return scipy.io.loadmat(os.path.join(self.root_dir, fname))

    def __getitem__(self, index: int) -> Dict[str, Any]:
        mat = self._read(str(self.fnames[index]))
        feats = torch.from_numpy(np.asarray(mat["feats"], dtype=np.float32))
        return {"id": index, "source": self.postprocess(feats, mat["curr_sample_rate"]), "patient_id": _patient_id(mat)}

    def collator(self, samples: List[Dict[str, Any]]) -> Dict[str, Any]:
        samples = [s for s in samples if s["source"] is not None]
        self._crop_items(samples, self.pad, self.max_sample_size)
        return self._add_views(super().collator(samples), samples)


class ECGSegmentPairDataset(_ViewsMixin, CMSCECGDataset):
    """Adjacent window pairs of a CMSC manifest, joined in time; modes ``cmsc`` and ``cmsmlc``."""

    def __init__(
        self, manifest_path: str, sample_rate: Optional[int], mode: str = "cmsc", seed: int = 1, **kwargs: Any
    ) -> None:
        if mode not in ("cmsc", "cmsmlc"):
            raise ValueError(f"ECGSegmentPairDataset serves modes cmsc and cmsmlc, not {mode!r}")
        super().__init__(manifest_path=manifest_path, sample_rate=sample_rate, **kwargs)
        self.mode, self.seed, self.view_maker = mode, seed, None
        self.sizes: Any = self.sizes * 2  # two windows per item

    def _read(self, fname: str) -> Dict[str, Any]:
        """The ``.mat`` contents of window ``fname`` (``mat/<record>_<i>.mat``); the packed datasets override it."""
        return scipy.io.loadmat(os.path.join(self.root_dir, fname))

    def __getitem__(self, index: int) -> Dict[str, Any]:
        fname = self.fnames[index]
        fname = fname if isinstance(fname, str) else fname.as_py()
        feats, patient = [], -1
        for segment in self.segments[index][:2]:
            mat = self._read(f"{fname}_{segment}.{self.ext}")
            feats.append(
                self.postprocess(torch.from_numpy(np.asarray(mat["feats"], dtype=np.float32)), mat["curr_sample_rate"])
            )
            patient = _patient_id(mat)
        length = min(f.shape[-1] for f in feats)
        return {"id": index, "source": torch.cat([f[..., :length] for f in feats], dim=-1), "patient_id": patient}

    def collator(self, samples: List[Dict[str, Any]]) -> Dict[str, Any]:
        samples = [s for s in samples if s["source"] is not None]
        self._crop_items(samples, self.pad, self.max_sample_size)
        return self._add_views(RawECGDataset.collator(self, samples), samples)
