"""Issue 14's second pass on MIT-BIH: each faster path equals the slower one it replaced, bit for bit.

``quality_flags_batch`` against ``quality_flags`` per window (real MIT-BIH raw signal and synthetic windows with
NaN, inf, flat and clipped leads); ``WindowTemplate`` / ``encode_split`` against ``encode`` and
``scipy.io.savemat``; ``bandpass`` without a row mask, ``fill_nan(copy=False)`` and
``normalize_batch(copy=False)`` against their copying forms. The whole window writer against windows cut,
normalised and saved one by one: ``test_fast_writer.py``.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
import scipy.io

from physioclr_ext.preprocess import PreprocessConfig, dsp, matfile
from physioclr_ext.preprocess.readers import RecordRef
from physioclr_ext.preprocess.windows import (
    QualityThresholds,
    quality_flags,
    quality_flags_batch,
    raw_bounds,
    window_starts,
)
from physioclr_ext.preprocess.worker import load_and_prepare

MITDB = Path(__file__).resolve().parents[2] / "data" / "sample" / "mitdb"


def _per_window(raw: np.ndarray, present: np.ndarray, bounds, thresholds: QualityThresholds) -> list[list[str]]:
    return [quality_flags(raw[:, lo:hi], present, thresholds) for lo, hi in bounds]


def test_quality_flags_batch_on_a_real_record() -> None:
    config = PreprocessConfig(input=str(MITDB), output="unused")
    prepared = load_and_prepare(RecordRef("208", str(MITDB / "208"), "mitdb", "208"), config)
    raw, fs = prepared.raw, prepared.record.fs
    starts = window_starts(prepared.signal.shape[1], 2500, 2500)
    bounds = [raw_bounds(s, 2500, 500, fs, raw.shape[1]) for s in starts.tolist()]
    # Thresholds that flag some windows of 208 (its MLII clips), and the defaults.
    for thresholds in (QualityThresholds(), QualityThresholds(flat=1.5, saturation=0.001)):
        expected = _per_window(raw, prepared.present, bounds, thresholds)
        assert quality_flags_batch(raw, prepared.present, bounds, thresholds) == expected
        assert any(expected) or thresholds == QualityThresholds()
    assert any(f for f in _per_window(raw, prepared.present, bounds, QualityThresholds(flat=1.5, saturation=0.001)))


def test_quality_flags_batch_on_synthetic_windows() -> None:
    rng = np.random.default_rng(3)
    raw = rng.standard_normal((4, 5000))
    raw[1] = 0.0  # absent lead
    raw[0, 100:200] = 0.001 * rng.standard_normal(100)  # flat window 0 of lead 0 ...
    raw[0, 0:100] = 0.0
    raw[2, 1000:1400] = np.clip(raw[2, 1000:1400], -0.3, 0.3)  # clipped
    raw[3, 2050] = np.nan
    raw[3, 3020] = np.inf
    raw[2, 4000:4200] = np.nan  # a whole window of NaN on one lead
    present = np.array([True, False, True, True])
    thresholds = QualityThresholds(flat=0.02, saturation=0.05)
    for width, hop in ((200, 200), (200, 100), (150, 250)):
        bounds = [(lo, lo + width) for lo in range(0, 5000 - width + 1, hop)]
        got = quality_flags_batch(raw, present, bounds, thresholds)
        assert got == _per_window(raw, present, bounds, thresholds)
        assert {"flat", "saturated", "nan"} <= {flag for flags in got for flag in flags}
    uneven = [(0, 200), (200, 350), (350, 350), (4990, 5000)]  # different lengths and an empty window
    assert quality_flags_batch(raw, present, uneven, thresholds) == _per_window(raw, present, uneven, thresholds)
    none_present = np.zeros(4, dtype=bool)
    assert quality_flags_batch(raw, none_present, [(0, 10)], thresholds) == [["flat"]]


def _savemat(variables: dict) -> bytes:
    buffer = io.BytesIO()
    scipy.io.savemat(buffer, variables)
    data = bytearray(buffer.getvalue())
    data[: len(matfile.MAT_HEADER)] = matfile.MAT_HEADER
    return bytes(data)


@pytest.mark.parametrize(("leads", "length", "n_labels"), [(12, 2500, 1), (1, 3, 0), (3, 1, 26), (2, 5, 2)])
def test_window_template_equals_encode_and_savemat(leads: int, length: int, n_labels: int) -> None:
    rng = np.random.default_rng(leads + length)
    template = matfile.WindowTemplate()
    for window in range(4):  # same record: two label values, new data each window
        label = [float(window % 2)] * n_labels
        block = rng.standard_normal((length, leads)).astype(np.float32)  # the writer's (T, L) block
        variables = {
            "feats": block.T,
            "curr_sample_rate": 500,
            "label": np.asarray(label, dtype=np.float32).reshape(1, -1),
            "idx": 7,
            "patient_id": 2**33,
        }
        expected = b"".join(bytes(p) for p in matfile.encode(variables))
        assert expected == _savemat(variables)
        assert b"".join(bytes(p) for p in template.parts(variables, "feats", tuple(label))) == expected
        head, data, tail = matfile.encode_split(variables, "feats")
        assert head + bytes(data) + tail == expected


def test_window_template_refuses_a_changed_head() -> None:
    template = matfile.WindowTemplate()
    feats = np.zeros((2, 3), np.float32)
    template.parts({"a": 1, "feats": feats, "label": 0}, "feats", (0,))
    with pytest.raises(ValueError, match="before the templated"):
        template.parts({"a": 2, "feats": feats, "label": 1}, "feats", (1,))


@pytest.mark.parametrize("unnamed", [True, False])
def test_write_atomic_creates_and_replaces(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, unnamed: bool) -> None:
    """Both ways of writing (an unnamed file linked in, where the system has it; a temporary name renamed)
    give the file, replace an existing one, and leave nothing else in the folder."""
    if unnamed and not matfile._unnamed_files.usable:
        pytest.skip("no O_TMPFILE / linkat through /proc here")
    monkeypatch.setattr(matfile._unnamed_files, "usable", unnamed)
    parts = matfile.encode({"feats": np.ones((2, 3), np.float32), "idx": 1})
    other = matfile.encode({"feats": np.zeros((4, 5), np.float32), "idx": 2})
    matfile.write_atomic(str(tmp_path / "a.mat"), parts)
    matfile.write_atomic(tmp_path / "b.mat", parts)
    (tmp_path / "c.mat").write_bytes(b"old, longer than the new file" * 100)
    matfile.write_atomic(tmp_path / "c.mat", other)
    assert (tmp_path / "a.mat").read_bytes() == (tmp_path / "b.mat").read_bytes() == b"".join(bytes(p) for p in parts)
    assert (tmp_path / "c.mat").read_bytes() == b"".join(bytes(p) for p in other)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.mat", "b.mat", "c.mat"]
    assert matfile._unnamed_files.usable == unnamed


def test_dsp_in_place_forms_equal_the_copying_ones() -> None:
    rng = np.random.default_rng(5)
    x = np.cumsum(rng.standard_normal((3, 7200)), axis=1)
    mask = np.ones(3, dtype=bool)
    assert dsp.bandpass(x, 360, 0.5, 40, 4).tobytes() == dsp.bandpass(x, 360, 0.5, 40, 4, rows=mask).tobytes()
    fortran = np.asfortranarray(x)
    assert dsp.bandpass(fortran, 360, 0.5, 40, 4).tobytes() == dsp.bandpass(x, 360, 0.5, 40, 4, rows=mask).tobytes()
    holes = x.copy()
    holes[0, :10] = holes[1, 500:700] = holes[2, -3:] = np.nan
    filled = dsp.fill_nan(holes)
    in_place = holes.copy()
    assert dsp.fill_nan(in_place, copy=False) is in_place and in_place.tobytes() == filled.tobytes()
    windows = rng.standard_normal((5, 2, 2500)) * 3 + 1
    windows[1, 0] = 4.0  # a constant lead
    for mode in dsp.NORMALIZE_CHOICES:
        expected = dsp.normalize_batch(windows, mode)
        work = windows.copy()
        assert dsp.normalize_batch(work, mode, copy=False) is work and work.tobytes() == expected.tobytes()
