"""Benchmark of the ECG preprocessing pipeline on the shared MIT-BIH and LUDB data.

Usage (from the repository root)::

    python benchmarks/preprocess.py [--data-root ../shared/data] [--workers N] [--preset NAME]

Each dataset is preprocessed into a temporary folder (removed afterwards,
or kept under --output) with the default options (or --preset); prints a table of
records, windows, wall-clock seconds and records per second.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from physioclr_ext.preprocess import PreprocessConfig, run  # noqa: E402  (after sys.path)
from physioclr_ext.preprocess.config import PRESETS, default_workers  # noqa: E402

DATASETS = {"mitdb": "mitdb", "ludb": "ludb"}


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


def print_table(rows: list[dict[str, float | str | int]]) -> None:
    header = ["dataset", "records", "failed", "windows", "seconds", "records/s", "workers"]
    print(" | ".join(f"{h:>9s}" for h in header))
    print("-|-".join("-" * 9 for _ in header))
    for row in rows:
        cells = [f"{row[h]:>9.2f}" if isinstance(row[h], float) else f"{row[h]!s:>9s}" for h in header]
        print(" | ".join(cells))


def main() -> None:
    args = parse_args()
    root = Path(args.data_root)
    rows = []
    with tempfile.TemporaryDirectory(prefix="preprocess_bench_") as tmp:
        base = Path(args.output) if args.output else Path(tmp)
        for name in args.datasets.split(","):
            rows.append(bench(name, root / DATASETS[name], base / name, args))
    print_table(rows)


if __name__ == "__main__":
    main()
