"""Subcommands of ``python -m physioclr_ext.evaluation`` that drive fairseq-signals:
``embed`` (a checkpoint over manifests), ``reconstruct`` (pictures of a masked-modelling
checkpoint's reconstructions), ``few-shot`` and ``repeated`` (fine-tuning protocols through
the real trainer). fairseq-signals is imported only when one of
them runs, so the rest of the evaluation toolkit works without it.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Dict, List, Optional

COMMANDS = ("embed", "reconstruct", "few-shot", "repeated", "codebook")


def add_parsers(sub: argparse._SubParsersAction) -> None:
    """Register the subcommands of :data:`COMMANDS` on an argparse sub-parser set."""
    embed = sub.add_parser("embed", help="pooled embeddings of a checkpoint over manifests (needs fairseq-signals)")
    embed.add_argument("--checkpoint", required=True, help="any fairseq-signals checkpoint (pretrained or fine-tuned)")
    embed.add_argument("--data", required=True, help="preprocessed data directory holding <subset>.tsv")
    embed.add_argument("--out", required=True, help="directory for <subset>.npy, labels, ids and embed.json")
    embed.add_argument("--subsets", nargs="+", default=["train", "valid", "test"])
    embed.add_argument("--batch-size", type=int, default=64)
    embed.add_argument("--device", default=None, help="cpu or cuda (default: cuda when available)")
    _add_reconstruct(sub)
    _add_codebook(sub)

    for name, helptext in (
        ("few-shot", "fine-tune with exactly n labels per seed, pretrained vs scratch"),
        ("repeated", "repeated random patient splits: fine-tune, select on valid, test"),
    ):
        p = sub.add_parser(name, help=helptext + " (needs fairseq-signals)")
        p.add_argument("--data", required=True, help="preprocessed labelled data (train/valid/test manifests)")
        p.add_argument("--out", required=True, help="work directory; results.json and results.md go here")
        p.add_argument(
            "--finetune-config",
            default=None,
            help="config name in --config-dir (default: the tiny CPU classifier for the checkpoint's "
            "model (or --pretrain-config's), as finetuning_ecg.sh picks it)",
        )
        p.add_argument("--config-dir", default=None, help="default: configs/finetuning of this repository")
        p.add_argument("--seed", type=int, default=0, help="first seed (repeated: repeat r uses seed + r)")
        p.add_argument(
            "--override",
            action="append",
            default=[],
            metavar="KEY=VALUE",
            help="Hydra override for every fine-tuning run (repeatable)",
        )
        if name == "few-shot":
            p.add_argument("--checkpoint", required=True, help="pretrained checkpoint")
            p.add_argument("--n", type=int, nargs="+", default=[10, 50, 100], help="label budgets")
            p.add_argument("--seeds", type=int, nargs="+", default=None, help="default: 5 seeds from --seed")
            p.add_argument("--balanced", action="store_true", help="n examples per class")
            p.add_argument("--no-scratch", action="store_true", help="skip the from-scratch baseline")
            p.add_argument(
                "--head-init",
                choices=["probe"],
                default=None,
                help="probe: start each run's head from a linear probe on its starting encoder's embeddings of "
                "its training windows, C chosen on valid (LP-FT); the scratch arm then needs --scratch-checkpoint",
            )
            p.add_argument(
                "--scratch-checkpoint",
                default=None,
                metavar="PT",
                help="the scratch arm starts from this checkpoint (a random initialisation of the same "
                "architecture) instead of each seed's own random weights",
            )
        else:
            p.add_argument("--checkpoint", default=None, help="pretrained checkpoint used in every repeat")
            p.add_argument("--repeats", type=int, default=5)
            p.add_argument("--fractions", type=float, nargs=3, default=[0.7, 0.15, 0.15])
            p.add_argument(
                "--pretrain-config",
                default=None,
                help="pretrain anew in each repeat on its training patients only (config name in "
                "configs/pretraining), so validation and test patients never reach pretraining",
            )
            p.add_argument("--pretrain-override", action="append", default=[], metavar="KEY=VALUE")


def _add_codebook(sub: argparse._SubParsersAction) -> None:
    cb = sub.add_parser(
        "codebook",
        help="codebook use of an ecg_vqvae checkpoint over a manifest: perplexity, dead codes, PNG histogram "
        "(needs fairseq-signals)",
    )
    cb.add_argument("--checkpoint", required=True, help="an ecg_vqvae checkpoint")
    cb.add_argument("--manifest", required=True, help="manifest of the windows, e.g. DATA/test.tsv")
    cb.add_argument("--out", required=True, help="directory for codebook.json and codebook.png")
    cb.add_argument("--batch-size", type=int, default=64)
    cb.add_argument("--device", default=None, help="cpu or cuda (default: cuda when available)")


def _add_reconstruct(sub: argparse._SubParsersAction) -> None:
    rec = sub.add_parser(
        "reconstruct",
        help="PNG per record of a masked-modelling checkpoint's reconstruction: "
        "original, masked input, reconstruction, lead by lead (needs fairseq-signals)",
    )
    rec.add_argument("--checkpoint", required=True, help="checkpoint of a model with reconstruct() (ecg_mae, st_mem)")
    rec.add_argument("--manifest", required=True, help="manifest of the windows, e.g. DATA/test.tsv")
    rec.add_argument("--out", required=True, help="directory for <record>.png and reconstruction.json")
    rec.add_argument(
        "--n-records",
        type=int,
        default=4,
        help="first window of each of the first N records (windows.csv next to the manifest; "
        "without it the first N windows) (default: 4)",
    )
    rec.add_argument("--seed", type=int, default=0, help="masking seed; window k uses seed + k (default: 0)")
    rec.add_argument("--mask-ratio", type=float, default=None, help="share masked (default: the checkpoint's)")
    rec.add_argument(
        "--lead-names",
        default=None,
        metavar="I,II,...",
        help="comma-separated names of the model's input leads (default: preprocess.json's)",
    )
    rec.add_argument("--device", default=None, help="cpu or cuda (default: cuda when available)")


def _reconstruct(args: argparse.Namespace) -> int:
    from physioclr_ext.runners.reconstruct_checkpoint import ReconstructError, reconstruct_manifest

    names = [n.strip() for n in args.lead_names.split(",")] if args.lead_names else None
    try:
        result = reconstruct_manifest(
            args.checkpoint, args.manifest, args.out, args.n_records, args.seed, args.mask_ratio, names, args.device
        )
    except ReconstructError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(f"{len(result['windows'])} reconstruction pictures and reconstruction.json written to {args.out}")
    return 0


def _spec(args: argparse.Namespace):
    from physioclr_ext.runners.checkpoints import (
        checkpoint_finetune_config,
        default_finetune_config,
        label_finetune_config,
        yaml_model_section,
    )
    from physioclr_ext.runners.finetune_runs import REPO_CONFIGS, TrainSpec

    config, config_dir = args.finetune_config, args.config_dir or os.path.join(REPO_CONFIGS, "finetuning")
    if config is None:
        checkpoint, pretrain = getattr(args, "checkpoint", None), getattr(args, "pretrain_config", None)
        if checkpoint:
            config = label_finetune_config(checkpoint_finetune_config(checkpoint, tiny=True), args.data, config_dir)
        else:  # the model the pretraining config will build
            name = (
                yaml_model_section(os.path.join(REPO_CONFIGS, "pretraining", f"{pretrain}.yaml")).get("_name", "")
                if pretrain
                else ""
            )
            config = label_finetune_config(default_finetune_config(str(name), tiny=True), args.data, config_dir)
    return TrainSpec(config_dir, config, list(args.override))


def _write(args: argparse.Namespace, runs: Dict[str, List[dict]], meta: dict) -> None:
    from physioclr_ext.evaluation.results import command_line, write_run_results

    write_run_results(args.out, runs, {"command": command_line(), "data": os.path.abspath(args.data), **meta})


def _scratch_meta(path: Optional[str]) -> dict:
    from physioclr_ext.evaluation.results import file_sha256

    if not path:
        return {"scratch_checkpoint": None}
    return {"scratch_checkpoint": os.path.abspath(path), "scratch_checkpoint_sha256": file_sha256(path)}


def preflight(args: argparse.Namespace) -> None:
    """Check what a command needs before it imports fairseq-signals or starts a run: fairseq-signals
    itself, the checkpoint file (a pretrained one for ``few-shot``/``repeated``), the data directory and
    manifests, and a ``model.num_labels`` override against the data's labels.

    Raises:
        UsageError: the first problem, as one line naming the file and the fix.
    """
    from physioclr_ext.evaluation.data_check import DataError, check_data_dir, read_manifest_lines
    from physioclr_ext.runners.checkpoints import CheckpointError, check_pretrained, read_checkpoint
    from physioclr_ext.runners.data_shape import DataShapeError
    from physioclr_ext.runners.registration import fairseq_signals_error

    try:
        checkpoint = getattr(args, "checkpoint", None)
        if checkpoint and args.command in ("few-shot", "repeated"):
            check_pretrained(checkpoint)
        elif checkpoint:  # unpickled once more here so that a corrupt file is one line, not a traceback
            read_checkpoint(checkpoint)
        if args.command == "few-shot":
            _check_head_init(args)
        if args.command == "embed":
            check_data_dir(args.data, args.subsets)
        elif args.command in ("reconstruct", "codebook"):
            read_manifest_lines(args.manifest)
        elif args.command in ("few-shot", "repeated"):
            check_data_dir(args.data, ("train", "valid", "test") if args.command == "few-shot" else ("train",))
            _check_num_labels(args.override, args.data)
            _check_shape(args)
    except (CheckpointError, DataError, DataShapeError) as exc:
        raise UsageError(str(exc)) from None
    reason = fairseq_signals_error()
    if reason:
        raise UsageError(
            f"'{args.command}' needs fairseq-signals, which does not import here ({reason.splitlines()[0]}); "
            "install it (see the README, 'Installation') or run in its environment"
        )


def _check_head_init(args: argparse.Namespace) -> None:
    """``--head-init`` with the scratch arm needs ``--scratch-checkpoint``, which must be a readable checkpoint."""
    from physioclr_ext.runners.checkpoints import read_checkpoint

    if args.head_init and not args.no_scratch and not args.scratch_checkpoint:
        raise UsageError(
            "--head-init probe fits the probe on the encoder each run starts from: give the scratch arm's "
            "--scratch-checkpoint (a random initialisation of the architecture) or --no-scratch"
        )
    if args.scratch_checkpoint:
        read_checkpoint(args.scratch_checkpoint)


def _check_shape(args: argparse.Namespace) -> None:
    """The data against the checkpoint (or the per-repeat pretraining config) before any run starts
    (:mod:`physioclr_ext.runners.data_shape`; the protocols apply the same overrides to every run)."""
    from physioclr_ext.runners.finetune_runs import REPO_CONFIGS, TrainSpec, fit_to_data

    if getattr(args, "checkpoint", None):
        fit_to_data(_spec(args), args.data, args.checkpoint)
    if getattr(args, "pretrain_config", None):
        pre = TrainSpec(os.path.join(REPO_CONFIGS, "pretraining"), args.pretrain_config, list(args.pretrain_override))
        fit_to_data(pre, args.data)


class UsageError(ValueError):
    """A command that cannot start as given (one line)."""


def _check_num_labels(overrides: List[str], data: str) -> None:
    from physioclr_ext.evaluation.data_check import DataError, label_def_width

    width = label_def_width(data)
    for item in overrides:
        key, _, value = item.partition("=")
        if key.lstrip("+") == "model.num_labels" and width is not None and value.strip() != str(width):
            raise DataError(
                f"--override {item}: {data}/label_def.csv names {width} classes; drop the override "
                "(the protocols set model.num_labels from the data)"
            )


def run(args: argparse.Namespace) -> int:
    """Execute one of :data:`COMMANDS`; a user error ends in one line on stderr and exit code 2."""
    try:
        preflight(args)
    except UsageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    try:
        return _execute(args)
    except RuntimeError as exc:  # a fine-tuning run that the launcher stopped with its one-line user error
        lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
        if len(lines) < 2 or "failed (2)" not in lines[0]:
            raise
        print(f"error: {lines[-1]} ({lines[0].rstrip(':')})", file=sys.stderr)
        return 2


def _execute(args: argparse.Namespace) -> int:
    from physioclr_ext.evaluation.results import file_sha256

    if args.command == "embed":
        from physioclr_ext.runners.extract_embeddings import embed_subsets

        meta = embed_subsets(args.checkpoint, args.data, args.out, args.subsets, args.batch_size, args.device)
        print(f"embeddings of {', '.join(meta['subsets'])} written to {args.out}")
        return 0
    if args.command == "reconstruct":
        return _reconstruct(args)
    if args.command == "codebook":
        from physioclr_ext.runners.codebook import codebook_command

        report = codebook_command(args.checkpoint, args.manifest, args.out, args.batch_size, args.device)
        print(json.dumps(report, indent=2))
        return 0
    from physioclr_ext.runners import finetune_runs as protocols

    if args.command == "few-shot":
        seeds = args.seeds or list(range(args.seed, args.seed + 5))
        runs = protocols.few_shot(
            args.data,
            args.checkpoint,
            args.out,
            args.n,
            seeds,
            _spec(args),
            balanced=args.balanced,
            scratch=not args.no_scratch,
            head_init=args.head_init == "probe",
            scratch_checkpoint=args.scratch_checkpoint,
        )
        _write(
            args,
            runs,
            {
                "seeds": seeds,
                "n": args.n,
                "balanced": args.balanced,
                "split": "as preprocessed",
                "checkpoint": os.path.abspath(args.checkpoint),
                "checkpoint_sha256": file_sha256(args.checkpoint),
                "head_init": args.head_init,
                **_scratch_meta(args.scratch_checkpoint),
            },
        )
        return 0
    pre = None
    if args.pretrain_config:
        pre = protocols.TrainSpec(
            os.path.join(protocols.REPO_CONFIGS, "pretraining"), args.pretrain_config, list(args.pretrain_override)
        )
    runs = protocols.repeated(
        args.data, args.out, args.repeats, args.seed, _spec(args), args.checkpoint, pre, tuple(args.fractions)
    )
    _write(
        args,
        runs,
        {
            "seeds": [args.seed + r for r in range(args.repeats)],
            "split": {"fractions": args.fractions, "by": "patient", "repeats": args.repeats},
            "checkpoint": os.path.abspath(args.checkpoint) if args.checkpoint else None,
            "checkpoint_sha256": file_sha256(args.checkpoint) if args.checkpoint else None,
            "pretrained_on_train_patients_only": pre is not None,
        },
    )
    return 0
