"""Framework-free core: losses (torch/numpy/scipy/sklearn only)."""
