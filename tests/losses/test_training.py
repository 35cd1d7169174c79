"""NT-Xent falls when a small CNN learns two views of real MIT-BIH windows."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn as nn

from physioclr_ext.augmentations import Compose, TwoViews
from physioclr_ext.losses import nt_xent_loss
from physioclr_ext.modules import CNNConfig, CNNEncoder, projection_head_simclr

wfdb = pytest.importorskip("wfdb")

MITDB = Path(__file__).parents[2] / "data/sample/mitdb"
RECORDS = ["100", "106", "119", "208"]
DECIMATE = 4  # 360 Hz -> 90 Hz keeps the test fast on CPU
FS = 360 // DECIMATE
WINDOW = 10 * FS


def mitdb_windows(per_record: int = 16) -> torch.Tensor:
    """Consecutive 10-s windows of lead 0 at 90 Hz, z-scored per window: (len(RECORDS) * per_record, 1, 900)."""
    windows = []
    for record in RECORDS:
        signal = wfdb.rdrecord(str(MITDB / record), channels=[0], sampto=per_record * WINDOW * DECIMATE).p_signal[:, 0]
        windows.append(signal.reshape(per_record, WINDOW, DECIMATE).mean(axis=2))
    x = np.concatenate(windows)
    x = (x - x.mean(axis=1, keepdims=True)) / (x.std(axis=1, keepdims=True) + 1e-6)
    return torch.from_numpy(x).float().unsqueeze(1)


def test_nt_xent_falls_on_mitdb_windows() -> None:
    torch.manual_seed(0)
    gen = torch.Generator().manual_seed(0)
    data = mitdb_windows()
    assert data.shape == (64, 1, WINDOW)
    cfg = CNNConfig(channels=(16, 16, 32, 32, 32), embed_dim=64, pooled_length=8)
    model = nn.Sequential(CNNEncoder(1, cfg), projection_head_simclr(64, 32))
    optimiser = torch.optim.Adam(model.parameters(), lr=1e-3)

    losses = []
    views = TwoViews(
        Compose.from_config(
            [
                {"name": "random_resized_crop", "scale": [0.8, 1.0]},
                {"name": "gaussian_noise", "factor": 0.1},
                {"name": "zero_mask", "p": 0.5, "ratio": 0.1},
            ]
        )
    )
    for _ in range(200):
        batch = data[torch.randperm(len(data), generator=gen)[:32]]
        v1, v2 = views(batch, gen)
        loss, logs = nt_xent_loss(model(v1), model(v2), temperature=0.1)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        losses.append(logs["nt_xent"])

    first, last = np.mean(losses[:10]), np.mean(losses[-10:])
    assert np.isfinite(losses).all()
    assert last < 0.8 * first, (first, last)
