"""The framework-free half of ``python -m physioclr_ext.runners.checkpoints import``: reading the original codes'
files (:func:`load_original_file`), the dispatch to the converters (:func:`convert`), and the command's one-line
errors. Writing the checkpoint needs fairseq-signals: ``tests/integration/test_import_weights.py``.
"""

from __future__ import annotations

import pickle
import sys
import textwrap

import pytest
import torch

from physioclr_ext.runners.checkpoints import main
from physioclr_ext.runners.import_weights import WeightsImportError, convert, load_original_file
from tests.modules.test_ecg_jepa_import import encoder_sd
from tests.modules.test_lfbt_import import original_backbone_sd, reference_features

# A stand-in of the original LFBT layout, written to a temporary ``models`` package so that torch.save pickles
# its classes by that name, as run_pt.py pickles ``models.vgg_1d.VGG16``; only the pickled names matter here.
VGG_MODULE = textwrap.dedent(
    """
    import torch.nn as nn

    def conv_layer(ch_in, ch_out):
        return nn.Sequential(nn.Conv1d(ch_in, ch_out, 3, padding=1), nn.BatchNorm1d(ch_out), nn.ReLU())

    class VGG16(nn.Module):
        def __init__(self, alpha=0.125):
            super().__init__()
            stages, layers, previous = ((64, 2), (128, 2), (256, 3), (512, 3), (512, 3)), [], 1
            for width, blocks in stages:
                c = int(width * alpha)
                block = [conv_layer(previous if i == 0 else c, c) for i in range(blocks)]
                layers.append(nn.Sequential(*block, nn.MaxPool1d(2, 2)))
                previous = c
            self.model = nn.Sequential(*layers, nn.AdaptiveAvgPool1d(1))
            self.fc = nn.Identity()
    """
)


@pytest.fixture
def pickled_lfbt_file(tmp_path, monkeypatch):
    """A file holding ``{"backbone_state_dict": [VGG16, ...]}`` of pickled ``models.vgg_1d.VGG16`` modules, and their
    state dicts; the ``models`` package is gone from the path and sys.modules when the test reads it."""
    package = tmp_path / "code" / "models"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "vgg_1d.py").write_text(VGG_MODULE)
    monkeypatch.syspath_prepend(str(tmp_path / "code"))
    for name in [n for n in sys.modules if n == "models" or n.startswith("models.")]:
        monkeypatch.delitem(sys.modules, name)
    from models.vgg_1d import VGG16  # the temporary package

    nets, states = [], []
    for seed in range(2):
        net = VGG16()
        net.load_state_dict(original_backbone_sd(seed))
        nets.append(net)
        states.append(original_backbone_sd(seed))
    path = tmp_path / "encoder_group_gamma_0.8.pth"
    torch.save({"backbone_state_dict": nets}, path)
    sys.path.remove(str(tmp_path / "code"))
    for name in [n for n in sys.modules if n == "models" or n.startswith("models.")]:
        del sys.modules[name]
    return path, states


def test_pickled_modules_read_without_the_original_code(pickled_lfbt_file):
    path, states = pickled_lfbt_file
    content = load_original_file(str(path))
    assert "models" not in sys.modules  # never imported, not even by name
    nets = content["backbone_state_dict"]
    assert len(nets) == 2 and all(isinstance(n, torch.nn.Module) for n in nets)
    for net, sd in zip(nets, states):
        got = net.state_dict()
        assert got.keys() == sd.keys() and all(torch.equal(got[k], sd[k]) for k in sd)
    converted = convert("lfbt", content, leads=["II", "V1"])
    assert converted.default_config == "lfbt" and converted.core_cfg.leads == ["II", "V1"]
    from physioclr_ext.modules.lfbt import LFBT

    model = LFBT(converted.core_cfg).eval()
    model.load_state_dict(converted.state, strict=False)
    x = torch.randn(2, 2, 500, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        torch.testing.assert_close(model.features(x)[:, 1], reference_features(states[1], x[:, [1]]), atol=1e-5, rtol=0)


def test_tensor_files_load_with_weights_only(tmp_path):
    path = tmp_path / "multiblock_epoch100.pth"
    torch.save({"encoder": encoder_sd(), "epoch": 99}, path)
    content = load_original_file(str(path))
    assert content["epoch"] == 99 and torch.equal(content["encoder"]["W_P.weight"], encoder_sd()["W_P.weight"])
    converted = convert("ecg_jepa", content, heads=4, predictor_heads=2)
    assert converted.default_config == "ecg_jepa_small" and converted.core_cfg.heads == 4
    assert converted.core_cfg.predictor_heads == 2
    assert convert("ecg_jepa", content, leads=["1", "6"], heads=4).core_cfg.leads == [1, 6]


@pytest.mark.parametrize(
    "source, content, message",
    [
        ("vq", {}, "--from vq: not one of st_mem, ecg_jepa, lfbt"),
        ("st_mem", {"encoder": {}}, "w.pth: not a bakqui/ST-MEM checkpoint (no 'to_patch_embedding.2.weight')"),
        ("st_mem", [1], "w.pth: a list, expected a state dict"),
        ("lfbt", {"model": {}}, "w.pth: not an LFBT encoder file of Aiwiscal/ECG_SSL_LFBT"),
        ("ecg_jepa", {"backbone_state_dict": []}, "w.pth: not an ECG-JEPA checkpoint"),
    ],
)
def test_convert_refuses_in_one_line(source, content, message):
    with pytest.raises(WeightsImportError) as info:
        convert(source, content, name="w.pth")
    assert str(info.value).startswith(message) and "\n" not in str(info.value)


def test_st_mem_takes_no_leads():
    with pytest.raises(WeightsImportError, match="--leads is not used for st_mem"):
        convert("st_mem", {}, leads=["I"])


@pytest.mark.parametrize("make", ["missing", "empty", "text", "directory"])
def test_unreadable_files_fail_in_one_line(tmp_path, make, capsys):
    path = tmp_path / "weights.pth"
    expected = {
        "missing": "no such file",
        "empty": "empty file",
        "text": "not a PyTorch weights file",
        "directory": "is a directory",
    }[make]
    if make == "empty":
        path.write_bytes(b"")
    elif make == "text":
        path.write_text("<html>not found</html>")
    elif make == "directory":
        path.mkdir()
    assert main(["import", "--from", "lfbt", str(path), "--out", str(tmp_path / "out.pt")]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {path}: {expected}") and err.count("\n") == 1
    assert not (tmp_path / "out.pt").exists()


def test_an_existing_output_is_kept(tmp_path, capsys):
    out = tmp_path / "out.pt"
    out.write_text("keep")
    assert main(["import", "--from", "lfbt", str(tmp_path / "w.pth"), "--out", str(out)]) == 2
    assert capsys.readouterr().err == f"error: {out}: exists; pass --force to overwrite it\n"
    assert out.read_text() == "keep"


def test_files_with_other_pickled_objects_load(tmp_path):
    """ST-MEM's save_model also pickles its metrics (NumPy scalars) and config: outside torch's weights-only
    allow-list, read by the second path."""
    import numpy as np

    path = tmp_path / "st_mem_full.pth"
    weights = {"encoder.norm.weight": torch.arange(4.0)}
    torch.save({"epoch": 799, "model": weights, "metrics": {"auroc": np.float64(0.9)}, "config": {"lr": 1e-3}}, path)
    with pytest.raises(pickle.UnpicklingError):  # the premise: torch's safe loader refuses this file
        torch.load(path, weights_only=True)
    content = load_original_file(str(path))
    assert torch.equal(content["model"]["encoder.norm.weight"], weights["encoder.norm.weight"])
    assert content["metrics"]["auroc"] == 0.9
