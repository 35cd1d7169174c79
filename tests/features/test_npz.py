"""``save_npz``: what ``np.load`` reads back, the same bytes for the same arrays, never a partial file."""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
import pytest

from physioclr_ext.features.npz import ZIP_TIME, save_npz


def _arrays() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    return {
        "raw": rng.normal(size=(3, 5)).astype(np.float32),
        "valid": np.array([True, False, True]),
        "fnames": np.asarray(["a/1.mat", "b/22.mat", "c.mat"], dtype=str),
        "empty": np.zeros(0, np.int64),
    }


def test_round_trip_as_np_savez(tmp_path: Path) -> None:
    arrays = _arrays()
    save_npz(str(tmp_path / "sub" / "x.npz"), **arrays)
    np.savez(tmp_path / "ref.npz", **arrays)
    with np.load(tmp_path / "sub" / "x.npz") as got, np.load(tmp_path / "ref.npz") as ref:
        assert sorted(got.files) == sorted(ref.files) == sorted(arrays)
        for name in arrays:
            assert got[name].dtype == ref[name].dtype and np.array_equal(got[name], ref[name]), name


def test_same_arrays_same_bytes_and_no_clock_in_the_file(tmp_path: Path) -> None:
    save_npz(str(tmp_path / "a.npz"), **_arrays())
    save_npz(str(tmp_path / "b.npz"), **_arrays())
    assert (tmp_path / "a.npz").read_bytes() == (tmp_path / "b.npz").read_bytes()
    with zipfile.ZipFile(tmp_path / "a.npz") as archive:
        assert {info.date_time for info in archive.infolist()} == {ZIP_TIME}


def test_a_failed_write_keeps_the_previous_file_and_leaves_no_temporary(tmp_path: Path) -> None:
    path = tmp_path / "x.npz"
    save_npz(str(path), **_arrays())
    before = path.read_bytes()
    with pytest.raises(ValueError):  # object arrays would need pickling, which is refused
        save_npz(str(path), good=np.ones(3), bad=np.array([{"a": 1}], dtype=object))
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["x.npz"]
