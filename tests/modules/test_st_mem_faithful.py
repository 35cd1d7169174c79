"""ST-MEM against the original's equations (bakqui/ST-MEM), given the same weights.

The reference below is written here, functionally, from the original's formulas and on its own key names
(``ST_MEM`` / ``ST_MEM_ViT`` state dicts): the position table (zero SEP rows, patch ``j`` at ``sincos(j)``, built
in float32 as the original does), SEPs and lead embeddings, pre-norm blocks with 64-wide heads and LayerNorm
eps 1e-5, the downstream pooling (mean of the non-SEP block outputs, then the encoder's final norm), the
lead-wise decoder (blocks eps 1e-5, final norm eps 1e-6) and ``norm_pix_loss`` with the unbiased variance.
The state dicts are random, shaped and keyed like the original classes'; they reach :class:`STMEM` only
through :func:`convert_original_state_dict`.
"""

from __future__ import annotations

from typing import Dict, Optional

import pytest
import torch
import torch.nn.functional as F

from physioclr_ext.losses.masked_reconstruction import masked_reconstruction_loss
from physioclr_ext.modules.st_mem import STMEM, STMEMConfig, position_table
from physioclr_ext.modules.st_mem_import import convert_original_state_dict, original_config

# A small configuration the original can express: 64-wide heads (D = 64 * heads). The decoder has one
# 64-wide head, where the original drops the output projection.
SIZES = dict(num_leads=12, seq_len=2250, patch_size=75, dim=128, depth=2, heads=2, dec_dim=64, dec_depth=2, mlp=4)
N = SIZES["seq_len"] // SIZES["patch_size"]
TOL = 1e-5


# ------------------------------------------------------------------------------ the original's formulas
def original_positions(dim: int, n: int) -> torch.Tensor:
    """``(1, n + 2, dim)``: float32 ``omega_i = 1 / 10000^(i / (dim / 2))``, rows ``[sin(j w), cos(j w)]`` for
    patch ``j = 0..n-1``, and a zero row before and after (the SEP slots)."""
    omega = 1.0 / 10000.0 ** (torch.arange(dim // 2, dtype=torch.float32) / (dim / 2.0))
    angles = torch.arange(n, dtype=torch.float32)[:, None] * omega[None, :]
    table = torch.cat([angles.sin(), angles.cos()], dim=1)
    return torch.cat([torch.zeros(1, dim), table, torch.zeros(1, dim)])[None]


def _block_params(g: torch.Generator, prefix: str, dim: int, heads: int, mlp: int) -> Dict[str, torch.Tensor]:
    inner = heads * 64
    sd = {
        f"{prefix}attn.norm.weight": 1 + 0.1 * torch.randn(dim, generator=g),
        f"{prefix}attn.norm.bias": 0.1 * torch.randn(dim, generator=g),
        f"{prefix}attn.fn.to_qkv.weight": torch.randn(3 * inner, dim, generator=g) / dim**0.5,
        f"{prefix}attn.fn.to_qkv.bias": 0.1 * torch.randn(3 * inner, generator=g),
        f"{prefix}ff.norm.weight": 1 + 0.1 * torch.randn(dim, generator=g),
        f"{prefix}ff.norm.bias": 0.1 * torch.randn(dim, generator=g),
        f"{prefix}ff.fn.net.0.weight": torch.randn(mlp * dim, dim, generator=g) / dim**0.5,
        f"{prefix}ff.fn.net.0.bias": 0.1 * torch.randn(mlp * dim, generator=g),
        f"{prefix}ff.fn.net.3.weight": torch.randn(dim, mlp * dim, generator=g) / (mlp * dim) ** 0.5,
        f"{prefix}ff.fn.net.3.bias": 0.1 * torch.randn(dim, generator=g),
    }
    if not (heads == 1 and inner == dim):  # the original keeps to_out only then
        sd[f"{prefix}attn.fn.to_out.0.weight"] = torch.randn(dim, inner, generator=g) / inner**0.5
        sd[f"{prefix}attn.fn.to_out.0.bias"] = 0.1 * torch.randn(dim, generator=g)
    return sd


def original_encoder_sd(seed: int = 0, head_classes: Optional[int] = None) -> Dict[str, torch.Tensor]:
    """Random weights keyed like ``ST_MEM_ViT.state_dict()``."""
    g = torch.Generator().manual_seed(seed)
    dim, p = SIZES["dim"], SIZES["patch_size"]
    sd = {
        "to_patch_embedding.1.weight": 1 + 0.1 * torch.randn(p, generator=g),
        "to_patch_embedding.1.bias": 0.1 * torch.randn(p, generator=g),
        "to_patch_embedding.2.weight": torch.randn(dim, p, generator=g) / p**0.5,
        "to_patch_embedding.2.bias": 0.1 * torch.randn(dim, generator=g),
        "to_patch_embedding.3.weight": 1 + 0.1 * torch.randn(dim, generator=g),
        "to_patch_embedding.3.bias": 0.1 * torch.randn(dim, generator=g),
        "pos_embedding": original_positions(dim, N),
        "sep_embedding": 0.5 * torch.randn(dim, generator=g),
    }
    for c in range(SIZES["num_leads"]):
        sd[f"lead_embeddings.{c}"] = 0.5 * torch.randn(dim, generator=g)
    for i in range(SIZES["depth"]):
        sd.update(_block_params(g, f"block{i}.", dim, SIZES["heads"], SIZES["mlp"]))
    sd["norm.weight"] = 1 + 0.1 * torch.randn(dim, generator=g)
    sd["norm.bias"] = 0.1 * torch.randn(dim, generator=g)
    if head_classes:
        sd["head.weight"] = torch.randn(head_classes, dim, generator=g)
        sd["head.bias"] = torch.randn(head_classes, generator=g)
    return sd


def original_full_sd(seed: int = 0) -> Dict[str, torch.Tensor]:
    """Random weights keyed like ``ST_MEM.state_dict()`` (the encoder's patch embedding appears twice)."""
    g = torch.Generator().manual_seed(seed + 1000)
    enc = original_encoder_sd(seed)
    dim, dec, p = SIZES["dim"], SIZES["dec_dim"], SIZES["patch_size"]
    sd = {f"encoder.{k}": v for k, v in enc.items()}
    sd.update({k: v.clone() for k, v in enc.items() if k.startswith("to_patch_embedding.")})
    sd["to_decoder_embedding.weight"] = torch.randn(dec, dim, generator=g) / dim**0.5
    sd["to_decoder_embedding.bias"] = 0.1 * torch.randn(dec, generator=g)
    sd["mask_embedding"] = 0.5 * torch.randn(1, 1, dec, generator=g)
    sd["decoder_pos_embed"] = original_positions(dec, N)
    for i in range(SIZES["dec_depth"]):
        sd.update(_block_params(g, f"decoder_blocks.{i}.", dec, 1, SIZES["mlp"]))
    sd["decoder_norm.weight"] = 1 + 0.1 * torch.randn(dec, generator=g)
    sd["decoder_norm.bias"] = 0.1 * torch.randn(dec, generator=g)
    sd["decoder_head.weight"] = torch.randn(p, dec, generator=g) / dec**0.5
    sd["decoder_head.bias"] = 0.1 * torch.randn(p, generator=g)
    return sd


def ref_block(x: torch.Tensor, sd: Dict[str, torch.Tensor], prefix: str) -> torch.Tensor:
    """Original ``TransformerBlock``: ``x + to_out(attn(LN(x)))``, then ``x + net(LN(x))``; 64-wide heads."""
    dim = x.shape[-1]
    h = F.layer_norm(x, (dim,), sd[prefix + "attn.norm.weight"], sd[prefix + "attn.norm.bias"], eps=1e-5)
    q, k, v = F.linear(h, sd[prefix + "attn.fn.to_qkv.weight"], sd.get(prefix + "attn.fn.to_qkv.bias")).chunk(3, -1)
    heads = q.shape[-1] // 64
    q, k, v = (t.reshape(*t.shape[:2], heads, 64).transpose(1, 2) for t in (q, k, v))  # b h n d
    attn = torch.softmax(q @ k.transpose(-1, -2) * 64**-0.5, dim=-1)
    out = (attn @ v).transpose(1, 2).reshape(*x.shape[:2], heads * 64)
    if prefix + "attn.fn.to_out.0.weight" in sd:
        out = F.linear(out, sd[prefix + "attn.fn.to_out.0.weight"], sd[prefix + "attn.fn.to_out.0.bias"])
    x = x + out
    h = F.layer_norm(x, (dim,), sd[prefix + "ff.norm.weight"], sd[prefix + "ff.norm.bias"], eps=1e-5)
    h = F.linear(F.gelu(F.linear(h, sd[prefix + "ff.fn.net.0.weight"], sd[prefix + "ff.fn.net.0.bias"])),
                 sd[prefix + "ff.fn.net.3.weight"], sd[prefix + "ff.fn.net.3.bias"])  # fmt: skip
    return x + h


def ref_encoder_blocks(sd: Dict[str, torch.Tensor], x: torch.Tensor, keep: Optional[torch.Tensor] = None):
    """Encoder input and blocks: ``x`` (B, C, T), ``keep`` (B, C, n) patch indices or None (all patches)
    -> block outputs (B, C, n + 2, D), lead by lead ``[SEP, patches, SEP]``."""
    b, c, t = x.shape
    p = sd["to_patch_embedding.2.weight"].shape[1]
    dim = sd["to_patch_embedding.2.weight"].shape[0]
    patches = x.reshape(b, c, t // p, p)
    h = F.layer_norm(patches, (p,), sd["to_patch_embedding.1.weight"], sd["to_patch_embedding.1.bias"], eps=1e-5)
    h = F.linear(h, sd["to_patch_embedding.2.weight"], sd["to_patch_embedding.2.bias"])
    h = F.layer_norm(h, (dim,), sd["to_patch_embedding.3.weight"], sd["to_patch_embedding.3.bias"], eps=1e-5)
    pos = sd["pos_embedding"][0]  # (n + 2, D)
    h = h + pos[1 : t // p + 1]
    if keep is not None:
        h = h.gather(2, keep[..., None].expand(-1, -1, -1, dim))
    sep = sd["sep_embedding"].expand(b, c, 1, dim)
    h = torch.cat([sep + pos[0], h, sep + pos[-1]], dim=2)
    h = h + torch.stack([sd[f"lead_embeddings.{i}"] for i in range(c)])[None, :, None, :]
    h = h.reshape(b, -1, dim)
    depth = len({k.split(".")[0] for k in sd if k.startswith("block")})
    for i in range(depth):
        h = ref_block(h, sd, f"block{i}.")
    return h.reshape(b, c, -1, dim)


def ref_features(sd: Dict[str, torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    """``ST_MEM_ViT.forward_encoding``: SEPs removed, mean over leads and patches, then the final norm."""
    pooled = ref_encoder_blocks(sd, x)[:, :, 1:-1].mean(dim=(1, 2))
    return F.layer_norm(pooled, pooled.shape[-1:], sd["norm.weight"], sd["norm.bias"], eps=1e-5)


def ref_pretrain(sd: Dict[str, torch.Tensor], x: torch.Tensor, keep: torch.Tensor):
    """``ST_MEM.forward_encoder`` + ``forward_decoder`` for given kept indices ``keep`` (B, C, n_keep):
    latent (B, C, n_keep + 2, D) after the final norm, predictions (B, C, N, P)."""
    enc = {k[len("encoder.") :]: v for k, v in sd.items() if k.startswith("encoder.")}
    latent = ref_encoder_blocks(enc, x, keep)
    dim = latent.shape[-1]
    latent = F.layer_norm(latent, (dim,), enc["norm.weight"], enc["norm.bias"], eps=1e-5)
    h = F.linear(latent, sd["to_decoder_embedding.weight"], sd["to_decoder_embedding.bias"])
    b, c, _, dd = h.shape
    n = x.shape[-1] // sd["decoder_head.weight"].shape[0]
    full = sd["mask_embedding"].reshape(dd).expand(b, c, n, dd).clone()
    for bi in range(b):
        for ci in range(c):
            full[bi, ci, keep[bi, ci]] = h[bi, ci, 1:-1]  # unshuffle: kept token k back to its patch slot
    pos = sd["decoder_pos_embed"][0]
    seq = torch.cat([h[:, :, :1] + pos[0], full + pos[1 : n + 1], h[:, :, -1:] + pos[-1]], dim=2)
    preds = []
    depth = len({k.split(".")[1] for k in sd if k.startswith("decoder_blocks.")})
    for ci in range(c):  # lead-wise decoding
        lead = seq[:, ci]
        for i in range(depth):
            lead = ref_block(lead, sd, f"decoder_blocks.{i}.")
        lead = F.layer_norm(lead, (dd,), sd["decoder_norm.weight"], sd["decoder_norm.bias"], eps=1e-6)
        preds.append(F.linear(lead, sd["decoder_head.weight"], sd["decoder_head.bias"])[:, 1:-1])
    return latent, torch.stack(preds, dim=1)


def ref_loss(x: torch.Tensor, pred: torch.Tensor, mask: torch.Tensor, p: int) -> torch.Tensor:
    """``ST_MEM.forward_loss`` with ``norm_pix_loss``: ``torch.var``'s default, the unbiased variance."""
    target = x.reshape(*x.shape[:2], -1, p)
    target = (target - target.mean(-1, keepdim=True)) / (target.var(-1, keepdim=True) + 1e-6) ** 0.5
    loss = ((pred - target) ** 2).mean(-1)
    return (loss * mask).sum() / mask.sum()


def signals(batch: int = 2, seed: int = 5) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(batch, SIZES["num_leads"], SIZES["seq_len"], generator=g).cumsum(-1) / 10


def converted(sd: Dict[str, torch.Tensor], strict: bool = True, **overrides) -> STMEM:
    model = STMEM(original_config(sd, **overrides)).eval()
    missing, unexpected = model.load_state_dict(convert_original_state_dict(sd), strict=strict)
    assert not unexpected
    return model


# ------------------------------------------------------------------------------------------------ tests
def test_position_table_is_the_originals():
    # ours is computed in float64 and rounded; the original's float32 angles are off by up to ~1.5e-6
    for dim in (64, 128, 384):
        torch.testing.assert_close(position_table(N, dim), original_positions(dim, N)[0], rtol=0, atol=3e-6)
    model = STMEM(original_config(original_full_sd()))
    torch.testing.assert_close(model.pos_embed, original_positions(128, N)[0], rtol=0, atol=3e-6)
    torch.testing.assert_close(model.decoder_pos_embed, original_positions(64, N)[0], rtol=0, atol=3e-6)
    assert not model.pos_embed[[0, -1]].any() and not model.decoder_pos_embed[[0, -1]].any()


def test_original_config_reads_the_sizes():
    cfg = original_config(original_full_sd())
    assert (cfg.num_leads, cfg.seq_len, cfg.patch_size, cfg.embed_dim, cfg.depth, cfg.heads) == (
        12,
        2250,
        75,
        128,
        2,
        2,
    )
    assert (cfg.decoder_embed_dim, cfg.decoder_depth, cfg.decoder_heads, cfg.mlp_ratio) == (64, 2, 1, 4.0)
    assert cfg.position_layout == "original" and cfg.pool_norm == "encoder" and cfg.qkv_bias
    assert original_config(original_encoder_sd(), crop_starts=[0]).crop_starts == [0]


def test_encoder_features_equal_the_originals():
    """The released-encoder case: an ``ST_MEM_ViT`` state dict (with a classifier head, dropped)."""
    sd = original_encoder_sd(head_classes=5)
    model = STMEM(original_config(sd)).eval()
    missing, unexpected = model.load_state_dict(convert_original_state_dict(sd), strict=False)
    assert not unexpected and missing and all(k.startswith(("decoder", "mask_token")) for k in missing)
    x = signals()
    with torch.no_grad():
        ours, theirs = model.embedding(x), ref_features(sd, x)
    assert ours.shape == (2, 128)
    torch.testing.assert_close(ours, theirs, rtol=0, atol=TOL)
    assert float(theirs.std()) > 0.5  # not a degenerate comparison


def test_full_model_converts_strictly_and_pretraining_forward_equals_the_originals():
    sd = original_full_sd()
    model = converted(sd, strict=True)
    assert model.decoder.norm.eps == 1e-6 and all(
        blk.norm1.eps == blk.norm2.eps == 1e-5 for blk in model.decoder.blocks
    )
    x = signals(seed=7)
    with torch.no_grad():
        latent, mask, keep = model.forward_encoder(x, generator=torch.Generator().manual_seed(3))
        pred = model.forward_decoder(latent, keep)
        ref_latent, ref_pred = ref_pretrain(sd, x, keep)
    torch.testing.assert_close(latent.view_as(ref_latent), ref_latent, rtol=0, atol=TOL)
    torch.testing.assert_close(pred, ref_pred, rtol=0, atol=TOL)
    loss, _ = masked_reconstruction_loss(pred, x.view(2, 12, N, 75), mask, unbiased=True)
    torch.testing.assert_close(loss, ref_loss(x, ref_pred, mask.float(), 75), rtol=1e-6, atol=1e-6)
    biased, _ = masked_reconstruction_loss(pred, x.view(2, 12, N, 75), mask, unbiased=False)
    assert abs(float(biased - loss)) > 1e-4  # the variance convention is visible in the loss
    # features of the full model's encoder equal those of the encoder alone
    enc = {k[len("encoder.") :]: v for k, v in sd.items() if k.startswith("encoder.")}
    with torch.no_grad():
        torch.testing.assert_close(model.embedding(x), ref_features(enc, x), rtol=0, atol=TOL)


def test_the_old_layout_differs_from_the_original():
    """The options that keep old checkpoints loadable really give the old (unfaithful) features."""
    sd = original_encoder_sd()
    x = signals()
    with torch.no_grad():
        theirs = ref_features(sd, x)
        for option in ({"position_layout": "shifted"}, {"pool_norm": "fc_norm"}):
            model = converted(sd, strict=False, **option)
            assert float((model.embedding(x) - theirs).abs().max()) > 1e-2, option


def test_embedding_pools_block_outputs_before_the_shared_final_norm():
    model = STMEM(STMEMConfig(embed_dim=32, depth=2, heads=2, decoder_embed_dim=16, decoder_depth=1, decoder_heads=2))
    with torch.no_grad():
        model.encoder.norm.weight.normal_()
        model.encoder.norm.bias.normal_()
        x = signals(seed=2)
        tokens = model.encode_blocks(x).view(2, 12, N + 2, 32)
        expected = model.encoder.norm(tokens[:, :, 1:-1].mean(dim=(1, 2)))
        torch.testing.assert_close(model.embedding(x), expected)
        # normalising each token first (the old pooling) gives something else
        assert float((model.encoder.norm(tokens[:, :, 1:-1]).mean(dim=(1, 2)) - expected).abs().max()) > 1e-2
    assert not hasattr(model, "fc_norm") or model.fc_norm is None
    assert not any(k.startswith("fc_norm") for k in model.state_dict())
    # the final norm gets gradient from the pretraining loss and is the same layer the pooling uses
    out = model(x, generator=torch.Generator().manual_seed(0))
    masked_reconstruction_loss(**out, unbiased=True)[0].backward()
    assert model.encoder.norm.weight.grad is not None and model.encoder.norm.weight.grad.abs().sum() > 0


def test_checkpoints_of_the_old_layout_load_with_the_old_options():
    old_cfg = dict(embed_dim=32, depth=1, heads=2, decoder_embed_dim=16, decoder_depth=1, decoder_heads=2)
    old = STMEM(STMEMConfig(**old_cfg, position_layout="shifted", pool_norm="fc_norm", decoder_block_norm_eps=1e-6))
    state = old.state_dict()
    assert "fc_norm.weight" in state
    with pytest.raises(RuntimeError, match="fc_norm"):
        STMEM(STMEMConfig(**old_cfg)).load_state_dict(state)  # the faithful default has no fc_norm
    again = STMEM(STMEMConfig(**old_cfg, position_layout="shifted", pool_norm="fc_norm", decoder_block_norm_eps=1e-6))
    again.load_state_dict(state)
    x = signals(seed=3)
    with torch.no_grad():
        tokens = old.encoder(old._add_seps(old._tokens(x))).view(2, 12, N + 2, 32)
        torch.testing.assert_close(again.embedding(x), old.fc_norm(tokens[:, :, 1:-1].mean(dim=(1, 2))))


def test_converter_refuses_what_it_cannot_reproduce():
    sd = original_encoder_sd()
    learned = dict(sd, pos_embedding=torch.randn_like(sd["pos_embedding"]))
    with pytest.raises(ValueError, match="fixed sine-cosine"):
        convert_original_state_dict(learned)
    with pytest.raises(ValueError, match="no ST-MEM module"):
        convert_original_state_dict(dict(sd, extra_thing=torch.zeros(1)))
    narrow = dict(sd)
    narrow["block0.attn.fn.to_qkv.weight"] = torch.randn(3 * 192, 128)  # 3 heads of 64 != 128
    with pytest.raises(ValueError, match="heads \\* 64 == width"):
        convert_original_state_dict(narrow)
    # a checkpoint file's dict and a data-parallel prefix are unwrapped
    wrapped = {"model": {f"module.{k}": v for k, v in sd.items()}, "epoch": 3}
    assert convert_original_state_dict(wrapped).keys() == convert_original_state_dict(sd).keys()
