"""Model ``ecg_jepa``: ECG-JEPA (Kim, arXiv 2410.08559) for the ``ecg_ssl_pretraining`` task.

Composition only; the network is :class:`physioclr_ext.modules.ecg_jepa.ECGJEPA`, the loss the criterion
``jepa``. Windows: the preprocessing preset ``ecg_jepa`` (8 leads I, II, V1-V6, 250 Hz, 2500 samples, raw);
``task.leads_to_load`` picks the channels, ``model.leads`` which rows of the positional table and CroPA mask
they are (``restrict_leads``), ``model.num_leads`` the number of rows (19 with the hybrid feature channels).

**Target encoder (EMA).** fairseq-signals calls ``model.set_num_updates(n)`` at the start of every
``train_step`` (``Task.train_step``; the trainer's own ``set_num_updates`` after the optimiser step does not
reach the model). The EMA step that the original applies right after optimiser step ``k`` is therefore
applied lazily, at the start of the next training forward: nothing reads the target encoder in between,
so the result is the same. ``ema_updates`` (a buffer, saved in every checkpoint with the target weights)
counts the EMA steps applied; the momentum of the next one is
``ema_momentum(ema_updates, ema_total_updates)``, so a run resumed from a checkpoint continues the same
schedule. The EMA step of the very last update of a run is not applied (its momentum is ~1).

The downstream representation (:meth:`extract_embedding`, read by ``ecg_ssl_classifier`` and
``python -m physioclr_ext.evaluation embed``) is the context encoder's mean token over the full input.
``padding_mask`` is ignored: windows have a fixed length.
"""

import logging
from dataclasses import dataclass, field
from typing import Any, Dict, Optional

import torch
from fairseq_signals.dataclass import Dataclass
from fairseq_signals.models import BaseModel, register_model
from omegaconf import II

from physioclr_ext.models.core_config import core_config
from physioclr_ext.modules.ecg_jepa import ECGJEPA, ECGJEPAConfig, ema_momentum

logger = logging.getLogger(__name__)


@dataclass
class ECGJEPAModelConfig(ECGJEPAConfig, Dataclass):
    """The fields of :class:`~physioclr_ext.modules.ecg_jepa.ECGJEPAConfig`; the EMA schedule defaults to the
    run's ``optimization.max_update``."""

    ema_total_updates: int = field(
        default=II("optimization.max_update"),
        metadata={"help": "updates over which the EMA momentum rises linearly (default: optimization.max_update)"},
    )


@register_model("ecg_jepa", dataclass=ECGJEPAModelConfig)
class ECGJEPAModel(BaseModel):
    ema_updates: torch.Tensor

    def __init__(self, cfg: ECGJEPAModelConfig) -> None:
        super().__init__()
        self.net = ECGJEPA(core_config(ECGJEPAConfig, cfg))
        self.embed_dim = cfg.embed_dim
        self.num_updates = 0
        self.register_buffer("ema_updates", torch.zeros((), dtype=torch.long))

    @classmethod
    def build_model(cls, cfg: ECGJEPAModelConfig, task: Any = None) -> "ECGJEPAModel":
        return cls(cfg)

    def set_num_updates(self, num_updates: int) -> None:
        """Called by fairseq-signals before every training step with the optimiser steps done so far."""
        self.num_updates = int(num_updates)

    def ema_momentum(self) -> float:
        """Momentum of the next EMA step."""
        cfg = self.net.cfg
        return ema_momentum(int(self.ema_updates), cfg.ema_total_updates, cfg.ema_start, cfg.ema_end)

    def sync_target(self) -> None:
        """Apply the EMA step owed for the optimiser steps done since the last one (see the module docstring)."""
        done = int(self.ema_updates)
        if self.num_updates < done:  # an optimiser reset: count the schedule from the trainer's number
            logger.warning("ecg_jepa: %d EMA steps recorded but the run is at update %d", done, self.num_updates)
            self.ema_updates.fill_(self.num_updates)
        elif self.num_updates > done:
            self.net.update_target(self.ema_momentum())
            self.ema_updates.fill_(self.num_updates)

    def forward(
        self,
        source: torch.Tensor,
        padding_mask: Optional[torch.Tensor] = None,
        with_context: bool = True,
        **kwargs: Any,
    ) -> Dict[str, torch.Tensor]:
        """``source`` (B, C, T) -> ``pred``, ``target`` (B, C, n_mask, D), ``mask`` (p,) and, unless
        ``with_context`` is False, ``context`` (the rows the criterion's optional VICReg terms read).

        The time-column mask is drawn from torch's global RNG, which the trainer seeds per update.
        """
        if self.training and torch.is_grad_enabled():
            self.sync_target()
        return self.net(source, with_context=with_context)

    def extract_embedding(self, source: torch.Tensor, padding_mask: Optional[torch.Tensor] = None) -> torch.Tensor:
        """The downstream representation (B, D) of windows (B, C, T)."""
        return self.net.representation(source)
