"""scripts/install.sh as far as CI can take it without building anything: its arguments, the refusal without
Python 3.10, how it finds Python 3.10 (PATH, pyenv), and the dry run listing every step with its command.

Each run gets a PATH of its own holding only a few coreutils and the fakes a test puts there (a ``python3.10`` that
answers its version, a ``pyenv``), and a HOME and cache of its own, so the machine's interpreters never count.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Dict, Optional

import pytest

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "scripts" / "install.sh"
BASH = shutil.which("bash") or "/bin/bash"
FSS_COMMIT = "6b9e1375bbe6bc2e55ff4d9b95eabe8eee3adec7"


def fake_python(path: Path, version: str) -> Path:
    """An executable that answers ``version`` to the script's version query, as ``python -c ...`` would."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"#!/bin/sh\necho {version}\n")
    path.chmod(0o755)
    return path


@pytest.fixture
def sandbox(tmp_path):
    """``bin`` (the only PATH entry, with the coreutils the script uses), a HOME, and a fairseq-signals-shaped
    folder."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    (tmp_path / "home").mkdir()
    for tool in ("basename", "cat", "dirname", "ls", "sed"):
        os.symlink(shutil.which(tool), bindir / tool)
    fss = tmp_path / "fairseq-signals"
    (fss / "fairseq_signals").mkdir(parents=True)
    (fss / "setup.py").write_text("")
    return tmp_path


def install(sandbox: Path, *args: str, env: Optional[Dict[str, str]] = None) -> subprocess.CompletedProcess:
    base = {"PATH": str(sandbox / "bin"), "HOME": str(sandbox / "home"), "XDG_CACHE_HOME": str(sandbox / "cache")}
    return subprocess.run(
        [BASH, str(SCRIPT), *args], env={**base, **(env or {})}, capture_output=True, text=True, timeout=60
    )


def test_help_lists_the_steps(sandbox):
    proc = install(sandbox, "--help")
    assert proc.returncode == 0 and proc.stderr == ""
    for text in ("--fairseq-signals PATH|URL", "--prefix DIR", "--torch SPEC", "--dry-run", FSS_COMMIT, "pip<24.1"):
        assert text in proc.stdout
    assert str(sandbox / "cache/physioclr-ext/venv310") in proc.stdout  # the default outside the checkout


@pytest.mark.parametrize(
    "args, message",
    [
        (["--bogus"], "error: unknown option --bogus (see --help)"),
        (["--prefix"], "error: --prefix needs a directory"),
        (["--torch", "numpy"], "error: --torch numpy: give a torch requirement, e.g. torch==2.13.0"),
        (["--fairseq-signals", "/no/such/folder"], "error: --fairseq-signals /no/such/folder: no such folder"),
    ],
)
def test_bad_arguments_fail_in_one_line(sandbox, args, message):
    proc = install(sandbox, *args)
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.startswith(message) and len(proc.stderr.strip().splitlines()) == 1


def test_a_folder_that_is_not_fairseq_signals_is_refused(sandbox):
    proc = install(sandbox, "--fairseq-signals", str(sandbox / "home"), "--dry-run")
    assert proc.returncode == 2 and "not a fairseq-signals checkout (no setup.py and fairseq_signals/)" in proc.stderr


def test_refuses_without_python_310(sandbox):
    fake_python(sandbox / "bin/python3.11", "3.11")
    proc = install(sandbox, "--dry-run", "--fairseq-signals", str(sandbox / "fairseq-signals"))
    assert proc.returncode == 2
    assert "error: Python 3.10 not found (fairseq-signals runs on Python 3.9/3.10 only)" in proc.stderr
    assert "pyenv install 3.10" in proc.stderr and "--python PATH" in proc.stderr
    assert "[2/9]" not in proc.stdout and not (sandbox / "cache").exists()


def test_refuses_a_python_of_another_version(sandbox):
    py = fake_python(sandbox / "other/python", "3.9")
    proc = install(sandbox, "--python", str(py), "--dry-run")
    assert proc.returncode == 2 and f'--python {py} is not a working Python 3.10 (it answers "3.9")' in proc.stderr


def test_finds_python_310_through_pyenv(sandbox):
    root = sandbox / "pyenv-root"
    py = fake_python(root / "versions/3.10.9/bin/python3.10", "3.10")
    pyenv = sandbox / "bin/pyenv"
    pyenv.write_text(f'#!/bin/sh\n[ "$1" = root ] && echo {root}\n')
    pyenv.chmod(0o755)
    proc = install(sandbox, "--dry-run", "--fairseq-signals", str(sandbox / "fairseq-signals"))
    assert proc.returncode == 0, proc.stderr
    assert f"using {py}" in proc.stdout


def test_dry_run_prints_every_step_and_changes_nothing(sandbox):
    py = fake_python(sandbox / "bin/python3.10", "3.10")
    prefix = sandbox / "env" / "venv310"
    fss = sandbox / "fairseq-signals"
    proc = install(
        sandbox, "--dry-run", "--prefix", str(prefix), "--fairseq-signals", str(fss), "--torch", "torch==2.5.1"
    )
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    steps = [line for line in out.splitlines() if line.startswith("[")]
    assert [s.split("]")[0] + "]" for s in steps] == [f"[{i}/9]" for i in range(1, 10)]
    vpy = f"{prefix}/bin/python"
    expected = [
        f"using {py}",
        f"would run: {py} -m venv {prefix}",
        f"would run: {vpy} -m pip install pip\\<24.1",
        f"would run: {vpy} -m pip install --index-url https://download.pytorch.org/whl/cpu torch==2.5.1",
        f"would run: {vpy} -m pip install numpy\\<2 hydra-core==1.0.7 omegaconf==2.0.6 transformers\\<4.40 cython "
        "setuptools wheel",
        f"using the checkout {fss}",
        f"would run: {vpy} -m pip install --no-build-isolation -e {fss}",
        f"would run: {vpy} -m pip install -e {REPO}\\[test\\]",
        "check_environment",
        "dry run: nothing was changed",
    ]
    positions = [out.find(text) for text in expected]
    assert all(p >= 0 for p in positions), [t for t, p in zip(expected, positions) if p < 0]
    assert positions == sorted(positions)  # in this order
    assert not prefix.parent.exists() and not (sandbox / "cache").exists()


def test_torch_index_choices(sandbox):
    fake_python(sandbox / "bin/python3.10", "3.10")
    fss = str(sandbox / "fairseq-signals")
    plain = install(sandbox, "--dry-run", "--fairseq-signals", fss, "--torch-index", "default")
    assert plain.returncode == 0, plain.stderr
    assert "-m pip install torch==2.13.0\n" in plain.stdout and "--index-url" not in plain.stdout
    cuda = "https://download.pytorch.org/whl/cu126"
    gpu = install(sandbox, "--dry-run", "--fairseq-signals", fss, "--torch-index", cuda, "--torch", "torch==2.7.1")
    assert f"-m pip install --index-url {cuda} torch==2.7.1\n" in gpu.stdout


def test_dry_run_with_a_url_clones_at_the_pinned_commit(sandbox):
    fake_python(sandbox / "bin/python3.10", "3.10")
    prefix = sandbox / "env/venv310"
    url = "https://example.org/fairseq-signals.git"
    proc = install(sandbox, "--dry-run", "--prefix", str(prefix), "--fairseq-signals", url)
    assert proc.returncode == 0, proc.stderr
    clone = sandbox / "env/fairseq-signals"
    assert f"would run: git clone {url} {clone}" in proc.stdout
    assert f"would run: git -C {clone} checkout --detach {FSS_COMMIT}" in proc.stdout
    assert f"--no-build-isolation -e {clone}" in proc.stdout
    other = install(sandbox, "--dry-run", "--prefix", str(prefix), "--fairseq-signals", url, "--commit", "abc1234")
    assert "checkout --detach abc1234" in other.stdout


def test_without_fairseq_signals_the_dry_run_says_what_is_needed(sandbox):
    fake_python(sandbox / "bin/python3.10", "3.10")
    proc = install(sandbox, "--dry-run")
    assert proc.returncode == 0, proc.stderr
    assert "otherwise pass --fairseq-signals" in proc.stdout and "[9/9]" in proc.stdout


# ------------------------------------------------------------------------------ .ci/integration
CI_INTEGRATION = REPO / ".ci" / "integration"


def ci_integration(sandbox: Path, env: Optional[Dict[str, str]] = None) -> subprocess.CompletedProcess:
    base = {"PATH": str(sandbox / "bin"), "HOME": str(sandbox / "home")}
    return subprocess.run(
        [BASH, str(CI_INTEGRATION)], env={**base, **(env or {})}, capture_output=True, text=True, timeout=60
    )


def fake_venv(root: Path, script: str) -> Path:
    """``root/bin/python``: a shell script standing for the environment's interpreter."""
    py = root / "bin" / "python"
    py.parent.mkdir(parents=True)
    py.write_text("#!/bin/sh\n" + script)
    py.chmod(0o755)
    return root


def test_ci_says_why_it_skips_without_a_training_environment(sandbox):
    """A fresh machine: nothing at the default location (under HOME's cache), CI passes and says so."""
    proc = ci_integration(sandbox)
    default = sandbox / "home/.cache/physioclr-ext/venv310"
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == (
        f"tests/integration skipped: no training environment at {default} (build it with scripts/install.sh, or set "
        "PHYSIOCLR_VENV310)\n"
    )
    other = ci_integration(sandbox, {"XDG_CACHE_HOME": str(sandbox / "xdg")})
    assert f"no training environment at {sandbox / 'xdg/physioclr-ext/venv310'} " in other.stdout


def test_ci_skips_an_environment_that_cannot_run_fairseq_signals(sandbox):
    venv = fake_venv(sandbox / "venv", 'echo "UnsupportedEnvironment: fairseq_signals: not installed" >&2; exit 1\n')
    proc = ci_integration(sandbox, {"PHYSIOCLR_VENV310": str(venv)})
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == [
        f"tests/integration skipped: the training environment at {venv} cannot run fairseq-signals:",
        "    UnsupportedEnvironment: fairseq_signals: not installed",
    ]


def test_ci_runs_the_integration_tests_with_this_checkout(sandbox):
    log = sandbox / "calls.log"
    venv = fake_venv(
        sandbox / "venv",
        f'if [ "$1" = -c ]; then echo "$PYTHONPATH|check" >> {log}; exit 0; fi\necho "$PYTHONPATH|$*" >> {log}; exit 3\n',
    )
    proc = ci_integration(sandbox, {"PHYSIOCLR_VENV310": str(venv)})
    assert proc.stdout.splitlines() == [f"tests/integration with {venv}"]
    assert proc.returncode == 3  # the tests' exit status is CI's
    # the check, then the tests, both importing this checkout
    assert log.read_text().splitlines() == [f"{REPO}|check", f"{REPO}|-m pytest -q -rs tests/integration"]
