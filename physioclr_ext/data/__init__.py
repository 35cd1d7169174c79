"""fairseq-signals datasets of physioclr-ext (fairseq-signals ``BaseDataset`` subclasses), one file per method.

Modules here import fairseq-signals; :func:`physioclr_ext.registration.register_all`
imports them only where fairseq-signals is available.
"""
