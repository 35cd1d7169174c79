"""ECG-JEPA checkpoints of the original code (sehunfromdaegu/ECG_JEPA) in :class:`ECGJEPA` through
:mod:`physioclr_ext.modules.ecg_jepa_import`.

Always: the key mapping, the released file layout (``{"encoder": ..., "epoch": ...}``), the configuration read
from the shapes, one-line refusals of wrong files, and the converted model's representation, target-encoder output
and predictions equal to an independent functional transcription of the original's forward passes
(``MaskTransformer.representation`` / ``forward``, ``MaskTransformerPredictor.forward``, its CroPA mask loop and
its NumPy position table), computed from the original's keys. With ``PHYSIOCLR_ECG_JEPA_CHECKOUT`` (a checkout
of the original code, with ``timm`` importable, or only its source files when the package itself does not import,
loaded by ``benchmarks/originals.py``): the original ``ecg_jepa`` class at random weights, converted,
gives the same representation, target and predictions (within 1e-5), also with ``restrict_leads``.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Dict, List, Optional

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from physioclr_ext.modules.ecg_jepa import ECGJEPA
from physioclr_ext.modules.ecg_jepa_import import convert_original_state_dict, original_config, unwrap_checkpoint

CHECKOUT = os.environ.get("PHYSIOCLR_ECG_JEPA_CHECKOUT", "")
BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"
TOL = 1e-5
DIM, DEPTH, PDIM, PDEPTH = 64, 2, 32, 2


def original_table(c: int, p: int, dim: int) -> torch.Tensor:
    """The original's ``get_2d_sincos_pos_embed(dim, c, p)`` (pos_encoding.py), transcribed in NumPy: (c * p, dim),
    the first half encoding the time index, the second the lead index."""

    def one_d(d: int, pos: np.ndarray) -> np.ndarray:
        omega = 1.0 / 10000 ** (np.arange(d // 2, dtype=float) / (d / 2.0))
        out = np.einsum("m,d->md", pos.reshape(-1), omega)
        return np.concatenate([np.sin(out), np.cos(out)], axis=1)

    grid = np.stack(np.meshgrid(np.arange(p, dtype=float), np.arange(c, dtype=float)), axis=0)
    table = np.concatenate([one_d(dim // 2, grid[0]), one_d(dim // 2, grid[1])], axis=1)
    return torch.from_numpy(table).float()


def _block(g: torch.Generator, prefix: str, dim: int, qkv_bias: bool = False) -> Dict[str, torch.Tensor]:
    sd = {
        f"{prefix}norm1.weight": 1 + 0.1 * torch.randn(dim, generator=g),
        f"{prefix}norm1.bias": 0.1 * torch.randn(dim, generator=g),
        f"{prefix}attn.qkv.weight": torch.randn(3 * dim, dim, generator=g) / dim**0.5,
        f"{prefix}attn.proj.weight": torch.randn(dim, dim, generator=g) / dim**0.5,
        f"{prefix}attn.proj.bias": 0.1 * torch.randn(dim, generator=g),
        f"{prefix}norm2.weight": 1 + 0.1 * torch.randn(dim, generator=g),
        f"{prefix}norm2.bias": 0.1 * torch.randn(dim, generator=g),
        f"{prefix}mlp.fc1.weight": torch.randn(4 * dim, dim, generator=g) / dim**0.5,
        f"{prefix}mlp.fc1.bias": 0.1 * torch.randn(4 * dim, generator=g),
        f"{prefix}mlp.fc2.weight": torch.randn(dim, 4 * dim, generator=g) / (4 * dim) ** 0.5,
        f"{prefix}mlp.fc2.bias": 0.1 * torch.randn(dim, generator=g),
    }
    if qkv_bias:
        sd[f"{prefix}attn.qkv.bias"] = 0.1 * torch.randn(3 * dim, generator=g)
    return sd


def encoder_sd(seed: int = 0, leads: int = 8) -> Dict[str, torch.Tensor]:
    """Random weights keyed like the original ``MaskTransformer.state_dict()`` (sincos positions)."""
    g = torch.Generator().manual_seed(seed)
    sd = {
        "W_P.weight": torch.randn(DIM, 50, generator=g) / 50**0.5,
        "W_P.bias": 0.1 * torch.randn(DIM, generator=g),
        "pos_embed": original_table(leads, 50, DIM),
        "norm.weight": 1 + 0.1 * torch.randn(DIM, generator=g),
        "norm.bias": 0.1 * torch.randn(DIM, generator=g),
    }
    for i in range(DEPTH):
        sd.update(_block(g, f"encoder_blocks.blocks.{i}.", DIM))
    return sd


def full_sd(seed: int = 0) -> Dict[str, torch.Tensor]:
    """Keyed like the original ``ecg_jepa.state_dict()``: encoder, target encoder, predictor."""
    g = torch.Generator().manual_seed(seed + 1)
    sd = {f"encoder.{k}": v for k, v in encoder_sd(seed).items()}
    sd.update({f"target_encoder.{k}": v + 0.01 for k, v in encoder_sd(seed).items() if k != "pos_embed"})
    sd["target_encoder.pos_embed"] = original_table(8, 50, DIM)
    sd.update(
        {
            "predictor.predictor_embed.weight": torch.randn(PDIM, DIM, generator=g) / DIM**0.5,
            "predictor.predictor_embed.bias": 0.1 * torch.randn(PDIM, generator=g),
            "predictor.mask_token": 0.02 * torch.randn(1, 1, PDIM, generator=g),
            "predictor.pos_embed": original_table(1, 50, PDIM),
            "predictor.predictor_norm.weight": 1 + 0.1 * torch.randn(PDIM, generator=g),
            "predictor.predictor_norm.bias": 0.1 * torch.randn(PDIM, generator=g),
            "predictor.predictor_proj.weight": torch.randn(DIM, PDIM, generator=g) / PDIM**0.5,
            "predictor.predictor_proj.bias": 0.1 * torch.randn(DIM, generator=g),
        }
    )
    for i in range(PDEPTH):
        sd.update(_block(g, f"predictor.predictor_blocks.blocks.{i}.", PDIM))
    return sd


def test_released_layout_converts_with_the_target_a_copy():
    released = {"encoder": encoder_sd(), "epoch": 99}
    cfg = original_config(released, heads=4)
    assert (cfg.embed_dim, cfg.depth, cfg.heads, cfg.patch_size, cfg.seq_len, cfg.num_leads) == (64, 2, 4, 50, 2500, 8)
    assert cfg.mlp_ratio == 4.0 and cfg.qkv_bias is False
    state = convert_original_state_dict(released)
    model = ECGJEPA(cfg)
    missing, unexpected = model.load_state_dict(state, strict=False)
    assert not unexpected and missing and all(k.startswith("predictor.") for k in missing)
    torch.testing.assert_close(model.encoder.embed.weight, released["encoder"]["W_P.weight"])
    torch.testing.assert_close(
        model.encoder.blocks[1].mlp[3].bias, released["encoder"]["encoder_blocks.blocks.1.mlp.fc2.bias"]
    )
    for a, b in zip(model.encoder.state_dict().values(), model.target_encoder.state_dict().values()):
        assert torch.equal(a, b)
    # a bare MaskTransformer state dict and a data-parallel prefix give the same
    bare = convert_original_state_dict({f"module.{k}": v for k, v in encoder_sd().items()})
    assert bare.keys() == state.keys() and all(torch.equal(bare[k], state[k]) for k in state)


def test_whole_model_converts_strictly():
    sd = full_sd()
    cfg = original_config({"model": sd}, heads=4, predictor_heads=2)
    assert (cfg.predictor_embed_dim, cfg.predictor_depth, cfg.predictor_heads) == (PDIM, PDEPTH, 2)
    model = ECGJEPA(cfg)
    model.load_state_dict(convert_original_state_dict({"model": sd}), strict=True)
    torch.testing.assert_close(model.target_encoder.norm.bias, sd["target_encoder.norm.bias"])
    torch.testing.assert_close(model.predictor.mask_token, sd["predictor.mask_token"])
    torch.testing.assert_close(
        model.predictor.blocks[1].attn.qkv.weight, sd["predictor.predictor_blocks.blocks.1.attn.qkv.weight"]
    )


def test_published_heads_and_unpublished_widths():
    g = torch.Generator().manual_seed(0)
    big = {
        "encoder": {
            "W_P.weight": torch.randn(768, 50, generator=g),
            "encoder_blocks.blocks.0.mlp.fc1.weight": torch.zeros(3072, 1),
        }
    }
    assert original_config(big).heads == 16
    with pytest.raises(ValueError, match="width 64 is not a published size"):
        original_config({"encoder": encoder_sd()})
    with pytest.raises(ValueError, match="not divisible by 5 heads"):
        original_config({"encoder": encoder_sd()}, heads=5)


def test_leads_and_positions_from_the_table():
    cfg = original_config({"encoder": encoder_sd(leads=19)}, heads=4, leads=[0, 1])
    assert cfg.num_leads == 19 and cfg.leads == [0, 1]


@pytest.mark.parametrize(
    "content, message",
    [
        ({"backbone_state_dict": []}, "not an ECG-JEPA checkpoint"),
        ({"model": {"encoder.to_patch_embedding.2.weight": torch.zeros(1)}}, "not an ECG-JEPA checkpoint"),
        ([1, 2], "expected a dict"),
        ({"encoder": dict(encoder_sd(), pos_embed=torch.rand(400, DIM))}, "learnable"),
        ({"encoder": dict(encoder_sd(), head=torch.zeros(2))}, "keys of no ECG-JEPA module: \\['encoder.head'\\]"),
    ],
)
def test_wrong_files_are_refused_in_one_line(content, message):
    with pytest.raises(ValueError, match=message) as info:
        convert_original_state_dict(content)
    assert "\n" not in str(info.value)


def test_converted_model_differs_when_a_key_is_swapped():
    """The mapping is not vacuous: fc1/fc2 exchanged between blocks changes the representation."""
    sd = encoder_sd()
    swapped = dict(sd)
    for name in ("mlp.fc1.weight", "mlp.fc2.weight"):
        swapped[f"encoder_blocks.blocks.0.{name}"], swapped[f"encoder_blocks.blocks.1.{name}"] = (
            sd[f"encoder_blocks.blocks.1.{name}"],
            sd[f"encoder_blocks.blocks.0.{name}"],
        )
    x = torch.randn(2, 8, 2500, generator=torch.Generator().manual_seed(3))
    reps = []
    for weights in (sd, swapped):
        model = ECGJEPA(original_config({"encoder": weights}, heads=4)).eval()
        model.load_state_dict(convert_original_state_dict({"encoder": weights}), strict=False)
        with torch.no_grad():
            reps.append(model.representation(x))
    assert (reps[0] - reps[1]).abs().max() > 1e-3


# ------------------------------------------------------------------------------ functional reference
def original_cropa(c: int, p: int) -> torch.Tensor:
    """``MaskTransformer._cross_attention_mask``: (c * p, c * p) of 0/1, same lead blocks plus same time strides."""
    row, col = torch.zeros(c * p, c * p), torch.zeros(c * p, c * p)
    for i in range(c):
        row[i * p : (i + 1) * p, i * p : (i + 1) * p] = 1
    for i in range(p):
        col[i::p, i::p] = 1
    return (row + col).clamp(max=1)


def ref_block(x: torch.Tensor, sd: Dict[str, torch.Tensor], prefix: str, heads: int, mask=None) -> torch.Tensor:
    """The original ``Block`` (pre-norm, LayerNorm eps 1e-5, heads of D / heads, -inf where ``mask == 0``)."""
    b, n, d = x.shape
    h = F.layer_norm(x, (d,), sd[prefix + "norm1.weight"], sd[prefix + "norm1.bias"], eps=1e-5)
    qkv = F.linear(h, sd[prefix + "attn.qkv.weight"], sd.get(prefix + "attn.qkv.bias"))
    q, k, v = qkv.reshape(b, n, 3, heads, d // heads).permute(2, 0, 3, 1, 4)
    attn = (q @ k.transpose(-2, -1)) * (d // heads) ** -0.5
    if mask is not None:
        attn = attn.masked_fill(mask == 0, float("-inf"))
    out = (attn.softmax(dim=-1) @ v).transpose(1, 2).reshape(b, n, d)
    x = x + F.linear(out, sd[prefix + "attn.proj.weight"], sd[prefix + "attn.proj.bias"])
    h = F.layer_norm(x, (d,), sd[prefix + "norm2.weight"], sd[prefix + "norm2.bias"], eps=1e-5)
    h = F.linear(F.gelu(F.linear(h, sd[prefix + "mlp.fc1.weight"], sd[prefix + "mlp.fc1.bias"])),
                 sd[prefix + "mlp.fc2.weight"], sd[prefix + "mlp.fc2.bias"])  # fmt: skip
    return x + h


def _depth(sd: Dict[str, torch.Tensor], prefix: str) -> int:
    return len({k[len(prefix) :].split(".")[0] for k in sd if k.startswith(prefix)})


def ref_encode(
    sd: Dict[str, torch.Tensor], x: torch.Tensor, heads: int, leads: List[int], visible: Optional[torch.Tensor] = None
) -> torch.Tensor:
    """``MaskTransformer`` (keys without prefix) on ``x`` (B, len(leads), 2500): W_P on patches of 50, the lead rows
    of the table and of the CroPA mask, positions added before every block, final norm: (B, tokens, D)."""
    c, p = sd["pos_embed"].shape[0] // 50, 50
    rows = torch.cat([torch.arange(a * p, (a + 1) * p) for a in leads])
    pos, mask = sd["pos_embed"][rows], original_cropa(c, p)[rows][:, rows]
    tokens = F.linear(x.reshape(x.shape[0], -1, 50), sd["W_P.weight"], sd["W_P.bias"])
    if visible is not None:
        keep = visible.repeat(len(leads))
        tokens, pos, mask = tokens[:, keep], pos[keep], mask[keep][:, keep]
    for i in range(_depth(sd, "encoder_blocks.blocks.")):
        tokens = ref_block(tokens + pos, sd, f"encoder_blocks.blocks.{i}.", heads, mask)
    return F.layer_norm(tokens, (tokens.shape[-1],), sd["norm.weight"], sd["norm.bias"], eps=1e-5)


def ref_predict(sd: Dict[str, torch.Tensor], context: torch.Tensor, mask: torch.Tensor, heads: int) -> torch.Tensor:
    """``MaskTransformerPredictor.forward`` (keys under ``predictor.``), then the original's slice of the masked
    columns: (B, c, n_mask, D)."""
    sd = {k[len("predictor.") :]: v for k, v in sd.items() if k.startswith("predictor.")}
    bs, n_mask = context.shape[0], int(mask.sum())
    h = F.linear(context, sd["predictor_embed.weight"], sd["predictor_embed.bias"])
    h = h.reshape(bs * 8, -1, h.shape[-1])
    h = torch.cat([h, sd["mask_token"].expand(h.shape[0], n_mask, -1)], dim=1)
    pos = sd["pos_embed"][torch.cat([(~mask).nonzero().flatten(), mask.nonzero().flatten()])]
    for i in range(_depth(sd, "predictor_blocks.blocks.")):
        h = ref_block(h + pos, sd, f"predictor_blocks.blocks.{i}.", heads)
    h = F.layer_norm(h, (h.shape[-1],), sd["predictor_norm.weight"], sd["predictor_norm.bias"], eps=1e-5)
    h = F.linear(h, sd["predictor_proj.weight"], sd["predictor_proj.bias"])
    return h.reshape(bs, 8, 50, -1)[:, :, -n_mask:]


def _part(sd: Dict[str, torch.Tensor], prefix: str) -> Dict[str, torch.Tensor]:
    return {k[len(prefix) :]: v for k, v in sd.items() if k.startswith(prefix)}


def test_original_table_and_cropa_are_ours():
    """The converter checks positions against ``sincos_2d``, and the model builds its mask with ``cropa_mask``:
    both must be the original's."""
    from physioclr_ext.modules.ecg_jepa import cropa_mask, sincos_2d

    torch.testing.assert_close(sincos_2d(8, 50, DIM), original_table(8, 50, DIM), atol=1e-6, rtol=0)
    torch.testing.assert_close(sincos_2d(1, 50, PDIM), original_table(1, 50, PDIM), atol=1e-6, rtol=0)
    assert torch.equal(cropa_mask(3, 7), original_cropa(3, 7).bool())


def test_whole_model_equals_the_functional_reference():
    sd = full_sd(seed=4)
    model = ECGJEPA(original_config(sd, heads=4, predictor_heads=2)).eval()
    model.load_state_dict(convert_original_state_dict(sd), strict=True)
    x = torch.randn(2, 8, 2500, generator=torch.Generator().manual_seed(6))
    mask = torch.zeros(50, dtype=torch.bool)
    mask[[0, 1, 2, 17, 18, 30, 31, 32, 49]] = True
    all_leads = list(range(8))
    encoder, target = _part(sd, "encoder."), _part(sd, "target_encoder.")
    with torch.no_grad():
        torch.testing.assert_close(
            model.representation(x), ref_encode(encoder, x, 4, all_leads).mean(dim=1), atol=TOL, rtol=0
        )
        torch.testing.assert_close(model.target_encoder(x), ref_encode(target, x, 4, all_leads), atol=TOL, rtol=0)
        out = model(x, mask=mask)
        expected_target = ref_encode(target, x, 4, all_leads).reshape(2, 8, 50, -1)[:, :, mask]
        torch.testing.assert_close(out["target"], expected_target, atol=TOL, rtol=0)
        context = ref_encode(encoder, x, 4, all_leads, visible=~mask)
        torch.testing.assert_close(out["pred"], ref_predict(sd, context, mask, 2), atol=TOL, rtol=0)
    assert (out["pred"] - out["target"]).abs().max() > 1e-2  # the two sides are not the same tensor


def test_released_layout_with_restricted_leads_equals_the_reference():
    released = {"encoder": encoder_sd(seed=7), "epoch": 100}
    leads = [1, 6]
    model = ECGJEPA(original_config(released, heads=4, leads=leads)).eval()
    model.load_state_dict(convert_original_state_dict(released), strict=False)
    x = torch.randn(3, 2, 2500, generator=torch.Generator().manual_seed(8))
    with torch.no_grad():
        ours = model.representation(x)
        torch.testing.assert_close(ours, ref_encode(released["encoder"], x, 4, leads).mean(dim=1), atol=TOL, rtol=0)
        # the rows of other leads would give another representation: the lead selection is not vacuous
        assert (ours - ref_encode(released["encoder"], x, 4, [0, 1]).mean(dim=1)).abs().max() > 1e-3


# ------------------------------------------------------------------------------ the original code
@pytest.fixture(scope="module")
def original_class():
    if not CHECKOUT:
        pytest.skip("set PHYSIOCLR_ECG_JEPA_CHECKOUT to a checkout of sehunfromdaegu/ECG_JEPA to test against it")
    sys.path.insert(0, str(BENCHMARKS))
    try:
        from originals import original_code, timm_layers  # shared with benchmarks/vs_originals.py
    finally:
        sys.path.remove(str(BENCHMARKS))
    try:
        with timm_layers(), original_code(CHECKOUT):
            import ecg_jepa  # the original module
    except ImportError as exc:
        pytest.skip(f"the original ECG-JEPA code does not import here ({exc}); it needs timm (or its source files)")
    return ecg_jepa.ecg_jepa


def _perturbed(net: torch.nn.Module, seed: int) -> torch.nn.Module:
    """Random weights everywhere but the fixed position tables (LayerNorms too, not left at 1 and 0)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, param in net.named_parameters():
            if not name.endswith("pos_embed"):
                param.add_(0.05 * torch.randn(param.shape, generator=g))
    return net.eval()


def _original(original_class, leads=None, seed=0):
    torch.manual_seed(seed)
    kwargs = dict(leads=leads) if leads is not None else {}
    net = original_class(
        encoder_embed_dim=DIM, encoder_depth=DEPTH, encoder_num_heads=4, predictor_embed_dim=PDIM,
        predictor_depth=PDEPTH, predictor_num_heads=2, c=8, p=50, t=50, drop_path_rate=0.1, **kwargs,
    )  # fmt: skip
    return _perturbed(net, seed)


def test_original_class_representation_target_and_predictions(original_class):
    net = _original(original_class)
    sd = net.state_dict()
    ours = ECGJEPA(original_config(sd, heads=4, predictor_heads=2)).eval()
    ours.load_state_dict(convert_original_state_dict(sd), strict=True)
    x = torch.randn(3, 8, 2500, generator=torch.Generator().manual_seed(1))
    mask = torch.zeros(50, dtype=torch.bool)
    mask[[3, 4, 5, 20, 21, 40, 41, 42, 43]] = True
    with torch.no_grad():
        torch.testing.assert_close(ours.representation(x), net.encoder.representation(x), atol=TOL, rtol=0)
        theirs_target, _ = net.target_encoder(x.reshape(3, 8, 50, 50))
        torch.testing.assert_close(ours.target_encoder(x), theirs_target, atol=TOL, rtol=0)
        context, _ = net.encoder(x.reshape(3, 8, 50, 50), mask)
        theirs_pred = net.predictor(context, mask).reshape(3, 8, 50, -1)[:, :, -int(mask.sum()) :]
        pred = ours(x, mask=mask)["pred"]
        torch.testing.assert_close(pred, theirs_pred, atol=TOL, rtol=0)


def test_original_released_layout_and_restricted_leads(original_class):
    net = _original(original_class, leads=[1, 6], seed=2)
    released = {"encoder": net.encoder.state_dict(), "epoch": 100}
    ours = ECGJEPA(original_config(released, heads=4, leads=[1, 6])).eval()
    ours.load_state_dict(convert_original_state_dict(released), strict=False)
    x = torch.randn(2, 2, 2500, generator=torch.Generator().manual_seed(4))
    with torch.no_grad():
        torch.testing.assert_close(ours.representation(x), net.encoder.representation(x), atol=TOL, rtol=0)


def test_unwrap_is_idempotent_on_converted_keys():
    sd = unwrap_checkpoint({"encoder": encoder_sd()})
    assert unwrap_checkpoint(sd).keys() == sd.keys()
