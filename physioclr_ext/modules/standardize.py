"""Per-feature standardisation of a frozen embedding before a trained head (triplet and VQ-VAE heads).

A frozen encoder's embeddings share a large common component, and a nearly collapsed one (ST-MEM tiny:
pairwise cosine 0.9999) varies along each feature by 1e-4-1e-3: a head on the raw vectors sees them all in
one direction. :class:`EmbeddingStandardizer` is ``BatchNorm1d`` without affine parameters (batch statistics in
training, running statistics in evaluation), with two differences: ``eps`` is a parameter because such
variances (1e-8-1e-6) would be swamped by BatchNorm's 1e-5, and a training batch of one window (the last batch
of an epoch) is normalised with the running statistics instead of raising.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn


class EmbeddingStandardizer(nn.BatchNorm1d):
    """``(B, E) -> (B, E)``: each feature centred and scaled by its batch (training) or running statistics.

    Example:
        >>> import torch
        >>> norm = EmbeddingStandardizer(3, eps=1e-10)
        >>> y = norm(torch.tensor([[1.0, 2.0, 3.0], [3.0, 2.0, 5.0]]))
        >>> y.mean(0).abs().max().item() < 1e-6, y[:, 0].tolist()
        (True, [-1.0, 1.0])
        >>> norm(torch.ones(1, 3)).shape  # one window in training: running statistics, no error
        torch.Size([1, 3])
    """

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float = 0.1) -> None:
        super().__init__(num_features, eps=eps, momentum=momentum, affine=False)

    def forward(self, x: Tensor) -> Tensor:
        if self.training and x.shape[0] == 1 and self.running_mean is not None and self.running_var is not None:
            return F.batch_norm(x, self.running_mean, self.running_var, None, None, False, 0.0, self.eps)
        out: Tensor = super().forward(x)
        return out
