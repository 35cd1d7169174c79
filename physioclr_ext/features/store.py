"""On-disk layout of the physiological feature tables (the contract between the
feature extractor and :class:`physioclr_ext.data.PhysioCLRDataset`).

``<data>/features/`` next to the manifests holds:

* ``names.json``: the name of every raw feature dimension (D_raw).
* ``<split>.npz`` per manifest split, one row per window, rows in manifest order:
  ``fnames`` (N,) the manifest paths (``mat/100_0.mat``), ``raw`` (N, D_raw) float32 raw
  features (invalid rows are zeros), ``vectors`` (N, D) float32 features after z-scoring
  (and PCA) fitted on the valid training rows, ``valid`` (N,) bool, ``reason`` (N,) str
  (empty when valid), ``r_peaks`` (M,) int64 R-peak sample indices of all windows
  concatenated, ``r_offsets`` (N + 1,) int64 so that window i owns
  ``r_peaks[r_offsets[i]:r_offsets[i + 1]]`` (indices at the window's own sampling rate).
* ``transform.npz``: ``mean``, ``std`` (D_raw,), ``components`` (K, D_raw) and
  ``pca_mean`` (D_raw,) (K = 0 without PCA).
* ``summary.json``: counts of valid windows and of each failure reason per split.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Dict, List, Sequence

import numpy as np

from .npz import save_npz
from .transform import FeatureTransform

FEATURES_DIR = "features"


@dataclass
class FeatureSplit:
    """One split's feature table; see the module docstring for the fields."""

    fnames: np.ndarray
    raw: np.ndarray
    vectors: np.ndarray
    valid: np.ndarray
    reason: np.ndarray
    r_peaks: List[np.ndarray]
    _index: Dict[str, int] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        n = len(self.fnames)
        for name in ("raw", "vectors", "valid", "reason"):
            if len(getattr(self, name)) != n:
                raise ValueError(f"feature table: {name} has {len(getattr(self, name))} rows, fnames {n}")
        if len(self.r_peaks) != n:
            raise ValueError(f"feature table: r_peaks has {len(self.r_peaks)} rows, fnames {n}")
        self._index = {str(f): i for i, f in enumerate(self.fnames)}

    def __len__(self) -> int:
        return len(self.fnames)

    def row(self, fname: str) -> int:
        """Row of a manifest path; KeyError with a hint when the features are stale."""
        try:
            return self._index[str(fname)]
        except KeyError:
            raise KeyError(f"{fname} has no feature row; re-run feature extraction for this data") from None


def split_path(data_dir: str, split: str) -> str:
    return os.path.join(data_dir, FEATURES_DIR, f"{split}.npz")


def save_split(
    path: str,
    fnames: Sequence[str],
    raw: np.ndarray,
    vectors: np.ndarray,
    valid: np.ndarray,
    reason: Sequence[str],
    r_peaks: Sequence[np.ndarray],
) -> None:
    """Write one split's table (atomically: a crash never leaves a half-written file)."""
    lengths = np.array([len(r) for r in r_peaks], dtype=np.int64)
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    peaks = np.concatenate([np.asarray(r, dtype=np.int64) for r in r_peaks]) if len(r_peaks) else np.zeros(0, np.int64)
    save_npz(
        path,
        fnames=np.asarray(fnames, dtype=str),
        raw=np.asarray(raw, dtype=np.float32),
        vectors=np.asarray(vectors, dtype=np.float32),
        valid=np.asarray(valid, dtype=bool),
        reason=np.asarray(reason, dtype=str),
        r_peaks=peaks.astype(np.int64),
        r_offsets=offsets,
    )


def transform_path(data_dir: str) -> str:
    """``<data_dir>/features/transform.npz``."""
    return os.path.join(data_dir, FEATURES_DIR, "transform.npz")


def stored_feature_dim(data_dir: str, feature_set: str = "vectors") -> tuple[int, str]:
    """Width of a directory's feature vectors, read from its saved transform.

    Args:
        feature_set: ``"vectors"`` (after z-score and PCA: K components, or D_raw without PCA) or
            ``"raw"`` (D_raw).

    Returns:
        ``(width, path of transform.npz)``.

    Raises:
        FileNotFoundError: the features of ``data_dir`` were not extracted.

    Example:
        >>> stored_feature_dim("runs/demo/data/mitdb")   # extracted with PCA to 50
        (50, 'runs/demo/data/mitdb/features/transform.npz')
    """
    if feature_set not in ("vectors", "raw"):
        raise ValueError(f"feature_set must be vectors or raw, not {feature_set!r}")
    path = transform_path(data_dir)
    if not os.path.exists(path):
        raise FileNotFoundError(
            f"{path} not found: extract features first (python -m physioclr_ext.preprocess "
            f"... --features, or preprocess_ecg.sh)"
        )
    transform = FeatureTransform.load(path)
    return transform.out_dim if feature_set == "vectors" else int(transform.mean.shape[0]), path


def load_split(data_dir: str, split: str) -> FeatureSplit:
    """Read ``<data_dir>/features/<split>.npz``."""
    path = split_path(data_dir, split)
    if not os.path.exists(path):
        raise FileNotFoundError(
            f"{path} not found: extract features first (python -m physioclr_ext.preprocess "
            f"... --features, or preprocess_ecg.sh)"
        )
    with np.load(path, allow_pickle=False) as z:
        offsets = z["r_offsets"]
        peaks = z["r_peaks"]
        return FeatureSplit(
            fnames=z["fnames"],
            raw=z["raw"],
            vectors=z["vectors"],
            valid=z["valid"],
            reason=z["reason"],
            r_peaks=[peaks[offsets[i] : offsets[i + 1]] for i in range(len(offsets) - 1)],
        )
