"""Optimizer ``adamw``: fairseq-signals' ``adam`` (decoupled weight decay, i.e. AdamW) with biases and 1-D
parameters (LayerNorm weights, biases) exempt from weight decay, as in ECG-JEPA, I-JEPA, MAE and timm,
and per-parameter learning-rate multipliers: a parameter carrying an ``lr_scale`` attribute (set by the
model, e.g. ``ecg_ssl_classifier``'s ``encoder_lr_scale``) gets ``lr * lr_scale`` at every step of the
schedule (a smaller learning rate for a pretrained encoder than for a new head). Adam is invariant to
the scale of the gradient, so this has to be a learning rate, not a gradient multiplier.

fairseq-signals' trainer hands the optimizer a flat list of tensors without names, so the rule is on shape:
a parameter with ``ndim <= 1`` is exempt (every bias is 1-D). Everything else (options, checkpoints) is
``adam``'s. Mixed precision: ``common.fp16`` flattens all parameters into one vector, which would lose the
groups, so this optimizer refuses flat parameters: set ``common.fp16_no_flatten_grads: true`` (or use
``common.memory_efficient_fp16``).

YAML::

    optimizer:
      _name: adamw
      adam_betas: (0.9, 0.999)
      weight_decay: 0.05
"""

from dataclasses import dataclass
from typing import Any, Dict, Iterable, List

import torch
from fairseq_signals.optim import OPTIMIZER_REGISTRY, register_optimizer
from fairseq_signals.optim.adam import Adam as DecoupledAdam  # the torch.optim class behind `adam`
from fairseq_signals.optim.adam import AdamConfig
from fairseq_signals.optim.optimizer import Optimizer

FairseqAdam: Any = OPTIMIZER_REGISTRY["adam"]


def weight_decay_groups(params: Iterable[torch.Tensor], weight_decay: float) -> List[Dict[str, Any]]:
    """Parameter groups: ``ndim >= 2`` with ``weight_decay``, biases and 1-D parameters with 0, each split
    by the parameters' ``lr_scale`` attribute (default 1.0; stored in the group as ``lr_scale``). Groups
    with scale 1.0 come first (``get_lr`` reads the first group); empty groups are left out."""
    params = list(params)
    scales = sorted({float(getattr(p, "lr_scale", 1.0)) for p in params}, key=lambda s: (s != 1.0, -s))
    groups = []
    for scale in scales:
        mine = [p for p in params if float(getattr(p, "lr_scale", 1.0)) == scale]
        for decayed in (True, False):
            group = [p for p in mine if (p.ndim >= 2) == decayed]
            if group:
                groups.append({"params": group, "weight_decay": weight_decay if decayed else 0.0, "lr_scale": scale})
    return groups


@dataclass
class AdamWConfig(AdamConfig):
    """The options of fairseq-signals' ``adam``."""


@register_optimizer("adamw", dataclass=AdamWConfig)
class AdamWNoDecay(FairseqAdam):  # type: ignore[misc]
    def __init__(self, cfg: AdamWConfig, params: Iterable[torch.Tensor]) -> None:
        Optimizer.__init__(self, cfg)
        self._optimizer = DecoupledAdam(weight_decay_groups(params, cfg.weight_decay), **self.optimizer_config)

    @property
    def supports_flat_params(self) -> bool:
        return False

    def get_lr(self) -> float:
        """The schedule's learning rate (that of a group with ``lr_scale`` 1)."""
        group = self.param_groups[0]
        return group["lr"] / group.get("lr_scale", 1.0)

    def set_lr(self, lr: float) -> None:
        """``lr * lr_scale`` for every group."""
        for group in self.param_groups:
            group["lr"] = lr * group.get("lr_scale", 1.0)
