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
