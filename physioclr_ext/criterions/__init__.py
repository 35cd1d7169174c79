"""fairseq-signals criterions of physioclr-ext (``@register_criterion``), one file per method.

Modules here import fairseq-signals; :func:`physioclr_ext.runners.registration.register_all`
imports them only where fairseq-signals is available.
"""
