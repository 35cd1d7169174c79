"""Criterion ``jepa``: ECG-JEPA's latent prediction loss for the model ``ecg_jepa``.

A thin adapter: read ``pred`` and ``target`` (B, C, n_mask, D) from the model output, call
:func:`physioclr_ext.losses.jepa.jepa_loss` with ``reduction="sum"`` (the sum over predicted tokens of the
per-token mean over D) and return the number of predicted tokens as ``sample_size``; fairseq-signals
divides the gradients by it, so an update follows the mean over every element of the global batch, the
original's ``SmoothL1Loss()``. Logged: ``loss``, and ``target_std`` / ``pred_std``, the mean over dimensions
of the per-dimension standard deviation of the (layer-normed) targets and of the predictions: a collapse
drives them towards 0.

``variance_weight`` > 0 (default 0: the original) adds :func:`~physioclr_ext.losses.jepa.variance_hinge` of
the model's ``context`` (N, D): by default the per-sample pooled context representation (N = B; the model's
``regularise_on`` chooses the rows, every visible token among them) times that weight to the per-element mean,
and ``covariance_weight`` > 0 VICReg's :func:`~physioclr_ext.losses.jepa.covariance_penalty` of it, against
collapse of the pooled representation; logged as ``variance``, ``covariance`` and ``context_std``.
"""

from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Tuple

import torch
from fairseq_signals.criterions import BaseCriterion, register_criterion
from fairseq_signals.dataclass import Dataclass
from fairseq_signals.logging import metrics

from physioclr_ext.losses.jepa import covariance_penalty, jepa_loss, per_dim_std, variance_hinge


@dataclass
class JEPACriterionConfig(Dataclass):
    beta: float = field(default=1.0, metadata={"help": "SmoothL1 threshold (1 in the original)"})
    normalize_target: bool = field(default=True, metadata={"help": "layer-norm the targets over features"})
    variance_weight: float = field(
        default=0.0,
        metadata={"help": "weight of a VICReg variance term on the pooled context representation (0: the original)"},
    )
    variance_target: float = field(default=1.0, metadata={"help": "per-dimension standard deviation it asks for"})
    covariance_weight: float = field(
        default=0.0,
        metadata={"help": "weight of VICReg's covariance term on the pooled context representation (0: the original)"},
    )


@register_criterion("jepa", dataclass=JEPACriterionConfig)
class JEPACriterion(BaseCriterion):
    def __init__(self, cfg: JEPACriterionConfig, task: Any) -> None:
        super().__init__(task)
        self.beta, self.normalize_target = cfg.beta, cfg.normalize_target
        self.variance_weight, self.variance_target = cfg.variance_weight, cfg.variance_target
        self.covariance_weight = cfg.covariance_weight

    def forward(self, model: Any, sample: Dict[str, Any], reduce: bool = True) -> Tuple[torch.Tensor, int, Dict]:
        regularised = self.variance_weight > 0 or self.covariance_weight > 0
        out = model(**sample["net_input"], with_context=regularised)
        loss, logs = jepa_loss(
            out["pred"], out["target"], beta=self.beta, normalize_target=self.normalize_target, reduction="sum"
        )
        n_tokens = int(logs["n_tokens"])
        extra: Dict[str, float] = {}
        if regularised:
            variance = variance_hinge(out["context"], self.variance_target)
            covariance = covariance_penalty(out["context"])
            regulariser = self.variance_weight * variance + self.covariance_weight * covariance
            loss = loss + regulariser * n_tokens  # sample_size n_tokens divides it back
            extra = {
                "variance_sum": float(variance.detach()) * n_tokens,
                "covariance_sum": float(covariance.detach()) * n_tokens,
                "context_std_sum": float(per_dim_std(out["context"])) * n_tokens,
            }
        logging_output = {
            "loss": float(loss.detach()),
            "sample_size": n_tokens,
            "nsignals": int(out["pred"].shape[0]),
            "target_std_sum": logs["target_std"] * n_tokens,
            "pred_std_sum": logs["pred_std"] * n_tokens,
            "mask_ratio_sum": float(out["mask"].float().mean()) * n_tokens,
            **extra,
        }
        return loss, n_tokens, logging_output

    @staticmethod
    def reduce_metrics(logging_outputs: List[Dict[str, Any]], prefix: Optional[str] = None) -> None:
        """Means over all predicted tokens of all workers (the standard deviations are per-batch values,
        weighted by the batch's tokens)."""

        def total(key: str) -> float:
            return sum(log.get(key, 0) for log in logging_outputs)

        n = max(total("sample_size"), 1)
        metrics.log_scalar("loss", total("loss") / n, n, round=4)
        metrics.log_scalar("target_std", total("target_std_sum") / n, n, round=4)
        metrics.log_scalar("pred_std", total("pred_std_sum") / n, n, round=4)
        metrics.log_scalar("mask_ratio", total("mask_ratio_sum") / n, n, round=3)
        if any("variance_sum" in log for log in logging_outputs):
            metrics.log_scalar("variance", total("variance_sum") / n, n, round=4)
            metrics.log_scalar("covariance", total("covariance_sum") / n, n, round=4)
            metrics.log_scalar("context_std", total("context_std_sum") / n, n, round=4)
        metrics.log_scalar("nsignals", total("nsignals"))

    @staticmethod
    def logging_outputs_can_be_summed() -> bool:
        return True
