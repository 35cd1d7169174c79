"""LR scheduler ``warmup_cosine`` inside the real trainer: the logged learning rate follows the formula."""

import re

import pytest

from physioclr_ext.optim.schedules import warmup_cosine_lr

from ._util import REPO, console_script, run


def test_registered():
    from fairseq_signals.optim.lr_scheduler import LR_SCHEDULER_REGISTRY

    import physioclr_ext

    physioclr_ext.register()

    assert "warmup_cosine" in LR_SCHEDULER_REGISTRY


def test_trainer_follows_warmup_then_cosine(demo_dir, tmp_path):
    proc = run(
        [
            console_script("physioclr-hydra-train"),
            "--config-dir",
            str(REPO / "configs" / "pretraining"),
            "--config-name",
            "ecg_mae_tiny",
            f"task.data={demo_dir / 'data/mitdb'}",
            f"checkpoint.save_dir={tmp_path}",
            f"hydra.run.dir={tmp_path}",
            "optimization.max_update=20",
            "optimization.lr=[2e-3]",
            "lr_scheduler.warmup_ratio=0.25",
            "common.log_interval=1",
        ]
    )
    logged = {
        int(u): float(lr) for u, lr in re.findall(r"num_updates=(\d+), lr=([0-9.e-]+)", proc.stdout + proc.stderr)
    }
    assert len(logged) >= 15
    for update, lr in logged.items():
        assert lr == pytest.approx(warmup_cosine_lr(update, 20, 5, 2e-3), rel=1e-4, abs=1e-9)


def test_a_warmup_longer_than_the_run_is_clamped_with_a_warning(demo_dir, tmp_path):
    proc = run(
        [
            console_script("physioclr-hydra-train"),
            "--config-dir",
            str(REPO / "configs" / "pretraining"),
            "--config-name",
            "ecg_mae_tiny",
            f"task.data={demo_dir / 'data/mitdb'}",
            f"checkpoint.save_dir={tmp_path}",
            f"hydra.run.dir={tmp_path}",
            "optimization.max_update=4",
            "optimization.lr=[1e-3]",
            "~lr_scheduler.warmup_ratio",
            "+lr_scheduler.warmup_updates=100",
            "common.log_interval=1",
        ]
    )
    log = proc.stdout + proc.stderr
    assert "warm-up updates exceed" in log
    logged = {int(u): float(lr) for u, lr in re.findall(r"num_updates=(\d+), lr=([0-9.e-]+)", log)}
    assert logged and all(lr == pytest.approx(warmup_cosine_lr(u, 4, 4, 1e-3), abs=1e-9) for u, lr in logged.items())
