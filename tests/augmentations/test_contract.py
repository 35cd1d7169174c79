"""Properties every registered augmentation must have (shape, purity, RNG use, devices)."""

from __future__ import annotations

import pytest
import torch

from physioclr_ext.augmentations import AUGMENTATIONS

from ._util import assert_close, batch, gen

NAMES = sorted(AUGMENTATIONS)


def test_registry_has_exactly_the_documented_names():
    assert set(AUGMENTATIONS) == {
        "time_warp",
        "permutation",
        "zero_mask",
        "dropout_mask",
        "gaussian_noise",
        "random_resized_crop",
        "time_out",
    }


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("c", [1, 12])
@pytest.mark.parametrize("t", [2500, 5000])
def test_shape_dtype_kept_and_input_untouched(name, c, t):
    x = batch(3, c, t)
    before = x.clone()
    out = AUGMENTATIONS[name](x, gen(1))
    assert out.shape == x.shape and out.dtype == x.dtype and out.device == x.device
    assert out.data_ptr() != x.data_ptr()
    assert torch.equal(x, before)
    assert torch.isfinite(out).all()


@pytest.mark.parametrize("name", NAMES)
def test_same_seed_same_output_different_seed_different_output(name):
    x = batch(4, 12, 2500)
    fn = AUGMENTATIONS[name]
    assert torch.equal(fn(x, gen(7)), fn(x, gen(7)))
    assert not torch.equal(fn(x, gen(7)), fn(x, gen(8)))


@pytest.mark.parametrize("name", NAMES)
def test_successive_calls_differ_and_global_rng_untouched(name):
    # KU-AI4H/Contrastive-ECG re-seeds the global RNG per call, giving every batch the same masks.
    x = batch(4, 12, 2500)
    g = gen(3)
    state = torch.get_rng_state()
    first, second = AUGMENTATIONS[name](x, g), AUGMENTATIONS[name](x, g)
    assert torch.equal(torch.get_rng_state(), state)
    assert not torch.equal(first, second)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("dtype", [torch.float64, torch.bfloat16])
def test_other_dtypes_and_single_example_batches(name, dtype):
    x = batch(1, 2, 301).to(dtype)
    out = AUGMENTATIONS[name](x, gen(0))
    assert out.dtype == dtype and out.shape == x.shape


@pytest.mark.parametrize("name", NAMES)
def test_empty_batch(name):
    x = torch.zeros(0, 12, 500)
    assert AUGMENTATIONS[name](x, gen(0)).shape == x.shape


@pytest.mark.parametrize("name", NAMES)
def test_rejects_non_batched_input(name):
    with pytest.raises(ValueError, match=r"\(B, C, T\)"):
        AUGMENTATIONS[name](torch.zeros(12, 500), gen(0))


cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")


@cuda
@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("gen_device", ["cpu", "cuda"])
def test_cuda_input_with_cpu_or_cuda_generator(name, gen_device):
    x = batch(4, 12, 2500).cuda()
    state = torch.cuda.get_rng_state()
    out = AUGMENTATIONS[name](x, gen(5, gen_device))
    assert out.device == x.device and out.shape == x.shape
    assert torch.equal(torch.cuda.get_rng_state(), state)
    assert torch.equal(out, AUGMENTATIONS[name](x, gen(5, gen_device)))


@cuda
@pytest.mark.parametrize("name", NAMES)
def test_cuda_matches_cpu_with_cpu_generator(name):
    x = batch(4, 12, 2500)
    expected = AUGMENTATIONS[name](x, gen(5))
    got = AUGMENTATIONS[name](x.cuda(), gen(5)).cpu()
    assert_close(got, expected, atol=1e-4)
