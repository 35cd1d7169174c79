"""Every physioclr-hydra-train run leaves loss_curve.png/.json next to its checkpoints (real fairseq-signals)."""

import json
import shutil
import struct
import subprocess
import sys

import pytest

from physioclr_ext.evaluation.loss_curves import read_log

from ._util import REPO, console_script, run
from .test_plugin import small_data  # noqa: F401  (the preprocessed sample, a fixture)

CONFIGS = REPO / "configs" / "pretraining"
MAE_TERMS = ["loss", "loss_masked", "loss_visible"]


def _train(save, run_dir, data, *extra, config="ecg_mae_tiny"):
    return run(
        [
            console_script("physioclr-hydra-train"),
            "--config-dir",
            str(CONFIGS),
            "--config-name",
            config,
            f"task.data={data}",
            f"checkpoint.save_dir={save}",
            f"hydra.run.dir={run_dir}",
            "common.log_interval=5",
            "dataset.valid_subset=valid",
            "dataset.disable_validation=false",
            *extra,
        ]
    )


def _png_size(path):
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR" and data[-8:-4] == b"IEND"
    return struct.unpack(">II", data[16:24])


@pytest.fixture(scope="module")
def first_run(tmp_path_factory, small_data):  # noqa: F811
    """ecg_mae_tiny for 20 updates (simple format); checkpoints away from hydra.run.dir."""
    root = tmp_path_factory.mktemp("loss_curve")
    save = root / "ckpt" / "pretrain"  # does not exist yet
    proc = _train(save, root / "hydra", small_data, "optimization.max_update=20")
    return save, root / "hydra", proc


def test_pretraining_writes_the_loss_curve_next_to_its_checkpoint(first_run):
    save, run_dir, proc = first_run
    assert (save / "checkpoint_last.pt").exists()
    assert f"loss curve: {save / 'loss_curve.png'}" in proc.stdout
    assert "no loss curve" not in proc.stderr
    width, height = _png_size(save / "loss_curve.png")
    assert width > 600 and height > 200
    curves = json.loads((save / "loss_curve.json").read_text())
    assert curves["terms"] == MAE_TERMS and curves["formats"] == ["simple", "pipes"]
    inner = curves["series"]["train_inner"]
    assert inner["num_updates"] == [5, 10, 15, 20]  # log_interval 5, max_update 20
    assert all(len(inner[t]) == 4 and all(v > 0 for v in inner[t]) for t in MAE_TERMS)
    assert inner["loss"][-1] < inner["loss"][0]
    assert curves["series"]["valid"]["num_updates"] == [20] and len(curves["series"]["valid"]["loss"]) == 1
    # the recorded log agrees with fairseq-signals' own hydra_train.log
    hydra = read_log(str(run_dir / "hydra_train.log"))
    assert hydra.series["train_inner"].to_dict() == inner
    assert hydra.series["valid"].to_dict() == curves["series"]["valid"]


def test_redraw_from_hydra_train_log(first_run, tmp_path):
    _, run_dir, _ = first_run
    out = tmp_path / "redrawn.png"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "physioclr_ext.evaluation",
            "loss-curve",
            "--log",
            str(run_dir / "hydra_train.log"),
            "--out",
            str(out),
        ],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr
    _png_size(out)
    assert json.loads((tmp_path / "redrawn.json").read_text())["series"]["train_inner"]["num_updates"] == [
        5,
        10,
        15,
        20,
    ]


def test_resumed_run_extends_the_curve(first_run, tmp_path, small_data):  # noqa: F811
    save = tmp_path / "pretrain"
    shutil.copytree(first_run[0], save)
    _train(save, tmp_path / "hydra", small_data, "optimization.max_update=30", "common.log_format=json")
    curves = json.loads((save / "loss_curve.json").read_text())
    assert curves["formats"] == ["simple", "pipes", "json"]
    assert curves["series"]["train_inner"]["num_updates"] == [5, 10, 15, 20, 25, 30]
    assert len(curves["series"]["train_inner"]["loss_masked"]) == 6
    assert curves["series"]["valid"]["num_updates"] == [20, 24, 30]


def test_a_run_without_progress_lines_still_succeeds(tmp_path, small_data):  # noqa: F811
    save = tmp_path / "pt"
    proc = _train(save, save, small_data, "optimization.max_update=2", "common.log_format=none", config="wav2vec2_tiny")
    assert (save / "checkpoint_last.pt").exists() and not (save / "loss_curve.png").exists()
    warnings = [line for line in proc.stderr.splitlines() if "no loss curve" in line]
    assert len(warnings) == 1 and "is empty" in warnings[0], proc.stderr[-2000:]
