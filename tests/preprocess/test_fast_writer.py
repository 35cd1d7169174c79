"""The fast window writer (issue 14) writes what the slow path wrote, byte for byte.

Slow path: per window ``dsp.normalize`` then ``scipy.io.savemat`` (with the package's MAT header), on a signal
filled, filtered and resampled on all twelve rows. Fast path: :mod:`physioclr_ext.preprocess.matfile`'s
encoder, ``dsp.normalize_batch`` over a record's windows, and filtering only the present leads.
"""

from __future__ import annotations

import io
import shutil
from pathlib import Path

import numpy as np
import pytest
import scipy.io

from physioclr_ext.preprocess import PreprocessConfig, dsp, matfile
from physioclr_ext.preprocess.pipeline import label_space, make_jobs
from physioclr_ext.preprocess.readers import discover
from physioclr_ext.preprocess.worker import load_and_prepare, process_record

SAMPLE = Path(__file__).resolve().parents[2] / "data" / "sample"


def _copy_mitdb(dest: Path, records: list[str]) -> Path:
    dest.mkdir(parents=True)
    for record in records:
        for ext in ("hea", "dat", "atr"):
            shutil.copy(SAMPLE / "mitdb" / f"{record}.{ext}", dest / f"{record}.{ext}")
    return dest


def _savemat_bytes(variables: dict) -> bytes:
    buffer = io.BytesIO()
    scipy.io.savemat(buffer, variables)
    data = bytearray(buffer.getvalue())
    data[: len(matfile.MAT_HEADER)] = matfile.MAT_HEADER
    return bytes(data)


def _window_variables(feats: np.ndarray, label: list[float], idx: int = 3, patient: int = 2) -> dict:
    return {
        "feats": feats,
        "curr_sample_rate": 500,
        "label": np.asarray(label, dtype=np.float32).reshape(1, -1),
        "idx": idx,
        "patient_id": patient,
    }


@pytest.mark.parametrize(("leads", "length", "n_labels"), [(12, 2500, 1), (1, 3600, 0), (8, 2500, 26), (3, 1, 5)])
def test_encode_equals_savemat(leads: int, length: int, n_labels: int) -> None:
    rng = np.random.default_rng(leads * length)
    feats = rng.standard_normal((leads, length)).astype(np.float32)
    variables = _window_variables(feats, list(rng.random(n_labels)), idx=leads, patient=2**40 + length)
    encoded = b"".join(bytes(part) for part in matfile.encode(variables))
    assert encoded == _savemat_bytes(variables)
    # A transposed view (the batched writer's (T, L) blocks) gives the same file.
    view = np.ascontiguousarray(feats.T).T
    assert b"".join(bytes(part) for part in matfile.encode({**variables, "feats": view})) == encoded


def test_encode_float64_and_refusals() -> None:
    variables = {"x": np.arange(6, dtype=np.float64).reshape(2, 3), "longer_name_here": np.int32(-7)}
    assert b"".join(bytes(p) for p in matfile.encode(variables)) == _savemat_bytes(variables)
    with pytest.raises(TypeError):
        matfile.encode({"x": np.zeros((2, 2, 2), np.float32)})
    with pytest.raises(TypeError):
        matfile.encode({"x": np.zeros((2, 2), np.complex64)})


def test_written_file_reads_as_fairseq_signals_reads_it(tmp_path: Path) -> None:
    """``FileECGDataset`` loads ``scipy.io.loadmat(path)`` and takes ``feats``, ``curr_sample_rate``, ``label``."""
    feats = np.random.default_rng(0).standard_normal((12, 2500)).astype(np.float32)
    path = tmp_path / "w.mat"
    matfile.write_atomic(path, matfile.encode(_window_variables(feats, [1.0])))
    data = scipy.io.loadmat(str(path))
    assert data["feats"].dtype == np.float32 and np.array_equal(data["feats"], feats)
    assert data["curr_sample_rate"][0, 0] == 500 and data["label"].tolist() == [[1.0]]
    assert data["idx"][0, 0] == 3 and data["patient_id"][0, 0] == 2
    assert [p.name for p in tmp_path.iterdir()] == ["w.mat"]  # no temporary left


@pytest.mark.parametrize("mode", dsp.NORMALIZE_CHOICES)
def test_normalize_batch_is_normalize_per_window(mode: str) -> None:
    rng = np.random.default_rng(1)
    x = rng.standard_normal((6, 3, 2500)) * 0.7 + 0.2
    x[1, 2] = 0.5  # a constant lead
    x[4] = 1.0  # a constant window
    batch = dsp.normalize_batch(x, mode)
    slow = np.stack([dsp.normalize(window, mode) for window in x])
    assert np.array_equal(batch.view(np.int64), slow.view(np.int64))  # bit for bit, signs of zero included


def _slow_signal(prepared, config: PreprocessConfig) -> np.ndarray:
    """The signal as filled, filtered and resampled on all rows before (absent rows are zero)."""
    clean = dsp.fill_nan(prepared.raw)
    if config.apply_filter:
        clean = dsp.bandpass(clean, prepared.record.fs, *config.bandpass, config.filter_order, rows=prepared.present)
    resampled = dsp.resample(clean[prepared.present], prepared.record.fs, config.sample_rate)
    out = np.zeros((len(prepared.present), resampled.shape[1]))
    out[prepared.present] = resampled
    return out


@pytest.mark.parametrize(
    ("dataset", "preset", "records"),
    [("mitdb", None, ["106"]), ("ludb", "st_mem", None), ("ludb", "ecg_jepa", None)],
)
def test_record_windows_equal_slow_path(tmp_path: Path, dataset: str, preset: str | None, records) -> None:
    source = _copy_mitdb(tmp_path / "in", records) if records else SAMPLE / dataset
    overrides = {"window_seconds": 2.0} if dataset == "ludb" else {}
    config = PreprocessConfig.from_preset(
        preset, input=str(source), output=str(tmp_path / "out"), workers=1, progress=False, **overrides
    )
    refs = discover(Path(source), dataset, None, True, False, ())[:2]
    labels = label_space(dataset, config, refs)
    for job in make_jobs(refs, labels, config, dataset, tmp_path / "out"):
        result = process_record(job)
        assert result["ok"], result
        prepared = load_and_prepare(job.ref, config, labels.uses_beats)
        signal = _slow_signal(prepared, config)
        assert np.array_equal(prepared.signal, signal)
        kept = [w for w in result["marker"]["windows"] if w["kept"]]
        assert kept and len(kept) == len(list((tmp_path / "out" / "mat").glob(f"{job.ref.record_id}_*.mat")))
        length = result["marker"]["window_length"]
        for window in kept:
            feats = dsp.normalize(
                signal[:, window["start"] : window["start"] + length], config.normalize, prepared.present
            )
            expected = _savemat_bytes(
                {
                    "feats": feats.astype(np.float32),
                    "curr_sample_rate": int(config.sample_rate),
                    "label": np.asarray(window["label"], dtype=np.float32).reshape(1, -1),
                    "idx": int(job.idx),
                    "patient_id": int(job.patient_index),
                }
            )
            assert (tmp_path / "out" / window["path"]).read_bytes() == expected, window["path"]
