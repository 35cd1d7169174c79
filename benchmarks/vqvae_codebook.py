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
   bounded by the few patients it holds); ``results.json`` and a markdown table;
5. with ``--record-groups N``, a check of that bound (``records.md``): code use over the validation windows
   thinned like the training ones (one in ``--train-stride``) against N random draws of as many *training*
   records (same thinning; median and range), against as many training windows drawn from every record, and
   over the validation and test windows together (all held-out records). Nothing is chosen on these numbers.
   Codes per window are cached in each run directory (``codes_<manifest>.npy``).

Usage::

    python benchmarks/vqvae_codebook.py --data-root /work/shared/data --out runs/vqvae_codebook --tiny
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Dict, List, Sequence

import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(REPO, "benchmarks"))

from ssl_table.two_stage import base_override, hydra_train  # noqa: E402  (the ssl_table benchmark trains them too)

SETTINGS = {"cured": "ecg_vqvae", "study": "ecg_vqvae_study"}
TARGET = {64: 0.5, 512: 0.25}


def window_codes(checkpoint: str, manifest: str, batch_size: int = 64) -> np.ndarray:
    """Code of each window of ``manifest``, in manifest order: (N,) (pooled form) or (N, T) (sequence form);
    cached next to the checkpoint as ``codes_<manifest name>.npy``."""
    data, subset = os.path.dirname(os.path.abspath(manifest)), os.path.basename(manifest)[: -len(".tsv")]
    cache = os.path.join(os.path.dirname(checkpoint), f"codes_{subset}.npy")
    if os.path.exists(cache) and os.path.getmtime(cache) >= os.path.getmtime(checkpoint):
        return np.load(cache)
    import torch

    from physioclr_ext.runners.extract_embeddings import _batches, _load_subset, load_checkpoint

    device = "cuda" if torch.cuda.is_available() else "cpu"
    loaded = load_checkpoint(checkpoint, data, device)
    dataset = _load_subset(loaded, subset)
    parts = []
    with torch.no_grad():
        for _, batch in _batches(dataset, batch_size):
            net_input = {n: v.to(device) if torch.is_tensor(v) else v for n, v in batch["net_input"].items()}
            parts.append(loaded.model.codes(net_input["source"], net_input.get("padding_mask")).cpu().numpy())
    codes = np.concatenate(parts)
    np.save(cache, codes)
    return codes


def codebook_report(codes: np.ndarray, k: int, checkpoint: str, manifest: str, out: str) -> Dict[str, object]:
    """``python -m physioclr_ext.evaluation codebook``'s report (``codebook.json``, ``codebook.png``) from codes."""
    from physioclr_ext.runners.codebook import write_report

    return write_report(np.bincount(codes.reshape(-1), minlength=k), checkpoint, manifest, out)


def manifest_records(manifest: str) -> List[str]:
    """Record of each window of a manifest (``mat/<record>_<i>.mat`` -> ``<record>``), in manifest order."""
    with open(manifest, encoding="utf-8") as fh:
        rows = fh.read().splitlines()[1:]
    return [os.path.basename(r.split("\t")[0]).rsplit("_", 1)[0] for r in rows if r.strip()]


def perplexity_share(codes: np.ndarray, k: int) -> float:
    """exp(entropy of code frequencies) / K of the codes (any shape).

    Example:
        >>> perplexity_share(np.array([0, 1, 2, 3]), 8), perplexity_share(np.array([5, 5]), 8)
        (0.5, 0.125)
    """
    p = np.bincount(codes.reshape(-1), minlength=k) / codes.size
    p = p[p > 0]
    return float(np.exp(-(p * np.log(p)).sum()) / k)


def record_groups(
    codes: np.ndarray, records: Sequence[str], k: int, n_records: int, draws: int, seed: int = 0
) -> Dict[str, List[float]]:
    """Perplexity shares over ``draws`` random groups of ``n_records`` records (``"records"``) and over as many
    windows drawn from all records (``"windows"``, same draw size as each group): how much of a small split's
    shortfall comes from holding few patients rather than few windows.

    Args:
        codes: (N,) or (N, T) codes of the windows; records: (N,) record of each window.
    """
    rng = np.random.default_rng(seed)
    rec = np.asarray(records)
    names = sorted(set(records))
    out: Dict[str, List[float]] = {"records": [], "windows": []}
    for _ in range(draws):
        group = rng.choice(names, size=min(n_records, len(names)), replace=False)
        member = np.isin(rec, group)
        out["records"].append(perplexity_share(codes[member], k))
        pick = rng.choice(len(rec), size=int(member.sum()), replace=False)
        out["windows"].append(perplexity_share(codes[pick], k))
    return out


def _median_range(values: List[float]) -> str:
    return f"{np.median(values):.0%} [{min(values):.0%}, {max(values):.0%}]"


def records_table(rows: List[dict], stride: int, draws: int) -> str:
    """Markdown of the ``--record-groups`` check."""
    lines = [
        f"| setting | K | valid, 1 in {stride} windows | {draws} draws of as many training records, 1 in {stride}: "
        "median [range] | as many random training windows | valid + test, all windows | train, 1 in "
        f"{stride} |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        g = r["groups"]
        lines.append(
            f"| {r['setting']} | {r['K']} | {g['valid_thinned']:.0%} ({g['n_valid_records']} records) | "
            f"{_median_range(g['records'])} | {_median_range(g['windows'])} | {g['heldout']:.0%} "
            f"({g['n_heldout_records']} records) | {r['train']['perplexity_share']:.0%} |"
        )
    return "\n".join(lines) + "\n"


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
    p.add_argument(
        "--split",
        default="random",
        choices=["random", "mitbih_ds1ds2"],
        help="record split of the preprocessing: the preset's random one (default) or the "
        "inter-patient DS1/DS2 one (DS1 trains, a share of its patients validates, the 22 DS2 patients are test; "
        "use its own --out)",
    )
    p.add_argument(
        "--record-groups",
        type=int,
        default=0,
        metavar="N",
        help="also compare valid's code use with N random groups of as many training records, and report it "
        "over valid + test windows together (records.md; default 0: off)",
    )
    args = p.parse_args(argv)

    from physioclr_ext.preprocess import PreprocessConfig
    from physioclr_ext.preprocess import run as preprocess

    data = os.path.join(args.out, "data")
    summary = os.path.join(data, "preprocess.json")
    if os.path.exists(summary):
        with open(summary, encoding="utf-8") as fh:
            done = json.load(fh)["split"]["method"]
        if done != args.split:
            p.error(f"{args.out} holds data (and runs) of the {done} split; give --split {args.split} its own --out")
    if not os.path.exists(os.path.join(data, "valid.tsv")):
        preprocess(
            PreprocessConfig.from_preset(
                "fairseq_signals",
                input=os.path.join(args.data_root, "mitdb"),
                output=data,
                label_scheme="binary",
                split=args.split,
                progress=False,
            )
        )
    encoder = os.path.join(args.out, "encoder")
    hydra_train("pretraining", args.encoder_config, data, encoder, [f"optimization.max_update={args.encoder_updates}"])

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
                base_override(os.path.join(encoder, "checkpoint_last.pt")),
                f"model.codebook_size={k}",
                f"optimization.max_update={args.updates}",
                "optimization.max_epoch=0",
                f"dataset.batch_size={args.batch_size}",
            ]
            hydra_train("pretraining", config, data, run_dir, overrides)
            checkpoint = os.path.join(run_dir, "checkpoint_last.pt")
            train_codes = window_codes(checkpoint, train_manifest)
            codes = window_codes(checkpoint, manifest)
            train = codebook_report(train_codes, k, checkpoint, train_manifest, os.path.join(run_dir, "codebook_train"))
            report = codebook_report(codes, k, checkpoint, manifest, run_dir)
            row = {"setting": name, "config": config, "K": k, **report, "train": train}
            if args.record_groups:
                test_manifest = os.path.join(data, "test.tsv")
                test_codes = window_codes(checkpoint, test_manifest)
                valid_records, test_records = manifest_records(manifest), manifest_records(test_manifest)
                n_valid = len(set(valid_records))
                groups = record_groups(train_codes, manifest_records(train_manifest), k, n_valid, args.record_groups)
                heldout = np.concatenate([codes, test_codes]) if manifest != test_manifest else codes
                row["groups"] = {
                    **groups,
                    "n_valid_records": n_valid,
                    "valid_thinned": perplexity_share(codes[:: args.train_stride], k),
                    "heldout": perplexity_share(heldout, k),
                    "n_heldout_records": len(set(valid_records) | set(test_records)),
                }
            rows.append(row)
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
    if args.record_groups:
        groups_md = records_table(rows, args.train_stride, args.record_groups)
        with open(os.path.join(args.out, "records.md"), "w", encoding="utf-8") as fh:
            fh.write(groups_md)
        print(groups_md)
    return 0


if __name__ == "__main__":
    sys.exit(main())
