"""NT-Xent, the normalised temperature-scaled cross-entropy of SimCLR.

Chen, Kornblith, Norouzi, Hinton, "A Simple Framework for Contrastive Learning of Visual
Representations", ICML 2020 (arXiv 2002.05709).
"""

from __future__ import annotations

from typing import Dict, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor

from physioclr_ext.losses.distributed import gather_with_grad, local_rows, sum_value_over_workers

__all__ = ["nt_xent_loss"]


def nt_xent_loss(
    z1: Tensor, z2: Tensor, temperature: float = 0.1, gather: bool = True
) -> Tuple[Tensor, Dict[str, float]]:
    """SimCLR NT-Xent over the 2N views of a batch (Chen et al., ICML 2020).

    Embeddings are L2-normalised, so logits are cosine similarities divided by
    ``temperature``. Each of the 2N views is an anchor: its positive is the other view of
    the same example, the remaining 2N - 2 views are negatives, and the self-similarity is
    excluded. The loss is the cross-entropy averaged over all 2N anchors (both directions).

    With ``gather=True`` under torch.distributed, this worker's 2B anchors are compared
    with the views of the whole gathered batch (N = sum of the workers' B), positives at
    their global offsets. The returned loss then has the value of the single-process loss
    on the concatenated batch, and its gradient w.r.t. this worker's ``z1, z2`` equals the
    single-process gradient for those rows: each worker back-propagates its anchors' terms
    divided by 2N, and the backward of the gather adds the terms of the other workers.
    Parameter gradients must therefore be summed over workers, see
    :mod:`physioclr_ext.losses.distributed`.

    Args:
        z1: ``(B, E)`` embeddings of the first view.
        z2: ``(B, E)`` embeddings of the second view, row i paired with ``z1[i]``.
        temperature: softmax temperature tau (SimCLR and CLOCS 0.1, KU-AI4H 0.07).
        gather: use the negatives of every data-parallel worker.

    Returns:
        ``(loss, logs)``: the scalar loss and floats ``nt_xent`` (the loss),
        ``positive_similarity`` (mean cosine of the positive pairs) and ``accuracy``
        (share of anchors whose most similar other view is their positive).

    Example:
        >>> z1, z2 = torch.randn(8, 128), torch.randn(8, 128)
        >>> loss, logs = nt_xent_loss(z1, z2, temperature=0.1)
        >>> sorted(logs)
        ['accuracy', 'nt_xent', 'positive_similarity']
    """
    if z1.ndim != 2 or z1.shape != z2.shape:
        raise ValueError(f"z1 and z2 must both be (B, E), got {tuple(z1.shape)} and {tuple(z2.shape)}")
    z1, z2 = F.normalize(z1, dim=1), F.normalize(z2, dim=1)
    b = z1.shape[0]
    if gather:
        k1, k2, rows = gather_with_grad(z1), gather_with_grad(z2), local_rows(b, z1.device)
    else:
        k1, k2, rows = z1, z2, torch.arange(b, device=z1.device)
    n = k1.shape[0]

    # Global column of each local anchor in cat([k1, k2]), and of its positive.
    own = torch.cat([rows, rows + n])
    positive = torch.cat([rows + n, rows])
    logits = torch.cat([z1, z2]) @ torch.cat([k1, k2]).T / temperature  # (2B, 2N)
    logits = logits.masked_fill(F.one_hot(own, 2 * n).bool(), float("-inf"))

    local_sum = F.cross_entropy(logits, positive, reduction="sum")
    loss = local_sum / (2 * n)
    with torch.no_grad():
        stats = torch.stack([(logits.argmax(dim=1) == positive).sum().to(z1.dtype), (z1 * z2).sum(dim=1).sum()])
    if gather:
        loss, stats = sum_value_over_workers(loss), sum_value_over_workers(stats)
    logs = {
        "nt_xent": float(loss.detach()),
        "positive_similarity": float(stats[1]) / n,
        "accuracy": float(stats[0]) / (2 * n),
    }
    return loss, logs
