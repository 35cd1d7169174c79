import numpy as np
import pytest

from physioclr_ext.preprocess.windows import (
    QualityThresholds,
    pair_step,
    quality_flags,
    raw_bounds,
    window_geometry,
    window_starts,
)


def test_window_geometry_and_starts_without_overlap():
    length, hop = window_geometry(500, 5.0, 0.0)
    assert (length, hop) == (2500, 2500)
    np.testing.assert_array_equal(window_starts(7600, length, hop), [0, 2500, 5000])


def test_window_starts_with_overlap():
    length, hop = window_geometry(100, 2.0, 0.5)
    assert (length, hop) == (200, 150)
    np.testing.assert_array_equal(window_starts(650, length, hop), [0, 150, 300, 450])
    assert pair_step(length, hop) == 2


def test_short_signal_has_no_window_and_bad_overlap_raises():
    assert window_starts(99, 100, 100).size == 0
    with pytest.raises(ValueError):
        window_geometry(100, 1.0, 1.0)


def test_raw_bounds_adjacent_windows_share_boundary():
    a = raw_bounds(0, 500, 500.0, 360.0, 10_000)
    b = raw_bounds(500, 500, 500.0, 360.0, 10_000)
    assert a == (0, 360) and b == (360, 720)


def _ecg_like(n=1000):
    t = np.arange(n)
    return np.vstack([np.sin(t / 7.0), np.cos(t / 11.0)])


def test_quality_flags_clean_nan_flat_saturated():
    th = QualityThresholds(flat=0.02, saturation=0.05)
    present = np.array([True, True])
    clean = _ecg_like()
    assert quality_flags(clean, present, th) == []
    with_nan = clean.copy()
    with_nan[0, 10] = np.nan
    assert quality_flags(with_nan, present, th) == ["nan"]
    flat = clean.copy()
    flat[1] = 0.3 + 1e-4 * np.sin(np.arange(1000))
    assert quality_flags(flat, present, th) == ["flat"]
    clipped = clean.copy()
    clipped[0] = np.clip(clipped[0], -0.5, 0.5)
    assert quality_flags(clipped, present, th) == ["saturated"]


def test_quality_flags_ignore_missing_leads():
    th = QualityThresholds()
    x = _ecg_like()
    x[1] = 0.0  # zero-filled missing lead: flat, but not a quality problem
    assert quality_flags(x, np.array([True, False]), th) == []
