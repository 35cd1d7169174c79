"""Agreement of the extracted intervals with LUDB's manual P/QRS/T delineation.

LUDB (Kalyakulina et al., IEEE Access 2020) annotates every lead separately (``<record>.ii`` ...) as
``(`` onset, ``p``/``N``/``t`` peak, ``)`` offset triples. A detected beat is matched to the annotated QRS
whose onset-offset span contains its R-peak; PR, QRS and QT are compared beat by beat.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .extract import extract_features

INTERVALS = ("pr_ms", "qrs_ms", "qt_ms")


def ludb_waves(record: str | Path, lead: str = "ii") -> dict[str, np.ndarray]:
    """Annotated waves of one lead: ``{"p", "qrs", "t"}`` -> ``(n, 3)`` int (onset, peak, offset)."""
    import wfdb

    ann = wfdb.rdann(str(record), lead)
    symbols, samples = list(ann.symbol), np.asarray(ann.sample, dtype=np.int64)
    waves: dict[str, list[tuple[int, int, int]]] = {"p": [], "qrs": [], "t": []}
    names = {"p": "p", "N": "qrs", "t": "t"}
    for i in range(1, len(symbols) - 1):
        if symbols[i] in names and symbols[i - 1] == "(" and symbols[i + 1] == ")":
            waves[names[symbols[i]]].append((samples[i - 1], samples[i], samples[i + 1]))
    return {k: np.asarray(v, dtype=np.int64).reshape(-1, 3) for k, v in waves.items()}


def annotated_intervals(waves: dict[str, np.ndarray], fs: float) -> dict[str, np.ndarray]:
    """Per annotated QRS: its span and PR / QRS / QT in ms (NaN when the P before or T after is missing).

    The P wave of a beat is the last P onset before its QRS onset and after the previous QRS; the T wave
    the first T offset after its QRS offset and before the next QRS.
    """
    qrs = waves["qrs"]
    out = {"qrs_on": qrs[:, 0].astype(float), "qrs_off": qrs[:, 2].astype(float)}
    pr, qt = np.full(len(qrs), np.nan), np.full(len(qrs), np.nan)
    for k, (on, _, off) in enumerate(qrs):
        prev_off = qrs[k - 1, 2] if k else -np.inf
        next_on = qrs[k + 1, 0] if k + 1 < len(qrs) else np.inf
        p = waves["p"][(waves["p"][:, 0] < on) & (waves["p"][:, 0] > prev_off)]
        t = waves["t"][(waves["t"][:, 2] > off) & (waves["t"][:, 2] < next_on)]
        if len(p):
            pr[k] = (on - p[-1, 0]) * 1000.0 / fs
        if len(t):
            qt[k] = (t[0, 2] - on) * 1000.0 / fs
    out.update(pr_ms=pr, qrs_ms=(qrs[:, 2] - qrs[:, 0]) * 1000.0 / fs, qt_ms=qt)
    return out


def record_agreement(record: str | Path, lead: str = "ii", delineation: str = "dwt") -> dict[str, np.ndarray]:
    """Detected minus annotated PR, QRS and QT (ms) for the matched beats of one LUDB record and lead.

    The features are extracted from that lead of the raw 10-s record (mV, 500 Hz) with ``delineation``
    (see ``extract_features``).

    Returns:
        ``INTERVALS`` -> ``(M,)`` signed errors of the beats where both values exist, plus ``matched``
        (1,) = number of detected beats matched to an annotated QRS and ``annotated`` (1,) = number of
        annotated QRS complexes.
    """
    import wfdb

    rec = wfdb.rdrecord(str(record))
    names = [n.lower() for n in rec.sig_name]
    res = extract_features(rec.p_signal.T, rec.fs, lead=names.index(lead.lower()), delineation=delineation)
    ann = annotated_intervals(ludb_waves(record, lead), rec.fs)
    out: dict[str, list[float]] = {name: [] for name in INTERVALS}
    matched = 0
    if res.valid:
        fs = rec.fs
        qt = res.beats["qtc_ms"] * np.sqrt(res.beats["rr_ms"] / 1000.0)
        detected = {"pr_ms": res.beats["pr_ms"], "qrs_ms": res.beats["qrs_ms"], "qt_ms": qt}
        for k, r in enumerate(res.r_peaks):
            hit = np.flatnonzero((ann["qrs_on"] - 0.02 * fs <= r) & (r <= ann["qrs_off"] + 0.02 * fs))
            if hit.size == 0:
                continue
            matched += 1
            for name in INTERVALS:
                a, d = ann[name][hit[0]], detected[name][k]
                if np.isfinite(a) and np.isfinite(d):
                    out[name].append(float(d - a))
    result = {name: np.asarray(v) for name, v in out.items()}
    result.update(matched=np.asarray([matched]), annotated=np.asarray([len(ann["qrs_on"])]))
    return result


def agreement_table(
    records: list[str | Path], lead: str = "ii", delineation: str = "dwt"
) -> dict[str, dict[str, float]]:
    """Median absolute error, mean error (bias), share within 40 ms and beat count per interval over records."""
    errors: dict[str, list[np.ndarray]] = {name: [] for name in INTERVALS}
    matched = annotated = 0
    for record in records:
        res = record_agreement(record, lead, delineation)
        matched += int(res["matched"][0])
        annotated += int(res["annotated"][0])
        for name in INTERVALS:
            errors[name].append(res[name])
    table = {}
    for name in INTERVALS:
        e = np.concatenate(errors[name]) if errors[name] else np.zeros(0)
        table[name] = {
            "beats": int(e.size),
            "median_abs_ms": float(np.median(np.abs(e))) if e.size else float("nan"),
            "mean_ms": float(e.mean()) if e.size else float("nan"),
            "within_40ms": float(np.mean(np.abs(e) <= 40)) if e.size else float("nan"),
        }
    table["beats"] = {"matched": matched, "annotated": annotated}
    return table
