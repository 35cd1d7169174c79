"""VQ-VAE objective (van den Oord, Vinyals, Kavukcuoglu, NeurIPS 2017, arXiv 1711.00937, eq. 3).

``L = ||x - D(z_q)||^2 + ||sg(z) - e||^2 + beta ||z - sg(e)||^2``: reconstruction, codebook and
commitment terms. The quantiser computes the last two (the codebook term is 0 with EMA updates, which
replace it); this function adds the reconstruction error and returns the logged terms.
"""

from __future__ import annotations

from typing import Dict, Tuple

import torch.nn.functional as F
from torch import Tensor

__all__ = ["vqvae_loss"]


def vqvae_loss(
    recon: Tensor, target: Tensor, commitment_loss: Tensor, codebook_loss: Tensor
) -> Tuple[Tensor, Dict[str, float]]:
    """Mean squared reconstruction error plus the quantiser's terms.

    Args:
        recon, target: (B, C, T) reconstructed and original windows.
        commitment_loss: scalar ``beta * mean ||z - sg(e)||^2`` (from the quantiser, beta included).
        codebook_loss: scalar ``mean ||sg(z) - e||^2`` (0 with EMA codebook updates).

    Returns:
        the scalar loss and ``{"reconstruction", "commitment", "codebook"}`` as floats.

    Example:
        >>> import torch
        >>> loss, logs = vqvae_loss(torch.ones(1, 1, 4), torch.zeros(1, 1, 4), torch.tensor(0.5), torch.tensor(0.0))
        >>> float(loss), logs["reconstruction"]
        (1.5, 1.0)
    """
    if recon.shape != target.shape:
        raise ValueError(f"reconstruction {tuple(recon.shape)} and target {tuple(target.shape)} differ in shape")
    rec = F.mse_loss(recon, target)
    loss = rec + commitment_loss + codebook_loss
    logs = {
        "reconstruction": float(rec.detach()),
        "commitment": float(commitment_loss.detach()),
        "codebook": float(codebook_loss.detach()),
    }
    return loss, logs
