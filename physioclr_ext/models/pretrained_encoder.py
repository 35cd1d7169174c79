"""A pretrained encoder of this package (or fairseq-signals) inside another model: ``ecg_vqvae``'s head
form and ``ecg_triplet`` load it from ``model_path`` as ``ecg_ssl_classifier`` does, keep its config in
``pretrained_model_cfg`` so the new checkpoint rebuilds itself, and read its pooled representation.
"""

from typing import Any, Dict, Optional, Tuple

import torch
from fairseq_signals.models import build_model
from fairseq_signals.utils import checkpoint_utils
from omegaconf import OmegaConf, open_dict
from torch import nn

from physioclr_ext.models.representation import pooled_embedding


def remember_pretrained_cfg(cfg: Any, pretrained: Dict[str, Any]) -> None:
    """Store the pretrained model's config in ``cfg`` and in the run's root config.

    fairseq-signals builds the model from a merged copy of ``cfg.model`` whose parent is
    the root config the trainer saves in every checkpoint; writing to the root's ``model``
    node too is what makes the fine-tuned checkpoint self-contained.
    """
    for node in (cfg, getattr(cfg._get_parent(), "model", None) if OmegaConf.is_config(cfg) else None):
        if node is not None and OmegaConf.is_config(node):
            with open_dict(node):
                node.pretrained_model_cfg = OmegaConf.create(pretrained)


def encoder_dim(encoder: nn.Module, encoder_cfg: Dict[str, Any]) -> int:
    if callable(getattr(encoder, "extract_embedding", None)):
        dim: int = encoder.embed_dim  # type: ignore[assignment]
        return int(dim)
    return int(encoder_cfg["encoder_embed_dim"])


def load_pretrained_encoder(cfg: Any, task: Any) -> Tuple[nn.Module, int]:
    """The encoder named by ``cfg.model_path`` (weights loaded at the first build) or rebuilt from
    ``cfg.pretrained_model_cfg`` (a checkpoint of the wrapping model, whose state holds the weights),
    and its embedding size."""
    state = None
    if cfg.pretrained_model_cfg is None:
        if not cfg.model_path:
            raise ValueError("this model needs model.model_path (a pretrained checkpoint)")
        state = checkpoint_utils.load_checkpoint_to_cpu(cfg.model_path)
        remember_pretrained_cfg(cfg, dict(state["cfg"]["model"]))
    encoder_cfg = cfg.pretrained_model_cfg
    with open_dict(encoder_cfg):
        encoder_cfg.pop("all_gather", None)
    encoder = build_model(encoder_cfg, task)
    if state is not None:
        encoder.load_state_dict(state["model"], strict=True)
    return encoder, encoder_dim(encoder, OmegaConf.to_container(encoder_cfg))


def encoder_embedding(
    encoder: nn.Module, source: torch.Tensor, padding_mask: Optional[torch.Tensor], frozen: bool
) -> torch.Tensor:
    """Pooled representation (B, E) of ``source`` (B, C, T); a frozen encoder runs in eval mode without
    gradient (no dropout, no random crops, BatchNorm statistics untouched)."""
    net_input = {"source": source, "padding_mask": padding_mask}
    if not frozen:
        return pooled_embedding(encoder, net_input)
    encoder.eval()
    with torch.no_grad():
        return pooled_embedding(encoder, net_input)
