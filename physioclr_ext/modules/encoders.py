"""1-D ECG encoders ``(B, C, T) -> (B, E)`` after KU-AI4H/Contrastive-ECG ``models.py``.

The shared trunk is five ``Conv1d(k=15, stride=2) - BatchNorm - LeakyReLU(0.1) - Dropout``
blocks with 32, 32, 64, 64, 64 channels and ``AvgPool1d(15, stride=2)`` after the second and
third block (METHODS.md section 8a). The four encoders differ in how they pool the feature
sequence into one embedding:

* ``cnn``: adaptive average pooling to a fixed length, flatten, ``Linear -> E``.
* ``cnn_lstm``: bidirectional LSTM over the sequence, output at the last step, ``Linear -> E``.
* ``cnn_attention_lstm``: additive (Bahdanau) attention over the BiLSTM outputs, queried by
  the last step, ``Linear -> E``.
* ``cnn_transformer``: ``Linear -> E`` per step, ``nn.TransformerEncoder`` (d_model = E),
  mean over time. The original feeds its 64 conv channels to a d_model = 256 transformer,
  which only runs when E = 64; the per-step projection fixes that.

Differences from the original, all so that any lead count and length work: the input
channels are ``in_channels`` instead of 12, and the ``cnn`` encoder pools adaptively
instead of sizing its ``Linear`` for one signal length. ``clocs_cnn`` (CLOCS,
:mod:`physioclr_ext.modules.clocs_encoder`) is also built by :func:`build_encoder`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Dict, Optional, Tuple, Type

import torch
import torch.nn as nn
from torch import Tensor

from physioclr_ext.modules.clocs_encoder import ClocsCNN, ClocsCNNConfig

__all__ = [
    "CNNAttentionLSTMConfig",
    "CNNAttentionLSTMEncoder",
    "CNNConfig",
    "CNNEncoder",
    "CNNLSTMConfig",
    "CNNLSTMEncoder",
    "CNNTransformerConfig",
    "CNNTransformerEncoder",
    "ENCODERS",
    "build_encoder",
]


@dataclass
class CNNConfig:
    """Convolutional trunk and ``cnn`` encoder (defaults: KU-AI4H ``ECG_CNN_Encoder``)."""

    channels: Tuple[int, ...] = field(
        default=(32, 32, 64, 64, 64), metadata={"help": "output channels of each conv block"}
    )
    kernel_size: int = field(default=15, metadata={"help": "conv and average-pool kernel, in samples"})
    stride: int = field(default=2, metadata={"help": "stride of every conv and average pool"})
    pool_after: Tuple[int, ...] = field(default=(2, 3), metadata={"help": "1-based conv blocks followed by AvgPool1d"})
    embed_dim: int = field(default=256, metadata={"help": "embedding size E"})
    dropout: float = field(
        default=0.1, metadata={"help": "dropout after each block (twice this after the last Linear)"}
    )
    negative_slope: float = field(default=0.1, metadata={"help": "LeakyReLU slope"})
    pooled_length: int = field(
        default=16, metadata={"help": "cnn only: time steps kept by adaptive pooling before flatten"}
    )


@dataclass
class CNNLSTMConfig(CNNConfig):
    """``cnn_lstm`` encoder: the trunk plus a BiLSTM (KU-AI4H ``ECG_CNN_LSTM_Encoder``)."""

    lstm_hidden: int = field(default=128, metadata={"help": "LSTM hidden size per direction (output 2x this)"})
    lstm_layers: int = field(default=2, metadata={"help": "stacked LSTM layers"})


@dataclass
class CNNAttentionLSTMConfig(CNNLSTMConfig):
    """``cnn_attention_lstm`` encoder (KU-AI4H ``ECG_CNN_LSTM_Attention_Encoder``)."""

    attention_dim: int = field(default=256, metadata={"help": "hidden size of the additive attention"})


@dataclass
class CNNTransformerConfig(CNNConfig):
    """``cnn_transformer`` encoder (KU-AI4H ``ECG_CNN_TRANSFORMER_Encoder`` as called in train.py)."""

    heads: int = field(default=2, metadata={"help": "attention heads; must divide embed_dim"})
    transformer_layers: int = field(default=1, metadata={"help": "nn.TransformerEncoder layers"})
    feedforward_dim: int = field(default=256, metadata={"help": "feed-forward width of each layer"})


def conv_trunk(in_channels: int, cfg: CNNConfig) -> nn.Sequential:
    """The shared convolutional trunk ``(B, C, T) -> (B, channels[-1], T')``, T' ~ T / 128 by default."""
    layers: list[nn.Module] = []
    previous = in_channels
    for index, channels in enumerate(cfg.channels, start=1):
        layers += [
            nn.Conv1d(previous, channels, cfg.kernel_size, stride=cfg.stride, padding=(cfg.kernel_size - 1) // 2),
            nn.BatchNorm1d(channels),
            nn.LeakyReLU(cfg.negative_slope),
            nn.Dropout(cfg.dropout),
        ]
        if index in cfg.pool_after:
            layers.append(nn.AvgPool1d(cfg.kernel_size, stride=cfg.stride))
        previous = channels
    return nn.Sequential(*layers)


def _embedding_layer(in_dim: int, cfg: CNNConfig) -> nn.Sequential:
    return nn.Sequential(
        nn.Linear(in_dim, cfg.embed_dim), nn.LeakyReLU(cfg.negative_slope), nn.Dropout(2 * cfg.dropout)
    )


class CNNEncoder(nn.Module):
    """Five-block CNN, adaptive pooling, flatten, Linear: ``(B, C, T) -> (B, E)``.

    Example:
        >>> CNNEncoder(in_channels=12)(torch.randn(2, 12, 5000)).shape
        torch.Size([2, 256])
    """

    def __init__(self, in_channels: int = 12, cfg: Optional[CNNConfig] = None) -> None:
        super().__init__()
        cfg = cfg or CNNConfig()
        self.embed_dim = cfg.embed_dim
        self.trunk = conv_trunk(in_channels, cfg)
        self.pool = nn.AdaptiveAvgPool1d(cfg.pooled_length)
        self.fc = _embedding_layer(cfg.channels[-1] * cfg.pooled_length, cfg)

    def forward(self, x: Tensor) -> Tensor:
        h: Tensor = self.fc(self.pool(self.trunk(x)).flatten(1))
        return h


class _BiLSTM(nn.Module):
    """Trunk then BiLSTM: ``(B, C, T) -> (B, T', 2 * lstm_hidden)``."""

    def __init__(self, in_channels: int, cfg: CNNLSTMConfig) -> None:
        super().__init__()
        self.trunk = conv_trunk(in_channels, cfg)
        self.lstm = nn.LSTM(
            cfg.channels[-1],
            cfg.lstm_hidden,
            num_layers=cfg.lstm_layers,
            batch_first=True,
            bidirectional=True,
            dropout=cfg.dropout if cfg.lstm_layers > 1 else 0.0,
        )

    def forward(self, x: Tensor) -> Tensor:
        out: Tensor = self.lstm(self.trunk(x).transpose(1, 2))[0]
        return out


class CNNLSTMEncoder(nn.Module):
    """CNN trunk, BiLSTM, output at the last time step, Linear: ``(B, C, T) -> (B, E)``.

    Example:
        >>> CNNLSTMEncoder(in_channels=1)(torch.randn(2, 1, 2500)).shape
        torch.Size([2, 256])
    """

    def __init__(self, in_channels: int = 12, cfg: Optional[CNNLSTMConfig] = None) -> None:
        super().__init__()
        cfg = cfg or CNNLSTMConfig()
        self.embed_dim = cfg.embed_dim
        self.sequence = _BiLSTM(in_channels, cfg)
        self.dropout = nn.Dropout(cfg.dropout)
        self.fc = _embedding_layer(2 * cfg.lstm_hidden, cfg)

    def forward(self, x: Tensor) -> Tensor:
        h: Tensor = self.fc(self.dropout(self.sequence(x)[:, -1]))
        return h


class AdditiveAttention(nn.Module):
    """Bahdanau attention pooling ``(B, L, D) -> (B, D)``, queried by the last step.

    ``score_t = v^T tanh(W [h_L; h_t])``, weights ``softmax_t(score)``, output ``sum_t w_t h_t``.
    The weights of the last call are kept in ``last_weights`` ``(B, L)`` for inspection.
    """

    def __init__(self, dim: int, attention_dim: int) -> None:
        super().__init__()
        self.project = nn.Linear(2 * dim, attention_dim)
        self.score = nn.Linear(attention_dim, 1, bias=False)
        self.last_weights: Optional[Tensor] = None

    def forward(self, h: Tensor) -> Tensor:
        query = h[:, -1:].expand_as(h)
        scores = self.score(torch.tanh(self.project(torch.cat([query, h], dim=2)))).squeeze(2)
        weights = scores.softmax(dim=1)
        self.last_weights = weights.detach()
        return torch.bmm(weights.unsqueeze(1), h).squeeze(1)


class CNNAttentionLSTMEncoder(nn.Module):
    """CNN trunk, BiLSTM, additive attention pooling, Linear: ``(B, C, T) -> (B, E)``.

    Example:
        >>> CNNAttentionLSTMEncoder(in_channels=12)(torch.randn(2, 12, 2500)).shape
        torch.Size([2, 256])
    """

    def __init__(self, in_channels: int = 12, cfg: Optional[CNNAttentionLSTMConfig] = None) -> None:
        super().__init__()
        cfg = cfg or CNNAttentionLSTMConfig()
        self.embed_dim = cfg.embed_dim
        self.sequence = _BiLSTM(in_channels, cfg)
        self.attention = AdditiveAttention(2 * cfg.lstm_hidden, cfg.attention_dim)
        self.fc = _embedding_layer(2 * cfg.lstm_hidden, cfg)

    def forward(self, x: Tensor) -> Tensor:
        h: Tensor = self.fc(self.attention(self.sequence(x)))
        return h


class CNNTransformerEncoder(nn.Module):
    """CNN trunk, per-step Linear to E, TransformerEncoder, mean over time: ``(B, C, T) -> (B, E)``.

    No positional encoding, as in the original: order enters only through the convolutions.

    Example:
        >>> CNNTransformerEncoder(in_channels=12)(torch.randn(2, 12, 5000)).shape
        torch.Size([2, 256])
    """

    def __init__(self, in_channels: int = 12, cfg: Optional[CNNTransformerConfig] = None) -> None:
        super().__init__()
        cfg = cfg or CNNTransformerConfig()
        self.embed_dim = cfg.embed_dim
        self.trunk = conv_trunk(in_channels, cfg)
        self.project = nn.Linear(cfg.channels[-1], cfg.embed_dim)
        layer = nn.TransformerEncoderLayer(
            cfg.embed_dim, cfg.heads, dim_feedforward=cfg.feedforward_dim, dropout=cfg.dropout, batch_first=True
        )
        self.transformer = nn.TransformerEncoder(layer, cfg.transformer_layers, enable_nested_tensor=False)

    def forward(self, x: Tensor) -> Tensor:
        tokens: Tensor = self.transformer(self.project(self.trunk(x).transpose(1, 2)))
        return tokens.mean(dim=1)


ENCODERS: Dict[str, Tuple[Callable[..., nn.Module], Type[Any]]] = {
    "cnn": (CNNEncoder, CNNConfig),
    "cnn_lstm": (CNNLSTMEncoder, CNNLSTMConfig),
    "cnn_attention_lstm": (CNNAttentionLSTMEncoder, CNNAttentionLSTMConfig),
    "cnn_transformer": (CNNTransformerEncoder, CNNTransformerConfig),
    "clocs_cnn": (ClocsCNN, ClocsCNNConfig),
}


def build_encoder(name: str, in_channels: int = 12, **cfg: Any) -> nn.Module:
    """Build an encoder by name from its config fields; every encoder maps ``(B, C, T) -> (B, E)``.

    Names: ``cnn``, ``cnn_lstm``, ``cnn_attention_lstm``, ``cnn_transformer``, ``clocs_cnn``.
    Unknown config fields raise ``TypeError``. The module's ``embed_dim`` attribute is E.

    Example:
        >>> enc = build_encoder("cnn_lstm", in_channels=12, embed_dim=128, lstm_layers=1)
        >>> enc(torch.randn(2, 12, 2500)).shape
        torch.Size([2, 128])
    """
    if name not in ENCODERS:
        raise KeyError(f"unknown encoder {name!r}; choose from {sorted(ENCODERS)}")
    encoder_cls, config_cls = ENCODERS[name]
    return encoder_cls(in_channels, config_cls(**cfg))
