"""Preprocessing side by side with fairseq-signals' own PhysioNet 2021 pipeline, on the same records.

Usage (from the repository root)::

    python benchmarks/vs_fairseq_preprocess.py --fairseq-signals PATH [--fairseq-python PY]
        [--data ../shared/data/physionet2021] [--workers 2] [--repeats 3]

``PATH`` is a checkout of Jwoo5/fairseq-signals (never vendored, never fetched here); ``PY`` a Python that
imports ``fairseq_signals`` and ``pandarallel`` (fairseq-signals runs only on Python <= 3.10). Its pipeline for
PhysioNet 2021 v1.0.3 (``scripts/preprocess/ecg/README.md``) is two commands: ``physionet2021_records.py``
lists the records, ``physionet2021_signals.py`` reads each with ``wfdb.rdsamp`` and saves it (``org/``),
resamples it to 500 Hz by linear interpolation and z-scores each lead over the whole record
(``preprocessed/``), and saves every whole 5 s segment (``segmented/``), each step over ``--nb_workers``
processes (pandarallel). Its ``--no_standardization`` crashes (``preprocess_mat`` saves a ``mean`` it never
computed), so it runs with its defaults. Its older ``fairseq_signals/data/ecg/preprocess/
preprocess_physionet2021.py`` fails on v1.0.3 headers (it asserts ``# Age: 76``; the files say ``#Age: 76``).

This package's run (``--preset fairseq_signals --no-filter --normalize none --quality keep``: 500 Hz, 5 s,
12 leads, millivolts) makes the same windows and also writes the splits, labels, manifests and CMSC pairs
that fairseq-signals makes with further scripts (``splits.py``, ``physionet2021_labels.py``,
``manifests.py``), not timed here: the ratio favours fairseq-signals. Each run is the whole command as a user
types it (fresh processes, imports included) on a tree of symbolic links laid out as the pipeline expects
(``training/<dataset>/<group>/<record>``); the two alternate ``--repeats`` times into fresh folders, and the
table gives the median wall-clock and CPU seconds (the processes and their workers), records per second and
the ratio. "Same windows" compares, on the first repeat, every window of the records already at 500 Hz
(fairseq-signals' windows un-standardised with the ``mean`` and ``std`` it stores in each file; records at
other rates are resampled differently: linear interpolation there, polyphase here) and counts all windows.
"""

from __future__ import annotations

import argparse
import csv
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Dict, List, Tuple

import numpy as np
import scipy.io

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))

from originals import checkout_commit  # noqa: E402  (the sibling helper)

SCRIPTS = Path("scripts/preprocess/ecg")


def record_rates(data: Path) -> Dict[str, int]:
    """Record name -> sampling rate, from each header's first line."""
    return {h.stem: int(float(h.read_text().split("\n", 1)[0].split()[2])) for h in data.glob("**/*.hea")}


def link_tree(data: Path, root: Path) -> Path:
    """``root/training/<dataset>/g1/<files>``: links to ``data/<dataset>/*.{mat,hea}``; returns ``root/training``."""
    training = root / "training"
    for header in data.glob("*/*.hea"):
        folder = training / header.parent.name / "g1"
        folder.mkdir(parents=True, exist_ok=True)
        for path in (header, header.with_suffix(".mat")):
            (folder / path.name).symlink_to(path.resolve())
    return training


def fairseq_commands(args: argparse.Namespace, raw: Path, out: Path) -> List[List[str]]:
    scripts = Path(args.fairseq_signals) / SCRIPTS
    common = ["--processed_root", str(out), "--raw_root", str(raw)]
    return [
        [args.fairseq_python, str(scripts / "physionet2021_records.py"), *common],
        [args.fairseq_python, str(scripts / "physionet2021_signals.py"), *common, "--nb_workers", str(args.workers)],
    ]


def ours_commands(args: argparse.Namespace, out: Path) -> List[List[str]]:
    return [
        [
            sys.executable, "-m", "physioclr_ext.preprocess", "--input", str(args.data), "--output", str(out),
            "--format", "physionet2021", "--preset", "fairseq_signals", "--no-filter", "--normalize", "none",
            "--quality", "keep", "--workers", str(args.workers), "--no-progress",
        ]
    ]  # fmt: skip


def timed(commands: List[List[str]], env: Dict[str, str], cwd: Path) -> Tuple[float, float]:
    """``(wall, cpu)`` seconds of ``commands`` run one after the other, with every process they waited for."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    for command in commands:
        done = subprocess.run(command, env=env, cwd=cwd, capture_output=True, text=True)
        if done.returncode:
            raise SystemExit(f"failed ({done.returncode}): {' '.join(command)}\n{done.stderr[-3000:]}")
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def fairseq_windows(out: Path) -> Dict[Tuple[str, int], Path]:
    """``(record, window index) -> .mat`` of fairseq-signals' ``segmented/<source>_..._<record>_<i>.mat``."""
    found = {}
    for path in (out / "segmented").glob("*.mat"):
        stem, index = path.stem.rsplit("_", 1)
        found[(stem.rsplit("_", 1)[-1], int(index))] = path
    return found


def our_windows(out: Path) -> Dict[Tuple[str, int], Path]:
    """``(record, window index) -> .mat`` from this package's ``windows.csv``."""
    with open(out / "windows.csv", newline="") as f:
        return {(row["record"], int(row["window"])): out / row["path"] for row in csv.DictReader(f)}


def unstandardised(path: Path) -> np.ndarray:
    """fairseq-signals' window in millivolts: ``feats * std + mean`` with the record's stored statistics."""
    m = scipy.io.loadmat(path)
    return np.asarray(m["feats"], dtype=np.float64) * m["std"] + m["mean"]


def same_windows(theirs: Path, ours: Path, rates: Dict[str, int], atol: float = 1e-4) -> Dict[str, Any]:
    """Window counts on all records, and the largest difference on the windows of the 500 Hz records."""
    a, b = fairseq_windows(theirs), our_windows(ours)
    native = [key for key in a if rates.get(key[0]) == 500]
    missing = [key for key in native if key not in b]
    worst = 0.0
    for key in native:
        if key in b:
            x = unstandardised(a[key])
            y = np.asarray(scipy.io.loadmat(b[key])["feats"], dtype=np.float64)
            worst = max(worst, float(np.abs(x - y).max()) if x.shape == y.shape else float("inf"))
    return {
        "windows_fairseq": len(a),
        "windows_ours": len(b),
        "compared": len(native) - len(missing),
        "missing_here": len(missing),
        "max_abs_diff_mV": worst,
        "same": not missing and worst <= atol,
    }


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--fairseq-signals", required=True, help="checkout of Jwoo5/fairseq-signals")
    p.add_argument("--fairseq-python", default=sys.executable, help="a Python that imports fairseq_signals")
    p.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data" / "physionet2021")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--repeats", type=int, default=3)
    args = p.parse_args(argv)
    if not (Path(args.fairseq_signals) / SCRIPTS / "physionet2021_signals.py").is_file():
        p.error(f"{SCRIPTS}/physionet2021_signals.py not found under --fairseq-signals {args.fairseq_signals}")
    if not args.data.is_dir():
        p.error(f"--data {args.data} is not a folder")
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    rates = record_rates(args.data)
    env = dict(os.environ, PYTHONPATH=str(REPO), PYTHONWARNINGS="ignore")
    times: Dict[str, List[Tuple[float, float]]] = {"fairseq-signals": [], "physioclr-ext": []}
    check: Dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="vs_fss_") as tmp:
        raw = link_tree(args.data, Path(tmp) / "raw")
        for repeat in range(args.repeats):
            order = ["fairseq-signals", "physioclr-ext"] if repeat % 2 == 0 else ["physioclr-ext", "fairseq-signals"]
            outs = {}
            for name in order:
                out = Path(tmp) / f"{name}_{repeat}"
                if name == "fairseq-signals":
                    times[name].append(timed(fairseq_commands(args, raw, out), env, Path(tmp)))
                else:
                    times[name].append(timed(ours_commands(args, out), env, REPO))
                outs[name] = out
                print(f"repeat {repeat + 1} {name}: {times[name][-1][0]:.1f} s wall", file=sys.stderr)
            if repeat == 0:
                check = same_windows(outs["fairseq-signals"], outs["physioclr-ext"], rates)
            for out in outs.values():
                shutil.rmtree(out, ignore_errors=True)
    n = len(rates)
    print(
        f"\n{n} records ({sum(r == 500 for r in rates.values())} at 500 Hz), workers {args.workers}, "
        f"median of {args.repeats} interleaved runs; fairseq-signals at {checkout_commit(args.fairseq_signals)}"
    )
    print("| run | wall s | CPU s | records/s |")
    print("|---|---|---|---|")
    medians = {}
    for name, values in times.items():
        wall = statistics.median(v[0] for v in values)
        cpu = statistics.median(v[1] for v in values)
        medians[name] = (wall, cpu)
        print(f"| {name} | {wall:.2f} | {cpu:.2f} | {n / wall:.1f} |")
    (fw, fc), (ow, oc) = medians["fairseq-signals"], medians["physioclr-ext"]
    print(f"\nspeed-up (fairseq-signals / physioclr-ext): wall {fw / ow:.2f}x, CPU {fc / oc:.2f}x")
    print(f"same windows: {check}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
