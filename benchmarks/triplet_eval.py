"""Does triplet fine-tuning improve a pretrained encoder's embedding? k-NN and linear-probe results of the
triplet embedding against the frozen encoder's, on MIT-BIH normal vs arrhythmia windows, for encoders of
two methods, with 95% Student-t CIs over seeds.

For each method (``--methods``, pretraining configs) and each seed ``s`` (``--seeds``):

1. preprocess ``--data-root``/mitdb once per input contract (preset ``fairseq_signals`` for the CNNs,
   ``st_mem`` for ST-MEM; binary labels, the presets' random record split), then keep one training window
   in ``--train-stride`` (all records, valid and test whole) to bound the CPU time of embedding;
2. pretrain the encoder for ``--pretrain-updates`` with ``common.seed=s`` (``physioclr-hydra-train``);
3. triplet fine-tuning (``configs/finetuning/ecg_triplet_tiny.yaml``: frozen encoder, class-balanced batches,
   random mining, checkpoint chosen by validation k-NN macro F1) for ``--triplet-updates``, seed ``s``, plus any
   ``--triplet-overrides`` (e.g. ``model.standardize_embedding=false``: the study's head);
4. ``python -m physioclr_ext.evaluation embed`` of both checkpoints (the frozen encoder's pooled embedding, the
   triplet head's l2-normalised output), then ``knn`` (k = ``--k``) and ``linear-probe`` (C chosen on valid)
   with ``--seeds s`` on all training windows, scored on test.

Each seed varies the pretraining, the fine-tuning and nothing else; the table gives each metric's mean and
95% t-interval over seeds, and the paired difference triplet - frozen. Steps whose output exists are skipped.

Usage (an environment with fairseq-signals)::

    python benchmarks/triplet_eval.py --data-root /work/shared/data --out runs/triplet_eval
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from typing import Dict, List

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(REPO, "benchmarks"))

from ssl_table.two_stage import base_override, hydra_train  # noqa: E402  (the ssl_table benchmark trains them too)

PRESET = {"st_mem": "st_mem"}  # pretraining-config prefix -> preprocessing preset; others: fairseq_signals
METRICS = ("auroc", "macro_f1")
PROBES = ("knn", "linear-probe")


def _run(cmd: List[str], log: str) -> None:
    with open(log, "w", encoding="utf-8") as fh:
        subprocess.run(cmd, check=True, stdout=fh, stderr=subprocess.STDOUT)


def _evaluation(args: List[str], log: str) -> None:
    _run([sys.executable, "-m", "physioclr_ext.evaluation", *args], log)


def prepare_data(data_root: str, out: str, preset: str, stride: int) -> str:
    """Preprocessed MIT-BIH for ``preset`` and a copy of its manifests keeping one training window in ``stride``."""
    from physioclr_ext.preprocess import PreprocessConfig
    from physioclr_ext.preprocess import run as preprocess

    full = os.path.join(out, f"data_{preset}")
    if not os.path.exists(os.path.join(full, "valid.tsv")):
        cfg = PreprocessConfig.from_preset(
            preset, input=os.path.join(data_root, "mitdb"), output=full, label_scheme="binary", progress=False
        )
        preprocess(cfg)
    reduced = os.path.join(out, f"data_{preset}_stride{stride}")
    os.makedirs(reduced, exist_ok=True)
    for split in ("train", "valid", "test"):
        with open(os.path.join(full, f"{split}.tsv"), encoding="utf-8") as fh:
            root, *rows = fh.read().splitlines()
        keep = rows[::stride] if split == "train" else rows
        with open(os.path.join(reduced, f"{split}.tsv"), "w", encoding="utf-8") as fh:
            fh.write("\n".join([os.path.abspath(os.path.join(full, root)) if not os.path.isabs(root) else root, *keep]))
            fh.write("\n")
    for name in ("preprocess.json", "label_def.csv"):
        if os.path.exists(os.path.join(full, name)) and not os.path.exists(os.path.join(reduced, name)):
            os.symlink(os.path.abspath(os.path.join(full, name)), os.path.join(reduced, name))
    return reduced


def probe(checkpoint: str, data: str, out: str, seed: int, k: int) -> Dict[str, Dict[str, float]]:
    """Embed ``checkpoint`` over train/valid/test, then k-NN and linear probe; ``{probe: {metric: value}}``."""
    emb = os.path.join(out, "embeddings")
    os.makedirs(out, exist_ok=True)
    if not os.path.exists(os.path.join(emb, "embed.json")):
        _evaluation(
            ["embed", "--checkpoint", checkpoint, "--data", data, "--out", emb, "--device", "cpu"],
            os.path.join(out, "embed.log"),
        )
    scores: Dict[str, Dict[str, float]] = {}
    for name in PROBES:
        res_dir = os.path.join(out, name)
        if not os.path.exists(os.path.join(res_dir, "results.json")):
            extra = ["--k", str(k)] if name == "knn" else []
            _evaluation(
                [name, "--embeddings", emb, "--out", res_dir, "--seeds", str(seed), *extra],
                os.path.join(out, f"{name}.log"),
            )
        with open(os.path.join(res_dir, "results.json"), encoding="utf-8") as fh:
            cells = json.load(fh)["results"]["n=all"]
        scores[name] = {m: float(cells[m]["mean"]) for m in METRICS}
    return scores


def summary_table(rows: List[dict]) -> str:
    """Markdown: per method and probe, frozen / triplet / difference, mean [95% CI] over seeds."""
    from physioclr_ext.evaluation.stats import mean_ci

    def cell(values: List[float], bounds: object = (0.0, 1.0)) -> str:
        r = mean_ci(values, bounds=bounds)  # type: ignore[arg-type]
        if r["ci_low"] is None:
            return f"{r['mean']:.3f}"
        return f"{r['mean']:.3f} [{r['ci_low']:.3f}, {r['ci_high']:.3f}]"

    lines = [
        "| encoder | probe | metric | frozen encoder | triplet fine-tuned | triplet - frozen | seeds |",
        "|---|---|---|---|---|---|---|",
    ]
    for method in dict.fromkeys(r["method"] for r in rows):
        runs = [r for r in rows if r["method"] == method]
        for name in PROBES:
            for m in METRICS:
                frozen = [r["frozen"][name][m] for r in runs]
                triplet = [r["triplet"][name][m] for r in runs]
                diff = [t - f for t, f in zip(triplet, frozen)]
                lines.append(
                    f"| {method} | {name} | {m} | {cell(frozen)} | {cell(triplet)} | {cell(diff, (-1.0, 1.0))} | "
                    f"{len(runs)} |"
                )
    return "\n".join(lines) + "\n"


def main(argv: List[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data-root", default="/work/shared/data")
    p.add_argument("--out", required=True)
    p.add_argument("--methods", nargs="+", default=["contrastive_cnn_tiny", "st_mem_vit_s_tiny"])
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--pretrain-updates", type=int, default=100)
    p.add_argument("--triplet-updates", type=int, default=150)
    p.add_argument("--train-stride", type=int, default=8, help="keep one training window in N (default 8)")
    p.add_argument("--k", type=int, default=5, help="neighbours of the k-NN probe")
    p.add_argument(
        "--triplet-overrides",
        nargs="*",
        default=[],
        metavar="KEY=VALUE",
        help="more Hydra overrides of the triplet fine-tuning, e.g. model.standardize_embedding=false (the "
        "study's head); use its own --out, finished steps are not redone",
    )
    args = p.parse_args(argv)

    rows = []
    for method in args.methods:
        preset = next((v for prefix, v in PRESET.items() if method.startswith(prefix)), "fairseq_signals")
        data = prepare_data(args.data_root, args.out, preset, args.train_stride)
        for seed in args.seeds:
            run = os.path.join(args.out, method, f"seed{seed}")
            seeded = [f"common.seed={seed}"]
            hydra_train(
                "pretraining",
                method,
                data,
                os.path.join(run, "pretrain"),
                [*seeded, f"optimization.max_update={args.pretrain_updates}", "optimization.max_epoch=0"],
            )
            encoder = os.path.join(run, "pretrain", "checkpoint_last.pt")
            hydra_train(
                "finetuning",
                "ecg_triplet_tiny",
                data,
                os.path.join(run, "triplet"),
                [
                    *seeded,
                    f"criterion.seed={seed}",
                    base_override(encoder),
                    f"optimization.max_update={args.triplet_updates}",
                    "optimization.max_epoch=0",
                    f"criterion.knn_k={args.k}",
                    *args.triplet_overrides,
                ],
            )
            triplet = os.path.join(run, "triplet", "checkpoint_best.pt")
            row = {
                "method": method,
                "seed": seed,
                "frozen": probe(encoder, data, os.path.join(run, "eval_frozen"), seed, args.k),
                "triplet": probe(triplet, data, os.path.join(run, "eval_triplet"), seed, args.k),
            }
            rows.append(row)
            print(json.dumps(row), flush=True)
    table = summary_table(rows)
    with open(os.path.join(args.out, "results.json"), "w", encoding="utf-8") as fh:
        json.dump({"command": " ".join(sys.argv), "args": vars(args), "rows": rows}, fh, indent=2)
    with open(os.path.join(args.out, "results.md"), "w", encoding="utf-8") as fh:
        fh.write(table)
    print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
