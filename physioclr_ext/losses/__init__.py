"""Framework-free contrastive losses (torch only): tensors in, ``(loss, logs)`` out.

* :func:`nt_xent_loss`: SimCLR NT-Xent (Chen et al., ICML 2020).
* :func:`clocs_loss` and the view helpers: CLOCS CMSC / CMLC / CMSMLC (Kiyasseh et al., ICML 2021).
* :mod:`.distributed`: gathers with gradient for data-parallel training.
"""

from physioclr_ext.losses.clocs import clocs_loss, cmlc_views, cmsc_views, cmsmlc_views
from physioclr_ext.losses.distributed import gather_no_grad, gather_with_grad
from physioclr_ext.losses.nt_xent import nt_xent_loss

__all__ = [
    "clocs_loss",
    "cmlc_views",
    "cmsc_views",
    "cmsmlc_views",
    "gather_no_grad",
    "gather_with_grad",
    "nt_xent_loss",
]
