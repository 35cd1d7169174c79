"""Criterion ``lead_fusion_barlow_twins``: LFBT's loss on the two views of the ``lfbt`` model.

A thin adapter: unpack ``z`` (2, B, N, D) from the model output, call
:func:`physioclr_ext.losses.lead_fusion_barlow_twins.lead_fusion_barlow_twins_loss` (over the global batch
under data-parallel training), and return ``(loss, sample_size, logging_output)`` scaled for fairseq's
trainer as the contrastive criterions are (:func:`physioclr_ext.criterions._contrastive.fairseq_scaled`).
"""

from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Tuple

import torch
from fairseq_signals.criterions import BaseCriterion, register_criterion
from fairseq_signals.dataclass import Dataclass

from physioclr_ext.criterions._contrastive import fairseq_scaled, reduce_worker_means
from physioclr_ext.losses.lead_fusion_barlow_twins import lead_fusion_barlow_twins_loss

LOGGED = ("intra", "inter", "on_diag")


@dataclass
class LeadFusionBarlowTwinsCriterionConfig(Dataclass):
    gamma: float = field(default=0.8, metadata={"help": "weight of the intra-lead term (paper 0.8; also 0.6)"})
    lambd: float = field(default=0.0051, metadata={"help": "weight of the off-diagonal terms (Barlow Twins)"})
    eps: float = field(default=1e-5, metadata={"help": "epsilon of the affine-free BatchNorm before C"})
    gather: bool = field(default=True, metadata={"help": "cross-correlation over the global data-parallel batch"})


@register_criterion("lead_fusion_barlow_twins", dataclass=LeadFusionBarlowTwinsCriterionConfig)
class LeadFusionBarlowTwinsCriterion(BaseCriterion):
    def __init__(self, cfg: LeadFusionBarlowTwinsCriterionConfig, task: Any) -> None:
        super().__init__(task)
        self.gamma, self.lambd, self.eps, self.gather = cfg.gamma, cfg.lambd, cfg.eps, cfg.gather

    def forward(self, model: Any, sample: Dict[str, Any], reduce: bool = True) -> Tuple[torch.Tensor, int, Dict]:
        z = model(**sample["net_input"])["z"]
        if z.shape[0] != 2:
            raise ValueError(
                f"lead_fusion_barlow_twins needs two views per window (task.mode: views), got {z.shape[0]}"
            )
        loss, logs = lead_fusion_barlow_twins_loss(
            z[0], z[1], gamma=self.gamma, lambd=self.lambd, eps=self.eps, gather=self.gather
        )
        return fairseq_scaled(loss, logs, nsignals=z.shape[1])

    @staticmethod
    def reduce_metrics(logging_outputs: List[Dict[str, Any]], prefix: Optional[str] = None) -> None:
        """Every worker reports the global loss with ``sample_size`` 1: log their mean."""
        reduce_worker_means(logging_outputs, LOGGED, loss_round=3)

    @staticmethod
    def logging_outputs_can_be_summed() -> bool:
        return False
