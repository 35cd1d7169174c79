"""Shared helpers: generator-driven random draws, span masks and linear resampling.

Every draw goes through an explicit :class:`torch.Generator`; the random
numbers are made on the generator's device and then moved to the data's
device, so a CPU generator also drives CUDA data (and the global RNG is never
touched).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch


def uniform(shape: tuple[int, ...], generator: torch.Generator, device: torch.device) -> torch.Tensor:
    """``U[0, 1)`` float32 samples of ``shape`` drawn from ``generator``, placed on ``device``."""
    return torch.rand(shape, generator=generator, device=generator.device).to(device)


def normal(shape: tuple[int, ...], generator: torch.Generator, device: torch.device) -> torch.Tensor:
    """Standard normal float32 samples of ``shape`` drawn from ``generator``, placed on ``device``."""
    return torch.randn(shape, generator=generator, device=generator.device).to(device)


def randint(high: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Integers uniform in ``[0, high]`` (inclusive), one per element of the int64 tensor ``high``."""
    u = uniform(tuple(high.shape), generator, high.device).double()
    # u < 1, so floor(u * (high + 1)) <= high; the clamp guards float rounding.
    return torch.minimum((u * (high + 1).double()).long(), high)


def random_permutations(
    shape: tuple[int, ...], m: int, generator: torch.Generator, device: torch.device
) -> torch.Tensor:
    """``shape + (m,)`` int64 tensor whose last axis holds independent random permutations of ``0..m-1``."""
    return uniform((*shape, m), generator, device).argsort(dim=-1)


def span_mask(start: torch.Tensor, length: torch.Tensor, t: int) -> torch.Tensor:
    """Boolean ``start.shape + (t,)`` mask, true on ``[start, start + length)`` of the last axis."""
    idx = torch.arange(t, device=start.device)
    return (idx >= start.unsqueeze(-1)) & (idx < (start + length).unsqueeze(-1))


def span_lengths(
    scale: Sequence[float], n: int, t: int, generator: torch.Generator, device: torch.device
) -> torch.Tensor:
    """``(n,)`` int64 span lengths ``round(s * t)`` with ``s ~ U[scale[0], scale[1]]``."""
    lo, hi = check_scale(scale)
    s = lo + (hi - lo) * uniform((n,), generator, device).double()
    return torch.round(s * t).long().clamp_(0, t)


def check_scale(scale: Sequence[float], name: str = "scale") -> tuple[float, float]:
    """Validate a ``(low, high)`` fraction range with ``0 <= low <= high <= 1``."""
    try:
        lo, hi = (float(v) for v in scale)
    except (TypeError, ValueError) as err:
        raise ValueError(f"{name} must be a pair (low, high), got {scale!r}") from err
    if not 0.0 <= lo <= hi <= 1.0:
        raise ValueError(f"{name} must satisfy 0 <= low <= high <= 1, got {scale!r}")
    return lo, hi


def check_ratio(ratio: float, name: str = "ratio") -> float:
    """Validate a fraction in ``[0, 1]``."""
    if not 0.0 <= float(ratio) <= 1.0:
        raise ValueError(f"{name} must be in [0, 1], got {ratio!r}")
    return float(ratio)


def check_signal(x: torch.Tensor) -> tuple[int, int, int]:
    """Return ``(B, C, T)`` of a floating-point batch, raising on anything else."""
    if x.dim() != 3:
        raise ValueError(f"expected a (B, C, T) tensor, got shape {tuple(x.shape)}")
    if not x.is_floating_point():
        raise TypeError(f"expected a floating-point tensor, got {x.dtype}")
    b, c, t = x.shape
    return b, c, t


def position_dtype(x: torch.Tensor) -> torch.dtype:
    """Dtype for fractional sample positions: float64 for float64 data, else float32."""
    return torch.float64 if x.dtype == torch.float64 else torch.float32


def sample_linear(x: torch.Tensor, pos: torch.Tensor) -> torch.Tensor:
    """Linearly interpolate ``x`` at fractional indices along time.

    Args:
        x: ``(B, C, T)`` signal.
        pos: ``(B, C, T_out)`` or ``(B, 1, T_out)`` positions in sample-index
            units, already clamped to ``[0, T - 1]``.

    Returns:
        ``(B, C, T_out)`` tensor of ``x``'s dtype.
    """
    pos = pos.expand(x.shape[0], x.shape[1], pos.shape[-1])
    i0 = pos.floor().long().clamp_(0, x.shape[-1] - 1)
    i1 = (i0 + 1).clamp_(max=x.shape[-1] - 1)
    w = (pos - i0.to(pos.dtype)).to(x.dtype)
    return torch.lerp(x.gather(-1, i0), x.gather(-1, i1), w)
