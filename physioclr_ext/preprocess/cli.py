"""Command line interface: ``python -m physioclr_ext.preprocess``."""

from __future__ import annotations

import argparse
import dataclasses
import sys
from collections.abc import Callable, Sequence
from typing import Any

from .config import (
    FORMATS,
    LABELS_KINDS,
    PRESET_HELP,
    PRESETS,
    PTBXL_LABEL_SET_NAMES,
    SPLITS,
    PreprocessConfig,
    parse_pca,
)
from .dsp import NORMALIZE_CHOICES
from .labels import LABEL_SCHEMES
from .labels_csv import summary_line
from .pipeline import PreprocessError
from .splits import SplitError

_DEFAULTS = {f.name: f.default for f in dataclasses.fields(PreprocessConfig)}

DESCRIPTION = """\
Preprocess ECG records into fixed-length .mat windows and fairseq-signals manifests.

Per record: select/order leads (missing ones zero-filled) -> quality checks per
window on the raw signal (NaN, flat, saturated; with --quality-scores or --quality-min
a 0-1 quality score per lead) -> fill NaN by interpolation ->
zero-phase band-pass at the native rate (present leads only) -> resample_poly to
--sample-rate -> cut windows -> normalise each window -> write .mat.
Splits are by patient. Bad records are reported and skipped.
Exit code 0 when at least one record succeeded, 2 otherwise (a bad option or
input, in one line); with --strict, 1 when any record failed or was skipped."""

EPILOG = """presets (explicit options override them):
{presets}

outputs (OUTPUT/):
  mat/<record>_<i>.mat   one window: feats float32 (leads, T); curr_sample_rate int;
                         label float32 (1, K); idx int (record index, sorted record ids);
                         patient_id int (patient index, sorted patient ids)
  train.tsv valid.tsv test.tsv   root line, then 'mat/<record>_<i>.mat<TAB>T'
  cmsc/{{train,valid,test}}.tsv    root, 'mat', then 'mat/<record><TAB>T<TAB>0<TAB>i,j'
  windows.csv, label_def.csv, pos_weight.txt, y.npy (multilabel), preprocess.json,
  records/<record>.json (resume markers: a re-run skips records whose options are unchanged)

labels (--label-scheme auto picks by format):
  binary      MIT-BIH: (1,1) 1 if the window has any non-N AAMI beat, else 0
  aami        MIT-BIH: (1,1) class index of N,S,V,F,Q (N if all beats N, else the most
              frequent non-N class, ties V>F>S>Q); windows without beats are dropped
  multilabel  LUDB rhythms / PhysioNet 2021 scored SNOMED classes: (1,K) multi-hot
  multiclass  npy class folders: (1,1) index of the folder name (sorted)
  none        unlabelled inputs (npy samples, generic WFDB): (1,1) zero
  with --labels CSV (any format): one class column -> multiclass; several 0/1 columns or
              a codes column (separated, or a dict literal as PTB-XL's scp_codes, optionally
              mapped by --labels-map) -> multilabel; counts in preprocess.json labels.csv
"""


def build_parser() -> argparse.ArgumentParser:
    """The argument parser; options not given on the command line are absent from the result."""
    presets = "\n".join(f"  {name:15s} {PRESET_HELP[name]}" for name in PRESETS)
    parser = argparse.ArgumentParser(
        prog="python -m physioclr_ext.preprocess",
        argument_default=argparse.SUPPRESS,
        description=DESCRIPTION,
        epilog=EPILOG.format(presets=presets),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _io_options(parser.add_argument_group("input/output"))
    _signal_options(parser.add_argument_group("signal"))
    _label_split_options(parser.add_argument_group("labels and splits"))
    _labels_csv_options(parser.add_argument_group("labels from a CSV (every format; see labels_csv.py)"))
    _run_options(parser.add_argument_group("run"))
    return parser


def _d(name: str) -> str:
    value = _DEFAULTS[name]
    return " ".join(map(str, value)) if isinstance(value, tuple) else str(value)


def _io_options(group: argparse._ArgumentGroup) -> None:
    group.add_argument("--input", required=True, metavar="DIR", help="input folder")
    group.add_argument("--output", required=True, metavar="DIR", help="output folder")
    group.add_argument("--format", choices=FORMATS, help="input layout (default: auto-detect)")
    group.add_argument("--preset", choices=list(PRESETS), help="named option set (see below)")
    group.add_argument(
        "--input-sample-rate",
        type=float,
        metavar="HZ",
        help="sampling rate of npy inputs (default: --sample-rate, i.e. no resampling)",
    )
    group.add_argument(
        "--lead-names",
        metavar="A,B,..",
        type=lambda s: tuple(s.split(",")),
        help="channel names of npy inputs (default: the 12 standard leads)",
    )
    group.add_argument("--ludb-csv", metavar="CSV", help="LUDB ludb.csv (default: found next to the input)")
    _lead_name_options(group)


def _lead_name_options(group: argparse._ArgumentGroup) -> None:
    group.add_argument(
        "--lead-map",
        nargs="+",
        type=str,
        metavar="FROM=TO",
        help="name channels as standard leads, for every format: FROM is a 0-based channel index or a "
        "channel name (case-insensitive, * and ? wildcards), TO a lead or - to ignore the channel; "
        "several entries, or ';' between them, e.g. --lead-map 'record *, signal 0=II' 1=V5. A name entry "
        "wins over an index entry, which wins over the built-in names and aliases (MLI-MLIII, DI-DIII, "
        "D1-D3, mod.V1/MV1, CM1-CM6, CC5; see leads.py)",
    )
    group.add_argument(
        "--channels-as-records",
        action="store_true",
        help="take each channel as its own one-lead record <record>_ch<c>, whatever its name (single-lead "
        "pretraining on mixed sources); needs one --leads name, under which every channel is stored; "
        "the channels of a record share its patient and split",
    )
    group.add_argument(
        "--pad-short",
        nargs="?",
        const="zeros",
        choices=("zeros", "mask"),
        help="records shorter than one window become one window instead of being skipped (counted as "
        "too_short): 'zeros' (default) writes it zero-padded at the end to the full length, normalised on its "
        "real samples; 'mask' writes the real length to the .mat and manifest, so that fairseq-signals pads "
        "and masks it in its collater (needs task.enable_padding=true, else a batch is cropped to it)",
    )


def _signal_options(group: argparse._ArgumentGroup) -> None:
    group.add_argument(
        "--leads",
        metavar="LEADS",
        help="output leads in this order, e.g. II or I,II,V1 (default: all 12, "
        "I II III aVR aVL aVF V1-V6); missing leads are zero-filled",
    )
    group.add_argument(
        "--bandpass",
        nargs=2,
        type=float,
        metavar=("LOW", "HIGH"),
        help=f"zero-phase Butterworth band-pass in Hz (default: {_d('bandpass')})",
    )
    group.add_argument(
        "--filter-order", type=int, metavar="N", help=f"Butterworth order (default: {_d('filter_order')})"
    )
    group.add_argument("--no-filter", dest="apply_filter", action="store_false", help="skip the band-pass")
    group.add_argument(
        "--sample-rate",
        type=int,
        metavar="HZ",
        help=f"output sampling rate, resample_poly (default: {_d('sample_rate')})",
    )
    group.add_argument(
        "--normalize",
        choices=NORMALIZE_CHOICES,
        help=f"z-score per lead or over the whole window (default: {_d('normalize')})",
    )
    group.add_argument(
        "--window-seconds", type=float, metavar="S", help=f"window length (default: {_d('window_seconds')})"
    )
    group.add_argument(
        "--overlap-seconds",
        type=float,
        metavar="S",
        help=f"overlap of consecutive windows (default: {_d('overlap_seconds')})",
    )
    group.add_argument(
        "--quality",
        choices=("drop", "keep"),
        help="drop windows with NaN / flat / saturated leads, or keep and flag them "
        f"in windows.csv (default: {_d('quality')})",
    )
    group.add_argument(
        "--flat-threshold",
        type=float,
        metavar="MV",
        help=f"a lead with peak-to-peak below this is flat (default: {_d('flat_threshold')})",
    )
    group.add_argument(
        "--saturation-threshold",
        type=float,
        metavar="SHARE",
        help="a lead with more than this share of samples at its min or max is "
        f"saturated (default: {_d('saturation_threshold')})",
    )
    group.add_argument(
        "--quality-min",
        type=float,
        metavar="SCORE",
        help="flag windows whose signal quality score (0-1: QRS detector agreement, kurtosis, spectral "
        "ratios, template correlation, minimum over leads; see preprocess/quality.py) is below SCORE as "
        "low_quality, dropped unless --quality keep; recommended 0.5 (benchmarks/signal_quality.py). "
        "Default: no score (see --quality-scores)",
    )
    group.add_argument(
        "--quality-scores",
        action="store_true",
        help="write every window's signal quality score (windows.csv columns quality, quality_<lead>) without "
        "flagging; implied by --quality-min. Off by default: scoring takes about half of the preprocessing time",
    )


def _label_split_options(group: argparse._ArgumentGroup) -> None:
    group.add_argument(
        "--label-scheme", choices=LABEL_SCHEMES, help=f"what the .mat label holds (default: {_d('label_scheme')})"
    )
    group.add_argument(
        "--label-set",
        choices=("present", "table"),
        help=f"multilabel classes: those present in the data, or the whole table (default: {_d('label_set')})",
    )
    group.add_argument("--split", choices=SPLITS, help=f"patient-level split method (default: {_d('split')})")
    group.add_argument(
        "--split-fractions",
        nargs=3,
        type=float,
        metavar=("TRAIN", "VALID", "TEST"),
        help=f"random split fractions of patients (default: {_d('split_fractions')})",
    )
    group.add_argument(
        "--split-file", metavar="CSV", help="CSV with columns record (or patient) and split in train/valid/test"
    )
    group.add_argument(
        "--valid-fraction",
        type=float,
        metavar="F",
        help=f"mitbih_ds1ds2: share of DS1 patients moved to valid (default: {_d('valid_fraction')})",
    )
    group.add_argument("--seed", type=int, help=f"seed of the random splits (default: {_d('seed')})")
    group.add_argument(
        "--keep-202-separate",
        dest="merge_same_subject",
        action="store_false",
        help="MIT-BIH: treat 202 as its own patient and keep it in DS2 (the classic "
        "protocol, which leaks subject 201/202 across splits); default: 202 is "
        "patient 201 and dropped from the DS2 test split",
    )


def _labels_csv_options(group: argparse._ArgumentGroup) -> None:
    group.add_argument(
        "--labels",
        dest="labels_csv",
        metavar="CSV",
        help="labels CSV, one row per record: a record column (id, file name or path relative to --input, "
        "extension optional) and the labels; a BOM, a missing header row, blank rows and whitespace are handled; "
        "rows naming no record and records missing from it are counted in preprocess.json",
    )
    group.add_argument(
        "--labels-record-column",
        metavar="COL",
        help="record column, a name or 0-based index (default: record, filename, ecg_id, id, ... or the first column)",
    )
    group.add_argument(
        "--labels-column",
        dest="labels_columns",
        nargs="+",
        metavar="COL",
        help="label column(s): one (a class, or codes) or several 0/1 columns (multi-label) "
        "(default: every other column)",
    )
    group.add_argument(
        "--labels-kind",
        choices=LABELS_KINDS,
        help="class: one label per record (multiclass); multihot: several 0/1 columns; codes: separated codes "
        "or a dict literal {'NORM': 100.0} (multilabel); auto (default) decides from the columns",
    )
    group.add_argument(
        "--labels-separator", metavar="CHARS", help=f"characters separating codes (default: {_d('labels_separator')})"
    )
    group.add_argument(
        "--labels-map",
        metavar="CSV",
        help="code -> class table (PTB-XL's scp_statements.csv); codes without a class are dropped and counted",
    )
    group.add_argument(
        "--labels-map-columns",
        nargs=2,
        metavar=("CODE", "CLASS"),
        help="its code and class columns (default: the first two; CLASS = CODE keeps the code)",
    )
    group.add_argument("--labels-map-where", metavar="COL", help="keep only map rows whose COL is 1 (e.g. diagnostic)")
    group.add_argument(
        "--ptbxl-labels",
        choices=PTBXL_LABEL_SET_NAMES,
        help="PTB-XL label set from scp_statements.csv (with --preset ptbxl: superdiagnostic)",
    )
    group.add_argument(
        "--labels-min-likelihood",
        type=float,
        metavar="P",
        help="drop dict-literal codes with a likelihood below P (default: keep all, the PTB-XL benchmark's rule)",
    )
    group.add_argument(
        "--labels-empty",
        choices=("drop", "keep"),
        help="records whose labels are empty after mapping: drop (default, counted) or keep as all-zero",
    )
    group.add_argument(
        "--patient-column",
        dest="labels_patient_column",
        metavar="COL",
        help="patient column of the labels CSV (default: patient, patient_id, subject or subject_id if present)",
    )
    group.add_argument(
        "--split-column",
        dest="labels_split_column",
        metavar="COL",
        help="split column of the labels CSV: train/valid/test or fold numbers (implies --split column)",
    )
    group.add_argument(
        "--fold-split", metavar="SPEC", help=f"folds of --split-column to splits (default: {_d('fold_split')})"
    )


def _run_options(group: argparse._ArgumentGroup) -> None:
    group.add_argument("--workers", type=int, metavar="N", help="parallel processes (default: min(4, cpu count))")
    group.add_argument("--compress", action="store_true", help="zlib-compress the .mat files")
    group.add_argument("--force", action="store_true", help="reprocess records even if their marker is current")
    group.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bar")
    group.add_argument(
        "--strict",
        action="store_true",
        help="exit with code 1 when any record failed or was skipped (too_short) or a split is empty, "
        "after writing the outputs of the others (for pipelines); default: exit 0 when any record succeeded",
    )
    group.add_argument(
        "--packed",
        action="store_true",
        help="also write each split's windows into one memory-mapped float32 array with an index "
        "(OUTPUT/packed/), read by the tasks with task.packed=true; the .mat files are still written "
        "(with --hybrid-channels the arrays hold the hybrid rows too)",
    )
    group.add_argument(
        "--features",
        action="store_true",
        help="also extract neurokit2 physiological features into OUTPUT/features/ (PhysioCLR)",
    )
    group.add_argument(
        "--features-pca",
        type=pca_option,
        metavar="K|auto|none",
        help="PCA of the features to K dims fitted on train; auto: 50 (PhysioCLR's) where the "
        "training split has at least 500 windows, else none (default: none)",
    )
    group.add_argument(
        "--features-lead",
        metavar="LEAD",
        help="features from 'mean' of the present leads (default), a lead name or index",
    )
    group.add_argument(
        "--features-delineation",
        choices=["dwt", "prominence", "cwt"],
        help="neurokit2 wave delineation: dwt (default, PhysioCLR's) or prominence (closer to "
        "LUDB's manual P/QRS/T boundaries, see benchmarks/features.py)",
    )
    group.add_argument(
        "--hybrid-channels",
        action="store_true",
        help="append 11 channels computed from lead II (R-peak indicator, heart rate, rolling heart "
        "rate, ST level, QRS amplitude, SDNN, RMSSD, 4 db4 SWT details) to every window, z-scored "
        "with statistics of the training split (OUTPUT/hybrid/stats.json); the hybrid input of "
        "ECG-JEPA (with --preset ecg_jepa: 8 + 11 = 19 channels)",
    )


def pca_option(text: str) -> int | str | None:
    """argparse ``type`` of a PCA option: :func:`~.config.parse_pca`, its error as a usage error."""
    try:
        return parse_pca(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def config_from_args(argv: Sequence[str] | None = None) -> PreprocessConfig:
    """Parse the command line into a ``PreprocessConfig`` (preset, then explicit options)."""
    return _config_and_strict(argv)[0]


def _config_and_strict(argv: Sequence[str] | None) -> tuple[PreprocessConfig, bool]:
    options: dict[str, Any] = vars(build_parser().parse_args(argv))
    preset = options.pop("preset", None)
    strict = bool(options.pop("strict", False))  # how the command exits, not how records are processed
    return PreprocessConfig.from_preset(preset, **options), strict


def strict_problems(summary: dict[str, Any]) -> list[str]:
    """What ``--strict`` fails on: failed and too-short records, and the run's warnings (empty splits)."""
    records = summary["records"]
    problems = [f"{records[k]} record(s) {k.replace('_', ' ')}" for k in ("failed", "too_short") if records.get(k)]
    return problems + list(summary.get("warnings", []))


def main(argv: Sequence[str] | None, run_stages: Callable[[PreprocessConfig], dict[str, Any]]) -> int:
    """Parse, run, print the summary; returns the process exit code.

    Args:
        run_stages: what to run on the parsed config, returning the ``preprocess.json`` summary; the
            entry point (``python -m physioclr_ext.preprocess``) passes preprocessing chained with the
            feature stage, which this package must not import.
    """
    try:
        config, strict = _config_and_strict(argv)
        summary = run_stages(config)
    except (PreprocessError, SplitError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:  # e.g. the output folder is full or not writable (a worker's write is a record failure)
        where = f" {exc.filename}" if exc.filename else ""
        print(
            f"error: cannot write{where}: {exc.strerror or exc}; check --output's space and permissions",
            file=sys.stderr,
        )
        return 2
    report(summary)
    problems = strict_problems(summary)
    if strict and problems:
        print(f"error: --strict: {'; '.join(problems)} (see {summary['output']}/preprocess.json)", file=sys.stderr)
        return 1
    return 0


def report(summary: dict[str, Any]) -> None:
    """Print the summary of a run (with its ``features`` entry when the feature stage ran)."""
    records = summary["records"]
    print(
        f"{summary['format']}: {records['succeeded']}/{records['planned']} records "
        f"({records['skipped_existing']} already done), written to {summary['output']}"
    )
    for split, counts in summary["splits"].items():
        print(
            f"  {split:5s} records={counts['records']} patients={counts['patients']} "
            f"windows={counts['windows']} cmsc_pairs={counts['cmsc_pairs']}"
        )
    quality = summary["quality"]
    print(f"  windows dropped={quality['windows_dropped']} by reason {quality['dropped_by_reason']}")
    if "low_quality" in quality:
        low = quality["low_quality"]
        print(
            f"  quality score below {quality['quality_min']:g}: {low['flagged']} window(s) flagged low_quality, "
            f"{low['dropped']} dropped"
        )
    if records.get("too_short") or records.get("padded"):
        short, padded = records["too_short"], records["padded"]
        print(f"  records shorter than one window: {short} skipped (too_short), {padded} padded")
    if summary.get("channels_as_records"):
        channels = summary["channels_as_records"]
        print(f"  channels as records: {channels['channel_records']} from {channels['source_records']} records")
    if "features" in summary:
        print(f"  features {summary['features']['splits']}")
    if "csv" in summary.get("labels", {}):
        print(f"  {summary_line(summary['labels']['csv'])}")
    if "hybrid" in summary:
        hybrid = summary["hybrid"]
        print(f"  hybrid channels: {hybrid['n_channels']} rows per window, statistics in {hybrid['stats']}")
    duplicates = summary.get("lead_names", {}).get("duplicates")
    if duplicates:
        shown = ", ".join(f"{r}: {'+'.join(d)}" for r, d in list(duplicates.items())[:5])
        print(f"  duplicated lead names in {len(duplicates)} record(s), first channel used ({shown})")
    unmapped = summary.get("labels", {}).get("unmapped_codes")
    if unmapped and unmapped["records_by_code"]:
        codes = unmapped["records_by_code"]
        print(
            f"  {len(codes)} #Dx code(s) outside the scored classes ({', '.join(list(codes)[:8])}); "
            f"{len(unmapped['records_without_label'])} record(s) left with an all-zero label (preprocess.json "
            "labels.unmapped_codes)"
        )
    for warning in summary.get("warnings", []):
        print(f"warning: {warning}", file=sys.stderr)
    for failure in summary["failed_records"]:
        print(f"  FAILED {failure['record']}: {failure['reason']}", file=sys.stderr)
