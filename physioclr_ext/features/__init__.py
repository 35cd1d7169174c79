"""Framework-free core: features (torch/numpy/scipy/sklearn only)."""
