"""``ecg_ssl_classifier``'s ``freeze_encoder_updates``: the head alone first, then the whole model."""

from __future__ import annotations

import pytest
import torch
from torch import nn


class _Encoder(nn.Module):
    """A small encoder with the package's representation interface (``extract_embedding``, ``embed_dim``)."""

    embed_dim = 4

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv1d(1, 4, 5)
        self.norm = nn.BatchNorm1d(4)

    def extract_embedding(self, source, padding_mask=None):
        return self.norm(self.conv(source)).mean(-1)


def _classifier(freeze_updates: int):
    from physioclr_ext.models.ecg_ssl_classifier import ECGSSLClassifier, ECGSSLClassifierConfig

    torch.manual_seed(0)
    cfg = ECGSSLClassifierConfig(num_labels=1, freeze_encoder_updates=freeze_updates)
    return ECGSSLClassifier(cfg, _Encoder(), _Encoder.embed_dim)


def _step(model, x):
    model.zero_grad(set_to_none=True)
    model.train()
    model(x)["out"].sum().backward()
    return model.encoder.conv.weight.grad, model.head.weight.grad


@pytest.mark.parametrize("updates", [0, 3])
def test_encoder_gets_gradients_only_after_the_frozen_updates(updates):
    model = _classifier(freeze_updates=3)
    model.set_num_updates(updates)
    x = torch.randn(6, 1, 50)
    stats_before = model.encoder.norm.running_mean.clone()
    enc_grad, head_grad = _step(model, x)
    assert head_grad is not None and head_grad.abs().sum() > 0
    if updates < 3:
        assert enc_grad is None  # frozen: no gradient and no batch-norm statistics update
        assert torch.equal(model.encoder.norm.running_mean, stats_before)
        assert model.encoder_frozen()
    else:
        assert enc_grad is not None and enc_grad.abs().sum() > 0
        assert not model.encoder_frozen()


def test_default_schedule_trains_everything_and_eval_is_unaffected():
    model = _classifier(freeze_updates=0)
    enc_grad, _ = _step(model, torch.randn(6, 1, 50))
    assert enc_grad is not None
    frozen = _classifier(freeze_updates=100)
    frozen.eval()
    assert not frozen.encoder_frozen()  # the schedule concerns training steps only


def _adamw(model, lr: float):
    from fairseq_signals.optim import OPTIMIZER_REGISTRY
    from omegaconf import OmegaConf

    from physioclr_ext.optim.adamw import AdamWConfig

    cfg = OmegaConf.structured(AdamWConfig(weight_decay=0.0, lr=[lr]))
    return OPTIMIZER_REGISTRY["adamw"](cfg, [p for p in model.parameters() if p.requires_grad])


def test_encoder_lr_scale_gives_the_encoder_a_smaller_first_adam_step():
    """Adam's first step moves every parameter by lr * sign(grad) (|m/sqrt(v)| = 1): the head by lr, the
    encoder by lr * encoder_lr_scale, for the rate the schedule sets (set_lr) and reads back (get_lr)."""
    from physioclr_ext.models.ecg_ssl_classifier import ECGSSLClassifier, ECGSSLClassifierConfig

    torch.manual_seed(0)
    model = ECGSSLClassifier(ECGSSLClassifierConfig(num_labels=1, encoder_lr_scale=0.1), _Encoder(), 4)
    opt = _adamw(model, lr=1e-2)
    opt.set_lr(2e-2)
    assert opt.get_lr() == pytest.approx(2e-2)
    assert sorted(g["lr"] for g in opt.param_groups) == pytest.approx([2e-3, 2e-3, 2e-2, 2e-2])
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    model.train()
    # squared logits: a plain sum would give the conv ~zero gradient (batch norm fixes the batch mean)
    model(torch.randn(6, 1, 50))["out"].pow(2).sum().backward()
    opt.step()
    for name, p in model.named_parameters():
        moved = (p.detach() - before[name]).abs()
        expected = 2e-3 if name.startswith("encoder.") else 2e-2
        nonzero = p.grad.abs() > 1e-5  # the conv bias before batch norm has a zero gradient up to rounding
        if name in ("encoder.conv.weight", "head.weight"):
            assert nonzero.any(), name
        assert torch.allclose(moved[nonzero], torch.full_like(moved[nonzero], expected), rtol=1e-2), name


def test_encoder_lr_scale_must_be_positive():
    from physioclr_ext.models.ecg_ssl_classifier import ECGSSLClassifier, ECGSSLClassifierConfig

    with pytest.raises(ValueError, match="encoder_lr_scale"):
        ECGSSLClassifier(ECGSSLClassifierConfig(num_labels=1, encoder_lr_scale=0.0), _Encoder(), 4)
