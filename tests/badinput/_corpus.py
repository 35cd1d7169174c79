"""Builders of the bad-input corpus (issue 15): each kind is made at test time from the real PhysioNet
2021 sample records bundled in ``data/sample/physionet2021`` (CPSC 2018 and Georgia, 500 Hz, 12 leads).

Every case holds the two good records ``A0001`` and ``A0002`` unchanged and one bad record ``Zbad``, made
from the real record ``E00001``; ``Zbad`` sorts after the good records, so their record and patient indices
(stored in each ``.mat``) are those of a run without it.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np

SAMPLE = Path(__file__).resolve().parents[2] / "data" / "sample" / "physionet2021"
GOOD = ("A0001", "A0002")
SOURCE = "E00001"
BAD = "Zbad"
FS = 500


def copy_good(folder: Path) -> Path:
    """``folder`` with the good records' ``.hea`` and ``.mat`` copied in."""
    folder.mkdir(parents=True, exist_ok=True)
    for record in GOOD:
        for ext in ("hea", "mat"):
            shutil.copy(SAMPLE / f"{record}.{ext}", folder / f"{record}.{ext}")
    return folder


def copy_source(folder: Path) -> tuple[Path, Path]:
    """``E00001`` copied in as ``Zbad`` (header renamed to match); returns ``(hea, mat)``."""
    hea, mat = folder / f"{BAD}.hea", folder / f"{BAD}.mat"
    hea.write_text((SAMPLE / f"{SOURCE}.hea").read_text().replace(SOURCE, BAD))
    shutil.copy(SAMPLE / f"{SOURCE}.mat", mat)
    return hea, mat


def source_signal() -> tuple[np.ndarray, list[str]]:
    """``E00001``'s ``(T, 12)`` physical signal in mV and its lead names."""
    import wfdb

    rec = wfdb.rdrecord(str(SAMPLE / SOURCE))
    return rec.p_signal.astype(np.float64), list(rec.sig_name)


def write_wfdb(folder: Path, signal: np.ndarray, names: list[str], dx: str = "426783006") -> None:
    """``Zbad.hea``/``Zbad.dat`` (format 16, 1000/mV) holding ``signal`` ``(T, C)``; NaN becomes WFDB's
    invalid sample."""
    import wfdb

    wfdb.wrsamp(
        BAD,
        fs=FS,
        units=["mV"] * signal.shape[1],
        sig_name=names,
        p_signal=signal,
        fmt=["16"] * signal.shape[1],
        adc_gain=[1000.0] * signal.shape[1],
        baseline=[0] * signal.shape[1],
        comments=[f"Dx: {dx}"],
        write_dir=str(folder),
    )


def edit_record_line(hea: Path, field: int, value: str) -> None:
    """Replace one field of a header's record line (1: signals, 2: rate, 3: samples)."""
    lines = hea.read_text().splitlines()
    fields = lines[0].split()
    fields[field] = value
    lines[0] = " ".join(fields)
    hea.write_text("\n".join(lines) + "\n")


def _truncated(folder: Path) -> None:
    _, mat = copy_source(folder)
    mat.write_bytes(mat.read_bytes()[: mat.stat().st_size // 2])


def _samples_exceed(folder: Path) -> None:
    hea, _ = copy_source(folder)
    edit_record_line(hea, 3, "9000")  # the .mat holds 5000


def _unknown_format(folder: Path) -> None:
    hea, _ = copy_source(folder)
    hea.write_text(hea.read_text().replace(" 16+24 ", " 17+24 "))


def _missing_signal_file(folder: Path) -> None:
    copy_source(folder)[1].unlink()


def _garbage_mat(folder: Path) -> None:
    _, mat = copy_source(folder)
    size = mat.stat().st_size
    mat.write_bytes(np.random.default_rng(0).integers(0, 256, size, dtype=np.uint8).tobytes())


def _empty_mat(folder: Path) -> None:
    copy_source(folder)[1].write_bytes(b"")


def _rate(value: str) -> Callable[[Path], None]:
    def build(folder: Path) -> None:
        hea, _ = copy_source(folder)
        edit_record_line(hea, 2, value)

    return build


def _zero_length(folder: Path) -> None:
    hea, _ = copy_source(folder)
    edit_record_line(hea, 3, "0")


def _unknown_leads(folder: Path) -> None:
    signal, _ = source_signal()
    write_wfdb(folder, signal, [f"chan{c}" for c in range(signal.shape[1])])


def _nan_samples(folder: Path) -> None:
    signal, names = source_signal()
    signal[: FS * 2] = np.nan  # the first 2 s of every lead: window 0 flagged nan
    write_wfdb(folder, signal, names)


def _all_nan_lead(folder: Path) -> None:
    signal, names = source_signal()
    signal[:, 6] = np.nan  # V1
    write_wfdb(folder, signal, names)


def _flat_lead(folder: Path) -> None:
    signal, names = source_signal()
    signal[:, 1] = 0.2  # lead II constant
    write_wfdb(folder, signal, names)


def _saturated_lead(folder: Path) -> None:
    signal, names = source_signal()
    lo, hi = np.quantile(signal[:, 1], [0.3, 0.7])
    signal[:, 1] = np.clip(signal[:, 1], lo, hi)  # 30 % of samples at each rail
    write_wfdb(folder, signal, names)


def _one_lead(folder: Path) -> None:
    signal, names = source_signal()
    write_wfdb(folder, signal[:, 1:2], [names[1]])


def _duplicated_lead(folder: Path) -> None:
    signal, names = source_signal()
    write_wfdb(folder, signal, names)  # wfdb refuses to write duplicate names: rename in the header
    hea = folder / f"{BAD}.hea"
    lines = hea.read_text().splitlines()
    assert lines[3].endswith(" III")
    lines[3] = lines[3][: -len("III")] + "II"  # lead III's channel named II as well
    hea.write_text("\n".join(lines) + "\n")


def _too_short(folder: Path) -> None:
    signal, names = source_signal()
    write_wfdb(folder, signal[: FS * 3], names)  # 3 s < one 5 s window


def _unknown_dx(folder: Path) -> None:
    signal, names = source_signal()
    write_wfdb(folder, signal, names, dx="999")


# kind -> (builder, expected outcome): ("failed", reason substring), ("flag", dropped-window reason),
# ("missing_lead", lead), ("too_short", None), ("duplicate", lead), ("unmapped", code).
RECORD_KINDS: dict[str, tuple[Callable[[Path], None], tuple[str, str | None]]] = {
    "truncated_signal_file": (_truncated, ("failed", "truncated")),
    "sample_count_exceeds_data": (_samples_exceed, ("failed", "truncated")),
    "unknown_format_code": (_unknown_format, ("failed", "unknown WFDB format code '17+24'")),
    "missing_signal_file": (_missing_signal_file, ("failed", "missing signal file")),
    "garbage_mat_right_size": (_garbage_mat, ("failed", "not a MAT v4 matrix")),
    "empty_mat": (_empty_mat, ("failed", "truncated (0 bytes")),
    "rate_zero": (_rate("0"), ("failed", "sampling rate 0 Hz is implausible")),
    "rate_negative": (_rate("-500"), ("failed", "sampling rate -500 Hz is implausible")),
    "rate_1hz": (_rate("1"), ("failed", "sampling rate 1 Hz is implausible")),
    "rate_100khz": (_rate("100000"), ("failed", "sampling rate 100000 Hz is implausible")),
    "rate_not_a_number": (_rate("fast"), ("failed", "sampling rate 'fast' is not a number")),
    "zero_length": (_zero_length, ("failed", "zero-length record")),
    "unknown_lead_names": (_unknown_leads, ("failed", "no selected lead present")),
    "nan_samples": (_nan_samples, ("flag", "nan")),
    "all_nan_lead": (_all_nan_lead, ("missing_lead", "V1")),
    "flat_lead": (_flat_lead, ("flag", "flat")),
    "saturated_lead": (_saturated_lead, ("flag", "saturated")),
    "one_lead_of_twelve": (_one_lead, ("missing_lead", "V6")),
    "duplicated_lead_names": (_duplicated_lead, ("duplicate", "II")),
    "shorter_than_window": (_too_short, ("too_short", None)),
    "unknown_dx_code": (_unknown_dx, ("unmapped", "999")),
}


def good_npy(folder: Path) -> Path:
    """Two good npy records (``A0001``/``A0002``'s first 10 s, ``(12, T)`` float32 mV) in ``folder``."""
    import wfdb

    folder.mkdir(parents=True, exist_ok=True)
    for record in GOOD:
        rec = wfdb.rdrecord(str(SAMPLE / record), sampto=FS * 10)
        np.save(folder / f"{record}.npy", rec.p_signal.T.astype(np.float32))
    return folder


def _npy_base() -> np.ndarray:
    signal, _ = source_signal()
    return signal.T.astype(np.float32)


NPY_KINDS: dict[str, tuple[Callable[[], np.ndarray], str]] = {
    "npy_complex": (lambda: _npy_base() * (1 + 0.5j), "dtype complex64 is not real numbers"),
    "npy_strings": (lambda: _npy_base().astype(str), "is not real numbers"),
    "npy_object": (lambda: np.array([_npy_base(), "x"], dtype=object), "object array"),
    "npy_wrong_rank": (lambda: _npy_base()[None], "wrong shape (1, 12, 5000)"),
    "npy_wrong_leads": (lambda: _npy_base()[:5], "5 channels but 0 lead names; give --lead-names"),
}
"""kind -> (array maker, reason substring); saved as ``Zbad.npy``."""
