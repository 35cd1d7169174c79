"""benchmarks/features_values.py: the pairing of this package's features with PhysioCLR's script's keys."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))

import features_values  # noqa: E402

from physioclr_ext.features.names import FEATURE_DIM, FEATURE_INDEX  # noqa: E402


def _theirs(rr_mean: float, pnn50_percent: float) -> dict:
    stats = {"mean": 0.0, "std": 0.0, "median": 0.0, "iqr": 0.0}
    out: dict = {key: dict(stats) for _, key, _ in features_values.AGGREGATES}
    out["RR_stats"]["mean"] = rr_mean
    out.update({key: 0.0 for _, key, _, _ in features_values.SCALARS})
    out["pnn50"] = pnn50_percent
    return out


def test_every_pair_names_a_feature_of_ours():
    names = [name for name, _, _, _ in features_values.pairs()]
    assert len(names) == len(set(names)) == 11 * 4 + len(features_values.SCALARS)
    assert all(name in FEATURE_INDEX for name in names)


def test_agreement_uses_the_tolerance_and_the_percent_scale():
    ours = [np.zeros(FEATURE_DIM, np.float32) for _ in range(2)]
    ours[0][FEATURE_INDEX["rr_ms_mean"]] = 800.0  # 800 vs 805: within 1% -> agree
    ours[1][FEATURE_INDEX["rr_ms_mean"]] = 800.0  # 800 vs 900: not
    ours[0][FEATURE_INDEX["pnn50"]] = 0.25  # the script says 25 (%): the same share
    ours[1][FEATURE_INDEX["pnn50"]] = 0.25  # 40 %: not
    rows = {r["feature"]: r for r in features_values.value_table(ours, [_theirs(805.0, 25.0), _theirs(900.0, 40.0)])}
    assert rows["rr_ms_mean"]["agree"] == 0.5
    assert rows["rr_ms_mean"]["median_abs_diff"] == pytest.approx(52.5)
    assert rows["pnn50"]["agree"] == 0.5
    assert rows["pnn50"]["median_theirs"] == pytest.approx(0.325)
    assert rows["qrs_ms_mean"]["agree"] == 1.0  # zeros on both sides


def test_unequal_window_counts_are_refused():
    with pytest.raises(ValueError, match="same non-zero number"):
        features_values.value_table([np.zeros(FEATURE_DIM)], [])
