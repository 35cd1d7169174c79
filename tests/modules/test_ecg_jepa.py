"""ECG-JEPA core (physioclr_ext.modules.ecg_jepa): CroPA mask, time-column masks, positions, per-lead
predictor, EMA target, representation, and a loss that falls on real 8-lead records (LUDB sample)."""

from __future__ import annotations

import copy
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from physioclr_ext.losses.jepa import jepa_loss
from physioclr_ext.modules.ecg_jepa import (
    ECGJEPA,
    CroPAEncoder,
    ECGJEPAConfig,
    block_time_mask,
    cropa_mask,
    ema_momentum,
    ema_update,
    random_time_mask,
    sample_time_mask,
    sincos_2d,
)
from physioclr_ext.modules.transformer import sincos_1d

LUDB = Path(__file__).resolve().parents[2] / "data" / "sample" / "ludb"
P = 50  # 2500 / 50 time columns


def cfg(**kwargs) -> ECGJEPAConfig:
    args = dict(
        embed_dim=32, depth=2, heads=2, predictor_embed_dim=16, predictor_depth=2, predictor_heads=2, drop_path=0.0
    )
    args.update(kwargs)
    return ECGJEPAConfig(**args)


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


# ------------------------------------------------------------------------------------------ CroPA
def reference_cropa(c: int, p: int) -> torch.Tensor:
    """The original's construction: lead blocks on the diagonal plus strided same-time entries, clamped."""
    size = c * p
    rows, cols = torch.zeros(size, size), torch.zeros(size, size)
    for i in range(c):
        rows[i * p : (i + 1) * p, i * p : (i + 1) * p] = 1
    for j in range(p):
        cols[j::p, j::p] = 1
    return (rows + cols).clamp(max=1).bool()


@pytest.mark.parametrize("c,p", [(1, 1), (1, 5), (3, 1), (2, 3), (4, 5), (8, 50)])
def test_cropa_mask_equals_the_direct_construction(c, p):
    assert torch.equal(cropa_mask(c, p), reference_cropa(c, p))


def test_cropa_mask_blocks_exactly_the_pairs_of_other_lead_and_other_time():
    c, p = 3, 4
    mask = cropa_mask(c, p)
    for i in range(c * p):
        for j in range(c * p):
            (a, u), (b, v) = divmod(i, p), divmod(j, p)
            assert bool(mask[i, j]) == (a == b or u == v), (a, u, b, v)
    # each token sees its lead (p) plus the same time step of the other leads (c - 1)
    assert (mask.sum(1) == p + c - 1).all()


def test_restricting_leads_slices_the_mask_and_the_positions():
    leads = [1, 4, 6]
    full = cropa_mask(8, P).view(8, P, 8, P)[leads][:, :, leads].reshape(len(leads) * P, -1)
    assert torch.equal(full, cropa_mask(len(leads), P))
    enc = CroPAEncoder(cfg(leads=leads))
    table = sincos_2d(8, P, 32).view(8, P, 32)
    torch.testing.assert_close(enc.restricted_pos_embed(), table[leads].reshape(-1, 32))
    assert enc(torch.randn(2, 3, 2500)).shape == (2, 3 * P, 32)
    with pytest.raises(ValueError, match="ecg_jepa"):
        enc(torch.randn(2, 8, 2500))


def test_one_block_attends_only_within_lead_or_time_step():
    """With one block, output token (a, u) changes when input patch (b, v) changes iff a == b or u == v."""
    torch.manual_seed(0)
    enc = CroPAEncoder(cfg(depth=1, leads=None, num_leads=3, seq_len=200)).eval()  # 3 leads x 4 patches
    x = torch.randn(1, 3, 200)
    base = enc(x)
    b, v = 1, 2
    y = x.clone()
    y[0, b, v * 50 : (v + 1) * 50] += 1.0
    changed = (enc(y) - base).abs().amax(-1)[0] > 1e-6
    expected = cropa_mask(3, 4)[:, b * 4 + v]
    assert torch.equal(changed, expected)


# ------------------------------------------------------------------------------------------ positions, init
def test_sincos_2d_codes_time_in_the_first_half_and_lead_in_the_second():
    table = sincos_2d(8, P, 64)
    t1, t2 = sincos_1d(P, 32), sincos_1d(8, 32)
    for a, u in [(0, 0), (3, 17), (7, 49)]:
        torch.testing.assert_close(table[a * P + u], torch.cat([t1[u], t2[a]]))
    assert len({tuple(r.tolist()) for r in table}) == 8 * P


def test_positions_are_added_before_every_block():
    enc = CroPAEncoder(cfg(depth=3)).eval()
    inputs, outputs = [], []
    for block in enc.blocks:
        block.register_forward_pre_hook(lambda m, args: inputs.append(args[0].detach()))
        block.register_forward_hook(lambda m, args, out: outputs.append(out.detach()))
    x = torch.randn(2, 8, 2500)
    enc(x)
    patches = x.reshape(2, 8 * P, 50)
    torch.testing.assert_close(inputs[0], enc.embed(patches).detach() + enc.pos_embed)
    for k in (1, 2):
        torch.testing.assert_close(inputs[k], outputs[k - 1] + enc.pos_embed)


def test_original_init_and_no_qkv_bias():
    torch.manual_seed(0)
    enc = CroPAEncoder(cfg(embed_dim=256, depth=4, heads=4))
    for layer, block in enumerate(enc.blocks, start=1):
        assert block.attn.qkv.bias is None
        assert abs(float(block.attn.qkv.weight.detach().std()) - 0.02) < 0.002
        for w in (block.attn.proj.weight.detach(), block.mlp[3].weight.detach()):
            assert abs(float(w.std()) - 0.02 / math.sqrt(2 * layer)) < 0.002 / math.sqrt(layer)
        assert float(block.attn.proj.bias.detach().abs().max()) == 0.0
    assert enc.blocks[-1].drop_path.p == pytest.approx(0.0)
    assert [b.drop_path.p for b in CroPAEncoder(cfg(depth=3, drop_path=0.1)).blocks] == pytest.approx([0, 0.05, 0.1])


# ------------------------------------------------------------------------------------------ masking
def test_random_mask_ratio_is_within_the_published_range():
    counts = [int(random_time_mask(P, (0.6, 0.7), gen(s)).sum()) for s in range(300)]
    assert min(counts) >= 30 and max(counts) <= 34 and len(set(counts)) == 5
    assert torch.equal(random_time_mask(P, (0.6, 0.7), gen(7)), random_time_mask(P, (0.6, 0.7), gen(7)))


def _runs(mask: torch.Tensor) -> list[tuple[int, int]]:
    """(start, length) of the runs of True."""
    runs, start = [], None
    for i, m in enumerate(mask.tolist() + [False]):
        if m and start is None:
            start = i
        elif not m and start is not None:
            runs.append((start, i - start))
            start = None
    return runs


def test_block_lengths_are_within_the_published_range():
    lengths, ends = [], []
    for s in range(300):
        ((start, length),) = _runs(block_time_mask(P, (0.175, 0.225), num_blocks=1, generator=gen(s)))
        lengths.append(length)
        ends.append(start + length)
    assert min(lengths) == 8 and max(lengths) == 11  # int(50 * U(0.175, 0.225))
    assert max(ends) <= P - 1  # the original's start ~ randperm(p - len)[0] never reaches the last column
    for s in range(100):
        mask = block_time_mask(P, (0.175, 0.225), num_blocks=4, generator=gen(s))
        runs = _runs(mask)
        assert 1 <= len(runs) <= 4 and all(length >= 8 for _, length in runs)
        assert 8 <= int(mask.sum()) <= 44


def test_never_every_column_masked():
    for s in range(50):
        assert not bool(sample_time_mask("block", 4, (0.9, 0.95), num_blocks=4, generator=gen(s)).all())
    with pytest.raises(ValueError, match="mask_type"):
        sample_time_mask("tube", P, (0.6, 0.7))


def test_masked_columns_are_shared_by_every_lead_and_sample():
    """Predictions depend on the visible columns only, for every lead of every sample: changing a masked
    column anywhere leaves them unchanged, changing a visible column of one lead of one sample does not."""
    torch.manual_seed(0)
    model = ECGJEPA(cfg()).eval()
    x = torch.randn(3, 8, 2500)
    out = model(x, generator=gen(3))
    mask = out["mask"]
    assert mask.shape == (P,) and out["pred"].shape == (3, 8, int(mask.sum()), 32)
    masked_col, visible_col = int(mask.nonzero()[0]), int((~mask).nonzero()[0])
    y = x.clone()
    y[:, :, masked_col * 50 : (masked_col + 1) * 50] = torch.randn(3, 8, 50)
    torch.testing.assert_close(model(y, mask=mask)["pred"], out["pred"])
    z = x.clone()
    z[2, 5, visible_col * 50 : (visible_col + 1) * 50] += 1.0
    assert not torch.allclose(model(z, mask=mask)["pred"], out["pred"])
    # targets: the full target-encoder output at exactly the masked columns, for every lead and sample
    full = model.target_encoder(x).view(3, 8, P, 32)
    torch.testing.assert_close(out["target"], full[:, :, mask])


# ------------------------------------------------------------------------------------------ predictor
def test_predictor_of_one_lead_ignores_the_other_leads():
    torch.manual_seed(0)
    model = ECGJEPA(cfg()).eval()
    mask = block_time_mask(P, generator=gen(1))
    n_vis = int((~mask).sum())
    context = torch.randn(2, 8 * n_vis, 32)
    base = model.predictor(context, mask)
    changed = context.clone().view(2, 8, n_vis, 32)
    changed[:, 2] += torch.randn(2, n_vis, 32)
    pred = model.predictor(changed.view(2, -1, 32), mask)
    others = [c for c in range(8) if c != 2]
    torch.testing.assert_close(pred[:, others], base[:, others])
    assert not torch.allclose(pred[:, 2], base[:, 2])


# ------------------------------------------------------------------------------------------ EMA
def test_ema_update_matches_the_formula():
    torch.manual_seed(0)
    online = nn.Sequential(nn.Linear(4, 3), nn.LayerNorm(3))
    target = copy.deepcopy(online)
    with torch.no_grad():
        for p in online.parameters():
            p.add_(torch.randn_like(p))
    before = [p.clone() for p in target.parameters()]
    ema_update(target, online, 0.9)
    for t, b, o in zip(target.parameters(), before, online.parameters()):
        torch.testing.assert_close(t, 0.9 * b + 0.1 * o)
    assert ema_momentum(0, 1000) == 0.996 and ema_momentum(500, 1000) == pytest.approx(0.998)
    assert ema_momentum(1000, 1000) == 1.0 and ema_momentum(5000, 1000) == 1.0
    with pytest.raises(ValueError):
        ema_momentum(0, 0)


def test_target_encoder_gets_no_gradient_and_follows_the_ema():
    torch.manual_seed(0)
    model = ECGJEPA(cfg())
    assert all(not p.requires_grad for p in model.target_encoder.parameters())
    for t, o in zip(model.target_encoder.parameters(), model.encoder.parameters()):
        assert torch.equal(t, o)  # a copy at the start
    out = model(torch.randn(2, 8, 2500), generator=gen(0))
    loss, _ = jepa_loss(out["pred"], out["target"])
    loss.backward()
    assert all(p.grad is None for p in model.target_encoder.parameters())
    assert all(p.grad is not None for p in model.encoder.parameters())
    with torch.no_grad():
        for p in model.encoder.parameters():
            p.add_(1.0)
    old = [p.clone() for p in model.target_encoder.parameters()]
    model.update_target(0.996)
    for t, b, o in zip(model.target_encoder.parameters(), old, model.encoder.parameters()):
        torch.testing.assert_close(t, 0.996 * b + 0.004 * o)


# ------------------------------------------------------------------------------------------ representation
def test_changing_any_input_patch_changes_the_representation():
    torch.manual_seed(0)
    model = ECGJEPA(cfg(depth=1)).eval()
    x = torch.randn(1, 8, 2500)
    with torch.no_grad():
        base = model.representation(x)
        copies = x.repeat(8 * P, 1, 1).view(8 * P, 8, P, 50)
        for i in range(8 * P):
            copies[i, i // P, i % P] += 0.5
        reps = model.representation(copies.view(8 * P, 8, 2500))
    assert base.shape == (1, 32)
    assert ((reps - base).abs().amax(-1) > 1e-6).all()


def test_representation_is_the_mean_of_the_layer_normed_context_tokens():
    model = ECGJEPA(cfg()).eval()
    x = torch.randn(2, 8, 2500)
    tokens = model.encoder(x)
    torch.testing.assert_close(model.representation(x), tokens.mean(1))
    torch.testing.assert_close(tokens.mean(-1), torch.zeros(2, 8 * P), atol=1e-5, rtol=0)


# ------------------------------------------------------------------------------------------ real data
def _ludb_eight_leads() -> torch.Tensor:
    """The 8 bundled LUDB records as ECG-JEPA reads them: I, II, V1-V6, 500 -> 250 Hz (scipy.signal.resample,
    as the original), raw mV: (8, 8, 2500)."""
    wfdb = pytest.importorskip("wfdb")
    from scipy.signal import resample

    records = sorted({p.stem for p in LUDB.glob("*.hea")}, key=int)
    signals = []
    for record in records:
        raw = wfdb.rdrecord(str(LUDB / record)).p_signal.T[[0, 1, 6, 7, 8, 9, 10, 11], :5000]
        signals.append(resample(raw, 2500, axis=1))
    return torch.from_numpy(np.stack(signals)).float()


def test_loss_falls_on_real_ludb_records():
    """40 AdamW steps with EMA of a small ECG-JEPA on the 8 LUDB records: the loss falls (measured 0.44 -> 0.23)
    while the targets keep their spread across tokens (per-dimension std ~0.4, not 0)."""
    torch.manual_seed(0)
    x = _ludb_eight_leads()
    model = ECGJEPA(cfg(depth=2, drop_path=0.0, ema_total_updates=40))
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.05)
    g, losses, target_std = gen(0), [], []
    for step in range(40):
        out = model(x, generator=g)
        loss, logs = jepa_loss(out["pred"], out["target"])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        model.update_target(ema_momentum(step, 40))
        losses.append(logs["loss"])
        target_std.append(logs["target_std"])
    first, last = np.mean(losses[:5]), np.mean(losses[-5:])
    print(f"jepa loss {first:.3f} -> {last:.3f}, target std {target_std[0]:.3f} -> {target_std[-1]:.3f}")
    assert np.isfinite(last) and last < 0.8 * first
    assert min(target_std) > 0.2


def test_any_channel_count_is_treated_as_leads():
    """c = 8 + 11 hybrid channels: every channel is a lead row of the positional table and of CroPA."""
    model = ECGJEPA(cfg(num_leads=19)).eval()
    out = model(torch.randn(2, 19, 2500), generator=gen(0))
    assert out["pred"].shape == out["target"].shape == (2, 19, int(out["mask"].sum()), 32)
    assert model.encoder.restricted_pos_embed().shape == (19 * P, 32)
    assert model.representation(torch.randn(2, 19, 2500)).shape == (2, 32)


def test_context_is_the_visible_token_mean_or_with_regularise_on_full_the_representation_with_gradients():
    x = torch.randn(3, 8, 2500)
    mask = torch.zeros(P, dtype=torch.bool)
    mask[10:40] = True
    visible = ECGJEPA(cfg(drop_path=0.0)).eval()
    out = visible(x, mask=mask)
    torch.testing.assert_close(out["context"], visible.encoder(x, visible=~mask).mean(dim=1))
    full = ECGJEPA(cfg(regularise_on="full")).eval()
    full.load_state_dict(visible.state_dict())
    context = full(x, mask=mask)["context"]
    torch.testing.assert_close(context, full.representation(x))
    assert not torch.allclose(context, out["context"])  # the whole window, not the visible columns only
    context.sum().backward()
    assert full.encoder.embed.weight.grad is not None
    assert all(p.grad is None for p in full.target_encoder.parameters())


def test_regularise_on_tokens_gives_every_visible_token_its_own_row():
    x = torch.randn(3, 8, 2500)
    mask = torch.zeros(P, dtype=torch.bool)
    mask[10:40] = True
    visible = ECGJEPA(cfg(drop_path=0.0)).eval()
    tokens = ECGJEPA(cfg(drop_path=0.0, regularise_on="tokens")).eval()
    tokens.load_state_dict(visible.state_dict())
    rows = tokens(x, mask=mask)["context"]
    assert rows.shape == (3 * 8 * (P - 30), 32)
    encoded = visible.encoder(x, visible=~mask)  # (3, 8 * (P - 30), 32), lead-major per sample
    torch.testing.assert_close(rows[: 8 * (P - 30)], encoded[0])
    torch.testing.assert_close(rows.reshape(3, -1, 32).mean(dim=1), visible(x, mask=mask)["context"])


def test_with_context_false_leaves_out_the_context_and_the_extra_pass_of_full(monkeypatch):
    x = torch.randn(2, 8, 2500)
    model = ECGJEPA(cfg(regularise_on="full")).eval()
    calls = []
    monkeypatch.setattr(model, "representation", lambda x: calls.append(x) or torch.zeros(x.shape[0], 32))
    with_ctx = model(x, generator=gen(0))
    without = model(x, generator=gen(0), with_context=False)
    assert "context" in with_ctx and "context" not in without and len(calls) == 1
    torch.testing.assert_close(with_ctx["pred"], without["pred"])


def test_regularise_on_refuses_an_unknown_view():
    with pytest.raises(ValueError, match="regularise_on must be one of"):
        ECGJEPA(cfg(regularise_on="masked"))
