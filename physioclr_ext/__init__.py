"""physioclr-ext: self-supervised ECG learning methods as a fairseq-signals plugin.

Layers, with imports pointing one way (runners -> fairseq-signals layer -> core):

* core, framework-free (torch, numpy, scipy, sklearn, wfdb, neurokit2 only): ``modules``,
  ``losses``, ``augmentations``, ``features``, ``preprocess``, ``evaluation``;
* fairseq-signals layer (registered classes): ``models``, ``criterions``, ``tasks``, ``data``, ``optim``;
* ``runners``: everything that drives fairseq-signals from outside (launcher, compat fixes,
  registration, embedding extraction, reconstruction pictures, fine-tuning runs, checkpoints).

Importing the package or a core module never imports fairseq-signals. Registration happens
where fairseq-signals asks for it: the ``physioclr-hydra-*`` console scripts, an explicit
:func:`register`, and ``common.user_dir=<this folder>`` (fairseq-signals has been imported
before it imports a user dir, and the package registers itself only in that case).
"""

from __future__ import annotations

import sys
from typing import List

from physioclr_ext._version import __version__

__all__ = ["__version__", "fairseq_signals_available", "fairseq_signals_error", "register"]


def register() -> List[str]:
    """Register every model, criterion, task, dataset and LR scheduler with fairseq-signals and
    apply the guarded upstream fixes; returns the imported module names (``[]`` without fairseq-signals)."""
    from physioclr_ext.runners.registration import register_all

    return register_all()


def fairseq_signals_available() -> bool:
    """Whether fairseq-signals imports here (probed once, in a way that leaves it unimported on failure)."""
    from physioclr_ext.runners.registration import fairseq_signals_available as available

    return available()


def fairseq_signals_error() -> str:
    """Why fairseq-signals is unusable here (``""`` when it is usable)."""
    from physioclr_ext.runners.registration import fairseq_signals_error as error

    return error()


if "fairseq_signals" in sys.modules:  # imported by fairseq-signals itself (common.user_dir) or after it
    register()
