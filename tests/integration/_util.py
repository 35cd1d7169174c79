"""Helpers for the integration tests: run commands and locate the console scripts."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def run(cmd, env=None, cwd=None, timeout=600):
    """Run a command; on failure show its output (tail) in the assertion."""
    full_env = {**os.environ, **(env or {})}
    bindir = os.path.dirname(sys.executable)
    full_env["PATH"] = bindir + os.pathsep + full_env.get("PATH", "")
    full_env.setdefault("PYTHON", sys.executable)
    proc = subprocess.run(cmd, cwd=cwd or REPO, env=full_env, capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, f"{cmd} failed ({proc.returncode}):\n{(proc.stdout + proc.stderr)[-6000:]}"
    return proc


def console_script(name: str) -> str:
    path = os.path.join(os.path.dirname(sys.executable), name)
    return path if os.path.exists(path) else (shutil.which(name) or name)


def assert_same(a, b, where="item"):
    """Equal nested dicts/lists/tensors: same keys, types, dtypes, shapes and bits."""
    import torch

    assert type(a) is type(b), where
    if isinstance(a, dict):
        assert a.keys() == b.keys(), where
        for key in a:
            assert_same(a[key], b[key], f"{where}[{key}]")
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b)):
            assert_same(x, y, f"{where}[{i}]")
    elif isinstance(a, torch.Tensor):
        assert a.dtype == b.dtype and a.shape == b.shape, where
        assert a.numpy().tobytes() == b.numpy().tobytes(), where
    else:
        assert a == b, where


def assert_same_datasets(mat_ds, packed_ds, batch=5):
    """Two datasets give the same items over two epochs, and the same collated batches of ``batch``;
    returns the last batch."""
    assert len(mat_ds) == len(packed_ds) > 0
    for epoch in (1, 2):
        mat_ds.set_epoch(epoch)
        packed_ds.set_epoch(epoch)
        items = [mat_ds[i] for i in range(len(mat_ds))]
        assert_same(items, [packed_ds[i] for i in range(len(packed_ds))])
        for start in range(0, len(items), batch):
            ids = range(start, min(start + batch, len(items)))
            mat_batch = mat_ds.collator([mat_ds[i] for i in ids])
            assert_same(mat_batch, packed_ds.collator([packed_ds[i] for i in ids]), "batch")
    return mat_batch
