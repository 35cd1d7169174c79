"""``python -m physioclr_ext.runners.checkpoints import``: released weights of the original codes -> checkpoints
that fairseq-signals loads, embeds with and fine-tunes from.

Default run: LFBT encoders keyed like the original's (state dicts) through the command, then embedded on real
LUDB windows by the checkpoint's own task (equal to a functional VGG16 reference); ST-MEM and ECG-JEPA state
dicts keyed like the originals' convert into checkpoints that rebuild strictly. With
``PHYSIOCLR_LFBT_CHECKOUT`` (a checkout of Aiwiscal/ECG_SSL_LFBT holding ``checkpoint/encoder_group_gamma_*.pth``,
or ``PHYSIOCLR_LFBT_WEIGHTS``): the released files convert and their features through fairseq-signals equal the
original modules' on the same real records.
"""

import os
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from ._util import REPO, run

CHECKOUT = os.environ.get("PHYSIOCLR_LFBT_CHECKOUT", "")
TOL = 1e-5


def cli(*args, check=True):
    cmd = [sys.executable, "-m", "physioclr_ext.runners.checkpoints", *map(str, args)]
    if check:
        return run(cmd)
    import subprocess

    return subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def ludb_lfbt(tmp_path_factory):
    """The 8 bundled LUDB records -> 8 leads (II, III, V1-V6), 500 Hz, 5000 samples, one z-score per ECG."""
    from physioclr_ext.preprocess import PreprocessConfig
    from physioclr_ext.preprocess import run as preprocess

    out = tmp_path_factory.mktemp("ludb_lfbt")
    preprocess(
        PreprocessConfig.from_preset(
            "lfbt", input=str(REPO / "data/sample/ludb"), output=str(out), workers=1, progress=False
        )
    )
    return out


def _windows(data: Path, subset: str = "train") -> torch.Tensor:
    import scipy.io

    paths = [line.split("\t")[0] for line in (data / f"{subset}.tsv").read_text().splitlines()[1:]]
    return torch.from_numpy(np.stack([scipy.io.loadmat(data / p)["feats"] for p in paths])).float()


def _embed(checkpoint: Path, data: Path) -> np.ndarray:
    from physioclr_ext.runners.extract_embeddings import load_checkpoint, run_subset

    return run_subset(load_checkpoint(str(checkpoint), str(data)), "train", progress=False)


def _rebuilds_strictly(checkpoint: Path) -> None:
    """As ``ecg_ssl_classifier`` loads a pretrained encoder: the config's model, the weights strictly."""
    from fairseq_signals.models import build_model
    from fairseq_signals.utils import checkpoint_utils
    from omegaconf import OmegaConf

    import physioclr_ext

    physioclr_ext.register()
    state = checkpoint_utils.load_checkpoint_to_cpu(str(checkpoint))
    build_model(OmegaConf.create(state["cfg"]["model"]), None).load_state_dict(state["model"], strict=True)


def test_lfbt_state_dicts_through_the_command(ludb_lfbt, tmp_path):
    from physioclr_ext.runners.checkpoints import checkpoint_finetune_config, load_model_config
    from physioclr_ext.runners.import_weights import import_weights, report
    from tests.modules.test_lfbt_import import original_backbone_sd, reference_features

    backbones = [original_backbone_sd(seed) for seed in range(8)]
    weights = tmp_path / "encoder_group.pth"
    torch.save({"backbone_state_dict": backbones}, weights)
    out = tmp_path / "lfbt_imported.pt"
    printed = "\n".join(report(import_weights("lfbt", str(weights), str(out), data=str(ludb_lfbt))))
    assert f"wrote {out}: model lfbt (config lfbt), 728 tensors" in printed
    assert "left at initialisation (not in the released file, not used downstream): projectors" in printed
    assert f"./finetuning_ecg.sh --data DATA --checkpoint {out}" in printed
    assert (
        load_model_config(str(out))["_name"] == "lfbt" and checkpoint_finetune_config(str(out)) == "ecg_ssl_classifier"
    )
    _rebuilds_strictly(out)

    emb = _embed(out, ludb_lfbt)
    x = _windows(ludb_lfbt)
    expected = torch.cat([reference_features(sd, x[:, [i]]) for i, sd in enumerate(backbones)], dim=1)
    assert emb.shape == (len(x), 512)
    np.testing.assert_allclose(emb, expected.numpy(), atol=TOL, rtol=0)

    again = cli("import", "--from", "lfbt", weights, "--out", out, check=False)  # the command's wiring
    assert again.returncode == 2 and again.stderr.strip() == f"error: {out}: exists; pass --force to overwrite it"


def test_wrong_files_fail_in_one_line(tmp_path):
    from physioclr_ext.runners.import_weights import WeightsImportError, import_weights
    from tests.modules.test_ecg_jepa_import import encoder_sd

    jepa = tmp_path / "jepa.pth"
    torch.save({"encoder": encoder_sd(), "epoch": 99}, jepa)
    text = tmp_path / "notes.pth"
    text.write_text("not weights")
    cases = [
        ("lfbt", jepa, f"{jepa}: not an LFBT encoder file of Aiwiscal/ECG_SSL_LFBT (no 'backbone_state_dict'"),
        ("st_mem", jepa, f"{jepa}: not a bakqui/ST-MEM checkpoint (no 'to_patch_embedding.2.weight')"),
        ("ecg_jepa", jepa, f"{jepa}: encoder width 64 is not a published size: give its number of attention heads"),
        ("lfbt", text, f"{text}: not a PyTorch weights file (neither a torch.save archive nor a pickle)"),
        ("lfbt", tmp_path / "missing.pth", "missing.pth: no such file; pass the released weights file"),
        ("lfbt", tmp_path, f"{tmp_path}: is a directory"),
    ]
    for source, path, message in cases:
        with pytest.raises(WeightsImportError) as info:
            import_weights(source, str(path), str(tmp_path / "x.pt"))
        assert message in str(info.value) and "\n" not in str(info.value)
    assert not (tmp_path / "x.pt").exists()


def test_st_mem_and_ecg_jepa_checkpoints_rebuild_and_embed_as_converted(tmp_path):
    from physioclr_ext.modules.ecg_jepa import ECGJEPA
    from physioclr_ext.modules.ecg_jepa_import import convert_original_state_dict as jepa_convert
    from physioclr_ext.modules.ecg_jepa_import import original_config as jepa_config
    from physioclr_ext.runners.import_weights import import_weights
    from tests.modules.test_ecg_jepa_import import encoder_sd
    from tests.modules.test_st_mem_faithful import original_full_sd, ref_features

    st_mem = tmp_path / "st_mem_full.pth"
    sd = original_full_sd()
    torch.save({"model": sd, "epoch": 799}, st_mem)
    result = import_weights("st_mem", str(st_mem), str(tmp_path / "st_mem.pt"))
    assert result.model_name == "st_mem" and result.config_name == "st_mem_vit_s" and result.initialised == []
    _rebuilds_strictly(tmp_path / "st_mem.pt")
    model = _loaded(tmp_path / "st_mem.pt")
    x = torch.randn(2, 12, 2250, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        encoder = {k[len("encoder.") :]: v for k, v in sd.items() if k.startswith("encoder.")}
        torch.testing.assert_close(model.net.embedding(x), ref_features(encoder, x), atol=TOL, rtol=0)

    jepa = tmp_path / "multiblock_epoch100.pth"
    released = {"encoder": encoder_sd(), "epoch": 99}
    torch.save(released, jepa)
    result = import_weights("ecg_jepa", str(jepa), str(tmp_path / "jepa.pt"), heads=4, predictor_heads=2)
    assert result.initialised == ["predictor"] and result.config_name == "ecg_jepa_small"
    _rebuilds_strictly(tmp_path / "jepa.pt")
    model = _loaded(tmp_path / "jepa.pt")
    reference = ECGJEPA(jepa_config(released, heads=4)).eval()
    reference.load_state_dict(jepa_convert(released), strict=False)
    x = torch.randn(2, 8, 2500, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        torch.testing.assert_close(model.extract_embedding(x), reference.representation(x), atol=TOL, rtol=0)
    cfg = torch.load(tmp_path / "jepa.pt", map_location="cpu", weights_only=False)["cfg"]
    assert cfg["model"]["ema_total_updates"] == cfg["optimization"]["max_update"] > 0  # the run's, not 0


def _loaded(checkpoint: Path):
    from fairseq_signals.models import build_model
    from fairseq_signals.utils import checkpoint_utils
    from omegaconf import OmegaConf

    state = checkpoint_utils.load_checkpoint_to_cpu(str(checkpoint))
    model = build_model(OmegaConf.create(state["cfg"]["model"]), None)
    model.load_state_dict(state["model"], strict=True)
    return model.eval()


@pytest.mark.skipif(
    not CHECKOUT, reason="set PHYSIOCLR_LFBT_CHECKOUT to a checkout of Aiwiscal/ECG_SSL_LFBT (with its checkpoint/)"
)
def test_released_lfbt_weights_equal_the_original_on_real_records(ludb_lfbt, tmp_path):
    from tests.modules.test_lfbt_import import _original_features, _released_files, original_code

    files = _released_files()
    if not files:
        pytest.skip(f"no released weights in {CHECKOUT}/checkpoint (set PHYSIOCLR_LFBT_WEIGHTS)")
    x = _windows(ludb_lfbt)
    for path in files:
        out = tmp_path / (path.stem + ".pt")
        cli("import", "--from", "lfbt", path, "--out", out, "--data", ludb_lfbt)
        emb = _embed(out, ludb_lfbt)
        with original_code(CHECKOUT):
            nets = [n.eval() for n in torch.load(path, map_location="cpu", weights_only=False)["backbone_state_dict"]]
        theirs = torch.cat([_original_features(net, x[:, [i]]) for i, net in enumerate(nets)], dim=1)
        np.testing.assert_allclose(emb, theirs.numpy(), atol=TOL, rtol=0)
        assert emb.std(axis=0).mean() > 1e-3


@pytest.mark.slow  # fine-tuning through the script: about a minute on 2 shared cores
def test_finetune_from_an_imported_checkpoint(ludb_lfbt, tmp_path):
    from tests.modules.test_lfbt_import import original_backbone_sd

    weights = tmp_path / "encoder_group.pth"
    torch.save({"backbone_state_dict": [original_backbone_sd(s) for s in range(8)]}, weights)
    ckpt = tmp_path / "lfbt.pt"
    cli("import", "--from", "lfbt", weights, "--out", ckpt)
    out = tmp_path / "ft"
    run(
        [
            "bash", str(REPO / "finetuning_ecg.sh"), "--tiny", "--data", str(ludb_lfbt), "--checkpoint", str(ckpt),
            "--out", str(out), "--", "task.sample_rate=500", "task.leads_to_load='[0,1,2,3,4,5,6,7]'",
            "optimization.max_update=2", "dataset.batch_size=4",
        ]
    )  # fmt: skip
    assert (out / "checkpoint_last.pt").exists() or any(out.rglob("checkpoint_last.pt"))
