"""Model ``st_mem``: ST-MEM (Na et al., ICLR 2024) for the ``ecg_ssl_pretraining`` task.

Composition only; the network is :class:`physioclr_ext.modules.st_mem.STMEM`, the loss the criterion
``masked_reconstruction``. Windows come from the preprocessing preset ``st_mem`` (12 leads, 250 Hz,
2500 samples); the model crops them to ``seq_len`` (2250) itself:

* training: one random crop per window, then masking; the output ``pred``, ``target`` (B, C, N, P) and
  ``mask`` (B, C, N) feed ``masked_reconstruction``;
* evaluation: ``forward`` takes the first test crop; :meth:`extract_embedding` (read by
  ``ecg_ssl_classifier`` and ``python -m physioclr_ext.evaluation embed``) averages the representation over
  the crops at ``crop_starts`` (0, 125, 250), which with a linear head equals ST-MEM's averaged logits.

``padding_mask`` is ignored: ST-MEM windows have a fixed length.
"""

from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional

import torch
from fairseq_signals.dataclass import Dataclass
from fairseq_signals.models import BaseModel, register_model

from physioclr_ext.modules.st_mem import STMEM, random_crop, test_crops


@dataclass
class STMEMConfig(Dataclass):
    num_leads: int = field(default=12, metadata={"help": "leads C, in the order I, II, III, aVR, aVL, aVF, V1-V6"})
    seq_len: int = field(default=2250, metadata={"help": "samples per lead seen by the model (9 s at 250 Hz)"})
    patch_size: int = field(default=75, metadata={"help": "samples per patch P (0.3 s at 250 Hz)"})
    embed_dim: int = field(default=768, metadata={"help": "encoder width D (ViT-B 768, ViT-S 384)"})
    depth: int = field(default=12, metadata={"help": "encoder blocks"})
    heads: int = field(default=12, metadata={"help": "encoder attention heads (ViT-B 12, ViT-S 6)"})
    mlp_ratio: float = field(default=4.0, metadata={"help": "MLP width as a multiple of D"})
    qkv_bias: bool = field(default=True, metadata={"help": "bias in the attention qkv projection"})
    decoder_embed_dim: int = field(default=256, metadata={"help": "lead-wise decoder width"})
    decoder_depth: int = field(default=4, metadata={"help": "lead-wise decoder blocks"})
    decoder_heads: int = field(default=4, metadata={"help": "lead-wise decoder attention heads"})
    mask_ratio: float = field(default=0.75, metadata={"help": "share of each lead's patches masked"})
    drop_path: float = field(default=0.0, metadata={"help": "encoder stochastic depth"})
    crop_starts: List[int] = field(default_factory=lambda: [0, 125, 250], metadata={
        "help": "starts of the evaluation crops whose representations are averaged"})


@register_model("st_mem", dataclass=STMEMConfig)
class STMEMModel(BaseModel):
    def __init__(self, cfg: STMEMConfig) -> None:
        super().__init__()
        self.net = STMEM(
            num_leads=cfg.num_leads, seq_len=cfg.seq_len, patch_size=cfg.patch_size, embed_dim=cfg.embed_dim,
            depth=cfg.depth, heads=cfg.heads, mlp_ratio=cfg.mlp_ratio, qkv_bias=cfg.qkv_bias,
            decoder_embed_dim=cfg.decoder_embed_dim, decoder_depth=cfg.decoder_depth,
            decoder_heads=cfg.decoder_heads, mask_ratio=cfg.mask_ratio, drop_path=cfg.drop_path)
        self.embed_dim = cfg.embed_dim
        self.crop_starts = tuple(int(s) for s in cfg.crop_starts)

    @classmethod
    def build_model(cls, cfg: STMEMConfig, task: Any = None) -> "STMEMModel":
        return cls(cfg)

    def _crop(self, source: torch.Tensor) -> torch.Tensor:
        """(B, C, T) -> (B, C, seq_len): random in training, the first test crop otherwise."""
        if self.training:
            return random_crop(source, self.net.seq_len)
        return test_crops(source, self.net.seq_len, self.crop_starts[:1])[0]

    def forward(self, source: torch.Tensor, padding_mask: Optional[torch.Tensor] = None,
                **kwargs: Any) -> Dict[str, torch.Tensor]:
        """``source`` (B, C, T >= seq_len) -> ``pred``, ``target`` (B, C, N, P), ``mask`` (B, C, N)."""
        return self.net(self._crop(source))

    def extract_embedding(self, source: torch.Tensor, padding_mask: Optional[torch.Tensor] = None) -> torch.Tensor:
        """The downstream representation (B, D): one random crop in training, the mean over the test crops
        in evaluation."""
        if self.training:
            return self.net.embedding(random_crop(source, self.net.seq_len))
        return self.net.crop_embedding(source, self.crop_starts)

    def reconstruct(self, source: torch.Tensor, mask_ratio: Optional[float] = None,
                    generator: Optional[torch.Generator] = None, norm_target: bool = True) -> Dict[str, torch.Tensor]:
        """:meth:`STMEM.reconstruct` on the first test crop of ``source`` (B, C, T); outputs (B, C, seq_len)."""
        crop = test_crops(source, self.net.seq_len, self.crop_starts[:1])[0]
        return self.net.reconstruct(crop, mask_ratio=mask_ratio, generator=generator, norm_target=norm_target)
