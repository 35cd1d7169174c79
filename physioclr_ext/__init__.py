"""physioclr-ext: self-supervised ECG learning methods as a fairseq-signals plugin.

``import physioclr_ext`` always works. Where fairseq-signals is importable, the same
import registers every model, criterion, task and dataset of the package and applies
the guarded upstream fixes of :mod:`physioclr_ext.compat`; elsewhere the
framework-free core (``modules``, ``losses``, ``augmentations``, ``features``,
``preprocess``, ``evaluation``) is usable on its own.
"""

from physioclr_ext.registration import fairseq_signals_available, fairseq_signals_error, register_all

__version__ = "0.1.0"
__all__ = ["__version__", "fairseq_signals_available", "fairseq_signals_error", "register_all"]

register_all()
