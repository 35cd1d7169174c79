"""Vector quantiser of VQ-VAE (van den Oord, Vinyals, Kavukcuoglu, NeurIPS 2017, arXiv 1711.00937) with
the known cures for codebook collapse, each an option.

A latent ``z`` (..., D) is replaced by its nearest code ``e_k`` of a codebook of ``K`` codes; the
straight-through estimator passes the decoder's gradient to ``z`` unchanged, and the commitment cost
``beta * ||z - sg(e_k)||^2`` keeps ``z`` close to its code. Cures (all on by default: together they keep
the codebook in use on ECG, where the plain quantiser of the SMILES-2025 study collapsed):

* ``ema``: codes are exponential moving averages of the latents assigned to them (Razavi et al. 2019,
  "VQ-VAE-2", appendix of van den Oord 2017), ``decay`` 0.99, with Laplace smoothing of the counts;
  without it the codes are learnt by the codebook loss ``||sg(z) - e_k||^2``.
* ``kmeans_init``: the codebook is k-means of the latents of the first training batches
  (Dhariwal et al. 2020, Jukebox), so no code starts far from the data.
* ``reseed_dead``: a code used fewer than ``dead_threshold`` times over the last ``usage_window``
  training steps is dead and re-seeded from recent encoder outputs (Jukebox's restarts).
* ``l2_normalize``: latents and codes on the unit sphere, nearest = highest cosine (Yu et al. 2022,
  ViT-VQGAN), so a few codes of large norm cannot absorb every latent.
* ``code_dim``: factorised codes, the lookup in a low-dimensional space (ViT-VQGAN's 32-d) through
  ``Linear(D, code_dim)`` and back through ``Linear(code_dim, D)``.

Randomness (k-means seeding, re-seeding) comes from a ``torch.Generator`` seeded with ``seed``.
With ``torch.distributed`` initialised, EMA statistics are summed over workers and the codebook is
broadcast from rank 0 after k-means and re-seeding, so every worker keeps the same codebook.
"""

from dataclasses import dataclass, field
from typing import Dict, Optional, Tuple

import torch
import torch.distributed as dist
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

__all__ = ["VectorQuantizer", "VectorQuantizerConfig", "kmeans", "perplexity"]


@dataclass
class VectorQuantizerConfig:
    """Options of :class:`VectorQuantizer` (no ``from __future__ import annotations`` here: these are
    also fields of fairseq-signals model configs, so every type must be one omegaconf accepts)."""

    codebook_size: int = field(default=64, metadata={"help": "number of codes K"})
    code_dim: int = field(
        default=32, metadata={"help": "lookup dimension of factorised codes; 0: look up in the latent dimension"}
    )
    beta: float = field(default=0.25, metadata={"help": "commitment cost beta (van den Oord 2017: 0.25)"})
    ema: bool = field(default=True, metadata={"help": "EMA codebook updates instead of the codebook loss"})
    decay: float = field(default=0.99, metadata={"help": "EMA decay"})
    eps: float = field(default=1e-5, metadata={"help": "Laplace smoothing of the EMA code counts"})
    kmeans_init: bool = field(default=True, metadata={"help": "k-means of the first batches' latents as codebook"})
    kmeans_init_batches: int = field(
        default=8, metadata={"help": "batches gathered for k-means (stops earlier once K latents are gathered)"}
    )
    kmeans_iters: int = field(default=10, metadata={"help": "Lloyd iterations of the k-means initialisation"})
    usage_window: int = field(
        default=50, metadata={"help": "training steps over which code use is counted (dead codes, re-seeding)"}
    )
    reseed_dead: bool = field(default=True, metadata={"help": "re-seed dead codes from recent encoder outputs"})
    dead_threshold: float = field(
        default=1.0, metadata={"help": "a code used fewer times than this over the window is dead"}
    )
    reseed_pool: int = field(default=2048, metadata={"help": "recent encoder outputs kept to re-seed dead codes"})
    l2_normalize: bool = field(default=True, metadata={"help": "cosine lookup: latents and codes l2-normalised"})
    seed: int = field(default=0, metadata={"help": "seed of the quantiser's generator (k-means, re-seeding)"})


def perplexity(counts: Tensor) -> Tensor:
    """``exp`` of the entropy of the code frequencies: K when K codes are used equally, 1 for one code.

    Args:
        counts: (K,) uses of each code.

    Example:
        >>> round(float(perplexity(torch.ones(8))), 4), float(perplexity(torch.tensor([5.0, 0.0, 0.0])))
        (8.0, 1.0)
    """
    p = counts.double() / counts.double().sum().clamp_min(1e-12)
    return torch.exp(-(p * torch.log(p.clamp_min(1e-12))).sum()).float()


def _sq_distances(x: Tensor, codes: Tensor) -> Tensor:
    """Squared Euclidean distances (N, K) between rows of ``x`` (N, D) and ``codes`` (K, D)."""
    return (x.pow(2).sum(1, keepdim=True) - 2 * x @ codes.t() + codes.pow(2).sum(1)[None, :]).clamp_min(0)


def kmeans(x: Tensor, k: int, iters: int, generator: torch.Generator, normalize: bool = False) -> Tensor:
    """Lloyd's k-means of ``x`` (N, D) into ``k`` centres (k, D), seeded by ``k`` rows drawn at random
    (with replacement when N < k; an empty cluster keeps its centre). ``normalize``: spherical k-means.

    Example:
        >>> g = torch.Generator().manual_seed(0)
        >>> kmeans(torch.randn(100, 2), 4, 5, g).shape
        torch.Size([4, 2])
    """
    n = x.shape[0]
    pick = torch.randperm(n, generator=generator)[:k] if n >= k else torch.randint(n, (k,), generator=generator)
    centres = x[pick.to(x.device)].clone()
    for _ in range(iters):
        assign = _sq_distances(x, centres).argmin(1)
        sums = torch.zeros_like(centres).index_add_(0, assign, x)
        counts = torch.bincount(assign, minlength=k).to(x.dtype)
        filled = counts > 0
        centres[filled] = sums[filled] / counts[filled, None]
        if normalize:
            centres = F.normalize(centres, dim=1)
    return centres


def _distributed() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


class VectorQuantizer(nn.Module):
    """Nearest-code quantisation with straight-through gradients: ``z (..., D) -> z_q (..., D)``.

    ``forward`` returns a dict:

    * ``quantized`` (..., D): ``z + sg(z_q - z)`` in training (straight-through), ``z_q`` otherwise;
    * ``indices`` (...,): the code of each latent; ``codes`` (..., code_dim): the chosen codes;
    * ``latent`` (..., code_dim): the latents in lookup space (after the projection and normalisation);
    * ``commitment_loss`` (scalar, already times ``beta``) and ``codebook_loss`` (scalar, 0 with EMA);
    * ``perplexity`` and ``codes_used`` of this batch, ``dead_codes`` over the usage window.

    Args:
        in_dim: latent dimension D.
        cfg: :class:`VectorQuantizerConfig`.

    Example:
        >>> vq = VectorQuantizer(16, VectorQuantizerConfig(codebook_size=8, code_dim=4))
        >>> out = vq(torch.randn(32, 16))
        >>> out["quantized"].shape, out["indices"].shape
        (torch.Size([32, 16]), torch.Size([32]))
    """

    codebook: Tensor
    ema_count: Tensor
    ema_sum: Tensor
    initialized: Tensor
    usage: Tensor
    born: Tensor
    step: Tensor
    pool: Tensor
    pool_size: Tensor
    pool_ptr: Tensor
    init_batches: Tensor

    def __init__(self, in_dim: int, cfg: Optional[VectorQuantizerConfig] = None) -> None:
        super().__init__()
        cfg = cfg or VectorQuantizerConfig()
        self.cfg = cfg
        k = cfg.codebook_size
        self.code_dim = cfg.code_dim if cfg.code_dim > 0 else in_dim
        factorised = cfg.code_dim > 0 and cfg.code_dim != in_dim
        self.in_proj: nn.Module = nn.Linear(in_dim, self.code_dim) if factorised else nn.Identity()
        self.out_proj: nn.Module = nn.Linear(self.code_dim, in_dim) if factorised else nn.Identity()
        self.generator = torch.Generator().manual_seed(cfg.seed)
        # van den Oord's uniform(-1/K, 1/K) start, or random unit vectors for the cosine lookup
        init = torch.rand(k, self.code_dim, generator=self.generator) * (2.0 / k) - 1.0 / k
        if cfg.l2_normalize:
            init = F.normalize(torch.randn(k, self.code_dim, generator=self.generator), dim=1)
        if cfg.ema:
            self.register_buffer("codebook", init)
            self.register_buffer("ema_count", torch.ones(k))
            self.register_buffer("ema_sum", init.clone())
        else:
            self.codebook = nn.Parameter(init)
        self.register_buffer("initialized", torch.tensor(not cfg.kmeans_init))
        window = max(cfg.usage_window, 1)
        self.register_buffer("usage", torch.zeros(window, k))
        self.register_buffer("born", torch.zeros(k, dtype=torch.long))
        self.register_buffer("step", torch.zeros((), dtype=torch.long))
        self.register_buffer("pool", torch.zeros(max(cfg.reseed_pool, k), self.code_dim))
        self.register_buffer("pool_size", torch.zeros((), dtype=torch.long))
        self.register_buffer("pool_ptr", torch.zeros((), dtype=torch.long))
        self.register_buffer("init_batches", torch.zeros((), dtype=torch.long))

    # -- lookup ---------------------------------------------------------------------------------------

    def project(self, z: Tensor) -> Tensor:
        """Latents (..., D) -> lookup space (..., code_dim), l2-normalised with ``l2_normalize``."""
        x = self.in_proj(z)
        return F.normalize(x, dim=-1) if self.cfg.l2_normalize else x

    def lookup(self, x: Tensor) -> Tensor:
        """Index (N,) of the nearest code of each lookup-space row of ``x`` (N, code_dim)."""
        return _sq_distances(x.detach().float(), self.codebook.detach().float()).argmin(1)

    def quantize(self, z: Tensor) -> Tuple[Tensor, Tensor]:
        """``z`` (..., D) -> quantised ``z`` (..., D) (straight-through gradient) and code indices (...),
        leaving the codebook and its statistics untouched (for downstream use of a trained quantiser)."""
        x = self.project(z)
        idx = self.lookup(x.reshape(-1, self.code_dim)).reshape(x.shape[:-1])
        codes = self.codebook[idx]
        return self.out_proj(x + (codes - x).detach()), idx

    def forward(self, z: Tensor) -> Dict[str, Tensor]:
        lead = z.shape[:-1]
        x = self.project(z).reshape(-1, self.code_dim)
        if self.training:
            self._push(x.detach())
            if not bool(self.initialized):
                self._kmeans_init(x.detach())
        idx = self.lookup(x)
        codes = self.codebook[idx]
        if self.training and self.cfg.ema:
            self._ema_update(x.detach(), idx)
            codes = self.codebook[idx]
        commitment = self.cfg.beta * F.mse_loss(x, codes.detach())
        codebook_loss = F.mse_loss(codes, x.detach()) if not self.cfg.ema else x.new_zeros(())
        x_q = x + (codes - x).detach() if self.training else codes
        counts = torch.bincount(idx, minlength=self.cfg.codebook_size).float()
        dead = self.dead_mask()
        if self.training:
            dead = self._track(counts)
        return {
            "quantized": self.out_proj(x_q).reshape(*lead, -1),
            "indices": idx.reshape(lead),
            "codes": codes.reshape(*lead, self.code_dim),
            "latent": x.reshape(*lead, self.code_dim),
            "commitment_loss": commitment,
            "codebook_loss": codebook_loss,
            "perplexity": perplexity(counts),
            "codes_used": (counts > 0).sum(),
            "dead_codes": dead.sum(),
        }

    # -- training-time codebook maintenance ---------------------------------------------------------

    def _kmeans_init(self, x: Tensor) -> None:
        """Count a batch gathered in the pool; once ``kmeans_init_batches`` batches or K latents are in, k-means."""
        self.init_batches += 1
        k = self.cfg.codebook_size
        if int(self.pool_size) < k and int(self.init_batches) < self.cfg.kmeans_init_batches:
            return
        centres = kmeans(
            self.pool[: int(self.pool_size)].float(), k, self.cfg.kmeans_iters, self.generator, self.cfg.l2_normalize
        )
        self._set_codes(torch.arange(k, device=x.device), centres)
        self.initialized.fill_(True)

    def _ema_update(self, x: Tensor, idx: Tensor) -> None:
        """``N_k <- g N_k + (1 - g) n_k``, ``m_k <- g m_k + (1 - g) sum_{z -> k} z``, ``e_k = m_k / N~_k`` with
        Laplace-smoothed ``N~_k = (N_k + eps) / (n + K eps) * n``, ``n = sum_k N_k``."""
        g, k = self.cfg.decay, self.cfg.codebook_size
        onehot = F.one_hot(idx, k).to(x.dtype)
        counts, sums = onehot.sum(0), onehot.t() @ x
        if _distributed():
            dist.all_reduce(counts)
            dist.all_reduce(sums)
        self.ema_count.mul_(g).add_(counts, alpha=1 - g)
        self.ema_sum.mul_(g).add_(sums, alpha=1 - g)
        n = self.ema_count.sum()
        smoothed = (self.ema_count + self.cfg.eps) / (n + k * self.cfg.eps) * n
        codes = self.ema_sum / smoothed[:, None]
        self.codebook.copy_(F.normalize(codes, dim=1) if self.cfg.l2_normalize else codes)

    def _push(self, x: Tensor) -> None:
        """Append rows of ``x`` (N, code_dim) to the ring buffer of recent latents."""
        cap = self.pool.shape[0]
        x = x[-cap:].to(self.pool.dtype)
        pos = (torch.arange(len(x), device=x.device) + int(self.pool_ptr)) % cap
        self.pool[pos] = x
        self.pool_ptr.fill_((int(self.pool_ptr) + len(x)) % cap)
        self.pool_size.fill_(min(int(self.pool_size) + len(x), cap))

    def _track(self, counts: Tensor) -> Tensor:
        """Count code use over the window, re-seed the dead codes and return them (K,) bool."""
        if not bool(self.initialized):
            return self.dead_mask()
        w = self.usage.shape[0]
        self.usage[int(self.step) % w] = counts
        self.step += 1
        dead = self.dead_mask()
        if self.cfg.reseed_dead and bool(dead.any()):
            self.reseed(dead)
        return dead

    def dead_mask(self) -> Tensor:
        """(K,) bool: codes used fewer than ``dead_threshold`` times over the last ``usage_window`` steps,
        among those at least a window old (a fresh or re-seeded code gets one window to be used)."""
        old = (self.step - self.born) >= self.usage.shape[0]
        return old & (self.usage.sum(0) < self.cfg.dead_threshold)

    def reseed(self, dead: Tensor) -> None:
        """Replace the codes where ``dead`` (K,) is true by recent encoder outputs drawn at random."""
        idx = dead.nonzero().flatten()
        n = int(self.pool_size)
        if n == 0 or len(idx) == 0:
            return
        pick = torch.randint(n, (len(idx),), generator=self.generator).to(self.pool.device)
        self._set_codes(idx, self.pool[pick])
        self.born[idx] = self.step

    def _set_codes(self, idx: Tensor, values: Tensor) -> None:
        """Write ``values`` (n, code_dim) at codes ``idx`` (and their EMA statistics), then sync workers."""
        values = F.normalize(values, dim=1) if self.cfg.l2_normalize else values
        with torch.no_grad():
            self.codebook[idx] = values.to(self.codebook.dtype)
            if self.cfg.ema:
                self.ema_count[idx] = 1.0
                self.ema_sum[idx] = values.to(self.ema_sum.dtype)
            if _distributed():
                dist.broadcast(self.codebook.data, 0)
                if self.cfg.ema:
                    dist.broadcast(self.ema_count, 0)
                    dist.broadcast(self.ema_sum, 0)
        self.usage[:, idx] = 0.0
