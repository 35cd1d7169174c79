"""Framework-free core: augmentations (torch/numpy/scipy/sklearn only)."""
