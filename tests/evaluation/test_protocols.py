"""End to end: linear-probe, knn and cluster subcommands on synthetic embeddings."""

import json

import matplotlib.image
import numpy as np
import pytest

from physioclr_ext.evaluation.cli import build_parser, main
from physioclr_ext.evaluation.embeddings import Embeddings, write_metadata
from physioclr_ext.evaluation.metrics import METRICS
from physioclr_ext.evaluation.stats import mean_ci


def _subset(n_per_class, n_classes, seed, dim=8):
    rng = np.random.default_rng(seed)
    y = np.repeat(np.arange(n_classes), n_per_class)
    x = 3.0 * np.eye(n_classes, dim)[y] + rng.normal(size=(len(y), dim))
    n = len(y)
    return Embeddings(x, y[:, None], np.arange(n), np.arange(n) // 2, [f"mat/{seed}_{i}.mat" for i in range(n)])


def _write(tmp_path, n_classes):
    d = tmp_path / "emb"
    for seed, (name, size) in enumerate([("train", 30), ("valid", 10), ("test", 15)]):
        _subset(size, n_classes, seed).save(str(d), name)
    write_metadata(str(d), {"checkpoint": "/ckpt/checkpoint_best.pt", "checkpoint_sha256": "cd" * 32})
    return str(d)


def test_linear_probe_command_t_ci(tmp_path, capsys):
    emb, out = _write(tmp_path, 2), str(tmp_path / "out")
    assert (
        main(
            [
                "linear-probe",
                "--embeddings",
                emb,
                "--out",
                out,
                "--n-train",
                "4",
                "20",
                "--balanced",
                "--seeds",
                "0",
                "1",
                "2",
                "--Cs",
                "0.1",
                "1",
            ]
        )
        == 0
    )
    data = json.load(open(tmp_path / "out" / "results.json"))
    assert list(data["results"]) == ["n=4", "n=20"]
    meta = data["meta"]
    assert meta["checkpoint"] == "/ckpt/checkpoint_best.pt" and meta["checkpoint_sha256"] == "cd" * 32
    assert meta["seeds"] == [0, 1, 2] and meta["ci"] == "t" and meta["task"] == "binary"
    assert meta["split"] == {"train": "train", "valid": "valid", "test": "test"} and meta["balanced"] is True
    assert all(r["best_C"] in (0.1, 1.0) for r in meta["runs"]["n=4"])
    cell = data["results"]["n=20"]["auroc"]
    assert set(data["results"]["n=20"]) == set(METRICS) and len(cell["values"]) == 3
    expected = mean_ci(cell["values"])
    assert cell["ci_low"] == pytest.approx(expected["ci_low"]) and cell["mean"] > 0.9
    printed = capsys.readouterr().out
    assert "| n=4 |" in printed and "| n=20 |" in printed
    assert printed == (tmp_path / "out" / "results.md").read_text()


def test_knn_command_bootstrap(tmp_path, capsys):
    emb, out = _write(tmp_path, 3), str(tmp_path / "out")
    main(
        [
            "knn",
            "--embeddings",
            emb,
            "--out",
            out,
            "--k",
            "3",
            "--seeds",
            "0",
            "1",
            "--ci",
            "bootstrap",
            "--n-boot",
            "20",
            "--bootstrap-by",
            "patient",
        ]
    )
    data = json.load(open(tmp_path / "out" / "results.json"))
    assert list(data["results"]) == ["n=all"]
    assert data["meta"]["task"] == "multiclass" and data["meta"]["k"] == 3
    assert data["meta"]["ci"] == "bootstrap" and data["meta"]["n_boot"] == 20
    acc = data["results"]["n=all"]["accuracy"]
    assert acc["values"][0] == acc["values"][1]  # all training examples: seeds do not matter
    assert acc["ci_low"] <= acc["mean"] <= acc["ci_high"] and acc["ci_low"] < acc["ci_high"]
    assert "| n=all |" in capsys.readouterr().out


def test_knn_n_shot_too_large_is_a_clear_error(tmp_path):
    emb = _write(tmp_path, 2)
    with pytest.raises(ValueError, match="class 0 has 30 examples; 31 per class"):
        main(["knn", "--embeddings", emb, "--out", str(tmp_path / "o"), "--n-train", "31", "--balanced"])


def test_cluster_command(tmp_path, capsys):
    emb, out = _write(tmp_path, 3), tmp_path / "out"
    main(["cluster", "--embeddings", emb, "--subset", "test", "--out", str(out), "--seed", "1"])
    report = json.load(open(out / "cluster_test.json"))
    assert report["metrics"]["n_clusters"] == 3 and report["meta"]["checkpoint_sha256"] == "cd" * 32
    assert set(report["metrics"]) >= {"silhouette", "davies_bouldin", "calinski_harabasz", "adjusted_rand", "nmi"}
    assert np.load(out / "clusters_test.npy").shape == (45,)
    assert matplotlib.image.imread(out / "projection_test.png").ndim == 3
    assert "| adjusted_rand |" in capsys.readouterr().out


def test_parser_keeps_predictions_and_documents_ci(capsys):
    args = build_parser().parse_args(["predictions", "--outputs", "o.npy", "--manifest", "m.tsv", "--out-dir", "d"])
    assert args.command == "predictions" and args.subset == "test" and args.threshold == 0.5
    with pytest.raises(SystemExit):
        main(["linear-probe", "--help"])
    text = capsys.readouterr().out
    assert "--ci bootstrap" in text and "percentile bootstrap over test examples" in text
