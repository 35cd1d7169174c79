"""Command-line error cases, run in subprocesses, and the checks every one must pass.

A case is one command line given a user error (a missing file, an unknown option, a bad value). It must
exit non-zero without a Python traceback, with exactly one message line (after argparse's usage block)
naming the file or option.

``python -m`` cases are grouped: each of ``os.cpu_count()`` subprocesses runs its share one after the
other the way ``python -m`` does (:func:`runpy.run_module` as ``__main__`` with ``sys.argv`` set; an
uncaught exception printed as the interpreter prints it), so torch and neurokit2 are imported once per
subprocess rather than once per case. Console-script cases each get a fresh subprocess.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import runpy
import subprocess
import sys
import traceback
import warnings
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Mapping, Sequence, Tuple

REPO = Path(__file__).resolve().parents[1]
MISSING = "{tmp}/no_such"
"""A path that never exists; ``{tmp}`` is the test's temporary directory."""


@dataclass(frozen=True)
class Case:
    """``argv`` after the interpreter (``-m module ...``) or, with ``script``, after the console script;
    ``{tmp}`` and ``{repo}`` are filled in. ``names``: text the message line must contain."""

    id: str
    argv: Tuple[str, ...]
    names: str
    script: str = ""

    def args(self, tmp: str) -> List[str]:
        return [a.format(tmp=tmp, repo=REPO) for a in self.argv]

    def command(self, tmp: str) -> List[str]:
        if self.script:
            return [os.path.join(os.path.dirname(sys.executable), self.script), *self.args(tmp)]
        return [sys.executable, *self.args(tmp)]

    def expected(self, tmp: str) -> str:
        return self.names.format(tmp=tmp, repo=REPO)


def case(id: str, names: str, *argv: str, script: str = "") -> Case:
    return Case(id, tuple(argv), names, script)


def selected_cases(request, param: str = "case") -> List[Case]:
    """The cases of ``param`` of the test items of the requesting module that this session runs."""
    items = [i for i in request.session.items if i.module is request.module and hasattr(i, "callspec")]
    seen: Dict[str, Case] = {}
    for item in items:
        value = item.callspec.params.get(param)
        if isinstance(value, Case):
            seen.setdefault(value.id, value)
    return list(seen.values())


def run_cases(
    cases: Sequence[Case], tmp: str, timeout: float = 300, env: Mapping[str, str] = ()
) -> Dict[str, subprocess.CompletedProcess]:
    """Run every case (``cwd``: the repository); ``python -m`` ones grouped, ``os.cpu_count()`` at a time."""
    full_env = {**os.environ, **dict(env)}
    workers = max(2, os.cpu_count() or 2)
    modules = [c for c in cases if not c.script]
    groups = [modules[i::workers] for i in range(workers) if modules[i::workers]]

    def fresh(c: Case) -> Dict[str, subprocess.CompletedProcess]:
        proc = subprocess.run(
            c.command(tmp),
            cwd=REPO,
            env=full_env,
            capture_output=True,
            text=True,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
        )
        return {c.id: proc}

    def grouped(group: List[Case]) -> Dict[str, subprocess.CompletedProcess]:
        spec = json.dumps([[c.id, c.args(tmp)] for c in group])
        proc = subprocess.run(
            [sys.executable, __file__], input=spec, cwd=REPO, env=full_env, capture_output=True, text=True,
            timeout=timeout * len(group),
        )  # fmt: skip
        assert proc.returncode == 0, f"case driver failed ({proc.returncode}):\n{proc.stderr[-3000:]}"
        done = json.loads(proc.stdout)
        return {
            c.id: subprocess.CompletedProcess(c.command(tmp), *done[c.id]) for c in group
        }  # (returncode, stdout, stderr)

    results: Dict[str, subprocess.CompletedProcess] = {}
    with ThreadPoolExecutor(max_workers=workers) as pool:
        jobs = [pool.submit(grouped, g) for g in groups] + [pool.submit(fresh, c) for c in cases if c.script]
        for job in jobs:
            results.update(job.result())
    return results


def run_module_as_main(argv: Sequence[str]) -> Tuple[int, str, str]:
    """``python -m MODULE ARGS...`` in this process: ``(exit code, stdout, stderr)``."""
    assert argv[0] == "-m", argv
    out, err = io.StringIO(), io.StringIO()
    saved = sys.argv[:]
    code = 0
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        sys.argv = [argv[1], *argv[2:]]
        try:
            runpy.run_module(argv[1], run_name="__main__", alter_sys=True)
        except SystemExit as exc:  # as the interpreter ends: None 0, an int itself, anything else printed and 1
            if isinstance(exc.code, int) or exc.code is None:
                code = exc.code or 0
            else:
                print(exc.code, file=sys.stderr)
                code = 1
        except BaseException:  # noqa: BLE001 - what the interpreter would print
            traceback.print_exc()
            code = 1
        finally:
            sys.argv = saved
    return code, out.getvalue(), err.getvalue()


PROGRESS_BAR = re.compile(r"\d+%\|.*\|")
"""A tqdm progress bar (``embed train: 100%|####| 1/1 [...]``): progress, not a message."""


def message_lines(stderr: str) -> List[str]:
    """The non-empty lines of ``stderr`` as a terminal shows them (the text after a line's last carriage
    return), less tqdm progress bars and argparse's usage block (``usage:`` and its indented lines)."""
    shown = (line.rsplit("\r", 1)[-1] for line in stderr.split("\n"))
    lines = [line for line in shown if line.strip() and not PROGRESS_BAR.search(line)]
    if lines and lines[0].startswith("usage:"):
        lines = [line for line in lines[1:] if not line.startswith(" ")]
    return lines


def check_one_line_error(c: Case, proc: subprocess.CompletedProcess, tmp: str) -> str:
    """Assert the user-error contract on one finished case; returns its message line."""
    shown = f"{c.command(tmp)} exited {proc.returncode}\nstdout:\n{proc.stdout[-3000:]}\nstderr:\n{proc.stderr[-3000:]}"
    assert proc.returncode != 0, shown
    assert "Traceback" not in proc.stderr and "Traceback" not in proc.stdout, shown
    lines = message_lines(proc.stderr)
    assert len(lines) == 1, shown
    assert c.expected(tmp) in lines[0], shown
    return lines[0]


def write_embeddings(directory: str) -> None:
    """Two classes, 8 dimensions: train/valid/test of 60/20/30 rows (enough for knn and linear-probe)."""
    import numpy as np

    from physioclr_ext.evaluation.embeddings import Embeddings, write_metadata

    for seed, (subset, per_class) in enumerate([("train", 30), ("valid", 10), ("test", 15)]):
        rng = np.random.default_rng(seed)
        y = np.repeat(np.arange(2), per_class)
        x = 3.0 * np.eye(2, 8)[y] + rng.normal(size=(len(y), 8))
        n = len(y)
        Embeddings(x, y[:, None], np.arange(n), np.arange(n) // 2, [f"{subset}_{i}.mat" for i in range(n)]).save(
            directory, subset
        )
    write_metadata(directory, {"checkpoint": "/ckpt/checkpoint_best.pt", "checkpoint_sha256": "cd" * 32})


def write_data(directory: Path) -> None:
    """A preprocessed-looking directory that passes the commands' checks: per subset one 5 s window of a
    real 12-lead 500 Hz record (PhysioNet 2021 sample A0001), in mV, with a 0/1 label; no
    ``preprocess.json`` (its shape is not checked)."""
    import numpy as np
    import scipy.io
    import wfdb

    record = wfdb.rdrecord(str(REPO / "data" / "sample" / "physionet2021" / "A0001"), sampto=2500)
    feats = np.nan_to_num(record.p_signal.T.astype(np.float64))
    directory.mkdir()
    for subset, label in (("train", 0), ("valid", 1), ("test", 0)):
        window = {"feats": feats.astype(np.float32), "curr_sample_rate": 500, "label": np.array([[float(label)]])}
        scipy.io.savemat(directory / f"{subset}.mat", {**window, "idx": 0, "patient_id": label})
        (directory / f"{subset}.tsv").write_text(f"{directory}\n{subset}.mat\t{feats.shape[1]}\n")
    (directory / "label_def.csv").write_text("index,name\n0,normal\n1,abnormal\n")


def _drive() -> None:
    """Read ``[[id, argv], ...]`` (JSON) on stdin; write ``{id: [code, stdout, stderr]}`` (JSON) on stdout."""
    # a second run of a module already imported by an earlier case warns (an artefact of running cases
    # in one process: a fresh ``python -m`` does not)
    warnings.filterwarnings("ignore", message=".*found in sys.modules after import of package", category=RuntimeWarning)
    done = {case_id: run_module_as_main(argv) for case_id, argv in json.load(sys.stdin)}
    sys.stdout.write(json.dumps(done))


if __name__ == "__main__":
    sys.path.insert(0, str(REPO))  # run as a script: the package is installed editable, the cwd is the repository
    _drive()
