"""benchmarks/ssl_table_seeds.py: the paired difference over pretraining seeds, and the runs it refuses."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from scipy import stats

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"
sys.path.insert(0, str(BENCHMARKS))

import ssl_table_seeds  # noqa: E402


def _run(tmp: Path, seed: int, pretrained: float, random: float, rinit: int | None = None, **args) -> Path:
    out = tmp / f"s{seed}"
    out.mkdir()
    arm = lambda v: {"linear": {"n=100": {"auroc": {"mean": v}}}}  # noqa: E731
    meta = {"out": str(out), "methods": ["m"], "tasks": ["a"], "budget_samples": 32000, "pretrain_seed": seed}
    meta["random_init_seed"] = seed if rinit is None else rinit
    meta.update(args)
    results = {"a": {"m": {"pretrained": arm(pretrained), "random": arm(random)}}}
    (out / "results.json").write_text(json.dumps({"meta": {"args": meta}, "results": results}))
    return out


def test_paired_interval_is_the_t_interval_of_the_differences():
    pre, rnd = [0.87, 0.80, 0.73, 0.85], [0.68, 0.70, 0.64, 0.78]
    diffs = [p - r for p, r in zip(pre, rnd)]
    got = ssl_table_seeds.paired(pre, rnd)["difference"]
    mean = sum(diffs) / 4
    half = stats.t.ppf(0.975, 3) * stats.tstd(diffs) / 2
    assert got["mean"] == pytest.approx(mean) and got["ci_low"] == pytest.approx(mean - half)


def test_main_prints_rows_and_verdict(tmp_path, capsys):
    dirs = [_run(tmp_path, s, p, r) for s, p, r in ((1, 0.87, 0.68), (2, 0.80, 0.65), (3, 0.73, 0.56))]
    assert ssl_table_seeds.main([str(d) for d in dirs]) == 0
    text = capsys.readouterr().out
    assert "| 2 | 0.800 | 0.650 | +0.150 |" in text and "pays (the difference's interval excludes 0)" in text


def test_a_difference_of_both_signs_is_not_shown_to_pay(tmp_path, capsys):
    dirs = [_run(tmp_path, s, p, r) for s, p, r in ((1, 0.80, 0.70), (2, 0.70, 0.80))]
    ssl_table_seeds.main([str(d) for d in dirs])
    assert "not shown to pay" in capsys.readouterr().out


def test_refuses_another_random_seed_or_other_options(tmp_path):
    a = _run(tmp_path, 1, 0.8, 0.7)
    b = _run(tmp_path, 2, 0.8, 0.7, rinit=0)
    with pytest.raises(SystemExit, match="random-init seed 0"):
        ssl_table_seeds.main([str(a), str(b)])
    c = _run(tmp_path, 3, 0.8, 0.7, budget_samples=8000)
    with pytest.raises(SystemExit, match="budget_samples"):
        ssl_table_seeds.main([str(a), str(c)])


def _with_cis(out: Path, pre: tuple, rnd: tuple, ranks: tuple | None = None) -> Path:
    """Give the run at ``out`` probe-seed CIs (low, high) per arm and, optionally, effective ranks."""
    data = json.loads((out / "results.json").read_text())
    arms = data["results"]["a"]["m"]
    for arm, (low, high) in (("pretrained", pre), ("random", rnd)):
        arms[arm]["linear"]["n=100"]["auroc"].update(ci_low=low, ci_high=high)
    if ranks is not None:
        data["collapse"] = {"a": {"m": {arm: {"effective_rank": v} for arm, v in zip(("pretrained", "random"), ranks)}}}
    (out / "results.json").write_text(json.dumps(data))
    return out


def test_own_cis_reads_apart_overlap_below_and_missing():
    assert ssl_table_seeds.own_cis({"ci_low": 0.8, "ci_high": 0.9}, {"ci_low": 0.6, "ci_high": 0.79}) == "apart"
    assert ssl_table_seeds.own_cis({"ci_low": 0.8, "ci_high": 0.9}, {"ci_low": 0.6, "ci_high": 0.8}) == "overlap"
    assert ssl_table_seeds.own_cis({"ci_low": 0.5, "ci_high": 0.59}, {"ci_low": 0.6, "ci_high": 0.7}) == "below"
    assert ssl_table_seeds.own_cis({"mean": 0.8}, {"ci_low": 0.6, "ci_high": 0.7}) == "-"


def test_rows_say_how_each_runs_cis_lie_and_its_effective_ranks(tmp_path, capsys):
    a = _with_cis(_run(tmp_path, 1, 0.87, 0.68), (0.85, 0.89), (0.60, 0.76), ranks=(10.34, 5.21))
    b = _with_cis(_run(tmp_path, 2, 0.80, 0.70), (0.75, 0.85), (0.65, 0.76))
    ssl_table_seeds.main([str(a), str(b)])
    text = capsys.readouterr().out
    assert "| 1 | 0.870 | 0.680 | +0.190 | apart | 10.3 / 5.2 |" in text
    assert "| 2 | 0.800 | 0.700 | +0.100 | overlap | - |" in text
    assert "| 1 of 2 apart |" in text
