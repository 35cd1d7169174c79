"""The per-record feature cache: ``<data>/features/cache/<record>.npz``.

One file per record holds the features of its windows (rows in window order) under a key of everything they
depend on. Written by whichever pass computes the record (the preprocessing worker's hook, or the feature
stage re-reading the record), read by the feature stage, which recomputes a record only when its key changed.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .names import FEATURE_DIM
from .npz import save_npz
from .store import FEATURES_DIR

EXTRACTOR_VERSION = 1
"""Bump when the features of an unchanged window would change (invalidates every cache entry)."""


def cache_path(data_dir: str | Path, record: str) -> str:
    """``<data_dir>/features/cache/<record>.npz``."""
    return str(Path(data_dir) / FEATURES_DIR / "cache" / f"{record}.npz")


def cache_key(
    record_key: str, windows: Sequence[tuple[str, int]], length: int, lead: str, delineation: str = "dwt"
) -> str:
    """Key of a record's cached features.

    Args:
        record_key: the record's preprocessing key (``records/<record>.json``'s ``"key"``).
        windows: ``(path, start)`` of its windows, as in ``windows.csv``.
        length: window length in samples.
        lead, delineation: the feature options (``FeatureOptions``).

    Example:
        >>> cache_key("0123456789abcdef", [("mat/1_0.mat", 0)], 2500, "mean")  # 16 hex digits
    """
    identity: list[Any] = [EXTRACTOR_VERSION, lead, record_key, [[p, int(s)] for p, s in windows], int(length)]
    if delineation != "dwt":  # keeps the keys of caches written before the option existed
        identity.append(delineation)
    return hashlib.sha256(json.dumps(identity).encode()).hexdigest()[:16]


def write_cache(path: str, key: str, result: dict[str, Any]) -> None:
    """Write one record's features (``record_features``' result) under ``key`` (atomic, reproducible)."""
    lengths = [len(p) for p in result["r_peaks"]]
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    flat = np.concatenate(result["r_peaks"]).astype(np.int64) if lengths else np.zeros(0, np.int64)
    save_npz(
        path,
        key=key,
        raw=result["raw"],
        valid=result["valid"],
        reason=np.asarray(result["reason"], str),
        r_peaks=flat,
        r_offsets=offsets,
    )


def read_cache(path: str, key: str, n_windows: int) -> dict[str, Any] | None:
    """The cached result when its key is ``key`` and it has ``n_windows`` rows, else ``None``."""
    try:
        with np.load(path, allow_pickle=False) as z:
            if str(z["key"]) != key or z["raw"].shape != (n_windows, FEATURE_DIM):
                return None
            off, flat = z["r_offsets"], z["r_peaks"]
            return {
                "raw": z["raw"],
                "valid": z["valid"],
                "reason": [str(r) for r in z["reason"]],
                "r_peaks": [flat[off[i] : off[i + 1]] for i in range(len(off) - 1)],
            }
    except (OSError, KeyError, ValueError):
        return None
