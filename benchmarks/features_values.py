"""Which feature values this package and PhysioCLR's released extractor agree on, window by window.

Usage (from the repository root)::

    python benchmarks/features_values.py --physioclr PATH [--data-root ../shared/data] [--windows 100]

``PATH`` is a checkout of nooshinmaghsoodi/PhysioCLR (never fetched here). Both extractors read the same
windows (the first 5 s, 12 leads, 500 Hz, mV, of the first ``--windows`` LUDB records, as
``benchmarks/features.py`` times them): this package's :func:`physioclr_ext.features.extract.extract_features`
(default ``dwt`` delineation) and the script's ``extract_ecg_features``. For every quantity both compute
(:data:`PAIRS`: the per-window aggregates, HRV, the shares of abnormal beats and the beat-to-beat correlation;
the script's percentages scaled to shares), it prints the share of windows where the two values agree within
1% (or the absolute tolerance of the unit), the median absolute difference and the median of each side.
"""

from __future__ import annotations

import argparse
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

from physioclr_ext.features import extract  # noqa: E402  (after sys.path)
from physioclr_ext.features.names import FEATURE_INDEX  # noqa: E402

STATS = ("mean", "std", "median", "iqr")
AGGREGATES = (
    ("rr_ms", "RR_stats", 1.0),
    ("pr_ms", "PR_stats", 1.0),
    ("qrs_ms", "QRS_stats", 1.0),
    ("qtc_ms", "QTc_stats", 1.0),
    ("p_dur_ms", "Pdur_stats", 1.0),
    ("t_dur_ms", "Tdur_stats", 1.0),
    ("r_amp_mv", "Ramp_stats", 0.01),
    ("p_amp_mv", "Pamp_stats", 0.01),
    ("t_amp_mv", "Tamp_stats", 0.01),
    ("qrs_slope_mv_per_ms", "QRSslope_stats", 0.001),
    ("st_j60_mv", "ST_stats", 0.01),
)
"""(our feature, the script's stats key, absolute tolerance in the feature's unit)."""
SCALARS = (
    ("rmssd_ms", "rmssd", 1.0, 1.0),
    ("pnn50", "pnn50", 0.01, 0.01),
    ("cvrr", "cvrr", 1.0, 0.001),
    ("short_rr_share", "pct_short_rr", 0.01, 0.01),
    ("pr_gt_200_share", "pct_pr_gt_200", 0.01, 0.01),
    ("qrs_ge_120_share", "pct_qrs_ge_120", 0.01, 0.01),
    ("qrs_100_119_share", "pct_qrs_100_119", 0.01, 0.01),
    ("qtc_ge_500_share", "pct_qtc_ge_500", 0.01, 0.01),
    ("p_absent_share", "pct_absent_p", 0.01, 0.01),
    ("t_inverted_share", "pct_inverted_t", 0.01, 0.01),
    ("st_dev_ge_0p1_share", "pct_abn_st", 0.01, 0.01),
    ("st_mad_mv", "st_mad", 1.0, 0.01),
    ("beat_corr_mean", "adj_corr_mean", 1.0, 0.01),
    ("beat_corr_std", "adj_corr_std", 1.0, 0.01),
    ("beat_corr_min", "adj_corr_min", 1.0, 0.01),
)
"""(our feature, the script's key, factor that turns the script's value into ours, absolute tolerance)."""


def pairs() -> list[tuple[str, tuple[str, ...], float, float]]:
    """``(our name, path into the script's dict, factor, absolute tolerance)`` of every shared quantity."""
    out = [(f"{ours}_{s}", (key, s), 1.0, tol) for ours, key, tol in AGGREGATES for s in STATS]
    return out + [(ours, (key,), factor, tol) for ours, key, factor, tol in SCALARS]


def _lookup(feats: dict[str, Any], path: Sequence[str]) -> float:
    value: Any = feats
    for key in path:
        value = value[key]
    return float(value)


def value_table(
    ours: Sequence[np.ndarray], theirs: Sequence[dict[str, Any]], rel: float = 0.01
) -> list[dict[str, Any]]:
    """Per shared quantity: ``agree`` (share of windows with ``|a - b| <= max(tol, rel * max(|a|, |b|))``),
    ``median_abs_diff``, ``median_ours``, ``median_theirs``; ``ours`` are (184,) vectors in
    :data:`~physioclr_ext.features.names.FEATURE_NAMES` order, ``theirs`` the script's dicts, same windows."""
    if len(ours) != len(theirs) or not ours:
        raise ValueError(f"need the same non-zero number of windows on both sides, got {len(ours)} and {len(theirs)}")
    rows = []
    for name, path, factor, tol in pairs():
        a = np.array([v[FEATURE_INDEX[name]] for v in ours], dtype=np.float64)
        b = np.array([_lookup(f, path) * factor for f in theirs], dtype=np.float64)
        close = np.abs(a - b) <= np.maximum(tol, rel * np.maximum(np.abs(a), np.abs(b)))
        rows.append(
            {
                "feature": name,
                "agree": float(close.mean()),
                "median_abs_diff": float(np.median(np.abs(a - b))),
                "median_ours": float(np.median(a)),
                "median_theirs": float(np.median(b)),
            }
        )
    return rows


def format_table(rows: list[dict[str, Any]], n: int) -> str:
    lines = [
        f"{n} LUDB windows; agree = |ours - theirs| <= max(tolerance, 1%)",
        "| feature | agree | median abs. difference | median ours | median PhysioCLR |",
        "|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['feature']} | {r['agree']:.0%} | {r['median_abs_diff']:.4g} | {r['median_ours']:.4g} | "
            f"{r['median_theirs']:.4g} |"
        )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--physioclr", required=True, help="checkout of nooshinmaghsoodi/PhysioCLR")
    parser.add_argument("--data-root", default=str(REPO.parent / "shared" / "data"))
    parser.add_argument("--windows", type=int, default=100)
    args = parser.parse_args(argv)
    from features import load_physioclr_script, ludb_windows  # benchmarks/features.py: the windows it times

    script = load_physioclr_script(args.physioclr)
    windows = ludb_windows(Path(args.data_root), args.windows)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        kept = [(extract.extract_features(w, fs), w, fs) for w, fs in windows]
        kept = [(r, w, fs) for r, w, fs in kept if r.valid]  # the script has no notion of an invalid window
        ours = [r.vector for r, _, _ in kept]
        theirs = [script.extract_ecg_features(w, sampling_rate=int(fs)) for _, w, fs in kept]
    print(format_table(value_table(ours, theirs), len(kept)))
    print(f"({len(windows) - len(kept)} of {len(windows)} windows invalid here, left out)")


if __name__ == "__main__":
    main()
