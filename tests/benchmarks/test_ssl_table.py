"""Pure parts of benchmarks/ssl_table.py: pool manifest, table assembly, plots, log parsing.

No fairseq-signals needed (Python 3.9-3.11).
"""

from __future__ import annotations

import csv
import os
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"
sys.path.insert(0, str(BENCHMARKS))

from ssl_table import methods, plots, table  # noqa: E402
from ssl_table.pool import build_pool, leaked_patients, patients_in_test, read_manifest, write_pool  # noqa: E402


def _cell(mean, half=0.05):
    return {"mean": mean, "ci_low": mean - half, "ci_high": mean + half, "values": [mean]}


def _metrics(mean):
    return {"balanced_accuracy": _cell(mean), "auroc": _cell(mean + 0.1)}


@pytest.fixture
def fake_results():
    results: dict = {}
    for method, base in (("contrastive_cnn", 0.7), ("st_mem", 0.6)):
        for arm, shift in (("pretrained", 0.0), ("random", -0.1)):
            table.add_result(
                results,
                "a",
                method,
                arm,
                "linear",
                {
                    "n=10": _metrics(base + shift),
                    "n=100": _metrics(base + shift + 0.05),
                    "n=all": _metrics(base + shift + 0.1),
                },
            )
            table.add_result(results, "a", method, arm, "knn", {"n=10": _metrics(base + shift - 0.02)})
    fs = {"n=100/pretrained": _metrics(0.75), "n=100/scratch": _metrics(0.65)}
    for arm, settings in table.fewshot_arms(fs).items():
        table.add_result(results, "a", "contrastive_cnn", arm, "finetune", settings)
    table.add_result(results, "a", "features (neurokit2, PCA)", "reference", "linear", {"n=10": _metrics(0.55)})
    return results


def test_table_rows_put_random_init_below_pretrained(fake_results):
    rows = table.task_rows(fake_results["a"], "balanced_accuracy")
    assert [(m, a) for m, a, _ in rows] == [
        ("contrastive_cnn", "pretrained"),
        ("contrastive_cnn", "random"),
        ("st_mem", "pretrained"),
        ("st_mem", "random"),
        ("features (neurokit2, PCA)", "reference"),
    ]
    cells = dict(((m, a), c) for m, a, c in rows)
    assert cells[("contrastive_cnn", "random")][("finetune", "n=100")]["mean"] == pytest.approx(0.65)
    assert cells[("st_mem", "pretrained")][("finetune", "n=100")] is None  # not run: shown as n/a


def test_markdown_table_columns_cells_and_notes(fake_results):
    md = table.render_task("Task a", fake_results["a"], "balanced_accuracy", {"st_mem": "12-lead sources only"})
    lines = [line for line in md.splitlines() if line.startswith("|")]
    assert lines[0] == ("| method | init | linear n=10 | linear n=100 | linear n=all | kNN n=10 | fine-tune n=100 |")
    assert len(lines) == 2 + 5
    assert "| contrastive_cnn | pretrained | 0.700 [0.650, 0.750] |" in md
    assert "| st_mem* | random |" in md and "* st_mem: 12-lead sources only" in md
    assert md.count("n/a") == 2 + 4  # st_mem has no fine-tuning; the reference only has linear n=10
    both = table.render_tables(fake_results, ("balanced_accuracy", "auroc"), {"a": "Task a"})
    assert both.count("#### Task a") == 2


def test_label_curves_and_png(fake_results, tmp_path):
    curves = table.label_curves(fake_results["a"], "linear")
    assert set(curves) == {"contrastive_cnn", "st_mem", "features (neurokit2, PCA)"}
    path = plots.plot_label_curves(curves, str(tmp_path / "curves.png"), "balanced_accuracy", "Task a")
    assert Path(path).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_loss_curves_from_log_and_png(tmp_path):
    text = "\n".join(
        [
            "[2026-12-02 10:57:35,804][train_inner][INFO] - epoch 001:     10 / 256 loss=3.5, ups=3.2, "
            "num_updates=10, lr=0.001, train_wall=1, wall=5",
            "[2026-12-02 10:57:38,804][train_inner][INFO] - epoch 001:     20 / 256 loss=2.5, ups=3.3, "
            "num_updates=20, lr=0.001, train_wall=2, wall=8",
            "[..][valid][INFO] - epoch 001 | valid on 'valid' subset | loss 2.1 | num_updates 20",
            "epoch 001 | loss 3.065 | num_updates 20 | wall 9",
            '{"epoch": 1, "update": 1.1, "loss": "1.25", "num_updates": "30", "wall": "11"}',
        ]
    )
    records = plots.parse_train_log(text)
    assert [(r["num_updates"], r["loss"]) for r in records] == [(10, 3.5), (20, 2.5), (30, 1.25)]
    assert plots.seconds_per_update(records) == pytest.approx((11 - 5) / 20)
    path = plots.plot_loss_curves({"contrastive_cnn": records, "ecg_mae": records[:1]}, str(tmp_path / "loss.png"))
    assert Path(path).read_bytes()[:4] == b"\x89PNG"


def _fake_source(root: Path, name: str, windows):
    """windows: (record, patient, split) per window."""
    src = root / name
    (src / "mat").mkdir(parents=True)
    rows = []
    for i, (record, patient, split) in enumerate(windows):
        rows.append({"path": f"mat/{record}_{i}.mat", "record": record, "patient": patient, "split": split})
    with open(src / "windows.csv", "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=["path", "record", "patient", "split"])
        writer.writeheader()
        writer.writerows(rows)
    for split in ("train", "valid", "test"):
        lines = [f"{r['path']}\t3600" for r in rows if r["split"] == split]
        (src / f"{split}.tsv").write_text("\n".join([str(src), *lines]) + "\n")
    (src / "cmsc").mkdir()
    (src / "cmsc" / "train.tsv").write_text(f"{src}\nmat\nmat/{windows[0][0]}\t3600\t0\t0,1\n")
    return src


def test_pool_has_no_test_patient(tmp_path):
    contract = tmp_path / "one_lead"
    _fake_source(
        contract,
        "mitdb_binary",
        [
            ("101", "101", "train"),
            ("101", "101", "train"),
            ("105", "105", "valid"),
            ("100", "100", "test"),
            ("202", "201", "test"),
        ],
    )
    _fake_source(contract, "ludb", [("1", "1", "train"), ("2", "2", "test")])
    pool = build_pool(str(contract), ["mitdb_binary", "ludb", "pool_missing"])
    paths = [p for rows in pool.windows.values() for p, _ in rows]
    assert paths == [
        "mitdb_binary/mat/101_0.mat",
        "mitdb_binary/mat/101_1.mat",
        "ludb/mat/1_0.mat",
        "mitdb_binary/mat/105_2.mat",
    ]
    assert not any(p.endswith(("100_3.mat", "202_4.mat", "2_1.mat")) for p in paths)
    assert pool.counts["pool_missing"] == {"train": 0, "valid": 0}
    same = {"mitdb_binary": "mitdb", "mitdb_aami": "mitdb", "ludb": "ludb"}
    tests = {
        "mitdb_aami": patients_in_test(str(contract / "mitdb_binary")),
        "ludb": patients_in_test(str(contract / "ludb")),
    }
    assert tests["mitdb_aami"] == {"100", "201"}
    assert leaked_patients(pool, tests, same) == {}
    assert leaked_patients(pool, {"mitdb_aami": {"105"}}, same) == {"mitdb_aami": {"105"}}

    out = tmp_path / "pool"
    sizes = write_pool(pool, str(out))
    assert sizes == {"train": 4, "valid": 1}  # pretraining reads train.tsv: every non-test window
    root, rows = read_manifest(str(out / "train.tsv"))
    assert [p for p, _ in rows] == paths
    assert root == str(contract) and all(os.path.exists(os.path.join(root, os.path.dirname(p))) for p, _ in rows)
    assert (out / "cmsc" / "train.tsv").read_text().splitlines()[2:] == [
        "mitdb_binary/mat/101\t3600\t0\t0,1",
        "ludb/mat/1\t3600\t0\t0,1",
    ]


def test_pool_refuses_a_test_patient_in_train(tmp_path):
    contract = tmp_path / "c"
    _fake_source(contract, "ludb", [("1", "7", "train"), ("2", "7", "test")])  # one patient in two splits
    with pytest.raises(ValueError, match="test patient 7"):
        build_pool(str(contract), ["ludb"])


def test_methods_tables_are_consistent():
    assert {
        "contrastive_cnn",
        "contrastive_cnn_transformer",
        "clocs_cmsc",
        "clocs_cmlc",
        "clocs_cmsmlc",
        "ecg_mae",
        "st_mem",
        "physioclr",
        "wav2vec2",
    } <= set(methods.METHODS)
    configs = Path(__file__).resolve().parents[2] / "configs"
    for m in methods.METHODS.values():
        assert m.contract in methods.CONTRACTS
        folder = configs / m.config_dir
        assert (folder / f"{m.config}.yaml").exists() and (folder / f"{m.gpu_config}.yaml").exists()
    twelve = methods.pool_sources(methods.CONTRACTS["st_mem"])
    assert "mitdb_binary" not in twelve and "ludb" in twelve
    assert "mitdb_aami" not in methods.pool_sources(methods.CONTRACTS["one_lead"])
    assert methods.task_sources(["a", "b"]) == ["mitdb_aami", "mitdb_binary"]


def test_samples_budget_uses_the_batch_size_after_overrides(tmp_path):
    from ssl_table import stages

    config = tmp_path / "c.yaml"
    config.write_text("dataset:\n  batch_size: 16\nmodel:\n  _name: x\n")
    assert stages.batch_size(str(config), []) == 16
    assert stages.batch_size(str(config), ["task.data=x", "dataset.batch_size=64"]) == 64
    assert "32000 windows" in stages.Budget(samples=32000).describe()
    assert "2 minutes" in stages.Budget(minutes=2).describe()


def test_batch_overrides_of_the_benchmark():
    for name in ("contrastive_cnn_transformer", "clocs_cmsc", "clocs_cmlc", "clocs_cmsmlc", "lfbt"):
        assert "dataset.batch_size=64" in methods.METHODS[name].overrides
    assert methods.METHODS["wav2vec2"].overrides == () and methods.METHODS["contrastive_cnn"].overrides == ()


def _feature_source(root, source, windows, seed):
    """A preprocessed source: manifests, windows.csv and feature tables of ``windows`` windows of record r0."""
    import json

    import numpy as np

    from physioclr_ext.features.store import save_split

    rng = np.random.default_rng(seed)
    folder = root / source
    (folder / "features").mkdir(parents=True)
    rows = []
    for split, count in (("train", windows), ("valid", 1), ("test", 1)):
        paths = [f"mat/{split}_{i}.mat" for i in range(count)]
        (folder / f"{split}.tsv").write_text(str(folder / "mat") + "\n" + "".join(f"{p}\t100\n" for p in paths))
        raw = rng.normal(loc=seed, size=(count, 3)).astype(np.float32)
        peaks = [np.array([10 * (i + 1)]) for i in range(count)]
        save_split(
            str(folder / "features" / f"{split}.npz"), paths, raw, raw, np.ones(count, bool), [""] * count, peaks
        )
        rows += [
            {"path": p, "record": f"r_{split}", "window": i, "split": split, "patient": f"p_{split}"}
            for i, p in enumerate(paths)
        ]
    (folder / "features" / "names.json").write_text(json.dumps(["a", "b", "c"]))
    with open(folder / "windows.csv", "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=["path", "record", "window", "split", "patient"])
        writer.writeheader()
        writer.writerows(rows)


def test_pool_feature_store_stacks_raw_features_and_fits_one_transform(tmp_path):
    import numpy as np
    from ssl_table.pool_features import merge_pool_features

    from physioclr_ext.features.store import load_split
    from physioclr_ext.features.transform import fit_transform

    contract = tmp_path / "one_lead"
    _feature_source(contract, "s1", 3, seed=0)
    _feature_source(contract, "s2", 4, seed=5)
    with open(contract / "s2" / "windows.csv", newline="") as fh:  # a source with an extra column (MIT-BIH: aami)
        rows = list(csv.DictReader(fh))
    with open(contract / "s2" / "windows.csv", "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=[*rows[0], "aami"])
        writer.writeheader()
        writer.writerows({**r, "aami": "N"} for r in rows)
    pool = build_pool(str(contract), ["s1", "s2"])
    write_pool(pool, str(tmp_path / "pool"))
    summary = merge_pool_features(str(contract), str(tmp_path / "pool"), pca=None)

    merged = load_split(str(tmp_path / "pool"), "train")
    _, manifest = read_manifest(str(tmp_path / "pool" / "train.tsv"))
    assert [str(f) for f in merged.fnames] == [rel for rel, _ in manifest]  # manifest order, pool paths
    assert summary["splits"]["train"] == {"windows": 3 + 1 + 4 + 1, "valid": 9}
    direct = np.concatenate(
        [load_split(str(contract / s), split).raw for s in ("s1", "s2") for split in ("train", "valid")]
    )
    order = [f"{s}/mat/{split}_" for s in ("s1", "s2") for split in ("train", "valid")]
    assert all(any(str(f).startswith(o) for o in order) for f in merged.fnames)
    # one z-score over the whole pool, not one per source
    expected = fit_transform(direct, np.ones(len(direct), bool)).apply(direct)
    row = {str(f): i for i, f in enumerate(merged.fnames)}
    names = [
        f"{s}/mat/{split}_{i}"
        for s in ("s1", "s2")
        for split, n in (("train", 3 if s == "s1" else 4), ("valid", 1))
        for i in range(n)
    ]
    np.testing.assert_allclose(merged.vectors[[row[n + ".mat"] for n in names]], expected, rtol=1e-5, atol=1e-5)
    assert abs(float(merged.vectors.mean())) < 1e-5
    assert int(merged.r_peaks[row["s2/mat/train_1.mat"]][0]) == 20
    with open(tmp_path / "pool" / "windows.csv", newline="") as fh:
        windows = list(csv.DictReader(fh))
    assert len(windows) == 9  # no test window
    assert {w["aami"] for w in windows} == {"", "N"}
    # records are named per source, so PhysioCLR's temporal neighbours never cross sources
    assert all(w["record"].split("/")[0] == w["path"].split("/")[0] for w in windows)
    assert {w["record"] for w in windows} == {f"{s}/r_{split}" for s in ("s1", "s2") for split in ("train", "valid")}


def test_collapse_table_has_a_row_per_task_method_and_arm():
    report = {"per_dim_std": 0.25, "effective_rank": 12.34, "dim": 64.0}
    text = table.render_collapse({"a": {"ecg_jepa": {"pretrained": report, "random": {**report, "dim": 8.0}}}})
    rows = [line for line in text.splitlines() if line.startswith("| a |")]
    assert rows == ["| a | ecg_jepa | pretrained | 0.25 | 12.3 | 64 |", "| a | ecg_jepa | random | 0.25 | 12.3 | 8 |"]


def test_sources_without_lead_names_join_the_one_lead_pool_channel_by_channel():
    for key in ("pool_qtdb", "pool_svdb"):
        source = methods.SOURCES[key]
        assert methods.source_options(source)["channels_as_records"] is True
        assert key in methods.pool_sources(methods.CONTRACTS["one_lead"])
        assert key not in methods.pool_sources(methods.CONTRACTS["twelve_lead"])
    assert "channels_as_records" not in methods.source_options(methods.SOURCES["pool_ptbxl"])


def test_lead_count_overrides_match_the_contract_channels():
    """A method told ``model.num_leads=K`` loads exactly K channels of its contract; ST-MEM and ECG-JEPA
    pretrain on lead II of every pool source (MIT-BIH and the QT Database included)."""
    import re

    for m in methods.METHODS.values():
        leads = [o for o in m.overrides if o.startswith("model.num_leads=")]
        if not leads:
            continue
        loaded = [o for o in methods.CONTRACTS[m.contract].signal_overrides if o.startswith("task.leads_to_load=")]
        assert len(loaded) == 1, m.name
        channels = re.search(r"\[(.*)\]", loaded[0]).group(1).split(",")
        assert len(channels) == int(leads[0].split("=")[1]), m.name
    for name in ("st_mem", "ecg_jepa", "ecg_jepa_hybrid"):
        contract = methods.CONTRACTS[methods.METHODS[name].contract]
        assert contract.options["leads"] == ("II",)
        pool = methods.pool_sources(contract)
        assert {"mitdb_binary", "pool_qtdb", "ludb"} <= set(pool)


def test_pool_exclude_leaves_a_source_out_of_the_pool_only():
    one_lead = methods.CONTRACTS["one_lead"]
    assert "pool_qtdb" in methods.pool_sources(one_lead)
    kept = methods.pool_sources(one_lead, ["pool_qtdb", "pool_svdb"])
    assert "pool_qtdb" not in kept and "pool_svdb" not in kept
    assert set(methods.pool_sources(one_lead)) - set(kept) == {"pool_qtdb", "pool_svdb"}


def _ssl_table_script():
    """benchmarks/ssl_table.py itself (its name is shadowed by the ``ssl_table`` package beside it)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("ssl_table_script", BENCHMARKS / "ssl_table.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_released_weights_get_a_row_with_the_base_methods_contract_and_paper_config(tmp_path):
    script = _ssl_table_script()
    weights = tmp_path / "encoder_group_gamma_0.8.pth"
    weights.write_bytes(b"not read here")
    args = script.parse_args(["--out", str(tmp_path / "out"), "--methods", "lfbt", "--released", f"lfbt={weights}"])
    [(method, path)] = args.released.items()
    assert method.name == "lfbt_released"
    assert method.contract == methods.METHODS["lfbt"].contract
    assert method.config == methods.METHODS["lfbt"].gpu_config == "lfbt"
    assert path == str(weights)
    for bad in (f"st_mem={weights}", str(weights), f"lfbt={tmp_path / 'missing.pth'}"):
        with pytest.raises(SystemExit):
            script.parse_args(["--out", str(tmp_path / "out"), "--released", bad])


def test_report_header_states_the_budget_only_where_something_was_pretrained_here(tmp_path):
    script = _ssl_table_script()
    weights = tmp_path / "encoder_group_gamma_0.8.pth"
    weights.write_bytes(b"not read here")
    out = str(tmp_path / "out")
    released = {
        "lfbt_released": {"released_weights": str(weights), "weights_sha256": "46e58dc3024f" + "0" * 52},
    }
    trained = {"contrastive_cnn": {"reached_updates": 500, "batch_size": 64}}
    pool = {"one_lead": {"windows": {"train": 4825}}}

    args = script.parse_args(["--out", out, "--methods", "--released", f"lfbt={weights}", "--no-finetune"])
    only_released = script.report_header(args, list(args.released), {}, {}, released)
    assert only_released[0].startswith("- no pretraining run here (released weights only)")
    assert "encoder_group_gamma_0.8.pth (sha256 46e58dc3024f)" in only_released[0]
    assert not any("budget" in line or "pool windows" in line or "pretraining seed" in line for line in only_released)

    args = script.parse_args(["--out", out, "--methods", "contrastive_cnn", "--budget-samples", "32000"])
    both = script.report_header(args, [methods.METHODS["contrastive_cnn"]], {}, pool, {**trained, **released})
    assert both[0].startswith("- budget: 32000 windows seen")
    assert "contrastive_cnn 500 (64)" in both[0] and "lfbt_released released weights" in both[0]
    assert "- pool windows (train): one_lead 4825" in both


def test_random_init_seed_names_its_own_checkpoint_and_cache_and_is_reported(tmp_path):
    script = _ssl_table_script()
    out = str(tmp_path / "out")
    default = script.parse_args(["--out", out, "--methods", "contrastive_cnn"])
    seeded = script.parse_args(["--out", out, "--methods", "contrastive_cnn", "--random-init-seed", "2"])
    assert (default.random_init_seed, script._random_init_tag(default)) == (0, "")  # earlier runs' file names
    assert script._random_init_tag(seeded) == "_seed2"
    pool = {"one_lead": {"windows": {"train": 10}}}
    header = script.report_header(
        seeded, [methods.METHODS["contrastive_cnn"]], {}, pool, {"contrastive_cnn": {"reached_updates": 1}}
    )
    assert "- pretraining seed 1; random-init seed 2" in header


def test_jepa_vicreg_rows_add_the_terms_and_the_hybrid_width_only_on_cpu():
    """The non-collapsing ECG-JEPA rows: the recipe's rows unchanged, the VICReg rows with both criterion terms;
    the hybrid one 64 wide with the CPU configs and at the paper config's width under ``--gpu``."""
    from ssl_table import stages

    recipe = stages.run_overrides(methods.METHODS["ecg_jepa"], "ecg_jepa_tiny")
    assert not any("variance_weight" in o or "covariance_weight" in o for o in recipe)
    for name, gpu_config in (("ecg_jepa_vicreg", "ecg_jepa"), ("ecg_jepa_hybrid_vicreg", "ecg_jepa")):
        method = methods.METHODS[name]
        cpu = stages.run_overrides(method, method.config)
        gpu = stages.run_overrides(method, gpu_config, gpu=True)
        for overrides in (cpu, gpu):
            assert {"+criterion.variance_weight=1.0", "+criterion.covariance_weight=1.0"} <= set(overrides)
        assert ("model.embed_dim=64" in cpu) == (name == "ecg_jepa_hybrid_vicreg")
        assert "model.embed_dim=64" not in gpu
        assert method.contract == methods.METHODS[name.replace("_vicreg", "")].contract
