"""EmbeddingStandardizer: BatchNorm1d without affine, a chosen eps, and a one-window training batch."""

from __future__ import annotations

import torch
from torch import nn

from physioclr_ext.modules.standardize import EmbeddingStandardizer


def test_equals_batchnorm_without_affine_on_batches_and_in_eval():
    torch.manual_seed(0)
    ours, ref = EmbeddingStandardizer(6, eps=1e-3), nn.BatchNorm1d(6, affine=False, eps=1e-3)
    for _ in range(3):
        x = torch.randn(8, 6) * 3 + 1
        torch.testing.assert_close(ours(x), ref(x))
    torch.testing.assert_close(ours.running_var, ref.running_var)
    ours.eval(), ref.eval()
    x = torch.randn(4, 6)
    torch.testing.assert_close(ours(x), ref(x))
    assert set(ours.state_dict()) == set(ref.state_dict())  # checkpoints of either load in the other


def test_a_tiny_eps_standardises_a_nearly_constant_embedding():
    x = 5.0 + 1e-4 * torch.randn(64, 3, generator=torch.Generator().manual_seed(1))
    assert EmbeddingStandardizer(3, eps=1e-10)(x).std(0, unbiased=False).min() > 0.99
    assert EmbeddingStandardizer(3)(x).std(0, unbiased=False).max() < 0.1  # BatchNorm's 1e-5 swamps var 1e-8


def test_one_window_in_training_uses_the_running_statistics_and_leaves_them():
    norm = EmbeddingStandardizer(2, eps=1e-10)
    norm(torch.tensor([[0.0, 10.0], [2.0, 30.0]]))  # running mean 0.1 * (1, 20), var 0.9 + 0.1 * (2, 200)
    mean, var = norm.running_mean.clone(), norm.running_var.clone()
    y = norm(torch.tensor([[1.0, 4.0]]))
    torch.testing.assert_close(y, (torch.tensor([[1.0, 4.0]]) - mean) / (var + 1e-10).sqrt())
    torch.testing.assert_close(norm.running_mean, mean)
    torch.testing.assert_close(norm.running_var, var)
