"""Lead naming, selection and ordering.

Every record is mapped onto the standard 12-lead order
``I, II, III, aVR, aVL, aVF, V1..V6`` (or a user-chosen subset of it).
Leads a record does not have are zero-filled and reported as missing.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

import numpy as np

CANONICAL_LEADS: tuple[str, ...] = (
    "I",
    "II",
    "III",
    "aVR",
    "aVL",
    "aVF",
    "V1",
    "V2",
    "V3",
    "V4",
    "V5",
    "V6",
)
_BY_LOWER = {name.lower(): name for name in CANONICAL_LEADS}
# Modified limb leads of Holter recordings (MIT-BIH "MLII") are treated as
# the corresponding standard limb lead.
_ALIASES = {"mli": "I", "mlii": "II", "mliii": "III"}


def canonical_lead_name(name: str) -> str | None:
    """Map a raw channel name (any case, e.g. ``"MLII"``, ``"avr"``, ``"Lead V1"``)
    to its canonical name, or ``None`` when it is not one of the 12 leads."""
    key = re.sub(r"[\s_-]+", "", name.strip().lower())
    key = key.removeprefix("lead")
    return _BY_LOWER.get(key) or _ALIASES.get(key)


def parse_lead_list(spec: str | Iterable[str] | None) -> tuple[str, ...]:
    """Parse ``--leads`` (``"II"``, ``"I,II,V1"``, ``"all"`` or a list) into canonical names.

    The given order is kept; ``None``/``"all"`` means the 12 leads in standard order.
    """
    if spec is None:
        return CANONICAL_LEADS
    items = re.split(r"[,\s]+", spec.strip()) if isinstance(spec, str) else list(spec)
    items = [item for item in items if item]
    if not items or (len(items) == 1 and items[0].lower() == "all"):
        return CANONICAL_LEADS
    names = []
    for item in items:
        canonical = canonical_lead_name(item)
        if canonical is None:
            raise ValueError(f"unknown lead {item!r}; expected one of {', '.join(CANONICAL_LEADS)}")
        if canonical in names:
            raise ValueError(f"lead {canonical} listed twice")
        names.append(canonical)
    return tuple(names)


def select_leads(
    signal: np.ndarray, lead_names: Sequence[str], wanted: Sequence[str]
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Reorder a record's channels to ``wanted``.

    Args:
        signal: ``(C, T)`` raw channels.
        lead_names: the ``C`` channel names as stored in the record.
        wanted: ``L`` canonical lead names, in output order.

    Returns:
        ``(L, T)`` float64 array with zero rows for missing leads, an ``(L,)``
        boolean mask of present leads, and the list of missing lead names.
        When two channels map to the same lead, the first one wins.
    """
    if signal.ndim != 2 or signal.shape[0] != len(lead_names):
        raise ValueError(f"signal shape {signal.shape} does not match {len(lead_names)} lead names")
    source: dict[str, int] = {}
    for channel, raw_name in enumerate(lead_names):
        canonical = canonical_lead_name(str(raw_name))
        if canonical is not None and canonical not in source:
            source[canonical] = channel
    out = np.zeros((len(wanted), signal.shape[1]), dtype=np.float64)
    present = np.zeros(len(wanted), dtype=bool)
    for row, lead in enumerate(wanted):
        if lead in source:
            out[row] = signal[source[lead]]
            present[row] = True
    missing = [lead for lead, ok in zip(wanted, present) if not ok]
    return out, present, missing
