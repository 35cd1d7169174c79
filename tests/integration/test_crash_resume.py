"""Crash and resume through the real fairseq-signals trainer (issue 15).

* Pretraining killed with SIGKILL between two checkpoints, in the middle of an epoch, then restarted with the same
  command: it resumes from ``checkpoint_last.pt`` and logs, update by update, exactly the metrics of an
  uninterrupted run with the same seed (loss, accuracy-like logs, lr, gradient norm; timings aside), and ends at
  bit-identical weights, optimiser state and LR scheduler state. The methods cover the randomness a run has:
  augmented views and dropout (contrastive), masks drawn with torch's RNG, the EMA target encoder and a warm-up
  cosine schedule (ECG-JEPA, ECG MAE), NumPy-drawn wav2vec 2.0 masks and heartbeat shuffles (PhysioCLR).
* A few-shot protocol (``python -m physioclr_ext.evaluation few-shot``) killed during its second fine-tuning run:
  the rerun keeps the finished run untouched, redoes only the interrupted one, and reports what an uninterrupted
  protocol reports.

Data: the 8 bundled LUDB records, preset fairseq_signals (12 leads, 500 Hz, 2500 samples), with features;
12 training windows, batch 2: six updates per epoch, a checkpoint every 2 updates.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time

import pytest

from ._util import REPO, console_script, run

CONFIGS = REPO / "configs" / "pretraining"
LUDB = REPO / "data" / "sample" / "ludb"
MAX_UPDATE = 8
TIMING = {"ups", "wall", "train_wall", "wps", "gb_free"}
"""Logged values that measure time, not training."""

RESUME_CASES = {
    "contrastive": ("contrastive_cnn_tiny", []),
    "ecg_jepa": ("ecg_jepa_tiny", ["task.sample_rate=null"]),
    "ecg_mae": ("ecg_mae_tiny", []),
    "physioclr": ("physioclr_tiny", []),
}


@pytest.fixture(scope="module")
def ludb(tmp_path_factory):
    data = tmp_path_factory.mktemp("resume_data") / "ludb"
    run(
        [sys.executable, "-m", "physioclr_ext.preprocess", "--input", str(LUDB), "--output", str(data),
         "--workers", "1", "--no-progress", "--features", "--features-pca", "none"]
    )  # fmt: skip
    return data


def _env():
    return {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}


def _pretrain_command(config, data, out, overrides):
    return [
        console_script("physioclr-hydra-train"), "--config-dir", str(CONFIGS), "--config-name", config,
        f"task.data={data}", f"checkpoint.save_dir={out}", f"hydra.run.dir={out}", "common.log_interval=1",
        f"optimization.max_update={MAX_UPDATE}", "optimization.max_epoch=0", "dataset.batch_size=2",
        "dataset.required_batch_size_multiple=1", "checkpoint.save_interval_updates=2",
        "checkpoint.no_epoch_checkpoints=true", *overrides,
    ]  # fmt: skip


def _kill_when_logged(cmd, pattern, timeout=600.0):
    """Run ``cmd`` and SIGKILL its process group as soon as a line of its output matches ``pattern``."""
    proc = subprocess.Popen(
        cmd, env=_env(), cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True
    )
    lines, deadline = [], time.monotonic() + timeout
    try:
        for line in proc.stdout:
            lines.append(line)
            if re.search(pattern, line) or time.monotonic() > deadline:
                break
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        proc.stdout.close()
    log = "".join(lines)
    assert proc.returncode == -signal.SIGKILL, f"the run was not killed (rc {proc.returncode}):\n{log[-3000:]}"
    return log


def _per_update(log):
    """``{num_updates: {metric: logged text}}`` of the ``train_inner`` lines, timings left out."""
    out = {}
    for line in log.splitlines():
        if "[train_inner]" not in line:
            continue
        values = dict(re.findall(r"(\w+)=([^,\s]+)", line.split(" - ", 1)[-1]))
        out[int(values["num_updates"])] = {k: v for k, v in values.items() if k not in TIMING}
    return out


def _load(path):
    import torch

    return torch.load(path, map_location="cpu", weights_only=False)


def _assert_equal_states(a, b, where=""):
    """Nested dicts/lists of tensors and numbers, equal bit for bit."""
    import torch

    if isinstance(a, torch.Tensor):
        assert isinstance(b, torch.Tensor) and a.dtype == b.dtype and torch.equal(a, b), where
    elif isinstance(a, dict):
        assert set(a) == set(b), where
        for key in a:
            _assert_equal_states(a[key], b[key], f"{where}/{key}")
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b)):
            _assert_equal_states(x, y, f"{where}/{i}")
    else:
        assert a == b, where


@pytest.mark.slow  # three trainings per method (about 30 s per method on 2 cores)
@pytest.mark.parametrize("method", list(RESUME_CASES))
def test_pretraining_killed_mid_epoch_resumes_to_the_same_losses_and_weights(method, ludb, tmp_path):
    config, overrides = RESUME_CASES[method]
    straight = run(_pretrain_command(config, ludb, tmp_path / "straight", overrides), env={"OMP_NUM_THREADS": "1"})
    expected = _per_update(straight.stdout + straight.stderr)
    assert sorted(expected) == list(range(1, MAX_UPDATE + 1))

    # killed once update 3 is logged: checkpoint_last.pt holds update 2 (or 4, if the kill lands after its save)
    cmd = _pretrain_command(config, ludb, tmp_path / "killed", overrides)
    killed_log = _kill_when_logged(cmd, r"\[train_inner\].* num_updates=3,")
    checkpoint = _load(tmp_path / "killed/checkpoint_last.pt")
    done = checkpoint["optimizer_history"][-1]["num_updates"]
    assert done in (2, 4) and checkpoint["extra_state"]["train_iterator"]["iterations_in_epoch"] == done  # mid-epoch
    assert _per_update(killed_log) == {k: v for k, v in expected.items() if k in _per_update(killed_log)}

    resumed_proc = run(cmd, env={"OMP_NUM_THREADS": "1"})
    resumed_log = resumed_proc.stdout + resumed_proc.stderr
    assert "Loaded checkpoint" in resumed_log
    resumed = _per_update(resumed_log)
    assert sorted(resumed) == list(range(done + 1, MAX_UPDATE + 1))
    for update, metrics in resumed.items():
        assert metrics == expected[update], (update, metrics, expected[update])

    final_straight, final_resumed = (
        _load(tmp_path / "straight/checkpoint_last.pt"),
        _load(tmp_path / "killed/checkpoint_last.pt"),
    )
    _assert_equal_states(final_straight["model"], final_resumed["model"], "model")
    _assert_equal_states(final_straight["last_optimizer_state"], final_resumed["last_optimizer_state"], "optimizer")
    history = [final_straight["optimizer_history"][-1], final_resumed["optimizer_history"][-1]]
    assert history[0]["lr_scheduler_state"] == history[1]["lr_scheduler_state"]
    assert history[0]["num_updates"] == history[1]["num_updates"] == MAX_UPDATE
    if method == "ecg_jepa":  # the EMA target encoder and its step count are in the checkpoint
        assert int(final_resumed["model"]["ema_updates"]) == MAX_UPDATE - 1
        assert any(k.startswith("net.target_encoder.") for k in final_resumed["model"])


FEW_SHOT_TINY = [
    "--override", "optimization.max_update=4", "--override", "dataset.validate_interval_updates=2",
    "--override", "checkpoint.save_interval_updates=2", "--override", "dataset.batch_size=8",
]  # fmt: skip


@pytest.mark.slow  # one pretraining and five fine-tuning runs: about 2 minutes on 2 cores
def test_killed_few_shot_protocol_reuses_finished_runs_and_redoes_the_interrupted_one(ludb, tmp_path):
    run(_pretrain_command("contrastive_cnn_tiny", ludb, tmp_path / "pt", ["optimization.max_update=2"]))
    checkpoint = tmp_path / "pt/checkpoint_last.pt"

    def command(out):
        return [
            sys.executable, "-m", "physioclr_ext.evaluation", "few-shot", "--data", str(ludb), "--checkpoint",
            str(checkpoint), "--out", str(out), "--n", "4", "--seeds", "0", "1", "--no-scratch", *FEW_SHOT_TINY,
        ]  # fmt: skip

    run(command(tmp_path / "straight"))
    first, second = (tmp_path / "killed" / "n4" / f"seed{s}" / "pretrained" for s in (0, 1))
    proc = subprocess.Popen(
        command(tmp_path / "killed"), env=_env(), cwd=REPO, stdout=subprocess.DEVNULL, start_new_session=True
    )
    deadline = time.monotonic() + 600
    while not (second / "checkpoint_last.pt").exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGKILL)  # the protocol and its running fine-tuning
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, "the protocol ended before it could be killed"
    assert (first / "metrics.json").exists() and not (second / "metrics.json").exists()
    kept = {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in (first / "metrics.json", first / "train.log")}

    run(command(tmp_path / "killed"))
    for path, (content, mtime) in kept.items():  # the finished run was reused, not redone
        assert path.read_bytes() == content and path.stat().st_mtime_ns == mtime, path
    assert (second / "metrics.json").exists()
    assert "Loaded checkpoint" in (second / "train.log").read_text()  # the interrupted run resumed its checkpoint
    for seed in (0, 1):
        got, want = (
            json.loads((tmp_path / d / "n4" / f"seed{seed}" / "pretrained" / "metrics.json").read_text())
            for d in ("killed", "straight")
        )
        assert got == want, seed
    results = [json.loads((tmp_path / d / "results.json").read_text())["results"] for d in ("killed", "straight")]
    assert results[0] == results[1]


def test_checkpoint_copy_is_atomic(tmp_path, monkeypatch):
    """`checkpoint_last.pt` is made by `PathManager.copy`; with the `atomic_checkpoint_copy` fix a copy that dies
    halfway leaves the previous file whole (upstream copied in place: a truncated checkpoint), and a finished copy
    leaves no temporary file behind."""
    import shutil

    from fairseq_signals.utils.file_io import PathManager

    from physioclr_ext.runners import compat

    compat.apply_patches()
    src, dst = tmp_path / "checkpoint_2_4.pt", tmp_path / "checkpoint_last.pt"
    src.write_bytes(b"new" * 1000)
    dst.write_bytes(b"old checkpoint")
    real_copyfile = shutil.copyfile

    def dies_halfway(a, b, *args, **kwargs):
        with open(b, "wb") as f:
            f.write(open(a, "rb").read()[:1000])
        raise OSError("killed during the copy")

    monkeypatch.setattr(shutil, "copyfile", dies_halfway)
    with pytest.raises(OSError):
        PathManager.copy(str(src), str(dst), overwrite=True)
    assert dst.read_bytes() == b"old checkpoint"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint_2_4.pt", "checkpoint_last.pt"]
    monkeypatch.setattr(shutil, "copyfile", real_copyfile)
    assert PathManager.copy(str(src), str(dst), overwrite=True)
    assert dst.read_bytes() == src.read_bytes()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint_2_4.pt", "checkpoint_last.pt"]
