"""Framework-free losses (torch only): tensors in, ``(loss, logs)`` out.

* :func:`nt_xent_loss`: SimCLR NT-Xent (Chen et al., ICML 2020).
* :func:`clocs_loss`: CLOCS CMSC / CMLC / CMSMLC (Kiyasseh et al., ICML 2021).
* :func:`masked_reconstruction_loss`: MAE masked-patch MSE (He et al., CVPR 2022), for ECG MAE and ST-MEM.
* :func:`physioclr_loss` (with :class:`PhysioCLRLossConfig`) and its terms: PhysioCLR (Maghsoodi et al.,
  arXiv 2509.08116); the peak-aware reconstruction terms come from :mod:`.physioclr_reconstruction`.
* :mod:`.distributed`: gathers with gradient for data-parallel training.
"""

from physioclr_ext.losses.clocs import clocs_loss
from physioclr_ext.losses.distributed import gather_no_grad, gather_with_grad
from physioclr_ext.losses.masked_reconstruction import masked_reconstruction_loss, normalize_patches
from physioclr_ext.losses.nt_xent import nt_xent_loss
from physioclr_ext.losses.physioclr import (
    PhysioCLRLossConfig,
    feature_similarity_masks,
    physioclr_contrastive_loss,
    physioclr_loss,
)
from physioclr_ext.losses.physioclr_reconstruction import (
    peak_aware_reconstruction_loss,
    peak_map_loss,
    peak_weights,
    r_peak_map,
)

__all__ = [
    "PhysioCLRLossConfig",
    "clocs_loss",
    "feature_similarity_masks",
    "gather_no_grad",
    "gather_with_grad",
    "masked_reconstruction_loss",
    "normalize_patches",
    "nt_xent_loss",
    "peak_aware_reconstruction_loss",
    "peak_map_loss",
    "peak_weights",
    "physioclr_contrastive_loss",
    "physioclr_loss",
    "r_peak_map",
]
