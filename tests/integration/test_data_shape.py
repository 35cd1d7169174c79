"""The data decides its own shape, through the real scripts: the bundled LUDB records preprocessed to 1 lead
(I, 300 Hz: the issue's case), 2 leads (II, V1, 250 Hz) and 12 leads (250 Hz), 5-s windows; every tiny
pretraining config runs two updates on each with no shape override (slow), and the mismatches stop before
training with one line. Default run: the issue's case, wav2vec2 on 1-lead 300 Hz windows."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from ._util import REPO, run

LEAD_SETS = {1: (("I",), 300), 2: (("II", "V1"), 250), 12: (None, 250)}
TINY = sorted(p.name[: -len("_tiny.yaml")] for p in (REPO / "configs" / "pretraining").glob("*_tiny.yaml"))
HEAD_FORM = ("ecg_vqvae", "ecg_vqvae_study")  # wrap a pretrained encoder (model.model_path)
CANNOT = {
    ("clocs_cmlc", 1): "error: clocs CMLC contrasts the leads of a window",
    ("clocs_cmsmlc", 1): "error: clocs CMSMLC contrasts the leads of a window",
}
UPDATES = ["optimization.max_update=2", "optimization.max_epoch=0", "common.log_interval=1"]


def _preprocess(out: Path, n_leads: int, features: bool) -> Path:
    from physioclr_ext.features.pipeline import preprocess_and_extract
    from physioclr_ext.preprocess import PreprocessConfig
    from physioclr_ext.preprocess.leads import CANONICAL_LEADS

    leads, rate = LEAD_SETS[n_leads]
    config = PreprocessConfig(
        input=str(REPO / "data/sample/ludb"),
        output=str(out),
        leads=tuple(leads or CANONICAL_LEADS),
        sample_rate=rate,
        window_seconds=5.0,
        workers=1,
        progress=False,
        features=features,
        features_pca="auto" if features else None,
    )
    preprocess_and_extract(config)
    return out


@pytest.fixture(scope="module")
def one_lead(tmp_path_factory):
    """The issue's case, made as a new user would: `preprocess_ecg.sh ... -- --leads I --sample-rate 300`."""
    out = tmp_path_factory.mktemp("one_lead") / "data"
    run(
        ["bash", str(REPO / "preprocess_ecg.sh"), "--input", REPO / "data/sample/ludb", "--output", out]
        + ["--method", "wav2vec2", "--", "--leads", "I", "--sample-rate", "300", "--no-progress", "--workers", "1"]
    )
    return out


@pytest.fixture(scope="module")
def lead_data(tmp_path_factory):
    """n leads -> preprocessed directory with PhysioCLR's features (made on first use)."""
    made = {}

    def get(n):
        if n not in made:
            made[n] = _preprocess(tmp_path_factory.mktemp(f"leads{n}"), n, features=True)
        return made[n]

    return get


def _script(name, *args, ok=True):
    cmd = ["bash", str(REPO / name), *map(str, args)]
    if ok:
        proc = run(cmd)
        return proc.stdout + proc.stderr
    env = {**os.environ, "PATH": str(Path(sys.executable).parent) + os.pathsep + os.environ.get("PATH", "")}
    env.setdefault("PYTHON", sys.executable)
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    return proc.stderr


def _pretrain(method, data, out, *extra, ok=True):
    return _script(
        "pre-training_ecg.sh", "--method", method, "--tiny", "--data", data, "--out", out, "--", *UPDATES, *extra, ok=ok
    )


def test_single_lead_300_hz_pretrains_with_no_shape_override(one_lead, tmp_path):
    """The issue's case: `sample rate: [[300]], need 500`, then `index 6 is out of bounds`; now the script
    reads preprocess.json and wav2vec2 trains on the one lead."""
    log = _pretrain("wav2vec2", one_lead, tmp_path)
    assert "shape: data: 1 lead (I), 300 Hz, 1500-sample windows" in log
    import torch

    state = torch.load(tmp_path / "checkpoint_last.pt", map_location="cpu", weights_only=False)
    cfg = state["cfg"]
    assert cfg["task"]["sample_rate"] == 300 and cfg["task"]["leads_to_load"] == "[0]" and cfg["model"]["in_d"] == 1
    assert state["optimizer_history"][-1]["num_updates"] == 2


def test_a_mismatch_stops_before_training_with_one_line(one_lead, tmp_path):
    """CLOCS CMLC contrasts the leads of a window: one lead cannot go through, whatever the overrides, so the
    script stops before fairseq-signals starts, with one line naming the data and the options that fix it."""
    err = _pretrain("clocs_cmlc", one_lead, tmp_path / "out", ok=False)
    line = err.strip().splitlines()[-1]
    assert line.startswith(CANNOT[("clocs_cmlc", 1)]) and "1 lead (I), 300 Hz" in line
    assert "--leads" in line and "clocs_cmsc" in line
    assert "Traceback" not in err and not (tmp_path / "out").exists()


@pytest.mark.slow  # about 50 runs of 10-20 s
@pytest.mark.parametrize("n_leads", sorted(LEAD_SETS))
@pytest.mark.parametrize("method", TINY)
def test_every_tiny_config_on_1_2_and_12_leads(method, n_leads, lead_data, tmp_path_factory):
    data = lead_data(n_leads)
    out = tmp_path_factory.mktemp(f"{method}_{n_leads}")
    extra = []
    if method in HEAD_FORM:
        encoder = out / "encoder"
        _pretrain("ecg_mae", data, encoder)
        extra = [f"model.model_path={encoder / 'checkpoint_last.pt'}"]
    if (method, n_leads) in CANNOT:
        err = _pretrain(method, data, out, *extra, ok=False)
        assert err.strip().splitlines()[-1].startswith(CANNOT[(method, n_leads)])
        assert not (out / "checkpoint_last.pt").exists()
        return
    log = _pretrain(method, data, out, *extra)
    assert (out / "checkpoint_last.pt").exists(), log[-3000:]
    assert "loss" in log and " nan" not in log.lower()


@pytest.mark.slow
def test_finetuning_checks_the_data_against_the_checkpoint(lead_data, tmp_path):
    """A 2-lead (II, V1) checkpoint fine-tunes on 12-lead windows (rows 1 and 6 loaded); a 1-lead 300 Hz one
    stops before training, naming the rate and the option. The fine-tuned classifier infers on the 2-lead data
    (II, V1 found at rows 0 and 1) and stops on the 1-lead 300 Hz data."""
    two, twelve = lead_data(2), lead_data(12)
    _pretrain("ecg_mae", two, tmp_path / "pre2")
    log = _script(
        "finetuning_ecg.sh",
        "--data",
        twelve,
        "--checkpoint",
        tmp_path / "pre2/checkpoint_last.pt",
        "--tiny",
        "--out",
        tmp_path / "ft",
        "--",
        *UPDATES,
    )
    assert "loading rows [1, 6] (II, V1)" in log and (tmp_path / "ft/checkpoint_best.pt").exists()
    _pretrain("ecg_mae", lead_data(1), tmp_path / "pre1")
    err = _script(
        "finetuning_ecg.sh",
        "--data",
        twelve,
        "--checkpoint",
        tmp_path / "pre1/checkpoint_last.pt",
        "--tiny",
        "--out",
        tmp_path / "ft1",
        ok=False,
    )
    assert "was trained at 300 Hz" in err and "--sample-rate 300" in err and not (tmp_path / "ft1").exists()
    log = _script(
        "inference_ecg.sh",
        "--data",
        twelve,
        "--checkpoint",
        tmp_path / "ft/checkpoint_best.pt",
        "--out",
        tmp_path / "inf",
    )
    assert (tmp_path / "inf/metrics_test.json").exists() and "loading rows [1, 6]" in log
    log = _script(  # the same leads by name at other rows: found where they are
        "inference_ecg.sh",
        "--data",
        two,
        "--checkpoint",
        tmp_path / "ft/checkpoint_best.pt",
        "--out",
        tmp_path / "inf2",
    )
    assert "loading rows [0, 1] (II, V1)" in log and (tmp_path / "inf2/metrics_test.json").exists()
    err = _script(
        "inference_ecg.sh",
        "--data",
        lead_data(1),
        "--checkpoint",
        tmp_path / "ft/checkpoint_best.pt",
        "--out",
        tmp_path / "inf1",
        ok=False,
    )
    line = err.strip().splitlines()[-1]
    assert line.startswith("error:") and "trained at 250 Hz" in line and "--sample-rate 250" in line
