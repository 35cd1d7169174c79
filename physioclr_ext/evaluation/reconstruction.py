"""Pictures and errors of a masked-modelling reconstruction (ECG MAE, ST-MEM).

A masked-modelling model's ``reconstruct`` returns, per window, the ``original`` signal
(C, T), the ``masked`` input (C, T) with NaN on masked samples, and the ``reconstruction``
(C, T). :func:`plot_reconstruction` draws them lead by lead (one row per lead, a 6 x 2 grid
for 12 leads): the original in grey, the visible input in black, masked spans shaded, the
reconstruction overlaid in red (solid where masked, faint where visible, since MAE-style
losses train only the masked part). Each lead has its own y-range, never narrower than 10% of
the window's overall range, so an absent (all-zero) lead shows as a flat line. :func:`reconstruction_errors` gives the mean squared
error on masked and on visible samples.

Example::

    errors = reconstruction_errors(out["original"][0], out["masked"][0], out["reconstruction"][0])
    plot_reconstruction(out["original"][0], out["masked"][0], out["reconstruction"][0], "100.png",
                        sample_rate=500, title="record 100")
"""

from __future__ import annotations

import math
import os
from typing import Dict, List, Optional, Sequence, Tuple, Union

import numpy as np

STANDARD_LEADS = ("I", "II", "III", "aVR", "aVL", "aVF", "V1", "V2", "V3", "V4", "V5", "V6")
ROW_INCHES = 1.3  # height of one lead row
HEADER_INCHES = 0.9  # title and legend
ONE_COLUMN_INCHES = 12.0
TWO_COLUMN_INCHES = 16.0
COLORS = {"original": "0.6", "visible": "black", "masked": "tab:orange", "reconstruction": "tab:red"}

ErrorValue = Union[float, int, List[float]]


def _as_2d(x: np.ndarray, name: str) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    if x.ndim == 1:
        x = x[None]
    if x.ndim != 2:
        raise ValueError(f"{name} must be (C, T) or (T,), got shape {x.shape}")
    return x


def _check(original: np.ndarray, masked: np.ndarray, reconstruction: np.ndarray) -> Tuple[np.ndarray, ...]:
    arrays = _as_2d(original, "original"), _as_2d(masked, "masked"), _as_2d(reconstruction, "reconstruction")
    if len({a.shape for a in arrays}) != 1:
        raise ValueError(f"original, masked and reconstruction differ in shape: {[a.shape for a in arrays]}")
    return arrays


def _mse(diff: np.ndarray) -> float:
    return float(np.mean(diff**2)) if diff.size else math.nan


def reconstruction_errors(
    original: np.ndarray, masked: np.ndarray, reconstruction: np.ndarray
) -> Dict[str, ErrorValue]:
    """Mean squared reconstruction errors of one window, split by the mask.

    Args:
        original: (C, T) (or (T,)) signal.
        masked: same shape, NaN exactly on the masked samples.
        reconstruction: same shape.

    Returns:
        ``mse_masked`` and ``mse_visible`` (means over the masked / visible samples of every
        lead; NaN where there are none), ``mse_all``, ``n_masked``, ``n_visible``,
        ``masked_fraction`` and ``mse_masked_per_lead`` (C values, NaN for a lead with nothing
        masked).
    """
    original, masked, reconstruction = _check(original, masked, reconstruction)
    hidden = np.isnan(masked)
    diff = reconstruction - original
    per_lead = [_mse(d[h]) for d, h in zip(diff, hidden)]
    return {
        "mse_masked": _mse(diff[hidden]),
        "mse_visible": _mse(diff[~hidden]),
        "mse_all": _mse(diff),
        "n_masked": int(hidden.sum()),
        "n_visible": int((~hidden).sum()),
        "masked_fraction": float(hidden.mean()) if hidden.size else math.nan,
        "mse_masked_per_lead": per_lead,
    }


def masked_spans(hidden: np.ndarray) -> List[Tuple[int, int]]:
    """Half-open ``[start, end)`` runs of True in a 1-D boolean mask."""
    padded = np.concatenate([[False], np.asarray(hidden, dtype=bool), [False]])
    edges = np.flatnonzero(np.diff(padded.astype(np.int8)))
    return [(int(s), int(e)) for s, e in zip(edges[0::2], edges[1::2])]


def grid_shape(n_leads: int) -> Tuple[int, int]:
    """(rows, columns) of the figure: 6 x 2 for 12 leads, one row per lead otherwise."""
    return (6, 2) if n_leads == 12 else (n_leads, 1)


def figure_inches(n_leads: int) -> Tuple[float, float]:
    """(width, height) in inches of the figure for ``n_leads`` leads; pixels = inches x dpi."""
    rows, cols = grid_shape(n_leads)
    return (TWO_COLUMN_INCHES if cols == 2 else ONE_COLUMN_INCHES, HEADER_INCHES + ROW_INCHES * rows)


def default_lead_names(n_leads: int) -> List[str]:
    """The standard 12-lead names for 12 leads, ``lead 1``, ``lead 2``, ... otherwise."""
    return list(STANDARD_LEADS) if n_leads == len(STANDARD_LEADS) else [f"lead {i + 1}" for i in range(n_leads)]


def _y_limits(original: np.ndarray, reconstruction: np.ndarray, min_half_range: float) -> Tuple[float, float]:
    """Limits covering both curves, never narrower than +-``min_half_range`` around their middle."""
    values = np.concatenate([original, reconstruction])
    values = values[np.isfinite(values)]
    if not values.size:
        return -1.0, 1.0
    lo, hi = float(values.min()), float(values.max())
    middle, half = (lo + hi) / 2, max((hi - lo) / 2 * 1.05, min_half_range, 1e-12)
    return middle - half, middle + half


def _draw_lead(
    ax,
    t: np.ndarray,
    dt: float,
    original: np.ndarray,
    masked: np.ndarray,
    reconstruction: np.ndarray,
    name: str,
    mse: float,
    min_half_range: float,
) -> None:
    hidden = np.isnan(masked)
    spans = [(t[start], t[end - 1] + dt - t[start]) for start, end in masked_spans(hidden)]
    if spans:  # one collection for every span, full height in axes coordinates
        ax.broken_barh(spans, (0, 1), transform=ax.get_xaxis_transform(), color=COLORS["masked"], alpha=0.18, lw=0)
    ax.plot(t, original, color=COLORS["original"], lw=1.6)
    ax.plot(t, masked, color=COLORS["visible"], lw=0.8)  # NaN gaps leave the masked spans blank
    ax.plot(t, np.where(hidden, reconstruction, np.nan), color=COLORS["reconstruction"], lw=0.9)
    ax.plot(t, np.where(hidden, np.nan, reconstruction), color=COLORS["reconstruction"], lw=0.6, alpha=0.25)
    ax.set_ylabel(name, rotation=0, ha="right", va="center")
    if not math.isnan(mse):
        ax.text(
            0.995,
            0.96,
            f"masked MSE {mse:.3g}",
            transform=ax.transAxes,
            ha="right",
            va="top",
            fontsize=7,
            bbox=dict(facecolor="white", edgecolor="none", alpha=0.7, pad=1),
        )
    ax.margins(x=0)
    ax.set_ylim(*_y_limits(original, reconstruction, min_half_range))
    ax.tick_params(labelsize=7)


def _legend(fig) -> None:
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    handles = [
        Line2D([], [], color=COLORS["original"], lw=1.6, label="original"),
        Line2D([], [], color=COLORS["visible"], lw=0.8, label="visible input"),
        Patch(color=COLORS["masked"], alpha=0.18, label="masked"),
        Line2D([], [], color=COLORS["reconstruction"], lw=0.9, label="reconstruction"),
    ]
    fig.legend(handles=handles, loc="upper right", ncol=4, fontsize=8, frameon=False)


def plot_reconstruction(
    original: np.ndarray,
    masked: np.ndarray,
    reconstruction: np.ndarray,
    path: str,
    sample_rate: Optional[float] = None,
    lead_names: Optional[Sequence[str]] = None,
    title: Optional[str] = None,
    dpi: int = 100,
) -> str:
    """Write a PNG of one window's reconstruction, lead by lead.

    Args:
        original: (C, T) (or (T,)) signal.
        masked: same shape, NaN on masked samples (the model's visible input elsewhere).
        reconstruction: same shape.
        path: output PNG; its parent directories are created.
        sample_rate: Hz; the time axis is in seconds when given, in samples otherwise.
        lead_names: C names (default :func:`default_lead_names`).
        title: figure title.
        dpi: the PNG is ``figure_inches(C)`` x ``dpi`` pixels.

    Returns:
        ``path``.
    """
    # The object-oriented API renders with Agg without touching pyplot's global backend.
    from matplotlib.figure import Figure

    original, masked, reconstruction = _check(original, masked, reconstruction)
    n_leads, n_samples = original.shape
    names = list(lead_names) if lead_names is not None else default_lead_names(n_leads)
    if len(names) != n_leads:
        raise ValueError(f"{len(names)} lead names for {n_leads} leads")
    dt = 1.0 / sample_rate if sample_rate else 1.0
    t = np.arange(n_samples) * dt
    rows, cols = grid_shape(n_leads)
    fig = Figure(figsize=figure_inches(n_leads), dpi=dpi, constrained_layout=True)
    axes = fig.subplots(rows, cols, sharex=True, squeeze=False)
    per_lead = reconstruction_errors(original, masked, reconstruction)["mse_masked_per_lead"]
    assert isinstance(per_lead, list)
    # An absent (all-zero) lead would otherwise be zoomed onto its reconstruction's numerical noise.
    finite = original[np.isfinite(original)]
    min_half_range = 0.05 * float(np.ptp(finite)) if finite.size else 0.0
    for lead in range(n_leads):
        ax = axes[lead % rows, lead // rows]  # column-major: limb leads left, chest leads right
        _draw_lead(
            ax, t, dt, original[lead], masked[lead], reconstruction[lead], names[lead], per_lead[lead], min_half_range
        )
    for ax in axes[-1]:
        ax.set_xlabel("time (s)" if sample_rate else "sample")
    _legend(fig)
    if title:
        fig.suptitle(title, x=0.01, ha="left", fontsize=10)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    fig.savefig(path, format="png")  # no tight bbox: the pixel size stays figure_inches x dpi
    return path
