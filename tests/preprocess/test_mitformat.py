"""The numpy MIT-format reader (issue 14) reads what wfdb reads, bit for bit, and leaves anything else to wfdb.

Real records: the bundled MIT-BIH 100, 106 and 208 (format 212, two signals). Synthetic ones written by
``wfdb.wrsamp`` / ``wfdb.wrann`` cover invalid samples, negative values, odd headers and annotation files
with SKIP intervals, NUM/SUB/CHN fields and AUX notes.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import wfdb
from wfdb.io.annotation import ann_label_table

from physioclr_ext.preprocess import mitformat
from physioclr_ext.preprocess.readers import RecordRef, read_record

MITDB = Path(__file__).resolve().parents[2] / "data" / "sample" / "mitdb"


@pytest.mark.parametrize("record", ["100", "106", "208"])
def test_212_signal_equals_wfdb_on_real_records(record: str) -> None:
    path = str(MITDB / record)
    fast = mitformat.read_212(path)
    assert fast is not None
    signal, names, fs = fast
    reference = wfdb.rdrecord(path)
    expected = np.ascontiguousarray(reference.p_signal.T)
    assert signal.dtype == np.float64 and signal.shape == expected.shape == (2, 650000)
    assert signal.tobytes() == expected.tobytes()
    assert names == list(reference.sig_name) and fs == reference.fs


@pytest.mark.parametrize("record", ["100", "106", "208"])
def test_annotations_equal_wfdb_on_real_records(record: str) -> None:
    path = str(MITDB / record)
    fast = mitformat.read_annotations(path, "atr")
    assert fast is not None
    reference = wfdb.rdann(path, "atr")
    assert fast[0].dtype == np.int64 and np.array_equal(fast[0], reference.sample)
    assert fast[1] == list(reference.symbol) and len(fast[1]) > 1000


def test_read_record_fast_path_equals_wfdb_path(monkeypatch: pytest.MonkeyPatch) -> None:
    ref = RecordRef("208", str(MITDB / "208"), "mitdb", "208")
    fast = read_record(ref, with_beats=True)
    monkeypatch.setattr(mitformat, "read_212", lambda path: None)
    monkeypatch.setattr(mitformat, "read_annotations", lambda path, extension="atr": None)
    slow = read_record(ref, with_beats=True)
    assert (
        np.array_equal(fast.signal, slow.signal)
        and fast.signal.tobytes() == np.ascontiguousarray(slow.signal).tobytes()
    )
    assert (fast.lead_names, fast.fs) == (slow.lead_names, slow.fs)
    assert np.array_equal(fast.beat_samples, slow.beat_samples) and fast.beat_symbols == slow.beat_symbols


def test_symbol_table_is_wfdbs() -> None:
    assert mitformat.ANNOTATION_SYMBOLS == dict(zip(ann_label_table["label_store"], ann_label_table["symbol"]))


def test_212_invalid_and_negative_samples(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    digital = rng.integers(-2047, 2048, size=(1000, 3)).astype(np.int16)
    digital[[0, 5, 999], [0, 2, 1]] = -2048  # "no sample"
    digital[7] = [-2047, 2047, 0]
    wfdb.wrsamp(
        "syn", fs=250, units=["mV"] * 3, sig_name=["I", "II", "V1"], d_signal=digital, fmt=["212"] * 3,
        adc_gain=[200.0, 100.0, 12.5], baseline=[0, -3, 17], write_dir=str(tmp_path),
    )  # fmt: skip
    path = str(tmp_path / "syn")
    header = (tmp_path / "syn.hea").read_text()
    if mitformat.parse_header_212(path) is None:  # wrsamp writes baselines and units: make them MIT-BIH style
        lines = header.splitlines()
        plain = [lines[0]] + [
            f"syn.dat 212 {g:g} 12 {b} 0 0 0 {n}"
            for g, b, n in zip([200.0, 100.0, 12.5], [0, -3, 17], ["I", "II", "V1"])
        ]
        (tmp_path / "syn.hea").write_text("\n".join(plain) + "\n")
    fast = mitformat.read_212(path)
    assert fast is not None
    reference = wfdb.rdrecord(path)
    assert np.isnan(fast[0][0, 0]) and np.isnan(fast[0][2, 5]) and np.isnan(fast[0][1, 999])
    assert fast[0].tobytes() == np.ascontiguousarray(reference.p_signal.T).tobytes()
    assert fast[1] == ["I", "II", "V1"]


@pytest.mark.parametrize(
    "signal_line",
    [
        "x.dat 16 200 11 1024 0 0 0 MLII",  # another format
        "x.dat 212 200(5)/mV 11 1024 0 0 0 MLII",  # baseline and units in the gain field
        "x.dat 212x2 200 11 1024 0 0 0 MLII",  # samples per frame
        "x.dat 212+128 200 11 1024 0 0 0 MLII",  # byte offset
        "x.dat 212 200 11 1024",  # no description
    ],
)
def test_other_headers_are_left_to_wfdb(tmp_path: Path, signal_line: str) -> None:
    (tmp_path / "x.hea").write_text(f"x 2 360 100\n{signal_line}\n{signal_line}\n")
    assert mitformat.parse_header_212(str(tmp_path / "x")) is None


def test_odd_sample_count_and_segments_are_left_to_wfdb(tmp_path: Path) -> None:
    line = "x.dat 212 200 11 1024 0 0 0 MLII"
    (tmp_path / "x.hea").write_text(f"x 3 360 101\n{line}\n{line}\n{line}\n")  # 303 samples: half a triplet
    assert mitformat.parse_header_212(str(tmp_path / "x")) is None
    (tmp_path / "x.hea").write_text(f"x/2 2 360 100\n{line}\n{line}\n")  # multi-segment
    assert mitformat.parse_header_212(str(tmp_path / "x")) is None


def test_short_signal_file_is_left_to_wfdb(tmp_path: Path) -> None:
    (tmp_path / "x.hea").write_text("x 2 360 100\nx.dat 212 200 11 1024 0 0 0 MLII\nx.dat 212 200 11 1024 0 0 0 V1\n")
    (tmp_path / "x.dat").write_bytes(b"\x00" * 299)
    assert mitformat.read_212(str(tmp_path / "x")) is None


def test_annotations_with_skips_and_extra_fields_equal_wfdb(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    samples = np.cumsum(rng.integers(1, 400, size=300))
    samples[150:] += 5000  # an interval over 1023 samples: a SKIP word pair
    symbols = list(rng.choice(["N", "V", "A", "+", "~", "|", "Q"], size=300))
    aux = ["(AFIB" if s == "+" else "" for s in symbols]
    wfdb.wrann(
        "syn", "atr", samples, symbol=symbols, aux_note=aux, subtype=rng.integers(0, 3, 300),
        chan=rng.integers(0, 2, 300), num=rng.integers(0, 4, 300), write_dir=str(tmp_path),
    )  # fmt: skip
    path = str(tmp_path / "syn")
    reference = wfdb.rdann(path, "atr")
    fast = mitformat.read_annotations(path, "atr")
    assert fast is not None
    assert np.array_equal(fast[0], reference.sample) and fast[1] == list(reference.symbol)
    assert np.array_equal(fast[0], samples)


def test_annotations_with_a_definition_note_are_left_to_wfdb(tmp_path: Path) -> None:
    wfdb.wrann("syn", "atr", np.array([10, 20]), symbol=["N", "V"], fs=360, write_dir=str(tmp_path))
    assert mitformat.read_annotations(str(tmp_path / "syn"), "atr") is None  # wrann's "## time resolution" note
    assert list(wfdb.rdann(str(tmp_path / "syn"), "atr").symbol) == ["N", "V"]
