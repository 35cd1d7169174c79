"""``--packed --hybrid-channels``: the packed arrays hold what the ``.mat`` files hold after the hybrid stage.

Three LUDB records of the shared database (``/work/shared/data/ludb``, PhysioNet LUDB 1.0.1, ODC-By), the
``ecg_jepa`` preset (8 leads, 250 Hz) with 5-s windows: 2 windows per record, one record per split.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import scipy.io

from physioclr_ext.features import hybrid_pipeline
from physioclr_ext.features.hybrid import N_HYBRID, HybridOptions
from physioclr_ext.preprocess import PreprocessConfig
from physioclr_ext.preprocess.__main__ import main
from physioclr_ext.preprocess.cli import config_from_args
from physioclr_ext.preprocess.config import SPLIT_NAMES
from physioclr_ext.preprocess.matfile import MAT_HEADER
from physioclr_ext.preprocess.packed import PACKED_DIR, PackedSplit, index_path

pytest.importorskip("wfdb")
pytest.importorskip("neurokit2")

SHARED_LUDB = Path(os.environ.get("LUDB_DIR", "/work/shared/data/ludb/data"))
RECORDS = ("11", "12", "13")
LEADS = 8  # the ecg_jepa preset's
LENGTH = 1250  # 5 s at 250 Hz


@pytest.fixture(scope="module")
def ludb3(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder with the three LUDB records (header and signal files)."""
    if not (SHARED_LUDB / f"{RECORDS[0]}.hea").is_file():
        pytest.skip(f"LUDB not found at {SHARED_LUDB} (set LUDB_DIR)")
    folder = tmp_path_factory.mktemp("ludb3")
    for record in RECORDS:
        for suffix in (".hea", ".dat"):
            shutil.copy(SHARED_LUDB / f"{record}{suffix}", folder / f"{record}{suffix}")
    return folder


def _args(ludb3: Path, out: Path, *extra: str) -> list[str]:
    return [
        *("--input", str(ludb3), "--output", str(out), "--preset", "ecg_jepa", "--hybrid-channels"),
        *("--window-seconds", "5", "--split-fractions", "0.34", "0.33", "0.33", "--no-progress"),
        *extra,
    ]


def _manifest(out: Path, split: str) -> list[tuple[str, int]]:
    lines = (out / f"{split}.tsv").read_text().splitlines()[1:]
    return [(path, int(size)) for path, size in (line.split("\t") for line in lines)]


def _assert_packed_equals_mat(out: Path) -> dict[str, list[int]]:
    """Every split: array (N, 8 + 11, T), each window equal to its ``.mat`` feats; returns the shapes."""
    shapes = {}
    for split in SPLIT_NAMES:
        manifest = _manifest(out, split)
        packed = PackedSplit.open(out, split)
        assert packed.paths == [path for path, _ in manifest]
        assert packed.array.shape == (len(manifest), LEADS + N_HYBRID, LENGTH)
        for row, (path, size) in enumerate(manifest):
            feats = scipy.io.loadmat(out / path)["feats"]
            assert feats.dtype == np.float32 and feats.shape == (LEADS + N_HYBRID, size)
            assert np.array_equal(packed.array[row], feats)
            assert np.array_equal(packed.window(row), feats)
        shapes[split] = list(packed.array.shape)
    return shapes


def _snapshot(out: Path) -> dict[str, bytes]:
    """Bytes of the packed folder and of the windows, by relative path."""
    files = [*(out / PACKED_DIR).iterdir(), *(out / "mat").iterdir()]
    return {str(p.relative_to(out)): p.read_bytes() for p in sorted(files)}


@pytest.fixture(scope="module")
def packed_hybrid(ludb3: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("packed_hybrid")
    assert main(_args(ludb3, out, "--packed", "--workers", "1")) == 0
    return out


def test_the_combination_is_accepted() -> None:
    config = config_from_args(["--input", "i", "--output", "o", "--packed", "--hybrid-channels"])
    assert config.packed and config.hybrid_channels
    PreprocessConfig(input="i", output="o", packed=True, hybrid_channels=True)  # no longer refused


def test_packed_arrays_hold_the_hybrid_windows(packed_hybrid: Path) -> None:
    shapes = _assert_packed_equals_mat(packed_hybrid)
    assert {s: shapes[s][0] for s in SPLIT_NAMES} == {"train": 2, "valid": 2, "test": 2}
    summary = json.loads((packed_hybrid / "preprocess.json").read_text())
    assert summary["hybrid"]["packed"] == shapes
    assert summary["packed"] == shapes  # packed by the hybrid stage, reported where a plain --packed run puts it
    # The hybrid rows are z-scored with the training windows' statistics: mean 0 over train (a missing value
    # is written as 0, the training mean), and they vary.
    train = PackedSplit.open(packed_hybrid, "train").array[:, LEADS:]
    assert np.abs(train.mean(axis=(0, 2))).max() < 1e-4
    assert (train.std(axis=(0, 2)) > 0.5).sum() >= N_HYBRID - 1


def test_rerun_is_resumable_and_idempotent(ludb3: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert main(_args(ludb3, out, "--packed", "--workers", "1")) == 0
    before = _snapshot(out)
    arrays = {s: json.loads(index_path(out, s).read_text())["array"] for s in SPLIT_NAMES}
    mtime = (out / PACKED_DIR / arrays["train"]).stat().st_mtime_ns
    # Records skipped (markers current), channels recomputed with 2 workers: same bits, arrays kept.
    assert main(_args(ludb3, out, "--packed", "--workers", "2")) == 0
    assert _snapshot(out) == before
    # scipy writes its creation time into a MAT header: the rewritten windows carry the fixed one instead.
    assert all(data.startswith(MAT_HEADER) for name, data in before.items() if name.endswith(".mat"))
    assert (out / PACKED_DIR / arrays["train"]).stat().st_mtime_ns == mtime
    _assert_packed_equals_mat(out)
    assert main(_args(ludb3, out, "--workers", "1")) == 0  # without --packed: no stale arrays left
    assert not (out / PACKED_DIR).exists()


def test_killed_hybrid_rewrite_leaves_no_stale_index(
    ludb3: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Other hybrid options change the rows: their indexes go before the first window is rewritten, so a run
    killed while rewriting leaves none; the next run packs the new rows."""
    out = tmp_path / "out"
    assert main(_args(ludb3, out, "--packed", "--workers", "1")) == 0
    before = scipy.io.loadmat(out / _manifest(out, "test")[0][0])["feats"]
    options = HybridOptions(rolling_seconds=4.0)
    write_window = hybrid_pipeline.write_window
    calls = []

    def dying_write_window(*args: object, **kwargs: object) -> None:
        if calls:
            raise KeyboardInterrupt
        calls.append(args)
        write_window(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(hybrid_pipeline, "write_window", dying_write_window)
    with pytest.raises(KeyboardInterrupt):
        hybrid_pipeline.add_hybrid_channels(out, options, workers=1, progress=False)
    monkeypatch.undo()
    for split in SPLIT_NAMES:
        with pytest.raises(FileNotFoundError):
            PackedSplit.open(out, split)
    summary = hybrid_pipeline.add_hybrid_channels(out, options, workers=1, progress=False)
    assert summary["packed"] == _assert_packed_equals_mat(out)
    after = PackedSplit.open(out, "test").array[0]
    assert np.array_equal(after[:LEADS], before[:LEADS]) and not np.array_equal(after, before)
    assert sorted(p.name for p in (out / PACKED_DIR).iterdir() if p.suffix == ".npy") == sorted(
        json.loads(index_path(out, s).read_text())["array"] for s in SPLIT_NAMES
    )
