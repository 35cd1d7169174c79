"""Lead naming, selection and ordering.

Every record is mapped onto the standard 12-lead order
``I, II, III, aVR, aVL, aVF, V1..V6`` (or a user-chosen subset of it).
Leads a record does not have are zero-filled and reported as missing.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

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
# Channel names recordings really carry for a standard lead (keys: lower case, no spaces, ``_`` or ``-``).
# Each is a deliberate approximation: a Holter lead is recorded from other electrode sites than the
# standard lead, so its amplitudes and morphology differ; pass --lead-map to decide otherwise.
_ALIASES = {
    # Modified limb leads of Holter recordings: MIT-BIH Arrhythmia Database "MLII", European ST-T "MLIII".
    "mli": "I",
    "mlii": "II",
    "mliii": "III",
    # "D" (derivation) limb leads: DI/DII/DIII in the CODE / CODE-15% dataset (Ribeiro et al., Nat Commun
    # 11:1760, 2020) and D1-D3 in Latin-European notation; the QT Database's European ST-T records say "D3".
    "di": "I",
    "dii": "II",
    "diii": "III",
    "d1": "I",
    "d2": "II",
    "d3": "III",
}
# Holter chest leads, matched by pattern: "mod.V1"/"MV1" (MIT-BIH "modified lead V1"), and the bipolar
# "CM<n>" (manubrium to the V<n> site: CM2, CM4, CM5 in the QT Database) and "CC5" (V5R to V5) leads.
# Their exploring electrode sits at V<n>, so they are taken as V<n>-like. Not matched: "ML<digit>" (the QT
# Database's European ST-T records use "ML5" beside "CM5" without saying which site it is) and electrode
# positions between two sites ("V2-V3", "V4-V5"): name them with --lead-map.
_CHEST_PATTERNS = (re.compile(r"^(?:mod\.?|modified|m)v([1-6])$"), re.compile(r"^cm([1-6])$"), re.compile(r"^cc(5)$"))
# Values of a --lead-map entry that drop the channel instead of naming a lead.
DROP_NAMES = ("-", "none", "drop")


def _name_key(name: str) -> str:
    key = re.sub(r"[\s_-]+", "", name.strip().lower())
    return key.removeprefix("lead")


def canonical_lead_name(name: str) -> str | None:
    """Map a raw channel name (any case, e.g. ``"MLII"``, ``"avr"``, ``"Lead V1"``, ``"D3"``, ``"CM5"``)
    to its canonical name, or ``None`` when it is not one of the 12 leads nor a known alias."""
    key = _name_key(name)
    found = _BY_LOWER.get(key) or _ALIASES.get(key)
    for pattern in _CHEST_PATTERNS:
        match = pattern.match(key)
        if match:
            return f"V{match.group(1)}"
    return found


@dataclass(frozen=True)
class LeadMapEntry:
    """One ``--lead-map`` entry: a channel (0-based ``index``, or a name ``pattern`` with ``*``/``?``
    wildcards, matched without case) and the standard lead it is (``None``: drop the channel)."""

    index: int | None
    pattern: str | None
    lead: str | None


def parse_lead_map(spec: str | Iterable[str] | None) -> tuple[LeadMapEntry, ...]:
    """Parse ``--lead-map`` entries ``FROM=TO`` (several per string separated by ``;``).

    ``FROM`` is a 0-based channel index or a channel name (``*``/``?`` wildcards allowed, e.g.
    ``"record *, signal 0"``); ``TO`` a lead name or alias, or ``-``/``none`` to drop the channel.

    Example:
        >>> [(e.index, e.pattern, e.lead) for e in parse_lead_map(["record *, signal 0=II", "1=v5;ECG2=-"])]
        [(None, 'record *, signal 0', 'II'), (1, None, 'V5'), (None, 'ECG2', None)]
    """
    if spec is None:
        return ()
    items = [spec] if isinstance(spec, str) else list(spec)
    entries = []
    for item in (part.strip() for text in items for part in str(text).split(";")):
        if not item:
            continue
        source, sep, target = item.rpartition("=")
        source, target = source.strip(), target.strip()
        if not sep or not source or not target:
            raise ValueError(f"lead map entry {item!r} is not FROM=TO (e.g. 0=II or 'CM5=V5')")
        lead = None if target.lower() in DROP_NAMES else canonical_lead_name(target)
        if lead is None and target.lower() not in DROP_NAMES:
            raise ValueError(
                f"lead map entry {item!r}: unknown lead {target!r}; expected one of "
                f"{', '.join(CANONICAL_LEADS)} or - to drop the channel"
            )
        index = int(source) if source.isdigit() else None
        entries.append(LeadMapEntry(index, None if index is not None else source, lead))
    return tuple(entries)


def resolve_lead_names(
    lead_names: Sequence[str], lead_map: Sequence[LeadMapEntry] = ()
) -> tuple[list[str | None], list[str]]:
    """The standard lead of each channel and how it was found.

    A name entry of ``lead_map`` wins over an index entry, which wins over the built-in names and aliases.

    Returns:
        ``(C,)`` canonical names (``None``: unrecognised or dropped) and ``(C,)`` sources, each one of
        ``"lead_map"``, ``"standard"``, ``"alias"``, ``"dropped"``, ``"unrecognised"``.
    """
    leads: list[str | None] = []
    how: list[str] = []
    for channel, raw in enumerate(lead_names):
        entry = _map_entry(str(raw), channel, lead_map)
        if entry is not None:
            leads.append(entry.lead)
            how.append("lead_map" if entry.lead is not None else "dropped")
            continue
        lead = canonical_lead_name(str(raw))
        leads.append(lead)
        how.append("unrecognised" if lead is None else "standard" if _name_key(str(raw)) in _BY_LOWER else "alias")
    return leads, how


def _map_entry(name: str, channel: int, lead_map: Sequence[LeadMapEntry]) -> LeadMapEntry | None:
    key = " ".join(name.split()).lower()
    for entry in lead_map:
        if entry.pattern is not None and fnmatch.fnmatchcase(key, " ".join(entry.pattern.split()).lower()):
            return entry
    return next((e for e in lead_map if e.index == channel), None)


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
    signal: np.ndarray, lead_names: Sequence[str], wanted: Sequence[str], lead_map: Sequence[LeadMapEntry] = ()
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Reorder a record's channels to ``wanted``.

    Args:
        signal: ``(C, T)`` raw channels.
        lead_names: the ``C`` channel names as stored in the record.
        wanted: ``L`` canonical lead names, in output order.
        lead_map: ``--lead-map`` entries (see :func:`resolve_lead_names`).

    Returns:
        ``(L, T)`` float64 array with zero rows for missing leads, an ``(L,)``
        boolean mask of present leads, and the list of missing lead names.
        When two channels map to the same lead, the first one wins.
    """
    if signal.ndim != 2 or signal.shape[0] != len(lead_names):
        raise ValueError(f"signal shape {signal.shape} does not match {len(lead_names)} lead names")
    source: dict[str, int] = {}
    for channel, canonical in enumerate(resolve_lead_names(lead_names, lead_map)[0]):
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
