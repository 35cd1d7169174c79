"""Criterion ``physioclr``: ``L = L_contrastive + alpha L_reconstruction + beta L_peak`` (Maghsoodi et al.,
arXiv 2509.08116) on the output of ``wav2vec2_physioCLR`` and the batches of the ``ecg_feature`` task.

A thin adapter over :func:`physioclr_ext.losses.physioclr.physioclr_loss`: unpack the model
output (``h``, ``h_shuffled``, ``h_neighbour``, ``reconstruction``, ``peak_map`` logits) and the
batch (``features``, ``feature_valid``, ``neighbour_valid``, ``r_peaks``, ``sample_rate``), call the
loss, and return ``(loss, sample_size, logging_output)`` (the release returned two values, which
fairseq-signals' trainer cannot unpack). The loss is global over data-parallel workers with this
worker's share of the gradient; :func:`~physioclr_ext.criterions._contrastive.fairseq_scaled` turns
that into the single-process gradient under fairseq-signals' gradient scaling.
"""

from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Tuple

import torch
from fairseq_signals.criterions import BaseCriterion, register_criterion
from fairseq_signals.dataclass import Dataclass

from physioclr_ext.criterions._contrastive import fairseq_scaled, reduce_contrastive_metrics
from physioclr_ext.losses.physioclr import PhysioCLRLossConfig, physioclr_loss
from physioclr_ext.models.core_config import core_config

LOGGED = (
    "loss_contrastive",
    "loss_reconstruction",
    "loss_peak",
    "positives_per_anchor",
    "negatives_per_anchor",
    "n_no_negative",
)


@dataclass
class PhysioCLRCriterionConfig(PhysioCLRLossConfig, Dataclass):
    """The loss hyperparameters of :class:`~physioclr_ext.losses.physioclr.PhysioCLRLossConfig` (declared there
    once) and how to read the model's peak map. Whether the temporal neighbour is a positive is the task's
    ``use_neighbour``."""

    peak_sigmoid: bool = field(
        default=True,
        metadata={"help": "compare sigmoid(peak-map logits) with the [0, 1] target map (false: the raw head output)"},
    )


@register_criterion("physioclr", dataclass=PhysioCLRCriterionConfig)
class PhysioCLRCriterion(BaseCriterion):
    def __init__(self, cfg: PhysioCLRCriterionConfig, task: Any) -> None:
        super().__init__(task)
        self.cfg = cfg
        self.peak_sigmoid = cfg.peak_sigmoid
        self.loss_cfg = core_config(PhysioCLRLossConfig, cfg)
        # A data option: without a task (unit tests) the batch decides, through neighbour_valid.
        self.use_neighbour = bool(getattr(getattr(task, "cfg", None), "use_neighbour", True))

    def forward(self, model: Any, sample: Dict[str, Any], reduce: bool = True) -> Tuple[torch.Tensor, int, Dict]:
        out = model(**sample["net_input"])
        if "h_shuffled" not in out:
            raise ValueError("physioclr needs the heartbeat-shuffled view: train with task ecg_feature")
        peak_map = torch.sigmoid(out["peak_map"]) if self.peak_sigmoid else out["peak_map"]
        neighbour: Optional[torch.Tensor] = out.get("h_neighbour") if self.use_neighbour else None
        loss, logs = physioclr_loss(
            out["h"],
            out["h_shuffled"],
            sample["features"],
            out["reconstruction"],
            sample["net_input"]["source"],
            peak_map,
            sample["r_peaks"],
            float(sample["sample_rate"]),
            neighbour=neighbour,
            neighbour_valid=sample.get("neighbour_valid"),
            feature_valid=sample.get("feature_valid"),
            cfg=self.loss_cfg,
        )
        return fairseq_scaled(loss, logs, nsignals=out["h"].shape[0])

    @staticmethod
    def reduce_metrics(logging_outputs: List[Dict[str, Any]], prefix: Optional[str] = None) -> None:
        reduce_contrastive_metrics(logging_outputs, LOGGED)

    @staticmethod
    def logging_outputs_can_be_summed() -> bool:
        return False
