"""Benchmark of the physiological feature extraction (neurokit2) on the shared LUDB and MIT-BIH data.

Usage (from the repository root; ``OMP_NUM_THREADS=1`` for one core)::

    python benchmarks/features.py [--data-root ../shared/data] [--mitdb-records 4] [--workers 1,2]
                                  [--delineation dwt,prominence,cwt] [--skip-timing] [--skip-agreement]
                                  [--windows 200] [--repeats 3] [--physioclr PATH] [--skip-side-by-side]

First, side by side on the same windows (the first 5 s of ``--windows`` LUDB records, 12 leads, 500 Hz, in
mV), one process, one thread, the methods alternately ``--repeats`` times, median windows/s of:

- ``physioclr_ext``: ``extract_features`` (default ``dwt`` delineation, :mod:`physioclr_ext.features.delineate`);
- ``physioclr_ext + nk.ecg_delineate``: the same with neurokit2's own ``ecg_delineate``, as before
  ``delineate.py`` (the same features, bit for bit);
- ``PhysioCLR's neurokit2 calls``: ``nk.ecg_clean`` + ``nk.ecg_peaks`` + ``nk.ecg_delineate(method="dwt")`` on
  the mean of the leads, the calls PhysioCLR's ``scripts/extract_ecg_features.py`` makes per window: a lower
  bound of that script's time (it adds only cheap numpy), measured without a checkout;
- ``PhysioCLR extract_ecg_features.py``: the script itself (``extract_ecg_features`` + ``features_to_vector``),
  imported from a checkout of nooshinmaghsoodi/PhysioCLR given by ``--physioclr PATH`` (never fetched here).

Then preprocesses LUDB (all 200 records) and a few MIT-BIH records (fairseq_signals preset: 500 Hz, 5-s
windows) into a temporary folder, times ``extract_directory`` with 1 and 2 workers (cache cleared
before each run, default delineation) and prints records/s and windows/s. Then prints, per delineation
method, the agreement of PR, QRS and QT with LUDB's manual delineation (lead II, all records, raw signal).
"""

from __future__ import annotations

import argparse
import importlib.util
import shutil
import statistics
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from physioclr_ext.features import FeatureOptions, extract, extract_directory  # noqa: E402  (after sys.path)
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
    parser.add_argument("--skip-side-by-side", action="store_true")
    parser.add_argument("--windows", type=int, default=200, help="LUDB records (one 5-s window each) side by side")
    parser.add_argument("--repeats", type=int, default=3, help="interleaved passes side by side (median)")
    parser.add_argument(
        "--physioclr", default=None, help="a checkout of nooshinmaghsoodi/PhysioCLR: also time its extractor"
    )
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
    if not args.skip_side_by_side:
        side_by_side(root, args)
    if not args.skip_timing:
        timing(root, args)
    if not args.skip_agreement:
        agreement(root, args.delineation.split(","))


def ludb_windows(root: Path, n: int) -> list[tuple[np.ndarray, float]]:
    """The first 5 s (12 leads, mV) of the first ``n`` LUDB records."""
    import wfdb

    heads = sorted({p.with_suffix("") for p in (root / "ludb").rglob("*.hea")})[:n]
    out = []
    for head in heads:
        record = wfdb.rdrecord(str(head))
        out.append((record.p_signal.T[:, : int(5 * record.fs)], float(record.fs)))
    return out


def _nk_delineate(clean: np.ndarray, r: np.ndarray, fs: float) -> Any:
    import neurokit2 as nk

    return nk.ecg_delineate(clean, r, sampling_rate=fs, method="dwt")[1]


def _with_nk_delineation(window: np.ndarray, fs: float) -> Any:
    fast = extract.dwt_waves
    extract.dwt_waves = _nk_delineate  # type: ignore[assignment]
    try:
        return extract.extract_features(window, fs)
    finally:
        extract.dwt_waves = fast


def _physioclr_calls(window: np.ndarray, fs: float) -> Any:
    import neurokit2 as nk

    x = window.mean(axis=0)
    x = x - np.median(x)
    clean = nk.ecg_clean(x, sampling_rate=int(fs), method="neurokit")
    r = np.asarray(nk.ecg_peaks(clean, sampling_rate=int(fs))[1]["ECG_R_Peaks"], dtype=np.int64)
    try:
        return nk.ecg_delineate(clean, r, sampling_rate=int(fs), method="dwt", show=False)
    except Exception:  # noqa: BLE001 - as the script: a failed delineation is skipped
        return None


def load_physioclr_script(path: str) -> Any:
    """PhysioCLR's ``scripts/extract_ecg_features.py`` imported as a module from the checkout at ``path``."""
    spec = importlib.util.spec_from_file_location(
        "physioclr_extract", Path(path) / "scripts" / "extract_ecg_features.py"
    )
    if spec is None or spec.loader is None:
        raise FileNotFoundError(f"{path}/scripts/extract_ecg_features.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _physioclr_script(path: str) -> Callable[[np.ndarray, float], Any]:
    module = load_physioclr_script(path)
    return lambda w, fs: module.features_to_vector(module.extract_ecg_features(w, sampling_rate=int(fs)))


def side_by_side(root: Path, args: argparse.Namespace) -> None:
    """Windows/s of each extractor on the same windows, interleaved passes, medians (one thread)."""
    windows = ludb_windows(root, args.windows)
    methods: dict[str, Callable[[np.ndarray, float], Any]] = {
        "physioclr_ext": extract.extract_features,
        "physioclr_ext + nk.ecg_delineate": _with_nk_delineation,
        "PhysioCLR's neurokit2 calls": _physioclr_calls,
    }
    if args.physioclr:
        methods["PhysioCLR extract_ecg_features.py"] = _physioclr_script(args.physioclr)
    rates: dict[str, list[float]] = {name: [] for name in methods}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for function in methods.values():  # warm-up: imports, neurokit2's first calls
            function(*windows[0])
        for _ in range(args.repeats):
            for name, function in methods.items():
                start = time.perf_counter()
                for window, fs in windows:
                    function(window, fs)
                rates[name].append(len(windows) / (time.perf_counter() - start))
    base_name = "PhysioCLR extract_ecg_features.py" if args.physioclr else "PhysioCLR's neurokit2 calls"
    base = statistics.median(rates[base_name])
    print(
        f"{len(windows)} LUDB windows (12 x 2500, 500 Hz), median of {args.repeats} interleaved passes, "
        f"one process; ratio against {base_name!r}"
    )
    print(f"{'extractor':<36} {'windows/s':>10} {'ratio':>7}   passes")
    for name, values in rates.items():
        median = statistics.median(values)
        print(f"{name:<36} {median:>10.1f} {median / base:>6.2f}x   {', '.join(f'{v:.1f}' for v in values)}")


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
