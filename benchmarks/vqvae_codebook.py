"""Does the VQ-VAE keep its codebook? Perplexity at the end of training, cured defaults vs the SMILES-2025
study's plain quantiser, K = 64 and 512, on MIT-BIH.

Steps (each skipped when its output exists under ``--out``):

1. preprocess ``--data-root``/mitdb with the ``fairseq_signals`` preset (12-lead layout, 500 Hz, 5-s windows);
2. pretrain an encoder (``--encoder-config``, default ``contrastive_cnn_tiny``) for ``--encoder-updates``;
3. for each K in ``--ks`` and each setting (``ecg_vqvae`` = cures, ``ecg_vqvae_study`` = plain quantiser),
   train the VQ-VAE head on the frozen encoder for ``--updates`` (``_tiny`` configs with ``--tiny``);
4. ``codebook`` report of each (perplexity of code use, dead codes) over the training windows, the codebook's
   use at the end of training on the data it was fitted to (one window in ``--train-stride``, every record),
   and over the validation windows, held-out records (test windows where valid is empty; the preset's random
   split leaves MIT-BIH 3 validation records, and windows of one patient share a few codes, so that column is
   bounded by the few patients it holds); ``results.json`` and a markdown table.

Usage::

    python benchmarks/vqvae_codebook.py --data-root /work/shared/data --out runs/vqvae_codebook --tiny
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from typing import List

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SETTINGS = {"cured": "ecg_vqvae", "study": "ecg_vqvae_study"}
TARGET = {64: 0.5, 512: 0.25}


def _train(config_dir: str, config: str, data: str, out: str, overrides: List[str]) -> None:
    if os.path.exists(os.path.join(out, "checkpoint_last.pt")):
        return
    exe = os.path.join(os.path.dirname(sys.executable), "physioclr-hydra-train")
    cmd = [exe, "--config-dir", os.path.join(REPO, "configs", config_dir), "--config-name", config]
    cmd += [f"task.data={data}", f"checkpoint.save_dir={out}", f"hydra.run.dir={out}", *overrides]
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)


def main(argv: List[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data-root", default="/work/shared/data")
    p.add_argument("--out", required=True)
    p.add_argument("--ks", type=int, nargs="+", default=[64, 512])
    p.add_argument("--updates", type=int, default=300)
    p.add_argument("--encoder-config", default="contrastive_cnn_tiny")
    p.add_argument("--encoder-updates", type=int, default=30)
    p.add_argument("--tiny", action="store_true", help="the _tiny VQ-VAE configs (CPU)")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--train-stride", type=int, default=4, help="codebook report on one training window in N")
    args = p.parse_args(argv)

    from physioclr_ext.preprocess import PreprocessConfig
    from physioclr_ext.preprocess import run as preprocess

    data = os.path.join(args.out, "data")
    if not os.path.exists(os.path.join(data, "valid.tsv")):
        preprocess(
            PreprocessConfig.from_preset(
                "fairseq_signals",
                input=os.path.join(args.data_root, "mitdb"),
                output=data,
                label_scheme="binary",
                progress=False,
            )
        )
    encoder = os.path.join(args.out, "encoder")
    _train("pretraining", args.encoder_config, data, encoder, [f"optimization.max_update={args.encoder_updates}"])

    from physioclr_ext.runners.codebook import codebook_command

    # the windows the codebook is read on: valid, or test where a small sample's split left valid empty
    manifest = os.path.join(data, "valid.tsv")
    if sum(1 for _ in open(manifest, encoding="utf-8")) <= 1:
        manifest = os.path.join(data, "test.tsv")

    train_manifest = os.path.join(args.out, f"train_stride{args.train_stride}.tsv")
    with open(os.path.join(data, "train.tsv"), encoding="utf-8") as fh:
        root, *windows = fh.read().splitlines()
    with open(train_manifest, "w", encoding="utf-8") as fh:
        fh.write("\n".join([root, *windows[:: args.train_stride]]) + "\n")

    rows = []
    for k in args.ks:
        for name, config in SETTINGS.items():
            run_dir = os.path.join(args.out, f"{name}_K{k}")
            config = config + ("_tiny" if args.tiny else "")
            overrides = [
                f"model.model_path={os.path.join(encoder, 'checkpoint_last.pt')}",
                f"model.codebook_size={k}",
                f"optimization.max_update={args.updates}",
                "optimization.max_epoch=0",
                f"dataset.batch_size={args.batch_size}",
            ]
            _train("pretraining", config, data, run_dir, overrides)
            checkpoint = os.path.join(run_dir, "checkpoint_last.pt")
            train = codebook_command(checkpoint, train_manifest, os.path.join(run_dir, "codebook_train"))
            report = codebook_command(checkpoint, manifest, run_dir)
            rows.append({"setting": name, "config": config, "K": k, **report, "train": train})
            print(
                f"{name:6s} K={k:4d} train windows: perplexity {train['perplexity']:.1f} "
                f"({train['perplexity_share']:.0%} of K), dead {train['dead_codes']}; valid windows: perplexity "
                f"{report['perplexity']:.1f} ({report['perplexity_share']:.0%}), dead {report['dead_codes']}",
                flush=True,
            )
    with open(os.path.join(args.out, "results.json"), "w", encoding="utf-8") as fh:
        json.dump({"command": " ".join(sys.argv), "rows": rows}, fh, indent=2)
    lines = [
        "| setting | K | train: perplexity | % of K | dead codes | valid: perplexity | % of K | dead codes | target |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        t = r["train"]
        target = f">= {TARGET.get(r['K'], 0):.0%}" if r["setting"] == "cured" else "(collapse expected)"
        lines.append(
            f"| {r['setting']} | {r['K']} | {t['perplexity']:.1f} | {t['perplexity_share']:.0%} | {t['dead_codes']} | "
            f"{r['perplexity']:.1f} | {r['perplexity_share']:.0%} | {r['dead_codes']} | {target} |"
        )
    with open(os.path.join(args.out, "results.md"), "w", encoding="utf-8") as fh:
        fh.write("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
