"""Two gloo workers on CPU reproduce the single-process loss and embedding gradients."""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Dict, List, Tuple

import pytest
import torch
import torch.distributed as dist
from torch import Tensor

from physioclr_ext.losses import clocs_loss, gather_no_grad, gather_with_grad, nt_xent_loss
from physioclr_ext.losses.distributed import get_world_size, local_rows, replicated_loss, sum_value_over_workers
from tests._gloo import close, run_gloo_workers

WORLD = 2
SPLIT = [3, 5]  # unequal local batches exercise the padded gather
PATIENTS = torch.tensor([0, 1, 2, 0, 3, 1, 4, 4])  # patients 0 and 1 span both ranks


def _data() -> Dict[str, Tensor]:
    gen = torch.Generator().manual_seed(0)
    n = sum(SPLIT)
    return {
        "z1": torch.randn(n, 6, generator=gen, dtype=torch.float64),
        "z2": torch.randn(n, 6, generator=gen, dtype=torch.float64),
        "views3": torch.randn(3, n, 6, generator=gen, dtype=torch.float64),
        "views2": torch.randn(2, n, 6, generator=gen, dtype=torch.float64),
    }


LossFn = Callable[..., Tuple[Tensor, Dict[str, float]]]


def _loss_and_grads(fn: LossFn, *tensors: Tensor, **kw: object) -> Tuple[Tensor, Dict[str, float], List[Tensor]]:
    leaves = [t.detach().clone().requires_grad_() for t in tensors]
    loss, logs = fn(*leaves, **kw)
    loss.backward()
    return loss.detach(), logs, [_grad(leaf) for leaf in leaves]


def _grad(t: Tensor) -> Tensor:
    assert t.grad is not None
    return t.grad


def _check(rank: int) -> None:
    data = _data()
    rows = slice(sum(SPLIT[:rank]), sum(SPLIT[: rank + 1]))

    ref = _loss_and_grads(nt_xent_loss, data["z1"], data["z2"], gather=False)
    got = _loss_and_grads(nt_xent_loss, data["z1"][rows], data["z2"][rows], gather=True)
    close(got[0], ref[0])
    for key in ref[1]:
        assert got[1][key] == pytest.approx(ref[1][key]), key
    close(got[2][0], ref[2][0][rows])
    close(got[2][1], ref[2][1][rows])

    for name in ("views2", "views3"):
        for symmetric in (False, True):
            kw = {"symmetric_patients": symmetric}
            ref = _loss_and_grads(clocs_loss, data[name], gather=False, patient_ids=PATIENTS, **kw)
            got = _loss_and_grads(clocs_loss, data[name][:, rows], gather=True, patient_ids=PATIENTS[rows], **kw)
            close(got[0], ref[0])
            assert got[1] == pytest.approx(ref[1])
            close(got[2][0], ref[2][0][:, rows])

    # Parameter gradients: the per-worker shares sum to the single-process gradient.
    torch.manual_seed(1)
    layer = torch.nn.Linear(6, 4).double()
    x1, x2 = data["z1"], data["z2"]
    nt_xent_loss(layer(x1), layer(x2), gather=False)[0].backward()
    expected = _grad(layer.weight).clone()
    layer.weight.grad = None
    nt_xent_loss(layer(x1[rows]), layer(x2[rows]), gather=True)[0].backward()
    dist.all_reduce(_grad(layer.weight))
    close(_grad(layer.weight), expected)

    assert gather_no_grad(PATIENTS[rows]).tolist() == PATIENTS.tolist()
    assert local_rows(SPLIT[rank], torch.device("cpu")).tolist() == list(range(8))[rows]


def test_two_gloo_workers_match_single_process(tmp_path: Path) -> None:
    run_gloo_workers(_check, WORLD, tmp_path)


def test_single_process_helpers_are_identities() -> None:
    x = torch.randn(4, 3, requires_grad=True)
    assert gather_with_grad(x) is x
    assert gather_no_grad(x) is x
    assert get_world_size() == 1
    assert local_rows(4, x.device).tolist() == [0, 1, 2, 3]
    assert sum_value_over_workers(x) is x
    assert replicated_loss(x) is x
