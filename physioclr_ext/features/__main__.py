"""``python -m physioclr_ext.features DATA_DIR [--pca 50|auto] [--lead mean|II|index] [--workers N] [--delineation dwt]``."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from ..preprocess.cli import pca_option
from .extract import DELINEATIONS
from .pipeline import FeatureOptions, extract_directory


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m physioclr_ext.features",
        description="Extract neurokit2 physiological features of every window of a preprocessed directory "
        "into DATA_DIR/features/ (<split>.npz, names.json, transform.npz, summary.json).",
    )
    parser.add_argument("data", metavar="DATA_DIR", help="output folder of python -m physioclr_ext.preprocess")
    parser.add_argument(
        "--pca",
        type=pca_option,
        default=None,
        metavar="K|auto|none",
        help="PCA to K dimensions fitted on the training split; auto: 50 (PhysioCLR's) where the "
        "training split has at least 500 windows, else none (default: none)",
    )
    parser.add_argument("--lead", default="mean", help="'mean' of the present leads (default), a lead name or index")
    parser.add_argument("--workers", type=int, default=1, metavar="N", help="parallel processes (default: 1)")
    parser.add_argument("--seed", type=int, default=0, help="PCA random_state (default: 0)")
    parser.add_argument(
        "--delineation",
        choices=DELINEATIONS,
        default="dwt",
        help="neurokit2 ecg_delineate method: 'dwt' (PhysioCLR's, default) or 'prominence' "
        "(closer to manual delineation: on LUDB its QRS duration is not ~70 ms too long)",
    )
    parser.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bar")
    args = parser.parse_args(argv)
    try:
        summary = extract_directory(
            args.data, FeatureOptions(args.lead, args.pca, args.workers, args.seed, args.progress, args.delineation)
        )
    except (OSError, ValueError, KeyError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for split, counts in summary["splits"].items():
        print(f"  {split:5s} windows={counts['windows']} valid={counts['valid']} invalid={counts['invalid_by_reason']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
