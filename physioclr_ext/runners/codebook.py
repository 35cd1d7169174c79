"""``python -m physioclr_ext.evaluation codebook``: how an ``ecg_vqvae`` checkpoint uses its codebook
over the windows of a manifest: perplexity (exp of the entropy of the code frequencies; K when every code
is used equally, 1 when one code takes everything), codes used, dead codes (never chosen), a JSON report
and a PNG histogram of code use sorted by frequency.

This module imports fairseq-signals: use it where fairseq-signals is installed.
"""

from __future__ import annotations

import json
import os
from typing import Any, Dict, Optional

import numpy as np
import torch


def code_counts(checkpoint: str, manifest: str, batch_size: int = 64, device: Optional[str] = None) -> np.ndarray:
    """Uses (K,) of each code over every window (every step for the sequence form) of ``manifest``."""
    from physioclr_ext.runners.extract_embeddings import _batches, _load_subset, load_checkpoint

    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    data, subset = os.path.dirname(os.path.abspath(manifest)), os.path.basename(manifest)[: -len(".tsv")]
    loaded = load_checkpoint(checkpoint, data, device)
    if not callable(getattr(loaded.model, "codes", None)):
        raise ValueError(f"{checkpoint}: model {loaded.cfg.model.get('_name')} has no codebook (use an ecg_vqvae one)")
    k = int(loaded.cfg.model.codebook_size)
    counts = np.zeros(k, dtype=np.int64)
    dataset = _load_subset(loaded, subset)
    with torch.no_grad():
        for _, batch in _batches(dataset, batch_size):
            net_input = {n: v.to(device) if torch.is_tensor(v) else v for n, v in batch["net_input"].items()}
            idx = loaded.model.codes(net_input["source"], net_input.get("padding_mask"))
            counts += np.bincount(idx.reshape(-1).cpu().numpy(), minlength=k)
    if counts.sum() == 0:
        raise ValueError(f"{manifest}: no windows to count codes on")
    return counts


def usage_report(counts: np.ndarray) -> Dict[str, Any]:
    """Perplexity, codes used and dead codes of code counts (K,)."""
    from physioclr_ext.modules.vector_quantizer import perplexity

    k, used = len(counts), int((counts > 0).sum())
    ppl = float(perplexity(torch.as_tensor(counts, dtype=torch.float64)))
    return {
        "codebook_size": k,
        "perplexity": ppl,
        "perplexity_share": ppl / k,
        "codes_used": used,
        "dead_codes": k - used,
        "n_assignments": int(counts.sum()),
    }


def plot_usage(counts: np.ndarray, path: str, title: str = "") -> None:
    """Bar chart of code use, most used first, to ``path`` (PNG)."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(8, 3.2))
    ax = fig.add_subplot(1, 1, 1)
    order = np.argsort(-counts, kind="stable")
    ax.bar(np.arange(len(counts)), counts[order] / max(int(counts.sum()), 1), width=1.0, color="tab:blue")
    ax.set_xlabel("code (sorted by use)")
    ax.set_ylabel("share of assignments")
    ax.set_title(title)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def codebook_command(
    checkpoint: str, manifest: str, out: str, batch_size: int = 64, device: Optional[str] = None
) -> Dict[str, Any]:
    """Count codes over ``manifest``; write ``codebook.json`` and ``codebook.png`` in ``out``."""
    return write_report(code_counts(checkpoint, manifest, batch_size, device), checkpoint, manifest, out)


def write_report(counts: np.ndarray, checkpoint: str, manifest: str, out: str) -> Dict[str, Any]:
    """``codebook.json`` (usage report and counts) and ``codebook.png`` in ``out`` from per-code ``counts`` (K,)."""
    report = {"checkpoint": os.path.abspath(checkpoint), "manifest": os.path.abspath(manifest), **usage_report(counts)}
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, "codebook.json"), "w", encoding="utf-8") as fh:
        json.dump({**report, "counts": counts.tolist()}, fh, indent=2)
    title = f"K={report['codebook_size']}  perplexity {report['perplexity']:.1f}  dead {report['dead_codes']}"
    plot_usage(counts, os.path.join(out, "codebook.png"), title)
    return report
