"""results.json / results.md writers."""

import hashlib
import json
import shlex
import sys

import pytest

from physioclr_ext.evaluation.results import (
    build_meta,
    command_line,
    file_sha256,
    format_cell,
    write_results,
)
from physioclr_ext.evaluation.stats import mean_ci

METRICS = ("accuracy", "balanced_accuracy", "macro_f1", "auroc", "auprc")


def _meta(**kw):
    return build_meta([0, 1, 2], {"train": "train", "test": "test"}, "ck.pt", "ab" * 32, "t", command="cmd --x 1", **kw)


def _leaf(base):
    return {m: mean_ci([base - 0.01, base, base + 0.01]) for m in METRICS}


def test_sha256_and_command_line(tmp_path):
    path = tmp_path / "f.bin"
    path.write_bytes(b"x" * 3_000_000)
    assert file_sha256(str(path)) == hashlib.sha256(b"x" * 3_000_000).hexdigest()
    command = command_line()
    assert command.startswith("python ") and command.endswith(shlex.join(sys.argv[1:]))
    assert "__main__.py" not in command
    meta = build_meta([0], "patient", checkpoint=str(path))
    assert meta["checkpoint_sha256"] == file_sha256(str(path)) and meta["command"] == command_line()


def test_json_structure_round_trip(tmp_path):
    results = {
        "n=10": _leaf(0.8),
        "pretrained": {"n=all": {**_leaf(0.9), "auroc": mean_ci([float("nan"), float("nan")])}},
        "single": {m: 0.5 for m in METRICS},
    }
    paths = write_results(str(tmp_path), results, _meta(task="binary"))
    data = json.load(open(paths["json"]))
    assert set(data) == {"meta", "results"}
    assert data["meta"]["seeds"] == [0, 1, 2] and data["meta"]["checkpoint"] == "ck.pt"
    assert data["meta"]["ci"] == "t" and data["meta"]["task"] == "binary"
    cell = data["results"]["n=10"]["accuracy"]
    assert set(cell) == {"mean", "ci_low", "ci_high", "values"}
    assert cell["mean"] == pytest.approx(0.8) and cell["values"] == pytest.approx([0.79, 0.8, 0.81])
    assert cell["ci_low"] == pytest.approx(results["n=10"]["accuracy"]["ci_low"])
    nested = data["results"]["pretrained"]["n=all"]
    assert nested["auroc"] == {"mean": None, "ci_low": None, "ci_high": None, "values": [None, None]}
    assert data["results"]["single"]["macro_f1"] == {"mean": 0.5, "ci_low": None, "ci_high": None, "values": [0.5]}


def test_markdown_table(tmp_path):
    results = {
        "n=10": {"accuracy": {"mean": 0.912, "ci_low": 0.88, "ci_high": 0.944, "values": [0.9]}, "auroc": 0.7},
        "group": {
            "n=all": {
                "accuracy": {"mean": None, "ci_low": None, "ci_high": None, "values": []},
                "auroc": {"mean": 0.5, "ci_low": 0.4, "ci_high": 0.6, "values": []},
            }
        },
    }
    paths = write_results(str(tmp_path), results, _meta())
    text = open(paths["markdown"]).read()
    assert "- command: `cmd --x 1`" in text and "- seeds: 0, 1, 2" in text
    assert "- checkpoint: ck.pt" in text and f"- checkpoint sha256: {'ab' * 32}" in text and "- CI: t" in text
    rows = [line for line in text.splitlines() if line.startswith("| ") and "---" not in line]
    assert rows[0] == "| setting | accuracy | auroc |"
    assert rows[1:] == ["| n=10 | 0.912 [0.880, 0.944] | 0.700 |", "| group/n=all | n/a | 0.500 [0.400, 0.600] |"]


def test_format_cell_and_missing_meta(tmp_path):
    assert format_cell({"mean": 0.91249, "ci_low": None, "ci_high": None}) == "0.912"
    assert format_cell(None) == "n/a"
    with pytest.raises(ValueError, match="meta lacks checkpoint_sha256, ci"):
        write_results(str(tmp_path), {}, {"command": "", "seeds": [], "split": "", "checkpoint": None})
