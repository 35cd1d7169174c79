"""PhysioCLR: feature-guided contrastive loss plus peak-aware reconstruction.

Maghsoodi et al., "Domain Knowledge is Power: Leveraging Physiological Priors for
Self-Supervised Representation Learning in Electrocardiography" (arXiv 2509.08116).
Re-implemented from the description of ``criterions/physioclr_criterion.py`` in
nooshinmaghsoodi/PhysioCLR (MIT), not copied::

    L = L_contrastive + alpha * L_reconstruction + beta * L_peak      (tau 0.1, delta 0.25, alpha 0.2, beta 0.1)

The contrastive term is here, the two reconstruction terms in
:mod:`physioclr_ext.losses.physioclr_reconstruction`; :func:`physioclr_loss` adds them up with the
hyperparameters of one :class:`PhysioCLRLossConfig`.

Data-parallel convention (as :func:`~physioclr_ext.losses.nt_xent_loss`): with ``gather=True``
every returned loss has the value of the single-process loss on the concatenated batch and
its gradient w.r.t. this worker's inputs is the single-process gradient for those rows;
parameter gradients are summed over workers (see :mod:`physioclr_ext.losses.distributed`).
Logged values are global too.
"""

from dataclasses import dataclass, field
from typing import Dict, Optional, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor

from physioclr_ext.losses.distributed import gather_no_grad, gather_with_grad, local_rows, sum_value_over_workers
from physioclr_ext.losses.physioclr_reconstruction import (
    BatchPeaks,
    peak_aware_reconstruction_loss,
    peak_map_loss,
    peak_weights,
    r_peak_map,
)

__all__ = ["PhysioCLRLossConfig", "feature_similarity_masks", "physioclr_contrastive_loss", "physioclr_loss"]

Logs = Dict[str, float]


@dataclass
class PhysioCLRLossConfig:
    """Hyperparameters of :func:`physioclr_loss`, with the paper's defaults (tau 0.1, delta 0.25, alpha 0.2,
    beta 0.1) and, where the paper is silent, this package's choices (see each term's function).

    Also the fields of the fairseq-signals criterion ``physioclr``, so every type here must be one
    omegaconf 2.0 accepts (no ``from __future__ import annotations`` in this module).
    """

    temperature: float = field(default=0.1, metadata={"help": "softmax temperature tau"})
    delta: float = field(
        default=0.25, metadata={"help": "feature cosine similarity from which two windows are positives"}
    )
    alpha: float = field(default=0.2, metadata={"help": "weight of the (peak-aware) reconstruction MSE"})
    beta: float = field(default=0.1, metadata={"help": "weight of the R-peak map MSE"})
    gather: bool = field(default=True, metadata={"help": "compare with the anchors of every data-parallel worker"})
    exclude_self: bool = field(
        default=True, metadata={"help": "leave the constant self-pair (i, i) out of the positives (false: as released)"}
    )
    positives_in_denominator: bool = field(
        default=False,
        metadata={"help": "InfoNCE-style denominator with the positives (false: as released, negatives only)"},
    )
    sigma_s: float = field(default=0.02, metadata={"help": "width (s) of the Gaussian bumps of the target R-peak map"})
    width_s: float = field(default=0.06, metadata={"help": "half-width (s) of the up-weighted region around R-peaks"})
    peak_weight: float = field(
        default=4.0, metadata={"help": "reconstruction weight near R-peaks (1: the released plain MSE)"}
    )
    weight_profile: str = field(default="box", metadata={"help": "box | gaussian profile of the peak weights"})


def feature_similarity_masks(
    features: Tensor, delta: float, valid: Optional[Tensor] = None, exclude_self: bool = True
) -> Tuple[Tensor, Tensor]:
    """Positive and negative pairs from the cosine similarity of handcrafted feature vectors.

    ``cos(f_i, f_j) >= delta`` makes (i, j) a positive pair and ``< delta`` a negative one.
    Rows and columns of invalid features are neither; a feature vector with a non-finite value
    or zero norm has no defined cosine and counts as invalid as well.

    Self-pairs: the released code counts j = i as a positive. Its logit ``a_i . a_i / tau`` is
    the constant ``1 / tau`` (unit vectors), so it carries no gradient but enters the positive
    log-sum-exp and dilutes the positives actually learned from. ``exclude_self=True`` (default)
    leaves the diagonal out of both masks; ``exclude_self=False`` reproduces the release.

    Args:
        features: ``(N, F)`` feature vectors.
        delta: similarity threshold (0.25 in PhysioCLR).
        valid: ``(N,)`` bool, False where a record's features could not be extracted.
        exclude_self: leave (i, i) out of both masks.

    Returns:
        ``(pos, neg)``, two disjoint ``(N, N)`` bool masks.

    Example:
        >>> f = torch.tensor([[1.0, 0.0], [1.0, 0.1], [0.0, 1.0]])
        >>> pos, neg = feature_similarity_masks(f, delta=0.25)
        >>> pos.int().tolist(), neg.int().tolist()
        ([[0, 1, 0], [1, 0, 0], [0, 0, 0]], [[0, 0, 1], [0, 0, 1], [1, 1, 0]])
    """
    if features.ndim != 2:
        raise ValueError(f"features must be (N, F), got {tuple(features.shape)}")
    f = features.detach()
    ok = torch.isfinite(f).all(dim=1)
    f = torch.where(ok[:, None], f, torch.zeros_like(f))
    ok &= f.norm(dim=1) > 0
    if valid is not None:
        ok &= valid.to(device=f.device, dtype=torch.bool)
    unit = F.normalize(f, dim=1)
    cos = unit @ unit.T
    pair = ok[:, None] & ok[None, :]
    if exclude_self:
        pair &= ~torch.eye(len(f), dtype=torch.bool, device=f.device)
    return pair & (cos >= delta), pair & (cos < delta)


def _masked_logsumexp(logits: Tensor, mask: Tensor) -> Tensor:
    """Row-wise log-sum-exp over the entries where ``mask`` is true (-inf for an empty row)."""
    return logits.masked_fill(~mask, float("-inf")).logsumexp(dim=1)


def physioclr_contrastive_loss(
    anchor: Tensor,
    shuffled: Tensor,
    features: Tensor,
    neighbour: Optional[Tensor] = None,
    neighbour_valid: Optional[Tensor] = None,
    feature_valid: Optional[Tensor] = None,
    temperature: float = 0.1,
    delta: float = 0.25,
    gather: bool = True,
    exclude_self: bool = True,
    positives_in_denominator: bool = False,
) -> Tuple[Tensor, Logs]:
    """PhysioCLR's multi-positive contrastive loss, positives guided by handcrafted features.

    Embeddings are L2-normalised. For anchor i, with ``a`` the anchors of the whole gathered
    batch (N = sum of the workers' B) and :func:`feature_similarity_masks` on its features:

    * positive logits: ``a_i . s_i`` (its heartbeat-shuffled view), ``a_i . n_i`` (its temporal
      neighbour, where given and valid) and ``a_i . a_j`` for every feature-positive j;
    * negative logits: ``a_i . a_j`` for every feature-negative j; all divided by ``tau``;
    * ``L_i = -logsumexp(pos_i) + logsumexp(neg_i)``, as released: the positives are *not* in
      the denominator. ``positives_in_denominator=True`` gives the InfoNCE-style variant
      ``L_i = -log(sum exp pos_i / (sum exp pos_i + sum exp neg_i))``, which is non-negative.

    An anchor without negatives (every other record similar, or its features invalid) cannot
    be scored: the released code fills the empty set with -1e4 and adds about -1e4 to its
    loss. Such anchors are left out of the mean here and counted in ``n_no_negative``.
    The loss is the mean of ``L_i`` over the scored anchors of the gathered batch.

    Args:
        anchor: ``(B, E)`` embeddings of the original windows.
        shuffled: ``(B, E)`` embeddings of their heartbeat-shuffled views.
        features: ``(B, F)`` handcrafted feature vectors (no gradient is taken through them).
        neighbour: ``(B, E)`` embeddings of each window's temporal neighbour, or None.
        neighbour_valid: ``(B,)`` bool, False where a window has no neighbour (ignored
            without ``neighbour``; default all valid).
        feature_valid: ``(B,)`` bool, False where feature extraction failed.
        temperature: tau (0.1).
        delta: feature cosine threshold for positives (0.25).
        gather: compare with the anchors of every data-parallel worker.
        exclude_self: see :func:`feature_similarity_masks` (False reproduces the release).
        positives_in_denominator: the InfoNCE-style variant above.

    Returns:
        ``(loss, logs)`` with floats ``loss_contrastive``, ``positives_per_anchor`` and
        ``negatives_per_anchor`` (means over all N anchors) and ``n_no_negative``.

    Example:
        >>> a, s, f = torch.randn(8, 32), torch.randn(8, 32), torch.randn(8, 50)
        >>> loss, logs = physioclr_contrastive_loss(a, s, f, neighbour=torch.randn(8, 32))
        >>> sorted(logs)
        ['loss_contrastive', 'n_no_negative', 'negatives_per_anchor', 'positives_per_anchor']
    """
    b = anchor.shape[0]
    _check_rows(anchor, shuffled, features, neighbour)
    a, s = F.normalize(anchor, dim=1), F.normalize(shuffled, dim=1)
    ones = torch.ones(b, dtype=torch.bool, device=a.device)
    f_valid = ones if feature_valid is None else feature_valid.to(device=a.device, dtype=torch.bool)
    if gather:
        keys, rows = gather_with_grad(a), local_rows(b, a.device)
        feats = gather_no_grad(features.detach())
        f_valid = gather_no_grad(f_valid.to(torch.uint8)).bool()
    else:
        keys, rows, feats = a, torch.arange(b, device=a.device), features.detach()
    pos_all, neg_all = feature_similarity_masks(feats.to(a.device), delta, f_valid, exclude_self)
    pos_f, neg_f = pos_all[rows], neg_all[rows]  # (B, N)

    sim = a @ keys.T / temperature  # (B, N)
    own, own_mask = [(a * s).sum(dim=1)], [ones]
    if neighbour is not None:
        own.append((a * F.normalize(neighbour, dim=1)).sum(dim=1))
        own_mask.append(ones if neighbour_valid is None else neighbour_valid.to(device=a.device, dtype=torch.bool))
    pos_logits = torch.cat([torch.stack(own, dim=1) / temperature, sim], dim=1)
    pos_mask = torch.cat([torch.stack(own_mask, dim=1), pos_f], dim=1)

    scored = neg_f.any(dim=1)
    numerator = _masked_logsumexp(pos_logits[scored], pos_mask[scored])
    if positives_in_denominator:
        both = torch.cat([pos_logits, sim], dim=1)[scored]
        denominator = _masked_logsumexp(both, torch.cat([pos_mask, neg_f], dim=1)[scored])
    else:
        denominator = _masked_logsumexp(sim[scored], neg_f[scored])
    # The global number of scored anchors is known from the gathered masks: no extra all-reduce.
    n_scored = int(neg_all.any(dim=1).sum())
    loss = (denominator - numerator).sum() / max(n_scored, 1)

    with torch.no_grad():
        stats = torch.stack([pos_mask.sum(), neg_f.sum(), (~scored).sum()]).to(torch.float64)
    if gather:
        loss, stats = sum_value_over_workers(loss), sum_value_over_workers(stats)
    n = keys.shape[0]
    logs = {
        "loss_contrastive": float(loss.detach()),
        "positives_per_anchor": float(stats[0]) / max(n, 1),
        "negatives_per_anchor": float(stats[1]) / max(n, 1),
        "n_no_negative": float(stats[2]),
    }
    return loss, logs


def _check_rows(anchor: Tensor, shuffled: Tensor, features: Tensor, neighbour: Optional[Tensor]) -> None:
    if anchor.ndim != 2 or shuffled.shape != anchor.shape:
        raise ValueError(f"anchor and shuffled must both be (B, E), got {tuple(anchor.shape)}, {tuple(shuffled.shape)}")
    if neighbour is not None and neighbour.shape != anchor.shape:
        raise ValueError(f"neighbour must be (B, E) = {tuple(anchor.shape)}, got {tuple(neighbour.shape)}")
    if features.ndim != 2 or features.shape[0] != anchor.shape[0]:
        raise ValueError(f"features must be (B, F) with B = {anchor.shape[0]}, got {tuple(features.shape)}")


def physioclr_loss(
    anchor: Tensor,
    shuffled: Tensor,
    features: Tensor,
    recon: Tensor,
    target: Tensor,
    pred_peak_map: Tensor,
    r_peaks: BatchPeaks,
    sample_rate: float,
    neighbour: Optional[Tensor] = None,
    neighbour_valid: Optional[Tensor] = None,
    feature_valid: Optional[Tensor] = None,
    cfg: Optional[PhysioCLRLossConfig] = None,
) -> Tuple[Tensor, Logs]:
    """The PhysioCLR objective ``L = L_contrastive + alpha * L_reconstruction + beta * L_peak``.

    * ``L_contrastive``: :func:`physioclr_contrastive_loss`.
    * ``L_reconstruction``: :func:`~physioclr_ext.losses.physioclr_reconstruction.peak_aware_reconstruction_loss`
      of ``recon`` against ``target`` with ``peak_weights`` (``cfg.peak_weight=1`` is the released plain MSE).
    * ``L_peak``: :func:`~physioclr_ext.losses.physioclr_reconstruction.peak_map_loss` of ``pred_peak_map``
      against ``r_peak_map``.

    Args:
        anchor, shuffled, neighbour: ``(B, E)`` embeddings (see :func:`physioclr_contrastive_loss`).
        features: ``(B, F)`` handcrafted feature vectors.
        recon, target: ``(B, C, T)`` reconstruction and the input signal.
        pred_peak_map: ``(B, T)`` predicted R-peak map in ``[0, 1]``.
        r_peaks: the anchors' R-peaks, B lists of sample indices of ``target`` (or a padded ``(B, K)`` tensor).
        sample_rate: Hz of ``target``, to turn ``cfg.sigma_s`` and ``cfg.width_s`` into samples.
        neighbour_valid, feature_valid: ``(B,)`` bool, False where a window has no neighbour / no features.
        cfg: the hyperparameters (default :class:`PhysioCLRLossConfig`).

    Returns:
        ``(loss, logs)`` with ``loss_physioclr`` (the total), ``loss_contrastive``,
        ``loss_reconstruction``, ``loss_peak`` and the counts of the contrastive term.

    Example:
        >>> b, c, t = 4, 12, 500
        >>> x = torch.randn(b, c, t)
        >>> loss, logs = physioclr_loss(torch.randn(b, 16), torch.randn(b, 16), torch.randn(b, 50),
        ...                             torch.randn(b, c, t), x, torch.rand(b, t), [[100, 300]] * b, 500.0,
        ...                             cfg=PhysioCLRLossConfig(alpha=0.5, gather=False))
        >>> [k for k in sorted(logs) if k.startswith("loss")]
        ['loss_contrastive', 'loss_peak', 'loss_physioclr', 'loss_reconstruction']
    """
    cfg = cfg or PhysioCLRLossConfig()
    length = target.shape[-1]
    if pred_peak_map.shape != (target.shape[0], length):
        raise ValueError(
            f"pred_peak_map must be (B, T) = {(target.shape[0], length)}, got {tuple(pred_peak_map.shape)}"
        )
    if len(r_peaks) != target.shape[0]:
        raise ValueError(f"need one R-peak list per example: {len(r_peaks)} lists for B = {target.shape[0]}")
    l_con, logs = physioclr_contrastive_loss(
        anchor,
        shuffled,
        features,
        neighbour,
        neighbour_valid,
        feature_valid,
        cfg.temperature,
        cfg.delta,
        cfg.gather,
        exclude_self=cfg.exclude_self,
        positives_in_denominator=cfg.positives_in_denominator,
    )
    weights = peak_weights(
        r_peaks, length, sample_rate, cfg.width_s, cfg.peak_weight, cfg.weight_profile, target.device
    )
    l_rec, rec_logs = peak_aware_reconstruction_loss(recon, target, weights, cfg.gather)
    peaks = r_peak_map(r_peaks, length, sample_rate, cfg.sigma_s, pred_peak_map.device, pred_peak_map.dtype)
    l_peak, peak_logs = peak_map_loss(pred_peak_map, peaks, cfg.gather)
    loss = l_con + cfg.alpha * l_rec + cfg.beta * l_peak
    logs.update(rec_logs)
    logs.update(peak_logs)
    logs["loss_physioclr"] = float(loss.detach())
    return loss, logs
