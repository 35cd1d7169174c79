"""``benchmarks/ssl_table.py --finetune-head-init`` (LP-FT): its own fine-tuning folder, the header, and
the few-shot command with the probe head and the random-init checkpoint as the scratch arm's start.

No fairseq-signals needed (the checkpoint is read with torch only; the protocol's subprocess is captured).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"
sys.path.insert(0, str(BENCHMARKS))

from ssl_table import methods, stages  # noqa: E402

CKPT = Path(__file__).resolve().parents[1] / "fixtures/checkpoints_a712cee/physioclr_tiny.pt"


def _script():
    import importlib.util

    spec = importlib.util.spec_from_file_location("ssl_table_script", BENCHMARKS / "ssl_table.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_head_init_gets_its_own_finetune_folder_and_header_line(tmp_path):
    script = _script()
    out = ["--out", str(tmp_path / "out"), "--methods", "contrastive_cnn"]
    plain = script.parse_args(out)
    lpft = script.parse_args([*out, "--finetune-head-init"])
    tuned = script.parse_args([*out, "--finetune-override", "optimization.lr=[3e-4]"])
    both = script.parse_args([*out, "--finetune-override", "optimization.lr=[3e-4]", "--finetune-head-init"])
    tags = [script._override_tag(a) for a in (plain, lpft, tuned, both)]
    assert tags[0] == "" and len(set(tags)) == 4  # the default keeps earlier runs' folder
    assert script._head_init_kwargs(plain, "unused.pt") == {}

    pool = {"one_lead": {"windows": {"train": 10}}}
    rows = [methods.METHODS["contrastive_cnn"]]
    pretrained = {"contrastive_cnn": {"reached_updates": 1}}
    lpft_header = " ".join(script.report_header(lpft, rows, {}, pool, pretrained))
    plain_header = " ".join(script.report_header(plain, rows, {}, pool, pretrained))
    assert "head from a linear probe (LP-FT)" in lpft_header and "from the random-init checkpoint" in lpft_header
    assert "LP-FT" not in plain_header and "random-init arm trained from scratch" in plain_header


def test_head_init_kwargs_name_the_probes_random_init_checkpoint(tmp_path, monkeypatch):
    script = _script()
    made = []
    monkeypatch.setattr(
        script.stages, "random_init_checkpoint", lambda ckpt, out, seed: made.append((ckpt, out, seed)) or out
    )
    ckpt = str(tmp_path / "pretrain" / "checkpoint_last.pt")
    args = script.parse_args(["--out", str(tmp_path), "--finetune-head-init", "--random-init-seed", "3"])
    kwargs = script._head_init_kwargs(args, ckpt)
    expected = str(tmp_path / "pretrain" / "checkpoint_random_init_seed3.pt")
    assert kwargs == {"head_init": True, "scratch_checkpoint": expected}
    assert made == [(ckpt, expected, 3)]  # the same file as the probes' random arm (script._random_init)
    assert script._random_init(args, ckpt) == expected


def test_few_shot_stage_passes_head_init_and_scratch_checkpoint(tmp_path, monkeypatch):
    calls = []

    def fake_run(cmd, **kwargs):
        calls.append(cmd)
        return subprocess.CompletedProcess(cmd, 0)

    monkeypatch.setattr(stages.subprocess, "run", fake_run)
    monkeypatch.setattr(stages, "_read_json", lambda path: None if not calls else {"results": {"n=5/pretrained": {}}})
    method = methods.METHODS["contrastive_cnn"]
    args = (method, "a", str(tmp_path / "data"), str(CKPT), str(tmp_path / "fs"), [5], [0, 1], 10)
    found = stages.few_shot(*args, head_init=True, scratch_checkpoint=str(tmp_path / "random.pt"))
    assert found == {"n=5/pretrained": {}}
    cmd = calls[-1]
    assert cmd[cmd.index("--head-init") + 1] == "probe"
    assert cmd[cmd.index("--scratch-checkpoint") + 1] == str(tmp_path / "random.pt")
    calls.clear()
    stages.few_shot(*args)
    assert "--head-init" not in calls[-1] and "--scratch-checkpoint" not in calls[-1]
