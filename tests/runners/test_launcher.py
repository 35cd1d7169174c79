"""Launcher argument handling and package import without fairseq-signals."""

import subprocess
import sys

from physioclr_ext.runners import launcher


def test_split_user_dirs_keeps_other_arguments_in_order():
    argv = ["--config-dir", "c", "common.user_dir=/a/b", "task.data=/d", "+common.user_dir='/x y'", "model.x=1"]
    dirs, rest = launcher.split_user_dirs(argv)
    assert dirs == ["/a/b", "/x y"]
    assert rest == ["--config-dir", "c", "task.data=/d", "model.x=1"]


def test_split_user_dirs_without_any():
    assert launcher.split_user_dirs(["a=1"]) == ([], ["a=1"])


def test_import_without_fairseq_signals_is_quiet():
    code = (
        "import physioclr_ext, sys;"
        "print(physioclr_ext.__version__, physioclr_ext.fairseq_signals_available(), physioclr_ext.register())"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    version, available, registered = out.stdout.split(" ", 2)
    assert version == physioclr_ext_version()
    if available == "False":
        assert registered.strip() == "[]"


def physioclr_ext_version():
    import physioclr_ext

    return physioclr_ext.__version__


def test_console_script_fails_early_with_one_message_where_unsupported():
    from physioclr_ext.runners import compat

    if not compat.find_problems():
        import pytest

        pytest.skip("this environment supports fairseq-signals; nothing to refuse")
    code = "import sys; sys.argv=['physioclr-hydra-train','task.data=/x']; from physioclr_ext.runners.launcher import train_main; train_main()"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 2
    assert "fairseq-signals cannot run in this environment" in out.stderr
    assert "Traceback" not in out.stderr


RECORDED_LOG = (
    "[2026-12-02 10:55:18,918][train_inner][INFO] - epoch 001:      5 / 24 loss=0.5665, loss_masked=0.5665, "
    "loss_visible=0.5697, nsignals=14.4, ups=3.63, num_updates=5, lr=0.000933013, gnorm=0.779, train_wall=2, wall=8\n"
    "[2026-12-02 10:55:25,771][valid][INFO] - epoch 001 | valid on 'valid' subset | loss 0.2793 | loss_masked 0.2793 "
    "| loss_visible 0.5043 | nsignals 15.0417 | num_updates 20 | best_loss 0.2793\n"
)


def test_write_run_loss_curve_draws_the_recorded_log(tmp_path, capsys):
    (tmp_path / "loss_curve.log").write_text(RECORDED_LOG)
    png = launcher.write_run_loss_curve(str(tmp_path), title="ecg_mae")
    assert png == str(tmp_path / "loss_curve.png")
    assert (tmp_path / "loss_curve.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (tmp_path / "loss_curve.json").exists()
    assert png in capsys.readouterr().out


def test_loss_curve_problems_are_one_warning_never_an_error(tmp_path, capsys):
    assert launcher.write_run_loss_curve(str(tmp_path)) is None  # no log at all
    (tmp_path / "loss_curve.log").write_text("not a progress line\n")
    assert launcher.write_run_loss_curve(str(tmp_path)) is None
    (tmp_path / "loss_curve.log").write_text(RECORDED_LOG)
    (tmp_path / "loss_curve.png").mkdir()  # cannot be written
    assert launcher.write_run_loss_curve(str(tmp_path)) is None
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 3 and all(line.startswith("physioclr-hydra-train: warning: no loss curve:") for line in err)
    assert "no training log at" in err[0] and "no training progress line" in err[1]


def test_progress_log_cannot_fail_the_run(capsys):
    """Whatever the config (here one without the fields, or no fairseq-signals), no exception."""
    assert launcher._attach_progress_log(object()) is None
    assert "warning: no loss curve: cannot record the progress log" in capsys.readouterr().err


def test_loss_curve_hook_replaces_pre_main_only():
    import types

    module = types.ModuleType("fake_hydra_train")
    module.pre_main = lambda cfg: None
    module.cli_main = lambda: None
    assert launcher.install_loss_curve_hook(module) is True
    assert module.pre_main is launcher.train_with_loss_curve
    assert launcher.install_loss_curve_hook(types.ModuleType("no_pre_main")) is False
