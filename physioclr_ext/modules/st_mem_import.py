"""State dicts of the original ST-MEM code (bakqui/ST-MEM, Na et al., ICLR 2024) for :class:`STMEM`.

A pure key and shape mapping, no model is built here. Two kinds of state dict are accepted:

* the pre-training model ``ST_MEM`` (the released "full" checkpoint, encoder and decoder): keys
  ``encoder.*`` (the encoder below), ``to_patch_embedding.*`` (the same tensors again), ``to_decoder_embedding``,
  ``mask_embedding`` (1, 1, Dd), ``decoder_pos_embed`` (1, N + 2, Dd), ``decoder_blocks.{i}.*``,
  ``decoder_norm``, ``decoder_head``;
* the downstream encoder ``ST_MEM_ViT`` (the released "encoder" checkpoint): ``to_patch_embedding.{1,2,3}``
  (LayerNorm(P), Linear(P, D), LayerNorm(D)), ``pos_embedding`` (1, N + 2, D), ``sep_embedding`` (D),
  ``lead_embeddings.{c}`` (D), ``block{i}.*``, ``norm``, optionally ``head``.

A block ``PreNorm(Attention) + PreNorm(FeedForward)`` is ``attn.norm``, ``attn.fn.to_qkv``, ``attn.fn.to_out.0``,
``ff.norm``, ``ff.fn.net.0``, ``ff.fn.net.3``; it maps onto :class:`~physioclr_ext.modules.transformer.TransformerBlock`'s
``norm1``, ``attn.qkv``, ``attn.proj``, ``norm2``, ``mlp.0``, ``mlp.3`` (the fused ``qkv`` rows are laid out
``[q; k; v]``, heads major, in both). The fixed position tables are not copied: they are checked against
:func:`~physioclr_ext.modules.st_mem.position_table` (layout ``"original"``), which the model rebuilds.

The original's attention heads are 64 wide whatever the width (inner width ``heads * 64``); ours are
``D / heads`` wide, so a state dict converts only when ``heads * 64 == D`` (all published sizes: ViT-S 384/6,
ViT-B 768/12, decoder 256/4); :func:`original_config` reads the sizes, ``heads = D / 64``.

Example:
    >>> from physioclr_ext.modules.st_mem import STMEM
    >>> cfg = original_config(original_sd)                       # doctest: +SKIP
    >>> STMEM(cfg).load_state_dict(convert_original_state_dict(original_sd))  # doctest: +SKIP
"""

import re
from typing import Any, Dict, Iterable, Mapping, Optional, Set, Tuple

import torch
from torch import Tensor

from physioclr_ext.modules.st_mem import STMEMConfig, position_table

__all__ = ["convert_original_state_dict", "original_config", "unwrap_checkpoint"]

ORIGINAL_DIM_HEAD = 64
# Sub-keys of one original TransformerBlock -> ours.
_BLOCK_KEYS: Dict[str, str] = {
    "attn.norm": "norm1",
    "attn.fn.to_qkv": "attn.qkv",
    "attn.fn.to_out.0": "attn.proj",
    "ff.norm": "norm2",
    "ff.fn.net.0": "mlp.0",
    "ff.fn.net.3": "mlp.3",
}
_PATCH_KEYS: Dict[str, str] = {"1": "0", "2": "1", "3": "2"}
_POSITION_ATOL = 1e-5


def unwrap_checkpoint(checkpoint: Mapping[str, Any]) -> Dict[str, Tensor]:
    """The state dict inside a file saved by the original code (``{"model": state_dict, ...}``), with a
    ``module.`` prefix (a model saved under data parallelism) removed; a bare state dict passes through."""
    sd = checkpoint.get("model", checkpoint) if isinstance(checkpoint.get("model"), Mapping) else checkpoint
    return {(k[len("module.") :] if k.startswith("module.") else k): v for k, v in sd.items()}


def _is_full_model(sd: Mapping[str, Tensor]) -> bool:
    return any(k.startswith("encoder.") for k in sd)


def _check_positions(table: Tensor, name: str) -> None:
    """``table`` (1, N + 2, D) must be the original's fixed table (zero SEP rows, sincos(j) for patch j)."""
    rows = table.reshape(-1, table.shape[-1]).float()
    expected = position_table(rows.shape[0] - 2, rows.shape[1], "original")
    if not torch.allclose(rows, expected, atol=_POSITION_ATOL, rtol=0.0):
        diff = float((rows - expected).abs().max())
        raise ValueError(
            f"{name} is not ST-MEM's fixed sine-cosine table (max difference {diff:.3g}); only checkpoints of "
            "the original's fixed positions convert"
        )


def _check_attention(sd: Mapping[str, Tensor], key: str) -> None:
    width = sd[key].shape[1]
    if sd[key].shape[0] != 3 * width:
        heads = sd[key].shape[0] // (3 * ORIGINAL_DIM_HEAD)
        raise ValueError(
            f"{key}: {heads} heads of {ORIGINAL_DIM_HEAD} give an inner width {heads * ORIGINAL_DIM_HEAD} != width "
            f"{width}; this package's attention needs heads * 64 == width (all published ST-MEM sizes do)"
        )


def _block_key(rest: str) -> Optional[str]:
    """``attn.fn.to_qkv.weight`` -> ``attn.qkv.weight``; None for a key of no known block part."""
    for theirs, ours in _BLOCK_KEYS.items():
        if rest.startswith(theirs + "."):
            return ours + rest[len(theirs) :]
    return None


def _identity_projections(out: Dict[str, Tensor], blocks: Iterable[str], prefix: str) -> None:
    """The original drops ``to_out`` when ``heads == 1`` and ``dim_head == width``; ours always projects, so
    such blocks get an identity projection."""
    for block in blocks:
        qkv = out[f"{prefix}{block}.attn.qkv.weight"]
        if f"{prefix}{block}.attn.proj.weight" not in out:
            width = qkv.shape[1]
            out[f"{prefix}{block}.attn.proj.weight"] = torch.eye(width, dtype=qkv.dtype)
            out[f"{prefix}{block}.attn.proj.bias"] = torch.zeros(width, dtype=qkv.dtype)


def _convert_encoder(sd: Mapping[str, Tensor], prefix: str) -> Tuple[Dict[str, Tensor], Set[str]]:
    """The ``ST_MEM_ViT`` keys under ``prefix`` -> ours; returns ``(converted, consumed original keys)``."""
    out: Dict[str, Tensor] = {}
    used: Set[str] = set()
    leads: Dict[int, Tensor] = {}
    blocks = set()
    for key, value in sd.items():
        if not key.startswith(prefix):
            continue
        rest = key[len(prefix) :]
        match = re.fullmatch(r"block(\d+)\.(.+)", rest)
        patch = re.fullmatch(r"to_patch_embedding\.(\d+)\.(weight|bias)", rest)
        lead = re.fullmatch(r"lead_embeddings\.(\d+)", rest)
        if match and _block_key(match.group(2)) is not None:
            if match.group(2) == "attn.fn.to_qkv.weight":
                _check_attention(sd, key)
            blocks.add(match.group(1))
            out[f"encoder.blocks.{match.group(1)}.{_block_key(match.group(2))}"] = value
        elif patch and patch.group(1) in _PATCH_KEYS:
            out[f"patch_embed.{_PATCH_KEYS[patch.group(1)]}.{patch.group(2)}"] = value
        elif lead:
            leads[int(lead.group(1))] = value
        elif rest == "sep_embedding":
            out["sep_embed"] = value.reshape(-1)
        elif rest in ("norm.weight", "norm.bias"):
            out["encoder." + rest] = value
        elif rest == "pos_embedding":
            _check_positions(value, key)
        elif rest in ("head.weight", "head.bias"):
            pass  # a downstream classifier; STMEM has no head
        else:
            continue
        used.add(key)
    if leads:
        if sorted(leads) != list(range(len(leads))):
            raise ValueError(f"lead_embeddings are not numbered 0..C-1: {sorted(leads)}")
        out["lead_embed"] = torch.stack([leads[c].reshape(-1) for c in range(len(leads))])
    _identity_projections(out, sorted(blocks), "encoder.blocks.")
    return out, used


def _convert_decoder(sd: Mapping[str, Tensor]) -> Tuple[Dict[str, Tensor], Set[str]]:
    """The decoder keys of ``ST_MEM`` -> ours; returns ``(converted, consumed original keys)``."""
    out: Dict[str, Tensor] = {}
    used: Set[str] = set()
    blocks = set()
    simple = {"to_decoder_embedding": "decoder_embed", "decoder_norm": "decoder.norm", "decoder_head": "decoder_pred"}
    for key, value in sd.items():
        match = re.fullmatch(r"decoder_blocks\.(\d+)\.(.+)", key)
        head, _, leaf = key.rpartition(".")
        if match and _block_key(match.group(2)) is not None:
            if match.group(2) == "attn.fn.to_qkv.weight":
                _check_attention(sd, key)
            blocks.add(match.group(1))
            out[f"decoder.blocks.{match.group(1)}.{_block_key(match.group(2))}"] = value
        elif head in simple and leaf in ("weight", "bias"):
            out[f"{simple[head]}.{leaf}"] = value
        elif key == "mask_embedding":
            out["mask_token"] = value.reshape(-1)
        elif key == "decoder_pos_embed":
            _check_positions(value, key)
        else:
            continue
        used.add(key)
    _identity_projections(out, sorted(blocks), "decoder.blocks.")
    return out, used


def convert_original_state_dict(sd: Mapping[str, Tensor]) -> Dict[str, Tensor]:
    """An original ST-MEM state dict (``ST_MEM`` or ``ST_MEM_ViT``) -> a state dict of :class:`STMEM`.

    Load the result into ``STMEM(original_config(sd))`` (``position_layout="original"``, ``pool_norm="encoder"``,
    the defaults). A full ``ST_MEM`` state dict fills every parameter (``strict=True``); an encoder-only one
    leaves the decoder at its initialisation (``strict=False``). A downstream ``head`` is dropped.

    Raises:
        ValueError: a position table that is not the original's fixed one, attention heads other than 64
            wide times ``D / 64``, or a key that belongs to neither class (listed).
    """
    sd = unwrap_checkpoint(sd)
    if _is_full_model(sd):
        out, used = _convert_encoder(sd, "encoder.")
        decoder, used_decoder = _convert_decoder(sd)
        out.update(decoder)
        used |= used_decoder
        for key in [k for k in sd if k.startswith("to_patch_embedding.")]:
            mirrored = "encoder." + key  # ST_MEM keeps the encoder's patch embedding under a second name
            if mirrored in sd and not torch.equal(sd[key], sd[mirrored]):
                raise ValueError(f"{key} differs from {mirrored}; they are one module in ST_MEM")
            used.add(key)
    else:
        out, used = _convert_encoder(sd, "")
    unknown = sorted(set(sd) - used)
    if unknown:
        raise ValueError(f"keys of no ST-MEM module: {unknown[:10]}{' ...' if len(unknown) > 10 else ''}")
    return out


def original_config(sd: Mapping[str, Tensor], **overrides: Any) -> STMEMConfig:
    """The :class:`STMEMConfig` whose model takes :func:`convert_original_state_dict` of ``sd``.

    Sizes come from the tensor shapes (``heads = D / 64``, the original's 64-wide heads); a state dict
    without a decoder keeps the default decoder sizes. ``overrides`` set any other field (``crop_starts`` ...).
    """
    sd = unwrap_checkpoint(sd)
    enc = "encoder." if _is_full_model(sd) else ""
    linear = sd[f"{enc}to_patch_embedding.2.weight"]  # (D, P)
    dim, patch = int(linear.shape[0]), int(linear.shape[1])
    n_slots = int(sd[f"{enc}pos_embedding"].shape[-2])
    depth = len({m.group(1) for k in sd if (m := re.match(rf"{re.escape(enc)}block(\d+)\.", k))})
    hidden = int(sd[f"{enc}block0.ff.fn.net.0.weight"].shape[0])
    values: Dict[str, Any] = {
        "num_leads": len([k for k in sd if re.fullmatch(rf"{re.escape(enc)}lead_embeddings\.\d+", k)]),
        "seq_len": (n_slots - 2) * patch,
        "patch_size": patch,
        "embed_dim": dim,
        "depth": depth,
        "heads": max(int(sd[f"{enc}block0.attn.fn.to_qkv.weight"].shape[0]) // (3 * ORIGINAL_DIM_HEAD), 1),
        "mlp_ratio": hidden / dim,
        "qkv_bias": f"{enc}block0.attn.fn.to_qkv.bias" in sd,
        "position_layout": "original",
        "pool_norm": "encoder",
    }
    if "to_decoder_embedding.weight" in sd:
        dec_dim = int(sd["to_decoder_embedding.weight"].shape[0])
        values["decoder_embed_dim"] = dec_dim
        values["decoder_depth"] = len({m.group(1) for k in sd if (m := re.match(r"decoder_blocks\.(\d+)\.", k))})
        values["decoder_heads"] = max(
            int(sd["decoder_blocks.0.attn.fn.to_qkv.weight"].shape[0]) // (3 * ORIGINAL_DIM_HEAD), 1
        )
    values.update(overrides)
    return STMEMConfig(**values)
