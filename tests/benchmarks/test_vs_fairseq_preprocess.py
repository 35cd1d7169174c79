"""Pure parts of benchmarks/vs_fairseq_preprocess.py: the link tree, window matching and un-standardising.

No fairseq-signals and no timing: the files are written here, shaped like each side's output.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import scipy.io

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"
sys.path.insert(0, str(BENCHMARKS))

import vs_fairseq_preprocess as vs  # noqa: E402


def _record(folder: Path, name: str, rate: int) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{name}.hea").write_text(f"{name} 12 {rate} 5000\n")
    (folder / f"{name}.mat").write_bytes(b"")


def test_link_tree_lays_out_training_dataset_group(tmp_path):
    data = tmp_path / "data"
    _record(data / "G12EC", "E00001", 500)
    _record(data / "PTB_PTBXL", "S0001", 1000)
    training = vs.link_tree(data, tmp_path / "raw")
    assert training.name == "training"
    links = sorted(p.relative_to(training).as_posix() for p in training.glob("*/*/*"))
    assert links == ["G12EC/g1/E00001.hea", "G12EC/g1/E00001.mat", "PTB_PTBXL/g1/S0001.hea", "PTB_PTBXL/g1/S0001.mat"]
    assert (training / "G12EC/g1/E00001.hea").resolve() == (data / "G12EC/E00001.hea").resolve()
    assert vs.record_rates(data) == {"E00001": 500, "S0001": 1000}


def _write_ours(out: Path, rows: list[tuple[str, int, np.ndarray]]) -> None:
    (out / "mat").mkdir(parents=True)
    lines = ["path,record,window"]
    for record, window, feats in rows:
        path = f"mat/{record}_{window}.mat"
        scipy.io.savemat(out / path, {"feats": feats})
        lines.append(f"{path},{record},{window}")
    (out / "windows.csv").write_text("\n".join(lines) + "\n")


def _write_theirs(out: Path, rows: list[tuple[str, int, np.ndarray]]) -> None:
    """Each record z-scored per lead over its windows, as fairseq-signals stores them with mean and std."""
    (out / "segmented").mkdir(parents=True)
    for record in sorted({r for r, _, _ in rows}):
        windows = [(w, f) for r, w, f in rows if r == record]
        whole = np.concatenate([f for _, f in windows], axis=1)
        mean, std = whole.mean(axis=1, keepdims=True), whole.std(axis=1, keepdims=True)
        for window, feats in windows:
            name = f"physionet2021_G12EC_g1_{record}_{window}.mat"
            scipy.io.savemat(out / "segmented" / name, {"feats": (feats - mean) / std, "mean": mean, "std": std})


def test_same_windows_matches_records_by_name_and_undoes_the_standardisation(tmp_path):
    rng = np.random.default_rng(0)
    rows = [(rec, w, rng.normal(size=(12, 50))) for rec in ("E00001", "S0001") for w in range(2)]
    _write_ours(tmp_path / "ours", rows)
    _write_theirs(tmp_path / "theirs", rows)
    assert set(vs.fairseq_windows(tmp_path / "theirs")) == {(r, w) for r, w, _ in rows}
    rates = {"E00001": 500, "S0001": 1000}
    check = vs.same_windows(tmp_path / "theirs", tmp_path / "ours", rates)
    assert check["same"] and check["compared"] == 2 and check["windows_fairseq"] == check["windows_ours"] == 4
    assert check["max_abs_diff_mV"] < 1e-9


def test_same_windows_sees_a_changed_window(tmp_path):
    rng = np.random.default_rng(1)
    rows = [("E00001", w, rng.normal(size=(12, 50))) for w in range(2)]
    _write_theirs(tmp_path / "theirs", rows)
    changed = [(r, w, f + (0.01 if w == 1 else 0.0)) for r, w, f in rows]
    _write_ours(tmp_path / "ours", changed)
    check = vs.same_windows(tmp_path / "theirs", tmp_path / "ours", {"E00001": 500})
    assert not check["same"] and abs(check["max_abs_diff_mV"] - 0.01) < 1e-9
