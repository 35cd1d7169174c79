"""Factorised CroPA attention (physioclr_ext.modules.cropa_attention) against the dense masked attention, alone
and inside the ECG-JEPA encoder (full input, visible columns, lead subsets, hybrid 19-row tables)."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
import torch
import torch.nn.functional as F

from physioclr_ext.modules.cropa_attention import (
    _neighbourhood_attention,
    cropa_attention,
    dense_cropa_attention,
    grid_cropa_mask,
)
from physioclr_ext.modules.ecg_jepa import ECGJEPA, CroPAEncoder, ECGJEPAConfig, cropa_mask

TOL = dict(rtol=1e-5, atol=1e-5)


def qkv(shape: tuple[int, int, int, int, int], seed: int, dtype: torch.dtype = torch.float32):
    batch, heads, c, p, d = shape
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(batch, heads, c * p, d, generator=g, dtype=dtype).requires_grad_() for _ in range(3)]


SHAPES = [(1, 1, 1, 1, 4), (2, 2, 1, 7, 8), (2, 3, 5, 1, 8), (2, 2, 3, 4, 16), (1, 4, 8, 50, 8), (2, 2, 19, 6, 4)]


@pytest.mark.parametrize("fn", [cropa_attention, _neighbourhood_attention], ids=["public", "always_factorised"])
@pytest.mark.parametrize("shape", SHAPES)
def test_forward_and_gradients_equal_dense_masked_attention(shape, fn):
    """``_neighbourhood_attention`` is the factorised path even where ``cropa_attention`` hands c = 1 or p = 1
    to plain SDPA."""
    q, k, v = qkv(shape, seed=sum(shape))
    fact, dense = fn(q, k, v, shape[2]), dense_cropa_attention(q, k, v, shape[2])
    torch.testing.assert_close(fact, dense, **TOL)
    upstream = torch.randn_like(fact)
    g_fact = torch.autograd.grad(fact, (q, k, v), upstream)
    g_dense = torch.autograd.grad(dense, (q, k, v), upstream)
    for a, b in zip(g_fact, g_dense):
        assert torch.isfinite(a).all()
        torch.testing.assert_close(a, b, **TOL)


def test_equals_an_explicit_softmax_over_the_neighbourhood():
    """Hand-built reference: token (a, u) averages the values of {(a, v)} U {(b, u)} with softmax weights."""
    c, p, d = 3, 4, 5
    q, k, v = (t.detach() for t in qkv((1, 1, c, p, d), seed=7, dtype=torch.float64))
    out = cropa_attention(q, k, v, c)[0, 0]
    for a in range(c):
        for u in range(p):
            near = sorted({a * p + w for w in range(p)} | {b * p + u for b in range(c)})
            assert len(near) == c + p - 1
            weights = torch.softmax(k[0, 0, near] @ q[0, 0, a * p + u] / d**0.5, dim=0)
            torch.testing.assert_close(out[a * p + u], weights @ v[0, 0, near])


def test_a_token_outside_the_neighbourhood_has_no_influence():
    c, p = 3, 4
    q, k, v = (t.detach() for t in qkv((1, 1, c, p, 8), seed=3))
    base = cropa_attention(q, k, v, c)
    k2, v2 = k.clone(), v.clone()
    k2[..., 1 * p + 2, :] += 10.0  # token (1, 2)
    v2[..., 1 * p + 2, :] += 10.0
    moved = (cropa_attention(q, k2, v2, c) - base).abs().amax(-1)[0, 0].view(c, p)
    seen = grid_cropa_mask(c, p)[:, 1 * p + 2].view(c, p)
    assert (moved[~seen] == 0).all() and (moved[seen] > 0).all()


def test_scale_and_dropout_follow_sdpa():
    q, k, v = (t.detach() for t in qkv((2, 2, 3, 5, 8), seed=11))
    mask = grid_cropa_mask(3, 5)
    torch.testing.assert_close(
        cropa_attention(q, k, v, 3, scale=0.3), F.scaled_dot_product_attention(q, k, v, attn_mask=mask, scale=0.3)
    )
    dropped = cropa_attention(q, k, v, 3, dropout_p=0.5)
    assert not torch.allclose(dropped, cropa_attention(q, k, v, 3))


def test_rejects_tokens_that_are_not_a_grid():
    q = torch.randn(1, 1, 7, 4)
    with pytest.raises(ValueError, match="grid"):
        cropa_attention(q, q, q, 3)


def test_grid_mask_is_the_encoder_mask():
    assert torch.equal(grid_cropa_mask(4, 6), cropa_mask(4, 6))


# ------------------------------------------------------------------------------------------ in the encoder
def cfg(**kwargs) -> ECGJEPAConfig:
    args: dict[str, Any] = dict(
        embed_dim=32, depth=2, heads=2, predictor_embed_dim=16, predictor_depth=1, predictor_heads=2
    )
    args.update(kwargs)
    return ECGJEPAConfig(**args)


def twin(config: ECGJEPAConfig, cls=CroPAEncoder):
    """Dense and factorised modules with the same weights (the state dict loads strictly both ways)."""
    torch.manual_seed(0)
    dense = cls(dataclasses.replace(config, attention="dense"))
    fact = cls(dataclasses.replace(config, attention="factorised"))
    fact.load_state_dict(dense.state_dict(), strict=True)
    return dense, fact


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(),  # 8 leads x 50 patches
        dict(num_leads=1, seq_len=500),  # one lead: CroPA is full attention over time
        dict(seq_len=50),  # one patch: CroPA is full attention over leads
        dict(leads=[1, 4, 6], seq_len=1000),  # restrict_leads
        dict(num_leads=19, seq_len=500),  # hybrid feature channels
    ],
)
def test_encoder_outputs_and_gradients_match_dense(kwargs):
    config = cfg(drop_path=0.0, **kwargs)
    dense, fact = twin(config)
    channels = len(dense.leads)
    x = torch.randn(2, channels, config.seq_len, generator=torch.Generator().manual_seed(1))
    visible = torch.ones(dense.num_patches, dtype=torch.bool)
    visible[::3] = False
    if not visible.any():
        visible[0] = True
    for vis in (None, visible):
        out_d, out_f = dense(x, visible=vis), fact(x, visible=vis)
        torch.testing.assert_close(out_f, out_d, **TOL)
        upstream = torch.randn_like(out_d)
        grads_d = torch.autograd.grad(out_d, list(dense.parameters()), upstream)
        grads_f = torch.autograd.grad(out_f, list(fact.parameters()), upstream)
        for a, b in zip(grads_f, grads_d):
            torch.testing.assert_close(a, b, **TOL)


def test_whole_model_in_training_mode_matches_dense_with_drop_path():
    """Same weights, same global RNG state: drop path draws in the same order, so even training agrees."""
    config = cfg(drop_path=0.5)
    dense, fact = twin(config, cls=ECGJEPA)
    x = torch.randn(2, 8, 2500, generator=torch.Generator().manual_seed(2))
    mask = dense.sample_mask(torch.Generator().manual_seed(3))
    torch.manual_seed(5)
    out_d = dense.train()(x, mask=mask)
    torch.manual_seed(5)
    out_f = fact.train()(x, mask=mask)
    torch.testing.assert_close(out_f["pred"], out_d["pred"], **TOL)
    torch.testing.assert_close(out_f["target"], out_d["target"], **TOL)
    torch.testing.assert_close(fact.eval().representation(x), dense.eval().representation(x), **TOL)


def test_dense_is_the_default_and_factorised_swaps_only_the_attention():
    from physioclr_ext.modules.cropa_attention import CroPASelfAttention

    assert ECGJEPAConfig().attention == "dense"
    dense, fact = CroPAEncoder(cfg(attention="dense")), CroPAEncoder(cfg(attention="factorised"))
    assert CroPAEncoder(cfg()).attention == "dense"
    assert dense.state_dict().keys() == fact.state_dict().keys()
    assert not any(isinstance(m, CroPASelfAttention) for m in dense.modules())
    assert sum(isinstance(m, CroPASelfAttention) for m in fact.modules()) == 2  # one per block (depth 2)


def test_unknown_attention_is_rejected():
    with pytest.raises(ValueError, match="attention"):
        CroPAEncoder(cfg(attention="sparse"))
