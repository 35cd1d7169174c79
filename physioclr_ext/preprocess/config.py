"""Configuration of the preprocessing pipeline and its named presets."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from dataclasses import dataclass, field
from typing import Any

from .dsp import NORMALIZE_CHOICES
from .labels import LABEL_SCHEMES
from .leads import CANONICAL_LEADS, parse_lead_list, parse_lead_map

FORMATS = ("auto", "mitdb", "ludb", "physionet2021", "wfdb", "npy_samples", "npy_classes")
SPLITS = ("random", "file", "mitbih_ds1ds2", "column")
SPLIT_NAMES = ("train", "valid", "test")
PAD_SHORT_CHOICES = ("zeros", "mask")
LABELS_KINDS = ("auto", "class", "multihot", "codes")
PTBXL_LABEL_SET_NAMES = ("superdiagnostic", "subdiagnostic", "diagnostic", "form", "rhythm", "all")
# ``features_pca`` value resolved by the feature stage from the training split's size.
PCA_AUTO = "auto"

PRESETS: dict[str, dict[str, Any]] = {
    # fairseq-signals / ECG-FM convention.
    "fairseq_signals": {
        "sample_rate": 500,
        "window_seconds": 5.0,
        "normalize": "per_lead",
        "leads": CANONICAL_LEADS,
    },
    # ST-MEM input contract.
    "st_mem": {
        "sample_rate": 250,
        "bandpass": (0.67, 40.0),
        "filter_order": 5,
        "apply_filter": True,
        "normalize": "per_sample",
        "leads": CANONICAL_LEADS,
        "window_seconds": 10.0,
    },
    # Few-shot arrhythmia detection on MIT-BIH (inter-patient DS1/DS2).
    "mitbih_fewshot": {
        "format": "mitdb",
        "leads": ("II",),
        "window_seconds": 10.0,
        "sample_rate": 360,
        "normalize": "per_lead",
        "split": "mitbih_ds1ds2",
        "label_scheme": "binary",
    },
    # ECG-JEPA input contract (Kim, arXiv 2410.08559): raw amplitudes, no filter, no normalisation.
    "ecg_jepa": {
        "sample_rate": 250,
        "apply_filter": False,
        "normalize": "none",
        "leads": ("I", "II", "V1", "V2", "V3", "V4", "V5", "V6"),
        "window_seconds": 10.0,
    },
    # LFBT (Liu et al., Information Fusion 2025): the original's 8 leads in its order, one z-score per ECG,
    # no filter (its README names resampling and z-scoring only). Its code and README do not state the rate
    # or the length; 500 Hz and 10 s are the native rate and record length of its pretraining set (Ningbo,
    # PhysioNet 2021) and of PTB-XL and Chapman, so a record is one window and nothing is resampled.
    "lfbt": {
        "sample_rate": 500,
        "apply_filter": False,
        "normalize": "per_sample",
        "leads": ("II", "III", "V1", "V2", "V3", "V4", "V5", "V6"),
        "window_seconds": 10.0,
    },
}
# PTB-XL (Wagner et al. 2020): its folder as published; ``{input}`` is the input folder. The label set is
# ``ptbxl_labels`` (superdiagnostic, subdiagnostic, diagnostic, form, rhythm, all); strat_fold 1-8/9/10.
PRESETS["ptbxl"] = {
    "format": "wfdb",
    "sample_rate": 500,
    "window_seconds": 10.0,
    "normalize": "per_lead",
    "leads": CANONICAL_LEADS,
    "labels_csv": "{input}/ptbxl_database.csv",
    "labels_record_column": "filename_hr",
    "labels_columns": ("scp_codes",),
    "labels_kind": "codes",
    "labels_map": "{input}/scp_statements.csv",
    "ptbxl_labels": "superdiagnostic",
    "labels_patient_column": "patient_id",
    "labels_split_column": "strat_fold",
    "split": "column",
}
PRESET_HELP: dict[str, str] = {
    "fairseq_signals": "500 Hz, 5 s windows, per-lead z-score, 12 leads (fairseq-signals/ECG-FM)",
    "st_mem": "250 Hz, 0.67-40 Hz order-5 zero-phase Butterworth, per_sample z-score, 12 leads, 10 s windows (ST-MEM)",
    "mitbih_fewshot": "MIT-BIH, lead II (MLII) only, 10 s windows, 360 Hz kept, per-lead "
    "z-score, DS1/DS2 inter-patient split, binary labels",
    "ecg_jepa": "250 Hz, 10 s windows (2500 samples), 8 leads I II V1-V6, raw amplitude: no filter, "
    "no normalisation (ECG-JEPA); add --hybrid-channels for its 19-channel hybrid input",
    "lfbt": "500 Hz, 10 s windows (5000 samples), 8 leads II III V1-V6, one z-score per ECG, no filter (LFBT; "
    "rate and length are this package's choice: the original does not state them)",
    "ptbxl": "PTB-XL folder as published: records500/ (filename_hr; records100/ when only it exists), "
    "ptbxl_database.csv, scp_statements.csv; 500 Hz, 10 s, 12 leads, per-lead z-score; --ptbxl-labels "
    "superdiagnostic (default), subdiagnostic, diagnostic, form, rhythm or all; strat_fold 1-8 train, 9 valid, 10 test",
}
# Options that change what is written for a record; a resume marker is only
# reused when these (and the record's idx/patient/labels) are unchanged.
_RECORD_OPTIONS = (
    "format",
    "leads",
    "bandpass",
    "filter_order",
    "apply_filter",
    "sample_rate",
    "input_sample_rate",
    "lead_names",
    "normalize",
    "window_seconds",
    "overlap_seconds",
    "quality",
    "flat_threshold",
    "saturation_threshold",
    "compress",
)


def default_workers() -> int:
    """``min(4, cpu count)``."""
    return max(1, min(4, os.cpu_count() or 1))


@dataclass
class PreprocessConfig:
    """All options of one preprocessing run (see ``python -m physioclr_ext.preprocess --help``)."""

    input: str
    output: str
    format: str = "auto"
    preset: str | None = None
    leads: tuple[str, ...] = CANONICAL_LEADS
    apply_filter: bool = True
    bandpass: tuple[float, float] = (0.5, 40.0)
    filter_order: int = 5
    sample_rate: int = 500
    input_sample_rate: float | None = None
    lead_names: tuple[str, ...] | None = None
    normalize: str = "per_lead"
    window_seconds: float = 5.0
    overlap_seconds: float = 0.0
    quality: str = "drop"
    flat_threshold: float = 0.02
    saturation_threshold: float = 0.05
    # Windows whose signal quality score (``quality`` module: minimum over present leads, in [0, 1]) is below
    # this are flagged ``low_quality`` (dropped with quality="drop"); ``None`` scores without flagging.
    quality_min: float | None = None
    # Score every window (windows.csv quality columns) also without ``quality_min``. Off by default: the two
    # neurokit2 QRS detectors per lead cost about half of a run's CPU (MIT-BIH), for a score nothing else reads.
    quality_scores: bool = False
    label_scheme: str = "auto"
    label_set: str = "present"
    ludb_csv: str | None = None
    split: str = "random"
    split_fractions: tuple[float, float, float] = (0.8, 0.1, 0.1)
    split_file: str | None = None
    valid_fraction: float = 0.2
    seed: int = 0
    merge_same_subject: bool = True
    workers: int = field(default_factory=default_workers)
    compress: bool = False
    force: bool = False
    progress: bool = True
    # Feature-stage options: plain data, carried out by the entry point
    # (``python -m physioclr_ext.preprocess``), since preprocessing never imports the features.
    features: bool = False
    features_pca: int | str | None = None
    features_lead: str = "mean"
    features_delineation: str = "dwt"
    # Append the 11 hybrid channels from lead II (``features.hybrid``) to every window, z-scored on train.
    hybrid_channels: bool = False
    # Also write, per split, every window in one memory-mapped float32 array plus an index (``packed``
    # module, ``OUTPUT/packed/``), read by the tasks' ``task.packed``; the ``.mat`` files are still written.
    # With ``hybrid_channels`` the hybrid stage packs, after appending its rows to the windows.
    packed: bool = False
    # Channel name or 0-based index -> standard lead, ``FROM=TO`` entries (``leads.parse_lead_map``).
    lead_map: tuple[str, ...] = ()
    # Each channel of a record becomes its own one-lead record (``leads`` must then name one lead).
    channels_as_records: bool = False
    # Records shorter than one window: ``None`` skips them (counted as ``too_short``); ``"zeros"`` writes one
    # full-length window zero-padded at the end; ``"mask"`` writes the real length, for fairseq-signals to pad
    # and mask in its collater (``task.enable_padding=true``).
    pad_short: str | None = None
    # Labels (and patients, splits) from a CSV, for every format (``labels_csv`` module); ``{input}`` in a
    # path is the input folder. Column options take a name or a 0-based index; ``None`` picks by name.
    labels_csv: str | None = None
    labels_record_column: str | None = None
    labels_columns: tuple[str, ...] | None = None
    labels_kind: str = "auto"
    labels_separator: str = ",;|"
    labels_map: str | None = None
    labels_map_columns: tuple[str, str] | None = None
    labels_map_where: str | None = None
    ptbxl_labels: str | None = None
    labels_min_likelihood: float | None = None
    labels_empty: str = "drop"
    labels_patient_column: str | None = None
    labels_split_column: str | None = None
    fold_split: str = "1-8:train,9:valid,10:test"

    @classmethod
    def from_preset(cls, preset: str | None, **options: Any) -> PreprocessConfig:
        """Preset values overridden by ``options`` (which must include input/output)."""
        values: dict[str, Any] = {}
        if preset is not None:
            if preset not in PRESETS:
                raise ValueError(f"unknown preset {preset!r}; choose from {', '.join(PRESETS)}")
            values.update(PRESETS[preset])
        if options.get("split_file") and "split" not in options:
            values["split"] = "file"
        values.update(options)
        return cls(preset=preset, **values)

    def __post_init__(self) -> None:
        self.leads = parse_lead_list(self.leads)
        self.bandpass = tuple(float(v) for v in self.bandpass)  # type: ignore[assignment]
        self.split_fractions = tuple(float(v) for v in self.split_fractions)  # type: ignore[assignment]
        if self.lead_names is not None:
            self.lead_names = tuple(str(n) for n in self.lead_names)
        if self.split_file is not None and self.split == "random":
            self.split = "file"
        if self.labels_split_column is not None and self.split == "random":
            self.split = "column"
        if self.labels_columns is not None:
            self.labels_columns = (
                (self.labels_columns,) if isinstance(self.labels_columns, str) else tuple(self.labels_columns)
            )
        self.lead_map = tuple(str(e) for e in ([self.lead_map] if isinstance(self.lead_map, str) else self.lead_map))
        if isinstance(self.pad_short, bool):  # pad_short=True means the default padding
            self.pad_short = "zeros" if self.pad_short else None
        self.validate()

    def validate(self) -> None:
        """Raise ``ValueError`` naming the first invalid option."""
        _choice("format", self.format, FORMATS)
        _choice("normalize", self.normalize, NORMALIZE_CHOICES)
        _choice("quality", self.quality, ("drop", "keep"))
        _choice("label_scheme", self.label_scheme, LABEL_SCHEMES)
        _choice("label_set", self.label_set, ("present", "table"))
        _choice("split", self.split, SPLITS)
        low, high = self.bandpass
        if self.apply_filter and not 0 < low < high:
            raise ValueError(f"bandpass needs 0 < LOW < HIGH, got {low} {high}")
        if self.filter_order < 1 or self.sample_rate <= 0 or self.window_seconds <= 0:
            raise ValueError("filter_order, sample_rate and window_seconds must be positive")
        if not 0 <= self.overlap_seconds < self.window_seconds:
            raise ValueError("overlap_seconds must be >= 0 and shorter than window_seconds")
        for name in ("sample_rate", "input_sample_rate"):
            rate = getattr(self, name)
            if rate is not None and not 25 <= rate <= 20_000:  # readers.FS_RANGE
                flag = "--" + name.replace("_", "-")
                raise ValueError(f"{flag} {rate:g} Hz is implausible for an ECG; give a rate between 25 and 20000 Hz")
        fractions = self.split_fractions
        if len(fractions) != 3 or min(fractions) < 0 or abs(sum(fractions) - 1) > 1e-6:
            raise ValueError(f"split_fractions must be 3 non-negative numbers summing to 1, got {fractions}")
        if not 0 <= self.valid_fraction < 1:
            raise ValueError("valid_fraction must be in [0, 1)")
        if self.split == "file" and not self.split_file:
            raise ValueError("split 'file' needs split_file")
        if self.workers < 1:
            raise ValueError("workers must be >= 1")
        _check_pca(self.features_pca)
        if self.quality_min is not None and not 0 <= self.quality_min <= 1:
            raise ValueError(f"quality_min must be between 0 and 1 (a quality score), got {self.quality_min}")
        _check_lead_options(self)
        _check_labels_csv(self)
        if self.features_delineation not in ("dwt", "prominence", "cwt"):
            raise ValueError(f"features_delineation must be dwt, prominence or cwt, not {self.features_delineation!r}")

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict of all options."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(self).items()}

    @property
    def scores_quality(self) -> bool:
        """Whether each window gets its signal quality score: asked for, or needed by ``quality_min``."""
        return self.quality_scores or self.quality_min is not None

    def record_options_hash(self) -> str:
        """Hash of the options that change a record's output files."""
        options = self.to_dict()
        subset = {key: options[key] for key in _RECORD_OPTIONS}
        if self.hybrid_channels:  # only when set, so the hashes of earlier outputs stay valid
            subset["hybrid_channels"] = True
        for name in ("lead_map", "channels_as_records", "pad_short"):  # likewise
            if options[name]:
                subset[name] = options[name]
        if self.quality_min is not None:  # likewise (0.0 is set: it is not None)
            subset["quality_min"] = self.quality_min
        if self.quality_scores:  # likewise: records written without scores are redone with them
            subset["quality_scores"] = True
        return hashlib.sha256(json.dumps(subset, sort_keys=True).encode()).hexdigest()[:16]


def parse_pca(text: str) -> int | str | None:
    """``--features-pca`` value: ``"auto"``, ``"none"``/``"0"`` (``None``) or a component count K >= 1.

    Example:
        >>> parse_pca("auto"), parse_pca("0"), parse_pca("50")
        ('auto', None, 50)
    """
    value = text.strip().lower()
    if value == PCA_AUTO:
        return PCA_AUTO
    if value in ("none", "0"):
        return None
    try:
        pca = int(value)
    except ValueError:
        raise ValueError(f"features_pca must be auto, none or a positive integer, not {text!r}") from None
    _check_pca(pca)
    return pca


def _check_pca(pca: object) -> None:
    if pca is None or pca == PCA_AUTO:
        return
    if isinstance(pca, bool) or not isinstance(pca, int) or pca < 1:
        raise ValueError(f"features_pca must be None, {PCA_AUTO!r} or an integer >= 1, not {pca!r}")


def _check_lead_options(config: PreprocessConfig) -> None:
    """``lead_map`` parses, ``pad_short`` is known, ``channels_as_records`` has one output lead."""
    parse_lead_map(config.lead_map)
    if config.pad_short is not None:
        _choice("pad_short", config.pad_short, PAD_SHORT_CHOICES)
    if config.channels_as_records and len(config.leads) != 1:
        raise ValueError(
            "channels_as_records writes one row per window: give one output lead name (e.g. --leads II), "
            f"the name every channel is stored under, not {len(config.leads)} leads"
        )


def _check_labels_csv(config: PreprocessConfig) -> None:
    """Choices of the labels-CSV options; ``split='column'`` needs a CSV with a split column."""
    _choice("labels_kind", config.labels_kind, LABELS_KINDS)
    _choice("labels_empty", config.labels_empty, ("drop", "keep"))
    if config.ptbxl_labels is not None:
        _choice("ptbxl_labels", config.ptbxl_labels, PTBXL_LABEL_SET_NAMES)
    if config.split == "column" and not (config.labels_csv and config.labels_split_column):
        raise ValueError("split 'column' needs labels_csv and labels_split_column (--labels, --split-column)")


def _choice(name: str, value: Any, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ValueError(f"{name} must be one of {', '.join(choices)}; got {value!r}")
