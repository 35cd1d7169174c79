"""``python -m physioclr_ext.evaluation <subcommand>``: evaluation commands.

Subcommands:
  predictions   join inference logits with a manifest: per-window CSV and metrics JSON
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import List, Optional


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m physioclr_ext.evaluation", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    pred = sub.add_parser("predictions", help="per-window predictions (CSV) and metrics (JSON) from inference outputs")
    pred.add_argument("--outputs", required=True, help="outputs_<subset>.npy written by physioclr-hydra-inference")
    pred.add_argument("--manifest", required=True, help="the manifest the outputs were computed on, e.g. DATA/test.tsv")
    pred.add_argument("--out-dir", required=True, help="directory for predictions_<subset>.csv and metrics_<subset>.json")
    pred.add_argument("--subset", default="test", help="subset name used in the output file names (default: test)")
    pred.add_argument("--threshold", type=float, default=0.5, help="probability threshold (binary, multilabel)")
    pred.add_argument("--label-def", default=None, help="label_def.csv naming the labels (optional)")
    pred.add_argument("--task", choices=["binary", "multiclass", "multilabel"], default=None,
                      help="task type; inferred from the labels and outputs when omitted")
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "predictions":
        from physioclr_ext.evaluation.predictions import write_predictions

        report = write_predictions(args.outputs, args.manifest, args.out_dir, args.subset,
                                   args.threshold, args.label_def, args.task)
        print(json.dumps(report["metrics"], indent=2))
        print(f"predictions: {report['predictions_csv']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
