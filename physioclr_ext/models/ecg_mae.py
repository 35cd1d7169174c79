"""Model ``ecg_mae``: the ECG masked autoencoder of :mod:`physioclr_ext.modules.ecg_mae` for fairseq-signals.

Composition only: ``net_input["source"]`` (B, C, T) goes to :class:`~physioclr_ext.modules.ecg_mae.ECGMAE`,
whose output ``pred`` / ``target`` (B, C*N, P) and ``mask`` (B, C*N) feed the ``masked_reconstruction``
criterion. Views made by the ``ecg_ssl_pretraining`` task are ignored (use ``augmentations: null``).
The downstream representation (:meth:`extract_embedding`, read by ``ecg_ssl_classifier`` and
``python -m physioclr_ext.evaluation embed``) is the mean of the encoder tokens of the unmasked input.
Windows whose length is not a multiple of ``patch_size`` lose their last ``T mod patch_size`` samples.
"""

from dataclasses import dataclass
from typing import Any, Dict, Optional

import torch
from fairseq_signals.dataclass import Dataclass
from fairseq_signals.models import BaseModel, register_model

from physioclr_ext.models.core_config import core_config
from physioclr_ext.modules.ecg_mae import ECGMAE, ECGMAEConfig


@dataclass
class ECGMAEModelConfig(ECGMAEConfig, Dataclass):
    """The fields of :class:`~physioclr_ext.modules.ecg_mae.ECGMAEConfig`, declared there once."""


@register_model("ecg_mae", dataclass=ECGMAEModelConfig)
class ECGMAEModel(BaseModel):
    def __init__(self, cfg: ECGMAEModelConfig) -> None:
        super().__init__()
        self.mae = ECGMAE(core_config(ECGMAEConfig, cfg))
        self.embed_dim = cfg.embed_dim

    @classmethod
    def build_model(cls, cfg: ECGMAEModelConfig, task: Any = None) -> "ECGMAEModel":
        return cls(cfg)

    def forward(
        self, source: torch.Tensor, padding_mask: Optional[torch.Tensor] = None, **kwargs: Any
    ) -> Dict[str, torch.Tensor]:
        """``source`` (B, C, T) -> ``pred``, ``target`` (B, C*N, P) and ``mask`` (B, C*N) bool."""
        return self.mae(source)

    def extract_embedding(self, source: torch.Tensor, padding_mask: Optional[torch.Tensor] = None) -> torch.Tensor:
        """The downstream representation (B, D) of windows (B, C, T): mean of the encoder tokens."""
        return self.mae.embedding(source)

    def reconstruct(
        self,
        source: torch.Tensor,
        mask_ratio: Optional[float] = None,
        generator: Optional[torch.Generator] = None,
        norm_target: bool = True,
    ) -> Dict[str, torch.Tensor]:
        """See :meth:`physioclr_ext.modules.ecg_mae.ECGMAE.reconstruct`."""
        return self.mae.reconstruct(source, mask_ratio=mask_ratio, generator=generator, norm_target=norm_target)
