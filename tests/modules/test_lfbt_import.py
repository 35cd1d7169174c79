"""LFBT's released encoders (Aiwiscal/ECG_SSL_LFBT) in :class:`LFBT` through :mod:`physioclr_ext.modules.lfbt_import`.

Always: state dicts keyed like the original ``VGG16`` (built here from its layer list) convert, and the converted
encoders compute an independent functional reference of VGG16 (conv, eval BatchNorm, ReLU, max-pool, mean);
wrong files are refused in one line. With ``PHYSIOCLR_LFBT_CHECKOUT`` (a checkout of the original code): the
original ``VGG16`` class at random weights gives the same features, and the released files
(``checkpoint/encoder_group_gamma_{0.6,0.8}.pth``, or ``PHYSIOCLR_LFBT_WEIGHTS``) give the same features as the
original on real LUDB records.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Dict, List

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from physioclr_ext.modules.lfbt import LFBT, LFBT_LEADS, VGG16_STAGES
from physioclr_ext.modules.lfbt_import import backbone_state_dicts, convert_original_state_dict, original_config

REPO = Path(__file__).resolve().parents[2]
BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"
CHECKOUT = os.environ.get("PHYSIOCLR_LFBT_CHECKOUT", "")
TOL = 1e-5


def original_backbone_sd(seed: int, alpha: float = 0.125) -> Dict[str, torch.Tensor]:
    """Random weights keyed like ``VGG16(ch_in=1, alpha).state_dict()`` with ``fc = nn.Identity()``."""
    g = torch.Generator().manual_seed(seed)
    sd: Dict[str, torch.Tensor] = {}
    previous = 1
    for stage, (width, blocks) in enumerate(VGG16_STAGES):
        c = int(width * alpha)
        for b in range(blocks):
            p = f"model.{stage}.{b}."
            sd[p + "0.weight"] = torch.randn(c, previous, 3, generator=g) / (3 * previous) ** 0.5
            sd[p + "0.bias"] = 0.1 * torch.randn(c, generator=g)
            sd[p + "1.weight"] = 1 + 0.2 * torch.randn(c, generator=g)
            sd[p + "1.bias"] = 0.2 * torch.randn(c, generator=g)
            sd[p + "1.running_mean"] = 0.3 * torch.randn(c, generator=g)
            sd[p + "1.running_var"] = 0.5 + torch.rand(c, generator=g)
            sd[p + "1.num_batches_tracked"] = torch.tensor(100)
            previous = c
    return sd


def reference_features(sd: Dict[str, torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    """VGG16's feature path in eval mode, from the original's keys: (B, 1, T) -> (B, 512 * alpha)."""
    for stage, (_, blocks) in enumerate(VGG16_STAGES):
        for b in range(blocks):
            p = f"model.{stage}.{b}."
            x = F.conv1d(x, sd[p + "0.weight"], sd[p + "0.bias"], padding=1)
            x = F.batch_norm(x, sd[p + "1.running_mean"], sd[p + "1.running_var"], sd[p + "1.weight"], sd[p + "1.bias"])
            x = F.relu(x)
        x = F.max_pool1d(x, 2, 2)
    return x.mean(dim=-1)


def _model(backbones, leads=None) -> LFBT:
    model = LFBT(original_config(backbones, leads=leads, projector=[16, 16])).eval()
    missing, unexpected = model.load_state_dict(convert_original_state_dict(backbones), strict=False)
    assert not unexpected and missing and all(k.startswith("projectors.") for k in missing)
    return model


def test_features_equal_the_reference_for_eight_leads():
    backbones = [original_backbone_sd(seed) for seed in range(8)]
    model = _model({"backbone_state_dict": backbones})
    assert model.leads == list(LFBT_LEADS) and model.cfg.alpha == 0.125
    x = torch.randn(3, 8, 1000, generator=torch.Generator().manual_seed(9))
    with torch.no_grad():
        ours = model.features(x)
    for i, sd in enumerate(backbones):
        torch.testing.assert_close(ours[:, i], reference_features(sd, x[:, [i]]), atol=TOL, rtol=0)
    # each lead its own encoder: a lead's weights moved to another lead would change its features
    assert (ours[:, 0] - reference_features(backbones[1], x[:, [0]])).abs().max() > 1e-2


def test_other_width_and_lead_names():
    backbones = [original_backbone_sd(seed, alpha=0.25) for seed in range(2)]
    cfg = original_config(backbones, leads=["I", "V5"])
    assert cfg.alpha == 0.25 and cfg.leads == ["I", "V5"] and not cfg.share_weights
    model = _model(backbones, leads=["I", "V5"])
    x = torch.randn(2, 2, 64, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        torch.testing.assert_close(
            model.features(x)[:, 1], reference_features(backbones[1], x[:, [1]]), atol=TOL, rtol=0
        )


def test_fc_is_dropped_and_module_prefix_removed():
    sd = original_backbone_sd(0)
    sd["fc.weight"] = torch.zeros(5, 64)
    prefixed = {f"module.{k}": v for k, v in sd.items()}
    out = convert_original_state_dict([prefixed])
    assert len(out) == 13 * 7 and not any("fc" in k for k in out)
    torch.testing.assert_close(out["encoders.0.features.3.0.weight"], sd["model.1.0.0.weight"])  # after pool 0


@pytest.mark.parametrize(
    "content, message",
    [
        ({"encoder": {}}, "no 'backbone_state_dict'"),
        ({"backbone_state_dict": []}, "one VGG16 per lead"),
        ([{"model.0.0.0.weight": torch.zeros(8, 12, 3)}], "one lead per encoder"),
        ([{"W_P.weight": torch.zeros(4, 50)}], "not an LFBT VGG16"),
        ([torch.zeros(3)], "not a VGG16 module or state dict"),
    ],
)
def test_wrong_files_are_refused_in_one_line(content, message):
    with pytest.raises(ValueError, match=message) as info:
        convert_original_state_dict(content)
    assert "\n" not in str(info.value)


def test_shape_and_key_errors():
    sd = original_backbone_sd(0)
    bad = dict(sd, **{"model.2.1.0.weight": torch.zeros(32, 16, 3)})
    with pytest.raises(ValueError, match=r"model\.2\.1\.0\.weight is \(32, 16, 3\), expected \(32, 32, 3\)"):
        convert_original_state_dict([bad])
    with pytest.raises(ValueError, match="keys of no LFBT VGG16 layer"):
        convert_original_state_dict([dict(sd, extra=torch.zeros(1))])
    with pytest.raises(ValueError, match="missing"):
        convert_original_state_dict([{k: v for k, v in sd.items() if k != "model.4.2.1.running_var"}])
    with pytest.raises(ValueError, match="different widths"):
        convert_original_state_dict([sd, original_backbone_sd(1, alpha=0.25)])
    with pytest.raises(ValueError, match="2 backbones but 8 leads"):
        original_config([sd, sd])


def test_modules_are_read_through_state_dict():
    class Holder:
        def __init__(self, sd):
            self._sd = sd

        def state_dict(self):
            return self._sd

    sd = original_backbone_sd(3)
    assert backbone_state_dicts({"backbone_state_dict": [Holder(sd)]})[0].keys() == sd.keys()


# ------------------------------------------------------------------------------ the original code
def original_code(checkout: str):
    """The checkout importable for a ``with`` block (``benchmarks/originals.py``, shared with the benchmarks)."""
    sys.path.insert(0, str(BENCHMARKS))
    try:
        from originals import original_code as shared
    finally:
        sys.path.remove(str(BENCHMARKS))
    return shared(checkout)


needs_checkout = pytest.mark.skipif(
    not CHECKOUT, reason="set PHYSIOCLR_LFBT_CHECKOUT to a checkout of Aiwiscal/ECG_SSL_LFBT to test against it"
)


def _original_vgg(seed: int):
    from torch import nn

    with original_code(CHECKOUT):
        from models.vgg_1d import VGG16  # the original class

        torch.manual_seed(seed)
        net = VGG16(ch_in=1, alpha=0.125)
    net.fc = nn.Identity()
    g = torch.Generator().manual_seed(seed + 100)
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, nn.BatchNorm1d):
                m.weight.add_(0.2 * torch.randn(m.weight.shape, generator=g))
                m.bias.add_(0.2 * torch.randn(m.bias.shape, generator=g))
                m.running_mean.copy_(0.3 * torch.randn(m.running_mean.shape, generator=g))
                m.running_var.copy_(0.5 + torch.rand(m.running_var.shape, generator=g))
    return net.eval()


def _original_features(net, x: torch.Tensor) -> torch.Tensor:
    """As the original's run_lp.py: the VGG16 children but fc, then squeeze."""
    from torch import nn

    with torch.no_grad():
        return nn.Sequential(*list(net.children())[:-1])(x).squeeze(-1)


@needs_checkout
def test_the_original_class_at_random_weights():
    nets = [_original_vgg(seed) for seed in range(8)]
    model = _model({"backbone_state_dict": nets})
    x = torch.randn(2, 8, 5000, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        ours = model.embedding(x)
    theirs = torch.cat([_original_features(net, x[:, [i]]) for i, net in enumerate(nets)], dim=1)
    assert theirs.shape == (2, 512)
    torch.testing.assert_close(ours, theirs, atol=TOL, rtol=0)


def _released_files() -> List[Path]:
    given = os.environ.get("PHYSIOCLR_LFBT_WEIGHTS")
    if given:
        return [Path(given)]
    return sorted(Path(CHECKOUT, "checkpoint").glob("encoder_group_gamma_*.pth"))


def ludb_windows(n: int = 4) -> torch.Tensor:
    """Real records: the first ``n`` bundled LUDB records, leads II, III, V1-V6, 10 s at 500 Hz, one z-score per
    ECG (the lfbt preset's normalisation): (n, 8, 5000)."""
    import wfdb

    folder = REPO / "data/sample/ludb"
    names = sorted({p.stem for p in folder.glob("*.hea")}, key=lambda s: int(s) if s.isdigit() else s)[:n]
    out = []
    for name in names:
        signal, fields = wfdb.rdsamp(str(folder / name))
        by_name = {s.lower(): i for i, s in enumerate(fields["sig_name"])}
        x = signal[:5000, [by_name[lead.lower()] for lead in LFBT_LEADS]].T
        out.append((x - x.mean()) / x.std())
    return torch.from_numpy(np.stack(out)).float()


@needs_checkout
def test_released_weights_match_the_original_on_real_records():
    files = _released_files()
    if not files:
        pytest.skip(f"no released weights in {CHECKOUT}/checkpoint (set PHYSIOCLR_LFBT_WEIGHTS)")
    x = ludb_windows()
    for path in files:
        with original_code(CHECKOUT):
            content = torch.load(path, map_location="cpu", weights_only=False)  # the original's pickled VGG16s
        nets = [net.eval() for net in content["backbone_state_dict"]]
        assert len(nets) == 8
        model = _model(content)
        with torch.no_grad():
            ours = model.embedding(x)
        theirs = torch.cat([_original_features(net, x[:, [i]]) for i, net in enumerate(nets)], dim=1)
        torch.testing.assert_close(ours, theirs, atol=TOL, rtol=0)
        assert ours.std(dim=0).mean() > 1e-3  # features that differ between records
