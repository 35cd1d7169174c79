"""Framework-free core: modules (torch/numpy/scipy/sklearn only)."""
