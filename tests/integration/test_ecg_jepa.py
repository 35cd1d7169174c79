"""ECG-JEPA through the real fairseq-signals trainer: the bundled LUDB records preprocessed with the `ecg_jepa`
preset (8 leads, 250 Hz, 2500 samples, raw), pretrained and resumed with the tiny config; in the slow tests
pretrained through `pre-training_ecg.sh`, embedded, probed, fine-tuned with `ecg_ssl_classifier`, and the
paper-size configs run for two updates."""

import re
import shutil
import sys

import pytest

from ._util import REPO, console_script, run

CONFIGS = REPO / "configs"
EIGHT = 'task.leads_to_load="[0,1,2,3,4,5,6,7]"'


@pytest.fixture(scope="module")
def ludb_jepa(tmp_path_factory):
    """The 8 bundled LUDB records (12 leads, 500 Hz, 10 s) -> 8-lead 250 Hz raw windows of 2500 samples."""
    from physioclr_ext.preprocess import PreprocessConfig
    from physioclr_ext.preprocess import run as preprocess

    out = tmp_path_factory.mktemp("ludb_ecg_jepa")
    preprocess(
        PreprocessConfig.from_preset(
            "ecg_jepa", input=str(REPO / "data/sample/ludb"), output=str(out), workers=1, progress=False
        )
    )
    return out


def _pretrain(config, data, out, *overrides):
    proc = run(
        [
            console_script("physioclr-hydra-train"),
            "--config-dir",
            str(CONFIGS / "pretraining"),
            "--config-name",
            config,
            f"task.data={data}",
            f"checkpoint.save_dir={out}",
            f"hydra.run.dir={out}",
            "common.log_interval=1",
            *overrides,
        ]
    )
    return proc.stdout + proc.stderr


def _load(path):
    import torch

    return torch.load(path, map_location="cpu", weights_only=False)


def test_model_config_is_the_core_config_and_adamw_exempts_1d_parameters():
    """Fields declared once (the core ECGJEPAConfig); the registered `adamw` puts biases and 1-D parameters in
    a group without weight decay, and refuses flattened parameters (fp16 without fp16_no_flatten_grads)."""
    from fairseq_signals.criterions import CRITERION_REGISTRY
    from fairseq_signals.optim import OPTIMIZER_REGISTRY
    from omegaconf import OmegaConf

    import physioclr_ext
    from physioclr_ext.models.ecg_jepa import ECGJEPAModel, ECGJEPAModelConfig
    from physioclr_ext.modules.ecg_jepa import ECGJEPAConfig
    from physioclr_ext.optim.adamw import AdamWConfig

    physioclr_ext.register()
    assert "jepa" in CRITERION_REGISTRY and "adamw" in OPTIMIZER_REGISTRY
    node = OmegaConf.structured(ECGJEPAModelConfig)
    assert set(node) == set(ECGJEPAConfig.__dataclass_fields__) | {"_name"}
    node.merge_with(
        {"embed_dim": 32, "depth": 1, "heads": 2, "predictor_embed_dim": 16, "predictor_depth": 1, "predictor_heads": 2}
    )
    node.ema_total_updates = 10
    model = ECGJEPAModel.build_model(node)
    assert type(model.net.cfg) is ECGJEPAConfig and model.net.cfg.ema_total_updates == 10

    params = [p for p in model.parameters() if p.requires_grad]
    opt = OPTIMIZER_REGISTRY["adamw"](OmegaConf.structured(AdamWConfig(weight_decay=0.05, lr=[1e-3])), params)
    decay, exempt = opt.param_groups
    assert decay["weight_decay"] == 0.05 and exempt["weight_decay"] == 0.0
    assert all(p.ndim >= 2 for p in decay["params"]) and all(p.ndim <= 1 for p in exempt["params"])
    assert len(decay["params"]) + len(exempt["params"]) == len(params)
    assert not any(p is q for p in model.net.target_encoder.parameters() for q in params)
    assert not opt.supports_flat_params


def test_resumed_run_restores_the_ema_target_and_its_momentum(ludb_jepa, tmp_path):
    """4 updates in one run, against 2 updates and a resume from that checkpoint: the final weights, the target
    encoder included, are identical, and the EMA steps in the checkpoints follow the momentum schedule."""
    import torch

    from physioclr_ext.modules.ecg_jepa import ema_momentum

    common = [EIGHT, "optimization.max_update=4"]
    log = _pretrain("ecg_jepa_tiny", ludb_jepa, tmp_path / "a", *common, "checkpoint.no_epoch_checkpoints=false")
    losses = [float(v) for v in re.findall(r"\bloss=([0-9.]+)", log)]
    stds = [float(v) for v in re.findall(r"target_std=([0-9.]+)", log)]
    assert len(losses) == 4 and all(0 < v < 10 for v in losses) and all(v > 0 for v in stds)
    # one update per epoch (6 training windows, batch 16): checkpoint<k>.pt is after k updates, k - 1 EMA steps
    ckpt = {k: _load(tmp_path / f"a/checkpoint{k}.pt")["model"] for k in (2, 3, 4)}
    assert [int(ckpt[k]["ema_updates"]) for k in (2, 3, 4)] == [1, 2, 3]
    target = [k for k in ckpt[4] if k.startswith("net.target_encoder.")]
    assert len(target) > 10
    m = ema_momentum(2, 4)  # the EMA step owed for update 3, applied at the start of update 4
    for key in target:
        online = key.replace("net.target_encoder.", "net.encoder.")
        expected = m * ckpt[3][key] + (1 - m) * ckpt[3][online]
        torch.testing.assert_close(ckpt[4][key], expected, rtol=1e-5, atol=1e-7)
    assert any(not torch.equal(ckpt[4][k], ckpt[4][k.replace("target_encoder", "encoder")]) for k in target)

    log = _pretrain(
        "ecg_jepa_tiny", ludb_jepa, tmp_path / "b", *common, f"checkpoint.restore_file={tmp_path}/a/checkpoint2.pt"
    )
    assert "Loaded checkpoint" in log and "num_updates=3" in log and "num_updates=1," not in log
    straight, resumed = ckpt[4], _load(tmp_path / "b/checkpoint_last.pt")["model"]
    assert set(straight) == set(resumed)
    for key in straight:
        assert torch.equal(straight[key], resumed[key]), key


def test_variance_term_is_off_by_default_and_logged_when_on(ludb_jepa, tmp_path):
    """``criterion.variance_weight`` adds the variance hinge of the pooled context (logged); 0 leaves the loss as is."""
    common = [EIGHT, "optimization.max_update=2"]
    plain = _pretrain("ecg_jepa_tiny", ludb_jepa, tmp_path / "a", *common)
    assert "variance=" not in plain and "context_std=" not in plain
    log = _pretrain("ecg_jepa_tiny", ludb_jepa, tmp_path / "b", *common, "+criterion.variance_weight=1.0")
    variance = [float(v) for v in re.findall(r"\bvariance=([0-9.]+)", log)]
    losses = [float(v) for v in re.findall(r"\bloss=([0-9.]+)", log)]
    plain_losses = [float(v) for v in re.findall(r"\bloss=([0-9.]+)", plain)]
    assert len(variance) == 2 and all(0 < v <= 1 for v in variance)
    # same seed, same first batch and mask: the first loss differs by the variance term exactly (weight 1)
    assert losses[0] == pytest.approx(plain_losses[0] + variance[0], abs=2e-4)


def test_regularise_on_full_feeds_the_terms_the_whole_window(ludb_jepa, tmp_path):
    """``model.regularise_on=full``: the same seed, batch and mask, but the variance term reads the downstream
    representation of the whole window, so its first logged value differs from the visible tokens' one."""
    common = [EIGHT, "optimization.max_update=2", "+criterion.variance_weight=1.0"]
    visible = _pretrain("ecg_jepa_tiny", ludb_jepa, tmp_path / "a", *common)
    full = _pretrain("ecg_jepa_tiny", ludb_jepa, tmp_path / "b", *common, "+model.regularise_on=full")
    # the pooled std at initialisation (about 0.01) tells the two views apart where the hinge (about 0.99) cannot
    first = [float(re.findall(r"\bcontext_std=([0-9.]+)", log)[0]) for log in (visible, full)]
    assert all(v > 0 for v in first) and first[0] != pytest.approx(first[1], rel=0.05)
    assert "'regularise_on': 'full'" in full and "'regularise_on': 'visible'" in visible


def test_regularise_on_tokens_feeds_the_terms_every_visible_token(ludb_jepa, tmp_path):
    """``model.regularise_on=tokens``: the same seed, batch and mask; the terms read every visible token as a row,
    whose spread (LayerNormed tokens, about 1 per dimension) is far above the pooled windows' (about 0.01)."""
    common = [EIGHT, "optimization.max_update=2", "+criterion.covariance_weight=1.0"]
    visible = _pretrain("ecg_jepa_tiny", ludb_jepa, tmp_path / "a", *common)
    tokens = _pretrain("ecg_jepa_tiny", ludb_jepa, tmp_path / "b", *common, "+model.regularise_on=tokens")
    first = [float(re.findall(r"\bcontext_std=([0-9.]+)", log)[0]) for log in (visible, tokens)]
    assert 0 < first[0] < 0.2 < first[1]
    assert "'regularise_on': 'tokens'" in tokens


@pytest.mark.slow  # about a minute on 2 cores
def test_script_pretraining_embed_probes_and_finetuning(ludb_jepa, tmp_path):
    import numpy as np
    import scipy.io
    import torch

    from physioclr_ext.runners.extract_embeddings import load_checkpoint

    env = {"PYTHON": sys.executable}
    run(
        ["bash", str(REPO / "pre-training_ecg.sh"), "--method", "ecg_jepa", "--tiny", "--data", str(ludb_jepa),
         "--out", str(tmp_path / "pt"), "--", "optimization.max_update=4"],
        env=env,
    )  # fmt: skip
    ckpt = tmp_path / "pt/checkpoint_last.pt"
    evaluation = [sys.executable, "-m", "physioclr_ext.evaluation"]
    run([*evaluation, "embed", "--checkpoint", str(ckpt), "--data", str(ludb_jepa), "--out", str(tmp_path / "emb")])
    emb = np.load(tmp_path / "emb/train.npy")
    paths = (tmp_path / "emb/train.paths.txt").read_text().split()
    assert emb.shape == (6, 32) and np.isfinite(emb).all()
    net = load_checkpoint(str(ckpt), str(ludb_jepa)).model.net
    x = torch.from_numpy(np.stack([scipy.io.loadmat(ludb_jepa / p)["feats"] for p in paths]))
    with torch.no_grad():
        np.testing.assert_allclose(emb, net.eval().representation(x).numpy(), atol=1e-5)
    for command in ("linear-probe", "knn"):
        extra = ["--k", "3"] if command == "knn" else []
        run([*evaluation, command, "--embeddings", str(tmp_path / "emb"), "--out", str(tmp_path / command), *extra])
        assert (tmp_path / command / "results.json").exists()

    k = len((ludb_jepa / "label_def.csv").read_text().splitlines()) - 1
    ft = tmp_path / "ft"
    run(
        [console_script("physioclr-hydra-train"), "--config-dir", str(CONFIGS / "finetuning"), "--config-name",
         "ecg_ssl_classifier_tiny", f"task.data={ludb_jepa}", "task.sample_rate=250", EIGHT,
         f"model.model_path={ckpt}", f"model.num_labels={k}", f"checkpoint.save_dir={ft}", f"hydra.run.dir={ft}",
         "optimization.max_update=4"]
    )  # fmt: skip
    state = _load(ft / "checkpoint_best.pt")
    assert state["cfg"]["model"]["pretrained_model_cfg"]["_name"] == "ecg_jepa"
    pretrained = _load(ckpt)["model"]
    # fine-tuning trains the context encoder and leaves the EMA target where pretraining left it
    key = "net.target_encoder.embed.weight"
    assert torch.equal(state["model"][f"encoder.{key}"], pretrained[key])
    assert not torch.equal(state["model"]["encoder.net.encoder.embed.weight"], pretrained["net.encoder.embed.weight"])
    run([*evaluation, "embed", "--checkpoint", str(ft / "checkpoint_best.pt"), "--data", str(ludb_jepa),
         "--out", str(tmp_path / "emb_ft")])  # fmt: skip
    assert np.load(tmp_path / "emb_ft/test.npy").shape[1] == 32


@pytest.mark.slow  # the paper-size models, two CPU-sized updates each
@pytest.mark.parametrize("config", ["ecg_jepa", "ecg_jepa_small"])
def test_paper_configs_build_and_train(config, ludb_jepa, tmp_path):
    log = _pretrain(
        config, ludb_jepa, tmp_path, "optimization.max_update=2", "dataset.batch_size=2", "dataset.num_workers=0",
        "common.log_format=simple",
    )  # fmt: skip
    assert (tmp_path / "checkpoint_last.pt").exists()
    losses = [float(v) for v in re.findall(r"\bloss=([0-9.]+)", log)]
    assert losses and all(0 < v < 10 for v in losses)
    shutil.rmtree(tmp_path, ignore_errors=True)
