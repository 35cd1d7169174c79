"""Model ``wav2vec2_physioCLR``: PhysioCLR (Maghsoodi et al., arXiv 2509.08116) on fairseq-signals' wav2vec 2.0.

Composition only: fairseq-signals' wav2vec 2.0 / ECG transformer encoder (conv feature extractor,
time masking, transformer), a pooled embedding, the released convolutional decoder that
reconstructs the input at its exact length and an R-peak map head
(:mod:`physioclr_ext.modules.physioclr_decoder`). The maths of the loss is in
:mod:`physioclr_ext.losses.physioclr`, applied by the ``physioclr`` criterion.

``forward(source, shuffled, neighbour, padding_mask)`` returns

* ``h`` (B, D): the mean over frames (padding excluded) of the encoder output of ``source``,
  time-masked when training with ``apply_mask`` (the release's anchor; it called it a CLS token,
  which fairseq-signals' wav2vec 2.0 does not have);
* ``reconstruction`` (B, C, T) and ``peak_map`` (B, T) logits, decoded from the same frames;
* ``h_shuffled``, ``h_neighbour`` (B, D): pooled, unmasked embeddings of the heartbeat-shuffled
  view and of the temporal neighbour (one encoder pass for both), when given.

The downstream representation (:meth:`extract_embedding`, read by ``ecg_ssl_classifier`` and
``python -m physioclr_ext.evaluation embed``) is the pooled unmasked encoder output. The model
builds under any task (``ecg_ssl_classifier`` builds it under ``ecg_classification``).

The wav2vec 2.0 contrastive parts (quantizer, ``project_q``, ``final_proj``, ``target_glu``) are
not used by PhysioCLR and are removed at construction, so data-parallel training needs no
``find_unused_parameters`` during pretraining (``quantize_targets`` and ``final_dim`` are kept in
the config only for parity with the published YAML). Fine-tuning uses the encoder only, so its
configs set ``find_unused_parameters: true`` (the decoder, peak head and mask embedding stay unused).
Time masking is fairseq-signals' own (``compute_mask_indices``, NumPy's RNG), as in its ``wav2vec2``.
"""

from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional

import torch
from fairseq_signals.models import register_model
from fairseq_signals.models.wav2vec2.wav2vec2 import Wav2Vec2Config, Wav2Vec2Model

from physioclr_ext.modules.physioclr_decoder import ConvDecoder, PeakHead
from physioclr_ext.modules.pooling import masked_mean


@dataclass
class PhysioCLRModelConfig(Wav2Vec2Config):
    decoder_hidden: List[int] = field(
        default_factory=lambda: [256, 128],
        metadata={"help": "widths of the decoder's two transposed convolutions (the release: 256, 128)"},
    )


@register_model("wav2vec2_physioCLR", dataclass=PhysioCLRModelConfig)
class PhysioCLRModel(Wav2Vec2Model):
    def __init__(self, cfg: PhysioCLRModelConfig) -> None:
        super().__init__(cfg)
        self.remove_pretraining_modules()
        hidden = tuple(int(d) for d in cfg.decoder_hidden)
        if len(hidden) != 2:
            raise ValueError(f"model.decoder_hidden needs two widths, got {list(hidden)}")
        self.decoder = ConvDecoder(cfg.encoder_embed_dim, cfg.in_d, hidden=hidden)
        self.peak_head = PeakHead(cfg.encoder_embed_dim)

    @classmethod
    def build_model(cls, cfg: PhysioCLRModelConfig, task: Any = None) -> "PhysioCLRModel":
        return cls(cfg)

    @property
    def embed_dim(self) -> int:
        return int(self.cfg.encoder_embed_dim)

    def _encode(self, source: torch.Tensor, padding_mask: Optional[torch.Tensor], mask: bool) -> Dict[str, Any]:
        """Encoder frames ``x`` (B, T', D) and their ``padding_mask`` (B, T') or None."""
        return Wav2Vec2Model.forward(self, source, padding_mask=padding_mask, mask=mask, features_only=True)

    def forward(
        self,
        source: torch.Tensor,
        shuffled: Optional[torch.Tensor] = None,
        neighbour: Optional[torch.Tensor] = None,
        padding_mask: Optional[torch.Tensor] = None,
        **kwargs: Any,
    ) -> Dict[str, torch.Tensor]:
        """``source``, ``shuffled``, ``neighbour`` (B, C, T) -> see the module docstring."""
        res = self._encode(source, padding_mask, mask=self.training and self.cfg.apply_mask)
        x = res["x"]
        frames = x.transpose(1, 2)
        length = source.shape[-1]
        out = {
            "h": masked_mean(x, res["padding_mask"]),
            "reconstruction": self.decoder(frames, length),
            "peak_map": self.peak_head(frames, length),
        }
        views = [v for v in (shuffled, neighbour) if v is not None]
        if views:
            masks = None if padding_mask is None else torch.cat([padding_mask] * len(views))
            h = self.extract_embedding(torch.cat(views), masks).split(source.shape[0])
            names = [n for n, v in (("h_shuffled", shuffled), ("h_neighbour", neighbour)) if v is not None]
            out.update(zip(names, h))
        return out

    def extract_embedding(self, source: torch.Tensor, padding_mask: Optional[torch.Tensor] = None) -> torch.Tensor:
        """The representation (B, D) of windows (B, C, T): pooled encoder output, no masking."""
        res = self._encode(source, padding_mask, mask=False)
        return masked_mean(res["x"], res["padding_mask"])
