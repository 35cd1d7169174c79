"""Shared helpers for the augmentation tests: synthetic batches and seeded generators."""

from __future__ import annotations

import numpy as np
import torch


def gen(seed: int = 0, device: str = "cpu") -> torch.Generator:
    """A seeded generator on ``device``."""
    return torch.Generator(device=device).manual_seed(seed)


def batch(b: int = 4, c: int = 12, t: int = 2500, seed: int = 0) -> torch.Tensor:
    """ECG-like ``(B, C, T)`` float32 batch with no exact zeros and per-lead amplitudes."""
    rng = np.random.default_rng(seed)
    time = np.arange(t) / 500.0
    phase = rng.uniform(0, 2 * np.pi, size=(b, c, 1))
    amp = rng.uniform(0.2, 3.0, size=(b, c, 1))
    x = amp * np.sin(2 * np.pi * 1.2 * time + phase) + 0.1 * rng.standard_normal((b, c, t)) + 5.0
    return torch.from_numpy(x.astype(np.float32))


def ramp(b: int, c: int, t: int, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """``x[b, c, k] = k``: output values reveal which input position they came from."""
    return torch.arange(t, dtype=dtype).expand(b, c, t).clone()


def assert_close(actual: torch.Tensor, expected: torch.Tensor, atol: float) -> None:
    """Max-abs-difference check (``torch.testing.assert_close`` spends seconds importing on first use)."""
    assert actual.shape == expected.shape and actual.dtype == expected.dtype
    err = (actual - expected).abs().max().item() if actual.numel() else 0.0
    assert err <= atol, f"max abs difference {err} > {atol}"
