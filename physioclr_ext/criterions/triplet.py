"""Criterion ``triplet``: triplet margin loss with online mining for ``ecg_triplet``, and model selection
by a k-NN on the validation embeddings (the SMILES-2025 study, METHODS.md section 7).

A thin adapter: the loss is :func:`physioclr_ext.losses.triplet.triplet_loss` on the model's ``z`` and the
task's ``label`` (``ecg_classification``). In validation each batch's embeddings and labels are kept (in a
fairseq-signals ``AUCMeter``, which only stores arrays) and a derived metric ``knn_<metric>`` scores a
k-NN fitted on 80% of all validation windows against the other 20%
(:func:`physioclr_ext.evaluation.knn_selection.knn_selection_score`). Select checkpoints with::

    checkpoint:
      best_checkpoint_metric: knn_macro_f1   # or knn_auroc, matching criterion.selection_metric
      maximize_best_checkpoint_metric: true
"""

from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Tuple

import numpy as np
import torch
from fairseq_signals.criterions import BaseCriterion, register_criterion
from fairseq_signals.dataclass import Dataclass
from fairseq_signals.logging import meters, metrics

from physioclr_ext.criterions._contrastive import reduce_worker_means
from physioclr_ext.evaluation.knn_selection import SELECTION_METRICS, knn_selection_score
from physioclr_ext.losses.triplet import MINING, triplet_loss

STORE = "_triplet_knn_store"
LOGGED = ("n_triplets", "active", "d_ap", "d_an")


@dataclass
class TripletCriterionConfig(Dataclass):
    margin: float = field(default=1.0, metadata={"help": "triplet margin (study: 1.0)"})
    mining: str = field(default="random", metadata={"help": "random (study) | semi-hard | hardest"})
    knn_k: int = field(default=5, metadata={"help": "neighbours of the validation k-NN (study: 5)"})
    selection_metric: str = field(default="macro_f1", metadata={"help": "validation k-NN metric: macro_f1 | auroc"})
    knn_fit_fraction: float = field(default=0.8, metadata={"help": "share of validation windows the k-NN is fit on"})
    seed: int = field(default=0, metadata={"help": "seed of random mining and of the validation split"})


def _knn_metric(k: int, metric: str, fit_fraction: float, seed: int) -> Any:
    def fn(agg: Any) -> float:
        store = agg[STORE]
        if not store.scores:
            return float("nan")
        x, y = np.concatenate(store.scores), np.concatenate(store.targets)
        return round(knn_selection_score(x, y, k, metric, fit_fraction, seed), 4)

    return fn


@register_criterion("triplet", dataclass=TripletCriterionConfig)
class TripletCriterion(BaseCriterion):
    def __init__(self, cfg: TripletCriterionConfig, task: Any) -> None:
        super().__init__(task)
        if cfg.mining not in MINING or cfg.selection_metric not in SELECTION_METRICS:
            raise ValueError(f"mining must be one of {MINING}, selection_metric one of {SELECTION_METRICS}")
        self.cfg = cfg
        self.generator = torch.Generator().manual_seed(cfg.seed)

    def forward(self, model: Any, sample: Dict[str, Any], reduce: bool = True) -> Tuple[torch.Tensor, int, Dict]:
        z = model(**sample["net_input"])["z"]
        labels = sample["label"]
        loss, logs = triplet_loss(z, labels, self.cfg.margin, self.cfg.mining, self.generator)
        logging_output: Dict[str, Any] = {
            "loss": float(loss.detach()),
            "sample_size": 1,
            "nsignals": int(z.shape[0]),
            **logs,
        }
        if not model.training:
            c = self.cfg
            logging_output["_embeddings"] = z.detach().float().cpu().numpy()
            logging_output["_labels"] = labels.detach().float().cpu().numpy().reshape(len(z), -1)
            logging_output["_knn"] = (c.knn_k, c.selection_metric, c.knn_fit_fraction, c.seed)
        return loss, 1, logging_output

    @staticmethod
    def reduce_metrics(logging_outputs: List[Dict[str, Any]], prefix: Optional[str] = None) -> None:
        """Means over workers; in validation also the k-NN selection metric over every window so far."""
        reduce_worker_means(logging_outputs, LOGGED, loss_round=4)
        valid = [log for log in logging_outputs if "_embeddings" in log]
        if not valid:
            return
        for log in valid:
            metrics.log_custom(meters.AUCMeter, STORE, log["_embeddings"], log["_labels"])
        k, metric, fraction, seed = valid[0]["_knn"]
        metrics.log_derived(f"knn_{metric}", _knn_metric(k, metric, fraction, seed))

    @staticmethod
    def logging_outputs_can_be_summed() -> bool:
        return False
