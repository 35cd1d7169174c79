"""Model ``ecg_vqvae``: the VQ-VAE of :mod:`physioclr_ext.modules.ecg_vqvae` for fairseq-signals.

Composition only. ``form: head`` wraps a pretrained checkpoint (``model_path``: any model of this
package or fairseq-signals; frozen unless ``freeze_encoder: false``) and quantises its pooled embedding,
as the SMILES-2025 study did on ST-MEM; ``form: sequence`` is a from-scratch convolutional VQ-VAE with
one code per time step. Both reconstruct the input window (B, C, T) (cropped to ``signal_len``); the
``vqvae`` criterion reads ``recon``, ``target`` and the quantiser's terms.

Downstream (:meth:`extract_embedding`, read by ``embed``, the probes and ``ecg_ssl_classifier``): the
quantised latent (B, latent_dim) by default, the pre-quantisation latent with
``embedding: pre_quantization``; the sequence form averages its latents over time.
"""

from dataclasses import dataclass, field
from typing import Any, Dict, Optional, Union

import torch
from fairseq_signals.dataclass import Dataclass
from fairseq_signals.models import BaseModel, register_model
from torch import nn

from physioclr_ext.models.core_config import core_config
from physioclr_ext.models.pretrained_encoder import encoder_embedding, load_pretrained_encoder
from physioclr_ext.modules.ecg_vqvae import ConvVQVAE, ECGVQVAEConfig, VQHead, crop_or_check

EMBEDDINGS = ("quantized", "pre_quantization")


@dataclass
class ECGVQVAEModelConfig(ECGVQVAEConfig, Dataclass):
    """The fields of :class:`~physioclr_ext.modules.ecg_vqvae.ECGVQVAEConfig` plus the pretrained encoder."""

    model_path: Optional[str] = field(default=None, metadata={"help": "form head: the pretrained checkpoint"})
    freeze_encoder: bool = field(default=True, metadata={"help": "form head: keep the pretrained encoder frozen"})
    embedding: str = field(
        default="quantized", metadata={"help": "downstream representation: quantized | pre_quantization"}
    )
    pretrained_model_cfg: Any = field(
        default=None, metadata={"help": "filled from model_path at the first build (self-contained checkpoints)"}
    )


@register_model("ecg_vqvae", dataclass=ECGVQVAEModelConfig)
class ECGVQVAEModel(BaseModel):
    def __init__(self, cfg: ECGVQVAEModelConfig, encoder: Optional[nn.Module], embed_dim: int) -> None:
        super().__init__()
        if cfg.form not in ("head", "sequence") or cfg.embedding not in EMBEDDINGS:
            raise ValueError(f"form must be head|sequence and embedding one of {EMBEDDINGS}")
        core = core_config(ECGVQVAEConfig, cfg)
        self.form, self.embedding_kind = cfg.form, cfg.embedding
        self.freeze_encoder = cfg.freeze_encoder
        self.encoder = encoder
        if encoder is not None and cfg.freeze_encoder:
            encoder.requires_grad_(False)
        self.vq: Union[VQHead, ConvVQVAE] = VQHead(embed_dim, core) if cfg.form == "head" else ConvVQVAE(core)
        self.signal_len = cfg.signal_len
        self.embed_dim = cfg.latent_dim

    @classmethod
    def build_model(cls, cfg: ECGVQVAEModelConfig, task: Any = None) -> "ECGVQVAEModel":
        if cfg.form != "head":
            return cls(cfg, None, 0)
        encoder, dim = load_pretrained_encoder(cfg, task)
        return cls(cfg, encoder, dim)

    def _head_input(self, source: torch.Tensor, padding_mask: Optional[torch.Tensor]) -> torch.Tensor:
        assert self.encoder is not None
        return encoder_embedding(self.encoder, source, padding_mask, self.freeze_encoder)

    def _latent(self, source: torch.Tensor, padding_mask: Optional[torch.Tensor]) -> torch.Tensor:
        """Pre-quantisation latents: (B, latent_dim) for the head form, (B, T', latent_dim) for the sequence form."""
        if isinstance(self.vq, VQHead):
            return self.vq.proj(self._head_input(source, padding_mask))
        return self.vq.encode(source)

    def forward(
        self, source: torch.Tensor, padding_mask: Optional[torch.Tensor] = None, **kwargs: Any
    ) -> Dict[str, torch.Tensor]:
        """``source`` (B, C, T >= signal_len) -> ``recon`` and ``target`` (B, C, signal_len), ``indices``,
        ``commitment_loss``, ``codebook_loss``, ``perplexity``, ``codes_used``, ``dead_codes``."""
        target = crop_or_check(source, self.signal_len)
        out = self.vq(self._head_input(source, padding_mask)) if isinstance(self.vq, VQHead) else self.vq(source)
        return {**out, "target": target}

    def codes(self, source: torch.Tensor, padding_mask: Optional[torch.Tensor] = None) -> torch.Tensor:
        """Code indices of windows (B, C, T): (B,) for the head form, (B, T') for the sequence form."""
        return self.vq.quantizer.quantize(self._latent(source, padding_mask))[1]

    def extract_embedding(self, source: torch.Tensor, padding_mask: Optional[torch.Tensor] = None) -> torch.Tensor:
        """The downstream representation (B, latent_dim); see the module docstring."""
        quantized = self.embedding_kind == "quantized"
        if isinstance(self.vq, ConvVQVAE):
            return self.vq.embedding(source, quantized=quantized)
        z = self._latent(source, padding_mask)
        return self.vq.quantizer.quantize(z)[0] if quantized else z
