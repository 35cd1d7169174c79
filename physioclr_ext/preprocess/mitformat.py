"""A numpy reader for the common case of PhysioNet's MIT format: format-212 signal files and MIT annotation
files (MIT-BIH's ``.dat`` and ``.atr``), without importing wfdb.

``wfdb.rdrecord`` and ``wfdb.rdann`` took about 70 ms per MIT-BIH record (and wfdb's import, which loads
pandas, 0.3 s per worker); these take a few ms and return the same numbers bit for bit (tested against wfdb
on real records). Anything outside the simple case they check for (another format, skew, byte offsets,
baselines or units in the gain field, multi-segment records, custom annotation labels, ...) makes them
return ``None`` and the caller reads the record with wfdb.

Formats: PhysioNet's ``header(5)``, ``signal(5)`` (format 212: two 12-bit two's complement samples in three
bytes) and ``annot(5)`` (16-bit words: 6-bit annotation code, 10-bit time difference; codes 59-63 are
SKIP, NUM, SUB, CHN and AUX).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

_RECORD_LINE = re.compile(r"^([-\w]+)[ \t]+(\d+)[ \t]+(\d+(?:\.\d+)?)[ \t]+(\d+)(?:[ \t]+[\d:./ \t]*)?$")
"""``name n_sig fs sig_len [base_time [base_date]]``: no segments, counter frequency or base counter."""

_SIGNAL_LINE = re.compile(
    r"^([-\w]+\.?\w*)[ \t]+212[ \t]+(\d+(?:\.\d+)?)[ \t]+(\d+)[ \t]+(-?\d+)[ \t]+(-?\d+)[ \t]+(-?\d+)[ \t]+0"
    r"[ \t]+(\S[^\t\n\r\f\v]*)$"
)
"""``file 212 gain adc_res adc_zero init_value checksum 0 description``: format 212 without samples per
frame, skew, byte offset, baseline or units (so the baseline is ``adc_zero`` and the unit mV)."""

INVALID_212 = -2048
"""The sample value format 212 uses for "no sample" (wfdb reads it as NaN)."""

ANNOTATION_SYMBOLS = {
    0: " ", 1: "N", 2: "L", 3: "R", 4: "a", 5: "V", 6: "F", 7: "J", 8: "A", 9: "S", 10: "E", 11: "j",
    12: "/", 13: "Q", 14: "~", 16: "|", 18: "s", 19: "T", 20: "*", 21: "D", 22: '"', 23: "=", 24: "p",
    25: "B", 26: "^", 27: "t", 28: "+", 29: "u", 30: "?", 31: "!", 32: "[", 33: "]", 34: "e", 35: "n",
    36: "@", 37: "x", 38: "f", 39: "(", 40: ")", 41: "r",
}  # fmt: skip
"""Annotation code -> symbol: wfdb's standard table (``wfdb.io.annotation.ann_label_table``)."""

_SKIP, _NUM, _SUB, _CHN, _AUX, _NOTE = 59, 60, 61, 62, 63, 22


@dataclass(frozen=True)
class Header212:
    """What reading a format-212 record needs from its header.

    Attributes:
        file: the signal file, beside the header.
        fs: sampling rate in Hz.
        sig_len: samples per signal.
        names: the ``C`` signal descriptions.
        gain: ``(C,)`` ADC units per mV.
        baseline: ``(C,)`` ADC value of 0 mV.
    """

    file: Path
    fs: float
    sig_len: int
    names: list[str]
    gain: np.ndarray
    baseline: np.ndarray


def parse_header_212(path: str) -> Header212 | None:
    """The header ``PATH.hea`` of a single-segment record whose signals are all format 212 in one file with
    plain gains; ``None`` for any other header."""
    hea = Path(path + ".hea")
    lines = [ln.strip() for ln in hea.read_text(errors="replace").splitlines()]
    lines = [ln for ln in lines if ln and not ln.startswith("#")]
    record = _RECORD_LINE.match(lines[0]) if lines else None
    if record is None:
        return None
    n_sig, fs, sig_len = int(record.group(2)), float(record.group(3)), int(record.group(4))
    signals = [_SIGNAL_LINE.match(ln) for ln in lines[1:]]
    if n_sig == 0 or len(signals) != n_sig or not all(signals) or (n_sig * sig_len) % 2:
        return None
    files = {m.group(1) for m in signals if m}
    if len(files) != 1:
        return None
    gains = [float(m.group(2)) or 200.0 for m in signals if m]  # WFDB: a gain of 0 means 200
    return Header212(
        file=hea.parent / files.pop(),
        fs=fs,
        sig_len=sig_len,
        names=[m.group(7) for m in signals if m],
        gain=np.asarray(gains, dtype=np.float64),
        baseline=np.asarray([int(m.group(4)) for m in signals if m], dtype=np.int64),
    )


def decode_212(data: np.ndarray, n_samples: int) -> np.ndarray:
    """The first ``n_samples`` (even) samples packed in format 212's bytes ``data`` (uint8), as int16."""
    triplets = data[: n_samples // 2 * 3].reshape(-1, 3).astype(np.int16)
    out = np.empty(n_samples, dtype=np.int16)
    out[0::2] = triplets[:, 0] | ((triplets[:, 1] & 0x0F) << 8)
    out[1::2] = triplets[:, 2] | ((triplets[:, 1] & 0xF0) << 4)
    out[out > 2047] -= 4096  # 12-bit two's complement
    return out


def read_212(path: str) -> tuple[np.ndarray, list[str], float] | None:
    """``(signal (C, T) float64 in mV with NaN for invalid samples, names, fs)`` of the record ``path``
    (without extension), equal bit for bit to ``wfdb.rdrecord(path)``'s ``p_signal.T``; ``None`` when the
    record is not the simple format-212 case (see the module doc) or its signal file is short."""
    header = parse_header_212(path)
    if header is None:
        return None
    n_sig = len(header.names)
    total = n_sig * header.sig_len
    data = np.fromfile(header.file, dtype=np.uint8, count=total // 2 * 3)
    if data.size < total // 2 * 3:
        return None
    digital = decode_212(data, total).reshape(header.sig_len, n_sig).T
    signal = digital.astype(np.float64, order="C")
    # wfdb.Record.dac: (d - baseline) / gain in float64, NaN where the sample is invalid
    signal -= header.baseline[:, None]
    signal /= header.gain[:, None]
    signal[digital == INVALID_212] = np.nan
    return signal, header.names, header.fs


def read_annotations(path: str, extension: str = "atr") -> tuple[np.ndarray, list[str]] | None:
    """``(sample (B,) int64, symbols)`` of the MIT annotation file ``PATH.EXTENSION`` in file order, equal to
    ``wfdb.rdann(path, extension)``'s ``sample`` and ``symbol``; ``None`` where wfdb would read more than
    that (definition notes at sample 0, custom labels, codes outside the standard table) or fail."""
    data = Path(f"{path}.{extension}").read_bytes()
    if len(data) % 2:
        return None
    words = np.frombuffer(data, dtype="<u2").tolist()
    samples: list[int] = []
    codes: list[int] = []
    total, i, n = 0, 0, len(words)
    try:
        while i < n - 1:  # wfdb's loop: the last word never starts an annotation
            diff = 0
            while words[i] >> 10 == _SKIP:  # a 32-bit interval, high half first
                skip = (words[i + 1] << 16) + words[i + 2]
                diff += skip - (1 << 32) if skip > 0x7FFFFFFF else skip
                i += 3
            code = words[i] >> 10
            total += diff + (words[i] & 0x3FF)
            i += 1
            samples.append(total)
            codes.append(code)
            while words[i] >> 10 > _SKIP:  # NUM, SUB, CHN: one word; AUX: a length byte, then the text
                i += 1 + ((words[i] & 0xFF) + 1) // 2 if words[i] >> 10 == _AUX else 1
    except IndexError:  # truncated file: let wfdb report it
        return None
    if any(s == 0 and c == _NOTE for s, c in zip(samples, codes)):
        return None
    kept = [(s, c) for s, c in zip(samples, codes) if c != 0]
    if any(c not in ANNOTATION_SYMBOLS for _, c in kept):
        return None
    return np.asarray([s for s, _ in kept], dtype=np.int64), [ANNOTATION_SYMBOLS[c] for _, c in kept]
