"""``--packed``: per-split memory-mapped arrays equal to the ``.mat`` windows, written atomically and resumably."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import scipy.io

from physioclr_ext.preprocess import PreprocessConfig, run
from physioclr_ext.preprocess.cli import config_from_args
from physioclr_ext.preprocess.config import SPLIT_NAMES
from physioclr_ext.preprocess.packed import PACKED_DIR, PackedSplit, index_path

SAMPLE = Path(__file__).resolve().parents[2] / "data" / "sample"


def _manifest_paths(out: Path, split: str) -> list[str]:
    return [line.split("\t")[0] for line in (out / f"{split}.tsv").read_text().splitlines()[1:]]


def _assert_packed_equals_mat(out: Path) -> int:
    """Every window of every split: packed row == ``.mat`` feats (bits, dtype) and its scalars; returns N."""
    total = 0
    for split in SPLIT_NAMES:
        packed = PackedSplit.open(out, split)
        assert packed.paths == _manifest_paths(out, split)
        for row, path in enumerate(packed.paths):
            mat = scipy.io.loadmat(out / path)
            window = packed.window(row)
            assert window.dtype == mat["feats"].dtype == np.float32
            assert window.shape == mat["feats"].shape
            assert window.tobytes() == np.ascontiguousarray(mat["feats"]).tobytes()
            assert packed.sample_rate[row] == int(mat["curr_sample_rate"][0, 0])
            assert packed.patient_id[row] == int(mat["patient_id"][0, 0])
            assert packed.idx[row] == int(mat["idx"][0, 0])
        total += len(packed.paths)
    return total


@pytest.fixture(scope="module")
def packed_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    """The 8 bundled PhysioNet 2021 records, st_mem preset, 2 s windows with 1 s overlap, ``--packed``."""
    out = tmp_path_factory.mktemp("packed_out")
    config = PreprocessConfig.from_preset(
        "st_mem",
        input=str(SAMPLE / "physionet2021"),
        output=str(out),
        window_seconds=2.0,
        overlap_seconds=1.0,
        workers=2,
        progress=False,
        packed=True,
    )
    return out, run(config)


def test_packed_arrays_equal_every_mat_window(packed_run: tuple[Path, dict]) -> None:
    out, summary = packed_run
    n = _assert_packed_equals_mat(out)
    assert n == sum(len(_manifest_paths(out, s)) for s in SPLIT_NAMES) > 0
    assert sum(shape[0] for shape in summary["packed"].values()) == n
    assert (out / "train.tsv").is_file() and (out / "cmsc" / "train.tsv").is_file()  # still written


def test_short_windows_keep_their_length(tmp_path: Path) -> None:
    """``--pad-short mask`` windows shorter than the array's T read back at their own length."""
    out = tmp_path / "out"
    config = PreprocessConfig(
        input=str(SAMPLE / "ludb"), output=str(out), window_seconds=12.0, pad_short="mask", workers=1, progress=False
    )
    run(PreprocessConfig(**{**config.to_dict(), "packed": True}))
    assert _assert_packed_equals_mat(out) > 0


def test_resume_keeps_current_arrays_and_rewrites_changed_ones(tmp_path: Path) -> None:
    out = tmp_path / "out"
    base = dict(input=str(SAMPLE / "ludb"), output=str(out), workers=1, progress=False, packed=True)
    run(PreprocessConfig(**base))
    before = {s: json.loads(index_path(out, s).read_text())["array"] for s in SPLIT_NAMES}
    mtime = (out / PACKED_DIR / before["train"]).stat().st_mtime_ns
    run(PreprocessConfig(**base))  # nothing changed: the arrays are kept
    assert {s: json.loads(index_path(out, s).read_text())["array"] for s in SPLIT_NAMES} == before
    assert (out / PACKED_DIR / before["train"]).stat().st_mtime_ns == mtime
    run(PreprocessConfig(**{**base, "normalize": "none"}))  # windows rewritten: so are the arrays
    assert json.loads(index_path(out, "train").read_text())["array"] != before["train"]
    assert sorted(p.name for p in (out / PACKED_DIR).iterdir() if p.suffix == ".npy") == sorted(
        json.loads(index_path(out, s).read_text())["array"] for s in SPLIT_NAMES
    )
    _assert_packed_equals_mat(out)
    run(PreprocessConfig(**{**base, "packed": False}))  # stale arrays never outlive a run without --packed
    assert not (out / PACKED_DIR).exists()


def test_killed_run_leaves_no_stale_index(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A run that rewrites windows and dies while packing leaves no index (not the old, stale one); the next
    run packs again."""
    from physioclr_ext.preprocess import packed

    out = tmp_path / "out"
    base = dict(input=str(SAMPLE / "ludb"), output=str(out), workers=1, progress=False, packed=True)
    run(PreprocessConfig(**base))

    def dying_loadmat(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(packed.scipy.io, "loadmat", dying_loadmat)
    with pytest.raises(KeyboardInterrupt):
        run(PreprocessConfig(**{**base, "normalize": "none"}))
    monkeypatch.undo()
    for split in SPLIT_NAMES:
        with pytest.raises(FileNotFoundError):
            PackedSplit.open(out, split)
    run(PreprocessConfig(**{**base, "normalize": "none"}))
    _assert_packed_equals_mat(out)


def test_packed_option() -> None:
    assert config_from_args(["--input", "i", "--output", "o", "--packed"]).packed
    assert not config_from_args(["--input", "i", "--output", "o"]).packed


def test_missing_index_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="train.json"):
        PackedSplit.open(tmp_path, "train")


def test_an_empty_split_packs_to_an_empty_array(tmp_path: Path) -> None:
    """All windows in train: valid and test are (0, 0, 0) arrays with empty indexes, not a failed run."""
    out = tmp_path / "out"
    config = PreprocessConfig(
        input=str(SAMPLE / "ludb"),
        output=str(out),
        split_fractions=(1.0, 0.0, 0.0),
        workers=1,
        progress=False,
        packed=True,
    )
    summary = run(config)
    for split in ("valid", "test"):
        packed = PackedSplit.open(out, split)
        assert packed.paths == [] and summary["packed"][split][0] == 0
    assert not [p for p in (out / PACKED_DIR).iterdir() if ".tmp" in p.name]
    assert _assert_packed_equals_mat(out) > 0
