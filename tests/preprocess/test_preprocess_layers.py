"""Preprocessing never imports the feature stage; ``load_and_prepare`` is the one record reader both use."""

from __future__ import annotations

import ast
import dataclasses
import shutil
from pathlib import Path

import numpy as np
import pytest
import scipy.io

from physioclr_ext.preprocess import PreprocessConfig, run
from physioclr_ext.preprocess.config import parse_pca
from physioclr_ext.preprocess.dsp import normalize
from physioclr_ext.preprocess.readers import discover
from physioclr_ext.preprocess.worker import BadRecord, load_and_prepare

PACKAGE = Path(__file__).resolve().parents[2] / "physioclr_ext" / "preprocess"
SAMPLE = Path(__file__).resolve().parents[2] / "data" / "sample"


def _imported_modules(path: Path, package: str = "physioclr_ext.preprocess") -> set[str]:
    """Absolute names of the modules ``path`` (a module of ``package``) imports, relative ones resolved."""
    parts = package.split(".")
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = parts[: len(parts) - node.level + 1] if node.level else []
            module = ".".join(base + ([node.module] if node.module else []))
            names.update([module] + [f"{module}.{alias.name}" for alias in node.names])
    return names


def test_library_modules_never_import_features() -> None:
    libraries = [p for p in PACKAGE.glob("*.py") if p.name != "__main__.py"]
    assert len(libraries) > 5
    for path in libraries:
        features = {m for m in _imported_modules(path) if m.startswith("physioclr_ext.features")}
        assert not features, f"{path.name} imports {features}"
    # the entry point is the one place where the two stages meet
    assert "physioclr_ext.features.pipeline" in _imported_modules(PACKAGE / "__main__.py")


def test_the_import_check_sees_relative_imports(tmp_path: Path) -> None:
    probe = tmp_path / "probe.py"
    probe.write_text(
        "from ..features.pipeline import extract_directory\nfrom .config import PCA_AUTO\nfrom .. import features\n"
    )
    found = _imported_modules(probe)
    assert {"physioclr_ext.features.pipeline", "physioclr_ext.preprocess.config", "physioclr_ext.features"} <= found


def test_run_records_the_feature_options_but_does_not_extract(tmp_path: Path) -> None:
    src = tmp_path / "in"
    src.mkdir()
    for f in SAMPLE.glob("ludb/1.*"):
        shutil.copy(f, src / f.name)
    config = PreprocessConfig(
        input=str(src), output=str(tmp_path / "out"), workers=1, progress=False, features=True, features_pca="auto"
    )
    summary = run(config)
    assert "features" not in summary and not (tmp_path / "out" / "features").exists()
    assert summary["options"]["features"] is True and summary["options"]["features_pca"] == "auto"


def test_load_and_prepare_gives_the_saved_window_before_normalisation(ludb_run: tuple[Path, dict]) -> None:
    out, _ = ludb_run
    config = PreprocessConfig(input=str(SAMPLE / "ludb"), output=str(out), workers=1, progress=False)
    ref = next(r for r in discover(SAMPLE / "ludb", "ludb", None, True) if r.record_id == "1")
    prepared = load_and_prepare(ref, config)
    assert prepared.signal.shape == (12, 5000) and prepared.sample_rate == 500  # LUDB: 10 s at 500 Hz
    assert prepared.leads == config.leads and prepared.present.all() and prepared.missing == []
    assert prepared.raw.shape == (12, 5000) and prepared.record.fs == 500
    saved = scipy.io.loadmat(out / "mat" / "1_1.mat")["feats"]
    np.testing.assert_allclose(normalize(prepared.signal[:, 2500:5000], "per_lead", prepared.present), saved, atol=1e-5)


def test_load_and_prepare_selects_leads_and_reports_unreadable_records(tmp_path: Path) -> None:
    ref = next(r for r in discover(SAMPLE / "ludb", "ludb", None, True) if r.record_id == "1")
    one_lead = PreprocessConfig(input="in", output=str(tmp_path), leads=("V2",))
    prepared = load_and_prepare(ref, one_lead)
    assert prepared.signal.shape == (1, 5000) and prepared.leads == ("V2",)
    with pytest.raises(BadRecord, match="unreadable"):
        load_and_prepare(dataclasses.replace(ref, path=str(tmp_path / "missing")), one_lead)


@pytest.mark.parametrize(
    ("text", "value"), [("auto", "auto"), ("AUTO", "auto"), ("none", None), ("0", None), ("50", 50), ("1", 1)]
)
def test_parse_pca(text: str, value: int | str | None) -> None:
    assert parse_pca(text) == value


@pytest.mark.parametrize("bad", ["-3", "fifty", "2.5"])
def test_parse_pca_rejects(bad: str) -> None:
    with pytest.raises(ValueError, match="features_pca"):
        parse_pca(bad)


def test_config_validates_the_pca_option() -> None:
    assert PreprocessConfig(input="a", output="b", features_pca="auto").features_pca == "auto"
    for bad in (0, -1, "all", 2.5, True):
        with pytest.raises(ValueError, match="features_pca"):
            PreprocessConfig(input="a", output="b", features_pca=bad)
