"""Physiological ECG features (neurokit2) for PhysioCLR; see :mod:`physioclr_ext.features.store`."""
