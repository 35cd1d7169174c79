"""`python -m physioclr_ext.evaluation reconstruct` on masked-modelling checkpoints pretrained for real on
the demo data (MIT-BIH in the 12-lead layout, 500 Hz, 2500-sample windows), and its refusal of a
checkpoint whose model cannot reconstruct (the demo's wav2vec 2.0)."""

import csv
import json
import math
import re
import struct
import subprocess
import sys

import pytest

from physioclr_ext.evaluation.reconstruction import figure_inches

from ._util import REPO, console_script, run

CONFIGS = REPO / "configs/pretraining"
# config -> overrides for the demo data (ST-MEM's configs expect 250 Hz from the st_mem preset)
MODELS = {"ecg_mae_tiny": [], "st_mem_vit_s_tiny": ["task.sample_rate=500"]}


def evaluation(*args, check=True):
    cmd = [sys.executable, "-m", "physioclr_ext.evaluation", *map(str, args)]
    if check:
        return run(cmd)
    return subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=600)


def png_size(path):
    head = path.read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", head[16:24])


def first_records(data, subset, n):
    paths = [line.split("\t")[0] for line in (data / f"{subset}.tsv").read_text().splitlines()[1:]]
    records = {row["path"]: row["record"] for row in csv.DictReader(open(data / "windows.csv"))}
    ordered = list(dict.fromkeys(records[p] for p in paths))
    return ordered[:n]


@pytest.fixture(scope="module", params=sorted(MODELS))
def checkpoint(request, demo_dir, tmp_path_factory):
    config = request.param
    if not (CONFIGS / f"{config}.yaml").exists():
        pytest.skip(f"configs/pretraining/{config}.yaml is not there yet")
    out = tmp_path_factory.mktemp(config)
    run(
        [
            console_script("physioclr-hydra-train"),
            "--config-dir",
            str(CONFIGS),
            "--config-name",
            config,
            f"task.data={demo_dir / 'data/mitdb'}",
            f"checkpoint.save_dir={out}",
            f"hydra.run.dir={out}",
            "optimization.max_update=4",
            *MODELS[config],
        ]
    )
    return out / "checkpoint_last.pt"


def test_one_picture_per_record_and_finite_errors(checkpoint, demo_dir, tmp_path):
    data = demo_dir / "data/mitdb"
    evaluation(
        "reconstruct", "--checkpoint", checkpoint, "--manifest", data / "train.tsv", "--out", tmp_path, "--n-records", 3
    )
    records = first_records(data, "train", 3)
    assert len(records) == 3
    assert sorted(p.name for p in tmp_path.glob("*.png")) == sorted(f"{r}.png" for r in records)
    width, height = figure_inches(12)
    assert all(png_size(tmp_path / f"{r}.png") == (round(width * 100), round(height * 100)) for r in records)
    saved = json.load(open(tmp_path / "reconstruction.json"))
    assert [w["record"] for w in saved["windows"]] == records
    for window in saved["windows"]:
        assert math.isfinite(window["mse_masked"]) and math.isfinite(window["mse_visible"])
        assert window["n_masked"] > 0 and window["shape"][0] == 12 and window["sample_rate"] == 500
        assert window["masked_fraction"] == pytest.approx(0.75, abs=0.03)  # the checkpoint's ratio
    assert saved["mask_ratio"] == 0.75 and saved["seed"] == 0 and len(saved["checkpoint_sha256"]) == 64
    assert saved["lead_names"][:3] == ["I", "II", "III"]  # from preprocess.json
    assert saved["command"].startswith("python -m physioclr_ext.evaluation reconstruct")


def test_seeded_and_mask_ratio_from_the_command_line(checkpoint, demo_dir, tmp_path):
    from physioclr_ext.runners.reconstruct_checkpoint import reconstruct_manifest

    manifest = str(demo_dir / "data/mitdb/test.tsv")
    runs = {}
    for name, seed, ratio in (("a", 0, None), ("b", 0, None), ("c", 1, 0.5)):
        saved = reconstruct_manifest(
            str(checkpoint),
            manifest,
            str(tmp_path / name),
            n_records=1,
            seed=seed,
            mask_ratio=ratio,
            device="cpu",
            progress=False,
        )
        runs[name] = saved["windows"][0]
    assert runs["a"]["mse_masked"] == runs["b"]["mse_masked"]  # same seed, same mask and errors
    assert runs["c"]["masked_fraction"] == pytest.approx(0.5, abs=0.03)
    assert runs["c"]["mse_masked"] != runs["a"]["mse_masked"]
    assert json.load(open(tmp_path / "c/reconstruction.json"))["mask_ratio"] == 0.5


def test_a_checkpoint_that_cannot_reconstruct_fails_clearly(demo_dir, tmp_path):
    proc = evaluation(
        "reconstruct",
        "--checkpoint",
        demo_dir / "pretrain/checkpoint_last.pt",
        "--manifest",
        demo_dir / "data/mitdb/test.tsv",
        "--out",
        tmp_path,
        check=False,
    )
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert re.search(r"model 'wav2vec2\w*' of \S+ has no reconstruct\(\)", proc.stderr), proc.stderr
    assert "ecg_mae" in proc.stderr and "Traceback" not in proc.stderr
    assert not list(tmp_path.glob("*.png"))
