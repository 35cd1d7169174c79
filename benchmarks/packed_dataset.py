"""Samples per second of the window dataset alone: one ``.mat`` per window vs the packed array (``--packed``).

Usage (from the repository root, in the environment with fairseq-signals)::

    python benchmarks/packed_dataset.py [--input ../shared/data/ludb] [--data DIR] [--repeats 5]

Preprocesses ``--input`` with ``--packed`` (default options) into a temporary folder, or reads an existing
packed output (``--data``), then reads every training window once per pass, in a shuffled order (as a
training epoch does), through ``ECGSSLDataset`` (``scipy.io.loadmat``) and ``PackedECGSSLDataset`` (memory
map), alternately, ``--repeats`` times each; prints the median samples per second of each and their ratio.
Both read from a warm page cache after the first pass; no augmentation (the collator's work is the same).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from physioclr_ext.data.ecg_ssl_dataset import ECGSSLDataset  # noqa: E402  (after sys.path)
from physioclr_ext.data.packed_dataset import PackedECGSSLDataset  # noqa: E402
from physioclr_ext.preprocess import PreprocessConfig, run  # noqa: E402


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--input", default=str(REPO.parent / "shared" / "data" / "ludb"), help="records to preprocess")
    parser.add_argument(
        "--data", default=None, help="an existing output preprocessed with --packed (skips preprocessing)"
    )
    parser.add_argument("--split", default="train")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0, help="seed of the shuffled read order")
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch threads (default 1, as in a DataLoader worker; 0: leave torch's default, as in the main process)",
    )
    return parser.parse_args()


def samples_per_second(dataset: Any, order: np.ndarray) -> float:
    """Read ``dataset[i]`` for every ``i`` of ``order``; returns items per second."""
    start = time.perf_counter()
    for i in order:
        dataset[int(i)]
    return len(order) / (time.perf_counter() - start)


def bench(data: Path, split: str, repeats: int, seed: int) -> dict[str, Any]:
    manifest = str(data / f"{split}.tsv")
    datasets = {
        "mat": ECGSSLDataset(manifest, sample_rate=None),
        "packed": PackedECGSSLDataset(manifest, sample_rate=None),
    }
    order = np.random.default_rng(seed).permutation(len(datasets["mat"]))
    rates: dict[str, list[float]] = {name: [] for name in datasets}
    for _ in range(repeats):  # interleaved: a load spike on the shared machine hits both alike
        for name, dataset in datasets.items():
            rates[name].append(samples_per_second(dataset, order))
    shape = datasets["packed"].packed.shape
    return {"windows": len(order), "shape": shape, "median": {n: statistics.median(r) for n, r in rates.items()}}


def print_table(result: dict[str, Any], repeats: int) -> None:
    median = result["median"]
    n, c, t = result["shape"]
    print(
        f"{result['windows']} windows of ({c}, {t}) float32, median of {repeats} interleaved passes, "
        f"{torch.get_num_threads()} torch thread(s)"
    )
    print(f"{'dataset':<32} {'samples/s':>12} {'vs .mat':>8}")
    for name, label in (("mat", "ECGSSLDataset (.mat, loadmat)"), ("packed", "PackedECGSSLDataset (memmap)")):
        print(f"{label:<32} {median[name]:>12,.0f} {median[name] / median['mat']:>7.1f}x")


def main() -> int:
    args = parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(args.data) if args.data else Path(tmp)
        if not args.data:
            run(PreprocessConfig(input=args.input, output=tmp, packed=True, progress=False))
        result = bench(data, args.split, args.repeats, args.seed)
    print_table(result, args.repeats)
    return 0


if __name__ == "__main__":
    sys.exit(main())
