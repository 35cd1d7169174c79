"""Repeated random sub-sampling on MIT-BIH normal vs arrhythmia windows, contrastive pretraining.

The protocol of the evaluation toolkit (``python -m physioclr_ext.evaluation repeated``), as in
KU-AI4H/Contrastive-ECG: K times, the patients of MIT-BIH (MLII, 10-s windows at 360 Hz,
preprocessed by ``benchmarks/mitbih_fewshot.py`` or the ``mitbih_fewshot`` preset) are split
70/15/15 into train/valid/test with a new seed (stratified by each patient's majority label);
the contrastive model (``--pretrain-config``, tiny CNN + NT-Xent by default) is pretrained on
that repeat's training patients only, ``ecg_ssl_classifier`` is fine-tuned from it on the
training windows, the checkpoint is chosen on validation loss and the test patients are
scored. Mean and 95% Student-t CI over the repeats go to ``results.json`` / ``results.md``.

Usage (Python environment with fairseq-signals; about 10 minutes on 2 CPU cores)::

    python benchmarks/mitbih_fewshot.py ...   # once, for the preprocessed data
    python benchmarks/mitbih_repeated.py --data runs/benchmarks/mitbih_fewshot/data
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
ONE_LEAD = ["task.leads_to_load='[0]'"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=str(REPO / "runs" / "benchmarks" / "mitbih_fewshot" / "data"))
    parser.add_argument("--out", default=str(REPO / "runs" / "benchmarks" / "mitbih_repeated"))
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--pretrain-config", default="contrastive_cnn_tiny")
    parser.add_argument("--pretrain-updates", type=int, default=200)
    parser.add_argument("--finetune-updates", type=int, default=100)
    args = parser.parse_args()
    cmd = [
        sys.executable,
        "-m",
        "physioclr_ext.evaluation",
        "repeated",
        "--data",
        args.data,
        "--out",
        args.out,
        "--repeats",
        str(args.repeats),
        "--seed",
        str(args.seed),
        "--finetune-config",
        "ecg_ssl_classifier_tiny",
        "--pretrain-config",
        args.pretrain_config,
    ]
    for item in ONE_LEAD + ["model.in_channels=1", f"optimization.max_update={args.pretrain_updates}"]:
        cmd += ["--pretrain-override", item]
    for item in ONE_LEAD + [f"optimization.max_update={args.finetune_updates}"]:
        cmd += ["--override", item]
    return subprocess.call(cmd)


if __name__ == "__main__":
    sys.exit(main())
