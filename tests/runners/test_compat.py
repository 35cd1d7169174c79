"""Environment checks and the pure parts of the upstream fixes (no fairseq-signals needed)."""

import pytest
import torch

from physioclr_ext.runners import compat

GOOD = {"hydra-core": "1.0.7", "omegaconf": "2.0.6", "numpy": "1.26.4", "transformers": "4.39.3"}


def test_supported_environment_has_no_problems():
    assert compat.find_problems((3, 10), dict(GOOD), fairseq_signals_error="") == []
    assert compat.find_problems((3, 9), {**GOOD, "transformers": None}, fairseq_signals_error="") == []


@pytest.mark.parametrize(
    "python, versions, what",
    [
        ((3, 11), GOOD, "Python"),
        ((3, 8), GOOD, "Python"),
        ((3, 10), {**GOOD, "numpy": "2.1.0"}, "numpy"),
        ((3, 10), {**GOOD, "hydra-core": "1.3.2"}, "hydra-core"),
        ((3, 10), {**GOOD, "omegaconf": "2.3.0"}, "omegaconf"),
        ((3, 10), {**GOOD, "omegaconf": None}, "omegaconf"),
        ((3, 10), {**GOOD, "transformers": "4.40.0"}, "transformers"),
    ],
)
def test_each_unsupported_version_is_named(python, versions, what):
    problems = compat.find_problems(python, dict(versions), fairseq_signals_error="")
    assert [p.what for p in problems] == [what]
    report = compat.environment_report(problems)
    assert what in report and "fairseq-signals" in report and "pip install" in report


def test_missing_fairseq_signals_is_a_problem():
    problems = compat.find_problems((3, 10), dict(GOOD), fairseq_signals_error="ModuleNotFoundError: x")
    assert [p.what for p in problems] == ["fairseq_signals"]


def test_version_tuple():
    assert compat._version_tuple("1.0.7") == (1, 0, 7)
    assert compat._version_tuple("2.13.0+cpu") == (2, 13, 0)
    assert compat._version_tuple("4.40.0.dev0") == (4, 40, 0)


def _grads(*values):
    params = []
    for v in values:
        p = torch.nn.Parameter(torch.zeros(len(v)))
        p.grad = torch.tensor(v, dtype=torch.float32)
        params.append(p)
    return params


def test_clip_grad_norm_matches_torch_on_cpu():
    params = _grads([3.0, 0.0], [0.0, 4.0])
    ref = _grads([3.0, 0.0], [0.0, 4.0])
    norm = compat.clip_grad_norm_(params, max_norm=1.0)
    ref_norm = torch.nn.utils.clip_grad_norm_(ref, max_norm=1.0)
    assert float(norm) == pytest.approx(5.0) == pytest.approx(float(ref_norm))
    for a, b in zip(params, ref):
        torch.testing.assert_close(a.grad, b.grad, rtol=1e-5, atol=1e-6)


def test_clip_grad_norm_zero_max_norm_only_measures():
    params = _grads([3.0, 4.0])
    assert float(compat.clip_grad_norm_(params, 0.0)) == pytest.approx(5.0)
    assert params[0].grad.tolist() == [3.0, 4.0]


def test_trusted_torch_load_keeps_pickled_objects(tmp_path):
    import argparse

    state = {"args": argparse.Namespace(lr=0.1), "w": torch.ones(2)}
    torch.save(state, tmp_path / "ckpt.pt")
    proxy = compat._TrustedTorchLoad(torch)
    loaded = proxy.load(tmp_path / "ckpt.pt", map_location="cpu")
    assert loaded["args"].lr == 0.1 and proxy.ones(1).item() == 1.0
