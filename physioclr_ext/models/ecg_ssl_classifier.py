"""Model ``ecg_ssl_classifier``: the one fine-tuning model for every pretrained checkpoint.

Loads the checkpoint at ``model_path`` (any model of this package, or fairseq-signals'
``wav2vec2`` / ``ecg_transformer``), keeps it as the encoder, and adds a linear head on its
pooled representation (:func:`physioclr_ext.models.representation.pooled_embedding`). ``freeze_encoder``
trains the head only (a linear probe). Binary, multi-class and multi-label through
fairseq-signals' ``ecg_classification`` task and its criteria.

The pretrained model's configuration is stored in ``pretrained_model_cfg`` at the first
build, so the fine-tuned checkpoint rebuilds itself without ``model_path`` (as inference does).
``no_pretrained_weights`` keeps the architecture and starts from random weights (the
from-scratch baseline). ``head_init`` starts the head from given weights, e.g. a linear probe's
(:func:`physioclr_ext.evaluation.probes.probe_head`; LP-FT, Kumar et al., ICLR 2022).
"""

from dataclasses import dataclass, field
from typing import Any, Dict, Optional

import numpy as np
import torch
from fairseq_signals.dataclass import Dataclass
from fairseq_signals.models import BaseModel, build_model, register_model
from fairseq_signals.utils import checkpoint_utils
from omegaconf import OmegaConf, open_dict
from torch import nn

from physioclr_ext.models.pretrained_encoder import encoder_dim, encoder_embedding, remember_pretrained_cfg
from physioclr_ext.models.representation import pooled_embedding


@dataclass
class ECGSSLClassifierConfig(Dataclass):
    model_path: Optional[str] = field(default=None, metadata={"help": "pretrained checkpoint"})
    no_pretrained_weights: bool = field(
        default=False,
        metadata={"help": "build the checkpoint's architecture with random weights (training from scratch)"},
    )
    num_labels: int = field(default=1, metadata={"help": "outputs: 1 (binary), K classes or K labels"})
    freeze_encoder: bool = field(default=False, metadata={"help": "train the head only (linear probe)"})
    freeze_encoder_updates: int = field(
        default=0,
        metadata={
            "help": "train the head only for the first N updates, then the whole model (linear probing then "
            "fine-tuning, Kumar et al., ICLR 2022: the head is fitted before its gradients reach the encoder)"
        },
    )
    encoder_lr_scale: float = field(
        default=1.0,
        metadata={
            "help": "learning-rate multiplier for the encoder's parameters (the head gets the schedule's rate); "
            "needs optimizer adamw, the fine-tuning configs' default (fairseq-signals' adam ignores it)"
        },
    )
    final_dropout: float = field(default=0.0, metadata={"help": "dropout before the head"})
    head_init: Optional[str] = field(
        default=None,
        metadata={
            "help": "an .npz with weight (num_labels, D) and bias (num_labels,) copied into the head at the first "
            "build (with model_path), e.g. a linear probe's head for LP-FT; a rebuilt checkpoint keeps its own head"
        },
    )
    pretrained_model_cfg: Any = field(
        default=None,
        metadata={"help": "filled from model_path at the first build; lets the fine-tuned checkpoint rebuild itself"},
    )


@register_model("ecg_ssl_classifier", dataclass=ECGSSLClassifierConfig)
class ECGSSLClassifier(BaseModel):
    def __init__(self, cfg: ECGSSLClassifierConfig, encoder: nn.Module, embed_dim: int) -> None:
        super().__init__()
        self.encoder = encoder
        self.freeze_encoder = cfg.freeze_encoder
        self.freeze_encoder_updates = cfg.freeze_encoder_updates
        self.num_updates = 0
        if self.freeze_encoder:
            self.encoder.requires_grad_(False)
        if not cfg.encoder_lr_scale > 0:
            raise ValueError(
                f"model.encoder_lr_scale must be > 0 (got {cfg.encoder_lr_scale}); freeze with model.freeze_encoder"
            )
        for p in self.encoder.parameters():
            p.lr_scale = float(cfg.encoder_lr_scale)  # type: ignore[attr-defined]  # read by the adamw optimizer's parameter groups
        self.dropout = nn.Dropout(cfg.final_dropout)
        self.head = nn.Linear(embed_dim, cfg.num_labels)

    @classmethod
    def build_model(cls, cfg: ECGSSLClassifierConfig, task: Any) -> "ECGSSLClassifier":
        state = None
        if cfg.model_path:
            state = checkpoint_utils.load_checkpoint_to_cpu(cfg.model_path)
            remember_pretrained_cfg(cfg, dict(state["cfg"]["model"]))
        if cfg.pretrained_model_cfg is None:
            raise ValueError("ecg_ssl_classifier needs model.model_path (a pretrained checkpoint)")
        encoder_cfg = cfg.pretrained_model_cfg
        with open_dict(encoder_cfg):
            encoder_cfg.pop("all_gather", None)
        encoder = build_model(encoder_cfg, task)
        if state is not None and not cfg.no_pretrained_weights:
            encoder.load_state_dict(state["model"], strict=True)
        model = cls(cfg, encoder, encoder_dim(encoder, OmegaConf.to_container(encoder_cfg)))
        if state is not None and cfg.head_init:  # not on a rebuild: the checkpoint's state holds the head
            model.load_head(cfg.head_init)
        return model

    def load_head(self, path: str) -> None:
        """Copy ``weight`` (num_labels, D) and ``bias`` (num_labels,) from the ``.npz`` at ``path`` into the head.

        Raises:
            ValueError: the file cannot be read, lacks a key, or holds arrays of other shapes.
        """
        expected = {"weight": tuple(self.head.weight.shape), "bias": tuple(self.head.bias.shape)}
        try:
            with np.load(path) as saved:
                arrays = {key: saved[key] for key in expected if key in saved.files}
        except (OSError, ValueError) as exc:
            raise ValueError(f"model.head_init={path}: cannot read it as an .npz ({exc})") from None
        shapes = {key: tuple(a.shape) for key, a in arrays.items()}
        if shapes != expected:
            raise ValueError(
                f"model.head_init={path}: needs weight {expected['weight']} and bias {expected['bias']} "
                f"(num_labels, embedding size), found {shapes or 'neither'}"
            )
        with torch.no_grad():
            for key, param in (("weight", self.head.weight), ("bias", self.head.bias)):
                param.copy_(torch.as_tensor(arrays[key], dtype=param.dtype))

    def set_num_updates(self, num_updates: int) -> None:
        super().set_num_updates(num_updates)
        self.num_updates = num_updates

    def encoder_frozen(self) -> bool:
        """Whether this step trains the head only (``freeze_encoder``, or within ``freeze_encoder_updates``)."""
        return self.freeze_encoder or (self.training and self.num_updates < self.freeze_encoder_updates)

    def forward(self, source: torch.Tensor, padding_mask: Optional[torch.Tensor] = None, **kwargs: Any) -> Dict:
        """``source`` (B, C, T) -> ``out`` logits (B, num_labels)."""
        # frozen: eval mode, no gradient; the trainer's model.train() puts the encoder back in training mode
        h = encoder_embedding(self.encoder, source, padding_mask, frozen=self.encoder_frozen())
        return {"out": self.head(self.dropout(h)), "h": h}

    def extract_embedding(self, source: torch.Tensor, padding_mask: Optional[torch.Tensor] = None) -> torch.Tensor:
        return pooled_embedding(self.encoder, {"source": source, "padding_mask": padding_mask})

    @property
    def embed_dim(self) -> int:
        return self.head.in_features

    def get_logits(self, net_output: Dict[str, torch.Tensor], **kwargs: Any) -> torch.Tensor:
        return net_output["out"]

    def get_targets(self, sample: Dict[str, Any], net_output: Dict[str, torch.Tensor], **kwargs: Any) -> Any:
        """Class indices (B,) for multi-class heads fed one label column (``cross_entropy``);
        otherwise float 0/1 targets (B, K) for ``binary_cross_entropy_with_logits``."""
        label = sample["label"]
        if not isinstance(label, torch.Tensor):
            return label
        if self.head.out_features > 1 and label.reshape(len(label), -1).shape[1] == 1:
            return label.reshape(-1).long()
        return label.float()
