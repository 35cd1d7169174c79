"""Preprocessing and feature extraction killed with SIGKILL mid-run, then rerun (issue 15).

The rerun redoes only the unfinished records (``preprocess.json`` counts the records it took from their
markers, ``features/summary.json`` those it took from the per-record cache), no file the killed run left under
its final name is partial, and the final outputs are byte for byte those of an uninterrupted run. The only
differences allowed are those counts, and the temporary files a killed run can leave behind (``.NAME.tmpPID``,
never read). With ``--features`` the preprocessing workers cache each record's features (issue 14), so the
feature stage's own resume is killed as ``python -m physioclr_ext.features`` on a folder preprocessed without.

Input: the 8 bundled LUDB records (12 leads, 500 Hz, 10 s), preset ``fairseq_signals`` with ``--features``.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import scipy.io

SAMPLE = Path(__file__).resolve().parents[2] / "data" / "sample" / "ludb"
N_RECORDS = 8
TEMPORARY = re.compile(r"\.tmp\d+$")
"""Names of temporary files, written then renamed to their final name: ``.NAME.tmpPID`` (windows, tables,
``.npz``) and ``NAME.tmpPID`` (JSON markers and summaries)."""


def _command(out: Path) -> list[str]:
    return [
        sys.executable, "-m", "physioclr_ext.preprocess", "--input", str(SAMPLE), "--output", str(out),
        "--workers", "1", "--no-progress", "--features", "--features-pca", "none",
    ]  # fmt: skip


def _env() -> dict[str, str]:
    return {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}


def _features_command(out: Path) -> list[str]:
    """The feature stage alone on a preprocessed folder, with ``_command``'s feature options."""
    return [
        sys.executable,
        "-m",
        "physioclr_ext.features",
        str(out),
        "--pca",
        "none",
        "--workers",
        "1",
        "--no-progress",
    ]


def _run(out: Path, features: bool = True) -> None:
    command = (
        _command(out) if features else [c for c in _command(out) if c not in ("--features", "--features-pca", "none")]
    )
    proc = subprocess.run(command, env=_env(), capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def _kill_when(out: Path, ready, command: list[str] | None = None, timeout: float = 300.0) -> None:
    """Start ``command`` (default ``_command(out)``) and SIGKILL its whole process group as soon as ``ready()``
    holds."""
    proc = subprocess.Popen(
        command or _command(out), env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True
    )
    deadline = time.monotonic() + timeout
    try:
        while not ready():
            if proc.poll() is not None:
                pytest.fail(f"the run ended (rc {proc.returncode}) before it could be killed: {proc.stderr.read()!r}")
            if time.monotonic() > deadline:
                pytest.fail("the run never reached the point where it should be killed")
            time.sleep(0.01)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        proc.stderr.close()
    assert proc.returncode == -signal.SIGKILL


def _markers(out: Path) -> list[Path]:
    return sorted(p for p in (out / "records").glob("*.json")) if (out / "records").is_dir() else []


def _cached(out: Path) -> list[Path]:
    cache = out / "features" / "cache"
    return sorted(p for p in cache.glob("*.npz") if not TEMPORARY.search(p.name)) if cache.is_dir() else []


def _tree(out: Path) -> dict[str, bytes]:
    """Every final file under ``out`` (temporaries left by a kill are not outputs), with the output folder's
    own path (manifests and summaries name it) replaced by ``<OUT>``."""
    return {
        str(p.relative_to(out)): p.read_bytes().replace(str(out).encode(), b"<OUT>")
        for p in sorted(out.rglob("*"))
        if p.is_file() and not TEMPORARY.search(p.name)
    }


def _without_counts(summary: dict) -> dict:
    """A summary without the counts that say how much a run took from a previous one."""
    summary = json.loads(json.dumps(summary))
    for key in ("skipped_existing", "processed"):
        summary["records"].pop(key)
    if "features" in summary:
        summary["features"]["records"].pop("computed")
        summary["features"]["records"].pop("cached")
    return summary


def _assert_finished_files_whole(out: Path) -> None:
    """What a killed run left under final names is whole: markers parse, windows load, caches open."""
    import numpy as np

    for marker in _markers(out):
        record = json.loads(marker.read_text())
        for window in record["windows"]:
            if window["kept"]:
                assert scipy.io.loadmat(out / window["path"])["feats"].shape[0] == 12
    for cache in _cached(out):
        with np.load(cache) as z:
            assert z["raw"].ndim == 2


@pytest.mark.slow  # five runs of the preprocessing and feature stages: about 1.5 minutes on 2 cores
def test_killed_preprocessing_and_feature_extraction_resume_to_identical_outputs(tmp_path):
    reference, resumed = tmp_path / "reference", tmp_path / "resumed"
    _run(reference)
    expected = _tree(reference)
    assert len([k for k in expected if k.startswith("records/")]) == N_RECORDS

    # 1. killed while preprocessing with --features: the workers cache a record's features before its marker
    _kill_when(resumed, lambda: len(_markers(resumed)) >= 2)
    done = len(_markers(resumed))
    assert not (resumed / "preprocess.json").exists() and 2 <= done < N_RECORDS
    assert {m.stem for m in _markers(resumed)} <= {c.stem for c in _cached(resumed)}
    _assert_finished_files_whole(resumed)

    # 2. finished without --features (no caches for the other records), then the feature stage alone
    # (python -m physioclr_ext.features) killed once it re-read at least one of them, before any table
    _run(resumed, features=False)
    _kill_when(resumed, lambda: len(_cached(resumed)) > done, _features_command(resumed))
    cached = len(_cached(resumed))
    assert not (resumed / "features" / "train.npz").exists() and done < cached < N_RECORDS
    _assert_finished_files_whole(resumed)

    # 3. rerun with --features to the end: nothing to preprocess, the feature stage re-reads the rest
    _run(resumed)
    summary = json.loads((resumed / "preprocess.json").read_text())
    assert summary["records"]["skipped_existing"] == N_RECORDS  # every marker written by the runs before
    assert summary["features"]["records"] == {"total": N_RECORDS, "computed": N_RECORDS - cached, "cached": cached}
    got = _tree(resumed)
    assert sorted(got) == sorted(expected)
    assert {name for name in expected if got[name] != expected[name]} == {"preprocess.json", "features/summary.json"}
    assert _without_counts(json.loads(got["preprocess.json"])) == _without_counts(
        json.loads(expected["preprocess.json"])
    )
    features_summary, reference_features = (json.loads(t["features/summary.json"]) for t in (got, expected))
    assert features_summary.pop("records") == summary["features"]["records"]
    assert reference_features.pop("records") == {"total": N_RECORDS, "computed": N_RECORDS, "cached": 0}
    assert features_summary == reference_features


def test_a_killed_preprocessing_run_redoes_only_the_unfinished_records(tmp_path):
    """Preprocessing alone (no features): killed after two records, rerun; the rerun takes the finished records
    from their markers and every output equals an uninterrupted run's, byte for byte."""
    reference, resumed = tmp_path / "reference", tmp_path / "resumed"

    def command(out: Path) -> list[str]:
        return [c for c in _command(out) if c not in ("--features", "--features-pca", "none")]

    proc = subprocess.run(command(reference), env=_env(), capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    killed = subprocess.Popen(command(resumed), env=_env(), stdout=subprocess.DEVNULL, start_new_session=True)
    while len(_markers(resumed)) < 2 and killed.poll() is None:
        time.sleep(0.01)
    if killed.poll() is None:
        os.killpg(killed.pid, signal.SIGKILL)
    killed.wait()
    assert killed.returncode == -signal.SIGKILL, "the run ended before it could be killed"
    done = len(_markers(resumed))
    assert 2 <= done < N_RECORDS and not (resumed / "preprocess.json").exists()
    _assert_finished_files_whole(resumed)
    proc = subprocess.run(command(resumed), env=_env(), capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    summary = json.loads((resumed / "preprocess.json").read_text())
    assert (summary["records"]["skipped_existing"], summary["records"]["processed"]) == (done, N_RECORDS - done)
    expected, got = _tree(reference), _tree(resumed)
    assert sorted(got) == sorted(expected)
    assert [name for name in expected if got[name] != expected[name]] == ["preprocess.json"]
    assert _without_counts(json.loads(got["preprocess.json"])) == _without_counts(
        json.loads(expected["preprocess.json"])
    )
