"""Benchmark of the physiological feature extraction (neurokit2) on the shared LUDB and MIT-BIH data.

Usage (from the repository root)::

    python benchmarks/features.py [--data-root ../shared/data] [--mitdb-records 4] [--workers 1,2]
                                  [--delineation dwt,prominence,cwt] [--skip-timing] [--skip-agreement]

Preprocesses LUDB (all 200 records) and a few MIT-BIH records (fairseq_signals preset: 500 Hz, 5-s
windows) into a temporary folder, then times ``extract_directory`` with 1 and 2 workers (cache cleared
before each run, default delineation) and prints records/s and windows/s. Then prints, per delineation
method, the agreement of PR, QRS and QT with LUDB's manual delineation (lead II, all records, raw signal).
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from physioclr_ext.features import FeatureOptions, extract_directory  # noqa: E402  (after sys.path)
from physioclr_ext.features.agreement import agreement_table  # noqa: E402
from physioclr_ext.features.extract import DELINEATIONS  # noqa: E402
from physioclr_ext.preprocess import PreprocessConfig, run  # noqa: E402


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-root", default=str(REPO.parent / "shared" / "data"))
    parser.add_argument("--mitdb-records", type=int, default=4, help="MIT-BIH records to use (30 min each)")
    parser.add_argument("--workers", default="1,2", help="comma-separated worker counts")
    parser.add_argument(
        "--delineation",
        default=",".join(DELINEATIONS),
        help=f"comma-separated delineation methods to compare on LUDB (default: all of {DELINEATIONS})",
    )
    parser.add_argument("--skip-timing", action="store_true", help="only the LUDB agreement (no preprocessing)")
    parser.add_argument("--skip-agreement", action="store_true")
    return parser.parse_args()


def prepare(name: str, source: Path, tmp: Path, records: int | None) -> Path:
    if records is not None:
        subset = tmp / f"{name}_in"
        subset.mkdir()
        for hea in sorted(source.glob("*.hea"))[:records]:
            for f in source.glob(hea.stem + ".*"):
                shutil.copy(f, subset / f.name)
        source = subset
    out = tmp / name
    run(PreprocessConfig.from_preset("fairseq_signals", input=str(source), output=str(out), progress=False))
    return out


def bench(name: str, data: Path, workers: int) -> dict[str, float | str | int]:
    shutil.rmtree(data / "features", ignore_errors=True)
    start = time.perf_counter()
    summary = extract_directory(data, FeatureOptions(workers=workers, pca=50, progress=False))
    seconds = time.perf_counter() - start
    windows = sum(s["windows"] for s in summary["splits"].values())
    valid = sum(s["valid"] for s in summary["splits"].values())
    records = summary["records"]["total"]
    return {
        "dataset": name,
        "workers": workers,
        "records": records,
        "windows": windows,
        "valid": valid,
        "seconds": seconds,
        "records/s": records / seconds,
        "windows/s": windows / seconds,
    }


def print_table(rows: list[dict[str, float | str | int]], header: list[str]) -> None:
    print(" | ".join(f"{h:>12s}" for h in header))
    print("-|-".join("-" * 12 for _ in header))
    for row in rows:
        print(" | ".join(f"{row[h]:>12.2f}" if isinstance(row[h], float) else f"{row[h]!s:>12s}" for h in header))


def main() -> None:
    args = parse_args()
    root = Path(args.data_root)
    if not args.skip_timing:
        timing(root, args)
    if not args.skip_agreement:
        agreement(root, args.delineation.split(","))


def timing(root: Path, args: argparse.Namespace) -> None:
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        data = {
            "ludb": prepare("ludb", root / "ludb", Path(tmp), None),
            "mitdb": prepare("mitdb", root / "mitdb", Path(tmp), args.mitdb_records),
        }
        for name, path in data.items():
            for workers in (int(w) for w in args.workers.split(",")):
                rows.append(bench(name, path, workers))
    print_table(rows, ["dataset", "workers", "records", "windows", "valid", "seconds", "records/s", "windows/s"])


def agreement(root: Path, methods: list[str]) -> None:
    records = sorted({p.with_suffix("") for p in (root / "ludb").rglob("*.hea")})
    rows = []
    for method in methods:
        start = time.perf_counter()
        table = agreement_table(records, delineation=method)
        print(
            f"\nLUDB lead II, {len(records)} records, delineation={method} ({time.perf_counter() - start:.0f} s): "
            f"{table['beats']['matched']} of {table['beats']['annotated']} annotated QRS matched by a detected "
            "R-peak; detected - annotated (ms):"
        )
        rows += [{"method": method, "interval": k, **v} for k, v in table.items() if k != "beats"]
    print_table(rows, ["method", "interval", "beats", "median_abs_ms", "mean_ms", "within_40ms"])


if __name__ == "__main__":
    main()
