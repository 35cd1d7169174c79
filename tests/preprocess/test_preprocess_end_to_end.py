"""End-to-end runs on the bundled sample data (fixtures in conftest.py)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import scipy.io

from physioclr_ext.preprocess import PreprocessConfig, run

SAMPLE = Path(__file__).resolve().parents[2] / "data" / "sample"
SPLITS = ("train", "valid", "test")


def read_manifest(path: Path) -> tuple[str, list[tuple[str, int]]]:
    lines = path.read_text().splitlines()
    entries = []
    for line in lines[1:]:
        rel, size = line.split("\t")
        entries.append((rel, int(size)))
    return lines[0], entries


def read_cmsc(path: Path) -> tuple[str, str, list[tuple[str, int, int, int, int]]]:
    lines = path.read_text().splitlines()
    pairs = []
    for line in lines[2:]:
        rel, size, lead, seg = line.split("\t")
        i, j = (int(s) for s in seg.split(","))
        pairs.append((rel, int(size), int(lead), i, j))
    return lines[0], lines[1], pairs


def windows_csv(out: Path) -> list[dict[str, str]]:
    with open(out / "windows.csv") as fh:
        return list(csv.DictReader(fh))


def check_manifests_and_mats(out: Path, summary: dict, n_leads: int, fs: int, label_width: int) -> dict:
    """Shared checks; returns {relative path: (split, loaded .mat)}."""
    seen = {}
    for split in SPLITS:
        root, entries = read_manifest(out / f"{split}.tsv")
        assert root == str(out)
        assert len(entries) == summary["splits"][split]["windows"]
        records = {rel.rsplit("_", 1)[0] for rel, _ in entries}
        assert len(records) == summary["splits"][split]["records"]
        for rel, size in entries:
            mat = scipy.io.loadmat(Path(root) / rel)
            assert mat["feats"].dtype == np.float32 and mat["feats"].shape == (n_leads, size)
            assert int(mat["curr_sample_rate"].item()) == fs
            assert mat["label"].ndim == 2 and mat["label"].shape == (1, label_width)
            assert mat["idx"].shape == (1, 1) and mat["patient_id"].shape == (1, 1)
            assert np.isfinite(mat["feats"]).all()
            seen[rel] = (split, mat)
    rows = windows_csv(out)
    assert sorted(r["path"] for r in rows) == sorted(seen)
    patients = {}
    for row in rows:
        patients.setdefault(row["patient"], set()).add(row["split"])
        assert int(seen[row["path"]][1]["idx"].item()) == int(row["idx"])
    assert all(len(s) == 1 for s in patients.values())
    for split in SPLITS:
        assert summary["splits"][split]["patients"] == len({r["patient"] for r in rows if r["split"] == split})
    return seen


def check_cmsc(out: Path, seen: dict, summary: dict, hop: int, length: int) -> None:
    starts = {r["path"]: int(r["start"]) for r in windows_csv(out)}
    for split in SPLITS:
        root, ext, pairs = read_cmsc(out / "cmsc" / f"{split}.tsv")
        assert (root, ext) == (str(out), "mat")
        assert len(pairs) == summary["splits"][split]["cmsc_pairs"]
        used = set()
        for rel, size, lead, i, j in pairs:
            a, b = f"{rel}_{i}.mat", f"{rel}_{j}.mat"
            assert seen[a][0] == seen[b][0] == split and size == length and lead == 0
            assert starts[b] - starts[a] >= length  # no overlap
            assert starts[b] - starts[a] < length + hop  # adjacent
            assert a not in used and b not in used
            used |= {a, b}


def check_label_files(out: Path, names: list[str], seen: dict) -> None:
    with open(out / "label_def.csv") as fh:
        label_def = list(csv.DictReader(fh))
    assert [d["name"] for d in label_def] == names
    assert [int(d["index"]) for d in label_def] == list(range(len(names)))
    rows = windows_csv(out)
    for d in label_def:
        for split in SPLITS:
            assert int(d[split]) == sum(int(r[d["name"]]) for r in rows if r["split"] == split)
    train = np.array([[int(r[n]) for n in names] for r in rows if r["split"] == "train"])
    pos = train.sum(0)
    expected = np.where(pos > 0, (len(train) - pos) / np.maximum(pos, 1), 1.0)
    weights = json.loads((out / "pos_weight.txt").read_text())
    np.testing.assert_allclose(weights, expected, rtol=1e-5)


def test_mitdb_fewshot_end_to_end(mitdb_run):
    out, summary = mitdb_run
    assert summary["records"]["succeeded"] == 2 and summary["failed_records"] == []
    seen = check_manifests_and_mats(out, summary, n_leads=1, fs=360, label_width=1)
    assert {rel.split("_")[0] for rel, (split, _) in seen.items() if split == "test"} == {"mat/213"}
    assert {rel.split("_")[0] for rel, (split, _) in seen.items() if split != "test"} == {"mat/106"}
    for rel, (_, mat) in seen.items():
        assert int(mat["idx"].item()) == (0 if rel.startswith("mat/106_") else 1)
        assert mat["label"].item() in (0.0, 1.0)
        assert mat["feats"].shape == (1, 3600)
        np.testing.assert_allclose(mat["feats"].std(), 1.0, atol=1e-3)
    check_cmsc(out, seen, summary, hop=3600, length=3600)
    check_label_files(out, ["arrhythmia"], seen)
    rows = windows_csv(out)
    assert all((r["aami"] != "N") == (r["arrhythmia"] == "1") for r in rows)
    assert any(r["arrhythmia"] == "1" for r in rows) and any(r["arrhythmia"] == "0" for r in rows)
    assert not (out / "y.npy").exists()


def test_ludb_end_to_end(ludb_run):
    out, summary = ludb_run
    assert summary["format"] == "ludb" and summary["records"]["succeeded"] == 8
    seen = check_manifests_and_mats(out, summary, n_leads=12, fs=500, label_width=len(summary["labels"]["names"]))
    names = summary["labels"]["names"]
    assert names[0] == "Sinus rhythm" and "Sinus bradycardia" in names
    y = np.load(out / "y.npy")
    assert y.shape == (8, len(names)) and y.dtype == np.float32
    for _, mat in seen.values():
        np.testing.assert_array_equal(y[int(mat["idx"].item())], mat["label"][0])
        np.testing.assert_allclose(mat["feats"].mean(axis=1), 0.0, atol=1e-4)
        np.testing.assert_allclose(mat["feats"].std(axis=1), 1.0, atol=1e-3)
    assert sum(s["windows"] for s in summary["splits"].values()) == 16
    check_cmsc(out, seen, summary, hop=2500, length=2500)
    check_label_files(out, names, seen)
    assert json.loads((out / "preprocess.json").read_text()) == summary


def test_physionet2021_st_mem_with_overlap(physionet_run):
    out, summary = physionet_run
    assert summary["preset"] == "st_mem" and summary["window"]["hop_samples"] == 250
    names = summary["labels"]["names"]
    assert names.index("RBBB") < names.index("NSR")  # table order, not alphabetical
    seen = check_manifests_and_mats(out, summary, n_leads=12, fs=250, label_width=len(names))
    for _, mat in seen.values():
        np.testing.assert_allclose(mat["feats"].mean(), 0.0, atol=1e-4)
        np.testing.assert_allclose(mat["feats"].std(), 1.0, atol=1e-3)
    check_cmsc(out, seen, summary, hop=250, length=500)
    check_label_files(out, names, seen)
    assert np.load(out / "y.npy").shape == (8, len(names))


def test_resume_skips_records_and_gives_identical_manifests(tmp_path, ludb_run):
    def go(**extra):
        config = PreprocessConfig(
            input=str(SAMPLE / "ludb"), output=str(tmp_path / "out"), workers=2, progress=False, **extra
        )
        return run(config)

    first = go()
    snapshot = {p: p.read_bytes() for p in sorted((tmp_path / "out").rglob("*.tsv"))}
    mtimes = {p: p.stat().st_mtime_ns for p in (tmp_path / "out" / "mat").iterdir()}
    second = go()
    assert first["records"]["processed"] == 8 and second["records"]["skipped_existing"] == 8
    assert second["records"]["processed"] == 0
    assert {p: p.read_bytes() for p in snapshot} == snapshot
    assert {p: p.stat().st_mtime_ns for p in mtimes} == mtimes
    assert second["splits"] == first["splits"]
    # Same windows and splits as the one-worker run of the ludb_run fixture.
    for split in SPLITS:
        body = (tmp_path / "out" / f"{split}.tsv").read_text().splitlines()[1:]
        assert body == (ludb_run[0] / f"{split}.tsv").read_text().splitlines()[1:]
    third = go(window_seconds=10.0)
    assert third["records"]["skipped_existing"] == 0 and third["splits"]["train"]["windows"] < 16
    assert len(list((tmp_path / "out" / "mat").iterdir())) == 8  # stale windows removed
