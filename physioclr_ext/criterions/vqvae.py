"""Criterion ``vqvae``: reconstruction + commitment (+ codebook) loss of ``ecg_vqvae``, with codebook use
logged every update.

A thin adapter: read ``recon``, ``target`` and the quantiser's terms from the model output, call
:func:`physioclr_ext.losses.vqvae.vqvae_loss`, and log ``reconstruction``, ``commitment``, ``codebook``,
``perplexity`` (of this batch's codes), ``codes_used`` (in this batch) and ``dead_codes`` (over the
quantiser's usage window). The loss is each worker's mean, returned with ``sample_size`` 1, so the
trainer's update is the mean over workers.
"""

from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Tuple

import torch
from fairseq_signals.criterions import BaseCriterion, register_criterion
from fairseq_signals.dataclass import Dataclass

from physioclr_ext.criterions._contrastive import reduce_worker_means
from physioclr_ext.losses.vqvae import vqvae_loss

LOGGED = ("reconstruction", "commitment", "codebook", "perplexity", "codes_used", "dead_codes")


@dataclass
class VQVAECriterionConfig(Dataclass):
    """No options: beta and the quantiser's cures are model options (``model.beta``, ``model.ema``, ...)."""


@register_criterion("vqvae", dataclass=VQVAECriterionConfig)
class VQVAECriterion(BaseCriterion):
    def __init__(self, cfg: VQVAECriterionConfig, task: Any) -> None:
        super().__init__(task)

    def forward(self, model: Any, sample: Dict[str, Any], reduce: bool = True) -> Tuple[torch.Tensor, int, Dict]:
        out = model(**sample["net_input"])
        loss, logs = vqvae_loss(out["recon"], out["target"], out["commitment_loss"], out["codebook_loss"])
        logging_output: Dict[str, Any] = {
            "loss": float(loss.detach()),
            "sample_size": 1,
            "nsignals": int(out["target"].shape[0]),
            **logs,
        }
        for key in ("perplexity", "codes_used", "dead_codes"):
            logging_output[key] = float(out[key])
        return loss, 1, logging_output

    @staticmethod
    def reduce_metrics(logging_outputs: List[Dict[str, Any]], prefix: Optional[str] = None) -> None:
        """Means over workers of the loss and of each logged term."""
        reduce_worker_means(logging_outputs, LOGGED, loss_round=4)

    @staticmethod
    def logging_outputs_can_be_summed() -> bool:
        return False
