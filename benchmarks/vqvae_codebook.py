"""Does the VQ-VAE keep its codebook? Perplexity at the end of training, cured defaults vs the SMILES-2025
study's plain quantiser, K = 64 and 512, on MIT-BIH.

Steps (each skipped when its output exists under ``--out``):

1. preprocess ``--data-root``/mitdb with the ``fairseq_signals`` preset (12-lead layout, 500 Hz, 5-s windows);
2. pretrain an encoder (``--encoder-config``, default ``contrastive_cnn_tiny``) for ``--encoder-updates``;
3. for each K in ``--ks`` and each setting (``ecg_vqvae`` = cures, ``ecg_vqvae_study`` = plain quantiser),
   train the VQ-VAE head on the frozen encoder for ``--updates`` (``_tiny`` configs with ``--tiny``);
4. ``codebook`` report of each over the validation windows (test windows where valid is empty); ``results.json`` and a markdown table.

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
            report = codebook_command(os.path.join(run_dir, "checkpoint_last.pt"), manifest, run_dir)
            rows.append({"setting": name, "config": config, "K": k, **report})
            print(
                f"{name:6s} K={k:4d} perplexity {report['perplexity']:.1f} ({report['perplexity_share']:.0%} of K), "
                f"dead {report['dead_codes']}",
                flush=True,
            )
    with open(os.path.join(args.out, "results.json"), "w", encoding="utf-8") as fh:
        json.dump({"command": " ".join(sys.argv), "rows": rows}, fh, indent=2)
    lines = ["| setting | K | perplexity | % of K | target | dead codes |", "|---|---|---|---|---|---|"]
    for r in rows:
        target = f">= {TARGET.get(r['K'], 0):.0%}" if r["setting"] == "cured" else "(collapse expected)"
        lines.append(
            f"| {r['setting']} | {r['K']} | {r['perplexity']:.1f} | {r['perplexity_share']:.0%} | {target} | "
            f"{r['dead_codes']} |"
        )
    with open(os.path.join(args.out, "results.md"), "w", encoding="utf-8") as fh:
        fh.write("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
