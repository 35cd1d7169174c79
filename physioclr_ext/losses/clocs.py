"""CLOCS: contrastive learning of cardiac signals across space, time and patients.

Kiyasseh, Zhu, Clifton, "CLOCS: Contrastive Learning of Cardiac Signals Across Space,
Time, and Patients", ICML 2021 (PMLR 139:5606-5615; arXiv 2005.13249). Re-implemented
from the paper and the description of ``obtain_contrastive_loss`` in danikiyasseh/CLOCS
(CC BY-NC-SA 4.0, not copied).

The views (CMSC, CMLC, CMSMLC) are made by :mod:`physioclr_ext.augmentations.clocs_views`.
"""

from __future__ import annotations

from typing import Dict, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor

from physioclr_ext.losses.distributed import gather_no_grad, gather_with_grad, replicated_loss

__all__ = ["clocs_loss"]


def clocs_loss(
    views: Tensor,
    patient_ids: Tensor,
    temperature: float = 0.1,
    gather: bool = True,
    symmetric_patients: bool = False,
) -> Tuple[Tensor, Dict[str, float]]:
    """CLOCS patient-aware contrastive loss over every pair of views (Kiyasseh et al., ICML 2021).

    For each unordered pair of views (i, j), i < j, let ``S = cos(z_i, z_j) / tau`` (B x B,
    rows: instances in view i, columns: instances in view j) and write
    ``row[a, b] = S[a, b] - logsumexp_b' S[a, b']`` and ``col[a, b] = S[a, b] - logsumexp_a' S[a', b]``.
    Positives are the diagonal (same instance) and the off-diagonal entries whose patient ids
    match. Following the CLOCS code, each positive entry contributes its own log term and the
    pair loss is the mean of up to four averaged terms::

        L_ij = ( -mean_a row[a, a] - mean_a col[a, a]
                 - mean_{a<b, pid_a=pid_b} row[a, b] - mean_{a>b, pid_a=pid_b} col[a, b] ) / n_terms

    where the patient terms are present only when some off-diagonal positive exists
    (``n_terms`` is 2 or 4). As in the original, patient positives above the diagonal are
    scored along rows and those below it along columns only (the code comments that a term
    is missing for symmetry); ``symmetric_patients=True`` instead scores every off-diagonal
    positive along both rows and columns. The loss is the mean of ``L_ij`` over all
    ``V (V - 1) / 2`` pairs, as in the paper. Note: the released ``obtain_contrastive_loss``
    *assigns* the pair loss inside its loop over view pairs instead of accumulating it, so
    only the last pair counts (scaled by 1 / n_pairs); this makes no difference for CMSC
    (one pair) but does for CMLC and CMSMLC. This implementation averages over all pairs.

    With ``gather=True`` under torch.distributed, embeddings and patient ids of every worker
    are gathered (so patients shared across workers are positives) and each worker computes
    the full loss on the gathered batch; its gradient is divided by the world size
    (:func:`~physioclr_ext.losses.distributed.replicated_loss`) because the gather's backward
    sums the identical gradients of all workers. The loss value equals the single-process
    loss on the concatenated batch and the gradient w.r.t. this worker's ``views`` equals the
    single-process gradient for those rows; sum parameter gradients over workers (see
    :mod:`physioclr_ext.losses.distributed`).

    Args:
        views: ``(V, B, E)`` embeddings of V >= 2 views of B instances (V = 2 for CMSC,
            n_leads for CMLC, 2 * n_leads for CMSMLC).
        patient_ids: ``(B,)`` integer patient ids (map string ids to integers upstream).
        temperature: softmax temperature tau (0.1 in CLOCS).
        gather: use the instances of every data-parallel worker.
        symmetric_patients: score each patient positive in both directions (see above).

    Returns:
        ``(loss, logs)``: the scalar loss and floats ``clocs`` (the loss), ``n_pairs`` and
        ``positives_per_anchor`` (mean positives per anchor, the diagonal included).

    Example:
        >>> x = torch.randn(4, 1, 5000)                      # (B, C, 2T) single-lead recordings
        >>> v = cmsc_views(x)                                # (2, B, 1, 2500)
        >>> encoder = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(2500, 32))
        >>> z = encoder(v.flatten(0, 1)).unflatten(0, v.shape[:2])  # (2, B, 32)
        >>> loss, logs = clocs_loss(z, torch.tensor([0, 0, 1, 2]))
        >>> logs["n_pairs"], logs["positives_per_anchor"]
        (1.0, 1.5)
    """
    if views.ndim != 3 or views.shape[0] < 2:
        raise ValueError(f"views must be (V >= 2, B, E), got {tuple(views.shape)}")
    if patient_ids.shape != views.shape[1:2]:
        raise ValueError(f"patient_ids must be (B,) = ({views.shape[1]},), got {tuple(patient_ids.shape)}")
    z = F.normalize(views, dim=-1)
    ids = patient_ids.to(z.device)
    if gather:
        z = gather_with_grad(z.transpose(0, 1)).transpose(0, 1)  # gather along B
        ids = gather_no_grad(ids)

    same = ids[:, None] == ids[None, :]
    loss = _pair_losses(z, same, temperature, symmetric_patients).mean()
    if gather:
        loss = replicated_loss(loss)
    n_views = z.shape[0]
    logs = {
        "clocs": float(loss.detach()),
        "n_pairs": float(n_views * (n_views - 1) // 2),
        "positives_per_anchor": float(same.sum(dim=1).float().mean()),
    }
    return loss, logs


def _pair_losses(z: Tensor, same: Tensor, temperature: float, symmetric_patients: bool) -> Tensor:
    """Loss of every view pair i < j, shape ``(V (V - 1) / 2,)``, from ``z`` (V, B, E) unit vectors."""
    pairs = torch.combinations(torch.arange(z.shape[0], device=z.device), r=2)
    sim = z[pairs[:, 0]] @ z[pairs[:, 1]].transpose(1, 2) / temperature  # (P, B, B)
    log_row = sim.log_softmax(dim=2)
    log_col = sim.log_softmax(dim=1)

    terms = [
        -torch.diagonal(log_row, dim1=1, dim2=2).mean(dim=1),
        -torch.diagonal(log_col, dim1=1, dim2=2).mean(dim=1),
    ]
    if symmetric_patients:
        off_diagonal = same & ~torch.eye(same.shape[0], dtype=torch.bool, device=same.device)
        row_mask, col_mask = off_diagonal, off_diagonal
    else:
        row_mask, col_mask = torch.triu(same, diagonal=1), torch.tril(same, diagonal=-1)
    if row_mask.any():
        terms.append(-log_row[:, row_mask].mean(dim=1))
    if col_mask.any():
        terms.append(-log_col[:, col_mask].mean(dim=1))
    return torch.stack(terms).mean(dim=0)
