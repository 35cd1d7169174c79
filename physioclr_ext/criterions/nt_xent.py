"""Criterion ``nt_xent``: SimCLR's NT-Xent on the two views of ``ecg_contrastive``.

A thin adapter: unpack ``z`` (2, B, P) from the model output, call
:func:`physioclr_ext.losses.nt_xent.nt_xent_loss` (gathered over data-parallel workers), and
return ``(loss, sample_size, logging_output)``.
"""

from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Tuple

import torch
from fairseq_signals.criterions import BaseCriterion, register_criterion
from fairseq_signals.dataclass import Dataclass

from physioclr_ext.criterions._contrastive import fairseq_scaled, reduce_contrastive_metrics
from physioclr_ext.losses.nt_xent import nt_xent_loss


@dataclass
class NTXentCriterionConfig(Dataclass):
    temperature: float = field(default=0.1, metadata={"help": "softmax temperature tau"})
    gather: bool = field(default=True, metadata={"help": "negatives from every data-parallel worker"})


@register_criterion("nt_xent", dataclass=NTXentCriterionConfig)
class NTXentCriterion(BaseCriterion):
    def __init__(self, cfg: NTXentCriterionConfig, task: Any) -> None:
        super().__init__(task)
        self.temperature, self.gather = cfg.temperature, cfg.gather

    def forward(self, model: Any, sample: Dict[str, Any], reduce: bool = True) -> Tuple[torch.Tensor, int, Dict]:
        z = model(**sample["net_input"])["z"]
        if z.shape[0] != 2:
            raise ValueError(f"nt_xent needs two views per window (task.mode: views), got {z.shape[0]}")
        loss, logs = nt_xent_loss(z[0], z[1], self.temperature, gather=self.gather)
        return fairseq_scaled(loss, logs, nsignals=z.shape[1])

    @staticmethod
    def reduce_metrics(logging_outputs: List[Dict[str, Any]], prefix: Optional[str] = None) -> None:
        reduce_contrastive_metrics(logging_outputs, ("positive_similarity", "accuracy"))

    @staticmethod
    def logging_outputs_can_be_summed() -> bool:
        return False
