"""Peak memory of preprocessing against the number of records: all of MIT-BIH against half of it.

Usage (from the repository root)::

    nice -n 10 python benchmarks/preprocess_memory.py [--input ../shared/data/mitdb] [--workers 2]
        [--extra "--packed"] [--repeats 1]

Links the records of ``--input`` (all of them, and every second one) into two temporary folders, runs
``python -m physioclr_ext.preprocess --input DIR --output OUT --workers N`` (default preset, plus
``--extra``) on each in a fresh wrapper process, and reports per run

* the largest peak RSS of any one process of the tree (the main process or a worker): ``ru_maxrss`` of
  ``RUSAGE_CHILDREN`` in the wrapper, which covers every descendant that was waited for;
* the peak of the tree's summed RSS, sampled every 20 ms from ``/proc`` (pages shared between the main
  process and its forked workers are counted in each, so this overstates the real total; a growth with the
  record count would still show);
* wall time and the windows written (lines of the manifests).

Streamed preprocessing holds one record per worker at a time, so both peaks stay level when the record
count doubles while the time and the windows written double.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

REPO = Path(__file__).resolve().parents[1]
WFDB_SUFFIXES = (".hea", ".dat", ".atr")


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--input", default=str(REPO.parent / "shared" / "data" / "mitdb"))
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--extra", default="", help="further preprocessing options, one string")
    parser.add_argument("--repeats", type=int, default=1, help="runs per subset (interleaved); the table shows each")
    parser.add_argument("--child", nargs=2, metavar=("INPUT", "OUTPUT"), help=argparse.SUPPRESS)
    return parser.parse_args(argv)


# ------------------------------------------------------------------------------------------- records
def record_names(root: Path) -> List[str]:
    """Sorted names of the WFDB records (``*.hea``) in ``root``."""
    return sorted(p.stem for p in root.glob("*.hea"))


def every_other(names: Sequence[str]) -> List[str]:
    """Every second name, starting with the first: half of the records, spread over the whole list."""
    return list(names[::2])


def link_records(source: Path, names: Sequence[str], target: Path) -> None:
    """Symbolic links in ``target`` to the header, signal and annotation files of ``names``."""
    target.mkdir(parents=True, exist_ok=True)
    for name in names:
        for suffix in WFDB_SUFFIXES:
            path = source / f"{name}{suffix}"
            if path.exists():
                (target / path.name).symlink_to(path)


# ------------------------------------------------------------------------------------------- memory
def parents() -> Dict[int, int]:
    """pid -> parent pid of every process visible in ``/proc``."""
    out = {}
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                with open(f"/proc/{entry.name}/stat") as f:
                    stat = f.read()
            except OSError:
                continue
            out[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
    return out


def descendants(root: int, parent_of: Dict[int, int]) -> List[int]:
    """``root`` and every process below it in ``parent_of`` (pid -> parent pid)."""
    children: Dict[int, List[int]] = {}
    for pid, ppid in parent_of.items():
        children.setdefault(ppid, []).append(pid)
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo.extend(children.get(pid, []))
    return found


def rss_mib(pid: int) -> float:
    """Resident set size of ``pid`` in MiB; 0 when it has gone."""
    try:
        with open(f"/proc/{pid}/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    except (OSError, IndexError):
        return 0.0


def run_and_sample(command: List[str], interval: float = 0.02) -> Dict[str, Any]:
    """Run ``command``; its wall time, the sampled peak of its tree's summed RSS, and the largest
    per-process peak RSS of the tree (``RUSAGE_CHILDREN``; call once per fresh process)."""
    start = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    tree_peak, most_procs = 0.0, 0
    while process.poll() is None:
        pids = descendants(process.pid, parents())
        tree_peak = max(tree_peak, sum(rss_mib(pid) for pid in pids))
        most_procs = max(most_procs, len(pids))
        time.sleep(interval)
    stderr = process.stderr.read() if process.stderr else ""
    return {
        "returncode": process.returncode,
        "seconds": time.perf_counter() - start,
        "tree_peak_mib": tree_peak,
        "process_peak_mib": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024,
        "processes": most_procs,
        "stderr_tail": stderr.strip().splitlines()[-3:],
    }


def count_windows(output: Path) -> int:
    """Windows listed in the manifests ``output/*.tsv`` (their first line is the root folder)."""
    return sum(max(len(p.read_text().splitlines()) - 1, 0) for p in output.glob("*.tsv"))


# ------------------------------------------------------------------------------------------- table
def format_table(rows: Sequence[Dict[str, Any]]) -> str:
    """Rows ``{subset, records, windows, seconds, process_peak_mib, tree_peak_mib}``, and each one's ratio to
    the first row."""
    head = f"{'subset':<8}{'records':>8}{'windows':>9}{'seconds':>9}{'process peak MiB':>18}{'tree peak MiB':>15}"
    lines = [head, "-" * len(head)]
    for row in rows:
        lines.append(
            f"{row['subset']:<8}{row['records']:>8}{row['windows']:>9}{row['seconds']:>9.1f}"
            f"{row['process_peak_mib']:>18.0f}{row['tree_peak_mib']:>15.0f}"
        )
    first, last = rows[0], rows[-1]
    if first["process_peak_mib"] > 0 and first["tree_peak_mib"] > 0:
        lines.append(
            f"{'ratio':<8}{last['records'] / first['records']:>8.2f}{last['windows'] / max(first['windows'], 1):>9.2f}"
            f"{last['seconds'] / first['seconds']:>9.2f}{last['process_peak_mib'] / first['process_peak_mib']:>18.2f}"
            f"{last['tree_peak_mib'] / first['tree_peak_mib']:>15.2f}"
        )
    return "\n".join(lines)


def run_child(input_dir: Path, output: Path, args: argparse.Namespace) -> Dict[str, Any]:
    """One preprocessing run in a fresh wrapper process (its ``RUSAGE_CHILDREN`` holds this run only)."""
    command = [sys.executable, __file__, "--child", str(input_dir), str(output), "--workers", str(args.workers)]
    command.append(f"--extra={args.extra}")  # "--extra --features" would read --features as an option
    done = subprocess.run(command, capture_output=True, text=True, check=True)
    result: Dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    args = parse_args()
    if args.child:
        input_dir, output = args.child
        command = [sys.executable, "-m", "physioclr_ext.preprocess", "--input", input_dir, "--output", output]
        command += ["--workers", str(args.workers), "--no-progress", *shlex.split(args.extra)]
        print(json.dumps(run_and_sample(command)))
        return
    names = record_names(Path(args.input))
    subsets = {"half": every_other(names), "all": names}
    rows = []
    with tempfile.TemporaryDirectory(prefix="preprocess_memory_") as tmp:
        for name, subset in subsets.items():
            link_records(Path(args.input), subset, Path(tmp) / name / "input")
        for repeat in range(args.repeats):
            for name, subset in subsets.items():
                output = Path(tmp) / name / f"out{repeat}"
                result = run_child(Path(tmp) / name / "input", output, args)
                if result["returncode"] != 0:
                    sys.exit(f"preprocessing {name} failed: {result['stderr_tail']}")
                rows.append({"subset": name, "records": len(subset), "windows": count_windows(output), **result})
    print(f"python -m physioclr_ext.preprocess on {args.input}, --workers {args.workers} {args.extra}".rstrip())
    print(format_table(rows))


if __name__ == "__main__":
    main()
