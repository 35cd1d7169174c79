"""The record hook: a later stage's per-record work done inside the preprocessing worker.

``preprocess`` never imports the stages above it, so a stage that needs each record's filtered signal (the
feature stage) passes a hook into :func:`~.pipeline.run_with_hook` instead of reading every record again.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class RecordPass:
    """One processed record as a record hook sees it, in the worker, once its windows are written.

    Attributes:
        record: record id.
        key: the record's resume key (its marker's ``"key"``).
        output: the output folder.
        signal: ``(L, T)`` float64 at ``sample_rate``: lead-selected, NaN filled, band-passed, resampled, not
            normalised (what the windows were cut from; mV for PhysioNet data).
        leads: names of the ``L`` rows.
        sample_rate: Hz of ``signal``.
        windows: ``(path, start)`` of each kept window, in window order (the record's rows of ``windows.csv``).
        length: window length in samples (a padded short record's window runs past ``signal``).
    """

    record: str
    key: str
    output: str
    signal: np.ndarray
    leads: tuple[str, ...]
    sample_rate: int
    windows: tuple[tuple[str, int], ...]
    length: int


RecordHook = Callable[[RecordPass], None]
"""Called by the worker on every record it processes (not on those resume skips), with the record in memory:
a later stage's per-record work done in the same pass (the feature stage's cache). Must be picklable (a
top-level function or a ``functools.partial`` of one); an exception fails the record like any other."""
