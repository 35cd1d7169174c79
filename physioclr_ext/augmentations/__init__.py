"""Batched ECG augmentations for contrastive pre-training (pure torch).

Every augmentation maps a ``(B, C, T)`` float batch to a new tensor of the
same shape, dtype and device, draws its randomness only from an explicit
``torch.Generator`` (never the global RNG) and works on CPU and CUDA.
:func:`heartbeat_shuffle_batch` (PhysioCLR) also needs each example's R-peaks, so it is
called directly and is not in the :data:`AUGMENTATIONS` registry used by ``Compose``.

Example:
    >>> import torch
    >>> from physioclr_ext.augmentations import Compose, TwoViews
    >>> views = TwoViews(Compose.from_config([{"name": "random_resized_crop", "scale": [0.5, 1.0]},
    ...                                       {"name": "gaussian_noise", "p": 0.5, "factor": 0.05}]))
    >>> v1, v2 = views(torch.randn(8, 12, 2500), torch.Generator().manual_seed(0))
"""

from physioclr_ext.augmentations.clocs_views import cmlc_views, cmsc_views, cmsmlc_views
from physioclr_ext.augmentations.compose import (
    AUGMENTATIONS,
    Augmentation,
    AugmentationStep,
    Compose,
    TwoViews,
    make_step,
    parameter_names,
)
from physioclr_ext.augmentations.crop import random_resized_crop
from physioclr_ext.augmentations.heartbeat_shuffle import heartbeat_shuffle, heartbeat_shuffle_batch
from physioclr_ext.augmentations.masking import dropout_mask, time_out, zero_mask
from physioclr_ext.augmentations.noise import gaussian_noise
from physioclr_ext.augmentations.temporal import permutation, time_warp

__all__ = [
    "AUGMENTATIONS",
    "Augmentation",
    "AugmentationStep",
    "Compose",
    "TwoViews",
    "cmlc_views",
    "cmsc_views",
    "cmsmlc_views",
    "dropout_mask",
    "gaussian_noise",
    "heartbeat_shuffle",
    "heartbeat_shuffle_batch",
    "make_step",
    "parameter_names",
    "permutation",
    "random_resized_crop",
    "time_out",
    "time_warp",
    "zero_mask",
]
