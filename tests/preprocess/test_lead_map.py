"""Lead names as recordings carry them (issue 16): aliases, ``--lead-map``, ``--channels-as-records``,
and records shorter than one window (``too_short`` / ``--pad-short``).

Real records: QT Database ``sel30`` (leads named ``record 30, signal 0/1``), ``sele0104`` (``D3``, ``D4``),
``sele0606`` (``CM5``, ``ML5``) and the MIT-BIH Supraventricular Arrhythmia Database record ``800``
(``ECG``, ``ECG``) from ``../shared/data/pool`` (PhysioNet, ODC-By 1.0; see its README), each cut to its
first seconds in a temporary copy (header sample count lowered, ``.dat`` truncated to match) so the tests
stay fast. Skipped where the shared data is absent.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import scipy.io

from physioclr_ext.preprocess import PreprocessConfig, run
from physioclr_ext.preprocess.cli import config_from_args
from physioclr_ext.preprocess.leads import canonical_lead_name, parse_lead_map, resolve_lead_names
from physioclr_ext.preprocess.pipeline import PreprocessError

SHARED = Path(os.environ.get("PHYSIOCLR_SHARED_DATA", Path(__file__).resolve().parents[3] / "shared" / "data"))
POOL = SHARED / "pool"
needs_pool = pytest.mark.skipif(not (POOL / "qtdb").is_dir(), reason=f"no shared pool data at {POOL}")
FS_OUT = 250


@pytest.mark.parametrize(
    "raw, expected",
    [
        ("MLII", "II"),
        ("D3", "III"),
        ("DII", "II"),
        ("d1", "I"),
        ("DIII", "III"),
        ("CM5", "V5"),
        ("CM2", "V2"),
        ("CC5", "V5"),
        ("mod.V1", "V1"),
        ("MV1", "V1"),
        ("AVL", "aVL"),
        ("ML5", None),  # ambiguous site: left to --lead-map
        ("V2-V3", None),
        ("D4", None),
        ("record 30, signal 0", None),
        ("ECG", None),
    ],
)
def test_aliases(raw, expected):
    assert canonical_lead_name(raw) == expected


def test_lead_map_precedence_and_errors():
    entries = parse_lead_map(["0=V1", "record *, signal 0=II;CM5=-"])
    leads, how = resolve_lead_names(["record 30, signal 0", "record 30,  signal 1"], entries)
    assert leads == ["II", None] and how == ["lead_map", "unrecognised"]  # name beats index 0
    leads, how = resolve_lead_names(["MLII", "CM5", "V1"], entries)
    assert leads == ["V1", None, "V1"] and how == ["lead_map", "dropped", "standard"]  # index beats the alias
    for bad in ("II", "0=V9", "=II"):
        with pytest.raises(ValueError):
            parse_lead_map(bad)


def test_cli_options():
    config = config_from_args(
        ["--input", "i", "--output", "o", "--lead-map", "record *, signal 0=II", "1=V5", "--pad-short"]
    )
    assert config.lead_map == ("record *, signal 0=II", "1=V5") and config.pad_short == "zeros"
    config = config_from_args(["--input", "i", "--output", "o", "--channels-as-records", "--leads", "II"])
    assert config.channels_as_records and config.leads == ("II",)
    with pytest.raises(ValueError, match="one output lead"):
        config_from_args(["--input", "i", "--output", "o", "--channels-as-records"])
    with pytest.raises(ValueError, match="lead map"):
        PreprocessConfig(input="i", output="o", lead_map=("0=V9",))


def _cut(src: Path, dest: Path, seconds: float) -> None:
    """Copy a format-212 WFDB record keeping its first ``seconds`` (header and ``.dat`` made consistent)."""
    lines = (src.with_suffix(".hea")).read_text().splitlines()
    name, n_sig, fs = lines[0].split()[:3]
    n = int(float(seconds) * float(fs))
    lines[0] = f"{name} {n_sig} {fs} {n}"
    dest.mkdir(parents=True, exist_ok=True)
    (dest / f"{src.name}.hea").write_text("\n".join(lines) + "\n")
    nbytes = n * int(n_sig) * 3 // 2  # format 212: 12 bits per sample
    (dest / f"{src.name}.dat").write_bytes(src.with_suffix(".dat").read_bytes()[:nbytes])


def _config(folder: Path, out: Path, **options) -> PreprocessConfig:
    values = dict(format="wfdb", sample_rate=FS_OUT, window_seconds=10.0, workers=1, progress=False)
    values.update(options)
    return PreprocessConfig(input=str(folder), output=str(out), **values)


def _feats(out: Path, record: str, i: int = 0) -> np.ndarray:
    return scipy.io.loadmat(out / "mat" / f"{record}_{i}.mat")["feats"]


@needs_pool
def test_qtdb_lead_map_names_aliases_and_counts(tmp_path):
    src = tmp_path / "qtdb"
    for record in ("sel30", "sele0104", "sele0606"):
        _cut(POOL / "qtdb" / record, src, 30)
    base = run(_config(src, tmp_path / "plain", leads="II,III,V5"))
    assert [f["record"] for f in base["failed_records"]] == ["sel30"]  # the "no selected lead present"

    summary = run(_config(src, tmp_path / "mapped", leads="II,III,V5", lead_map=("record *, signal 0=II", "ML5=-")))
    assert summary["failed_records"] == [] and summary["records"]["succeeded"] == 3
    assert summary["missing_leads"]["records"] == {
        "sel30": ["III", "V5"],
        "sele0104": ["II", "V5"],
        "sele0606": ["II", "III"],
    }
    how = summary["lead_names"]["channels_by_how"]
    assert how == {"alias": 2, "dropped": 1, "lead_map": 1, "unrecognised": 2}  # D3, CM5 | ML5 | sel30/0 | sel30/1, D4
    assert summary["lead_names"]["names"]["CM5"] == {"lead": "V5", "how": "alias", "records": 1}
    # The mapped row is the record's channel 0: the same as taking channel 0 as its own record.
    channels = run(_config(src, tmp_path / "channels", leads="II", channels_as_records=True))
    np.testing.assert_allclose(_feats(tmp_path / "mapped", "sel30")[0], _feats(tmp_path / "channels", "sel30_ch0")[0])
    assert not np.allclose(_feats(tmp_path / "channels", "sel30_ch1")[0], _feats(tmp_path / "channels", "sel30_ch0")[0])
    np.testing.assert_allclose(
        _feats(tmp_path / "mapped", "sele0104")[1], _feats(tmp_path / "channels", "sele0104_ch0")[0]
    )
    counts = channels["channels_as_records"]
    assert counts == {
        "source_records": 3,
        "channel_records": 6,
        "per_source": {"sel30": 2, "sele0104": 2, "sele0606": 2},
    }
    assert channels["lead_names"]["channels_by_how"] == {"channel": 6}


@needs_pool
def test_svdb_by_index_and_channels_share_a_split(tmp_path):
    src = tmp_path / "svdb"
    _cut(POOL / "svdb" / "800", src, 40)
    with pytest.raises(PreprocessError, match="no selected lead present"):
        run(_config(src, tmp_path / "none", leads="II"))  # "ECG", "ECG"
    mapped = run(_config(src, tmp_path / "index", leads="II,V1", lead_map=("0=II", "1=V1")))
    assert mapped["missing_leads"]["records"] == {} and mapped["splits"]["train"]["windows"] == 4
    channels = run(_config(src, tmp_path / "ch", leads="II", channels_as_records=True))
    assert channels["channels_as_records"]["per_source"] == {"800": 2}
    splits = {s for s, c in channels["splits"].items() if c["windows"]}
    assert len(splits) == 1 and channels["splits"][splits.pop()]["records"] == 2  # one patient, one split
    np.testing.assert_allclose(_feats(tmp_path / "index", "800")[1], _feats(tmp_path / "ch", "800_ch1")[0])


@needs_pool
def test_npy_lead_map_by_index_matches_wfdb(tmp_path):
    import wfdb

    src = tmp_path / "wfdb"
    _cut(POOL / "qtdb" / "sel30", src, 20)
    signal = wfdb.rdrecord(str(src / "sel30")).p_signal.T
    (tmp_path / "npy").mkdir()
    np.save(tmp_path / "npy" / "sel30.npy", signal)
    run(_config(src, tmp_path / "w", leads="II", lead_map=("1=II",)))
    npy = _config(tmp_path / "npy", tmp_path / "n", leads="II", lead_map=("1=II",), format="npy_samples")
    npy.input_sample_rate = 250.0
    run(npy)
    np.testing.assert_allclose(_feats(tmp_path / "n", "sel30"), _feats(tmp_path / "w", "sel30"), atol=1e-6)


@needs_pool
def test_short_records_skipped_or_padded(tmp_path):
    src = tmp_path / "short"
    _cut(POOL / "qtdb" / "sele0104", src, 25)
    shutil.copytree(src, tmp_path / "short_only")
    _cut(POOL / "qtdb" / "sel30", src, 3)  # 3 s < one 10 s window
    _cut(POOL / "qtdb" / "sel30", tmp_path / "short_only", 3)
    (tmp_path / "short_only" / "sele0104.hea").unlink()
    (tmp_path / "short_only" / "sele0104.dat").unlink()
    lead_map = ("record *, signal 0=III",)

    skipped = run(_config(src, tmp_path / "skip", leads="III", lead_map=lead_map))
    assert skipped["failed_records"] == [] and skipped["too_short_records"] == {"sel30": 3.0}
    assert skipped["records"]["too_short"] == 1 and skipped["records"]["succeeded"] == 1
    assert not list((tmp_path / "skip" / "mat").glob("sel30_*"))

    zeros = run(_config(src, tmp_path / "zeros", leads="III", lead_map=lead_map, pad_short="zeros"))
    assert zeros["records"] == {**zeros["records"], "too_short": 0, "padded": 1, "succeeded": 2}
    feats = _feats(tmp_path / "zeros", "sel30")
    assert feats.shape == (1, 10 * FS_OUT)
    real = 3 * FS_OUT
    np.testing.assert_array_equal(feats[:, real:], 0.0)
    assert abs(feats[0, :real].mean()) < 1e-4 and abs(feats[0, :real].std() - 1) < 1e-3  # z-scored on real samples
    assert "mat/sel30_0.mat\t2500" in (tmp_path / "zeros" / "train.tsv").read_text()

    masked = run(_config(src, tmp_path / "mask", leads="III", lead_map=lead_map, pad_short="mask"))
    assert masked["padded_records"] == {"sel30": "mask"}
    assert _feats(tmp_path / "mask", "sel30").shape == (1, real)
    manifests = "".join((tmp_path / "mask" / f"{s}.tsv").read_text() for s in ("train", "valid", "test"))
    assert f"mat/sel30_0.mat\t{real}" in manifests and "mat/sele0104_0.mat\t2500" in manifests
    marker = json.loads((tmp_path / "mask" / "records" / "sel30.json").read_text())
    assert marker["windows"][0]["valid_samples"] == real

    with pytest.raises(PreprocessError, match="--pad-short"):
        run(_config(tmp_path / "short_only", tmp_path / "none", leads="III", lead_map=lead_map))
