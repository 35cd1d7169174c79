"""Projection and classification heads: one generic MLP plus named presets with the papers' sizes."""

from __future__ import annotations

from typing import Callable, Dict, Sequence

import torch.nn as nn

__all__ = ["ACTIVATIONS", "MLPHead", "projection_head_simclr"]

ACTIVATIONS: Dict[str, Callable[[], nn.Module]] = {
    "relu": nn.ReLU,
    "gelu": nn.GELU,
    "leaky_relu": lambda: nn.LeakyReLU(0.1),
    "tanh": nn.Tanh,
    "silu": nn.SiLU,
}


class MLPHead(nn.Sequential):
    """``Linear - [BatchNorm1d] - activation`` per hidden layer, then a final ``Linear``: ``(B, in_dim) -> (B, out_dim)``.

    Args:
        in_dim: input size (the encoder's E).
        hidden_dims: sizes of the hidden layers; empty for a linear head.
        out_dim: output size.
        batch_norm: insert ``BatchNorm1d`` after each hidden ``Linear``.
        activation: one of ``ACTIVATIONS`` (relu, gelu, leaky_relu with slope 0.1, tanh, silu).

    Example:
        >>> import torch
        >>> head = MLPHead(256, [256], 128)
        >>> head(torch.randn(4, 256)).shape
        torch.Size([4, 128])
    """

    def __init__(
        self,
        in_dim: int,
        hidden_dims: Sequence[int],
        out_dim: int,
        batch_norm: bool = False,
        activation: str = "relu",
    ) -> None:
        if activation not in ACTIVATIONS:
            raise KeyError(f"unknown activation {activation!r}; choose from {sorted(ACTIVATIONS)}")
        layers: list[nn.Module] = []
        previous = in_dim
        for width in hidden_dims:
            layers.append(nn.Linear(previous, width))
            if batch_norm:
                layers.append(nn.BatchNorm1d(width))
            layers.append(ACTIVATIONS[activation]())
            previous = width
        layers.append(nn.Linear(previous, out_dim))
        super().__init__(*layers)


def projection_head_simclr(embed_dim: int = 256, out_dim: int = 128) -> MLPHead:
    """SimCLR projector as in KU-AI4H/Contrastive-ECG: ``Linear(E, E) - ReLU - Linear(E, out_dim)``.

    Example:
        >>> import torch
        >>> projection_head_simclr(256, 128)(torch.randn(4, 256)).shape
        torch.Size([4, 128])
    """
    return MLPHead(embed_dim, [embed_dim], out_dim)
