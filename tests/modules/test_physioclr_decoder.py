"""PhysioCLR's decoder and peak head return the input's exact length, whatever the extractor's stride."""

from __future__ import annotations

import pytest
import torch

from physioclr_ext.modules.physioclr_decoder import ConvDecoder, PeakHead, conv_output_length

# fairseq-signals' default wav2vec 2.0 extractor (16x) and the tiny config's (16x, other kernels)
DEFAULT = [(256, 2, 2)] * 4
TINY = [(64, 5, 4), (64, 3, 2), (64, 3, 2)]


def test_conv_output_length_matches_the_fairseq_signals_formula() -> None:
    assert conv_output_length(2500, DEFAULT) == 156  # 2500 -> 1250 -> 625 -> 312 -> 156
    assert conv_output_length(2500, TINY) == 155  # 2500 -> 624 -> 311 -> 155
    conv = torch.nn.Sequential(*[torch.nn.Conv1d(1, 1, k, s) for _, k, s in TINY])
    for length in (1000, 2501, 3600):
        assert conv(torch.zeros(1, 1, length)).shape[-1] == conv_output_length(length, TINY)


@pytest.mark.parametrize("layers", [DEFAULT, TINY], ids=["default", "tiny"])
@pytest.mark.parametrize("length", [1000, 2500, 2501, 3600, 5000])
def test_reconstruction_and_peak_map_have_the_input_length(layers: list, length: int) -> None:
    frames = conv_output_length(length, layers)
    x = torch.randn(2, 32, frames)
    assert ConvDecoder(32, 12, hidden=(16, 8))(x, length).shape == (2, 12, length)
    assert PeakHead(32)(x, length).shape == (2, length)


def test_released_layers_upsample_four_times_before_the_interpolation() -> None:
    decoder = ConvDecoder(768, 12)
    assert decoder.layers(torch.zeros(1, 768, 156)).shape == (1, 12, 624)  # the release's 624 != 2500
    assert [m.out_channels for m in decoder.layers if hasattr(m, "out_channels")] == [256, 128, 12]


def test_gradients_reach_the_frames_and_every_weight() -> None:
    torch.manual_seed(0)
    decoder, head = ConvDecoder(16, 3, hidden=(8, 8)), PeakHead(16)
    x = torch.randn(2, 16, 40, requires_grad=True)
    loss = decoder(x, 700).square().mean() + head(x, 700).square().mean()
    loss.backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    for name, p in [*decoder.named_parameters(), *head.named_parameters()]:
        assert p.grad is not None and p.grad.abs().sum() > 0, name


def test_interpolation_preserves_a_constant_and_is_identity_at_equal_length() -> None:
    head = PeakHead(4)
    x = torch.randn(1, 4, 50)
    assert torch.equal(head(x, 50), head.proj(x).squeeze(1))
    constant = torch.ones(1, 1, 7)
    from physioclr_ext.modules.physioclr_decoder import _resize

    assert torch.allclose(_resize(constant, 113), torch.ones(1, 1, 113))
