"""Both VQ-VAE forms: shapes, a falling reconstruction loss on real ECG windows, codebook in use."""

import numpy as np
import pytest
import torch

from physioclr_ext.losses.vqvae import vqvae_loss
from physioclr_ext.modules.ecg_vqvae import ConvVQVAE, ECGVQVAEConfig, VQHead, crop_or_check


def test_head_form_shapes_and_embedding_standardisation():
    head = VQHead(32, ECGVQVAEConfig(in_channels=2, signal_len=100, latent_dim=16, decoder_hidden=24, codebook_size=8))
    out = head(torch.randn(6, 32) + 100.0)  # a large shared component is removed before the projection
    assert out["recon"].shape == (6, 2, 100) and out["indices"].shape == (6,)
    assert out["pre_quantization"].shape == (6, 16) and out["quantized"].shape == (6, 16)


def test_sequence_form_one_code_per_step_and_padding():
    cfg = ECGVQVAEConfig(form="sequence", in_channels=3, signal_len=250, latent_dim=8, conv_channels=8, n_down=3)
    m = ConvVQVAE(cfg)
    out = m(torch.randn(2, 3, 260))  # cropped to 250, padded to 256
    assert out["recon"].shape == (2, 3, 250) and out["indices"].shape == (2, 32)
    with pytest.raises(ValueError):
        crop_or_check(torch.randn(1, 3, 100), 250)


def _real_windows(n=48, length=512):
    """MIT-BIH record 100 (bundled sample), two leads, z-scored windows."""
    import wfdb

    from tests.integration._util import REPO

    rec = wfdb.rdrecord(str(REPO / "data/sample/mitdb/100"), sampto=n * length)
    x = rec.p_signal.T.astype(np.float32).reshape(2, n, length).transpose(1, 0, 2)
    x = (x - x.mean(-1, keepdims=True)) / (x.std(-1, keepdims=True) + 1e-6)
    return torch.from_numpy(np.ascontiguousarray(x))


def test_sequence_vqvae_loss_falls_on_real_ecg_and_codes_stay_in_use():
    torch.manual_seed(0)
    x = _real_windows()
    cfg = ECGVQVAEConfig(
        form="sequence",
        in_channels=2,
        signal_len=512,
        latent_dim=16,
        conv_channels=16,
        n_down=3,
        codebook_size=32,
        code_dim=8,
        usage_window=5,
        kmeans_init_batches=2,
    )
    m = ConvVQVAE(cfg)
    opt = torch.optim.Adam(m.parameters(), lr=3e-3)
    losses = []
    for step in range(40):
        batch = x[(step * 8) % 48 : (step * 8) % 48 + 8]
        out = m(batch)
        loss, logs = vqvae_loss(out["recon"], batch, out["commitment_loss"], out["codebook_loss"])
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(logs["reconstruction"])
    assert np.mean(losses[-5:]) < 0.85 * np.mean(losses[:5]), losses
    m.eval()
    with torch.no_grad():
        ppl = float(m(x)["perplexity"])
    assert ppl > 0.25 * 32, ppl


def test_head_trains_on_a_last_batch_of_one_window():
    """An epoch's last batch can hold one window: the standardiser then uses its running statistics."""
    cfg = ECGVQVAEConfig(in_channels=1, signal_len=50, latent_dim=8, decoder_hidden=16, codebook_size=4, code_dim=4)
    head = VQHead(12, cfg).train()
    head(torch.randn(6, 12))
    out = head(torch.randn(1, 12))
    assert out["recon"].shape == (1, 1, 50) and torch.isfinite(out["recon"]).all()
