"""Run a check in several gloo worker processes on CPU (data-parallel tests of the losses)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Callable

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch import Tensor


def close(actual: Tensor, expected: Tensor) -> None:
    # Not torch.testing.assert_close: under an initialised process group it imports DTensor (slow).
    assert actual.shape == expected.shape, (actual.shape, expected.shape)
    assert torch.allclose(actual, expected, rtol=1e-9, atol=1e-12), (actual, expected)


def _worker(rank: int, check: Callable[[int], None], world: int, init_file: str) -> None:
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
    try:
        check(rank)
    finally:
        dist.destroy_process_group()


def run_gloo_workers(check: Callable[[int], None], world: int, tmp_path: Path, timeout: float = 120) -> None:
    """``check(rank)`` in ``world`` processes joined in one gloo group; fails the test on an error or timeout.

    fork skips re-importing torch in each worker (seconds on a loaded machine); the workers use one
    thread, so the parent's OpenMP pool is never touched after the fork.
    """
    method = "fork" if "fork" in mp.get_all_start_methods() else "spawn"
    context = mp.start_processes(
        _worker, args=(check, world, str(tmp_path / "init")), nprocs=world, join=False, start_method=method
    )
    deadline = time.monotonic() + timeout
    while not context.join(timeout=5):
        if time.monotonic() > deadline:
            for process in context.processes:
                process.terminate()
            pytest.fail("distributed workers timed out")
