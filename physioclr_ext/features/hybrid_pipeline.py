"""The hybrid-channel stage of a preprocessed directory (``--hybrid-channels``).

Appends the 11 channels of :mod:`.hybrid` to every window: ``mat/<record>_<i>.mat`` ``feats`` goes from
``(L, T)`` to ``(L + 11, T)`` (19 for the ``ecg_jepa`` preset's 8 leads), rows in the order of
``preprocess.json``'s ``hybrid.channels``. Like the feature stage, each record is re-read with the
preprocessing's own reader and DSP (``preprocess.worker.load_and_prepare``), so the channels see lead II
of the saved window before normalisation, in mV, at the output rate.

Two passes over the records (parallel processes): 1. R-peaks and per-beat values of every window, and the
moments of the channels over the training windows; the statistics are saved as ``hybrid/stats.json``;
2. every window's channels z-scored with them and written into its ``.mat``. The first ``L`` rows of a
``.mat`` are kept, so a re-run (or a resumed preprocessing that skipped a record) rewrites the same
file rather than appending twice. With ``--packed`` (the directory's ``options.packed``), the stage then
packs the rewritten windows (``preprocess.packed.pack_directory``; the preprocessing run leaves that to it),
so ``OUTPUT/packed/`` holds the ``L + 11`` rows; indexes that the rewrite makes stale are removed before it.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import scipy.io
from tqdm import tqdm

from ..preprocess import matfile, packed
from ..preprocess.config import PreprocessConfig
from ..preprocess.matfile import MAT_HEADER
from ..preprocess.readers import RecordRef, discover_saved
from ..preprocess.worker import load_and_prepare
from .extract import resolve_lead
from .hybrid import (
    HYBRID_CHANNELS,
    HYBRID_LEAD,
    N_HYBRID,
    STEP_CHANNELS,
    BeatTrack,
    ChannelMoments,
    HybridOptions,
    HybridStats,
    beat_track,
    render,
)

HYBRID_DIR = "hybrid"
STATS_FILE = "stats.json"


@dataclass(frozen=True)
class HybridJob:
    """One record's windows (picklable).

    Attributes:
        windows: ``(path, start, split)`` per window of the record.
        n_leads: rows of the preprocessed ``feats`` (the hybrid rows follow them).
    """

    record: str
    config: dict[str, Any]
    ref: RecordRef
    windows: tuple[tuple[str, int, str], ...]
    length: int
    n_leads: int
    lead_row: int
    root: str
    compress: bool
    options: HybridOptions


def stats_path(data_dir: str | Path) -> Path:
    """``<data_dir>/hybrid/stats.json``."""
    return Path(data_dir) / HYBRID_DIR / STATS_FILE


def channel_names(data_dir: str | Path) -> list[str]:
    """Names of the rows of a hybrid directory's windows: its leads, then ``HYBRID_CHANNELS``."""
    meta = json.loads((Path(data_dir) / "preprocess.json").read_text())
    return list(meta["window"]["leads"]) + list(HYBRID_CHANNELS)


def add_hybrid_channels(
    data_dir: str | Path, options: HybridOptions | None = None, workers: int = 1, progress: bool = True
) -> dict[str, Any]:
    """Append the hybrid channels to every window of a preprocessed directory.

    Returns:
        The stage's summary (``preprocess.json``'s ``hybrid`` entry): ``channels`` (names of the
        ``n_channels`` rows), ``leads_to_load`` (all rows as fairseq-signals' index list), ``stats``
        (path relative to the directory), ``windows``, ``windows_without_r_peaks``, ``reasons`` (counts of
        ``extract_features``' failure reasons), ``options``, and ``packed`` (``{split: [N, C, T]}``) when
        the directory was preprocessed with ``--packed``.

    Raises:
        ValueError: the directory has no lead II.

    Example:
        >>> add_hybrid_channels("out/ecg_jepa")["n_channels"]  # 8 leads + 11  # doctest: +SKIP
        19
    """
    options = options or HybridOptions()
    data = Path(data_dir).resolve()
    jobs = plan_jobs(data, options)
    tracks: dict[str, list[BeatTrack]] = {}
    per_record: dict[str, ChannelMoments] = {}
    for record, (record_tracks, record_moments) in _run(measure_record, jobs, workers, progress, "hybrid 1/2"):
        tracks[record] = record_tracks
        per_record[record] = record_moments
    moments = ChannelMoments()
    for job in jobs:  # in record order, not completion order: the same bits of statistics with any workers
        moments.merge(per_record[job.record])
    stats = HybridStats.from_moments(moments)
    stats.save(str(stats_path(data)))
    packs = bool(json.loads((data / "preprocess.json").read_text())["options"].get("packed"))
    salt = packed_salt(stats, options)
    if packs:
        packed.remove_stale_indexes(data, salt)
    writes = [(job, stats, tracks[job.record]) for job in jobs]
    for _ in _run(_write_record, writes, workers, progress, "hybrid 2/2"):
        pass
    every = [t for ts in tracks.values() for t in ts]
    names = channel_names(data)
    summary: dict[str, Any] = {
        "channels": names,
        "n_channels": len(names),
        "leads_to_load": str(list(range(len(names)))),
        "stats": str(stats_path(data).relative_to(data)),
        "windows": len(every),
        "windows_without_r_peaks": sum(len(t.r_peaks) == 0 for t in every),
        "reasons": dict(sorted(Counter(t.reason for t in every if t.reason).items())),
        "options": asdict(options),
    }
    if packs:
        summary["packed"] = packed.pack_directory(data, salt)
    return summary


def packed_salt(stats: HybridStats, options: HybridOptions) -> str:
    """What the hybrid rows of the windows depend on besides their records (the packed fingerprint's salt)."""
    payload = ["hybrid", stats.mean.tolist(), stats.std.tolist(), asdict(options)]
    return hashlib.sha256(json.dumps(payload).encode()).hexdigest()[:16]


def plan_jobs(data: Path, options: HybridOptions) -> list[HybridJob]:
    """One job per record of ``windows.csv``."""
    meta = json.loads((data / "preprocess.json").read_text())
    leads = list(meta["window"]["leads"])
    lead_row = resolve_lead(HYBRID_LEAD, leads, len(leads))
    by_record: dict[str, list[tuple[str, int, str]]] = {}
    with open(data / "windows.csv", newline="") as fh:
        for row in csv.DictReader(fh):
            by_record.setdefault(row["record"], []).append((row["path"], int(row["start"]), row["split"]))
    opts = meta["options"]
    refs = discover_saved(meta)
    length = int(meta["window"]["length_samples"])
    return [
        HybridJob(
            record,
            opts,
            refs[record],
            tuple(windows),
            length,
            len(leads),
            lead_row,
            str(data),
            bool(opts.get("compress")),
            options,
        )
        for record, windows in by_record.items()
    ]


def _lead_ii(job: HybridJob) -> tuple[np.ndarray | None, float]:
    """``(T_record,)`` lead II before normalisation and the rate, or ``(None, 0)`` if unreadable."""
    config = {k: v for k, v in job.config.items() if k in PreprocessConfig.__dataclass_fields__}
    try:
        prepared = load_and_prepare(job.ref, PreprocessConfig(**config))
    except Exception:  # noqa: BLE001 - an unreadable record gets channels at the training mean
        return None, 0.0
    return prepared.signal[job.lead_row], float(prepared.sample_rate)


def _no_beats(reason: str) -> BeatTrack:
    return BeatTrack(np.zeros(0, np.int64), {name: np.zeros(0) for name in STEP_CHANNELS}, reason)


def measure_record(job: HybridJob) -> tuple[str, tuple[list[BeatTrack], ChannelMoments]]:
    """Pass 1: every window's beats, and the channel moments of its training windows."""
    x, fs = _lead_ii(job)
    tracks, moments = [], ChannelMoments()
    for _, start, split in job.windows:
        window = None if x is None else x[start : start + job.length]
        if window is None or window.size != job.length:
            tracks.append(_no_beats("unreadable" if x is None else "window_outside_record"))
            continue
        track = beat_track(window, fs, job.options)
        tracks.append(track)
        if split == "train":
            moments.add(render(window, track, job.options))
    return job.record, (tracks, moments)


def _write_record(item: tuple[HybridJob, HybridStats, list[BeatTrack]]) -> tuple[str, int]:
    """Pass 2: write ``feats[:L]`` + the z-scored channels into every window of the record."""
    job, stats, tracks = item
    x, _ = _lead_ii(job)
    for (path, start, _), track in zip(job.windows, tracks):
        window = None if x is None else x[start : start + job.length]
        if window is None or window.size != job.length:
            channels = np.zeros((N_HYBRID, job.length), np.float32)
        else:
            channels = stats.apply(render(window, track, job.options))
        write_window(Path(job.root) / path, channels, job.n_leads, job.compress)
    return job.record, len(tracks)


def write_window(path: Path, channels: np.ndarray, n_leads: int, compress: bool) -> None:
    """Replace the rows after the first ``n_leads`` of ``path``'s ``feats`` by ``channels`` (atomic), with the
    preprocessing's fixed MAT header instead of scipy's creation time: a re-run writes the same bytes."""
    mat = {k: v for k, v in scipy.io.loadmat(path).items() if not k.startswith("__")}
    leads = np.asarray(mat["feats"], dtype=np.float32)[:n_leads]
    mat["feats"] = np.concatenate([leads, np.asarray(channels, dtype=np.float32)], axis=0)
    buffer = io.BytesIO()
    scipy.io.savemat(buffer, mat, do_compression=compress)
    data = bytearray(buffer.getvalue())
    data[: len(MAT_HEADER)] = MAT_HEADER
    matfile.write_atomic(path, [bytes(data)])


J = TypeVar("J")
R = TypeVar("R")


def _run(
    fn: Callable[[J], tuple[str, R]], jobs: Sequence[J], workers: int, progress: bool, desc: str
) -> Iterator[tuple[str, R]]:
    """``fn`` over ``jobs`` in ``workers`` processes, results in completion order."""
    with tqdm(total=len(jobs), unit="record", desc=desc, disable=not progress) as bar:
        if workers <= 1 or len(jobs) <= 1:
            for job in jobs:
                yield fn(job)
                bar.update()
            return
        with ProcessPoolExecutor(max_workers=min(workers, len(jobs))) as pool:
            for future in as_completed([pool.submit(fn, job) for job in jobs]):
                yield future.result()
                bar.update()
