"""LFBT networks: the published sizes, leads kept apart unless asked, every lead count and length from
1 x 1000 to 12 x 5000 forward and backward, lead selection from 12-lead input, and the loss falling on
real records."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from physioclr_ext.augmentations import Compose, TwoViews
from physioclr_ext.losses.lead_fusion_barlow_twins import lead_fusion_barlow_twins_loss
from physioclr_ext.modules.lfbt import CANONICAL_LEADS, LFBT, GlobalBatchNorm1d, LFBTConfig, VGG1d, lfbt_projector

SMALL = {"projector": [16, 16]}


def test_vgg16_at_alpha_one_eighth_has_the_published_widths() -> None:
    vgg = VGG1d(alpha=0.125)
    convs = [m for m in vgg.modules() if isinstance(m, nn.Conv1d)]
    assert [c.out_channels for c in convs] == [8, 8, 16, 16, 32, 32, 32, 64, 64, 64, 64, 64, 64]
    assert all(c.kernel_size == (3,) and c.padding == (1,) for c in convs)
    assert sum(isinstance(m, nn.MaxPool1d) for m in vgg.modules()) == 5
    assert sum(isinstance(m, nn.BatchNorm1d) for m in vgg.modules()) == 13
    assert vgg(torch.randn(2, 1, 1000)).shape == (2, 64)
    with pytest.raises(ValueError, match="at least 32"):
        vgg(torch.randn(2, 1, 31))


def test_projector_is_barlow_twins_shaped() -> None:
    proj = lfbt_projector(64, [2048, 2048, 2048])
    kinds = [type(m) for m in proj]
    assert kinds == [nn.Linear, GlobalBatchNorm1d, nn.ReLU, nn.Linear, GlobalBatchNorm1d, nn.ReLU, nn.Linear]
    assert all(m.bias is None for m in proj if isinstance(m, nn.Linear))
    assert [m.out_features for m in proj if isinstance(m, nn.Linear)] == [2048, 2048, 2048]


def test_default_config_is_eight_leads_and_a_512_d_representation() -> None:
    assert LFBTConfig().projector == [2048, 2048, 2048] and LFBTConfig().alpha == 0.125
    net = LFBT(LFBTConfig(**SMALL))
    assert net.leads == ["II", "III", "V1", "V2", "V3", "V4", "V5", "V6"]
    assert len(net.encoders) == 8 and len(net.projectors) == 8 and net.embed_dim == 512


def _params(module: nn.Module) -> set[int]:
    return {id(p) for p in module.parameters()}


def test_per_lead_encoders_share_no_parameters_unless_asked() -> None:
    net = LFBT(LFBTConfig(leads=["II", "V1", "V5"], **SMALL))
    groups = [_params(e) for e in net.encoders] + [_params(p) for p in net.projectors]
    for i, a in enumerate(groups):
        for b in groups[i + 1 :]:
            assert not a & b
    # a lead's output depends on its own encoder only: the loss of lead 0 leaves the others without gradient
    x = torch.randn(4, 3, 256)
    z, h = net(x)
    (z[:, 0].pow(2).sum() + h[:, 0].sum()).backward()
    assert all(p.grad is not None for p in net.encoders[0].parameters())
    assert net.encoders[0].features[0][0].weight.grad.abs().sum() > 0
    others = [*net.encoders[1].parameters(), *net.encoders[2].parameters(), *net.projectors[2].parameters()]
    assert all(p.grad is None or not p.grad.any() for p in others)

    shared = LFBT(LFBTConfig(leads=["II", "V1", "V5"], share_weights=True, **SMALL))
    assert len(shared.encoders) == 1 and len(shared.projectors) == 3
    n_params = sum(p.numel() for p in net.encoders.parameters())
    assert sum(p.numel() for p in shared.encoders.parameters()) * 3 == n_params
    # one encoder: the same signal in two leads gives the same feature
    x = torch.randn(4, 1, 256).expand(4, 3, 256).contiguous()
    shared.eval()
    h = shared.features(x)
    torch.testing.assert_close(h[:, 0], h[:, 2])


@pytest.mark.parametrize(("n_leads", "length"), [(1, 1000), (2, 2500), (8, 1000), (12, 5000)])
def test_every_lead_count_and_length_runs_forward_and_backward(n_leads: int, length: int) -> None:
    leads = list(CANONICAL_LEADS[:n_leads])
    torch.manual_seed(0)
    net = LFBT(LFBTConfig(leads=leads, **SMALL))
    x = torch.randn(2, n_leads, length)
    z1, h = net(x)
    z2, _ = net(x + 0.1 * torch.randn_like(x))
    assert z1.shape == (2, n_leads, 16) and h.shape == (2, n_leads, 64)
    loss, logs = lead_fusion_barlow_twins_loss(z1, z2)
    loss.backward()
    assert torch.isfinite(loss) and all(p.grad is not None for p in net.parameters())
    assert net.embedding(x).shape == (2, 64 * n_leads)


def test_a_twelve_lead_input_is_reduced_to_the_configured_leads_by_name() -> None:
    net = LFBT(LFBTConfig(**SMALL)).eval()
    twelve = torch.randn(2, 12, 500)
    eight = twelve[:, [1, 2, 6, 7, 8, 9, 10, 11]]
    torch.testing.assert_close(net.embedding(twelve), net.embedding(eight))
    with pytest.raises(ValueError, match="8 leads"):
        net.embedding(torch.randn(2, 5, 500))


def test_global_batch_norm_is_batch_norm_outside_distributed_training() -> None:
    torch.manual_seed(0)
    ours, ref = GlobalBatchNorm1d(4), nn.BatchNorm1d(4)
    x = torch.randn(6, 4, 50)
    torch.testing.assert_close(ours(x), ref(x))
    torch.testing.assert_close(ours.running_var, ref.running_var)


REAL_LEADS = ("ii", "v1", "v5")


def _real_windows() -> torch.Tensor:
    """Leads II, V1, V5 of the bundled LUDB records, 4 s at 250 Hz (kept small: 2 shared CPU cores),
    z-scored per ECG."""
    import wfdb

    root = Path(__file__).resolve().parents[2] / "data/sample/ludb"
    records = sorted(p.with_suffix("") for p in root.glob("*.hea"))
    assert len(records) >= 6, root
    windows = []
    for path in records:
        signal, fields = wfdb.rdsamp(str(path))
        names = [n.lower() for n in fields["sig_name"]]
        x = np.stack([signal[:, names.index(lead)] for lead in REAL_LEADS])
        x = x[:, ::2][:, :1000]
        windows.append((x - x.mean()) / x.std())
    return torch.tensor(np.stack(windows), dtype=torch.float32)


@pytest.mark.slow  # about 40 s on 2 shared cores
def test_loss_falls_on_real_records() -> None:
    x = _real_windows()
    torch.manual_seed(0)
    net = LFBT(LFBTConfig(leads=[lead.upper() for lead in REAL_LEADS], projector=[64, 64]))
    views = TwoViews(
        Compose.from_config(
            [{"name": "random_resized_crop", "scale": [0.5, 1.0]}, {"name": "time_out", "scale": [0.0, 0.5]}]
        )
    )
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    gen = torch.Generator().manual_seed(0)
    losses = []
    for _ in range(200):
        v1, v2 = views(x, gen)
        loss = lead_fusion_barlow_twins_loss(net(v1)[0], net(v2)[0])[0]
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    first, last = np.mean(losses[:20]), np.mean(losses[-20:])
    assert last < 0.5 * first, (first, last)


def test_the_lfbt_preset_feeds_the_default_model() -> None:
    """Preset `lfbt`: the model's 8 leads in its order, one z-score per ECG, 500 Hz x 10 s (the package's
    choice, stated in the preset's help, since the original gives no rate or length)."""
    from physioclr_ext.preprocess.config import PRESET_HELP, PRESETS, PreprocessConfig

    preset = PRESETS["lfbt"]
    assert list(preset["leads"]) == LFBTConfig().leads
    assert preset["normalize"] == "per_sample" and preset["apply_filter"] is False
    assert preset["sample_rate"] * preset["window_seconds"] == 5000
    assert "does not state" in PRESET_HELP["lfbt"]
    assert PreprocessConfig.from_preset("lfbt", input="in", output="out").leads == tuple(LFBTConfig().leads)
