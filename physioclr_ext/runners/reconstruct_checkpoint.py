"""``python -m physioclr_ext.evaluation reconstruct``: reconstruction pictures of a masked-modelling checkpoint.

For the first window of each of the first ``n`` records of a manifest (records from the
``windows.csv`` that preprocessing writes next to it; without it, the first ``n`` windows),
the window's ``feats`` are read from its ``.mat`` file, prepared as in training (the
checkpoint task's lead selection, filtering, normalisation and sampling-rate check), masked and
reconstructed by ``model.reconstruct`` in eval mode with a seeded generator, then drawn by
:func:`physioclr_ext.evaluation.reconstruction.plot_reconstruction`. Writes
``OUT/<record>.png`` per window and ``OUT/reconstruction.json`` (per-window errors, checkpoint
and its sha256, seed, mask ratio, command line).

Models with a ``reconstruct`` method: ``ecg_mae`` and ``st_mem``. This module imports
fairseq-signals when it loads a checkpoint: use it where fairseq-signals is installed.
"""

from __future__ import annotations

import csv
import json
import os
import re
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np
import scipy.io
import torch

RESULT_FILE = "reconstruction.json"
KNOWN_RECONSTRUCTING_MODELS = ("ecg_mae", "st_mem")


class ReconstructError(ValueError):
    """A reconstruct request that cannot be served (reported by the command without a traceback)."""


class ReconstructionUnsupportedError(ReconstructError):
    """The checkpoint's model has no ``reconstruct`` method."""


@dataclass
class Window:
    """One manifest row to draw: its path relative to the manifest root and its output name."""

    path: str
    record: str
    name: str


def _safe_name(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("._") or "window"


def select_windows(manifest: str, n_records: int) -> List[Window]:
    """The first window of each of the first ``n_records`` records, in manifest order.

    Records come from ``windows.csv`` next to the manifest (its ``path`` and ``record`` columns);
    without it (or for paths it lacks) every window counts as its own record, named by its file stem.
    """
    from physioclr_ext.evaluation.predictions import Manifest

    paths = Manifest.read(manifest).paths
    records: Dict[str, str] = {}
    table = os.path.join(os.path.dirname(os.path.abspath(manifest)), "windows.csv")
    if os.path.exists(table):
        with open(table, encoding="utf-8", newline="") as fh:
            records = {row["path"]: row["record"] for row in csv.DictReader(fh) if row.get("record")}
    chosen: List[Window] = []
    seen = set()
    for path in paths:
        stem = os.path.splitext(os.path.basename(path))[0]
        record = records.get(path, stem)
        if record in seen:
            continue
        seen.add(record)
        chosen.append(Window(path, record, _safe_name(record)))
        if len(chosen) == n_records:
            break
    return chosen


def preprocess_leads(data_dir: str) -> Optional[List[str]]:
    """Lead names of a preprocessing output (``preprocess.json``: ``window.leads``), or None."""
    path = os.path.join(data_dir, "preprocess.json")
    if not os.path.exists(path):
        return None
    with open(path, encoding="utf-8") as fh:
        meta = json.load(fh)
    leads = (meta.get("window") or {}).get("leads") or (meta.get("options") or {}).get("leads")
    return [str(x) for x in leads] if leads else None


def resolve_lead_names(
    n_leads: int, given: Optional[Sequence[str]], stored: Optional[Sequence[str]], selected: Optional[Sequence[int]]
) -> Optional[List[str]]:
    """Names of the model's ``n_leads`` input leads.

    ``given`` (the command line) must have ``n_leads`` names. Otherwise the stored names of the
    preprocessing output, restricted to the task's selected lead indices when it selects some;
    None (the plot's defaults) when they do not fit.
    """
    if given:
        if len(given) != n_leads:
            raise ReconstructError(f"--lead-names gives {len(given)} names, the model sees {n_leads} leads")
        return list(given)
    if not stored:
        return None
    names = list(stored)
    if selected is not None and len(selected) == n_leads and max(selected) < len(names):
        names = [names[i] for i in selected]
    return names if len(names) == n_leads else None


def reconstructing_models() -> List[str]:
    """Registered model names whose class defines ``reconstruct``."""
    try:
        from fairseq_signals.models import MODEL_REGISTRY
    except ImportError:
        return list(KNOWN_RECONSTRUCTING_MODELS)
    names = [name for name, cls in MODEL_REGISTRY.items() if callable(getattr(cls, "reconstruct", None))]
    return sorted(names) or list(KNOWN_RECONSTRUCTING_MODELS)


def check_reconstructs(model: Any, model_name: str, checkpoint: str) -> None:
    """Raise :class:`ReconstructionUnsupportedError` naming the models that can, if ``model`` cannot."""
    if not callable(getattr(model, "reconstruct", None)):
        raise ReconstructionUnsupportedError(
            f"model '{model_name}' of {checkpoint} has no reconstruct(): reconstruction pictures need a "
            f"masked-modelling checkpoint, from one of the models {', '.join(reconstructing_models())}"
        )


def _window_reader(task_cfg: Any) -> Any:
    """A fairseq-signals dataset used only for its ``postprocess`` (training's input preparation)."""
    from fairseq_signals.data.ecg.raw_ecg_dataset import RawECGDataset

    def get(key: str, default: Any = None) -> Any:
        return getattr(task_cfg, key, default) if task_cfg is not None else default

    return RawECGDataset(
        sample_rate=get("sample_rate"),
        leads_to_load=get("leads_to_load"),
        filter=bool(get("filter", False)),
        normalize=bool(get("normalize", False)),
        mean_path=get("mean_path"),
        std_path=get("std_path"),
        pad_leads=bool(get("pad_leads", False)),
        pad=False,
        training=False,
    )


def read_window(root: str, path: str, reader: Any) -> Tuple[torch.Tensor, Optional[int]]:
    """``(source (C', T) float tensor as the model sees it, sampling rate or None)`` of one ``.mat`` window."""
    mat = scipy.io.loadmat(os.path.join(root, path), variable_names=("feats", "curr_sample_rate"))
    rate = int(np.asarray(mat["curr_sample_rate"]).reshape(-1)[0]) if "curr_sample_rate" in mat else None
    feats = torch.from_numpy(np.asarray(mat["feats"], dtype=np.float32))
    return reader.postprocess(feats, curr_sample_rate=rate), rate


def reconstruct_window(
    model: Any, source: torch.Tensor, seed: int, mask_ratio: Optional[float], device: str
) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``model.reconstruct`` of one window (C, T) with a generator seeded ``seed``: original, masked
    (NaN where masked) and reconstruction, each (C, T') float arrays."""
    generator = torch.Generator(device=device).manual_seed(seed)
    with torch.no_grad():
        out = model.reconstruct(source[None].to(device), mask_ratio=mask_ratio, generator=generator)
    original, masked, recon = (out[key][0].float().cpu().numpy() for key in ("original", "masked", "reconstruction"))
    return original, masked, recon


def _mean(values: List[float]) -> Optional[float]:
    finite = [v for v in values if v is not None and np.isfinite(v)]
    return float(np.mean(finite)) if finite else None


def reconstruct_manifest(
    checkpoint: str,
    manifest: str,
    out_dir: str,
    n_records: int = 4,
    seed: int = 0,
    mask_ratio: Optional[float] = None,
    lead_names: Optional[Sequence[str]] = None,
    device: Optional[str] = None,
    progress: bool = True,
) -> Dict[str, Any]:
    """Write one reconstruction PNG per selected window and ``reconstruction.json``; return the JSON's content.

    Window ``k`` (in selection order) is masked with a generator seeded ``seed + k``.
    """
    from tqdm import tqdm

    from physioclr_ext.evaluation.predictions import Manifest
    from physioclr_ext.evaluation.reconstruction import plot_reconstruction, reconstruction_errors
    from physioclr_ext.evaluation.results import command_line, file_sha256, json_safe
    from physioclr_ext.runners.extract_embeddings import load_checkpoint

    windows = select_windows(manifest, n_records)
    if not windows:
        raise ReconstructError(f"{manifest} lists no windows")
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    data_dir = os.path.dirname(os.path.abspath(manifest))
    loaded = load_checkpoint(checkpoint, data_dir, device)
    model_name = str(loaded.cfg.model.get("_name"))
    check_reconstructs(loaded.model, model_name, checkpoint)
    reader = _window_reader(loaded.cfg.task)
    root = Manifest.read(manifest).root
    stored_leads = preprocess_leads(data_dir)
    rows: List[Dict[str, Any]] = []
    names: Optional[List[str]] = None
    os.makedirs(out_dir, exist_ok=True)
    for k, window in enumerate(tqdm(windows, desc="reconstruct", unit="window", disable=not progress)):
        source, rate = read_window(root, window.path, reader)
        original, masked, recon = reconstruct_window(loaded.model, source, seed + k, mask_ratio, device)
        names = resolve_lead_names(original.shape[0], lead_names, stored_leads, reader.leads_to_load)
        errors = reconstruction_errors(original, masked, recon)
        png = os.path.join(out_dir, f"{window.name}.png")
        title = (
            f"record {window.record} ({window.path}), {model_name}: masked {errors['masked_fraction']:.0%}, "
            f"MSE masked {errors['mse_masked']:.3g}, visible {errors['mse_visible']:.3g}"
        )
        plot_reconstruction(original, masked, recon, png, sample_rate=rate, lead_names=names, title=title)
        rows.append(
            {
                "path": window.path,
                "record": window.record,
                "png": os.path.basename(png),
                "seed": seed + k,
                "sample_rate": rate,
                "shape": list(original.shape),
                **errors,
            }
        )
    result = {
        "command": command_line(),
        "checkpoint": os.path.abspath(checkpoint),
        "checkpoint_sha256": file_sha256(checkpoint),
        "model": model_name,
        "manifest": os.path.abspath(manifest),
        "seed": seed,
        "mask_ratio": mask_ratio if mask_ratio is not None else loaded.cfg.model.get("mask_ratio"),
        "mask_ratio_source": "command line" if mask_ratio is not None else "checkpoint",
        "norm_target": True,
        "lead_names": names,
        "n_records_requested": n_records,
        "mean": {key: _mean([r[key] for r in rows]) for key in ("mse_masked", "mse_visible", "mse_all")},
        "windows": rows,
    }
    with open(os.path.join(out_dir, RESULT_FILE), "w", encoding="utf-8") as fh:
        json.dump(json_safe(result), fh, indent=2, allow_nan=False)
    return result
