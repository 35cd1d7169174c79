"""What the contrastive criterions share: distributed scaling and metric reduction."""

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


def reduce_contrastive_metrics(logging_outputs: List[Dict[str, Any]], keys: Sequence[str]) -> None:
    """Average the loss and each logged key over workers (each worker reports sample_size 1)."""
    size = sum(log.get("sample_size", 0) for log in logging_outputs) or 1
    loss = sum(log.get("loss", 0.0) for log in logging_outputs)
    metrics.log_scalar("loss", loss / size / math.log(2), size, round=3)
    metrics.log_scalar("nsignals", sum(log.get("nsignals", 0) for log in logging_outputs))
    for key in keys:
        values = [log[key] for log in logging_outputs if key in log]
        if values:
            metrics.log_scalar(key, sum(values) / len(values), len(values), round=4)
