"""Physiological ECG features (neurokit2) for PhysioCLR.

``extract_features`` (one window), ``extract_directory`` (a preprocessed output directory, see
``python -m physioclr_ext.features --help``), ``FEATURE_NAMES`` (one name per dimension) and the
on-disk contract in :mod:`physioclr_ext.features.store`.
"""

from .extract import REASONS, FeatureResult, extract_features
from .names import BEAT_CAP, BEAT_FEATURES, FEATURE_DIM, FEATURE_NAMES
from .pipeline import FeatureOptions, extract_directory
from .store import FeatureSplit, load_split, save_split, stored_feature_dim
from .transform import FeatureTransform, fit_transform

__all__ = [
    "BEAT_CAP",
    "BEAT_FEATURES",
    "FEATURE_DIM",
    "FEATURE_NAMES",
    "REASONS",
    "FeatureOptions",
    "FeatureResult",
    "FeatureSplit",
    "FeatureTransform",
    "extract_directory",
    "extract_features",
    "fit_transform",
    "load_split",
    "save_split",
    "stored_feature_dim",
]
