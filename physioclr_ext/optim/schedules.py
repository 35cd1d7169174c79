"""Pure learning-rate schedule formulas (no framework import)."""

from __future__ import annotations

import math


def warmup_cosine_lr(step: int, total_steps: int, warmup_steps: int, peak_lr: float, min_lr: float = 0.0) -> float:
    """MAE's schedule (``util/lr_sched.py`` of MAE, used by ST-MEM): linear warm-up from 0 to
    ``peak_lr`` over ``warmup_steps``, then a half-cycle cosine down to ``min_lr`` at ``total_steps``
    (held there afterwards).

    >>> warmup_cosine_lr(0, 100, 10, 1.0), warmup_cosine_lr(10, 100, 10, 1.0), warmup_cosine_lr(55, 100, 10, 1.0)
    (0.0, 1.0, 0.5)
    """
    if total_steps <= 0:
        raise ValueError(f"total_steps must be positive, got {total_steps}")
    if not 0 <= warmup_steps <= total_steps:
        raise ValueError(f"warmup_steps must be in [0, total_steps={total_steps}], got {warmup_steps}")
    if step < warmup_steps:
        return peak_lr * step / warmup_steps
    if step >= total_steps:
        return min_lr
    progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
    return min_lr + (peak_lr - min_lr) * 0.5 * (1.0 + math.cos(math.pi * progress))
