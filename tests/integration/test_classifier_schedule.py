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
