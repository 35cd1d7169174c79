"""State dicts of the original ECG-JEPA code (sehunfromdaegu/ECG_JEPA, Kim, arXiv 2410.08559) for
:class:`~physioclr_ext.modules.ecg_jepa.ECGJEPA`.

A pure key and shape mapping, no model is built here. Accepted inputs:

* the released checkpoints (``multiblock_epoch100.pth``, ``random_epoch100.pth``): ``{"encoder": state_dict,
  "epoch": ...}``, the context encoder ``MaskTransformer`` only;
* a whole ``ecg_jepa`` module's state dict: ``encoder.*``, ``target_encoder.*`` (both ``MaskTransformer``) and
  ``predictor.*`` (``MaskTransformerPredictor``), bare or under ``{"model": ...}``, with or without ``module.``;
* a bare ``MaskTransformer`` state dict.

``MaskTransformer``: ``W_P`` (Linear(t, D)), ``pos_embed`` (c * p, D) fixed 2-D sine-cosine (a parameter without
gradient), ``encoder_blocks.blocks.{i}.{norm1, attn.qkv, attn.proj, norm2, mlp.fc1, mlp.fc2}``, ``norm``.
``MaskTransformerPredictor``: ``predictor_embed``, ``mask_token`` (1, 1, Dp), ``pos_embed`` (p, Dp),
``predictor_blocks.blocks.{i}.*``, ``predictor_norm``, ``predictor_proj``. They map onto
:class:`~physioclr_ext.modules.ecg_jepa.CroPAEncoder` (``embed``, ``blocks.{i}.{norm1, attn.qkv, attn.proj,
norm2, mlp.0, mlp.3}``, ``norm``) and :class:`~physioclr_ext.modules.ecg_jepa.LeadwisePredictor` (``embed``,
``mask_token``, ``blocks``, ``norm``, ``proj``). The fixed position tables are not copied: they are checked against
:func:`~physioclr_ext.modules.ecg_jepa.sincos_2d`, which the model rebuilds (the original's ``learnable``
positions are refused).

A released checkpoint holds the context encoder only: the target encoder gets a copy of it (the EMA target equals
the context encoder at the start of training, and the downstream representation reads the context encoder), and
the predictor stays at its initialisation.

Attention heads leave no trace in the shapes; :func:`original_config` takes the published counts (16 heads at
D = 768, 12 predictor heads at 384) unless told otherwise.

Example:
    >>> from physioclr_ext.modules.ecg_jepa import ECGJEPA
    >>> sd = unwrap_checkpoint(torch.load("multiblock_epoch100.pth"))       # doctest: +SKIP
    >>> model = ECGJEPA(original_config(sd))                                # doctest: +SKIP
    >>> model.load_state_dict(convert_original_state_dict(sd), strict=False)  # predictor left out  # doctest: +SKIP
"""

import re
from typing import Any, Dict, Mapping, Optional, Set, Tuple

import torch
from torch import Tensor

from physioclr_ext.modules.ecg_jepa import ECGJEPAConfig, sincos_2d

__all__ = ["PUBLISHED_HEADS", "convert_original_state_dict", "original_config", "unwrap_checkpoint"]

# Sub-keys of one original Block -> ours (TransformerBlock).
_BLOCK_KEYS: Dict[str, str] = {
    "norm1": "norm1",
    "attn.qkv": "attn.qkv",
    "attn.proj": "attn.proj",
    "norm2": "norm2",
    "mlp.fc1": "mlp.0",
    "mlp.fc2": "mlp.3",
}
PUBLISHED_HEADS: Dict[int, int] = {768: 16, 384: 12}
"""Attention heads of the published widths: encoder 768 (16 heads), predictor 384 (12 heads)."""
ORIGINAL_PATCHES = 50  # the original's p: 2500 samples in patches of t = 50 (its representation asserts 2500)
_POSITION_ATOL = 1e-5
_PARTS = ("encoder.", "target_encoder.", "predictor.")


def unwrap_checkpoint(checkpoint: Mapping[str, Any]) -> Dict[str, Tensor]:
    """The state dict inside a file of the original code, keyed like a whole ``ecg_jepa`` module.

    ``{"encoder": sd, ...}`` (the released files) -> ``encoder.*``; ``{"model": sd}`` -> ``sd``; a bare
    ``MaskTransformer`` state dict -> ``encoder.*``; a ``module.`` prefix (data parallel) is removed.

    Raises:
        ValueError: nothing in it looks like ECG-JEPA (no ``W_P.weight`` anywhere).
    """
    if not isinstance(checkpoint, Mapping):
        raise ValueError(f"not an ECG-JEPA checkpoint: a {type(checkpoint).__name__}, expected a dict")
    if isinstance(checkpoint.get("encoder"), Mapping):
        sd = {f"encoder.{k}": v for k, v in checkpoint["encoder"].items()}
    elif isinstance(checkpoint.get("model"), Mapping):
        sd = dict(checkpoint["model"])
    else:
        sd = dict(checkpoint)
    sd = {(k[len("module.") :] if k.startswith("module.") else k): v for k, v in sd.items()}
    if "W_P.weight" in sd:
        sd = {f"encoder.{k}": v for k, v in sd.items()}
    if "encoder.W_P.weight" not in sd:
        keys = ", ".join(sorted(sd)[:5])
        raise ValueError(
            f"not an ECG-JEPA checkpoint of sehunfromdaegu/ECG_JEPA (no encoder W_P.weight; keys: {keys} ...)"
        )
    return sd


def _check_table(table: Tensor, expected: Tensor, name: str) -> None:
    rows = table.reshape(expected.shape).float() if table.numel() == expected.numel() else None
    if rows is None:
        raise ValueError(f"{name} has shape {tuple(table.shape)}, expected {tuple(expected.shape)}")
    if not torch.allclose(rows, expected, atol=_POSITION_ATOL, rtol=0.0):
        diff = float((rows - expected).abs().max())
        raise ValueError(
            f"{name} is not ECG-JEPA's fixed 2-D sine-cosine table (max difference {diff:.3g}); checkpoints of "
            "`pos_type=learnable` do not convert"
        )


def _block_key(rest: str) -> Optional[str]:
    """``mlp.fc1.weight`` -> ``mlp.0.weight``; None for a key of no known block part."""
    for theirs, ours in _BLOCK_KEYS.items():
        if rest.startswith(theirs + "."):
            return ours + rest[len(theirs) :]
    return None


def _convert_encoder(sd: Mapping[str, Tensor], prefix: str, out_prefix: str) -> Tuple[Dict[str, Tensor], Set[str]]:
    """``MaskTransformer`` keys under ``prefix`` -> ours under ``out_prefix``; ``(converted, consumed keys)``."""
    out: Dict[str, Tensor] = {}
    used: Set[str] = set()
    for key, value in sd.items():
        if not key.startswith(prefix):
            continue
        rest = key[len(prefix) :]
        block = re.fullmatch(r"encoder_blocks\.blocks\.(\d+)\.(.+)", rest)
        if block and _block_key(block.group(2)) is not None:
            out[f"{out_prefix}blocks.{block.group(1)}.{_block_key(block.group(2))}"] = value
        elif rest in ("W_P.weight", "W_P.bias"):
            out[f"{out_prefix}embed.{rest[len('W_P.') :]}"] = value
        elif rest in ("norm.weight", "norm.bias"):
            out[out_prefix + rest] = value
        elif rest == "pos_embed":
            dim = int(sd[prefix + "W_P.weight"].shape[0])
            rows = value.reshape(-1, dim).shape[0]
            _check_table(value, sincos_2d(rows // ORIGINAL_PATCHES, ORIGINAL_PATCHES, dim), key)
        else:
            continue
        used.add(key)
    return out, used


def _convert_predictor(sd: Mapping[str, Tensor]) -> Tuple[Dict[str, Tensor], Set[str]]:
    """``MaskTransformerPredictor`` keys (``predictor.*``) -> ours; ``(converted, consumed keys)``."""
    out: Dict[str, Tensor] = {}
    used: Set[str] = set()
    simple = {"predictor_embed": "embed", "predictor_norm": "norm", "predictor_proj": "proj"}
    for key, value in sd.items():
        if not key.startswith("predictor."):
            continue
        rest = key[len("predictor.") :]
        block = re.fullmatch(r"predictor_blocks\.blocks\.(\d+)\.(.+)", rest)
        head, _, leaf = rest.rpartition(".")
        if block and _block_key(block.group(2)) is not None:
            out[f"predictor.blocks.{block.group(1)}.{_block_key(block.group(2))}"] = value
        elif head in simple and leaf in ("weight", "bias"):
            out[f"predictor.{simple[head]}.{leaf}"] = value
        elif rest == "mask_token":
            out["predictor.mask_token"] = value
        elif rest == "pos_embed":
            _check_table(value, sincos_2d(1, value.reshape(-1, value.shape[-1]).shape[0], value.shape[-1]), key)
        else:
            continue
        used.add(key)
    return out, used


def convert_original_state_dict(checkpoint: Mapping[str, Any]) -> Dict[str, Tensor]:
    """An original ECG-JEPA checkpoint or state dict (see :func:`unwrap_checkpoint`) -> a state dict of
    :class:`~physioclr_ext.modules.ecg_jepa.ECGJEPA`.

    A whole ``ecg_jepa`` state dict converts completely (``strict=True``). From an encoder-only file the target
    encoder is a copy of the context encoder and the ``predictor.*`` keys are absent (load with
    ``strict=False``; they keep their initialisation).

    Raises:
        ValueError: a position table that is not the fixed sine-cosine one, a key of no ECG-JEPA module (listed),
            or a target encoder shaped unlike the context encoder.
    """
    sd = unwrap_checkpoint(checkpoint)
    out, used = _convert_encoder(sd, "encoder.", "encoder.")
    if any(k.startswith("target_encoder.") for k in sd):
        target, used_target = _convert_encoder(sd, "target_encoder.", "target_encoder.")
        used |= used_target
    else:
        target = {"target_encoder." + k[len("encoder.") :]: v.clone() for k, v in out.items()}
    context = {k[len("encoder.") :]: v.shape for k, v in out.items()}
    mismatched = sorted(
        set(context) ^ {k[len("target_encoder.") :] for k in target}
        | {k for k, v in target.items() if context.get(k[len("target_encoder.") :], v.shape) != v.shape}
    )
    if mismatched:
        raise ValueError(f"target_encoder does not match encoder: {mismatched[:5]}")
    out.update(target)
    predictor, used_predictor = _convert_predictor(sd)
    out.update(predictor)
    used |= used_predictor
    unknown = sorted(set(sd) - used)
    if unknown:
        raise ValueError(f"keys of no ECG-JEPA module: {unknown[:10]}{' ...' if len(unknown) > 10 else ''}")
    return out


def _depth(sd: Mapping[str, Tensor], pattern: str) -> int:
    return len({m.group(1) for k in sd if (m := re.match(pattern, k))})


def _heads(dim: int, given: Optional[int], name: str) -> int:
    heads = given if given is not None else PUBLISHED_HEADS.get(dim)
    if heads is None:
        raise ValueError(
            f"{name} width {dim} is not a published size: give its number of attention heads "
            f"(published: {PUBLISHED_HEADS})"
        )
    if dim % heads != 0:
        raise ValueError(f"{name} width {dim} is not divisible by {heads} heads")
    return heads


def original_config(
    checkpoint: Mapping[str, Any],
    heads: Optional[int] = None,
    predictor_heads: Optional[int] = None,
    **overrides: Any,
) -> ECGJEPAConfig:
    """The :class:`ECGJEPAConfig` whose model takes :func:`convert_original_state_dict` of ``checkpoint``.

    Sizes come from the tensor shapes: ``D`` and ``t`` from ``W_P`` (D, t), the lead rows ``c`` from the position
    table (``c * 50`` rows, the original's 50 patches of 2500 samples), depths from the block indices, the MLP
    ratio from ``fc1``, ``qkv_bias`` from its presence. Heads are not in the shapes: ``heads`` /
    ``predictor_heads``, or the published counts for widths 768 and 384. Without a predictor in the file its
    sizes keep the published defaults. ``overrides`` set any other field (``leads`` for ``restrict_leads`` ...).

    Raises:
        ValueError: an unpublished width without a head count, or one not divisible by it.
    """
    sd = unwrap_checkpoint(checkpoint)
    embed = sd["encoder.W_P.weight"]
    dim, patch = int(embed.shape[0]), int(embed.shape[1])
    rows = sd["encoder.pos_embed"].reshape(-1, dim).shape[0] if "encoder.pos_embed" in sd else 8 * ORIGINAL_PATCHES
    fc1 = sd["encoder.encoder_blocks.blocks.0.mlp.fc1.weight"]
    values: Dict[str, Any] = {
        "num_leads": rows // ORIGINAL_PATCHES,
        "seq_len": ORIGINAL_PATCHES * patch,
        "patch_size": patch,
        "embed_dim": dim,
        "depth": _depth(sd, r"encoder\.encoder_blocks\.blocks\.(\d+)\."),
        "heads": _heads(dim, heads, "encoder"),
        "mlp_ratio": int(fc1.shape[0]) / dim,
        "qkv_bias": "encoder.encoder_blocks.blocks.0.attn.qkv.bias" in sd,
    }
    if "predictor.predictor_embed.weight" in sd:
        pdim = int(sd["predictor.predictor_embed.weight"].shape[0])
        values["predictor_embed_dim"] = pdim
        values["predictor_depth"] = _depth(sd, r"predictor\.predictor_blocks\.blocks\.(\d+)\.")
        values["predictor_heads"] = _heads(pdim, predictor_heads, "predictor")
    elif predictor_heads is not None:
        values["predictor_heads"] = predictor_heads
    values.update(overrides)
    return ECGJEPAConfig(**values)
