"""Lead-Fusion Barlow Twins (LFBT) networks: one small 1-D VGG16 and one projector per lead.

Liu, Pan, Li, Chang, Huang, Jiang, "Lead-fusion Barlow twins: A fused self-supervised learning
method for multi-lead electrocardiograms", Information Fusion 114 (2025) 102698; code
Aiwiscal/ECG_SSL_LFBT (MIT), ``models/vgg_1d.py`` and ``run_pt.py`` (reference sheet section 4).

* Encoder per lead (:class:`VGG1d`): VGG16 with width multiplier ``alpha`` (0.125: 8, 16, 32, 64,
  64 channels), 2, 2, 3, 3, 3 blocks ``Conv1d(k=3, p=1) - BatchNorm - ReLU`` per stage, ``MaxPool1d(2)``
  after each stage, global average pooling: ``(B, 1, T) -> (B, 64)``. Five poolings, so ``T >= 32``.
* Projector per lead (:func:`lfbt_projector`): ``64 -> 2048 -> 2048 -> 2048``, bias-free ``Linear``,
  ``BatchNorm - ReLU`` between them. The affine-free BatchNorm the original applies before the
  cross-correlation is part of the loss (:mod:`physioclr_ext.losses.lead_fusion_barlow_twins`).
* :class:`LFBT`: the encoders and projectors of ``N`` leads. No weight sharing by default (as the
  original); ``share_weights`` uses one encoder for every lead (projectors stay per lead).
  The representation is the concatenation of the per-lead features, ``(B, N * 64)``.

Under data-parallel training every BatchNorm here is a :class:`GlobalBatchNorm1d`: its training
statistics are those of the global batch (as Barlow Twins' ``SyncBatchNorm``), so several workers
compute what one worker computes on the concatenated batch. Outside torch.distributed it is exactly
``nn.BatchNorm1d``.

Example:
    >>> net = LFBT(LFBTConfig(leads=["II", "V1"], projector=[32, 32]))
    >>> z, h = net(torch.randn(4, 2, 1000))
    >>> z.shape, h.shape, net.embed_dim
    (torch.Size([4, 2, 32]), torch.Size([4, 2, 64]), 128)
"""

from dataclasses import dataclass, field
from typing import Any, List, Sequence, Tuple

import torch
import torch.distributed as dist
from torch import Tensor, nn

__all__ = ["CANONICAL_LEADS", "LFBT", "LFBTConfig", "GlobalBatchNorm1d", "VGG1d", "lfbt_projector"]

# The standard 12-lead order of the preprocessing (physioclr_ext.preprocess.leads); a 12-lead input is
# indexed by it. Repeated here so that the networks do not import the preprocessing package.
CANONICAL_LEADS: Tuple[str, ...] = ("I", "II", "III", "aVR", "aVL", "aVF", "V1", "V2", "V3", "V4", "V5", "V6")
LFBT_LEADS: Tuple[str, ...] = ("II", "III", "V1", "V2", "V3", "V4", "V5", "V6")
# VGG16's stages at full width: (output channels, conv blocks).
VGG16_STAGES: Tuple[Tuple[int, int], ...] = ((64, 2), (128, 2), (256, 3), (512, 3), (512, 3))


@dataclass
class LFBTConfig:
    """Sizes of :class:`LFBT`, LFBT's published values by default (reference sheet section 4).

    Also the fields of the fairseq-signals model ``lfbt``, so every type here must be one omegaconf 2.0
    accepts (no ``from __future__ import annotations`` in this module, lists rather than tuples).
    """

    leads: List[str] = field(
        default_factory=lambda: list(LFBT_LEADS),
        metadata={
            "help": "the leads, in input order (the original's II, III, V1-V6); a 12-lead input (I, II, III, "
            "aVR, aVL, aVF, V1-V6) is reduced to these by name"
        },
    )
    alpha: float = field(default=0.125, metadata={"help": "VGG16 width multiplier (0.125: 8-16-32-64-64 channels)"})
    share_weights: bool = field(
        default=False, metadata={"help": "one encoder for every lead (the original: one encoder per lead)"}
    )
    projector: List[int] = field(
        default_factory=lambda: [2048, 2048, 2048],
        metadata={"help": "projector layer sizes after the 64-d feature (the original's 2048-2048-2048)"},
    )
    sync_batch_norm: bool = field(
        default=True,
        metadata={"help": "under torch.distributed, BatchNorm statistics over the global batch (SyncBatchNorm)"},
    )


def _is_distributed() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


class _AllReduceSum(torch.autograd.Function):
    """Sum over workers whose backward sums the gradient over workers too: every worker's loss
    share used the sum, so each input receives the gradient of all of them."""

    @staticmethod
    def forward(ctx: Any, x: Tensor) -> Tensor:
        out = x.clone()
        dist.all_reduce(out)
        return out

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> Tensor:
        grad = grad.contiguous().clone()
        dist.all_reduce(grad)
        return grad


def _all_reduce_sum(x: Tensor) -> Tensor:
    out: Tensor = _AllReduceSum.apply(x)  # type: ignore[no-untyped-call]
    return out


class GlobalBatchNorm1d(nn.BatchNorm1d):
    """``nn.BatchNorm1d`` whose training statistics, under torch.distributed, are those of the global batch.

    Input ``(B, C)`` or ``(B, C, T)``. Mean and (biased) variance are summed over workers with gradient
    (two passes, so the variance is not the difference of two large sums); the running statistics are
    updated from the global ones with the unbiased variance, as ``nn.BatchNorm1d`` does. In evaluation,
    outside torch.distributed or with ``sync=False`` it is ``nn.BatchNorm1d``. Unlike
    ``nn.SyncBatchNorm`` it runs on CPU (gloo) too.

    Example:
        >>> bn = GlobalBatchNorm1d(8)
        >>> bn(torch.randn(4, 8, 100)).shape
        torch.Size([4, 8, 100])
    """

    def __init__(self, num_features: int, sync: bool = True, **kwargs: Any) -> None:
        super().__init__(num_features, **kwargs)
        self.sync = sync

    def forward(self, x: Tensor) -> Tensor:
        if not (self.sync and self.training and _is_distributed()):
            return super().forward(x)
        dims = [0, 2] if x.dim() == 3 else [0]
        shape = (1, -1, 1) if x.dim() == 3 else (1, -1)
        # Statistics in float32 at least: under fp16 a count of B * T alone overflows.
        xs = x if x.dtype == torch.float64 else x.float()
        count = xs.new_tensor([x.numel() // x.shape[1]])
        totals = _all_reduce_sum(torch.cat([xs.sum(dims), count]))
        n = totals[-1].detach()
        mean = totals[:-1] / n
        var = _all_reduce_sum((xs - mean.view(shape)).pow(2).sum(dims)) / n
        if self.track_running_stats and self.running_mean is not None and self.running_var is not None:
            self._update_running_stats(mean.detach(), var.detach() * n / (n - 1).clamp(min=1))
        out = (xs - mean.view(shape)) * torch.rsqrt(var.view(shape) + self.eps)
        if self.affine:
            out = out * self.weight.view(shape) + self.bias.view(shape)
        return out.to(x.dtype)

    @torch.no_grad()
    def _update_running_stats(self, mean: Tensor, unbiased_var: Tensor) -> None:
        assert self.running_mean is not None and self.running_var is not None
        assert self.num_batches_tracked is not None
        self.num_batches_tracked.add_(1)
        momentum = self.momentum if self.momentum is not None else 1.0 / float(self.num_batches_tracked)
        self.running_mean.lerp_(mean.to(self.running_mean.dtype), momentum)
        self.running_var.lerp_(unbiased_var.to(self.running_var.dtype), momentum)


def _conv_block(c_in: int, c_out: int, sync: bool) -> nn.Sequential:
    return nn.Sequential(nn.Conv1d(c_in, c_out, kernel_size=3, padding=1), GlobalBatchNorm1d(c_out, sync), nn.ReLU())


class VGG1d(nn.Module):
    """1-D VGG16 with width multiplier ``alpha``: ``(B, in_channels, T) -> (B, int(512 * alpha))``.

    Args:
        alpha: width multiplier; stage widths ``int(w * alpha)`` for w in 64, 128, 256, 512, 512.
        in_channels: input channels (1: one lead).
        sync_batch_norm: global-batch statistics under torch.distributed (:class:`GlobalBatchNorm1d`).

    Example:
        >>> VGG1d(alpha=0.125)(torch.randn(2, 1, 1000)).shape
        torch.Size([2, 64])
    """

    def __init__(self, alpha: float = 0.125, in_channels: int = 1, sync_batch_norm: bool = True) -> None:
        super().__init__()
        layers: List[nn.Module] = []
        previous = in_channels
        for width, blocks in VGG16_STAGES:
            channels = int(width * alpha)
            if channels < 1:
                raise ValueError(f"alpha {alpha} leaves a VGG stage without channels")
            for _ in range(blocks):
                layers.append(_conv_block(previous, channels, sync_batch_norm))
                previous = channels
            layers.append(nn.MaxPool1d(kernel_size=2, stride=2))
        self.features = nn.Sequential(*layers, nn.AdaptiveAvgPool1d(1))
        self.out_dim: int = previous

    def forward(self, x: Tensor) -> Tensor:
        """``(B, C, T >= 32) -> (B, out_dim)``."""
        if x.shape[-1] < 2 ** len(VGG16_STAGES):
            raise ValueError(f"VGG1d needs at least {2 ** len(VGG16_STAGES)} samples, got {x.shape[-1]}")
        out: Tensor = self.features(x).flatten(1)
        return out


def lfbt_projector(in_dim: int, sizes: Sequence[int], sync_batch_norm: bool = True) -> nn.Sequential:
    """Barlow Twins projector: bias-free ``Linear``, then ``BatchNorm - ReLU`` before every further
    ``Linear``: ``(B, in_dim) -> (B, sizes[-1])``.

    Example:
        >>> lfbt_projector(64, [128, 128, 32])(torch.randn(4, 64)).shape
        torch.Size([4, 32])
    """
    if not sizes:
        raise ValueError("the projector needs at least one layer size")
    layers: List[nn.Module] = []
    dims = [in_dim, *sizes]
    for i in range(len(sizes)):
        if i > 0:
            layers += [GlobalBatchNorm1d(dims[i], sync_batch_norm), nn.ReLU()]
        layers.append(nn.Linear(dims[i], dims[i + 1], bias=False))
    return nn.Sequential(*layers)


def lead_indices(leads: Sequence[str], n_channels: int) -> List[int]:
    """Rows of an input with ``n_channels`` leads that hold ``leads``: all of them in order when the counts
    agree, the canonical positions for a 12-lead input.

    Example:
        >>> lead_indices(["II", "III", "V1"], 12)
        [1, 2, 6]
    """
    if n_channels == len(leads):
        return list(range(n_channels))
    if n_channels == len(CANONICAL_LEADS):
        by_name = {name.lower(): i for i, name in enumerate(CANONICAL_LEADS)}
        missing = [lead for lead in leads if lead.lower() not in by_name]
        if not missing:
            return [by_name[lead.lower()] for lead in leads]
        raise ValueError(f"leads {missing} are not among the 12 standard leads {list(CANONICAL_LEADS)}")
    raise ValueError(f"LFBT takes {len(leads)} leads ({', '.join(leads)}) or 12, got {n_channels}")


class LFBT(nn.Module):
    """Per-lead encoders and projectors of LFBT (module docstring).

    ``forward``: ``(B, C, T)`` -> ``z`` (B, N, D) projections and ``h`` (B, N, E) features, with
    ``N = len(cfg.leads)``, ``E = int(512 * alpha)`` and ``D = cfg.projector[-1]``; ``C`` is ``N`` or 12.
    """

    def __init__(self, cfg: LFBTConfig) -> None:
        super().__init__()
        if not cfg.leads:
            raise ValueError("LFBT needs at least one lead")
        self.cfg = cfg
        self.leads = [str(lead) for lead in cfg.leads]
        n_encoders = 1 if cfg.share_weights else len(self.leads)
        encoders = [VGG1d(cfg.alpha, sync_batch_norm=cfg.sync_batch_norm) for _ in range(n_encoders)]
        self.encoders = nn.ModuleList(encoders)
        self.feature_dim = encoders[0].out_dim
        self.projectors = nn.ModuleList(
            lfbt_projector(self.feature_dim, cfg.projector, cfg.sync_batch_norm) for _ in self.leads
        )
        self.embed_dim = self.feature_dim * len(self.leads)

    def features(self, x: Tensor) -> Tensor:
        """Per-lead features ``(B, C, T) -> (B, N, E)``; each lead through its own encoder."""
        x = x[:, lead_indices(self.leads, x.shape[1])]
        if self.cfg.share_weights:
            b, n, t = x.shape
            shared: Tensor = self.encoders[0](x.reshape(b * n, 1, t))
            return shared.view(b, n, -1)
        return torch.stack([enc(x[:, [i]]) for i, enc in enumerate(self.encoders)], dim=1)

    def forward(self, x: Tensor) -> Tuple[Tensor, Tensor]:
        """``(B, C, T)`` -> ``(z, h)``: projections ``(B, N, D)`` and features ``(B, N, E)``."""
        h = self.features(x)
        z = torch.stack([proj(h[:, i]) for i, proj in enumerate(self.projectors)], dim=1)
        return z, h

    def embedding(self, x: Tensor) -> Tensor:
        """The downstream representation: concatenated per-lead features ``(B, C, T) -> (B, N * E)``."""
        return self.features(x).flatten(1)
