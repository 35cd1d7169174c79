"""Encoders of the original LFBT code (Aiwiscal/ECG_SSL_LFBT, Liu et al., Information Fusion 114, 2025) for
:class:`~physioclr_ext.modules.lfbt.LFBT`.

A pure key and shape mapping, no model is built here. The released files
(``checkpoint/encoder_group_gamma_0.6.pth`` and ``..._0.8.pth``) hold ``{"backbone_state_dict": [VGG16, ...]}``,
one pickled ``models.vgg_1d.VGG16`` per lead, in the order II, III, V1-V6, with ``fc`` replaced by an identity
(``run_pt.py``). Reading such a file needs its classes (a runner's concern,
:func:`physioclr_ext.runners.import_weights.load_original_file`); this module takes what is inside: the list of
modules or of their state dicts.

``VGG16`` keys: ``model.{s}.{b}.0`` (Conv1d) and ``model.{s}.{b}.1`` (BatchNorm1d, running statistics included)
for stage ``s`` (0-4) and block ``b``, a max-pool at ``model.{s}.{n_blocks}``, the average pool at ``model.5``,
and ``fc`` (dropped: an identity in pretraining, a classifier otherwise). Ours, :class:`~physioclr_ext.modules.
lfbt.VGG1d`, numbers the same layers in one ``features`` sequence: block ``b`` of stage ``s`` is
``features.{sum over earlier stages of (blocks + 1) + b}``. The projectors are not in the released files
(``run_pt.py`` saves the backbones only): they keep their initialisation.

Example:
    >>> from physioclr_ext.modules.lfbt import LFBT
    >>> backbones = torch.load("encoder_group_gamma_0.8.pth")["backbone_state_dict"]  # doctest: +SKIP
    >>> model = LFBT(original_config(backbones))                                        # doctest: +SKIP
    >>> model.load_state_dict(convert_original_state_dict(backbones), strict=False)    # doctest: +SKIP
"""

from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

from torch import Tensor

from physioclr_ext.modules.lfbt import LFBT_LEADS, VGG16_STAGES, LFBTConfig

__all__ = ["backbone_state_dicts", "convert_original_state_dict", "original_config"]

_CONV_PARAMS = ("0.weight", "0.bias", "1.weight", "1.bias", "1.running_mean", "1.running_var", "1.num_batches_tracked")


def backbone_state_dicts(checkpoint: Any) -> List[Dict[str, Tensor]]:
    """The per-lead ``VGG16`` state dicts of an original LFBT file's content.

    Takes ``{"backbone_state_dict": [...]}`` or the list itself; each element a module (anything with
    ``state_dict()``) or a state dict.

    Raises:
        ValueError: anything else (one line saying what was found).
    """
    if isinstance(checkpoint, Mapping):
        if "backbone_state_dict" not in checkpoint:
            keys = ", ".join(str(k) for k in list(checkpoint)[:5])
            raise ValueError(
                f"not an LFBT encoder file of Aiwiscal/ECG_SSL_LFBT (no 'backbone_state_dict'; keys: {keys})"
            )
        checkpoint = checkpoint["backbone_state_dict"]
    if not isinstance(checkpoint, (list, tuple)) or not checkpoint:
        raise ValueError(f"not an LFBT encoder list: expected one VGG16 per lead, got {type(checkpoint).__name__}")
    out = []
    for i, item in enumerate(checkpoint):
        sd = item.state_dict() if callable(getattr(item, "state_dict", None)) else item
        if not isinstance(sd, Mapping):
            raise ValueError(f"backbone {i} is a {type(item).__name__}, not a VGG16 module or state dict")
        out.append({(k[len("module.") :] if k.startswith("module.") else k): v for k, v in sd.items()})
    return out


def _alpha(sd: Mapping[str, Tensor], lead: int) -> float:
    first = sd.get("model.0.0.0.weight")
    if first is None:
        raise ValueError(f"backbone {lead} has no model.0.0.0.weight: not an LFBT VGG16 state dict")
    if first.dim() != 3 or first.shape[1] != 1:
        raise ValueError(
            f"backbone {lead}: first convolution {tuple(first.shape)}, expected (C, 1, 3) (one lead per encoder)"
        )
    return float(first.shape[0]) / VGG16_STAGES[0][0]


def _convert_backbone(sd: Mapping[str, Tensor], lead: int, alpha: float) -> Dict[str, Tensor]:
    """One ``VGG16`` state dict -> the keys of ``encoders.{lead}`` (:class:`VGG1d`), with every shape checked."""
    out: Dict[str, Tensor] = {}
    used = set()
    offset, previous = 0, 1
    for stage, (width, blocks) in enumerate(VGG16_STAGES):
        channels = int(width * alpha)
        for block in range(blocks):
            theirs, ours = f"model.{stage}.{block}.", f"encoders.{lead}.features.{offset + block}."
            for param in _CONV_PARAMS:
                if theirs + param not in sd:
                    raise ValueError(f"backbone {lead}: {theirs + param} missing; not an LFBT VGG16 (alpha {alpha})")
                out[ours + param] = sd[theirs + param]
                used.add(theirs + param)
            conv = sd[theirs + "0.weight"]
            if tuple(conv.shape) != (channels, previous, 3):
                raise ValueError(
                    f"backbone {lead}: {theirs}0.weight is {tuple(conv.shape)}, expected {(channels, previous, 3)} "
                    f"(VGG16 with alpha {alpha})"
                )
            for param in _CONV_PARAMS[1:-1]:
                if tuple(sd[theirs + param].shape) != (channels,):
                    raise ValueError(f"backbone {lead}: {theirs + param} is {tuple(sd[theirs + param].shape)}")
            previous = channels
        offset += blocks + 1  # the stage's max-pool
    unknown = sorted(k for k in sd if k not in used and not k.startswith("fc."))
    if unknown:
        raise ValueError(f"backbone {lead}: keys of no LFBT VGG16 layer: {unknown[:10]}")
    return out


def _checked(checkpoint: Any) -> Tuple[List[Dict[str, Tensor]], float]:
    backbones = backbone_state_dicts(checkpoint)
    alphas = {_alpha(sd, i) for i, sd in enumerate(backbones)}
    if len(alphas) != 1:
        raise ValueError(f"the backbones have different widths (alpha {sorted(alphas)})")
    return backbones, alphas.pop()


def convert_original_state_dict(checkpoint: Any) -> Dict[str, Tensor]:
    """An original LFBT encoder list (see :func:`backbone_state_dicts`) -> the ``encoders.*`` keys of
    :class:`~physioclr_ext.modules.lfbt.LFBT` (``projectors.*`` absent: load with ``strict=False``).

    Raises:
        ValueError: not VGG16 backbones of one input channel, a shape that is not VGG16's at the width the first
            convolution implies, backbones of different widths, or a key of no VGG16 layer.
    """
    backbones, alpha = _checked(checkpoint)
    out: Dict[str, Tensor] = {}
    for lead, sd in enumerate(backbones):
        out.update(_convert_backbone(sd, lead, alpha))
    return out


def original_config(checkpoint: Any, leads: Optional[Sequence[str]] = None, **overrides: Any) -> LFBTConfig:
    """The :class:`LFBTConfig` whose model takes :func:`convert_original_state_dict` of ``checkpoint``.

    ``alpha`` from the first convolution's width; one encoder per backbone (``share_weights`` false). ``leads``:
    the backbones' leads in order, by default the original's II, III, V1-V6 (which needs 8 backbones).
    ``overrides`` set any other field (``projector`` ...).

    Raises:
        ValueError: see :func:`convert_original_state_dict`; a lead count that differs from the backbones'.
    """
    backbones, alpha = _checked(checkpoint)
    names = list(leads) if leads is not None else list(LFBT_LEADS)
    if len(names) != len(backbones):
        raise ValueError(
            f"{len(backbones)} backbones but {len(names)} leads ({', '.join(names)}); name the backbones' leads in "
            "order"
        )
    values: Dict[str, Any] = {"leads": names, "alpha": alpha, "share_weights": False}
    values.update(overrides)
    return LFBTConfig(**values)
