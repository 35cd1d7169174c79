"""Label tables and rules: MIT-BIH beats -> AAMI classes, PhysioNet 2021 SNOMED
codes, LUDB rhythms.

Window label rule for beat-annotated records (documented contract):
    the beats of a window are the annotations whose sample index falls in the
    window's raw span ``[start, end)``; non-beat symbols are ignored. No beats
    -> no label (the window is dropped with reason ``no_beats`` when labels
    are used). All beats N -> class N. Otherwise the most frequent non-N class,
    ties broken by severity V > F > S > Q. Binary label: 1 ("arrhythmia") iff
    the window has any non-N beat, i.e. iff its AAMI class is not N.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

AAMI_CLASSES: tuple[str, ...] = ("N", "S", "V", "F", "Q")
BEAT_TO_AAMI: dict[str, str] = {
    **dict.fromkeys("NLRej", "N"),
    **dict.fromkeys("AaJS", "S"),
    **dict.fromkeys("VE", "V"),
    "F": "F",
    **dict.fromkeys("/fQ", "Q"),
}
_SEVERITY = {"V": 0, "F": 1, "S": 2, "Q": 3}

# The 26 classes scored in the PhysioNet/CinC 2021 challenge, in table order:
# (name, description, SNOMED codes). Codes listed together were scored as
# equivalent in the challenge and are merged into one class.
SNOMED_CLASSES: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("IAVB", "1st degree AV block", ("270492004",)),
    ("AF", "atrial fibrillation", ("164889003",)),
    ("AFL", "atrial flutter", ("164890007",)),
    ("Brady", "bradycardia", ("426627000",)),
    ("BBB", "bundle branch block", ("6374002",)),
    ("LBBB", "(complete) left bundle branch block", ("733534002", "164909002")),
    ("RBBB", "(complete) right bundle branch block", ("713427006", "59118001")),
    ("IRBBB", "incomplete right bundle branch block", ("713426002",)),
    ("LAnFB", "left anterior fascicular block", ("445118002",)),
    ("LAD", "left axis deviation", ("39732003",)),
    ("LQRSV", "low QRS voltages", ("251146004",)),
    ("NSIVCB", "nonspecific intraventricular conduction disorder", ("698252002",)),
    ("PR", "pacing rhythm", ("10370003",)),
    ("PAC", "premature atrial contraction", ("284470004", "63593006")),
    ("PVC", "premature ventricular contraction", ("427172004", "17338001")),
    ("LPR", "prolonged PR interval", ("164947007",)),
    ("LQT", "prolonged QT interval", ("111975006",)),
    ("QAb", "Q wave abnormal", ("164917005",)),
    ("RAD", "right axis deviation", ("47665007",)),
    ("SA", "sinus arrhythmia", ("427393009",)),
    ("SB", "sinus bradycardia", ("426177001",)),
    ("NSR", "sinus rhythm", ("426783006",)),
    ("STach", "sinus tachycardia", ("427084000",)),
    ("TAb", "T wave abnormal", ("164934002",)),
    ("TInv", "T wave inversion", ("59931005",)),
    ("PRWP", "poor R wave progression", ("365413008",)),
)
SNOMED_TO_NAME: dict[str, str] = {code: name for name, _, codes in SNOMED_CLASSES for code in codes}
SNOMED_NAMES: tuple[str, ...] = tuple(name for name, _, _ in SNOMED_CLASSES)

# LUDB rhythm statements, in the order used for the label vector; rhythms
# not listed here are appended alphabetically.
LUDB_RHYTHMS: tuple[str, ...] = (
    "Sinus rhythm",
    "Sinus bradycardia",
    "Sinus tachycardia",
    "Sinus arrhythmia",
    "Irregular sinus rhythm",
    "Atrial fibrillation",
    "Atrial flutter, typical",
    "Wandering atrial pacemaker",
    "Aberrant conduction",
)

LABEL_SCHEMES = ("auto", "binary", "aami", "multilabel", "multiclass", "none")


def beats_to_aami(symbols: Iterable[str]) -> list[str]:
    """AAMI classes of the beat symbols; non-beat symbols (``+ ~ | " x !`` ...) are dropped."""
    return [BEAT_TO_AAMI[s] for s in symbols if s in BEAT_TO_AAMI]


def window_aami_class(classes: Sequence[str]) -> str | None:
    """AAMI class of a window from the classes of its beats (rule in the module doc)."""
    if not classes:
        return None
    abnormal = Counter(c for c in classes if c != "N")
    if not abnormal:
        return "N"
    return min(abnormal, key=lambda c: (-abnormal[c], _SEVERITY[c]))


def window_beats(samples: np.ndarray, symbols: Sequence[str], lo: int, hi: int) -> list[str]:
    """AAMI classes of the beats annotated in the raw sample span ``[lo, hi)``.

    Args:
        samples: ``(B,)`` sorted annotation sample indices.
        symbols: ``B`` annotation symbols.
    """
    first, last = np.searchsorted(samples, [lo, hi], side="left")
    return beats_to_aami(symbols[first:last])


def map_snomed(codes: Iterable[str]) -> list[str]:
    """Scored class names of the SNOMED codes (unscored codes are ignored), table order."""
    names = {SNOMED_TO_NAME[c.strip()] for c in codes if c.strip() in SNOMED_TO_NAME}
    return [name for name in SNOMED_NAMES if name in names]


def clean_statement(text: str) -> str:
    """Normalise a free-text statement: strip whitespace and a trailing full stop."""
    return text.strip().rstrip(".").strip()


def order_label_names(found: Iterable[str], table: Sequence[str], use_table: bool) -> list[str]:
    """Label vector order: table entries (all of them, or those found), then others sorted."""
    found = set(found)
    head = [n for n in table if use_table or n in found]
    return head + sorted(found - set(table))


@dataclass(frozen=True)
class LabelSpace:
    """What goes into the ``.mat`` ``label`` field.

    Attributes:
        scheme: ``binary`` (1, 1) 0/1; ``aami`` (1, 1) class index 0..4 in
            N, S, V, F, Q order; ``multilabel`` (1, K) multi-hot;
            ``multiclass`` (1, 1) class index; ``none`` (1, 1) zero.
        names: the K label names (``label_def.csv`` order).
    """

    scheme: str
    names: tuple[str, ...]

    @property
    def uses_beats(self) -> bool:
        return self.scheme in ("binary", "aami")

    @property
    def width(self) -> int:
        return len(self.names) if self.scheme == "multilabel" else 1

    def encode_record(self, labels: Sequence[str]) -> list[float]:
        """``(K,)`` label vector of a record-level label set (multilabel/multiclass/none)."""
        if self.scheme == "multilabel":
            return [1.0 if name in labels else 0.0 for name in self.names]
        if self.scheme == "multiclass":
            return [float(self.names.index(labels[0]))]
        return [0.0]

    def encode_window(self, aami: str) -> list[float]:
        """``(1,)`` label vector of a beat-annotated window with AAMI class ``aami``."""
        if self.scheme == "aami":
            return [float(AAMI_CLASSES.index(aami))]
        return [0.0 if aami == "N" else 1.0]

    def positives(self, label: Sequence[float]) -> list[int]:
        """``(len(names),)`` 0/1 membership of one encoded label, for counting."""
        if self.scheme == "multilabel":
            return [int(v > 0) for v in label]
        if self.scheme in ("aami", "multiclass"):
            return [int(i == int(label[0])) for i in range(len(self.names))]
        if self.scheme == "binary":
            return [int(label[0] > 0)]
        return []
