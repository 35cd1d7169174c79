"""Learning-rate schedules the papers use and fairseq-signals lacks.

:mod:`physioclr_ext.optim.schedules` holds the formulas (no framework import);
:mod:`physioclr_ext.optim.warmup_cosine` registers them with fairseq-signals.
"""
