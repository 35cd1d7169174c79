"""Processing of one record into window ``.mat`` files and a resume marker.

Runs inside worker processes; everything it needs travels in a picklable ``Job``.
"""

from __future__ import annotations

import ctypes
import gc
import io
import json
import multiprocessing
import os
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import scipy.io

from . import dsp, matfile, quality
from .config import PreprocessConfig
from .labels import LabelSpace, beats_to_aami, window_aami_class
from .leads import parse_lead_map, resolve_lead_names, select_leads
from .matfile import MAT_HEADER
from .readers import Record, RecordFileError, RecordRef, read_record
from .record_hook import RecordHook, RecordPass
from .windows import QualityThresholds, quality_flags_batch, raw_bounds, window_geometry, window_starts


@dataclass(frozen=True)
class Job:
    """One record to process.

    Attributes:
        key: hash of everything that determines this record's outputs; a
            marker with the same key means the record is already done.
        idx: record index (sorted record ids); ``patient_index`` likewise for patients.
        label: record-level encoded label (``(K,)``), unused for beat-labelled data.
        hook: called with the record's :class:`RecordPass` after its windows are written, before its marker (so
            a marker means the hook ran); not part of ``key``.
    """

    ref: RecordRef
    idx: int
    patient_index: int
    key: str
    label: tuple[float, ...]
    labels: LabelSpace
    config: PreprocessConfig
    output: str
    hook: RecordHook | None = None


class BadRecord(Exception):
    """A record that cannot be turned into windows (the message is the reason)."""


def marker_path(output: str | Path, record_id: str) -> Path:
    """``OUTPUT/records/<record>.json``."""
    return Path(output) / "records" / f"{record_id}.json"


def load_marker(output: str | Path, record_id: str) -> dict[str, Any] | None:
    """The record's marker, or ``None`` when absent or unreadable."""
    try:
        return json.loads(marker_path(output, record_id).read_text())
    except (OSError, ValueError):
        return None


def process_record(job: Job) -> dict[str, Any]:
    """Process one record; never raises.

    Returns:
        ``{"record": id, "ok": True, "marker": {...}}`` or ``{"record": id, "ok": False, "reason": str}``.
    """
    if multiprocessing.parent_process() is not None:  # a pool worker, not the caller's own process
        keep_freed_memory()
    collecting = gc.isenabled()
    gc.disable()  # a record allocates thousands of small containers and frees them by reference counting
    try:
        _remove_previous_outputs(job)
        marker = _process(job)
        _write_json_atomic(marker_path(job.output, job.ref.record_id), marker)
        return {"record": job.ref.record_id, "ok": True, "marker": marker}
    except BadRecord as exc:
        return {"record": job.ref.record_id, "ok": False, "reason": str(exc)}
    except Exception as exc:  # noqa: BLE001 - any failure of one record is reported, not raised
        last = traceback.extract_tb(exc.__traceback__)[-1:]
        where = f" ({Path(last[0].filename).name}:{last[0].lineno})" if last else ""
        return {"record": job.ref.record_id, "ok": False, "reason": f"{type(exc).__name__}: {exc}{where}"}
    finally:
        if collecting:
            gc.enable()


_MALLOC_TUNED = False
M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3  # glibc's mallopt parameters (malloc.h)


def keep_freed_memory() -> None:
    """Let glibc's malloc serve blocks up to 32 MB from the heap and keep what is freed (once per process).

    A record allocates and frees the same large arrays (the filter's and the resampler's temporaries, the
    windows' buffers): by default glibc maps each anew and unmaps it when freed, so that the kernel zeroes
    every page again on first touch (measured on MIT-BIH: 30% of a record's CPU before its files are written).
    Kept, they are reused; the worker's peak memory is unchanged. Only called in pool workers; elsewhere (not
    glibc) it does nothing.
    """
    global _MALLOC_TUNED
    if _MALLOC_TUNED:
        return
    _MALLOC_TUNED = True
    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.mallopt(M_MMAP_THRESHOLD, 32 << 20)  # glibc's maximum
        libc.mallopt(M_TRIM_THRESHOLD, 1 << 30)
    except (OSError, AttributeError):
        pass


def _remove_previous_outputs(job: Job) -> None:
    old = load_marker(job.output, job.ref.record_id)
    marker_path(job.output, job.ref.record_id).unlink(missing_ok=True)
    for window in (old or {}).get("windows", []):
        if window.get("kept"):
            (Path(job.output) / window["path"]).unlink(missing_ok=True)


@dataclass(frozen=True)
class PreparedRecord:
    """One record as preprocessing sees it before cutting windows.

    Attributes:
        record: the record as read, at its native rate ``record.fs`` (with its beat annotations).
        raw: ``(L, T_in)`` lead-selected signal at the native rate (NaN kept, missing leads zero).
        signal: ``(L, T_out)`` float64 at ``sample_rate``: NaN filled, band-passed, resampled, not
            normalised (in the input's units, mV for PhysioNet data).
        present: ``(L,)`` bool, the leads the record has.
        missing: names of the output leads the record lacks (zero rows).
        leads: names of the ``L`` rows (``config.leads``).
        sample_rate: rate of ``signal`` in Hz.
        lead_sources: how each channel of ``record`` was named (:func:`channel_leads`).
    """

    record: Record
    raw: np.ndarray
    signal: np.ndarray
    present: np.ndarray
    missing: list[str]
    leads: tuple[str, ...]
    sample_rate: int
    lead_sources: tuple[tuple[str, str | None, str], ...] = ()


def load_and_prepare(ref: RecordRef, config: PreprocessConfig, beats: bool = False) -> PreparedRecord:
    """Read one record and prepare it with ``config``'s leads, filter and rate (the preprocessing
    worker and the feature stage share this, so features see exactly the saved windows' signal).

    Args:
        beats: also read the beat annotations (MIT-BIH ``.atr``).

    Raises:
        BadRecord: the record is unreadable, has the wrong shape, or none of the selected leads.

    Example:
        >>> prepared = load_and_prepare(ref, PreprocessConfig(input="in", output="out"))  # a 30-s record
        >>> prepared.signal.shape, prepared.leads[:2], prepared.sample_rate
        ((12, 15000), ('I', 'II'), 500)
    """
    record = _read(ref, config, beats)
    sources = channel_leads(record, config, ref.channel)
    raw, signal, present, missing = _prepare(record, config, ref.channel)
    return PreparedRecord(record, raw, signal, present, missing, tuple(config.leads), int(config.sample_rate), sources)


def channel_leads(
    record: Record, config: PreprocessConfig, channel: int | None = None
) -> tuple[tuple[str, str | None, str], ...]:
    """``(raw name, standard lead or None, how)`` per channel of ``record``, ``how`` as in
    :func:`~.leads.resolve_lead_names`; with ``channel`` (``channels_as_records``) only that channel, named
    ``config.leads[0]`` and marked ``"channel"``."""
    leads, how = resolve_lead_names(record.lead_names, parse_lead_map(config.lead_map))
    rows = tuple(zip(map(str, record.lead_names), leads, how))
    if channel is None:
        return rows
    if not 0 <= channel < len(rows):
        raise BadRecord(f"wrong shape: no channel {channel} (has {record.lead_names})")
    return ((rows[channel][0], config.leads[0], "channel"),)


def duplicated_leads(sources: tuple[tuple[str, str | None, str], ...]) -> dict[str, int]:
    """``{lead: channels}`` for the leads two or more channels are named as (the first one is used)."""
    counts: dict[str, int] = {}
    for _, lead, _ in sources:
        if lead is not None:
            counts[lead] = counts.get(lead, 0) + 1
    return {lead: n for lead, n in counts.items() if n > 1}


def _read(ref: RecordRef, config: PreprocessConfig, beats: bool) -> Record:
    """The record at its native rate; a read failure becomes :class:`BadRecord`."""
    try:
        unnamed = bool(config.lead_map) or config.channels_as_records
        return read_record(ref, beats, config.input_sample_rate or config.sample_rate, config.lead_names, unnamed)
    except RecordFileError as exc:
        raise BadRecord(f"unreadable: {exc}") from exc
    except Exception as exc:
        raise BadRecord(f"unreadable: {type(exc).__name__}: {exc}") from exc


def _prepare(
    record: Record, cfg: PreprocessConfig, channel: int | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[str]]:
    """Lead-select, fill NaN, filter and resample.

    Args:
        channel: with ``channels_as_records``, the one channel to take (as ``cfg.leads[0]``, ``L = 1``).

    Returns:
        raw ``(L, T_in)`` lead-selected signal, processed ``(L, T_out)`` signal,
        ``(L,)`` present-lead mask, missing lead names.
    """
    if record.signal.ndim != 2 or record.signal.shape[1] == 0 or record.fs <= 0:
        raise BadRecord(f"wrong shape {record.signal.shape} or sampling rate {record.fs}")
    missing: list[str]
    if channel is not None:
        raw, present, missing = record.signal[channel : channel + 1].astype(np.float64), np.ones(1, bool), []
    else:
        raw, present, missing = select_leads(record.signal, record.lead_names, cfg.leads, parse_lead_map(cfg.lead_map))
    # A lead without a single valid sample carries no information: treat it as missing. (Row by row, over the
    # present rows only: the absent rows are zeros that need not be read.)
    all_nan = np.zeros(len(present), dtype=bool)
    for row in np.flatnonzero(present):
        all_nan[row] = bool(np.isnan(raw[row]).all())
    if all_nan.any():
        present = present & ~all_nan
        missing = [lead for lead, ok in zip(cfg.leads, present) if not ok]
        raw[all_nan] = 0.0
    if not present.any():
        raise BadRecord(
            "nan_only"
            if all_nan.any()
            else f"no selected lead present (has {record.lead_names}); name its channels with --lead-map"
        )
    # Zero-filled leads stay zero: fill, filter and resample only the real ones (row by row, so the same
    # numbers as on the whole array).
    clean = dsp.fill_nan(raw[present], copy=False)  # raw[present] is already a copy
    if cfg.apply_filter:
        clean = dsp.bandpass(clean, record.fs, *cfg.bandpass, cfg.filter_order)
    resampled = dsp.resample(clean, record.fs, cfg.sample_rate)
    out = np.zeros((len(present), resampled.shape[1]), dtype=np.float64)
    out[present] = resampled
    return raw, out, present, missing


def _filled(raw: np.ndarray, present: np.ndarray) -> np.ndarray:
    """``dsp.fill_nan(raw)`` on the present rows; absent rows are zero (as ``fill_nan`` makes them: they are
    zero or all NaN) and left to ``np.zeros``' untouched pages."""
    out = np.zeros(raw.shape, dtype=np.float64)
    out[present] = dsp.fill_nan(raw[present])
    return out


def _process(job: Job) -> dict[str, Any]:
    cfg = job.config
    prepared = load_and_prepare(job.ref, cfg, job.labels.uses_beats)
    record, raw, signal, present = prepared.record, prepared.raw, prepared.signal, prepared.present
    length, hop = window_geometry(cfg.sample_rate, cfg.window_seconds, cfg.overlap_seconds)
    starts = window_starts(signal.shape[1], length, hop)
    seconds = raw.shape[1] / record.fs
    short = starts.size == 0
    if short and cfg.pad_short is not None:
        starts = np.zeros(1, dtype=np.int64)
    thresholds = QualityThresholds(cfg.flat_threshold, cfg.saturation_threshold)
    bounds = [raw_bounds(start, length, cfg.sample_rate, record.fs, raw.shape[1]) for start in starts.tolist()]
    scores = quality.window_quality(_filled(raw, present), record.fs, present, bounds) if cfg.scores_quality else None
    flags = quality_flags_batch(raw, present, bounds, thresholds)
    beats = _window_beats(record, bounds) if job.labels.uses_beats else [None] * len(bounds)
    windows = []
    for i, start in enumerate(starts.tolist()):
        window = _window_entry(job, flags[i], beats[i], (i, start))
        if scores is not None:
            _add_quality(window, scores[0][i], scores[1][i], cfg.quality_min, cfg.quality == "drop")
        if short:
            window["size"] = length if cfg.pad_short == "zeros" else int(signal.shape[1])
            window["valid_samples"] = int(signal.shape[1])
        windows.append(window)
    kept = [w for w in windows if w["kept"]]
    if kept:  # one folder for the whole record (its windows share it)
        (Path(job.output) / kept[0]["path"]).parent.mkdir(parents=True, exist_ok=True)
    if short:
        for window in kept:
            feats = dsp.normalize(signal[:, : window["valid_samples"]], cfg.normalize, present)
            if cfg.pad_short == "zeros":  # normalised on the real samples, then zeros appended
                feats = np.pad(feats, ((0, 0), (0, length - feats.shape[1])))
            _write_mat(Path(job.output) / window["path"], feats.astype(np.float32), job, window["label"])
    else:
        _write_windows(job, signal, present, kept, length)
    if job.hook is not None and kept:
        job.hook(_record_pass(job, prepared, kept, length))
    return {
        "record": job.ref.record_id,
        "source_record": job.ref.source,
        "channel": job.ref.channel,
        "lead_sources": [list(row) for row in prepared.lead_sources],
        "too_short": round(seconds, 3) if short and cfg.pad_short is None else None,
        "padded": cfg.pad_short if short and cfg.pad_short is not None else None,
        "key": job.key,
        "idx": job.idx,
        "patient": job.ref.patient,
        "patient_id": job.patient_index,
        "fs_in": record.fs,
        "n_samples_in": int(raw.shape[1]),
        "lead_names_in": record.lead_names,
        "missing_leads": prepared.missing,
        "duplicate_leads": duplicated_leads(prepared.lead_sources),
        "window_length": length,
        "hop": hop,
        "windows": windows,
    }


def _record_pass(job: Job, prepared: PreparedRecord, kept: list[dict[str, Any]], length: int) -> RecordPass:
    windows = tuple((str(w["path"]), int(w["start"])) for w in kept)
    return RecordPass(
        job.ref.record_id, job.key, job.output, prepared.signal, prepared.leads, prepared.sample_rate, windows, length
    )


def _window_beats(record: Record, bounds: list[tuple[int, int]]) -> list[list[str]]:
    """``window_beats(record.beat_samples, record.beat_symbols, lo, hi)`` of every window, with one
    ``searchsorted`` for all of them."""
    spans = np.asarray(bounds, dtype=np.int64).reshape(-1, 2)
    first = np.searchsorted(record.beat_samples, spans[:, 0], side="left").tolist()
    last = np.searchsorted(record.beat_samples, spans[:, 1], side="left").tolist()
    return [beats_to_aami(record.beat_symbols[a:b]) for a, b in zip(first, last)]


def _window_entry(job: Job, flags: list[str], beats: list[str] | None, where: tuple[int, int]) -> dict[str, Any]:
    """The marker entry of one window from its quality flags and (beat-labelled data) its beats' AAMI classes."""
    i, start = where
    reasons = flags
    entry: dict[str, Any] = {
        "i": i,
        "start": start,
        "path": f"mat/{job.ref.record_id}_{i}.mat",
        "flags": reasons,
        "label": list(job.label),
    }
    if beats is not None:
        aami = window_aami_class(beats)
        entry.update(aami=aami, n_beats=len(beats))
        if aami is None:
            reasons = reasons + ["no_beats"]
        else:
            entry["label"] = job.labels.encode_window(aami)
    # Windows without beats cannot be labelled, so they are dropped even with quality=keep.
    entry["kept"] = not ((reasons and job.config.quality == "drop") or "no_beats" in reasons)
    entry["flags"] = reasons
    return entry


def _add_quality(entry: dict[str, Any], score: float, leads: np.ndarray, minimum: float | None, drop: bool) -> None:
    """Store the window's quality score (4 decimals; ``None`` per absent lead) and, below ``minimum``, flag
    it ``low_quality`` (dropped when ``drop``)."""
    entry["quality"] = round(float(score), 4)
    entry["quality_leads"] = [None if np.isnan(v) else round(float(v), 4) for v in leads]
    if minimum is not None and not score >= minimum:
        entry["flags"] = sorted(entry["flags"] + ["low_quality"])
        entry["kept"] = entry["kept"] and not drop


WRITE_BATCH = 64
"""Windows normalised and converted at once: bounds the worker's memory whatever the record's length."""


def _write_windows(job: Job, signal: np.ndarray, present: np.ndarray, kept: list[dict[str, Any]], length: int) -> None:
    """Normalise and write the kept windows of a record, :data:`WRITE_BATCH` at a time.

    The windows of the present leads are gathered from ``signal`` into one ``(n, P, T)`` array, normalised
    together in place (``dsp.normalize_batch``, equal to ``dsp.normalize`` per window) and converted to float32
    straight into ``(n, T, L)`` order, so that each window's ``(L, T)`` column-major ``feats`` is one contiguous
    block for :func:`_write_mat`. The ``(n, T, L)`` buffer is allocated once per record: its absent leads'
    columns stay zero and the present ones are overwritten by every batch. The bytes around each window's data
    are encoded once per record and label (:class:`~.matfile.WindowTemplate`).
    """
    rows = np.flatnonzero(present).tolist()
    feats = np.zeros((min(WRITE_BATCH, len(kept)), length, signal.shape[0]), dtype=np.float32)
    template = matfile.WindowTemplate()
    offsets = np.arange(length)
    for first in range(0, len(kept), WRITE_BATCH):
        batch = kept[first : first + WRITE_BATCH]
        take = np.asarray([w["start"] for w in batch], dtype=np.int64)[:, None] + offsets
        windows = np.empty((len(batch), len(rows), length), dtype=np.float64)
        for p, row in enumerate(rows):
            windows[:, p, :] = signal[row][take]
        normalised = dsp.normalize_batch(windows, job.config.normalize, copy=False)
        block = feats[: len(batch)]
        for p, row in enumerate(rows):
            block[:, :, row] = normalised[:, p, :]
        for window, one in zip(batch, block):
            _write_mat(os.path.join(job.output, window["path"]), one.T, job, window["label"], template)


def _write_mat(
    path: Path | str, feats: np.ndarray, job: Job, label: list[float], template: matfile.WindowTemplate | None = None
) -> None:
    """One window's ``.mat`` (``feats`` ``(L, T)`` float32), written atomically: the bytes of
    ``scipy.io.savemat`` with :data:`MAT_HEADER` as its description (:mod:`.matfile`, through ``template``
    when given: one per record; scipy itself with ``--compress``)."""
    variables: dict[str, np.ndarray | int] = {
        "feats": feats,
        "curr_sample_rate": int(job.config.sample_rate),
        "label": np.asarray(label, dtype=np.float32).reshape(1, -1),
        "idx": int(job.idx),
        "patient_id": int(job.patient_index),
    }
    if not job.config.compress:
        parts = template.parts(variables, "feats", tuple(label)) if template else matfile.encode(variables)
        matfile.write_atomic(path, parts)
        return
    buffer = io.BytesIO()
    scipy.io.savemat(buffer, variables, do_compression=True)
    data = bytearray(buffer.getvalue())
    data[: len(MAT_HEADER)] = MAT_HEADER
    matfile.write_atomic(path, [bytes(data)])


def _write_json_atomic(path: Path, payload: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".tmp{os.getpid()}")
    tmp.write_text(json.dumps(payload))
    os.replace(tmp, path)
