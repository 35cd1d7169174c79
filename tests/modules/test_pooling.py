import torch

from physioclr_ext.modules.pooling import masked_mean


def test_masked_mean_ignores_padded_frames_and_equals_mean_without_padding():
    x = torch.randn(3, 7, 5, generator=torch.Generator().manual_seed(0))
    pad = torch.zeros(3, 7, dtype=torch.bool)
    pad[1, 4:] = True
    pad[2, 1:] = True
    out = masked_mean(x, pad)
    assert torch.allclose(out[0], x[0].mean(0)) and torch.allclose(out[1], x[1, :4].mean(0))
    assert torch.allclose(out[2], x[2, 0])
    assert torch.allclose(masked_mean(x), x.mean(1)) and torch.allclose(
        masked_mean(x, torch.zeros_like(pad)), x.mean(1)
    )
