"""Names of the physiological feature vector, one per dimension.

Layout (``FEATURE_DIM`` = 184 dimensions, in this order):

* per-beat block, first ``BEAT_CAP`` = 10 beats, beat-major: ``beat{k}_{feature}`` for the 11
  ``BEAT_FEATURES`` (110 dims), zero where the beat or its wave is missing;
* ``beat{k}_present`` for k < 10: the beat mask (10 dims);
* aggregates over all beats of the window: ``{feature}_{stat}`` for the 11 ``BEAT_FEATURES`` and the
  4 ``STATS`` (mean, std, median, IQR; 44 dims);
* ``HRV_FEATURES``: beat count, heart rate, RMSSD, pNN50, CV of RR, share of short RR (6 dims);
* ``ABNORMAL_FEATURES``: shares of abnormal beats and the ST median absolute deviation (8 dims);
* ``MORPHOLOGY_FEATURES``: adjacent-beat correlation mean, std and min (3 dims);
* ``QUALITY_FEATURES``: share of beats with a complete delineation, the median over beats of the best
  correlation with another beat of the window (near 0 for noise, > 0.65 on MIT-BIH), and the number of
  leads averaged (3 dims).

PhysioCLR's released extractor (``scripts/extract_ecg_features.py``) has a 159-d vector: it leaves the
ST level out of the per-beat block and has no beat mask; this layout keeps both.
"""

from __future__ import annotations

BEAT_CAP = 10
BEAT_FEATURES: tuple[str, ...] = (
    "rr_ms",
    "pr_ms",
    "qrs_ms",
    "qtc_ms",
    "p_dur_ms",
    "t_dur_ms",
    "r_amp_mv",
    "p_amp_mv",
    "t_amp_mv",
    "qrs_slope_mv_per_ms",
    "st_j60_mv",
)
STATS: tuple[str, ...] = ("mean", "std", "median", "iqr")
HRV_FEATURES: tuple[str, ...] = ("n_beats", "hr_bpm", "rmssd_ms", "pnn50", "cvrr", "short_rr_share")
ABNORMAL_FEATURES: tuple[str, ...] = (
    "pr_gt_200_share",
    "qrs_ge_120_share",
    "qrs_100_119_share",
    "qtc_ge_500_share",
    "p_absent_share",
    "t_inverted_share",
    "st_dev_ge_0p1_share",
    "st_mad_mv",
)
MORPHOLOGY_FEATURES: tuple[str, ...] = ("beat_corr_mean", "beat_corr_std", "beat_corr_min")
QUALITY_FEATURES: tuple[str, ...] = ("delineated_share", "beat_match_corr", "n_leads")


def beat_block_names() -> list[str]:
    """``beat{k}_{feature}`` for k < BEAT_CAP (beat-major), then ``beat{k}_present``."""
    values = [f"beat{k}_{name}" for k in range(BEAT_CAP) for name in BEAT_FEATURES]
    return values + [f"beat{k}_present" for k in range(BEAT_CAP)]


def aggregate_names() -> list[str]:
    """``{feature}_{stat}``, feature-major."""
    return [f"{name}_{stat}" for name in BEAT_FEATURES for stat in STATS]


FEATURE_NAMES: tuple[str, ...] = tuple(
    beat_block_names()
    + aggregate_names()
    + list(HRV_FEATURES)
    + list(ABNORMAL_FEATURES)
    + list(MORPHOLOGY_FEATURES)
    + list(QUALITY_FEATURES)
)
FEATURE_DIM = len(FEATURE_NAMES)
FEATURE_INDEX: dict[str, int] = {name: i for i, name in enumerate(FEATURE_NAMES)}
