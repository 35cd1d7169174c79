"""fairseq-signals datasets of physioclr-ext (fairseq-signals ``BaseDataset`` subclasses), one file per method.

Modules here import fairseq-signals; :func:`physioclr_ext.runners.registration.register_all`
imports them only where fairseq-signals is available.
"""

from typing import Any

_LAZY = {
    "PhysioCLRDataset": "physioclr_ext.data.physioclr_dataset",
    "PackedECGSSLDataset": "physioclr_ext.data.packed_dataset",
    "PackedECGSegmentPairDataset": "physioclr_ext.data.packed_dataset",
    "PackedPhysioCLRDataset": "physioclr_ext.data.packed_dataset",
}


def __getattr__(name: str) -> Any:
    """``physioclr_ext.data.PhysioCLRDataset`` imports its module (and fairseq-signals) on first use only,
    so that ``import physioclr_ext`` keeps working without fairseq-signals."""
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
