"""The warm-up + cosine schedule against MAE's formula, written out here independently."""

import math

import pytest

from physioclr_ext.optim.schedules import warmup_cosine_lr


def _mae(step: float, total: int, warmup: int, lr: float, min_lr: float) -> float:
    # MAE util/lr_sched.adjust_learning_rate with epochs replaced by steps
    if step < warmup:
        return lr * step / warmup
    return min_lr + (lr - min_lr) * 0.5 * (1.0 + math.cos(math.pi * (step - warmup) / (total - warmup)))


@pytest.mark.parametrize("total,warmup,min_lr", [(100, 10, 0.0), (1000, 0, 1e-5), (57, 3, 1e-4)])
def test_matches_mae_formula_at_every_step(total, warmup, min_lr):
    for step in range(total):
        assert warmup_cosine_lr(step, total, warmup, 1e-3, min_lr) == pytest.approx(
            _mae(step, total, warmup, 1e-3, min_lr), abs=1e-12
        )


def test_shape_warmup_rises_then_cosine_falls_to_min():
    lrs = [warmup_cosine_lr(s, 200, 20, 1.0, 0.1) for s in range(260)]
    assert lrs[0] == 0.0 and lrs[20] == pytest.approx(1.0)
    assert all(a < b for a, b in zip(lrs[:20], lrs[1:21]))
    assert all(a >= b for a, b in zip(lrs[20:200], lrs[21:201]))
    assert lrs[110] == pytest.approx(0.55)  # halfway through the cosine: (1 + 0.1) / 2
    assert all(v == 0.1 for v in lrs[200:])


@pytest.mark.parametrize("total,warmup", [(0, 0), (10, 11), (10, -1)])
def test_rejects_bad_lengths(total, warmup):
    with pytest.raises(ValueError):
        warmup_cosine_lr(0, total, warmup, 1.0)
