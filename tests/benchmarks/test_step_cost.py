"""Pure parts of benchmarks/step_cost.py, step_cost_methods.py, preprocess_memory.py and data_vs_compute.py.

No timing is asserted: the methods are built for small inputs and run one step, the tables are formatted
from given numbers. No fairseq-signals needed.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"
sys.path.insert(0, str(BENCHMARKS))

import data_vs_compute  # noqa: E402
import preprocess_memory  # noqa: E402
import step_cost  # noqa: E402
from step_cost_methods import METHODS, Skip, build_case, make_optimizer, st_mem_seq_len, train_step  # noqa: E402

RUNNABLE = [m for m in METHODS if m != "physioclr"]


@pytest.mark.parametrize("method", RUNNABLE)
def test_every_method_builds_and_one_step_changes_its_weights(method):
    torch.manual_seed(0)
    case = build_case(method, 2500, 1, "tiny", batch_size=4)
    before = [p.detach().clone() for p in case.model.parameters() if p.requires_grad]
    loss = train_step(case, make_optimizer(case.model))
    after = [p for p in case.model.parameters() if p.requires_grad]
    assert torch.isfinite(torch.tensor(loss))
    assert any(not torch.equal(a, b) for a, b in zip(before, after))


def test_inputs_have_the_asked_shape_and_the_tiny_batch():
    case = build_case("contrastive_cnn", 5000, 8, "tiny")
    assert case.inputs["views"].shape == (2, 16, 8, 5000)
    assert build_case("lfbt", 2500, 12, "tiny").inputs["views"].shape == (2, 8, 12, 2500)


def test_ecg_mae_table_grows_with_long_windows_and_st_mem_crops_nine_tenths():
    case = build_case("ecg_mae", 10000, 1, "tiny", batch_size=2)
    assert case.model.cfg.max_patches == 80 and case.notes == ["max_patches=80"]
    assert build_case("ecg_mae", 2500, 1, "tiny", batch_size=2).model.cfg.max_patches == 64
    assert [st_mem_seq_len(n) for n in (2500, 5000, 10000)] == [2250, 4500, 9000]


def test_ecg_jepa_takes_one_lead_as_a_restricted_table_and_twelve_as_its_own():
    one = build_case("ecg_jepa", 2500, 1, "tiny", batch_size=2).model.cfg
    twelve = build_case("ecg_jepa", 2500, 12, "tiny", batch_size=2).model.cfg
    assert (one.num_leads, one.leads) == (8, [0])
    assert (twelve.num_leads, twelve.leads) == (12, None)


def test_invalid_combinations_skip_with_a_reason():
    with pytest.raises(Skip, match="multiple of patch_size"):
        build_case("ecg_jepa", 2525, 8)
    with pytest.raises(Skip, match="1, 8 or 12"):
        build_case("lfbt", 2500, 3)
    with pytest.raises(Skip, match="wav2vec 2.0"):
        build_case("physioclr", 2500, 12)
    with pytest.raises(KeyError):
        build_case("st_mem", 2500, 12, size="huge")


def test_step_table_gives_growth_from_first_to_last_length_and_marks_skips():
    results = {
        "m": {
            1: {2500: {"step_ms": 10.0, "batch": 16}, 10000: {"step_ms": 45.0, "batch": 16}},
            12: {2500: {"skip": "too long"}, 10000: {"skip": "too long"}},
        }
    }
    lines = step_cost.format_table(results, "step_ms", [2500, 10000], "title").splitlines()
    assert lines[0] == "title"
    assert lines[3].split() == ["m", "1", "16", "10.0", "45.0", "4.5x"]
    assert lines[4].split() == ["m", "12", "-", "skip", "skip", "-"]
    assert step_cost.skip_reasons(results) == ["m skipped (12x2500, 12x10000): too long"]


def test_growth_needs_both_values():
    assert step_cost.growth(2.0, 5.0) == "2.5x"
    assert step_cost.growth(None, 5.0) == "-" and step_cost.growth(0.0, 5.0) == "-"


def test_every_other_record_and_tree_of_processes():
    assert preprocess_memory.every_other(["100", "101", "102", "103", "104"]) == ["100", "102", "104"]
    parent_of = {10: 1, 11: 10, 12: 11, 13: 1, 14: 10}
    assert sorted(preprocess_memory.descendants(10, parent_of)) == [10, 11, 12, 14]


def test_preprocess_table_ratio_row():
    rows = [
        {
            "subset": "half",
            "records": 24,
            "windows": 100,
            "seconds": 5.0,
            "process_peak_mib": 200.0,
            "tree_peak_mib": 400.0,
        },
        {
            "subset": "all",
            "records": 48,
            "windows": 200,
            "seconds": 10.0,
            "process_peak_mib": 210.0,
            "tree_peak_mib": 400.0,
        },
    ]
    last = preprocess_memory.format_table(rows).splitlines()[-1].split()
    assert last == ["ratio", "2.00", "2.00", "2.00", "1.05", "1.00"]


def test_data_share_and_loader_ratio():
    assert data_vs_compute.data_share(25.0, 75.0) == 25.0
    assert data_vs_compute.data_share(0.0, 0.0) == 0.0
    results = {
        "c": {
            "mat": {"data": 1.0, "compute": 9.0, "loader": 30.0, "batch": 16.0},
            "packed": {"data": 0.5, "compute": 9.5, "loader": 3.0, "batch": 16.0},
        }
    }
    row = data_vs_compute.format_table(results).splitlines()[-1].split()
    assert row == ["c", "16", "1.0", "9.0", "10%", "30.0", "0.5", "9.5", "5%", "3.0", "10.0x"]
