"""Model ``lfbt``: Lead-Fusion Barlow Twins (Liu et al., Information Fusion 114, 2025) for the
``ecg_ssl_pretraining`` task.

Composition only: the network is :class:`physioclr_ext.modules.lfbt.LFBT` (one 1-D VGG16 and one
projector per lead), the loss the criterion ``lead_fusion_barlow_twins``. The two views come from the
task (``mode: views`` with ``random_resized_crop`` and ``time_out``, the same crop and span for all leads
of a window); ``net_input["views"]`` (2, B, C, T) gives ``z`` (2, B, N, D) and ``h`` (2, B, N, E).

The representation for downstream use (:meth:`extract_embedding`, read by ``ecg_ssl_classifier`` and
``python -m physioclr_ext.evaluation embed``) is the concatenation of the per-lead features,
``(B, N * 64)`` (512-d for the 8 leads), as in the original's linear probe and fine-tuning. Inputs have
the configured leads in order (preprocessing preset ``lfbt``) or all 12 standard leads, from which the
configured ones are taken by name. ``padding_mask`` is ignored: windows have a fixed length.
"""

from dataclasses import dataclass
from typing import Any, Dict, Optional

import torch
from fairseq_signals.dataclass import Dataclass
from fairseq_signals.models import BaseModel, register_model

from physioclr_ext.models.core_config import core_config
from physioclr_ext.modules.lfbt import LFBT, LFBTConfig


@dataclass
class LFBTModelConfig(LFBTConfig, Dataclass):
    """The fields of :class:`~physioclr_ext.modules.lfbt.LFBTConfig`, declared there once."""


@register_model("lfbt", dataclass=LFBTModelConfig)
class LFBTModel(BaseModel):
    def __init__(self, cfg: LFBTModelConfig) -> None:
        super().__init__()
        self.net = LFBT(core_config(LFBTConfig, cfg))
        self.embed_dim = self.net.embed_dim

    @classmethod
    def build_model(cls, cfg: LFBTModelConfig, task: Any = None) -> "LFBTModel":
        return cls(cfg)

    def forward(
        self,
        source: Optional[torch.Tensor] = None,
        views: Optional[torch.Tensor] = None,
        padding_mask: Optional[torch.Tensor] = None,
        **kwargs: Any,
    ) -> Dict[str, torch.Tensor]:
        """``views`` (V, B, C, T) -> ``z`` (V, B, N, D) and ``h`` (V, B, N, E), each view through the network
        on its own (BatchNorm statistics per view, as the original); without views, ``source`` (B, C, T)
        -> ``h`` (B, N * E)."""
        if views is None:
            if source is None:
                raise ValueError("lfbt needs views (pretraining) or source (embedding)")
            return {"h": self.extract_embedding(source)}
        z, h = zip(*(self.net(view) for view in views))
        return {"z": torch.stack(z), "h": torch.stack(h)}

    def extract_embedding(self, source: torch.Tensor, padding_mask: Optional[torch.Tensor] = None) -> torch.Tensor:
        """The downstream representation (B, N * E) of windows (B, C, T)."""
        return self.net.embedding(source)
