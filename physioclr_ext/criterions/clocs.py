"""Criterion ``clocs``: CLOCS (Kiyasseh et al., ICML 2021) on the views of ``ecg_contrastive``.

The CLOCS variant (``cmsc``, ``cmlc``, ``cmsmlc``) is a data option, ``task.mode``; the
criterion reads it from the task to check the number of views it gets. The loss is
:func:`physioclr_ext.losses.clocs.clocs_loss`, averaged over every pair of views (the original
code keeps only the last pair for CMLC and CMSMLC), with every instance of the same patient as a
further positive.
"""

from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Tuple

import torch
from fairseq_signals.criterions import BaseCriterion, register_criterion
from fairseq_signals.dataclass import Dataclass

from physioclr_ext.criterions._contrastive import fairseq_scaled, reduce_contrastive_metrics
from physioclr_ext.losses.clocs import clocs_loss

EXPECTED_VIEWS = {"cmsc": lambda v: v == 2, "cmlc": lambda v: v >= 2, "cmsmlc": lambda v: v >= 4 and v % 2 == 0}


@dataclass
class ClocsCriterionConfig(Dataclass):
    temperature: float = field(default=0.1, metadata={"help": "softmax temperature tau (paper: 0.1)"})
    gather: bool = field(default=True, metadata={"help": "views and patient ids from every data-parallel worker"})


@register_criterion("clocs", dataclass=ClocsCriterionConfig)
class ClocsCriterion(BaseCriterion):
    def __init__(self, cfg: ClocsCriterionConfig, task: Any) -> None:
        super().__init__(task)
        # Without a task (unit tests) any number of views is accepted.
        self.mode: Optional[str] = getattr(getattr(task, "cfg", None), "mode", None)
        if self.mode is not None and self.mode not in EXPECTED_VIEWS:
            raise ValueError(f"criterion clocs needs task.mode in {sorted(EXPECTED_VIEWS)}, not {self.mode!r}")
        self.temperature, self.gather = cfg.temperature, cfg.gather

    def forward(self, model: Any, sample: Dict[str, Any], reduce: bool = True) -> Tuple[torch.Tensor, int, Dict]:
        z = model(**sample["net_input"])["z"]
        if self.mode is not None and not EXPECTED_VIEWS[self.mode](z.shape[0]):
            raise ValueError(f"{self.mode} got {z.shape[0]} views")
        loss, logs = clocs_loss(z, sample["patient_id"].to(z.device), self.temperature, gather=self.gather)
        return fairseq_scaled(loss, logs, nsignals=z.shape[1])

    @staticmethod
    def reduce_metrics(logging_outputs: List[Dict[str, Any]], prefix: Optional[str] = None) -> None:
        reduce_contrastive_metrics(logging_outputs, ("n_pairs", "positives_per_anchor"))

    @staticmethod
    def logging_outputs_can_be_summed() -> bool:
        return False
