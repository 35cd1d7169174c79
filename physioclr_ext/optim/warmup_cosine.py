"""LR scheduler ``warmup_cosine``: linear warm-up then half-cycle cosine (MAE, ST-MEM).

fairseq-signals has no cosine schedule; this registers
:func:`physioclr_ext.optim.schedules.warmup_cosine_lr`, stepped per update. The papers state the
warm-up in epochs; give it in updates (``warmup_updates``) or as a share of ``total_updates``
(``warmup_ratio``), which defaults to ``optimization.max_update``.

YAML::

    lr_scheduler:
      _name: warmup_cosine
      warmup_ratio: 0.05
      min_lr: 0.0
"""

import logging
from dataclasses import dataclass, field
from typing import Any, List, Optional

from fairseq_signals.dataclass import Dataclass
from fairseq_signals.optim.lr_scheduler import FairseqLRScheduler, register_lr_scheduler
from omegaconf import II

from physioclr_ext.optim.schedules import warmup_cosine_lr

logger = logging.getLogger(__name__)


@dataclass
class WarmupCosineConfig(Dataclass):
    warmup_updates: int = field(default=0, metadata={"help": "linear warm-up length in updates"})
    warmup_ratio: Optional[float] = field(
        default=None, metadata={"help": "warm-up as a share of total_updates (overrides warmup_updates when set)"}
    )
    min_lr: float = field(default=0.0, metadata={"help": "learning rate at the end of the cosine"})
    total_updates: int = field(
        default=II("optimization.max_update"),
        metadata={"help": "updates of the whole schedule (default optimization.max_update)"},
    )
    lr: List[float] = II("optimization.lr")


@register_lr_scheduler("warmup_cosine", dataclass=WarmupCosineConfig)
class WarmupCosineSchedule(FairseqLRScheduler):
    def __init__(self, cfg: WarmupCosineConfig, optimizer: Any) -> None:
        super().__init__(cfg, optimizer)
        if len(cfg.lr) > 1:
            raise ValueError("warmup_cosine takes one learning rate (optimization.lr=[x])")
        if cfg.total_updates <= 0:
            raise ValueError("warmup_cosine needs optimization.max_update > 0 or lr_scheduler.total_updates")
        self.total = int(cfg.total_updates)
        ratio = cfg.warmup_ratio
        self.warmup = int(round(ratio * self.total)) if ratio is not None else int(cfg.warmup_updates)
        if self.warmup > self.total:  # e.g. a short test run of a paper config
            logger.warning(
                "warmup_cosine: %d warm-up updates exceed the %d updates of the run; warming up over the whole run",
                self.warmup,
                self.total,
            )
            self.warmup = self.total
        self.peak, self.min_lr = float(cfg.lr[0]), float(cfg.min_lr)
        self.optimizer.set_lr(self._lr(0))

    def _lr(self, num_updates: int) -> float:
        return warmup_cosine_lr(num_updates, self.total, self.warmup, self.peak, self.min_lr)

    def step_update(self, num_updates: int) -> float:
        lr = self._lr(num_updates)
        self.optimizer.set_lr(lr)
        return lr
