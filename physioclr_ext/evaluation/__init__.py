"""Framework-free core: evaluation (torch/numpy/scipy/sklearn only)."""
