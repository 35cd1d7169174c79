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
from typing import Any, Dict, List, Tuple

import torch
from fairseq_signals.criterions import BaseCriterion, register_criterion
from fairseq_signals.dataclass import Dataclass

from physioclr_ext.criterions._contrastive import fairseq_scaled, reduce_contrastive_metrics
from physioclr_ext.losses.physioclr import physioclr_loss

LOGGED = ("loss_contrastive", "loss_reconstruction", "loss_peak", "positives_per_anchor", "negatives_per_anchor",
          "n_no_negative")


@dataclass
class PhysioCLRCriterionConfig(Dataclass):
    temperature: float = field(default=0.1, metadata={"help": "softmax temperature tau"})
    delta: float = field(default=0.25, metadata={"help": "feature cosine similarity from which two windows are positives"})
    alpha: float = field(default=0.2, metadata={"help": "weight of the (peak-aware) reconstruction MSE"})
    beta: float = field(default=0.1, metadata={"help": "weight of the R-peak map MSE"})
    gather: bool = field(default=True, metadata={"help": "compare with the anchors of every data-parallel worker"})
    exclude_self: bool = field(default=True, metadata={
        "help": "leave the constant self-pair (i, i) out of the positives (false: as released)"})
    positives_in_denominator: bool = field(default=False, metadata={
        "help": "InfoNCE-style denominator with the positives (false: as released, negatives only)"})
    use_neighbour: bool = field(default=True, metadata={"help": "the temporal neighbour is a positive"})
    sigma_s: float = field(default=0.02, metadata={"help": "width (s) of the Gaussian bumps of the target R-peak map"})
    width_s: float = field(default=0.06, metadata={"help": "half-width (s) of the up-weighted region around R-peaks"})
    peak_weight: float = field(default=4.0, metadata={
        "help": "reconstruction weight near R-peaks (1: the released plain MSE)"})
    weight_profile: str = field(default="box", metadata={"help": "box | gaussian profile of the peak weights"})
    peak_sigmoid: bool = field(default=True, metadata={
        "help": "compare sigmoid(peak-map logits) with the [0, 1] target map (false: the raw head output)"})


@register_criterion("physioclr", dataclass=PhysioCLRCriterionConfig)
class PhysioCLRCriterion(BaseCriterion):
    def __init__(self, cfg: PhysioCLRCriterionConfig, task: Any) -> None:
        super().__init__(task)
        self.cfg = cfg

    def forward(self, model: Any, sample: Dict[str, Any], reduce: bool = True) -> Tuple[torch.Tensor, int, Dict]:
        cfg = self.cfg
        out = model(**sample["net_input"])
        if "h_shuffled" not in out:
            raise ValueError("physioclr needs the heartbeat-shuffled view: train with task ecg_feature")
        peak_map = torch.sigmoid(out["peak_map"]) if cfg.peak_sigmoid else out["peak_map"]
        neighbour = out.get("h_neighbour") if cfg.use_neighbour else None
        loss, logs = physioclr_loss(
            out["h"], out["h_shuffled"], sample["features"], out["reconstruction"], sample["net_input"]["source"],
            peak_map, sample["r_peaks"], float(sample["sample_rate"]), neighbour=neighbour,
            neighbour_valid=sample.get("neighbour_valid"), feature_valid=sample.get("feature_valid"),
            temperature=cfg.temperature, delta=cfg.delta, alpha=cfg.alpha, beta=cfg.beta, gather=cfg.gather,
            exclude_self=cfg.exclude_self, positives_in_denominator=cfg.positives_in_denominator,
            sigma_s=cfg.sigma_s, width_s=cfg.width_s, peak_weight=cfg.peak_weight, weight_profile=cfg.weight_profile)
        return fairseq_scaled(loss, logs, nsignals=out["h"].shape[0])

    @staticmethod
    def reduce_metrics(logging_outputs: List[Dict[str, Any]], prefix: str = None) -> None:
        reduce_contrastive_metrics(logging_outputs, LOGGED)

    @staticmethod
    def logging_outputs_can_be_summed() -> bool:
        return False
