"""Register the package's fairseq-signals components (models, criterions, tasks, datasets, LR schedulers).

Registration is import: each module under ``physioclr_ext/{models,criterions,tasks,data,optim}``
decorates its classes with fairseq-signals' ``@register_*``. fairseq-signals'
``import_user_module`` imports a plugin's ``models/`` and ``tasks/`` folders only, so
this module imports all four folders itself.
"""

from __future__ import annotations

import importlib
import pkgutil
from typing import List, Optional

LAYERS = ("models", "criterions", "tasks", "data", "optim")
"""Sub-packages that hold registered fairseq-signals classes."""

_error: Optional[str] = None
_registered: Optional[List[str]] = None


def fairseq_signals_available() -> bool:
    """Whether ``fairseq_signals`` imports here (probed once)."""
    global _error
    if _error is None:
        from physioclr_ext.runners.compat import probe_fairseq_signals

        _error = probe_fairseq_signals()
    return _error == ""


def fairseq_signals_error() -> str:
    """Why fairseq-signals is unusable (``""`` when it is usable)."""
    fairseq_signals_available()
    return _error or ""


def layer_modules(layer: str) -> List[str]:
    """Dotted names of the modules in one layer, e.g. ``physioclr_ext.models.ecg_mae``."""
    package = importlib.import_module(f"physioclr_ext.{layer}")
    return sorted(
        f"physioclr_ext.{layer}.{info.name}"
        for info in pkgutil.iter_modules(package.__path__)
        if not info.name.startswith("_")
    )


def is_registered() -> bool:
    """Whether :func:`register_all` has imported the layers (with fairseq-signals)."""
    return _registered is not None


def register_all() -> List[str]:
    """Import every registered-component module and apply the upstream fixes.

    Returns the imported module names; empty (and a no-op) without fairseq-signals.
    """
    global _registered
    if _registered is not None:
        return _registered
    if not fairseq_signals_available():
        return []
    from physioclr_ext.runners.compat import apply_patches

    apply_patches()
    names: List[str] = []
    for layer in LAYERS:
        for name in layer_modules(layer):
            importlib.import_module(name)
            names.append(name)
    _registered = names
    return names
