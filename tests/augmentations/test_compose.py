"""Compose.from_config, per-example probabilities and TwoViews."""

from __future__ import annotations

import inspect

import pytest
import torch

from physioclr_ext.augmentations import (
    AUGMENTATIONS,
    Compose,
    TwoViews,
    make_step,
    parameter_names,
    zero_mask,
)
from physioclr_ext.augmentations._common import uniform

from ._util import batch, gen

FULL_SPEC = [
    {"name": "random_resized_crop", "scale": [0.5, 1.0]},
    {"name": "time_warp", "p": 0.5, "n_segments": 4, "warp": 0.1},
    {"name": "permutation", "p": 0.3, "n_segments": 5},
    {"name": "time_out", "p": 0.5, "scale": [0.0, 0.2]},
    {"name": "zero_mask", "p": 0.5, "ratio": 0.1},
    {"name": "dropout_mask", "p": 0.5, "ratio": 0.05},
    {"name": "gaussian_noise", "factor": 0.05},
]


def test_p_zero_is_identity_and_returns_a_copy():
    x = batch(8, 12, 2500)
    out = Compose.from_config([{"name": name, "p": 0.0} for name in AUGMENTATIONS])(x, gen(0))
    assert torch.equal(out, x) and out.data_ptr() != x.data_ptr()
    empty = Compose.from_config(None)(x, gen(0))
    assert torch.equal(empty, x) and empty.data_ptr() != x.data_ptr()


@pytest.mark.parametrize("name", sorted(AUGMENTATIONS))
def test_p_one_equals_calling_the_function(name):
    x = batch(4, 12, 2500)
    out = Compose.from_config([{"name": name, "p": 1.0}])(x, gen(9))
    assert torch.equal(out, AUGMENTATIONS[name](x, gen(9)))
    assert not torch.equal(out[0], x[0]) and not torch.equal(out[-1], x[-1])


def test_partial_p_changes_only_the_chosen_rows():
    x = batch(64, 12, 1000)
    before = x.clone()
    out = Compose.from_config([{"name": "zero_mask", "p": 0.5, "ratio": 0.2}])(x, gen(5))
    changed = (out != x).flatten(1).any(-1)
    assert 10 < changed.sum() < 54
    # Same generator stream: first the row selection, then the augmentation of those rows.
    g = gen(5)
    rows = uniform((64,), g, x.device) < 0.5
    assert torch.equal(changed, rows)
    assert torch.equal(out[rows], zero_mask(x[rows], g, ratio=0.2))
    assert torch.equal(x, before)


def test_full_pipeline_is_reproducible_and_leaves_global_rng_alone():
    x = batch(8, 12, 1000)
    aug = Compose.from_config(FULL_SPEC)
    assert len(aug) == len(FULL_SPEC) and "time_warp" in repr(aug)
    state = torch.get_rng_state()
    g = gen(11)
    a, b = aug(x, g), aug(x, g)
    assert torch.equal(torch.get_rng_state(), state)
    assert torch.equal(a, aug(x, gen(11))) and not torch.equal(a, b)
    assert a.shape == x.shape


def test_from_config_does_not_mutate_the_spec():
    spec = [{"name": "zero_mask", "p": 0.5, "ratio": 0.2}]
    Compose.from_config(spec)
    assert spec == [{"name": "zero_mask", "p": 0.5, "ratio": 0.2}]


def test_unknown_name_lists_valid_names():
    with pytest.raises(ValueError, match="unknown augmentation 'jitter'") as err:
        Compose.from_config([{"name": "jitter"}])
    assert all(name in str(err.value) for name in AUGMENTATIONS)


def test_unknown_parameter_lists_valid_parameters():
    with pytest.raises(ValueError, match="unknown parameter.*'rate'.*'zero_mask'") as err:
        Compose.from_config([{"name": "zero_mask", "rate": 0.2}])
    assert "valid parameters: p, ratio" in str(err.value)


@pytest.mark.parametrize(
    "spec,match",
    [
        ([{"p": 0.5}], "no 'name'"),
        (["zero_mask"], "mapping"),
        ([{"name": "zero_mask", "p": 1.5}], r"\[0, 1\]"),
        ([{"name": "zero_mask", "p": "often"}], "number"),
    ],
)
def test_malformed_entries_raise(spec, match):
    with pytest.raises(ValueError, match=match):
        Compose.from_config(spec)


@pytest.mark.parametrize("name", sorted(AUGMENTATIONS))
def test_every_parameter_is_configurable_with_its_default(name):
    fn = AUGMENTATIONS[name]
    sig = inspect.signature(fn)
    params = {p: sig.parameters[p].default for p in parameter_names(fn)}
    assert params and all(v is not inspect.Parameter.empty for v in params.values())
    step = make_step(name, **params)
    x = batch(2, 12, 1000)
    assert torch.equal(step(x, gen(0)), fn(x, gen(0)))


def test_two_views_differ_and_keep_shape():
    x = batch(6, 12, 1000)
    before = x.clone()
    views = TwoViews(Compose.from_config(FULL_SPEC))
    v1, v2 = views(x, gen(0))
    assert v1.shape == x.shape and v2.shape == x.shape
    assert not torch.equal(v1, v2)
    assert all(not torch.equal(a, b) for a, b in zip(v1, v2))
    assert torch.equal(x, before)
    r1, r2 = views(x, gen(0))
    assert torch.equal(r1, v1) and torch.equal(r2, v2)
