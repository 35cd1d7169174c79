"""The ``preprocess.json`` summary of a run."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .config import SPLIT_NAMES, PreprocessConfig
from .labels import LabelSpace

if TYPE_CHECKING:
    from .splits import Plan

# Bump when the layout of the written files changes.
OUTPUT_FORMAT_VERSION = 1


def package_version() -> str:
    """Installed version of physioclr-ext, or ``__version__`` of the package, else ``"unknown"``."""
    from importlib import metadata

    try:
        return metadata.version("physioclr-ext")
    except metadata.PackageNotFoundError:
        from physioclr_ext._version import __version__

        return __version__


def split_counts(rows: Sequence[Mapping[str, Any]]) -> dict[str, dict[str, int]]:
    """Records, patients and windows per split, counted from the written windows."""
    counts = {}
    for split in SPLIT_NAMES:
        mine = [r for r in rows if r["split"] == split]
        counts[split] = {
            "records": len({r["record"] for r in mine}),
            "patients": len({r["patient"] for r in mine}),
            "windows": len(mine),
        }
    return counts


def quality_counts(markers: Sequence[Mapping[str, Any]], mode: str) -> dict[str, Any]:
    """Window totals and, per reason, how many windows were flagged and dropped."""
    flagged: Counter[str] = Counter()
    dropped: Counter[str] = Counter()
    total = written = 0
    for marker in markers:
        for window in marker["windows"]:
            total += 1
            written += bool(window["kept"])
            flagged.update(window["flags"])
            if not window["kept"]:
                dropped.update(window["flags"])
    return {
        "mode": mode,
        "windows_total": total,
        "windows_written": written,
        "windows_dropped": total - written,
        "flagged_by_reason": dict(sorted(flagged.items())),
        "dropped_by_reason": dict(sorted(dropped.items())),
    }


def low_quality_counts(markers: Sequence[Mapping[str, Any]], minimum: float | None) -> dict[str, Any]:
    """With ``--quality-min``: the threshold, and windows flagged ``low_quality`` (all, and dropped);
    nothing without it, so that such a run's summary is unchanged."""
    if minimum is None:
        return {}
    windows = [w for m in markers for w in m["windows"] if "low_quality" in w["flags"]]
    return {
        "quality_min": minimum,
        "low_quality": {"flagged": len(windows), "dropped": sum(not w["kept"] for w in windows)},
    }


def missing_leads(markers: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Missing (zero-filled) leads per record and how many records miss each lead."""
    per_record = {m["record"]: m["missing_leads"] for m in markers if m["missing_leads"]}
    by_lead = Counter(lead for leads in per_record.values() for lead in leads)
    return {"records_by_lead": dict(by_lead), "records": per_record}


def build_summary(
    *,
    config: PreprocessConfig,
    fmt: str,
    root: Path,
    out: Path,
    plan: Plan,
    labels: LabelSpace,
    markers: Sequence[Mapping[str, Any]],
    rows: Sequence[Mapping[str, Any]],
    failures: Mapping[str, str],
    skipped: Sequence[str],
    n_found: int,
    extra: Mapping[str, Any],
) -> dict[str, Any]:
    """Everything ``preprocess.json`` holds; the counts are derived from the written windows."""
    splits = split_counts(rows)
    for split in SPLIT_NAMES:
        splits[split]["cmsc_pairs"] = extra["cmsc_pairs"][split]
    first = markers[0]
    too_short = {m["record"]: m["too_short"] for m in markers if m.get("too_short") is not None}
    summary = {
        "version": package_version(),
        "output_format_version": OUTPUT_FORMAT_VERSION,
        "input": str(root),
        "output": str(out),
        "format": fmt,
        "preset": config.preset,
        "options": config.to_dict(),
        "window": {
            "sample_rate": config.sample_rate,
            "length_samples": first["window_length"],
            "hop_samples": first["hop"],
            "leads": list(config.leads),
        },
        "labels": {
            "scheme": labels.scheme,
            "names": list(labels.names),
            "mat_label_shape": [1, labels.width],
            "counts": extra["label_counts"],
        },
        "records": {
            "found": n_found,
            "excluded": len(plan.excluded),
            "planned": len(plan.refs),
            "succeeded": len(markers) - len(too_short),
            "too_short": len(too_short),
            "padded": sum(m.get("padded") is not None for m in markers),
            "failed": len(failures),
            "skipped_existing": len(skipped),
            "processed": len(markers) - len(skipped),
        },
        "split": {
            "method": config.split,
            "seed": config.seed,
            "fractions": list(config.split_fractions),
            "valid_fraction": config.valid_fraction,
            "file": config.split_file,
            "unmatched_split_ids": plan.unmatched_split_ids,
        },
        "splits": splits,
        "excluded_records": plan.excluded,
        "dropped_for_patient_overlap": plan.dropped_for_patient_overlap,
        "failed_records": [{"record": r, "reason": why} for r, why in failures.items()],
        "quality": {**quality_counts(markers, config.quality), **low_quality_counts(markers, config.quality_min)},
        "missing_leads": missing_leads(markers),
        "too_short_records": too_short,
        "padded_records": {m["record"]: m["padded"] for m in markers if m.get("padded") is not None},
        "lead_names": {**lead_name_counts(markers), "duplicates": duplicate_leads(markers)},
        "channels_as_records": channel_counts(markers) if config.channels_as_records else None,
    }
    summary["warnings"] = empty_split_warnings(config, splits)
    return summary


def lead_name_counts(markers: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """How the channels of the processed records were named: channels per way (``standard``, ``alias``,
    ``lead_map``, ``dropped``, ``unrecognised``, ``channel``), and per raw name its lead and record count."""
    by_how: Counter[str] = Counter()
    names: dict[str, dict[str, Any]] = {}
    for marker in markers:
        for raw, lead, how in marker.get("lead_sources", []):
            by_how[how] += 1
            entry = names.setdefault(raw, {"lead": lead, "how": how, "records": 0})
            entry["records"] += 1
    return {"channels_by_how": dict(sorted(by_how.items())), "names": dict(sorted(names.items()))}


def channel_counts(markers: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """``channels_as_records``: source records, channel records and channels per source record."""
    per_source = Counter(str(m.get("source_record") or m["record"]) for m in markers)
    return {"source_records": len(per_source), "channel_records": len(markers), "per_source": dict(per_source)}


def unmapped_codes(refs: Sequence[Any], label_names: Sequence[str]) -> dict[str, Any]:
    """Label codes no class takes (PhysioNet 2021 ``#Dx`` codes outside the scored classes): records per
    code, and the records left with an all-zero label because of it."""
    per_code: Counter[str] = Counter(code for ref in refs for code in set(ref.unmapped))
    empty = [ref.record_id for ref in refs if ref.unmapped and not set(ref.labels) & set(label_names)]
    return {"records_by_code": dict(sorted(per_code.items())), "records_without_label": empty}


def duplicate_leads(markers: Sequence[Mapping[str, Any]]) -> dict[str, dict[str, int]]:
    """Per record, the leads that two or more channels map to (the first channel is used)."""
    return {m["record"]: m["duplicate_leads"] for m in markers if m.get("duplicate_leads")}


def empty_split_warnings(config: PreprocessConfig, splits: Mapping[str, Mapping[str, int]]) -> list[str]:
    """One warning per split without windows, with the option that fills it."""
    fix = {
        "mitbih_ds1ds2": f"DS1 has too few patients for --valid-fraction {config.valid_fraction:g}; raise it "
        "or use --split random",
        "random": f"too few patients for --split-fractions {' '.join(f'{f:g}' for f in config.split_fractions)}; "
        "add records or change the fractions",
        "file": "assign records to it in --split-file",
        "column": "assign records to it in the --split-column of --labels",
    }.get(config.split, "choose another --split")
    return [
        f"{split}.tsv is empty (no windows in split {split!r}; fairseq-signals will fail on it): {fix}"
        for split, counts in splits.items()
        if counts["windows"] == 0
    ]
