"""Transformer pieces: sin-cos table against its formula, SDPA block against hand-written attention."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn as nn

from physioclr_ext.modules.transformer import Transformer, TransformerBlock, init_weights, sincos_1d


def test_sincos_matches_direct_formula() -> None:
    n, dim = 17, 12
    table = sincos_1d(n, dim).numpy()
    expected = np.zeros((n, dim))
    for pos in range(n):
        for i in range(dim // 2):
            omega = 1.0 / 10000 ** (2 * i / dim)
            expected[pos, i] = math.sin(pos * omega)
            expected[pos, dim // 2 + i] = math.cos(pos * omega)
    np.testing.assert_allclose(table, expected, atol=1e-6)
    assert table.dtype == np.float32


def test_sincos_rejects_odd_dim() -> None:
    with pytest.raises(ValueError):
        sincos_1d(4, 7)


def _reference_block(block: TransformerBlock, x: torch.Tensor) -> torch.Tensor:
    """The same block with attention written as softmax(Q K^T / sqrt(d)) V."""
    b, n, d = x.shape
    h = block.attn.heads
    y = block.norm1(x)
    q, k, v = block.attn.qkv(y).split(d, dim=-1)
    q, k, v = (t.reshape(b, n, h, d // h).transpose(1, 2) for t in (q, k, v))
    weights = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(d // h), dim=-1)
    attn = (weights @ v).transpose(1, 2).reshape(b, n, d)
    x = x + block.attn.proj(attn)
    mlp = block.mlp
    hidden = torch.nn.functional.gelu(mlp[0](block.norm2(x)))
    return x + mlp[3](hidden)


def test_block_equals_hand_written_attention() -> None:
    torch.manual_seed(0)
    block = TransformerBlock(32, heads=4, mlp_ratio=2.0).eval()
    for p in block.parameters():  # non-trivial LayerNorm affine and biases too
        nn.init.normal_(p, std=0.2)
    x = torch.randn(3, 9, 32)
    torch.testing.assert_close(block(x), _reference_block(block, x), atol=1e-5, rtol=1e-5)


def test_block_attn_mask_blocks_tokens() -> None:
    block = TransformerBlock(16, heads=2).eval()
    x = torch.randn(1, 5, 16)
    allowed = torch.ones(5, 5, dtype=torch.bool)
    allowed[:, 4] = False  # nobody attends to token 4
    y = block(x, attn_mask=allowed)
    x2 = x.clone()
    x2[0, 4] += 10.0
    y2 = block(x2, attn_mask=allowed)
    torch.testing.assert_close(y[0, :4], y2[0, :4])


def test_transformer_stack_drop_path_and_norm() -> None:
    model = Transformer(16, depth=3, heads=2, drop_path=0.2)
    assert [b.drop_path.p for b in model.blocks] == pytest.approx([0.0, 0.1, 0.2])
    out = model.eval()(torch.randn(2, 6, 16))
    assert out.shape == (2, 6, 16)
    torch.testing.assert_close(out.mean(-1), torch.zeros(2, 6), atol=1e-5, rtol=0)  # final LayerNorm (init 1/0)


def test_init_weights_is_mae_init() -> None:
    model = nn.Sequential(nn.Linear(8, 4), nn.LayerNorm(4))
    nn.init.normal_(model[0].bias)
    nn.init.normal_(model[1].weight)
    model.apply(init_weights)
    assert torch.equal(model[0].bias, torch.zeros(4))
    assert torch.equal(model[1].weight, torch.ones(4)) and torch.equal(model[1].bias, torch.zeros(4))
    bound = math.sqrt(6 / (8 + 4))
    assert model[0].weight.abs().max() <= bound
