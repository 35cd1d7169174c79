"""The parser and dispatch of ``python -m physioclr_ext.evaluation <subcommand>``.

The subcommands marked "needs fairseq-signals" are not defined here: the entry point
(``evaluation/__main__.py``) passes them in as an :class:`ExtraCommands` (they live in
:mod:`physioclr_ext.runners.evaluation_commands`), so this core module never imports a runner.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import List, Optional, Protocol, Sequence


class ExtraCommands(Protocol):
    """Subcommands added by the entry point: their names, their parsers and how to run them."""

    @property
    def COMMANDS(self) -> Sequence[str]: ...

    def add_parsers(self, sub: argparse._SubParsersAction) -> None: ...

    def run(self, args: argparse.Namespace) -> int: ...


DESCRIPTION = """\
Evaluation commands of physioclr-ext.

Subcommands:
  embed         pooled embeddings of a checkpoint over manifests (needs fairseq-signals)
  reconstruct   PNG per record of a masked-modelling checkpoint's reconstruction (needs fairseq-signals)
  codebook      codebook use of an ecg_vqvae checkpoint: perplexity, dead codes, PNG (needs fairseq-signals)
  few-shot      fine-tune with exactly n labels per seed, pretrained vs scratch (needs fairseq-signals)
  repeated      repeated random patient splits: fine-tune, select on valid, test (needs fairseq-signals)
  predictions   join inference logits with a manifest: per-window CSV and metrics JSON
  linear-probe  logistic-regression probe on stored embeddings (n-shot, seeds, CIs)
  knn           cosine k-NN probe on stored embeddings (n-shot, seeds, CIs)
  cluster       k-means scores and a PCA plot of one subset's embeddings
  loss-curve    redraw a training run's loss curves (PNG and JSON) from its log
"""

TASKS = ["binary", "multiclass", "multilabel"]

PROTOCOL_EPILOG = """\
Each setting n=<n> (n=all without --n-train) reports the mean over --seeds of each
metric; seed s draws the n-shot training subset (n per class with --balanced) with
seed s. Confidence intervals (95%):
  --ci t          Student-t interval of the mean across seeds (training-sample
                  variability; needs at least 2 seeds, none otherwise).
  --ci bootstrap  percentile bootstrap over test examples (test patients with
                  --bootstrap-by patient) of the same statistic: every resample
                  scores each seed's test predictions on the same drawn examples
                  and averages the metric over seeds (test-set variability;
                  resampling seed 0; costs --n-boot x seeds metric evaluations).
Writes OUT/results.json and OUT/results.md and prints the markdown table.
"""


def _add_predictions(sub: argparse._SubParsersAction) -> None:
    pred = sub.add_parser("predictions", help="per-window predictions (CSV) and metrics (JSON) from inference outputs")
    pred.add_argument("--outputs", required=True, help="outputs_<subset>.npy written by physioclr-hydra-inference")
    pred.add_argument("--manifest", required=True, help="the manifest the outputs were computed on, e.g. DATA/test.tsv")
    pred.add_argument(
        "--out-dir", required=True, help="directory for predictions_<subset>.csv and metrics_<subset>.json"
    )
    pred.add_argument("--subset", default="test", help="subset name used in the output file names (default: test)")
    pred.add_argument("--threshold", type=float, default=0.5, help="probability threshold (binary, multilabel)")
    pred.add_argument("--label-def", default=None, help="label_def.csv naming the labels (optional)")
    pred.add_argument(
        "--task", choices=TASKS, default=None, help="task type; inferred from the labels and outputs when omitted"
    )


def _add_protocol(sub: argparse._SubParsersAction, name: str, help_text: str) -> argparse.ArgumentParser:
    p = sub.add_parser(
        name,
        help=help_text,
        description=help_text,
        epilog=PROTOCOL_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--embeddings", required=True, help="embeddings directory written by the embed command")
    p.add_argument("--out", required=True, help="directory for results.json and results.md")
    p.add_argument("--train-subset", default="train", help="training subset (default: train)")
    if name == "linear-probe":
        p.add_argument("--valid-subset", default="valid", help="subset choosing C (default: valid)")
    p.add_argument("--test-subset", default="test", help="scored subset (default: test)")
    p.add_argument(
        "--n-train",
        type=int,
        nargs="+",
        default=None,
        metavar="N",
        help="training sizes (default: all training examples)",
    )
    p.add_argument("--balanced", action="store_true", help="N examples per class (per label for multilabel)")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4], help="seeds (default: 0 1 2 3 4)")
    p.add_argument("--ci", choices=["t", "bootstrap"], default="t", help="interval kind (default: t; see below)")
    p.add_argument("--n-boot", type=int, default=1000, help="bootstrap resamples (default: 1000)")
    p.add_argument(
        "--bootstrap-by", choices=["example", "patient"], default="example", help="bootstrap unit (default: example)"
    )
    p.add_argument(
        "--task",
        choices=TASKS,
        default=None,
        help="task type; default: several label columns multilabel, one 0/1 column binary, else multiclass",
    )
    return p


def build_parser(extra: Optional[ExtraCommands] = None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m physioclr_ext.evaluation",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", required=True)
    _add_predictions(sub)
    lin = _add_protocol(sub, "linear-probe", "logistic-regression probe on frozen embeddings, C chosen on valid")
    lin.add_argument(
        "--Cs",
        type=float,
        nargs="+",
        default=[1e-3, 1e-2, 1e-1, 1.0, 10.0, 100.0],
        help="inverse regularisation strengths tried (default: 1e-3 .. 100)",
    )
    knn = _add_protocol(sub, "knn", "cosine k-NN probe on frozen embeddings")
    knn.add_argument("--k", type=int, default=5, help="neighbours (default: 5)")
    clu = sub.add_parser("cluster", help="k-means scores and PCA projection plot of one subset")
    clu.add_argument("--embeddings", required=True, help="embeddings directory written by the embed command")
    clu.add_argument("--subset", default="test", help="subset to cluster (default: test)")
    clu.add_argument("--out", required=True, help="directory for cluster_<subset>.json and projection_<subset>.png")
    clu.add_argument("--seed", type=int, default=0, help="k-means and PCA seed (default: 0)")
    clu.add_argument("--n-clusters", type=int, default=None, help="k (default: number of classes)")
    curve = sub.add_parser("loss-curve", help="loss curves (PNG and JSON) of a training run from its log")
    curve.add_argument(
        "--log",
        required=True,
        help="fairseq-signals training log: SAVE_DIR/loss_curve.log, hydra_train.log, "
        "common.log_file or the console output (json, simple or tqdm format)",
    )
    curve.add_argument("--out", required=True, help="PNG to write")
    curve.add_argument("--json", default=None, help="parsed series (default: --out with .json)")
    curve.add_argument("--title", default="", help="figure title")
    if extra is not None:
        extra.add_parsers(sub)
    return parser


def _loss_curve(args: argparse.Namespace) -> int:
    from physioclr_ext.evaluation.loss_curves import LossLogError, write_loss_curve

    try:
        curves = write_loss_curve(args.log, args.out, args.json, title=args.title)
    except (LossLogError, OSError) as exc:
        print(f"loss-curve: {exc}", file=sys.stderr)
        return 1
    points = ", ".join(f"{tag} {len(s.updates)}" for tag, s in curves.series.items())
    print(f"loss curve: {args.out} ({', '.join(curves.terms)}; points: {points})")
    return 0


def _protocol_kwargs(args: argparse.Namespace) -> dict:
    return dict(
        embeddings=args.embeddings,
        out=args.out,
        train_subset=args.train_subset,
        test_subset=args.test_subset,
        n_train=args.n_train,
        balanced=args.balanced,
        seeds=args.seeds,
        ci=args.ci,
        task=args.task,
        n_boot=args.n_boot,
        bootstrap_by=args.bootstrap_by,
    )


def main(argv: Optional[List[str]] = None, extra: Optional[ExtraCommands] = None) -> int:
    """Run one subcommand; ``extra`` adds the subcommands that need fairseq-signals."""
    args = build_parser(extra).parse_args(argv)
    if extra is not None and args.command in extra.COMMANDS:
        return extra.run(args)
    if args.command == "loss-curve":
        return _loss_curve(args)
    if args.command == "predictions":
        from physioclr_ext.evaluation.predictions import write_predictions

        report = write_predictions(
            args.outputs, args.manifest, args.out_dir, args.subset, args.threshold, args.label_def, args.task
        )
        print(json.dumps(report["metrics"], indent=2))
        print(f"predictions: {report['predictions_csv']}")
    elif args.command == "linear-probe":
        from physioclr_ext.evaluation.protocols import run_linear_probe

        run_linear_probe(valid_subset=args.valid_subset, Cs=args.Cs, **_protocol_kwargs(args))
    elif args.command == "knn":
        from physioclr_ext.evaluation.protocols import run_knn

        run_knn(k=args.k, **_protocol_kwargs(args))
    elif args.command == "cluster":
        from physioclr_ext.evaluation.protocols import run_cluster

        run_cluster(args.embeddings, args.out, args.subset, args.seed, args.n_clusters)
    return 0
