"""ST-MEM's original classes (bakqui/ST-MEM) at random weights, converted by
:mod:`physioclr_ext.modules.st_mem_import`, against :class:`STMEM`.

Runs with ``PHYSIOCLR_ST_MEM_CHECKOUT`` (a checkout of the original code, with ``einops`` importable); skipped with
that reason otherwise. The functional reference of the original's equations, which needs no checkout, is
``tests/modules/test_st_mem_faithful.py``.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
import torch

from physioclr_ext.modules.st_mem import STMEM
from physioclr_ext.modules.st_mem_import import convert_original_state_dict, original_config

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"
CHECKOUT = os.environ.get("PHYSIOCLR_ST_MEM_CHECKOUT", "")
TOL = 1e-5


def original_code(checkout: str):
    """The checkout importable for a ``with`` block (``benchmarks/originals.py``, shared with the benchmarks)."""
    sys.path.insert(0, str(BENCHMARKS))
    try:
        from originals import original_code as shared
    finally:
        sys.path.remove(str(BENCHMARKS))
    return shared(checkout)


@pytest.fixture(scope="module")
def original():
    if not CHECKOUT:
        pytest.skip("set PHYSIOCLR_ST_MEM_CHECKOUT to a checkout of bakqui/ST-MEM to test against its classes")
    with original_code(CHECKOUT):
        try:
            from models.encoder.st_mem_vit import ST_MEM_ViT
            from models.st_mem import ST_MEM
        except ImportError as exc:
            pytest.skip(f"the original ST-MEM code does not import here ({exc}); it needs einops")
    return ST_MEM, ST_MEM_ViT


def _perturbed(net: torch.nn.Module, seed: int) -> torch.nn.Module:
    """Random weights everywhere but the fixed position tables (LayerNorms too)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, param in net.named_parameters():
            if "pos_emb" not in name and "pos_embed" not in name:
                param.add_(0.05 * torch.randn(param.shape, generator=g))
    return net.eval()


def _full(original, seed=0, **sizes):
    ST_MEM, _ = original
    torch.manual_seed(seed)
    kwargs = dict(seq_len=2250, patch_size=75, num_leads=12, embed_dim=128, depth=2, num_heads=2)
    kwargs.update(decoder_embed_dim=64, decoder_depth=2, decoder_num_heads=1, norm_pix_loss=True)
    kwargs.update(sizes)
    return _perturbed(ST_MEM(**kwargs), seed)


def test_full_model_features_and_decoder(original):
    net = _full(original)
    sd = net.state_dict()
    ours = STMEM(original_config(sd)).eval()
    ours.load_state_dict(convert_original_state_dict(sd), strict=True)
    x = torch.randn(2, 12, 2250, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        torch.testing.assert_close(ours.embedding(x), net.encoder.forward_encoding(x), atol=TOL, rtol=0)
        # the decoder on the original's own mask: the same kept patches, in our ascending order
        torch.manual_seed(5)
        latent, mask, ids_restore = net.forward_encoder(x, 0.75)
        theirs = net.forward_decoder(latent, ids_restore)  # (B, C, N, P)
        keep = torch.stack([torch.stack([row.nonzero().flatten() for row in lead]) for lead in (mask == 0)])
        tokens = ours._tokens(x)
        dim = tokens.shape[-1]
        kept = tokens.gather(2, keep[..., None].expand(-1, -1, -1, dim))
        pred = ours.forward_decoder(ours.encoder(ours._add_seps(kept)), keep)
    # predictions reach |3|: float32 sums in another order differ by a few 1e-6 relative
    torch.testing.assert_close(pred, theirs, atol=TOL, rtol=TOL)
    assert (pred - theirs).abs().max() < 1e-4


def test_encoder_checkpoint_with_head(original):
    _, ST_MEM_ViT = original
    torch.manual_seed(3)
    vit = ST_MEM_ViT(seq_len=2250, patch_size=75, num_leads=12, num_classes=5, width=128, depth=2, mlp_dim=512, heads=2)
    full = _full(original, seed=3)
    vit.pos_embedding.data.copy_(full.encoder.pos_embedding.data)  # the fixed table the pretrained model has
    vit = _perturbed(vit, 4)
    released = {"model": vit.state_dict(), "epoch": 1}
    ours = STMEM(original_config(released)).eval()
    missing, unexpected = ours.load_state_dict(convert_original_state_dict(released), strict=False)
    assert not unexpected and all(k.startswith(("decoder", "mask_token")) for k in missing)
    x = torch.randn(2, 12, 2250, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        torch.testing.assert_close(ours.embedding(x), vit.forward_encoding(x), atol=TOL, rtol=0)
