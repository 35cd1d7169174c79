"""Discovery and reading of ECG records from WFDB / PhysioNet / numpy layouts.

``discover`` lists the records of an input folder cheaply (file names and
header text only) as ``RecordRef``s; ``read_record`` loads one record's signal
in physical units (mV) inside a worker process.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from . import mitformat
from .labels import LUDB_RHYTHMS, SNOMED_TO_NAME, clean_statement, map_snomed
from .leads import CANONICAL_LEADS, parse_lead_map, resolve_lead_names

# MIT-BIH records 201 and 202 were recorded from the same subject.
MITDB_SAME_SUBJECT = {"202": "201"}
_UNIT_SCALE = {"mv": 1.0, "uv": 1e-3, "µv": 1e-3, "μv": 1e-3, "v": 1e3}


@dataclass(frozen=True)
class RecordRef:
    """A record found on disk, before its signal is read.

    Attributes:
        record_id: filename-safe id (unique within the run).
        path: WFDB record path without extension, or the ``.npy`` file.
        format: reader name.
        patient: patient id (string).
        labels: record-level label names (empty for beat-annotated/unlabelled data).
        channel: with ``channels_as_records``, the one channel (0-based) this record is; else ``None``.
        source: with ``channels_as_records``, the id of the record the channel comes from.
        unmapped: label codes of the record that no class takes (PhysioNet 2021 ``#Dx`` codes outside
            the scored classes), reported in ``preprocess.json``.
    """

    record_id: str
    path: str
    format: str
    patient: str
    labels: tuple[str, ...] = ()
    channel: int | None = None
    source: str | None = None
    unmapped: tuple[str, ...] = ()


@dataclass
class Record:
    """One loaded record.

    Attributes:
        signal: ``(C, T)`` float64 in mV, may contain NaN.
        lead_names: the ``C`` channel names as stored.
        fs: sampling rate in Hz.
        beat_samples: ``(B,)`` annotation sample indices (MIT-BIH), else empty.
        beat_symbols: ``B`` annotation symbols.
    """

    record_id: str
    signal: np.ndarray
    lead_names: list[str]
    fs: float
    beat_samples: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    beat_symbols: list[str] = field(default_factory=list)


def sanitize_id(name: str) -> str:
    """Keep letters, digits, ``_`` and ``-``; everything else becomes ``_``."""
    return re.sub(r"[^A-Za-z0-9_-]", "_", name).strip("_") or "record"


def assign_ids(paths: Sequence[Path], root: Path, prefixes: Sequence[str] | None = None) -> list[str]:
    """Filename-safe unique ids: the file stem, or its relative path where stems collide."""
    stems = [sanitize_id((p_ + "_" if p_ else "") + p.stem) for p, p_ in zip(paths, prefixes or [""] * len(paths))]
    counts = {s: stems.count(s) for s in set(stems)}
    ids = [s if counts[s] == 1 else sanitize_id(str(p.relative_to(root).with_suffix(""))) for s, p in zip(stems, paths)]
    seen: dict[str, int] = {}
    for i, rid in enumerate(ids):
        seen[rid] = seen.get(rid, 0) + 1
        if seen[rid] > 1:
            ids[i] = f"{rid}_dup{seen[rid] - 1}"
    return ids


def header_comments(hea: Path) -> list[str]:
    """Comment lines of a WFDB header, without the leading ``#``."""
    text = hea.read_text(errors="replace")
    return [line.lstrip("#").strip() for line in text.splitlines() if line.startswith("#")]


def detect_format(root: Path) -> str:
    """Guess the input layout of ``root`` (see ``FORMATS`` in ``config``)."""
    headers = sorted(root.rglob("*.hea"))
    if headers:
        if any(root.rglob("*.atr")):
            return "mitdb"
        comments = [c for hea in headers[:5] for c in header_comments(hea)]
        if any(c.startswith("Dx:") for c in comments):
            return "physionet2021"
        if any(c.startswith("Rhythm:") for c in comments) or _find_ludb_csv(root, None):
            return "ludb"
        return "wfdb"
    if list((root / "samples").glob("*.npy")) or list(root.glob("*.npy")):
        return "npy_samples"
    if any(d.is_dir() and any(d.glob("*.npy")) for d in root.iterdir()):
        return "npy_classes"
    raise FileNotFoundError(f"no ECG records (*.hea or *.npy) found under {root}")


def discover(
    root: Path,
    fmt: str,
    ludb_csv: str | None = None,
    merge_same_subject: bool = True,
    channels_as_records: bool = False,
    lead_map: Sequence[str] = (),
) -> list[RecordRef]:
    """All records of ``root`` in format ``fmt``, in natural order of their ids.

    With ``channels_as_records`` every channel is its own record ``<id>_ch<c>`` (see :func:`expand_channels`).
    """
    if fmt in ("npy_samples", "npy_classes"):
        refs = _discover_npy(root, fmt)
    else:
        refs = _discover_wfdb(root, fmt, ludb_csv, merge_same_subject)
    refs = sorted(refs, key=lambda r: natural_key(r.record_id))
    return expand_channels(refs, lead_map) if channels_as_records else refs


def expand_channels(refs: Sequence[RecordRef], lead_map: Sequence[str] = ()) -> list[RecordRef]:
    """One ref per channel, ``<id>_ch<c>``, with the record's patient and labels (so the channels of a
    record share a split); channels that ``lead_map`` drops are left out. The channel count comes from the
    header (WFDB) or the array's shape (npy) only; a record whose count cannot be read stays whole and
    fails later as unreadable."""
    entries = parse_lead_map(lead_map)
    out: list[RecordRef] = []
    for ref in refs:
        try:
            names = _channel_names(ref)
        except Exception:  # noqa: BLE001 - reported by the worker, which reads the record again
            out.append(ref)
            continue
        leads, how = resolve_lead_names(names, entries)
        for channel, kind in enumerate(how):
            if kind != "dropped":
                rid = f"{ref.record_id}_ch{channel}"
                out.append(dataclasses.replace(ref, record_id=rid, channel=channel, source=ref.record_id))
    return out


def _channel_names(ref: RecordRef) -> list[str]:
    """The channel names of a record without reading its samples (``channel <c>`` for unnamed npy)."""
    if ref.format in ("npy_samples", "npy_classes"):
        shape = np.load(ref.path, mmap_mode="r", allow_pickle=False).shape
        return [f"channel {c}" for c in range(shape[0])]
    import wfdb

    return [str(name) for name in wfdb.rdheader(ref.path).sig_name]


def natural_key(text: str) -> tuple:
    """Sort key ordering ``"2"`` before ``"10"``."""
    return tuple((0, int(t), "") if t.isdigit() else (1, 0, t) for t in re.split(r"(\d+)", text) if t)


def _discover_wfdb(root: Path, fmt: str, ludb_csv: str | None, merge: bool) -> list[RecordRef]:
    headers = sorted(root.rglob("*.hea"))
    ids = assign_ids(headers, root)
    csv_rhythms = _ludb_csv_rhythms(_find_ludb_csv(root, ludb_csv)) if fmt == "ludb" else {}
    refs = []
    for hea, rid in zip(headers, ids):
        labels: tuple[str, ...] = ()
        unmapped: tuple[str, ...] = ()
        patient = rid
        if fmt == "ludb":
            labels = _ludb_labels(hea, csv_rhythms.get(hea.stem, []))
        elif fmt == "physionet2021":
            codes = _dx_codes(hea)
            labels = tuple(map_snomed(codes))
            unmapped = tuple(c for c in codes if c not in SNOMED_TO_NAME)
        elif fmt == "mitdb" and merge:
            patient = MITDB_SAME_SUBJECT.get(rid, rid)
        refs.append(RecordRef(rid, str(hea.with_suffix("")), fmt, patient, labels, unmapped=unmapped))
    return refs


def _discover_npy(root: Path, fmt: str) -> list[RecordRef]:
    if fmt == "npy_samples":
        folder = root / "samples" if (root / "samples").is_dir() else root
        files = sorted(folder.glob("*.npy"))
        classes = [""] * len(files)
    else:
        files, classes = [], []
        for folder in sorted(d for d in root.iterdir() if d.is_dir()):
            found = sorted(folder.glob("*.npy"))
            files += found
            classes += [folder.name] * len(found)
    ids = assign_ids(files, root, classes)
    return [RecordRef(rid, str(f), fmt, rid, (c,) if c else ()) for f, rid, c in zip(files, ids, classes)]


def _dx_codes(hea: Path) -> list[str]:
    codes: list[str] = []
    for comment in header_comments(hea):
        if comment.startswith("Dx:"):
            codes += [c for c in re.split(r"[,\s]+", comment[3:]) if c]
    return codes


def _find_ludb_csv(root: Path, explicit: str | None) -> Path | None:
    if explicit:
        return Path(explicit)
    for candidate in (root / "ludb.csv", root.parent / "ludb.csv"):
        if candidate.is_file():
            return candidate
    return None


def _ludb_csv_rhythms(csv: Path | None) -> dict[str, list[str]]:
    if csv is None:
        return {}
    import pandas as pd

    table = pd.read_csv(csv, dtype=str)
    return {
        str(row["ID"]).strip(): [clean_statement(s) for s in str(row["Rhythms"]).splitlines() if s.strip()]
        for _, row in table.iterrows()
        if isinstance(row.get("Rhythms"), str)
    }


def _ludb_labels(hea: Path, from_csv: list[str]) -> tuple[str, ...]:
    found = [clean_statement(c.split(":", 1)[1]) for c in header_comments(hea) if c.startswith("Rhythm:")]
    found += [r for r in from_csv if r not in found]
    return tuple(r for r in LUDB_RHYTHMS if r in found) + tuple(sorted(set(found) - set(LUDB_RHYTHMS)))


def read_record(
    ref: RecordRef,
    with_beats: bool,
    npy_fs: float | None = None,
    npy_leads: Sequence[str] | None = None,
    npy_unnamed: bool = False,
) -> Record:
    """Load one record's signal (mV) and, for MIT-BIH with ``with_beats``, its beat annotation.

    Args:
        npy_unnamed: npy channels without ``npy_leads`` (and not 12 of them) are named ``channel <c>``
            instead of failing (for ``--lead-map`` by index and ``--channels-as-records``).
    """
    if ref.format in ("npy_samples", "npy_classes"):
        return _read_npy(ref, npy_fs, npy_leads, npy_unnamed)
    check_wfdb_files(ref.path)
    record = _read_wfdb_signal(ref)
    if with_beats:
        annotations = mitformat.read_annotations(ref.path, "atr")
        if annotations is None:
            import wfdb

            ann = wfdb.rdann(ref.path, "atr")
            annotations = np.asarray(ann.sample, dtype=np.int64), list(ann.symbol)
        order = np.argsort(annotations[0], kind="stable")
        record.beat_samples = annotations[0][order]
        record.beat_symbols = [annotations[1][i] for i in order]
    return record


def _read_wfdb_signal(ref: RecordRef) -> Record:
    """The record's signal in mV: format 212 with numpy (:mod:`.mitformat`, the same numbers), else wfdb."""
    fast = mitformat.read_212(ref.path)
    if fast is not None:  # always in mV
        signal, names, fs = fast
        return Record(ref.record_id, signal, names, float(fs))
    import wfdb

    rec = wfdb.rdrecord(ref.path)
    if rec.p_signal is None or rec.p_signal.ndim != 2:
        raise ValueError("wrong shape: no 2-D physical signal")
    scale = np.array([_UNIT_SCALE.get((u or "mV").strip().lower(), 1.0) for u in rec.units])
    return Record(ref.record_id, (rec.p_signal * scale).T.astype(np.float64), list(rec.sig_name), float(rec.fs))


def _read_npy(ref: RecordRef, fs: float | None, leads: Sequence[str] | None, unnamed: bool = False) -> Record:
    if fs is None:
        raise ValueError("npy input needs --input-sample-rate (or --sample-rate)")
    try:
        signal = np.load(ref.path, allow_pickle=False)
    except ValueError as exc:
        if "allow_pickle" in str(exc):
            raise RecordFileError(
                f"{ref.path}: object array (pickled Python objects); save the signal as a numeric (leads, length) array"
            ) from None
        raise RecordFileError(f"{ref.path}: not a readable .npy file ({exc}); save it again with numpy.save") from None
    if not (np.issubdtype(signal.dtype, np.integer) or np.issubdtype(signal.dtype, np.floating)):
        raise RecordFileError(
            f"{ref.path}: dtype {signal.dtype} is not real numbers; save the real signal as float "
            "(for a complex array, np.real or np.abs first, whichever is the ECG)"
        )
    if signal.ndim != 2 or signal.size == 0:
        raise ValueError(f"wrong shape {signal.shape}: expected (leads, length)")
    names = list(leads) if leads else (list(CANONICAL_LEADS) if signal.shape[0] == 12 else None)
    if names is None and unnamed:
        names = [f"channel {c}" for c in range(signal.shape[0])]
    if names is None or len(names) != signal.shape[0]:
        raise ValueError(
            f"wrong shape {signal.shape}: {signal.shape[0]} channels but {len(names or [])} lead names; "
            "give --lead-names with one name per channel"
        )
    return Record(ref.record_id, signal.astype(np.float64), names, float(fs))


class RecordFileError(ValueError):
    """A record's files contradict each other or its header (the message names the file and the fix)."""


FS_RANGE = (25.0, 20_000.0)
"""Sampling rates (Hz) accepted from a header: ECGs are recorded between ~100 Hz and a few kHz; outside
this a header is wrong (wfdb reads a negative rate as its 250 Hz default and 0 Hz as 0)."""

# Bytes per sample of the WFDB formats (PhysioNet's signal(5)); FLAC (5xx) is left to wfdb.
_WFDB_BYTES = {8: 1.0, 16: 2.0, 24: 3.0, 32: 4.0, 61: 2.0, 80: 1.0, 160: 2.0, 212: 1.5, 310: 4 / 3, 311: 4 / 3}
_WFDB_FORMATS = set(_WFDB_BYTES) | {0, 508, 516, 524}
_SIGNAL_SPEC = re.compile(r"^(\d+)(?:x(\d+))?(?::\d+)?(?:\+(\d+))?$")


def header_rate(fields: Sequence[str]) -> float | None:
    """The sampling rate of a WFDB record line's fields (``name n_sig fs[/cf[(base)]] ...``); ``None`` when
    absent (WFDB's default of 250 Hz applies); raises :class:`RecordFileError`'s message text as ValueError
    when it is not a number."""
    if len(fields) < 3:
        return None
    return float(fields[2].split("/")[0])


def check_wfdb_files(path: str) -> None:
    """Check a WFDB record's header against its signal files before wfdb reads them, where wfdb would
    silently read a wrong rate, or fail with ``KeyError: '17'`` or ``sampto must be greater than sampfrom``.

    Raises:
        RecordFileError: implausible sampling rate, zero samples, unknown format code, missing or
            truncated signal file, or a ``.mat`` signal file whose MAT header disagrees with the WFDB header.
    """
    hea = Path(path + ".hea")
    lines = [ln.split("#")[0].strip() for ln in hea.read_text(errors="replace").splitlines()]
    lines = [ln for ln in lines if ln]
    if not lines:
        raise RecordFileError(f"{hea}: empty header; export the record again")
    fields = lines[0].split()
    if "/" in fields[0] or len(fields) < 2:  # multi-segment records: left to wfdb
        return
    try:
        fs = header_rate(fields)
    except ValueError:
        raise RecordFileError(f"{hea}: sampling rate {fields[2]!r} is not a number; correct the header") from None
    if fs is not None and not FS_RANGE[0] <= fs <= FS_RANGE[1]:
        raise RecordFileError(
            f"{hea}: sampling rate {fs:g} Hz is implausible for an ECG (expected {FS_RANGE[0]:g}-{FS_RANGE[1]:g} Hz); "
            "correct the header's record line"
        )
    sig_len = int(fields[3]) if len(fields) > 3 and fields[3].isdigit() else None
    if sig_len == 0:
        raise RecordFileError(f"{hea}: zero-length record (0 samples per signal); nothing to read")
    _check_signal_files(hea, lines[1 : 1 + int(fields[1])], sig_len)


def _check_signal_files(hea: Path, signal_lines: Sequence[str], sig_len: int | None) -> None:
    needed: dict[str, tuple[int, float, int]] = {}  # file -> (byte offset, bytes per frame, signals)
    for line in signal_lines:
        parts = line.split()
        match = _SIGNAL_SPEC.match(parts[1]) if len(parts) > 1 else None
        if match is None or int(match.group(1)) not in _WFDB_FORMATS:
            code = parts[1] if len(parts) > 1 else "(none)"
            raise RecordFileError(
                f"{hea}: unknown WFDB format code {code!r} for {parts[0]}; use one of "
                f"{', '.join(map(str, sorted(_WFDB_FORMATS)))} (wfdb.wrsamp writes 16)"
            )
        fmt, spf, offset = int(match.group(1)), int(match.group(2) or 1), int(match.group(3) or 0)
        _, frame, count = needed.get(parts[0], (offset, 0.0, 0))
        needed[parts[0]] = (offset, frame + spf * _WFDB_BYTES.get(fmt, 0.0), count + 1)
    for name, (offset, frame, count) in needed.items():
        if name == "~":
            continue
        data = hea.parent / name
        if not data.is_file():
            raise RecordFileError(f"{data}: missing signal file named by {hea.name}; copy it next to the header")
        size = data.stat().st_size
        if sig_len and frame and size < offset + int(sig_len * frame):
            raise RecordFileError(
                f"{data}: truncated ({size} bytes; {hea.name} promises {sig_len} samples = "
                f"{offset + int(sig_len * frame)} bytes); copy the file again or lower the sample count in the header"
            )
        if data.suffix == ".mat" and offset:
            _check_mat_v4_header(data, count, sig_len)


def _check_mat_v4_header(data: Path, n_sig: int, sig_len: int | None) -> None:
    """PhysioNet's ``.mat`` signal files are MAT v4 matrices ``val`` of ``n_sig x sig_len`` int16 after a
    20-byte header; a file of the right size but other bytes would otherwise be read as noise."""
    head = np.fromfile(data, dtype="<i4", count=5)
    shape_ok = len(head) == 5 and int(head[1]) == n_sig and (sig_len is None or int(head[2]) == sig_len)
    if not shape_ok or int(head[3]) != 0 or not 0 <= int(head[0]) < 100:
        raise RecordFileError(
            f"{data}: not a MAT v4 matrix of {n_sig} x {sig_len or '?'} samples (its header reads "
            f"{head.tolist()}); the file is corrupt or belongs to another record: export it again"
        )


def discover_saved(meta: dict) -> dict[str, RecordRef]:
    """``{record id: ref}`` of a finished run, discovered again with the options saved in its
    ``preprocess.json`` (``meta``), so that later stages (features, hybrid channels) see the same
    records, channel records and lead names as preprocessing did."""
    opts = meta.get("options", {})
    refs = discover(
        Path(meta["input"]),
        meta["format"],
        opts.get("ludb_csv"),
        opts.get("merge_same_subject", True),
        channels_as_records=bool(opts.get("channels_as_records", False)),
        lead_map=tuple(opts.get("lead_map") or ()),
    )
    return {r.record_id: r for r in refs}
