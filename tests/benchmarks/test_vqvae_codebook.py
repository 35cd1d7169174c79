"""Pure parts of benchmarks/vqvae_codebook.py: records of a manifest, perplexity share, the record-group check.

No fairseq-signals needed (Python 3.9-3.11).
"""

from __future__ import annotations

import math
import sys
from pathlib import Path

import numpy as np
import pytest

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"
sys.path.insert(0, str(BENCHMARKS))

from vqvae_codebook import manifest_records, perplexity_share, record_groups  # noqa: E402


def test_manifest_records_strip_the_window_index(tmp_path):
    manifest = tmp_path / "valid.tsv"
    manifest.write_text("/data/root\nmat/105_0.mat\t2500\nmat/105_12.mat\t2500\nmat/JS_00001_3.mat\t5000\n\n")
    assert manifest_records(str(manifest)) == ["105", "105", "JS_00001"]


def test_perplexity_share_by_hand():
    # two codes used equally of K = 4: perplexity 2, half of K
    assert perplexity_share(np.array([0, 0, 1, 1]), 4) == pytest.approx(0.5)
    # p = (3/4, 1/4): exp(-(0.75 ln 0.75 + 0.25 ln 0.25)) / 8
    expected = math.exp(-(0.75 * math.log(0.75) + 0.25 * math.log(0.25))) / 8
    assert perplexity_share(np.array([[2, 2], [2, 7]]), 8) == pytest.approx(expected)


def test_record_groups_separate_few_patients_from_few_windows():
    # four records, each of whose 10 windows takes its own code: any group of 2 records uses exactly 2 codes
    # equally; 20 windows drawn from all records use at least 2 codes (at most 10 per record), at most 4
    k = 16
    codes = np.repeat(np.arange(4), 10)
    records = [f"r{c}" for c in codes]
    out = record_groups(codes, records, k, n_records=2, draws=25, seed=3)
    assert out["records"] == pytest.approx([2 / k] * 25)
    assert len(out["windows"]) == 25
    assert all(2 / k - 1e-9 <= w <= 4 / k + 1e-9 for w in out["windows"])
    assert max(out["windows"]) > 2 / k  # drawn across records, most draws mix more than two codes
    assert record_groups(codes, records, k, 2, 25, seed=3) == out  # seeded


def test_record_groups_take_every_record_when_asked_for_more():
    codes = np.array([0, 1, 1, 2])
    out = record_groups(codes, ["a", "a", "b", "b"], 4, n_records=5, draws=2)
    assert out["records"] == pytest.approx([perplexity_share(codes, 4)] * 2)
    assert out["windows"] == pytest.approx(out["records"])  # all windows drawn
