"""Loading the original repositories' code from checkouts, for ``vs_originals.py`` and the tests against the originals.

Nothing here is vendored or fetched: a checkout is put on ``sys.path`` for one import and its modules are dropped
from ``sys.modules`` afterwards (ST-MEM and ECG_SSL_LFBT both have a top-level ``models``, KU-AI4H/Contrastive-ECG a
top-level ``models.py``). The original ECG-JEPA imports ``DropPath`` and ``trunc_normal_`` from
``timm.models.layers``; where the ``timm`` package does not import (it imports torchvision, whose PyPI build may not
load its operators against a CPU-only torch), :func:`timm_layers` loads those two from timm's own files
(``layers/drop.py``, ``layers/weight_init.py``) without running the package's ``__init__``.

Tests import this module by putting ``benchmarks/`` on ``sys.path``; ``vs_originals.py`` imports it as a sibling.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import os
import re
import subprocess
import sys
import types
from pathlib import Path
from typing import Iterator

__all__ = ["checkout_commit", "ensure_timm_layers", "original_code", "timm_layers"]

# top-level module names of the originals that could clash with each other or with a stale import
ORIGINAL_TOP_LEVEL = ("models", "ecg_jepa", "pos_encoding")


@contextlib.contextmanager
def original_code(checkout: str) -> Iterator[None]:
    """The checkout importable for the ``with`` block; its modules removed from ``sys.modules`` after, and the
    modules of the same names imported before restored."""
    before = dict(sys.modules)
    for name in [n for n in sys.modules if n.split(".")[0] in ORIGINAL_TOP_LEVEL]:
        del sys.modules[name]
    sys.path.insert(0, checkout)
    try:
        yield
    finally:
        sys.path.remove(checkout)
        root = os.path.realpath(checkout) + os.sep
        for name, module in list(sys.modules.items()):
            if os.path.realpath(getattr(module, "__file__", None) or "/").startswith(root):
                del sys.modules[name]  # the original's modules only (torch's lazy imports stay)
        sys.modules.update({n: m for n, m in before.items() if n not in sys.modules})


def checkout_commit(path: str) -> str:
    """``git -C path rev-parse HEAD``; without git metadata, a COMMIT / REVISION file or a 40-hex name in the path."""
    try:
        out = subprocess.run(["git", "-C", path, "rev-parse", "HEAD"], capture_output=True, text=True, check=False)
        if out.returncode == 0 and re.fullmatch(r"[0-9a-f]{40}", out.stdout.strip()):
            return out.stdout.strip()
    except OSError:
        pass
    for name in ("COMMIT", "REVISION", ".commit"):
        file = Path(path, name)
        if file.is_file():
            return file.read_text().strip().split()[0]
    found = re.search(r"[0-9a-f]{40}", os.path.realpath(path))
    return found.group(0) if found else "unknown (no .git)"


def _timm_modules() -> list[str]:
    return [n for n in sys.modules if n == "timm" or n.startswith("timm.")]


def ensure_timm_layers() -> str:
    """``timm.models.layers`` importable from now on; returns how (``"timm"`` or ``"timm's layer files (ROOT)"``).

    Raises:
        ImportError: timm is not installed at all (nothing on ``sys.path`` to load its files from).
    """
    try:
        importlib.import_module("timm.models.layers")
        return "timm"
    except ImportError as exc:
        spec = importlib.util.find_spec("timm")
        if spec is None or not spec.submodule_search_locations:
            raise ImportError(f"timm is not importable ({exc})") from exc
        for name in _timm_modules():
            del sys.modules[name]  # the half-imported package
    root = Path(list(spec.submodule_search_locations)[0])
    for name, path in (("timm", root), ("timm.layers", root / "layers"), ("timm.models", root / "models")):
        package = types.ModuleType(name)
        package.__path__ = [str(path)]  # a package whose __init__ is not run
        sys.modules[name] = package
    drop = importlib.import_module("timm.layers.drop")
    init = importlib.import_module("timm.layers.weight_init")
    layers = types.ModuleType("timm.models.layers")
    layers.DropPath, layers.trunc_normal_ = drop.DropPath, init.trunc_normal_  # type: ignore[attr-defined]
    sys.modules["timm.models.layers"] = layers
    return f"timm's layer files ({root})"


@contextlib.contextmanager
def timm_layers() -> Iterator[str]:
    """:func:`ensure_timm_layers` for the ``with`` block only: the ``timm`` modules it adds (timm's own, or the
    package objects around its layer files) are removed after, so later imports of ``timm`` start afresh."""
    before = {n: sys.modules[n] for n in _timm_modules()}
    try:
        yield ensure_timm_layers()
    finally:
        for name in _timm_modules():
            del sys.modules[name]
        sys.modules.update(before)
