"""``ecg_ssl_classifier``'s ``head_init``: the head copied from an ``.npz`` (LP-FT's probe head)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn


class _Encoder(nn.Module):
    embed_dim = 4

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv1d(1, 4, 5)

    def extract_embedding(self, source, padding_mask=None):
        return self.conv(source).mean(-1)


def _classifier(num_labels: int):
    from physioclr_ext.models.ecg_ssl_classifier import ECGSSLClassifier, ECGSSLClassifierConfig

    torch.manual_seed(0)
    return ECGSSLClassifier(ECGSSLClassifierConfig(num_labels=num_labels), _Encoder(), _Encoder.embed_dim)


def test_load_head_copies_weight_and_bias(tmp_path):
    weight = np.arange(12, dtype=np.float64).reshape(3, 4) / 7
    bias = np.array([0.5, -1.0, 2.0])
    np.savez(tmp_path / "head.npz", weight=weight, bias=bias)
    model = _classifier(3)
    model.load_head(str(tmp_path / "head.npz"))
    torch.testing.assert_close(model.head.weight, torch.tensor(weight, dtype=torch.float32))
    torch.testing.assert_close(model.head.bias, torch.tensor(bias, dtype=torch.float32))
    x = torch.randn(5, 1, 30)
    model.eval()
    with torch.no_grad():
        h = model.encoder.extract_embedding(x)
        torch.testing.assert_close(model(x)["out"], h @ model.head.weight.T + model.head.bias)


@pytest.mark.parametrize(
    "arrays,match",
    [
        ({"weight": np.zeros((2, 4)), "bias": np.zeros(2)}, r"needs weight \(1, 4\) and bias \(1,\).*found"),
        ({"weight": np.zeros((1, 5)), "bias": np.zeros(1)}, r"\(1, 5\)"),
        ({"weight": np.zeros((1, 4))}, r"found \{'weight': \(1, 4\)\}"),
        ({"w": np.zeros((1, 4))}, "found neither"),
    ],
)
def test_load_head_rejects_wrong_shapes_and_missing_keys(tmp_path, arrays, match):
    path = tmp_path / "head.npz"
    np.savez(path, **arrays)
    model = _classifier(1)
    before = model.head.weight.detach().clone()
    with pytest.raises(ValueError, match=match) as err:
        model.load_head(str(path))
    assert str(path) in str(err.value)
    assert torch.equal(model.head.weight, before)


def test_load_head_missing_or_unreadable_file(tmp_path):
    model = _classifier(1)
    with pytest.raises(ValueError, match="cannot read"):
        model.load_head(str(tmp_path / "absent.npz"))
    (tmp_path / "bad.npz").write_text("not an npz")
    with pytest.raises(ValueError, match="bad.npz: cannot read"):
        model.load_head(str(tmp_path / "bad.npz"))
