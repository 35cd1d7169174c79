"""Build-forward-backward smoke tests for every encoder and the heads."""

from __future__ import annotations

import pytest
import torch
import torch.nn as nn

from physioclr_ext.modules import ClocsCNN, MLPHead, build_encoder, projection_head_simclr
from physioclr_ext.modules.encoders import ENCODERS

SHAPES = [(2, 12, 2500), (2, 12, 5000), (2, 1, 2500)]


def _build(name: str, channels: int, length: int, **cfg: object) -> nn.Module:
    if name == "clocs_cnn":
        cfg.setdefault("input_length", length)
    return build_encoder(name, in_channels=channels, **cfg)


@pytest.mark.parametrize("name", sorted(ENCODERS))
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "x".join(map(str, s)))
def test_forward_backward_reaches_first_layer(name: str, shape: tuple[int, int, int]) -> None:
    torch.manual_seed(0)
    encoder = _build(name, shape[1], shape[2])
    out = encoder(torch.randn(*shape))
    assert out.shape == (shape[0], 256) == (shape[0], encoder.embed_dim)
    out.square().mean().backward()
    first = next(m for m in encoder.modules() if isinstance(m, nn.Conv1d))
    assert first.in_channels == shape[1]
    assert first.weight.grad is not None and first.weight.grad.abs().sum() > 0


@pytest.mark.parametrize("name", sorted(ENCODERS))
def test_config_overrides(name: str) -> None:
    encoder = _build(name, 3, 1000, embed_dim=32, dropout=0.0).eval()
    assert encoder(torch.randn(4, 3, 1000)).shape == (4, 32)


def test_build_encoder_rejects_unknown_names_and_fields() -> None:
    with pytest.raises(KeyError):
        build_encoder("resnet", 12)
    with pytest.raises(TypeError):
        build_encoder("cnn", 12, not_a_field=1)


def test_clocs_cnn_matches_the_paper_sizes() -> None:
    encoder = ClocsCNN(1)
    assert encoder.flatten_size == 320
    assert [m.out_channels for m in encoder.modules() if isinstance(m, nn.Conv1d)] == [4, 16, 32]
    assert build_encoder("clocs_cnn", 1, input_length=5000).flatten_size == 32 * 22
    with pytest.raises(ValueError):
        encoder(torch.randn(2, 1, 5000))


def test_projection_head_simclr_layout() -> None:
    head = projection_head_simclr(256, 128)
    layers = list(head)
    assert [type(m) for m in layers] == [nn.Linear, nn.ReLU, nn.Linear]
    assert (layers[0].in_features, layers[0].out_features, layers[2].out_features) == (256, 256, 128)
    assert head(torch.randn(3, 256)).shape == (3, 128)


def test_mlp_head_options() -> None:
    head = MLPHead(16, [32, 8], 4, batch_norm=True, activation="gelu")
    hidden = [nn.Linear, nn.BatchNorm1d, nn.GELU]
    assert [type(m) for m in head] == hidden + hidden + [nn.Linear]
    assert head(torch.randn(5, 16)).shape == (5, 4)
    assert [type(m) for m in MLPHead(16, [], 4)] == [nn.Linear]
    with pytest.raises(KeyError):
        MLPHead(16, [8], 4, activation="swish")
