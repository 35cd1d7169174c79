"""Data-parallel helpers for contrastive losses: gathers that keep the autograd graph.

A contrastive loss wants the negatives of every worker, so embeddings are all-gathered
along the batch dimension. :func:`gather_with_grad` follows the ``GatherLayer`` of
solo-learn and lightly: its backward all-reduces (sums) the incoming gradient over workers
and returns this worker's slice, so a worker's embeddings receive the gradient of every
worker's loss term that used them.

Gradient convention of the losses in this package: with ``gather=True`` the loss that
worker ``r`` returns has the value of the single-process loss on the concatenated batch,
and its gradient w.r.t. worker ``r``'s embeddings equals the single-process gradient
w.r.t. those rows. Each worker therefore holds its *share* of the global parameter
gradient, and the shares must be **summed** over workers. ``DistributedDataParallel``
averages instead, so scale the loss by :func:`get_world_size` before ``backward`` when
training with DDP (fairseq's trainer: report ``sample_size = 1`` per worker and multiply
the loss by the world size, since it multiplies by ``world_size / sum(sample_size)``).

Every worker must call these functions collectively, in the same order.
"""

from __future__ import annotations

from typing import Any, Optional, Tuple

import torch
import torch.distributed as dist
from torch import Tensor

__all__ = [
    "gather_no_grad",
    "gather_with_grad",
    "get_rank",
    "get_world_size",
    "is_distributed",
    "local_rows",
    "replicated_loss",
    "sum_value_over_workers",
]


def is_distributed(group: Optional[Any] = None) -> bool:
    """True when torch.distributed is initialised with more than one worker."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size(group) > 1


def get_world_size(group: Optional[Any] = None) -> int:
    """Number of data-parallel workers (1 outside distributed training)."""
    return dist.get_world_size(group) if is_distributed(group) else 1


def get_rank(group: Optional[Any] = None) -> int:
    """This worker's rank (0 outside distributed training)."""
    return dist.get_rank(group) if is_distributed(group) else 0


def _batch_sizes(x: Tensor, group: Optional[Any]) -> list[int]:
    """Leading-dimension size of ``x`` on every worker (batches may differ, e.g. the last one)."""
    local = torch.tensor([x.shape[0]], device=x.device, dtype=torch.long)
    sizes = [torch.zeros_like(local) for _ in range(dist.get_world_size(group))]
    dist.all_gather(sizes, local, group=group)
    return [int(s.item()) for s in sizes]


def _all_gather_padded(x: Tensor, sizes: list[int], group: Optional[Any]) -> Tensor:
    """Concatenate ``x`` from all workers; pads to the largest batch since gloo/NCCL want equal shapes."""
    longest = max(sizes)
    if x.shape[0] < longest:
        pad = x.new_zeros((longest - x.shape[0], *x.shape[1:]))
        x = torch.cat([x, pad])
    parts = [torch.empty_like(x) for _ in sizes]
    dist.all_gather(parts, x.contiguous(), group=group)
    return torch.cat([p[:n] for p, n in zip(parts, sizes)])


def _offset(sizes: list[int], group: Optional[Any]) -> int:
    return sum(sizes[: dist.get_rank(group)])


class _GatherWithGrad(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, x: Tensor, group: Optional[Any]) -> Tensor:
        sizes = _batch_sizes(x, group)
        ctx.group = group
        ctx.start = _offset(sizes, group)
        ctx.stop = ctx.start + x.shape[0]
        return _all_gather_padded(x, sizes, group)

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> Tuple[Tensor, None]:
        grad = grad.contiguous().clone()
        # Every worker's loss may use every worker's rows: sum their gradients.
        dist.all_reduce(grad, op=dist.ReduceOp.SUM, group=ctx.group)
        return grad[ctx.start : ctx.stop], None


def gather_with_grad(x: Tensor, group: Optional[Any] = None) -> Tensor:
    """All-gather ``x`` of shape ``(B, ...)`` into ``(sum_r B_r, ...)``, differentiably.

    Rows are ordered by rank, so the result equals ``torch.cat`` of the per-worker
    batches. The backward sums the gradient over workers and returns this worker's rows.
    Identity when torch.distributed is not initialised or has one worker.

    Example:
        >>> z = torch.randn(4, 8, requires_grad=True)
        >>> gather_with_grad(z).shape  # single process: unchanged
        torch.Size([4, 8])
    """
    if not is_distributed(group):
        return x
    gathered: Tensor = _GatherWithGrad.apply(x, group)  # type: ignore[no-untyped-call]
    return gathered


def gather_no_grad(x: Tensor, group: Optional[Any] = None) -> Tensor:
    """All-gather ``x`` of shape ``(B, ...)`` without autograd (ids, labels).

    Example:
        >>> gather_no_grad(torch.tensor([3, 3, 7])).tolist()  # single process
        [3, 3, 7]
    """
    if not is_distributed(group):
        return x
    with torch.no_grad():
        return _all_gather_padded(x, _batch_sizes(x, group), group)


def local_rows(n_local: int, device: torch.device, group: Optional[Any] = None) -> Tensor:
    """Indices of this worker's ``n_local`` rows inside the gathered batch, shape ``(n_local,)``.

    Example:
        >>> local_rows(3, torch.device("cpu")).tolist()  # single process
        [0, 1, 2]
    """
    start = 0
    if is_distributed(group):
        start = _offset(_batch_sizes(torch.empty(n_local, device=device), group), group)
    return torch.arange(start, start + n_local, device=device)


def sum_value_over_workers(x: Tensor, group: Optional[Any] = None) -> Tensor:
    """Return a tensor whose *value* is the sum of ``x`` over workers and whose gradient is ``x``'s.

    Used so that every worker reports the global loss while back-propagating only its
    own share of it. Identity outside distributed training.

    Example:
        >>> x = torch.tensor(2.0, requires_grad=True)
        >>> sum_value_over_workers(x).item()
        2.0
    """
    if not is_distributed(group):
        return x
    total = x.detach().clone()
    dist.all_reduce(total, op=dist.ReduceOp.SUM, group=group)
    return total + (x - x.detach())


def replicated_loss(loss: Tensor, group: Optional[Any] = None) -> Tensor:
    """Adapt a loss that every worker computes identically on gathered inputs.

    The value is kept; the gradient is divided by the world size, because the backward
    of :func:`gather_with_grad` sums the (identical) gradients of all workers and would
    otherwise count the loss once per worker. Identity outside distributed training.

    Example:
        >>> loss = torch.tensor(1.5, requires_grad=True)
        >>> replicated_loss(loss).item()
        1.5
    """
    world = get_world_size(group)
    if world == 1:
        return loss
    return loss.detach() + (loss - loss.detach()) / world
