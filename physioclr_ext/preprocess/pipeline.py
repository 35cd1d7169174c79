"""The preprocessing run: discover -> plan splits -> process records in
parallel (resumable) -> write manifests, labels, the packed arrays (``--packed``) and ``preprocess.json``."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tqdm import tqdm

from . import outputs, packed
from .config import PreprocessConfig
from .labels import AAMI_CLASSES, LUDB_RHYTHMS, SNOMED_NAMES, LabelSpace, order_label_names
from .labels_csv import apply_labels_csv
from .readers import RecordRef, detect_format, discover, natural_key
from .record_hook import RecordHook
from .splits import Plan, mitbih_ds1ds2_split, random_patient_split, read_split_file, verify_disjoint
from .summary import build_summary, unmapped_codes
from .worker import Job, load_marker, process_record


class PreprocessError(RuntimeError):
    """The run as a whole cannot succeed (no input records, no record processed)."""


@dataclass(frozen=True)
class RunResult:
    """What :func:`run_with_hook` did.

    Attributes:
        summary: the ``preprocess.json`` content.
        processed: the records this run (re)processed, in record order: the hook ran on each; the other
            succeeded records were skipped, their marker current.
    """

    summary: dict[str, Any]
    processed: tuple[str, ...]


def run(config: PreprocessConfig) -> dict[str, Any]:
    """Preprocess ``config.input`` into ``config.output``; returns the ``preprocess.json`` summary.

    The ``features*`` options are recorded, not acted on: the entry point
    (``python -m physioclr_ext.preprocess``) runs the feature stage with :func:`run_with_hook`.

    Raises:
        PreprocessError: no records found, or none could be processed.
        SplitError: the requested split would put a patient into two splits.
    """
    return run_with_hook(config, None).summary


def run_with_hook(config: PreprocessConfig, record_hook: RecordHook | None) -> RunResult:
    """:func:`run`, calling ``record_hook`` in the worker on every record it processes (with the record's
    filtered signal and window starts, :class:`~.worker.RecordPass`), so that a later stage's per-record work
    needs no second read and filtering of the record. Records skipped by the resume logic are not passed.

    Raises:
        As :func:`run`.
    """
    root, out = Path(config.input).resolve(), Path(config.output).resolve()
    if not root.is_dir():
        raise PreprocessError(f"input folder {root} does not exist")
    try:
        fmt = detect_format(root) if config.format == "auto" else config.format
    except FileNotFoundError as exc:
        raise PreprocessError(str(exc)) from exc
    refs = discover(root, fmt, config.ludb_csv, config.merge_same_subject, config.channels_as_records, config.lead_map)
    if not refs:
        raise PreprocessError(f"no {fmt} records found under {root}")
    csv_labels = apply_labels_csv(config, root, refs) if config.labels_csv else None
    plan = make_plan(csv_labels.refs if csv_labels else refs, config, csv_labels.splits if csv_labels else None)
    if csv_labels:
        plan.excluded = {**csv_labels.excluded, **plan.excluded}
    if not plan.refs:
        raise PreprocessError(f"all {len(refs)} records were excluded by the {config.split} split")
    if csv_labels:
        labels = csv_labels.label_space(config.label_scheme, config.label_set, plan.refs)
    else:
        labels = label_space(fmt, config, plan.refs)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise PreprocessError(
            f"cannot create the output folder {out} ({exc.strerror}); choose a writable --output"
        ) from None
    jobs = make_jobs(plan.refs, labels, config, fmt, out, record_hook)
    markers, failures, skipped = execute(jobs, config, out)
    if not markers:
        shown = "; ".join(f"{r}: {why}" for r, why in list(failures.items())[:10])
        raise PreprocessError(f"no record could be processed ({len(failures)} failed): {shown}")
    if all(m.get("too_short") is not None for m in markers.values()):
        raise PreprocessError(
            f"every processed record ({len(markers)}) is shorter than one {config.window_seconds} s window; "
            "pass --pad-short or a shorter --window-seconds"
        )
    ordered = [markers[j.ref.record_id] for j in jobs if j.ref.record_id in markers]
    rows = outputs.window_rows(ordered, plan.assignment)
    outputs.write_manifests(out, rows)
    cmsc_counts = outputs.write_cmsc(out, ordered, plan.assignment)
    outputs.write_windows_csv(out, rows, labels, config.leads if config.scores_quality else ())
    counts = outputs.write_label_files(out, rows, labels, [j.label for j in jobs])
    packed_shapes = write_packed_outputs(out, config, rows, ordered)
    summary = build_summary(
        config=config,
        fmt=fmt,
        root=root,
        out=out,
        plan=plan,
        labels=labels,
        markers=ordered,
        rows=rows,
        failures=failures,
        skipped=skipped,
        n_found=len(refs),
        extra={"cmsc_pairs": cmsc_counts, "label_counts": counts},
    )
    if packed_shapes is not None:
        summary["packed"] = packed_shapes
    if csv_labels:
        summary["labels"]["csv"] = csv_labels.report
    if fmt == "physionet2021":
        summary["labels"]["unmapped_codes"] = unmapped_codes(plan.refs, labels.names)
    write_summary(out, summary)
    done = set(skipped)
    return RunResult(summary, tuple(m["record"] for m in ordered if m["record"] not in done))


def write_packed_outputs(
    out: Path, config: PreprocessConfig, rows: Sequence[dict[str, Any]], markers: Sequence[Mapping[str, Any]]
) -> dict[str, list[int]] | None:
    """``OUTPUT/packed/`` from the written windows with ``config.packed`` (:mod:`.packed`), else remove it.
    With ``config.hybrid_channels`` too, nothing is packed here: the hybrid stage rewrites every window,
    then packs (``features.hybrid_pipeline``), so the arrays are written once, with the hybrid rows.

    Returns:
        ``{split: [N, C, T]}`` when packed here, else None.
    """
    if not config.packed:
        packed.remove_packed(out)
        return None
    if config.hybrid_channels:
        return None
    return packed.write_packed(out, rows, {m["record"]: m["key"] for m in markers})


def write_summary(output: str | Path, summary: dict[str, Any]) -> None:
    """(Re)write ``OUTPUT/preprocess.json``, e.g. after a later stage added its entry to ``summary`` (atomically:
    later stages read it back)."""
    outputs.write_atomic(Path(output) / "preprocess.json", json.dumps(summary, indent=2) + "\n")


def make_plan(
    refs: Sequence[RecordRef], config: PreprocessConfig, column_splits: Mapping[str, str] | None = None
) -> Plan:
    """Assign records to splits by patient and verify no patient is in two splits.

    Args:
        column_splits: record -> split read from the labels CSV (split method ``column``).
    """
    record_patient = {r.record_id: r.patient for r in refs}
    plan = Plan(refs=list(refs), assignment={})
    if config.split == "random":
        patient_split = random_patient_split(list(record_patient.values()), config.split_fractions, config.seed)
        plan.assignment = {r: patient_split[p] for r, p in record_patient.items()}
    elif config.split == "column":
        plan.assignment = {r: s for r, s in (column_splits or {}).items() if r in record_patient}
        plan.excluded = {r: "no_split_in_labels_csv" for r in record_patient if r not in plan.assignment}
    elif config.split == "file":
        plan.assignment, plan.unmatched_split_ids = read_split_file(str(config.split_file), record_patient)
        plan.excluded = {r: "not_in_split_file" for r in record_patient if r not in plan.assignment}
    else:
        plan.assignment, plan.excluded, plan.dropped_for_patient_overlap = mitbih_ds1ds2_split(
            record_patient, config.valid_fraction, config.seed, config.merge_same_subject
        )
    verify_disjoint(plan.assignment, record_patient)
    plan.refs = [r for r in refs if r.record_id in plan.assignment]
    return plan


def label_space(fmt: str, config: PreprocessConfig, refs: Sequence[RecordRef]) -> LabelSpace:
    """Resolve ``label_scheme='auto'`` and the label names for this input."""
    defaults = {"mitdb": "binary", "ludb": "multilabel", "physionet2021": "multilabel", "npy_classes": "multiclass"}
    scheme = defaults.get(fmt, "none") if config.label_scheme == "auto" else config.label_scheme
    if scheme in ("binary", "aami") and fmt != "mitdb":
        raise ValueError(f"label scheme {scheme!r} needs beat annotations (format mitdb), not {fmt}")
    if scheme in ("multilabel", "multiclass") and fmt not in ("ludb", "physionet2021", "npy_classes"):
        raise ValueError(f"label scheme {scheme!r} needs record labels (ludb, physionet2021, npy_classes)")
    if scheme == "multiclass" and any(len(r.labels) != 1 for r in refs):
        raise ValueError("label scheme 'multiclass' needs exactly one label per record")
    found = {name for r in refs for name in r.labels}
    table = {"physionet2021": SNOMED_NAMES, "ludb": LUDB_RHYTHMS}.get(fmt, ())
    names: Sequence[str] = {
        "binary": ("arrhythmia",),
        "aami": AAMI_CLASSES,
        "none": (),
        "multiclass": sorted(found, key=natural_key),
        "multilabel": order_label_names(found, table, config.label_set == "table"),
    }[scheme]
    return LabelSpace(scheme, tuple(names))


def make_jobs(
    refs: Sequence[RecordRef],
    labels: LabelSpace,
    config: PreprocessConfig,
    fmt: str,
    out: Path,
    hook: RecordHook | None = None,
) -> list[Job]:
    """One job per planned record, with its ``idx``, patient index, resume key and ``hook``."""
    patients = sorted({r.patient for r in refs}, key=natural_key)
    patient_index = {p: i for i, p in enumerate(patients)}
    options = config.record_options_hash()
    jobs = []
    for idx, ref in enumerate(refs):
        label = tuple(labels.encode_record(ref.labels))
        identity = [
            options,
            fmt,
            labels.scheme,
            list(labels.names),
            idx,
            patient_index[ref.patient],
            ref.patient,
            ref.path,
            list(label),
        ]
        key = hashlib.sha256(json.dumps(identity).encode()).hexdigest()[:16]
        jobs.append(Job(ref, idx, patient_index[ref.patient], key, label, labels, config, str(out), hook))
    return jobs


def execute(
    jobs: Sequence[Job], config: PreprocessConfig, out: Path
) -> tuple[dict[str, dict[str, Any]], dict[str, str], list[str]]:
    """Run the jobs whose marker is missing or stale.

    Returns:
        ``(record -> marker for every succeeded record, failed record -> reason,
        records skipped because their marker was current)``.
    """
    markers: dict[str, dict[str, Any]] = {}
    skipped: list[str] = []
    todo = []
    for job in jobs:
        marker = None if config.force else load_marker(out, job.ref.record_id)
        if marker is not None and marker.get("key") == job.key and _files_exist(out, marker):
            markers[job.ref.record_id] = marker
            skipped.append(job.ref.record_id)
        else:
            todo.append(job)
    if todo:  # windows are about to change: a packed index must not outlive them
        packed.remove_indexes(out)
    failures: dict[str, str] = {}
    with tqdm(
        total=len(jobs), initial=len(skipped), unit="record", desc="preprocess", disable=not config.progress
    ) as bar:
        for result in _results(todo, config.workers):
            if result["ok"]:
                markers[result["record"]] = result["marker"]
            else:
                failures[result["record"]] = result["reason"]
            bar.update()
    ordered_failures = {r: failures[r] for r in sorted(failures, key=natural_key)}
    return markers, ordered_failures, skipped


def _files_exist(out: Path, marker: dict[str, Any]) -> bool:
    return all((out / w["path"]).is_file() for w in marker.get("windows", []) if w.get("kept"))


def _results(jobs: Sequence[Job], workers: int) -> Iterator[dict[str, Any]]:
    if workers <= 1 or len(jobs) <= 1:
        yield from map(process_record, jobs)
        return
    with ProcessPoolExecutor(max_workers=min(workers, len(jobs))) as pool:
        futures = {pool.submit(process_record, job): job for job in jobs}
        for future in as_completed(futures):
            try:
                yield future.result()
            except Exception as exc:  # noqa: BLE001 - e.g. a worker killed by the OS
                record = futures[future].ref.record_id
                yield {"record": record, "ok": False, "reason": f"worker crashed: {type(exc).__name__}: {exc}"}
