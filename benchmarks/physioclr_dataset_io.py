"""Items per second and ``.mat`` reads of the ``ecg_feature`` (PhysioCLR) dataset: before vs now.

Usage (from the repository root, in the environment with fairseq-signals)::

    python benchmarks/physioclr_dataset_io.py [--input ../shared/data/mitdb] [--records 2] [--data DIR]
                                              [--repeats 3]

Preprocesses the first ``--records`` MIT-BIH records (default options, ``--features --packed``) into a
temporary folder (a third of the records per split), or reads an existing output with features (``--data``). Then reads every training item
(window, features, R-peaks and temporal neighbour) once per pass through:

- ``before``: ``PhysioCLRDataset(window_cache=0)``, the old reads: one ``loadmat`` for the window and one
  for its neighbour on every access;
- ``cache``: ``PhysioCLRDataset`` with its default LRU cache of windows;
- ``packed``: ``PackedPhysioCLRDataset`` (window and neighbour from the memory map, when packed);

in manifest order (an unshuffled pass, a record's windows one after another) and in a shuffled order (a
training epoch), the datasets alternately, ``--repeats`` times each; prints the median items/s, the ratio to
``before`` and the ``loadmat`` calls per pass. One torch thread, as in a DataLoader worker.
"""

from __future__ import annotations

import argparse
import shutil
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

from physioclr_ext.data import physioclr_dataset  # noqa: E402  (after sys.path)
from physioclr_ext.data.packed_dataset import PackedPhysioCLRDataset  # noqa: E402
from physioclr_ext.data.physioclr_dataset import PhysioCLRDataset  # noqa: E402
from physioclr_ext.features.pipeline import preprocess_and_extract  # noqa: E402
from physioclr_ext.preprocess import PreprocessConfig  # noqa: E402


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--input", default=str(REPO.parent / "shared" / "data" / "mitdb"))
    parser.add_argument(
        "--records", type=int, default=3, help="first N records of --input (30 min each in MIT-BIH), one split each"
    )
    parser.add_argument(
        "--data", default=None, help="an existing preprocessed output with features (skips preprocessing)"
    )
    parser.add_argument("--split", default="train")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0, help="seed of the shuffled order")
    return parser.parse_args()


def prepare(source: Path, records: int, tmp: Path) -> Path:
    """``records`` records of ``source`` preprocessed with features and packed windows into ``tmp/out``."""
    subset = tmp / "in"
    subset.mkdir()
    for hea in sorted(source.glob("*.hea"))[:records]:
        for f in source.glob(hea.stem + ".*"):
            shutil.copy(f, subset / f.name)
    out = tmp / "out"
    preprocess_and_extract(
        PreprocessConfig(
            input=str(subset),
            output=str(out),
            features=True,
            packed=True,
            progress=False,
            split_fractions=(0.34, 0.33, 0.33),  # no empty split (the packed writer fails on one, see notes)
        )
    )
    return out


class _Counter:
    """Wraps ``physioclr_dataset.read_window`` (the dataset's one ``loadmat``) and counts its calls."""

    def __init__(self) -> None:
        self.calls, self.real = 0, physioclr_dataset.read_window

    def __call__(self, path: str) -> Any:
        self.calls += 1
        return self.real(path)


def one_pass(dataset: Any, order: np.ndarray, counter: _Counter) -> tuple[float, int]:
    """``(items/s, loadmat calls)`` of reading ``dataset[i]`` for every ``i`` of ``order`` from a cold cache."""
    if hasattr(dataset, "_cache"):
        dataset._cache.clear()
    counter.calls = 0
    start = time.perf_counter()
    for i in order:
        dataset[int(i)]
    return len(order) / (time.perf_counter() - start), counter.calls


def bench(data: Path, split: str, repeats: int, seed: int) -> list[dict[str, Any]]:
    manifest = str(data / f"{split}.tsv")
    datasets: dict[str, Any] = {
        "before": PhysioCLRDataset(manifest, sample_rate=None, window_cache=0),
        "cache": PhysioCLRDataset(manifest, sample_rate=None),
    }
    if (data / "packed").is_dir():
        datasets["packed"] = PackedPhysioCLRDataset(manifest, sample_rate=None)
    n = len(datasets["before"])
    orders = {"in order": np.arange(n), "shuffled": np.random.default_rng(seed).permutation(n)}
    counter = _Counter()
    physioclr_dataset.read_window = counter  # type: ignore[assignment]
    rows = []
    try:
        for order_name, order in orders.items():
            rates: dict[str, list[float]] = {name: [] for name in datasets}
            calls: dict[str, int] = {}
            names = list(datasets)
            for repeat in range(repeats):  # interleaved, each pass in a rotated order: no dataset always runs first
                for name in names[repeat % len(names) :] + names[: repeat % len(names)]:
                    rate, calls[name] = one_pass(datasets[name], order, counter)
                    rates[name].append(rate)
            base = statistics.median(rates["before"])
            for name in datasets:
                median = statistics.median(rates[name])
                rows.append(
                    {"order": order_name, "dataset": name, "items/s": median, "x": median / base, "reads": calls[name]}
                )
    finally:
        physioclr_dataset.read_window = counter.real  # type: ignore[assignment]
    return rows


def print_table(rows: list[dict[str, Any]], items: int, repeats: int) -> None:
    print(f"{items} items per pass, median of {repeats} interleaved passes, {torch.get_num_threads()} torch thread(s)")
    print(f"{'order':<10} {'dataset':<8} {'items/s':>9} {'vs before':>10} {'loadmat/pass':>13}")
    for r in rows:
        print(f"{r['order']:<10} {r['dataset']:<8} {r['items/s']:>9,.0f} {r['x']:>9.2f}x {r['reads']:>13,}")


def main() -> int:
    args = parse_args()
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(args.data) if args.data else prepare(Path(args.input), args.records, Path(tmp))
        rows = bench(data, args.split, args.repeats, args.seed)
        items = len(PhysioCLRDataset(str(data / f"{args.split}.tsv"), sample_rate=None, use_neighbour=False))
    print_table(rows, items, args.repeats)
    return 0


if __name__ == "__main__":
    sys.exit(main())
