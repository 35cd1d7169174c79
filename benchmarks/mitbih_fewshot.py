"""Few-shot benchmark on MIT-BIH: what self-supervised pretraining buys with 10 to 100 labels.

Protocol (inter-patient, no test patient ever seen in pretraining):

1. Preprocess MIT-BIH (``--data-root``/mitdb) with the ``mitbih_fewshot`` preset: lead
   MLII, 10-s windows at 360 Hz, per-lead z-score, de Chazal's DS1/DS2 split (DS1 ->
   train, a seeded 20% of DS1 patients -> valid, DS2 -> test), binary labels
   normal / arrhythmia (any non-N AAMI beat in the window).
2. Pretrain ``--method`` (tiny CPU configuration unless ``--config`` says otherwise) on
   the unlabeled windows of the training patients only.
3. The evaluation toolkit's few-shot protocol: for n in ``--n`` and each seed, fine-tune
   on exactly n labelled training windows through physioclr-hydra-train, choose the
   checkpoint on validation loss, score the test patients; and train the same
   architecture from scratch on the same n windows.
4. Mean and 95% Student-t CI over seeds of accuracy, balanced accuracy, macro F1, AUROC
   and AUPRC: ``results.json`` and ``results.md`` in ``--out``.

Every stage resumes: finished preprocessing records, the pretrained checkpoint and
finished runs are reused when the command is run again.

Usage (Python environment with fairseq-signals; about 25 minutes on 2 CPU cores)::

    python benchmarks/mitbih_fewshot.py --out runs/benchmarks/mitbih_fewshot
    python benchmarks/mitbih_fewshot.py --method ecg_mae --out runs/benchmarks/mitbih_fewshot_ecg_mae
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

# One lead at 360 Hz instead of fairseq-signals' 12 leads at 500 Hz.
SIGNAL_OVERRIDES = ["task.leads_to_load='[0]'", "task.sample_rate=360"]
# How each model is told it gets one lead (and, for patch models, 3600-sample windows), by registered name.
MODEL_OVERRIDES = {
    "wav2vec2": ["model.in_d=1"],
    "wav2vec2_physioCLR": ["model.in_d=1"],
    "ecg_transformer_classifier": ["model.in_d=1"],
    # Tarif-dev's MIT-BIH design: patches of 100 samples (0.28 s at 360 Hz), 36 per 10-s window.
    "ecg_mae": ["model.in_channels=1", "model.patch_size=100", "model.max_patches=64"],
    "ecg_ssl_classifier": [],  # reads its encoder from the checkpoint
}
DEFAULT_MODEL_OVERRIDES = ["model.in_channels=1"]
FEATURE_METHODS = ("physioclr",)
"""Methods whose pretraining needs the physiological features (extracted during preprocessing)."""


def model_overrides(config_dir: str, config_name: str) -> list:
    """The one-lead overrides of the model a config builds."""
    from physioclr_ext.runners.checkpoints import yaml_model_section

    name = yaml_model_section(os.path.join(config_dir, config_name + ".yaml")).get("_name")
    return MODEL_OVERRIDES.get(name, DEFAULT_MODEL_OVERRIDES)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-root", default=str(REPO.parent / "shared" / "data"))
    parser.add_argument("--out", default=str(REPO / "runs" / "benchmarks" / "mitbih_fewshot"))
    parser.add_argument("--method", default="wav2vec2", help="pretraining config family in configs/pretraining")
    parser.add_argument("--config", default=None, help="pretraining config (default: <method>_tiny)")
    parser.add_argument(
        "--finetune-config",
        default=None,
        help="fine-tuning config (default: the tiny classifier finetuning_ecg.sh picks for the pretrained model)",
    )
    parser.add_argument("--pretrain-updates", type=int, default=400)
    parser.add_argument("--finetune-updates", type=int, default=100)
    parser.add_argument("--n", type=int, nargs="+", default=[10, 50, 100])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--balanced", action="store_true", help="n windows per class instead of n in all")
    parser.add_argument("--workers", type=int, default=2)
    return parser.parse_args()


def preprocess(data_root: str, out: str, workers: int, features: bool) -> str:
    from physioclr_ext.features.pipeline import preprocess_and_extract
    from physioclr_ext.preprocess import PreprocessConfig

    data = os.path.join(out, "data")
    extra = {"features": True, "features_pca": 50} if features else {}
    preprocess_and_extract(
        PreprocessConfig.from_preset(
            "mitbih_fewshot",
            input=os.path.join(data_root, "mitdb"),
            output=data,
            workers=workers,
            progress=True,
            **extra,
        )
    )
    return data


def main() -> int:
    args = parse_args()
    args.out = os.path.abspath(args.out)  # the trainer runs in its own directory
    from physioclr_ext.evaluation.results import command_line, file_sha256, write_run_results
    from physioclr_ext.runners.checkpoints import checkpoint_finetune_config
    from physioclr_ext.runners.finetune_runs import REPO_CONFIGS, TrainSpec, few_shot, pretrain

    os.makedirs(args.out, exist_ok=True)
    data = preprocess(args.data_root, args.out, args.workers, args.method in FEATURE_METHODS)
    ckpt = os.path.join(args.out, "pretrain", "checkpoint_last.pt")
    if not os.path.exists(ckpt):
        config = args.config or f"{args.method}_tiny"
        config_dir = os.path.join(REPO_CONFIGS, "pretraining")
        spec = TrainSpec(
            config_dir,
            config,
            SIGNAL_OVERRIDES
            + model_overrides(config_dir, config)
            + [f"optimization.max_update={args.pretrain_updates}", "optimization.max_epoch=0"],
        )
        ckpt = pretrain(spec, data, os.path.dirname(ckpt), seed=0)
    finetune_config = args.finetune_config or checkpoint_finetune_config(ckpt, tiny=True)
    config_dir = os.path.join(REPO_CONFIGS, "finetuning")
    spec = TrainSpec(
        config_dir,
        finetune_config,
        SIGNAL_OVERRIDES
        + model_overrides(config_dir, finetune_config)
        + [f"optimization.max_update={args.finetune_updates}"],
    )
    runs = few_shot(data, ckpt, os.path.join(args.out, "runs"), args.n, args.seeds, spec, balanced=args.balanced)
    meta = {
        "command": command_line(),
        "seeds": args.seeds,
        "n": args.n,
        "balanced": args.balanced,
        "split": "MIT-BIH DS1 (train, 20% of patients valid) / DS2 (test), de Chazal 2004; 202 dropped",
        "checkpoint": os.path.abspath(ckpt),
        "checkpoint_sha256": file_sha256(ckpt),
        "method": args.method,
        "finetune_config": finetune_config,
        "pretrain_updates": args.pretrain_updates,
        "finetune_updates": args.finetune_updates,
    }
    write_run_results(args.out, runs, meta)
    return 0


if __name__ == "__main__":
    sys.exit(main())
