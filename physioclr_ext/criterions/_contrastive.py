"""What the criterions with a global loss share: distributed scaling and metric reduction."""

from __future__ import annotations

import math
from typing import Any, Dict, List, Sequence, Tuple

import torch
from fairseq_signals.logging import metrics

from physioclr_ext.losses.distributed import get_world_size


def fairseq_scaled(
    loss: torch.Tensor, logs: Dict[str, float], nsignals: int
) -> Tuple[torch.Tensor, int, Dict[str, Any]]:
    """Adapt a loss whose value is global and whose gradient is this worker's share
    (see :mod:`physioclr_ext.losses.distributed`) to fairseq-signals' trainer.

    The trainer scales gradients by ``world_size / sum(sample_size)`` after DDP has averaged
    them over workers; returning ``loss * world_size`` with ``sample_size = 1`` per worker
    turns that into the sum of the workers' shares, i.e. the single-process gradient. The
    logged ``loss`` is the plain value, so that ``sum(loss) / sum(sample_size)`` over workers
    is the loss itself.
    """
    world = get_world_size()
    logging_output: Dict[str, Any] = {"loss": float(loss.detach()), "sample_size": 1, "nsignals": nsignals}
    logging_output.update({k: float(v) for k, v in logs.items()})
    return loss * world, 1, logging_output


def reduce_worker_means(
    logging_outputs: List[Dict[str, Any]], keys: Sequence[str], loss_scale: float = 1.0, loss_round: int = 4
) -> None:
    """Log the loss (times ``loss_scale``) and each logged key averaged over workers, for criterions whose
    workers each report ``sample_size`` 1 (:func:`fairseq_scaled`) or a global value."""
    size = sum(log.get("sample_size", 0) for log in logging_outputs) or 1
    loss = sum(log.get("loss", 0.0) for log in logging_outputs)
    metrics.log_scalar("loss", loss / size * loss_scale, size, round=loss_round)
    metrics.log_scalar("nsignals", sum(log.get("nsignals", 0) for log in logging_outputs))
    for key in keys:
        values = [log[key] for log in logging_outputs if key in log]
        if values:
            metrics.log_scalar(key, sum(values) / len(values), len(values), round=4)


def reduce_contrastive_metrics(logging_outputs: List[Dict[str, Any]], keys: Sequence[str]) -> None:
    """Average the loss (in bits, as fairseq logs) and each logged key over workers."""
    reduce_worker_means(logging_outputs, keys, loss_scale=1 / math.log(2), loss_round=3)
