"""fairseq-signals models of physioclr-ext (``@register_model``), one file per method.

Modules here import fairseq-signals; :func:`physioclr_ext.runners.registration.register_all`
imports them only where fairseq-signals is available.
"""
