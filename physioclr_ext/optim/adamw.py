"""Optimizer ``adamw``: fairseq-signals' ``adam`` (decoupled weight decay, i.e. AdamW) with biases and 1-D
parameters (LayerNorm weights, biases) exempt from weight decay, as in ECG-JEPA, I-JEPA, MAE and timm.

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
    """Two parameter groups: ``ndim >= 2`` with ``weight_decay``, biases and 1-D parameters with 0 (empty
    groups left out)."""
    params = list(params)
    decay = [p for p in params if p.ndim >= 2]
    exempt = [p for p in params if p.ndim < 2]
    groups = [{"params": decay, "weight_decay": weight_decay}, {"params": exempt, "weight_decay": 0.0}]
    return [g for g in groups if g["params"]]


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
