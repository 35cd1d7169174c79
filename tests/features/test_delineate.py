"""``delineate.dwt_waves`` gives ``nk.ecg_delineate(method="dwt")``'s positions exactly on real windows, and
``extract_features`` gives the same results, bit for bit, as with ``nk.ecg_delineate`` (the code before)."""

from __future__ import annotations

import warnings
from pathlib import Path

import neurokit2 as nk
import numpy as np
import pytest
import wfdb

from physioclr_ext.features import delineate, extract
from physioclr_ext.features.delineate import WAVES, dwt_waves
from physioclr_ext.features.extract import _checked, _Invalid, _r_peaks, extract_features, select_signal

SAMPLE = Path(__file__).resolve().parents[2] / "data" / "sample"
SHARED = Path(__file__).resolve().parents[3] / "shared" / "data"
FAST = delineate._nk_steps() is not None


def _windows(seconds: float = 5.0) -> list[tuple[str, np.ndarray, float]]:
    """Consecutive windows of the bundled LUDB (12 leads, 500 Hz) and MIT-BIH (2 leads, 360 Hz) samples, and of a
    few more MIT-BIH records (ectopy, noise) when the shared data is here."""
    heads = sorted((SAMPLE / "ludb").glob("*.hea")) + sorted((SAMPLE / "mitdb").glob("*.hea"))
    heads += [
        SHARED / "mitdb" / f"{r}.hea" for r in ("106", "119", "203", "208") if (SHARED / "mitdb" / f"{r}.hea").exists()
    ]
    out = []
    for head in heads:
        record = wfdb.rdrecord(str(head.with_suffix("")))
        signal, fs = record.p_signal.T, float(record.fs)
        n = int(seconds * fs)
        for start in range(0, min(signal.shape[1] - n, int(60 * fs)) + 1, n):
            out.append((f"{head.stem}@{start}", signal[:, start : start + n], fs))
    return out


WINDOWS = _windows()


def _cleaned(window: np.ndarray, fs: float) -> tuple[np.ndarray, np.ndarray] | None:
    try:
        x = _checked(select_signal(window)[0], fs)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return _r_peaks(x, fs)
    except _Invalid:
        return None


def _same(a, b) -> bool:
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return a.shape == b.shape and np.array_equal(a, b, equal_nan=True)


def _nk_waves(clean, r, fs):
    return nk.ecg_delineate(clean, r, sampling_rate=fs, method="dwt")[1]


def _outcome(function, *args):
    """``("ok", waves)`` or ``("error", exception type)``."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            return "ok", function(*args)
        except Exception as exc:  # noqa: BLE001 - the same failures are part of the contract
            return "error", type(exc)


@pytest.mark.skipif(not FAST, reason=f"neurokit2 {nk.__version__} is not one of {delineate.TESTED_NEUROKIT2}")
def test_waves_equal_ecg_delineate_on_real_windows() -> None:
    compared = 0
    for name, window, fs in WINDOWS:
        cleaned = _cleaned(window, fs)
        if cleaned is None:
            continue
        clean, r = cleaned
        (kind, ref), (kind_new, new) = _outcome(_nk_waves, clean, r, fs), _outcome(dwt_waves, clean, r, fs)
        assert kind == kind_new, name
        if kind == "error":
            assert ref is new, name
            continue
        compared += 1
        for wave in WAVES:
            assert _same(ref[wave], new[wave]), f"{name} {wave}: {ref[wave]} != {new[wave]}"
    assert compared >= 30


def test_windows_shorter_than_4_s_fail_as_in_neurokit2() -> None:
    name, window, fs = WINDOWS[0]
    clean, r = _cleaned(window[:, : int(3.5 * fs)], fs)
    assert _outcome(_nk_waves, clean, r, fs) == _outcome(dwt_waves, clean, r, fs) == ("error", ValueError)


@pytest.mark.parametrize("seconds", [5.0, 3.0])
def test_features_equal_those_with_ecg_delineate(monkeypatch, seconds) -> None:
    windows = _windows(seconds)[::3]
    fast = [extract_features(w, fs) for _, w, fs in windows]
    monkeypatch.setattr(extract, "dwt_waves", _nk_waves)  # the extractor as it was: neurokit2's own delineation
    slow = [extract_features(w, fs) for _, w, fs in windows]
    assert sum(s.valid for s in slow) >= (10 if seconds == 5.0 else 0)
    assert any(s.reason == "delineation_failed" for s in slow) or seconds == 5.0  # < 4 s: dwt refuses
    for (name, _, _), a, b in zip(windows, fast, slow):
        assert (a.valid, a.reason) == (b.valid, b.reason), name
        assert a.vector.tobytes() == b.vector.tobytes(), name
        assert np.array_equal(a.r_peaks, b.r_peaks), name
        assert a.fiducials.keys() == b.fiducials.keys() and all(
            _same(a.fiducials[k], b.fiducials[k]) for k in a.fiducials
        )


def test_other_neurokit2_versions_run_ecg_delineate(monkeypatch) -> None:
    delineate._nk_steps.cache_clear()
    monkeypatch.setattr(delineate, "TESTED_NEUROKIT2", ())
    try:
        assert delineate._nk_steps() is None
        name, window, fs = WINDOWS[0]
        clean, r = _cleaned(window, fs)
        new, ref = dwt_waves(clean, r, fs), _nk_waves(clean, r, fs)
        assert all(_same(ref[w], new[w]) for w in WAVES)
    finally:
        delineate._nk_steps.cache_clear()


@pytest.mark.skipif(not FAST, reason=f"neurokit2 {nk.__version__} is not one of {delineate.TESTED_NEUROKIT2}")
def test_q_peaks_are_local_minima_before_r() -> None:
    steps = delineate._nk_steps()
    name, window, fs = WINDOWS[0]
    clean, r = _cleaned(window, fs)
    q = delineate.q_peaks(clean, r, fs, steps["signal_rate"])
    found = [(int(qk), int(rk)) for qk, rk in zip(q, r) if not np.isnan(qk)]
    assert len(found) >= len(r) - 1
    for qk, rk in found:  # a local minimum of the cleaned signal within 0.35 RR before its R-peak ...
        assert rk - 0.35 * np.median(np.diff(r)) <= qk < rk
        # ... give or take one sample: neurokit2 places the R-peak in its beat segment at the first time > 0 of a
        # linspace over the segment, which may be one sample off the R-peak; q_peaks keeps that offset
        assert any(clean[j] <= clean[j - 1] and clean[j] <= clean[j + 1] for j in (qk - 1, qk, qk + 1))
