"""Shared fixtures: the bundled sample data and small end-to-end runs on it."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from physioclr_ext.preprocess import PreprocessConfig, run

SAMPLE = Path(__file__).resolve().parents[2] / "data" / "sample"


def copy_mitdb(dest: Path, records: list[str]) -> Path:
    """Copy MIT-BIH sample records (``.hea/.dat/.atr``) into ``dest``."""
    dest.mkdir(parents=True, exist_ok=True)
    for record in records:
        for ext in ("hea", "dat", "atr"):
            shutil.copy(SAMPLE / "mitdb" / f"{record}.{ext}", dest / f"{record}.{ext}")
    return dest


@pytest.fixture(scope="session")
def mitdb_two(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Input folder with MIT-BIH 106 (DS1) and 213 (DS2)."""
    return copy_mitdb(tmp_path_factory.mktemp("mitdb_in"), ["106", "213"])


@pytest.fixture(scope="session")
def mitdb_run(tmp_path_factory: pytest.TempPathFactory, mitdb_two: Path) -> tuple[Path, dict]:
    """mitbih_fewshot preset on two records with two workers."""
    out = tmp_path_factory.mktemp("mitdb_out")
    config = PreprocessConfig.from_preset(
        "mitbih_fewshot", input=str(mitdb_two), output=str(out), workers=2, progress=False
    )
    return out, run(config)


@pytest.fixture(scope="session")
def ludb_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    """Default options on the 8 bundled LUDB records (10 s each -> two 5 s windows)."""
    out = tmp_path_factory.mktemp("ludb_out")
    config = PreprocessConfig(input=str(SAMPLE / "ludb"), output=str(out), workers=1, progress=False)
    return out, run(config)


@pytest.fixture(scope="session")
def physionet_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    """st_mem preset on the 8 bundled PhysioNet 2021 records, 2 s windows with 1 s overlap."""
    out = tmp_path_factory.mktemp("pn2021_out")
    config = PreprocessConfig.from_preset(
        "st_mem",
        input=str(SAMPLE / "physionet2021"),
        output=str(out),
        window_seconds=2.0,
        overlap_seconds=1.0,
        workers=2,
        progress=False,
    )
    return out, run(config)
