"""Model ``ecg_triplet``: a pretrained encoder + projection head for triplet-loss fine-tuning (the
SMILES-2025 study's ``TripletModel``, METHODS.md section 7).

``model_path``: any checkpoint of this package or fairseq-signals (loaded as ``ecg_ssl_classifier``
does; frozen unless ``freeze_encoder: false``). Head: [per-feature standardisation,
``standardize_embedding``, not in the study] - ``Linear(E, hidden_dim) - ReLU - Linear(hidden_dim,
out_dim)`` then l2-normalisation; the study's ST-MEM sizes are 768 -> 64 -> 9
(``configs/finetuning/ecg_triplet.yaml``). The criterion ``triplet`` reads ``z`` (B, out_dim) and the
task's labels (``ecg_classification``). :meth:`extract_embedding` returns ``z`` (``embedding: projection``,
what the study's kNN scored) or the encoder's pooled embedding (``embedding: encoder``).
"""

from dataclasses import dataclass, field
from typing import Any, Dict, Optional

import torch
import torch.nn.functional as F
from fairseq_signals.dataclass import Dataclass
from fairseq_signals.models import BaseModel, register_model
from torch import nn

from physioclr_ext.models.pretrained_encoder import encoder_embedding, load_pretrained_encoder
from physioclr_ext.modules.heads import MLPHead
from physioclr_ext.modules.standardize import EmbeddingStandardizer


@dataclass
class ECGTripletConfig(Dataclass):
    model_path: Optional[str] = field(default=None, metadata={"help": "pretrained checkpoint"})
    freeze_encoder: bool = field(default=True, metadata={"help": "train the projection head only (study)"})
    hidden_dim: int = field(default=64, metadata={"help": "hidden width of the projection head (study: 64)"})
    out_dim: int = field(default=9, metadata={"help": "output size of the projection head (study: 9)"})
    embedding: str = field(default="projection", metadata={"help": "downstream representation: projection | encoder"})
    standardize_embedding: bool = field(
        default=False,
        metadata={
            "help": "standardise the frozen embedding per feature before the head (BatchNorm without affine; "
            "not in the study; on by default in the configs)"
        },
    )
    pretrained_model_cfg: Any = field(
        default=None, metadata={"help": "filled from model_path at the first build (self-contained checkpoints)"}
    )


@register_model("ecg_triplet", dataclass=ECGTripletConfig)
class ECGTripletModel(BaseModel):
    def __init__(self, cfg: ECGTripletConfig, encoder: nn.Module, embed_dim: int) -> None:
        super().__init__()
        if cfg.embedding not in ("projection", "encoder"):
            raise ValueError(f"embedding must be projection or encoder, not {cfg.embedding!r}")
        self.encoder = encoder
        self.freeze_encoder, self.embedding_kind = cfg.freeze_encoder, cfg.embedding
        if cfg.freeze_encoder:
            encoder.requires_grad_(False)
        # A nearly collapsed embedding (ST-MEM tiny: pairwise cosine 0.9999) gives a head with plain inputs
        # d_ap = d_an and no gradient; per-feature standardisation restores the spread (eps: see the module).
        self.norm: nn.Module = (
            EmbeddingStandardizer(embed_dim, eps=1e-10) if cfg.standardize_embedding else nn.Identity()
        )
        self.head = MLPHead(embed_dim, [cfg.hidden_dim], cfg.out_dim)

    @classmethod
    def build_model(cls, cfg: ECGTripletConfig, task: Any = None) -> "ECGTripletModel":
        encoder, dim = load_pretrained_encoder(cfg, task)
        return cls(cfg, encoder, dim)

    def forward(
        self, source: torch.Tensor, padding_mask: Optional[torch.Tensor] = None, **kwargs: Any
    ) -> Dict[str, torch.Tensor]:
        """``source`` (B, C, T) -> ``z`` (B, out_dim) l2-normalised and ``h`` (B, E) the encoder's embedding."""
        h = encoder_embedding(self.encoder, source, padding_mask, self.freeze_encoder)
        return {"z": F.normalize(self.head(self.norm(h)), dim=-1), "h": h}

    def extract_embedding(self, source: torch.Tensor, padding_mask: Optional[torch.Tensor] = None) -> torch.Tensor:
        out = self.forward(source, padding_mask)
        return out["z"] if self.embedding_kind == "projection" else out["h"]

    @property
    def embed_dim(self) -> int:
        first, last = self.head[0], self.head[-1]
        assert isinstance(first, nn.Linear) and isinstance(last, nn.Linear)
        return last.out_features if self.embedding_kind == "projection" else first.in_features
