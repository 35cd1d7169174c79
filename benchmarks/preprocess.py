"""Benchmark of the ECG preprocessing pipeline on the shared MIT-BIH and LUDB data.

Usage (from the repository root)::

    python benchmarks/preprocess.py [--data-root ../shared/data] [--workers N] [--preset NAME]
    python benchmarks/preprocess.py --compare BASELINE [--repeats 3] [--datasets mitdb]
    python benchmarks/preprocess.py --feature-passes [--repeats 3] [--datasets ludb]

Each dataset is preprocessed into a temporary folder (removed afterwards,
or kept under --output) with the default options (or --preset); prints a table of
records, windows, wall-clock seconds and records per second.

``--compare BASELINE`` times another copy of the package side by side with this one, e.g. the last commit
(``mkdir /tmp/base && git archive HEAD physioclr_ext | tar -x -C /tmp/base``): each run is a fresh process
(``PYTHONPATH`` = the copy, imports not timed) writing to the same output folder, the two alternate
``--repeats`` times, and the table gives the median wall-clock and CPU seconds (the run's process and its
workers: less sensitive to other jobs on a shared machine than the wall clock), the ratio of the medians
and whether the two wrote the same bytes (SHA-256 of every output file, compared on the first repeat). The
previous run's output is removed just before each run, or with ``--fresh-output`` moved aside and removed after
the last run (each run then writes into a new folder, as a first run does: see :func:`timed_run`).

``--feature-passes`` times, the same way, preprocessing with the feature stage (``--features``) in two passes
(``run``, then ``extract_directory`` re-reading and re-filtering every record: the entry point before issue 14)
against one pass (``preprocess_and_extract``: the features computed in the preprocessing workers), both with
this copy of the package.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from physioclr_ext.preprocess import PreprocessConfig, run  # noqa: E402  (after sys.path)
from physioclr_ext.preprocess.config import PRESETS, default_workers  # noqa: E402

DATASETS = {"mitdb": "mitdb", "ludb": "ludb"}

# One timed run in a fresh process: run(config) (mode "run"), or with the feature stage in two passes or one
# (modes "two-pass", "one-pass"), then its wall-clock and CPU seconds (self + workers) as JSON.
_CHILD = """
import json, resource, sys, time
from physioclr_ext.preprocess import PreprocessConfig, run
mode = sys.argv[5]
config = PreprocessConfig.from_preset(None if sys.argv[4] == "-" else sys.argv[4], input=sys.argv[1],
                                      output=sys.argv[2], workers=int(sys.argv[3]), progress=False,
                                      **({} if mode == "run" else {"features": True, "features_pca": "auto"}))
if mode != "run":
    from physioclr_ext.features.pipeline import extract_directory, feature_options, preprocess_and_extract
    from physioclr_ext.preprocess.pipeline import write_summary
def two_pass(config):
    summary = run(config)
    summary["features"] = extract_directory(config.output, feature_options(config))
    write_summary(config.output, summary)
    return summary
def cpu():
    return sum(r.ru_utime + r.ru_stime for r in map(resource.getrusage, (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)))
cpu0, start = cpu(), time.perf_counter()
summary = run(config) if mode == "run" else two_pass(config) if mode == "two-pass" else preprocess_and_extract(config)
seconds, cpu_seconds = time.perf_counter() - start, cpu() - cpu0
windows = sum(s["windows"] for s in summary["splits"].values())
print(json.dumps({"records": summary["records"]["succeeded"], "failed": summary["records"]["failed"],
                  "windows": windows, "seconds": seconds, "cpu": cpu_seconds}))
"""


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--data-root",
        default=str(REPO.parent / "shared" / "data"),
        help="folder holding mitdb/ and ludb/ (default: ../shared/data)",
    )
    parser.add_argument("--datasets", default="mitdb,ludb", help="comma-separated subset of mitdb,ludb")
    parser.add_argument("--workers", type=int, default=default_workers())
    parser.add_argument("--preset", choices=list(PRESETS), default=None)
    parser.add_argument(
        "--output", default=None, help="write outputs under this folder and keep them (default: a temp folder)"
    )
    parser.add_argument(
        "--compare",
        default=None,
        metavar="BASELINE",
        help="folder holding another copy of physioclr_ext/ to time side by side with this one",
    )
    parser.add_argument(
        "--feature-passes",
        action="store_true",
        help="time --features in two passes (re-reading every record) against one (in the workers)",
    )
    parser.add_argument("--repeats", type=int, default=3, help="alternating runs of each variant (median)")
    parser.add_argument(
        "--fresh-output",
        action="store_true",
        help="move the previous run's output aside (removed after the last run, which can take minutes: the "
        "files are on disk by then) instead of removing it just before the next run, so that each run writes "
        "into a new folder as a first run does (see timed_run)",
    )
    return parser.parse_args()


def bench(name: str, source: Path, out: Path, args: argparse.Namespace) -> dict[str, float | str | int]:
    config = PreprocessConfig.from_preset(
        args.preset, input=str(source), output=str(out), workers=args.workers, progress=False
    )
    start = time.perf_counter()
    summary = run(config)
    seconds = time.perf_counter() - start
    records = summary["records"]["succeeded"]
    windows = sum(s["windows"] for s in summary["splits"].values())
    return {
        "dataset": name,
        "records": records,
        "failed": summary["records"]["failed"],
        "windows": windows,
        "seconds": seconds,
        "records/s": records / seconds,
        "workers": args.workers,
    }


def print_table(rows: list[dict[str, Any]], header: list[str]) -> None:
    print(" | ".join(f"{h:>9s}" for h in header))
    print("-|-".join("-" * 9 for _ in header))
    for row in rows:
        cells = [f"{row[h]:>9.2f}" if isinstance(row[h], float) else f"{row[h]!s:>9s}" for h in header]
        print(" | ".join(cells))


def timed_run(
    package_root: Path, source: Path, out: Path, args: argparse.Namespace, mode: str = "run"
) -> dict[str, Any]:
    """One run (``mode`` as in ``_CHILD``) of the copy of the package under ``package_root`` in a fresh process
    into an empty ``out``: the previous run's ``out`` is removed first, or with ``--fresh-output`` moved aside
    (removed by :func:`remove_set_aside` after the last run).

    Why ``--fresh-output``: on ext4 without a journal (``__ext4_new_inode`` -> ``recently_deleted``) creating a
    file skips every inode freed in the last 60 s (up to 360 s), so a run that creates 17,297 files just after
    the previous run deleted as many pays CPU seconds of inode search in the kernel (measured: 17,297 empty
    files in 0.45 s of system time on a settled file system, 7.0 s just after deleting 17,297) that a first
    run into a new folder does not, and that depends on what the run before left behind.
    """
    if not args.fresh_output:
        shutil.rmtree(out, ignore_errors=True)
    elif out.exists():
        out.rename(out.with_name(f"{out.name}.set-aside-{time.time_ns()}"))
    env = {**os.environ, "PYTHONPATH": str(package_root)}
    command = [sys.executable, "-c", _CHILD, str(source), str(out), str(args.workers), args.preset or "-", mode]
    proc = subprocess.run(command, env=env, capture_output=True, text=True, cwd=tempfile.gettempdir())
    if proc.returncode != 0:
        raise RuntimeError(f"run of {package_root} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def remove_set_aside(out: Path) -> None:
    """Remove the earlier runs' outputs that :func:`timed_run` moved aside."""
    for old in out.parent.glob(f"{out.name}.set-aside-*"):
        shutil.rmtree(old, ignore_errors=True)


def digest(folder: Path) -> dict[str, str]:
    """SHA-256 of every file under ``folder`` by relative path."""
    return {
        str(path.relative_to(folder)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }


def compare(name: str, source: Path, out: Path, args: argparse.Namespace) -> list[dict[str, Any]]:
    """Alternate the baseline and this copy ``args.repeats`` times on one dataset; two table rows. With
    ``args.feature_passes``, the two-pass feature stage (the baseline) and the one-pass, both of this copy."""
    if args.feature_passes:
        copies = {"two-pass": (REPO, "two-pass"), "one-pass": (REPO, "one-pass")}
    else:
        copies = {"baseline": (Path(args.compare).resolve(), "run"), "this": (REPO, "run")}
    base = next(iter(copies))
    runs: dict[str, list[dict[str, Any]]] = {label: [] for label in copies}
    digests: dict[str, dict[str, str]] = {}
    for repeat in range(args.repeats):
        order = list(copies) if repeat % 2 == 0 else list(copies)[::-1]
        for label in order:
            package_root, mode = copies[label]
            result = timed_run(package_root, source, out, args, mode)
            runs[label].append(result)
            print(
                f"  {name} {label} repeat {repeat + 1}: {result['seconds']:.2f} s, CPU {result['cpu']:.2f} s",
                flush=True,
            )
            if label not in digests:
                digests[label] = digest(out)
    remove_set_aside(out)
    first, second = (digests[label] for label in copies)
    same = first == second
    if not same:
        differing = sorted(k for k in first.keys() | second.keys() if first.get(k) != second.get(k))
        print(f"  {name}: {len(differing)} files differ, e.g. {differing[:5]}")
    rows = []
    for label, results in runs.items():
        seconds = statistics.median(r["seconds"] for r in results)
        cpu = statistics.median(r["cpu"] for r in results)
        base_seconds = statistics.median(r["seconds"] for r in runs[base])
        base_cpu = statistics.median(r["cpu"] for r in runs[base])
        rows.append(
            {
                "dataset": name,
                "copy": label,
                "records": results[0]["records"],
                "windows": results[0]["windows"],
                "seconds": seconds,
                "CPU s": cpu,
                "records/s": results[0]["records"] / seconds,
                "speed-up": base_seconds / seconds,
                "CPU ratio": base_cpu / cpu,
                "same files": "yes" if same else "NO",
                "workers": args.workers,
            }
        )
    return rows


def main() -> None:
    args = parse_args()
    root = Path(args.data_root)
    rows = []
    with tempfile.TemporaryDirectory(prefix="preprocess_bench_") as tmp:
        base = Path(args.output) if args.output else Path(tmp)
        for name in args.datasets.split(","):
            if args.compare or args.feature_passes:
                rows += compare(name, root / DATASETS[name], base / name, args)
            else:
                rows.append(bench(name, root / DATASETS[name], base / name, args))
    if args.compare or args.feature_passes:
        baseline = "two-pass features" if args.feature_passes else Path(args.compare).resolve()
        print(f"median of {args.repeats} alternating runs; baseline: {baseline}")
        header = ["dataset", "copy", "records", "windows", "seconds", "CPU s", "records/s", "speed-up"]
        print_table(rows, header + ["CPU ratio", "same files", "workers"])
    else:
        print_table(rows, ["dataset", "records", "failed", "windows", "seconds", "records/s", "workers"])


if __name__ == "__main__":
    main()
