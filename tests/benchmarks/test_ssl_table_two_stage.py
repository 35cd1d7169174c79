"""Two-stage rows of benchmarks/ssl_table.py (``ecg_vqvae``, ``ecg_triplet`` on a stage-1 checkpoint).

The method table and the stage-2 overrides need no fairseq-signals; the triplet's labelled windows are read
from real ``.mat`` files; the random-initialisation arm of a two-stage checkpoint needs fairseq-signals (skipped
without it; run under the Python 3.10 environment).
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"
sys.path.insert(0, str(BENCHMARKS))

from ssl_table import methods, stages, two_stage  # noqa: E402

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "checkpoints_a712cee"


def test_the_method_table_declares_the_bases():
    two_stage_rows = {k: m for k, m in methods.METHODS.items() if m.base is not None}
    assert set(two_stage_rows) == {"ecg_vqvae", "ecg_triplet"}
    for m in two_stage_rows.values():
        assert m.base == methods.TWO_STAGE_BASE == "contrastive_cnn_transformer"
        base = methods.METHODS[m.base]
        assert base.base is None  # a base is one-stage
        assert m.contract == base.contract  # stage 2 sees what stage 1 saw
    assert methods.METHODS["ecg_vqvae"].labels is None  # the unlabeled pool
    triplet = methods.METHODS["ecg_triplet"]
    assert (triplet.labels, triplet.config_dir, triplet.checkpoint_name) == ("a", "finetuning", "checkpoint_best.pt")
    assert "USES LABELS" in methods.two_stage_note(triplet) and "LABELS" not in methods.two_stage_note(
        methods.METHODS["ecg_vqvae"]
    )
    assert methods.two_stage_note(methods.METHODS["ecg_mae"]) == ""

    other = methods.with_base(triplet, "st_mem")
    assert (other.name, other.base, other.contract) == ("ecg_triplet_on_st_mem", "st_mem", "st_mem_one_lead")
    assert methods.with_base(triplet, methods.TWO_STAGE_BASE) == triplet
    with pytest.raises(ValueError):
        methods.with_base(triplet, "ecg_vqvae")  # no three-stage models


def test_cli_two_stage_base_renames_rows_and_pulls_in_the_base(tmp_path):
    from .test_ssl_table import _ssl_table_script

    script = _ssl_table_script()
    args = script.parse_args(["--out", str(tmp_path), "--methods", "ecg_vqvae", "--two-stage-base", "ecg_mae"])
    [vq] = [script.resolve(methods.METHODS[m], args.two_stage_base) for m in args.methods]
    assert vq.name == "ecg_vqvae_on_ecg_mae" and args.finetune_methods == ["ecg_vqvae_on_ecg_mae"]
    # the base's data, pool and features are prepared although it has no row
    assert [m.name for m in script.with_bases([vq])] == ["ecg_vqvae_on_ecg_mae", "ecg_mae"]
    assert [m.name for m in script.with_bases([methods.METHODS["ecg_mae"], vq])] == ["ecg_mae", vq.name]


def test_report_marks_the_two_stage_rows_and_the_one_that_used_labels(tmp_path):
    from ssl_table import table

    from .test_ssl_table import _ssl_table_script

    script = _ssl_table_script()
    args = script.parse_args(
        ["--out", str(tmp_path), "--methods", "ecg_vqvae", "ecg_triplet", "--budget-samples", "640"]
    )
    rows = [script.resolve(methods.METHODS[m], args.two_stage_base) for m in args.methods]
    base = {"base_updates": 10, "base_batch_size": 64}
    pretrained = {
        "ecg_vqvae": {"reached_updates": 40, "batch_size": 16, "pool_windows": 4825, **base},
        "ecg_triplet": {"reached_updates": 20, "batch_size": 32, "pool_windows": 200, **base},
    }
    header = script.report_header(args, rows, {}, {"one_lead": {"windows": {"train": 4825}}}, pretrained)
    [vq] = [line for line in header if line.startswith("- ecg_vqvae:")]
    [tr] = [line for line in header if line.startswith("- ecg_triplet:")]
    assert "unlabeled pool" in vq and "USES LABELS" not in vq and "stage 1: 10 updates of 64; stage 2: 40" in vq
    assert "USES LABELS: task a's training windows, 100 per class" in tr and "20 updates on 200 labelled" in tr

    notes = script.row_notes(rows + [methods.METHODS["ecg_mae"]])
    assert set(notes) == {"ecg_vqvae", "ecg_triplet"}
    results: dict = {}
    for name in ("ecg_vqvae", "ecg_triplet"):
        cell = {"balanced_accuracy": {"mean": 0.7, "ci_low": 0.6, "ci_high": 0.8, "values": [0.7]}}
        table.add_result(results, "a", name, "pretrained", "linear", {"n=10": cell})
    md = table.render_task("Task a", results["a"], "balanced_accuracy", notes)
    assert "| ecg_triplet** | pretrained |" in md and "** ecg_triplet: two-stage" in md and "USES LABELS" in md


def test_stage2_overrides_point_at_the_stage1_checkpoint(tmp_path):
    base_ckpt = tmp_path / "pretrain" / "contrastive_cnn_transformer" / "checkpoint_last.pt"
    vq = stages.run_overrides(methods.METHODS["ecg_vqvae"], "ecg_vqvae_tiny", base_checkpoint=str(base_ckpt))
    assert f"model.model_path={base_ckpt}" in vq
    # one lead of 3600 samples: the VQ-VAE reconstructs the contract's window
    assert "model.in_channels=1" in vq and "model.signal_len=3600" in vq
    assert "task.leads_to_load='[0]'" in vq and "task.sample_rate=360" in vq

    user = ["model.signal_len=1800", "dataset.batch_size=8"]
    tr = stages.run_overrides(methods.METHODS["ecg_triplet"], "ecg_triplet_tiny", False, user, str(base_ckpt))
    assert f"model.model_path={base_ckpt}" in tr
    assert not any(o.startswith(("model.in_channels", "model.in_d")) for o in tr)  # not fields of ecg_triplet
    assert tr[-2:] == user  # the user's overrides come last and win

    st_mem = methods.with_base(methods.METHODS["ecg_vqvae"], "st_mem")
    assert "model.signal_len=2500" in stages.run_overrides(st_mem, "ecg_vqvae_tiny", base_checkpoint="b.pt")
    with pytest.raises(ValueError, match="two-stage"):
        stages.run_overrides(methods.METHODS["ecg_vqvae"], "ecg_vqvae_tiny")

    schedule = two_stage.validation_schedule(40)
    assert "dataset.validate_interval_updates=4" in schedule and "checkpoint.save_interval_updates=4" in schedule


def _task_dir(root: Path):
    """A preprocessed binary task: train (patients 1-4), valid (5), test (6-7) windows as .mat files with
    ``label``, ``idx`` and ``patient_id``; label 1 on every third training window."""
    import scipy.io

    (root / "mat").mkdir(parents=True)
    plan = {
        "train": [(p, int(i % 3 == 0)) for p in (1, 2, 3, 4) for i in range(6)],
        "valid": [(5, i % 2) for i in range(4)],
        "test": [(p, i % 2) for p in (6, 7) for i in range(5)],
    }
    for split, windows in plan.items():
        rows = []
        for i, (patient, label) in enumerate(windows):
            rel = f"mat/{split}_{patient}_{i}.mat"
            scipy.io.savemat(
                root / rel,
                {"feats": np.zeros((1, 10)), "label": np.array([[label]]), "idx": patient, "patient_id": patient},
            )
            rows.append(f"{rel}\t10")
        (root / f"{split}.tsv").write_text("\n".join([str(root), *rows]) + "\n")
    (root / "label_def.csv").write_text("name\nabnormal\n")
    return plan


def test_triplet_trains_on_the_probes_draw_of_training_windows_only(tmp_path):
    from physioclr_ext.evaluation.embeddings import Embeddings
    from physioclr_ext.evaluation.predictions import Manifest, load_window_metadata
    from physioclr_ext.evaluation.protocols import subsample

    plan = _task_dir(tmp_path / "task")
    dest = two_stage.labelled_data_dir(str(tmp_path / "task"), str(tmp_path / "labelled"), n=3, seed=0)
    assert sorted(p.name for p in Path(dest).iterdir()) == ["label_def.csv", "train.tsv", "valid.tsv"]  # no test
    train, valid = (Manifest.read(str(Path(dest) / f"{s}.tsv")) for s in ("train", "valid"))
    task_train = Manifest.read(str(tmp_path / "task" / "train.tsv"))
    assert train.root == task_train.root and set(train.paths) <= set(task_train.paths)
    labels, _, patients = load_window_metadata(train)
    assert np.bincount(labels[:, 0].astype(int)).tolist() == [3, 3]  # n per class
    test_patients = {p for p, _ in plan["test"]}
    assert not test_patients & set(patients) and all("test_" not in p for p in train.paths + valid.paths)
    assert valid.paths == Manifest.read(str(tmp_path / "task" / "valid.tsv")).paths

    # exactly the windows the linear probe and kNN draw at n = 3 per class with probe seed 0
    y, idx, pat = load_window_metadata(task_train)
    emb = Embeddings(np.zeros((len(y), 2)), y, idx, pat, task_train.paths)
    assert subsample(emb, "binary", 3, 0, True).paths == train.paths
    assert subsample(emb, "binary", 3, 1, True).paths != train.paths  # another seed, another draw
    assert two_stage.labelled_data_dir(str(tmp_path / "task"), dest, n=3, seed=0) == dest  # kept when done


@pytest.mark.parametrize("kind", ["ecg_triplet", "ecg_vqvae"])
@pytest.mark.parametrize("self_contained", [True, False])
def test_random_arm_reinitialises_base_and_head(kind, self_contained, tmp_path):
    """A two-stage checkpoint on ECG-MAE tiny (fixture): its random arm differs from it in the base's and the
    head's weights, even when its config lacks the base's config (the base would then come from
    ``model_path``, trained); the base is drawn as in the base method's own random arm."""
    pytest.importorskip("fairseq_signals")
    import torch
    from fairseq_signals import tasks
    from fairseq_signals.models import MODEL_REGISTRY
    from fairseq_signals.utils import checkpoint_utils
    from omegaconf import OmegaConf, open_dict

    import physioclr_ext
    from physioclr_ext.models.ecg_triplet import ECGTripletConfig
    from physioclr_ext.models.ecg_vqvae import ECGVQVAEModelConfig

    physioclr_ext.register()
    base_path = str(FIXTURES / "ecg_mae_tiny.pt")
    state = checkpoint_utils.load_checkpoint_to_cpu(base_path)
    head_cfg = (
        ECGTripletConfig(hidden_dim=8, out_dim=4, standardize_embedding=True)
        if kind == "ecg_triplet"
        else ECGVQVAEModelConfig(latent_dim=8, decoder_hidden=8, codebook_size=8, code_dim=4, kmeans_init_batches=1)
    )
    with open_dict(state["cfg"]):
        state["cfg"].model = OmegaConf.structured(head_cfg)
        state["cfg"].model.model_path = base_path
        state["cfg"].model._name = kind
    task = tasks.setup_task(state["cfg"].task, from_checkpoint=True)
    torch.manual_seed(123)  # "trained": the base's trained weights, a head of another draw
    trained = MODEL_REGISTRY[kind].build_model(state["cfg"].model, task)
    assert state["cfg"].model.pretrained_model_cfg is not None
    if kind == "ecg_vqvae":  # one training step: the codebook (a buffer drawn from model.seed) becomes k-means
        trained.train()
        trained(torch.randn(16, 12, 2500))
        assert bool(trained.vq.quantizer.initialized)
    if not self_contained:
        state["cfg"].model.pretrained_model_cfg = None
    state["model"] = trained.state_dict()
    ckpt = tmp_path / "two_stage.pt"
    torch.save(state, ckpt)

    random_arm = stages.random_init_checkpoint(str(ckpt), str(tmp_path / "random.pt"), seed=0)
    fresh = torch.load(random_arm, weights_only=False)["model"]
    base_trained = checkpoint_utils.load_checkpoint_to_cpu(base_path)["model"]
    assert set(fresh) == set(state["model"])
    encoder = [k for k in fresh if k.startswith("encoder.") and fresh[k].is_floating_point()]
    for k in encoder:
        assert torch.equal(state["model"][k], base_trained[k[len("encoder.") :]])  # the trained base was inside
    # randomly drawn parameters (matrices and kernels: not LayerNorm's ones and zeros), then the codebook
    drawn = [n for n, p in trained.named_parameters() if p.dim() > 1]
    base_w, head_w = [n for n in drawn if n.startswith("encoder.")], [n for n in drawn if not n.startswith("encoder.")]
    head_w += ["vq.quantizer.codebook"] if kind == "ecg_vqvae" else []
    assert base_w and head_w
    assert all(not torch.equal(fresh[k], state["model"][k]) for k in base_w)  # base re-initialised
    assert all(not torch.equal(fresh[k], state["model"][k]) for k in head_w)  # head re-initialised

    # the base at random init is the base method's own random arm (same seed, drawn first)
    base_random = torch.load(
        stages.random_init_checkpoint(base_path, str(tmp_path / "base_random.pt"), seed=0), weights_only=False
    )["model"]
    assert all(torch.equal(fresh[k], base_random[k[len("encoder.") :]]) for k in encoder)
