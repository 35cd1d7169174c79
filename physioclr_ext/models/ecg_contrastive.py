"""Model ``ecg_contrastive``: an ECG encoder plus a projection head for contrastive pretraining.

Composition only (the maths lives in :mod:`physioclr_ext.modules` and :mod:`physioclr_ext.losses`):
each view of ``net_input["views"]`` (V, B, C, T) goes through the same encoder (B, E) and the
projection head (B, P); the output ``z`` (V, B, P) feeds the ``nt_xent`` or ``clocs`` criterion.
Encoders: ``cnn``, ``cnn_lstm``, ``cnn_attention_lstm``, ``cnn_transformer`` (KU-AI4H
Contrastive-ECG) and ``clocs_cnn`` (CLOCS, single-lead views, no projection head).

The representation for downstream use (:meth:`extract_embedding`, read by ``ecg_ssl_classifier``
and ``python -m physioclr_ext.evaluation embed``) is the encoder output before the head; a
single-lead encoder given several leads averages its embedding over the leads.
"""

from dataclasses import dataclass, field
from typing import Any, Dict, Optional

import torch
from fairseq_signals.dataclass import Dataclass
from fairseq_signals.models import BaseModel, register_model
from omegaconf import OmegaConf
from torch import nn

from physioclr_ext.modules.encoders import build_encoder
from physioclr_ext.modules.heads import MLPHead


@dataclass
class ECGContrastiveConfig(Dataclass):
    encoder: str = field(
        default="cnn", metadata={"help": "cnn | cnn_lstm | cnn_attention_lstm | cnn_transformer | clocs_cnn"}
    )
    in_channels: int = field(default=12, metadata={"help": "leads per view (1 for CLOCS CMLC/CMSMLC views)"})
    embed_dim: int = field(default=256, metadata={"help": "encoder output size E"})
    encoder_args: Any = field(
        default=None,
        metadata={"help": "further encoder sizes (see physioclr_ext.modules.encoders configs), e.g. {lstm_layers: 1}"},
    )
    projection_dim: int = field(default=128, metadata={"help": "projection head output P; 0 = no head (CLOCS)"})


@register_model("ecg_contrastive", dataclass=ECGContrastiveConfig)
class ECGContrastiveModel(BaseModel):
    def __init__(self, cfg: ECGContrastiveConfig) -> None:
        super().__init__()
        args = cfg.encoder_args
        args = OmegaConf.to_container(args, resolve=True) if OmegaConf.is_config(args) else dict(args or {})
        self.in_channels = cfg.in_channels
        self.encoder = build_encoder(cfg.encoder, cfg.in_channels, embed_dim=cfg.embed_dim, **args)
        self.embed_dim = cfg.embed_dim
        self.head: nn.Module = (
            MLPHead(cfg.embed_dim, [cfg.embed_dim], cfg.projection_dim) if cfg.projection_dim > 0 else nn.Identity()
        )

    @classmethod
    def build_model(cls, cfg: ECGContrastiveConfig, task: Any = None) -> "ECGContrastiveModel":
        return cls(cfg)

    def forward(
        self,
        source: Optional[torch.Tensor] = None,
        views: Optional[torch.Tensor] = None,
        padding_mask: Optional[torch.Tensor] = None,
        **kwargs: Any,
    ) -> Dict[str, torch.Tensor]:
        """``views`` (V, B, C, T) -> ``z`` (V, B, P) and ``h`` (V, B, E); without views,
        ``source`` (B, C, T) -> ``h`` (B, E)."""
        if views is None:
            if source is None:
                raise ValueError("ecg_contrastive needs views (pretraining) or source (embedding)")
            return {"h": self.extract_embedding(source)}
        n_views, batch = views.shape[:2]
        h = self.encoder(views.flatten(0, 1))
        z = self.head(h)
        return {"z": z.view(n_views, batch, -1), "h": h.view(n_views, batch, -1)}

    def extract_embedding(self, source: torch.Tensor, padding_mask: Optional[torch.Tensor] = None) -> torch.Tensor:
        """The downstream representation (B, E) of windows (B, C, T)."""
        if source.shape[1] == self.in_channels:
            return self.encoder(source)
        if self.in_channels == 1:
            batch, leads, length = source.shape
            return self.encoder(source.reshape(batch * leads, 1, length)).view(batch, leads, -1).mean(dim=1)
        raise ValueError(f"encoder takes {self.in_channels} leads, got {source.shape[1]}")
