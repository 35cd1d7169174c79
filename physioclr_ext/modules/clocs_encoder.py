"""The CLOCS encoder ``cnn_network_contrastive`` (Kiyasseh, Zhu, Clifton, ICML 2021).

Three ``Conv1d(k=7, stride=3, no padding) - BatchNorm - ReLU - MaxPool1d(2) - Dropout(0.1)``
blocks with 4, 16 and 32 channels, flatten, ``Linear -> E``. For a single-lead
2500-sample view the flattened size is 32 x 10 = 320 (METHODS.md section 1). There is no
projection head: the ``Linear`` output is both the representation and the input of the loss.
Re-implemented from the description of danikiyasseh/CLOCS ``prepare_network.py`` (CC BY-NC-SA 4.0).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional, Tuple

import torch.nn as nn
from torch import Tensor

__all__ = ["ClocsCNN", "ClocsCNNConfig"]


@dataclass
class ClocsCNNConfig:
    """Sizes of the CLOCS encoder (paper code defaults; E was swept over 32-320)."""

    channels: Tuple[int, ...] = field(default=(4, 16, 32), metadata={"help": "output channels of each conv block"})
    kernel_size: int = field(default=7, metadata={"help": "conv kernel, in samples"})
    stride: int = field(default=3, metadata={"help": "conv stride"})
    pool: int = field(default=2, metadata={"help": "max-pool kernel and stride"})
    dropout: float = field(default=0.1, metadata={"help": "dropout after each block"})
    embed_dim: int = field(default=256, metadata={"help": "embedding size E"})
    input_length: int = field(default=2500, metadata={"help": "samples per view T; fixes the flatten size"})


def flattened_length(cfg: ClocsCNNConfig) -> int:
    """Time steps left after the conv blocks for ``cfg.input_length`` samples (10 for 2500)."""
    length = cfg.input_length
    for _ in cfg.channels:
        length = ((length - cfg.kernel_size) // cfg.stride + 1) // cfg.pool
    if length < 1:
        raise ValueError(f"input_length {cfg.input_length} is too short for {len(cfg.channels)} CLOCS blocks")
    return length


class ClocsCNN(nn.Module):
    """CLOCS CNN: ``(B, C, input_length) -> (B, E)``; C = 1 in the paper (one lead per view).

    Example:
        >>> import torch
        >>> ClocsCNN(1)(torch.randn(2, 1, 2500)).shape
        torch.Size([2, 256])
    """

    def __init__(self, in_channels: int = 1, cfg: Optional[ClocsCNNConfig] = None) -> None:
        super().__init__()
        cfg = cfg or ClocsCNNConfig()
        self.embed_dim = cfg.embed_dim
        self.input_length = cfg.input_length
        layers: list[nn.Module] = []
        previous = in_channels
        for channels in cfg.channels:
            layers += [
                nn.Conv1d(previous, channels, cfg.kernel_size, stride=cfg.stride),
                nn.BatchNorm1d(channels),
                nn.ReLU(),
                nn.MaxPool1d(cfg.pool),
                nn.Dropout(cfg.dropout),
            ]
            previous = channels
        self.features = nn.Sequential(*layers)
        self.flatten_size = previous * flattened_length(cfg)
        self.fc = nn.Linear(self.flatten_size, cfg.embed_dim)

    def forward(self, x: Tensor) -> Tensor:
        if x.shape[-1] != self.input_length:
            raise ValueError(f"ClocsCNN was built for input_length={self.input_length}, got T={x.shape[-1]}")
        h: Tensor = self.fc(self.features(x).flatten(1))
        return h
