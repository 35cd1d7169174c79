"""``pipeline.record_features``: the per-record entry point gives each window's ``extract_features``."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import wfdb

from physioclr_ext.features import FEATURE_DIM, extract_features
from physioclr_ext.features.pipeline import record_features

SAMPLE = Path(__file__).resolve().parents[2] / "data" / "sample"


def test_record_features_are_the_windows_features() -> None:
    record = wfdb.rdrecord(str(SAMPLE / "ludb" / "2"))
    signal, fs, names = record.p_signal.T, float(record.fs), list(record.sig_name)
    length = 2500
    starts = [0, 1250, 2500, 4000]  # overlapping, adjacent, and one running past the 5,000 samples
    out = record_features(signal, fs, starts, length, lead="ii", lead_names=names)
    assert out["raw"].shape == (4, FEATURE_DIM) and out["raw"].dtype == np.float32
    for i, start in enumerate(starts[:3]):
        res = extract_features(signal[:, start : start + length], fs, lead="ii", lead_names=names)
        assert out["raw"][i].tobytes() == res.vector.tobytes()
        assert (out["valid"][i], out["reason"][i]) == (res.valid, res.reason)
        assert np.array_equal(out["r_peaks"][i], res.r_peaks)
    assert out["valid"][:3].all()
    assert (out["valid"][3], out["reason"][3]) == (False, "window_outside_record")
    assert not out["raw"][3].any() and out["r_peaks"][3].size == 0
