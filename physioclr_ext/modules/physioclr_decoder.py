"""PhysioCLR's reconstruction decoder and R-peak map head (Maghsoodi et al., arXiv 2509.08116).

Both read the encoder's frame sequence ``(B, D, T')`` and return signals at the input's own
length ``T``. The released decoder is ``ConvTranspose1d(D->256, k4, s2, p1) - GELU -
ConvTranspose1d(256->128, k4, s2, p1) - GELU - Conv1d(128->C, k3, p1)``: it upsamples 4x, while
fairseq-signals' wav2vec 2.0 extractor downsamples about 16x (``[(256, 2, 2)] * 4``: 2500
samples -> 156 frames), so the release reconstructs 624 samples of a 2500-sample window and
its MSE against the input cannot even be computed. Here the same layers are followed by a
linear interpolation to exactly ``T`` samples, which works for any extractor and any length.
"""

from __future__ import annotations

from typing import Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["ConvDecoder", "PeakHead", "conv_output_length"]


def conv_output_length(length: int, layers: Sequence[Tuple[int, int, int]]) -> int:
    """Frames out of a wav2vec 2.0 conv extractor ``[(dim, kernel, stride), ...]`` (no padding)
    for ``length`` input samples: ``floor((L - k) / s) + 1`` per layer, as fairseq-signals computes it.

    Example:
        >>> conv_output_length(2500, [(256, 2, 2)] * 4)
        156
    """
    for _, kernel, stride in layers:
        length = (length - kernel) // stride + 1
    return length


def _resize(x: torch.Tensor, length: int) -> torch.Tensor:
    """Linear interpolation of ``(B, C, T_in)`` to ``(B, C, length)`` (identity when the sizes agree)."""
    if x.shape[-1] == length:
        return x
    return F.interpolate(x, size=length, mode="linear", align_corners=False)


class ConvDecoder(nn.Module):
    """The released PhysioCLR decoder, then interpolation to the input length: ``(B, D, T') -> (B, C, length)``.

    Args:
        in_dim: encoder width D.
        out_channels: leads C to reconstruct.
        hidden: widths of the two transposed convolutions (the release: 256, 128).

    Example:
        >>> decoder = ConvDecoder(768, 12)
        >>> decoder(torch.randn(2, 768, 156), length=2500).shape
        torch.Size([2, 12, 2500])
    """

    def __init__(self, in_dim: int, out_channels: int, hidden: Sequence[int] = (256, 128)) -> None:
        super().__init__()
        first, second = hidden
        self.layers = nn.Sequential(
            nn.ConvTranspose1d(in_dim, first, kernel_size=4, stride=2, padding=1),
            nn.GELU(),
            nn.ConvTranspose1d(first, second, kernel_size=4, stride=2, padding=1),
            nn.GELU(),
            nn.Conv1d(second, out_channels, kernel_size=3, padding=1),
        )

    def forward(self, x: torch.Tensor, length: int) -> torch.Tensor:
        """``x`` (B, D, T') frames -> reconstruction (B, C, length)."""
        return _resize(self.layers(x), int(length))


class PeakHead(nn.Module):
    """Per-frame R-peak logits, linearly upsampled to the input length: ``(B, D, T') -> (B, length)``.

    Example:
        >>> PeakHead(64)(torch.randn(2, 64, 155), length=2500).shape
        torch.Size([2, 2500])
    """

    def __init__(self, in_dim: int) -> None:
        super().__init__()
        self.proj = nn.Conv1d(in_dim, 1, kernel_size=1)

    def forward(self, x: torch.Tensor, length: int) -> torch.Tensor:
        """``x`` (B, D, T') frames -> peak-map logits (B, length)."""
        return _resize(self.proj(x), int(length)).squeeze(1)
