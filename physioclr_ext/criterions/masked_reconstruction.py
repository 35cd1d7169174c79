"""Criterion ``masked_reconstruction``: MAE's masked-patch MSE for ``ecg_mae`` and ``st_mem``.

A thin adapter: read ``pred``, ``target`` and ``mask`` from the model output ((B, N, P) / (B, N), or
(B, C, N, P) / (B, C, N) with leads kept apart), call
:func:`physioclr_ext.losses.masked_reconstruction.masked_reconstruction_loss` with ``reduction="sum"``
and return the number of masked patches as ``sample_size``. The target normalisation uses the model's
convention for the variance (``target_var_unbiased``: ST-MEM unbiased, MAE biased) unless ``unbiased_var``
says otherwise. fairseq-signals' trainer divides the
summed gradients by the summed ``sample_size`` of all data-parallel workers, so the update is exactly
the mean error over every masked patch of the global batch.
"""

from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Tuple

import torch
from fairseq_signals.criterions import BaseCriterion, register_criterion
from fairseq_signals.dataclass import Dataclass
from fairseq_signals.logging import metrics

from physioclr_ext.losses.masked_reconstruction import masked_reconstruction_loss


@dataclass
class MaskedReconstructionCriterionConfig(Dataclass):
    norm_target: bool = field(
        default=True, metadata={"help": "normalise each target patch by its own mean and std (MAE norm_pix_loss)"}
    )
    eps: float = field(default=1e-6, metadata={"help": "variance epsilon of the target normalisation"})
    unbiased_var: Optional[bool] = field(
        default=None,
        metadata={
            "help": "normalise targets with the unbiased variance (ST-MEM) or the biased one (MAE); null: the "
            "model's own convention (its `target_var_unbiased` attribute: true for st_mem, false for ecg_mae)"
        },
    )


@register_criterion("masked_reconstruction", dataclass=MaskedReconstructionCriterionConfig)
class MaskedReconstructionCriterion(BaseCriterion):
    def __init__(self, cfg: MaskedReconstructionCriterionConfig, task: Any) -> None:
        super().__init__(task)
        self.norm_target, self.eps = cfg.norm_target, cfg.eps
        self.unbiased_var = cfg.unbiased_var

    def forward(self, model: Any, sample: Dict[str, Any], reduce: bool = True) -> Tuple[torch.Tensor, int, Dict]:
        out = model(**sample["net_input"])
        unbiased = self.unbiased_var
        if unbiased is None:
            unbiased = bool(getattr(model, "target_var_unbiased", False))
        loss, logs = masked_reconstruction_loss(
            out["pred"],
            out["target"],
            out["mask"],
            norm_target=self.norm_target,
            eps=self.eps,
            reduction="sum",
            unbiased=unbiased,
        )
        n_masked = int(logs["n_masked"])
        n_visible = int(out["mask"].numel()) - n_masked
        logging_output = {
            "loss": float(loss.detach()),
            "sample_size": n_masked,
            "nsignals": int(out["mask"].shape[0]),
            "loss_masked_sum": logs["loss_masked"] * n_masked,
            "loss_visible_sum": logs["loss_visible"] * n_visible,
            "n_visible": n_visible,
        }
        return loss, n_masked, logging_output

    @staticmethod
    def reduce_metrics(logging_outputs: List[Dict[str, Any]], prefix: Optional[str] = None) -> None:
        """Means over all masked (visible) patches of all workers; ``loss`` equals ``loss_masked``."""

        def total(key: str) -> float:
            return sum(log.get(key, 0) for log in logging_outputs)

        n_masked, n_visible = total("sample_size"), total("n_visible")
        metrics.log_scalar("loss", total("loss") / max(n_masked, 1), n_masked, round=4)
        metrics.log_scalar("loss_masked", total("loss_masked_sum") / max(n_masked, 1), n_masked, round=4)
        metrics.log_scalar("loss_visible", total("loss_visible_sum") / max(n_visible, 1), n_visible, round=4)
        metrics.log_scalar("nsignals", total("nsignals"))

    @staticmethod
    def logging_outputs_can_be_summed() -> bool:
        return True
