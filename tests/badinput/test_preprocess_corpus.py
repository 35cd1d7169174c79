"""Bad-input corpus, preprocessing stage (issue 15): one bad record of each kind beside two good real
records. Each bad record is failed with a one-line reason naming the file and the fix, or skipped / flagged
and counted under a named reason in ``preprocess.json``, and the good records' windows are byte-identical to
a run without it. Run-level kinds (split file, output folder, full disk, empty split, ``--strict``) end in
one line on stderr and the exit code a pipeline can test.
"""

from __future__ import annotations

import csv
import json
import os
import resource
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from physioclr_ext.preprocess import PreprocessConfig, run
from physioclr_ext.preprocess.__main__ import main

from ._corpus import BAD, FS, GOOD, NPY_KINDS, RECORD_KINDS, copy_good, copy_source, good_npy

SPLITS = {GOOD[0]: "train", GOOD[1]: "valid", BAD: "test"}


def _split_file(folder: Path, splits: dict[str, str] = SPLITS) -> Path:
    path = folder / "splits.csv"
    path.write_text("record,split\n" + "".join(f"{r},{s}\n" for r, s in splits.items()))
    return path


def _config(src: Path, out: Path, **extra) -> PreprocessConfig:
    # A fixed split and the whole label table, so the bad record changes nothing of the good ones.
    options = dict(
        input=str(src),
        output=str(out),
        format="physionet2021",
        split="file",
        split_file=str(_split_file(src.parent)),
        label_set="table",
        workers=1,
        progress=False,
    )
    return PreprocessConfig(**{**options, **extra})


def _good_outputs(out: Path) -> dict[str, bytes]:
    """The good records' window files and windows.csv rows, byte for byte."""
    files = {p.name: p.read_bytes() for p in sorted((out / "mat").glob("A*.mat"))}
    with open(out / "windows.csv") as fh:
        rows = [line for line in fh.read().splitlines() if line.startswith(GOOD)]
    return {**files, "windows.csv": "\n".join(rows).encode()}


@pytest.fixture(scope="module")
def baseline(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    root = tmp_path_factory.mktemp("baseline")
    src = copy_good(root / "in")
    run(_config(src, root / "out"))
    outputs = _good_outputs(root / "out")
    assert sum(name.endswith(".mat") for name in outputs) == 5  # 15 s + 10 s in 5 s windows
    return outputs


@pytest.mark.parametrize("kind", sorted(RECORD_KINDS))
def test_bad_record(kind, tmp_path, baseline):
    build, (outcome, detail) = RECORD_KINDS[kind]
    src = copy_good(tmp_path / "in")
    build(src)
    summary = run(_config(src, tmp_path / "out"))
    failed = {f["record"]: f["reason"] for f in summary["failed_records"]}
    if outcome == "failed":
        assert list(failed) == [BAD] and summary["records"]["failed"] == 1
        reason = failed[BAD]
        assert detail in reason and "\n" not in reason
        assert "Traceback" not in reason and "KeyError" not in reason and "sampto" not in reason
    else:
        assert not failed
    if outcome == "flag":  # some of the record's windows dropped, under the named reason
        assert summary["quality"]["dropped_by_reason"].get(detail, 0) >= 1
    if outcome == "missing_lead":
        assert detail in summary["missing_leads"]["records"][BAD]
    if outcome == "too_short":
        assert summary["too_short_records"] == {BAD: 3.0} and summary["records"]["too_short"] == 1
    if outcome == "duplicate":
        assert summary["lead_names"]["duplicates"] == {BAD: {detail: 2}}
    if outcome == "unmapped":
        assert summary["labels"]["unmapped_codes"] == {"records_by_code": {detail: 1}, "records_without_label": [BAD]}
    assert _good_outputs(tmp_path / "out") == baseline


@pytest.mark.parametrize("kind", sorted(NPY_KINDS))
def test_bad_npy(kind, tmp_path):
    make, reason = NPY_KINDS[kind]
    src = good_npy(tmp_path / "in")
    options = dict(output=str(tmp_path / "out"), input_sample_rate=FS, workers=1, progress=False, split="file")
    base = run(PreprocessConfig(input=str(src), **options, split_file=str(_split_file(tmp_path))))
    np.save(src / f"{BAD}.npy", make(), allow_pickle=True)
    options["output"] = str(tmp_path / "out_bad")
    summary = run(PreprocessConfig(input=str(src), **options, split_file=str(_split_file(tmp_path))))
    failed = {f["record"]: f["reason"] for f in summary["failed_records"]}
    assert list(failed) == [BAD] and reason in failed[BAD] and "\n" not in failed[BAD]
    assert summary["splits"]["train"] == base["splits"]["train"]
    for mat in sorted((tmp_path / "out" / "mat").glob("*.mat")):
        assert (tmp_path / "out_bad" / "mat" / mat.name).read_bytes() == mat.read_bytes()


def test_unknown_dx_code_is_reported_on_the_console(tmp_path, capsys):
    src = copy_good(tmp_path / "in")
    RECORD_KINDS["unknown_dx_code"][0](src)
    assert main(["--input", str(src), "--output", str(tmp_path / "out"), "--no-progress", "--workers", "1"]) == 0
    assert "#Dx code(s) outside the scored classes (999" in capsys.readouterr().out


def test_split_file_listing_a_record_twice(tmp_path, capsys):
    src = copy_good(tmp_path / "in")
    split = _split_file(tmp_path, {GOOD[0]: "train", GOOD[1]: "valid"})
    split.write_text(split.read_text() + f"{GOOD[0]},test\n")
    code = main(["--input", str(src), "--output", str(tmp_path / "out"), "--split", "file", "--split-file", str(split)])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "\n" not in err
    assert f"{split}: 1 record(s) listed in two splits ({GOOD[0]} on lines 2, 4); keep one line each" in err


def test_output_folder_cannot_be_created(tmp_path, capsys):
    src = copy_good(tmp_path / "in")
    (tmp_path / "a_file").write_text("")
    code = main(["--input", str(src), "--output", str(tmp_path / "a_file" / "out"), "--no-progress"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "\n" not in err and "cannot create the output folder" in err and "--output" in err


def test_empty_split_warns_and_strict_fails(tmp_path, capsys):
    src = copy_good(tmp_path / "in")
    split = _split_file(tmp_path, {GOOD[0]: "train", GOOD[1]: "test"})
    args = ["--input", str(src), "--output", str(tmp_path / "out"), "--split", "file", "--split-file", str(split)]
    assert main([*args, "--no-progress"]) == 0
    err = capsys.readouterr().err
    assert "warning: valid.tsv is empty" in err and "assign records to it in --split-file" in err
    assert main([*args, "--no-progress", "--strict"]) == 1
    assert "error: --strict: valid.tsv is empty" in capsys.readouterr().err


def test_strict_exits_nonzero_on_a_failed_or_skipped_record(tmp_path, capsys):
    src = copy_good(tmp_path / "in")
    copy_source(src)  # a good third record for the test split
    args = ["--input", str(src), "--output", str(tmp_path / "out"), "--no-progress", "--workers", "1"]
    args += ["--split", "file", "--split-file", str(_split_file(tmp_path))]
    assert main([*args, "--strict"]) == 0  # nothing skipped: strict passes
    RECORD_KINDS["truncated_signal_file"][0](src)
    args[3] = str(tmp_path / "out2")  # resume keys do not see an input file change: a fresh output
    assert main(args) == 0
    capsys.readouterr()
    assert main([*args, "--strict"]) == 1
    err = capsys.readouterr().err
    assert "error: --strict: 1 record(s) failed" in err and f"FAILED {BAD}: unreadable" in err


def _limit_file_size() -> None:
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG instead of killing
    resource.setrlimit(resource.RLIMIT_FSIZE, (20_000, 20_000))


@pytest.mark.skipif(sys.platform != "linux", reason="RLIMIT_FSIZE simulation of a full disk is Linux-only")
def test_full_output_directory(tmp_path):
    src = copy_good(tmp_path / "in")
    cmd = [sys.executable, "-m", "physioclr_ext.preprocess", "--input", str(src), "--output", str(tmp_path / "out")]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(
        [*cmd, "--no-progress", "--workers", "1"], capture_output=True, text=True, preexec_fn=_limit_file_size, env=env
    )
    assert done.returncode == 2 and "Traceback" not in done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "File too large" in lines[0], done.stderr


def test_windows_csv_is_readable_after_a_bad_record(tmp_path):
    """The summary of a run with a failed record still counts every good window."""
    src = copy_good(tmp_path / "in")
    RECORD_KINDS["rate_negative"][0](src)
    summary = run(_config(src, tmp_path / "out"))
    with open(tmp_path / "out" / "windows.csv") as fh:
        assert {r["record"] for r in csv.DictReader(fh)} == set(GOOD)
    assert (
        json.loads((tmp_path / "out" / "preprocess.json").read_text())["records"]["succeeded"]
        == summary["records"]["succeeded"]
    )
