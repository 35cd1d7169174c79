"""ECG MAE core: shapes, visible-only encoder, reconstruction contract, and a loss that falls on MIT-BIH."""

from __future__ import annotations

from pathlib import Path
from typing import List

import numpy as np
import pytest
import torch

from physioclr_ext.losses import masked_reconstruction_loss
from physioclr_ext.modules.ecg_mae import ECGMAE, ECGMAEConfig

MITDB = Path(__file__).parents[2] / "data/sample/mitdb"


def small_cfg(in_channels: int, patch_size: int = 50, **kwargs) -> ECGMAEConfig:
    sizes = dict(embed_dim=32, depth=2, heads=4, decoder_embed_dim=16, decoder_depth=1, decoder_heads=2)
    sizes.update(kwargs)
    return ECGMAEConfig(in_channels=in_channels, patch_size=patch_size, **sizes)


@pytest.mark.parametrize("c", [1, 12])
def test_shapes_single_and_multi_lead(c: int) -> None:
    model = ECGMAE(small_cfg(c))
    x = torch.randn(2, c, 520)  # 20 samples over 10 patches are cropped
    out = model(x, generator=torch.Generator().manual_seed(0))
    assert out["pred"].shape == (2, c * 10, 50) and out["target"].shape == (2, c * 10, 50)
    assert out["mask"].shape == (2, c * 10) and out["mask"].dtype == torch.bool
    assert (out["mask"].sum(1) == c * 10 - int(c * 10 * 0.25)).all()
    assert torch.equal(out["target"].reshape(2, c, 10, 50), x[..., :500].reshape(2, c, 10, 50))
    assert model.encode(x).shape == (2, c * 10, 32)
    assert model.embedding(x).shape == (2, 32)
    torch.testing.assert_close(model.embedding(x), model.encode(x).mean(1))


def test_encoder_sees_only_visible_tokens() -> None:
    model = ECGMAE(small_cfg(3, mask_ratio=0.6))
    seen: List[torch.Size] = []
    model.encoder.register_forward_hook(lambda module, args, output: seen.append(args[0].shape))
    out = model(torch.randn(4, 3, 500))
    n_keep = int(30 * 0.4)
    assert seen == [torch.Size([4, n_keep, 32])]
    assert (~out["mask"]).sum(1).tolist() == [n_keep] * 4
    model(torch.randn(4, 3, 500), mask_ratio=0.5)
    assert seen[-1] == torch.Size([4, 15, 32])


def test_visible_token_content_reaches_only_through_the_encoder() -> None:
    """Changing a masked patch of the input cannot change the prediction (it is never seen)."""
    model = ECGMAE(small_cfg(2)).eval()
    x = torch.randn(1, 2, 500)
    out = model(x, generator=torch.Generator().manual_seed(3))
    token = int(out["mask"][0].nonzero()[0])
    lead, k = divmod(token, 10)
    x2 = x.clone()
    x2[0, lead, k * 50 : (k + 1) * 50] += 5.0
    out2 = model(x2, generator=torch.Generator().manual_seed(3))
    torch.testing.assert_close(out["pred"], out2["pred"])
    assert not torch.equal(out["target"], out2["target"])


def test_bad_inputs_raise() -> None:
    model = ECGMAE(small_cfg(2, max_patches=8))
    with pytest.raises(ValueError, match="expected"):
        model(torch.randn(2, 3, 400))
    with pytest.raises(ValueError, match="max_patches"):
        model(torch.randn(2, 2, 500))
    with pytest.raises(ValueError, match="max_patches"):
        model(torch.randn(2, 2, 40))


@pytest.mark.parametrize("norm_target", [True, False])
def test_reconstruct_contract(norm_target: bool) -> None:
    model = ECGMAE(small_cfg(2)).eval()
    x = torch.randn(3, 2, 510)
    gen = torch.Generator().manual_seed(1)
    rec = model.reconstruct(x, generator=gen, norm_target=norm_target)
    for key in ("original", "masked", "reconstruction"):
        assert rec[key].shape == (3, 2, 500)
    assert torch.equal(rec["original"], x[..., :500])
    nan = rec["masked"].isnan().reshape(3, 2, 10, 50)
    assert torch.equal(nan.all(-1), rec["mask"]) and torch.equal(nan.any(-1), rec["mask"])
    visible = ~rec["mask"][..., None].expand(-1, -1, -1, 50).reshape(3, 2, 500)
    assert torch.equal(rec["masked"][visible], x[..., :500][visible])
    out = model(x, generator=torch.Generator().manual_seed(1))
    pred = out["pred"].reshape(3, 2, 10, 50)
    if norm_target:  # mapped back with each target patch's mean and std
        t = x[..., :500].reshape(3, 2, 10, 50)
        pred = pred * (t.var(-1, unbiased=False, keepdim=True) + 1e-6).sqrt() + t.mean(-1, keepdim=True)
    torch.testing.assert_close(rec["reconstruction"], pred.reshape(3, 2, 500))


def mitdb_windows(records=("100", "106", "119", "208"), per_record: int = 8) -> torch.Tensor:
    """10-s windows of both MIT-BIH leads at 360 Hz, z-scored per window and lead: ``(32, 2, 3600)``."""
    wfdb = pytest.importorskip("wfdb")
    windows = []
    for record in records:
        signal = wfdb.rdrecord(str(MITDB / record), sampto=per_record * 3600).p_signal  # (T, 2)
        windows.append(signal.T.reshape(2, per_record, 3600).transpose(1, 0, 2))
    x = np.concatenate(windows)
    x = (x - x.mean(-1, keepdims=True)) / (x.std(-1, keepdims=True) + 1e-6)
    return torch.from_numpy(x).float()


def test_masked_loss_falls_on_mitdb() -> None:
    torch.manual_seed(0)
    data = mitdb_windows()
    model = ECGMAE(small_cfg(2, patch_size=100, embed_dim=64, heads=4, decoder_embed_dim=32, mask_ratio=0.6))
    optimiser = torch.optim.AdamW(model.parameters(), lr=1e-3, betas=(0.9, 0.95), weight_decay=0.05)
    gen = torch.Generator().manual_seed(0)

    def held_out_loss() -> float:
        with torch.no_grad():
            out = model(data, generator=torch.Generator().manual_seed(123))
            return float(masked_reconstruction_loss(out["pred"], out["target"], out["mask"])[0])

    initial = held_out_loss()
    for _ in range(80):
        batch = data[torch.randperm(len(data), generator=gen)[:16]]
        out = model(batch, generator=gen)
        loss, _ = masked_reconstruction_loss(out["pred"], out["target"], out["mask"])
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    final = held_out_loss()
    assert np.isfinite(final) and final < 0.8 * initial, (initial, final)
