"""benchmarks/vs_originals.py: its pure parts always; with checkouts of the originals, that both arms of a case do
the same training step.

The forward passes of converted weights are compared with the originals' classes in
``tests/modules/test_{st_mem,ecg_jepa,lfbt}_import.py``. Here, per method, the benchmark's own pair (the
original's class at its initial weights, ours loaded from them) runs two training steps from the same RNG
states: equal first losses mean the same forward and loss, equal second losses the same gradients, AdamW update
(and ECG-JEPA's EMA step). Checkouts: ``PHYSIOCLR_ST_MEM_CHECKOUT`` (bakqui/ST-MEM, with ``einops``),
``PHYSIOCLR_ECG_JEPA_CHECKOUT`` (sehunfromdaegu/ECG_JEPA, with ``timm`` or its files), ``PHYSIOCLR_LFBT_CHECKOUT``
(Aiwiscal/ECG_SSL_LFBT), ``PHYSIOCLR_CONTRASTIVE_CHECKOUT`` (KU-AI4H/Contrastive-ECG: its ``ECG_CNN_Encoder`` and
``NTXentLoss`` against ``CNNEncoder`` + ``MLPHead`` + ``nt_xent_loss``, which have no importer of their own, so the
weight copy is checked here); each test is skipped with that reason when its variable is not set. Nothing is timed.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import List

import pytest
import torch

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"
sys.path.insert(0, str(BENCHMARKS))

import vs_originals  # noqa: E402

CPU = torch.device("cpu")
CHECKOUTS = {
    "st_mem": ("PHYSIOCLR_ST_MEM_CHECKOUT", "bakqui/ST-MEM"),
    "ecg_jepa": ("PHYSIOCLR_ECG_JEPA_CHECKOUT", "sehunfromdaegu/ECG_JEPA"),
    "lfbt": ("PHYSIOCLR_LFBT_CHECKOUT", "Aiwiscal/ECG_SSL_LFBT"),
    "contrastive": ("PHYSIOCLR_CONTRASTIVE_CHECKOUT", "KU-AI4H/Contrastive-ECG"),
}


def checkout(method: str) -> str:
    variable, repo = CHECKOUTS[method]
    path = os.environ.get(variable, "")
    if not path:
        pytest.skip(f"set {variable} to a checkout of {repo} to compare the training step with the original's")
    return path


def two_step_losses(arm: vs_originals.Arm) -> List[float]:
    losses = []
    for seed in (11, 12):
        torch.manual_seed(seed)  # ST-MEM's per-lead masks and any drop-path draw from the global RNG
        losses.append(arm.step())
    return losses


def assert_same_steps(pair: vs_originals.Pair, rtol: float = 1e-5) -> None:
    ours, original = two_step_losses(pair.ours), two_step_losses(pair.original)
    assert ours == pytest.approx(original, rel=rtol, abs=1e-6)
    assert abs(ours[1] - ours[0]) > 10 * rtol * abs(ours[0])  # the update moved the loss well beyond the tolerance
    assert pair.ours.params == pair.original.params


# ------------------------------------------------------------------------------ with the originals
def test_st_mem_training_step_equals_the_originals():
    path = checkout("st_mem")
    try:
        # 64-wide heads (the original's) so that the weights convert; two decoder heads: with one 64-wide head
        # the original has no output projection, ours an identity-initialised one that training would change
        pair = vs_originals.st_mem_pair(path, "tiny", 2, CPU, dims=(128, 1, 2, 128, 1, 2))
    except ImportError as exc:
        pytest.skip(f"the original ST-MEM code does not import here ({exc}); it needs einops")
    assert pair.same_weights
    assert_same_steps(pair, rtol=1e-4)


def test_st_mem_tiny_is_benchmarked_with_its_own_init():
    path = checkout("st_mem")
    try:
        pair = vs_originals.st_mem_pair(path, "tiny", 2, CPU)
    except ImportError as exc:
        pytest.skip(f"the original ST-MEM code does not import here ({exc}); it needs einops")
    assert not pair.same_weights and "64 wide" in pair.note
    assert pair.original.params > pair.ours.params  # the original's wider heads


def test_ecg_jepa_training_step_equals_the_originals():
    path = checkout("ecg_jepa")
    try:
        pair = vs_originals.ecg_jepa_pair(path, "tiny", 2, CPU, drop_path=0.0)
    except ImportError as exc:
        pytest.skip(f"the original ECG-JEPA code does not import here ({exc}); it needs timm (or its source files)")
    assert pair.same_weights and "columns masked" in pair.note
    assert_same_steps(pair)


def test_lfbt_training_step_equals_the_originals():
    path = checkout("lfbt")
    pair = vs_originals.lfbt_pair(path, "tiny", 2, CPU)
    assert_same_steps(pair, rtol=1e-4)  # a loss of ~300 summed in another order (Gram matrices, see the loss)


@pytest.mark.parametrize("size", ["tiny", "small"])
def test_contrastive_training_step_equals_the_originals(size):
    path = checkout("contrastive")
    # ours one view after the other, as the original: same BatchNorm batches and dropout draws in both arms
    pair = vs_originals.contrastive_pair(path, size, 3, CPU, joint_views=False)
    assert pair.same_weights
    assert_same_steps(pair)


def test_contrastive_benchmark_encodes_the_views_as_one_batch():
    path = checkout("contrastive")
    joint = vs_originals.contrastive_pair(path, "tiny", 3, CPU)
    split = vs_originals.contrastive_pair(path, "tiny", 3, CPU, joint_views=False)
    assert "one batch" in joint.note and "one batch" not in split.note
    joint_losses, split_losses = two_step_losses(joint.ours), two_step_losses(split.ours)
    # BatchNorm statistics over 2B rows instead of B: another loss from the same weights and views
    assert abs(joint_losses[0] - split_losses[0]) > 1e-3
    assert two_step_losses(joint.original) == pytest.approx(split_losses, rel=1e-5)


def test_original_widths_give_the_configs_flatten():
    path = checkout("contrastive")
    encoder_cls, _ = vs_originals.load_contrastive(path)
    # five stride-2 convs and two stride-2 pools of 15 on 5000 samples: 2500, 1250, 618, 309, 148, 74, 37 steps
    assert encoder_cls(signal_length=5000).fc1.in_features == 64 * 37
    narrow = vs_originals.narrow_original(encoder_cls, (16, 16, 32, 32, 32), 64, 32, 5000)
    assert narrow.fc1.in_features == 32 * 37 and narrow.contrastive_projector[2].out_features == 32
    assert narrow(torch.randn(2, 12, 5000))[1].shape == (2, 32)


# ------------------------------------------------------------------------------ always
def test_commit_of_a_checkout(tmp_path):
    plain = tmp_path / "plain"
    plain.mkdir()
    assert vs_originals.checkout_commit(str(plain)) == "unknown (no .git)"
    (plain / "COMMIT").write_text("0123456789abcdef0123456789abcdef01234567\n")
    assert vs_originals.checkout_commit(str(plain)) == "0123456789abcdef0123456789abcdef01234567"
    repo = tmp_path / "repo"
    repo.mkdir()
    git = ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@t"]
    if subprocess.run(["git", "-C", str(repo), "init", "-q"], check=False).returncode != 0:
        pytest.skip("no git here")
    (repo / "f").write_text("x")
    subprocess.run([*git, "add", "f"], check=True)
    subprocess.run([*git, "commit", "-q", "-m", "m"], check=True)
    head = subprocess.run([*git, "rev-parse", "HEAD"], capture_output=True, text=True, check=True).stdout.strip()
    assert vs_originals.checkout_commit(str(repo)) == head


def test_table_reports_the_throughput_ratio():
    result = {
        "method": "ecg_jepa",
        "size": "tiny",
        "batch": 4,
        "same_weights": True,
        "median_s": {"ours": 0.5, "original": 1.5},
        "samples_per_s": {"ours": 8.0, "original": 4 / 1.5},
        "ratio": 3.0,
        "first_loss": {"ours": 0.25, "original": 0.25},
    }
    table = vs_originals.format_table([result, {"method": "lfbt", "size": "small", "error": "boom"}])
    lines = table.splitlines()
    assert len(lines) == 4 and "ours/original" in lines[0]
    cells = [c.strip() for c in lines[2].strip("|").split("|")]
    assert cells[:9] == ["ecg_jepa", "tiny", "4", "same", "500", "1500", "8.0", "2.7", "3.00x"]
    assert "error: boom" in lines[3]


def test_no_checkout_is_an_error():
    with pytest.raises(SystemExit, match="at least one checkout"):
        vs_originals.main([])
