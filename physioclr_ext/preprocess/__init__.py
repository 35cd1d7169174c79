"""ECG preprocessing into fairseq-signals datasets.

Reads MIT-BIH, LUDB, PhysioNet/CinC 2021, generic WFDB and numpy layouts and
writes one ``.mat`` per fixed-length window plus manifests, CMSC pair
manifests, label files and a ``preprocess.json`` summary.

Output contract (``OUTPUT/mat/<record>_<i>.mat``, ``i`` = window position in the record):
    feats             float32 ``(L, T)``, leads in ``--leads`` order (default I..V6)
    curr_sample_rate  int (stored by MATLAB as ``(1, 1)``)
    label             float32 ``(1, K)``: multi-hot for ``multilabel``; ``(1, 1)`` 0/1
                      for ``binary``, class index for ``aami``/``multiclass``, 0 for ``none``
    idx               int ``(1, 1)``: index of the record among the planned records
                      (natural sort of record ids); row of ``y.npy``
    patient_id        int ``(1, 1)``: index of the patient (natural sort of patient ids)

Python API::

    from physioclr_ext.preprocess import PreprocessConfig, run
    summary = run(PreprocessConfig.from_preset("fairseq_signals", input="in", output="out"))

CLI: ``python -m physioclr_ext.preprocess --input DIR --output DIR [options]``; with ``--features``
its entry point then runs :mod:`physioclr_ext.features` (``features.pipeline.preprocess_and_extract``),
which this package never imports (``run`` only records the ``features_*`` options).
"""

from .config import PRESETS, PreprocessConfig
from .pipeline import PreprocessError, run
from .splits import SplitError

__all__ = ["PRESETS", "PreprocessConfig", "PreprocessError", "SplitError", "run"]
