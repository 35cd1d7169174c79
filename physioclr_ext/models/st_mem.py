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

Checkpoints trained before the port was made faithful (position table shifted by one, separate ``fc_norm``)
load only into a model built with ``position_layout=shifted pool_norm=fc_norm decoder_block_norm_eps=1e-6``;
loading one into the default model stops with that advice.
"""

from dataclasses import dataclass
from typing import Any, Dict, Optional

import torch
from fairseq_signals.dataclass import Dataclass
from fairseq_signals.models import BaseModel, register_model

from physioclr_ext.models.core_config import core_config
from physioclr_ext.modules.st_mem import STMEM, STMEMConfig, random_crop, test_crops


@dataclass
class STMEMModelConfig(STMEMConfig, Dataclass):
    """The fields of :class:`~physioclr_ext.modules.st_mem.STMEMConfig`, declared there once."""


@register_model("st_mem", dataclass=STMEMModelConfig)
class STMEMModel(BaseModel):
    def __init__(self, cfg: STMEMModelConfig) -> None:
        super().__init__()
        self.net = STMEM(core_config(STMEMConfig, cfg))
        self.embed_dim = cfg.embed_dim

    @property
    def target_var_unbiased(self) -> bool:
        """ST-MEM's target normalisation convention (unbiased variance), read by ``masked_reconstruction``."""
        return self.net.target_var_unbiased

    def upgrade_state_dict_named(self, state_dict: Dict[str, Any], name: str) -> None:
        """Stop with the fix when a checkpoint of the old layout (it has ``fc_norm``) meets the faithful model."""
        prefix = f"{name}." if name else ""
        if f"{prefix}net.fc_norm.weight" in state_dict and self.net.fc_norm is None:
            raise ValueError(
                "this st_mem checkpoint was trained before ST-MEM was made faithful to the original (it has "
                "`fc_norm`); build the model with model.position_layout=shifted model.pool_norm=fc_norm "
                "model.decoder_block_norm_eps=1e-6 to load it"
            )
        super().upgrade_state_dict_named(state_dict, name)

    @classmethod
    def build_model(cls, cfg: STMEMModelConfig, task: Any = None) -> "STMEMModel":
        return cls(cfg)

    def _crop(self, source: torch.Tensor) -> torch.Tensor:
        """(B, C, T) -> (B, C, seq_len): random in training, the first test crop otherwise."""
        if self.training:
            return random_crop(source, self.net.seq_len)
        return test_crops(source, self.net.seq_len, self.net.cfg.crop_starts[:1])[0]

    def forward(
        self, source: torch.Tensor, padding_mask: Optional[torch.Tensor] = None, **kwargs: Any
    ) -> Dict[str, torch.Tensor]:
        """``source`` (B, C, T >= seq_len) -> ``pred``, ``target`` (B, C, N, P), ``mask`` (B, C, N)."""
        return self.net(self._crop(source))

    def extract_embedding(self, source: torch.Tensor, padding_mask: Optional[torch.Tensor] = None) -> torch.Tensor:
        """The downstream representation (B, D): one random crop in training, the mean over the test crops
        in evaluation."""
        if self.training:
            return self.net.embedding(random_crop(source, self.net.seq_len))
        return self.net.crop_embedding(source)

    def reconstruct(
        self,
        source: torch.Tensor,
        mask_ratio: Optional[float] = None,
        generator: Optional[torch.Generator] = None,
        norm_target: bool = True,
    ) -> Dict[str, torch.Tensor]:
        """:meth:`STMEM.reconstruct` on the first test crop of ``source`` (B, C, T); outputs (B, C, seq_len)."""
        crop = test_crops(source, self.net.seq_len, self.net.cfg.crop_starts[:1])[0]
        return self.net.reconstruct(crop, mask_ratio=mask_ratio, generator=generator, norm_target=norm_target)
