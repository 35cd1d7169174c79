"""ECG-JEPA: joint-embedding predictive architecture with cross-pattern attention (Kim, arXiv 2410.08559).

Follows the released code (sehunfromdaegu/ECG_JEPA, MIT; reference sheet section 3), re-written.

Input contract (preprocessing preset ``ecg_jepa``): ``C`` leads (published: 8, I, II, V1-V6), 250 Hz,
``T = 2500`` samples, raw amplitude. Every lead is cut into ``p = T / t`` patches of ``t = 50`` samples
(``8 x 50 = 400`` tokens), embedded by one ``Linear(t, D)``. Token ``(a, u)`` (lead ``a``, time ``u``) sits at
row ``a * p + u``. Fixed 2-D sine-cosine positions over (lead, time) are added **before every block**.

* **CroPA** (:func:`cropa_mask`): token ``(a, u)`` attends to ``(b, v)`` iff ``a == b`` or ``u == v``; the
  context encoder uses the mask sliced to its visible tokens.
* **Masking** (:func:`random_time_mask`, :func:`block_time_mask`): whole time columns, the same for every
  lead and every sample of a batch.
* **Context encoder** on the visible columns, **target encoder** (an EMA copy, :func:`ema_update`) on the full
  input; the loss (:func:`physioclr_ext.losses.jepa.jepa_loss`) compares the layer-normed target outputs at
  the masked columns with the predictions of a **per-lead predictor** (:class:`LeadwisePredictor`, no
  attention across leads).
* Representation (:meth:`ECGJEPA.representation`): full input through the context encoder with CroPA, final
  LayerNorm, mean over all tokens.
* Fewer leads (``leads``, the original's ``restrict_leads``): the positional table and the CroPA mask are
  sliced to the rows of those leads.
* ``attention``: ``dense`` (default; SDPA with the boolean ``(c p) x (c p)`` mask, as the original) or
  ``factorised`` (:func:`physioclr_ext.modules.cropa_attention.cropa_attention`: only each token's
  ``c + p - 1`` neighbours are scored; faster for many leads and patches on one CPU thread, but more peak
  memory than CPU SDPA and slower with two threads at 8 x 50 on the 2-core machine here:
  ``benchmarks/cropa_attention.py``). Same parameters and the same outputs (to float rounding), so
  checkpoints load under either.

Example:
    >>> model = ECGJEPA(ECGJEPAConfig(embed_dim=32, depth=1, heads=2, predictor_embed_dim=16,
    ...                               predictor_depth=1, predictor_heads=2))
    >>> out = model(torch.randn(2, 8, 2500), generator=torch.Generator().manual_seed(0))
    >>> out["pred"].shape == out["target"].shape, out["pred"].shape[:2]
    (True, torch.Size([2, 8]))
"""

import copy
import math
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence

import torch
from torch import Tensor, nn

from physioclr_ext.modules.cropa_attention import CroPASelfAttention, grid_cropa_mask
from physioclr_ext.modules.transformer import TransformerBlock, sincos_1d

__all__ = [
    "ECGJEPA",
    "ECGJEPAConfig",
    "CroPAEncoder",
    "LeadwisePredictor",
    "block_time_mask",
    "cropa_mask",
    "ema_momentum",
    "ema_update",
    "random_time_mask",
    "sample_time_mask",
    "sincos_2d",
]

MASK_TYPES = ("random", "block")
ATTENTIONS = ("dense", "factorised")
NORM_EPS = 1e-5  # torch's LayerNorm default, as nn.LayerNorm in the original
REGULARISED_VIEWS = ("visible", "full", "tokens")  # choices of ECGJEPAConfig.regularise_on


@dataclass
class ECGJEPAConfig:
    """Sizes and masking of :class:`ECGJEPA`; defaults are the published model (reference sheet section 3).

    Also the fields of the fairseq-signals model ``ecg_jepa``: omegaconf-2.0 types only (lists, no tuples).
    """

    num_leads: int = field(
        default=8, metadata={"help": "lead rows c of the positional table and CroPA mask (8: I, II, V1-V6)"}
    )
    leads: Optional[List[int]] = field(
        default=None,
        metadata={"help": "restrict_leads: the rows (of num_leads) the input channels are; None = all, in order"},
    )
    seq_len: int = field(default=2500, metadata={"help": "samples per lead T (10 s at 250 Hz)"})
    patch_size: int = field(default=50, metadata={"help": "samples per patch t (0.2 s at 250 Hz)"})
    embed_dim: int = field(default=768, metadata={"help": "encoder width D (a multiple of 4)"})
    depth: int = field(default=12, metadata={"help": "encoder blocks"})
    heads: int = field(default=16, metadata={"help": "encoder attention heads"})
    mlp_ratio: float = field(default=4.0, metadata={"help": "MLP width as a multiple of the block width"})
    qkv_bias: bool = field(default=False, metadata={"help": "bias in the attention qkv projection"})
    drop_path: float = field(default=0.1, metadata={"help": "stochastic depth of the last block (0 in the first)"})
    init_std: float = field(default=0.02, metadata={"help": "std of the truncated-normal Linear init"})
    predictor_embed_dim: int = field(default=384, metadata={"help": "predictor width"})
    predictor_depth: int = field(default=6, metadata={"help": "predictor blocks"})
    predictor_heads: int = field(default=12, metadata={"help": "predictor attention heads"})
    mask_type: str = field(default="block", metadata={"help": "random (paper 'rb') | block (paper 'mb')"})
    mask_scale: List[float] = field(
        default_factory=lambda: [0.175, 0.225],
        metadata={"help": "random: masked share ~ U(lo, hi); block: each block's share of p ~ U(lo, hi)"},
    )
    num_blocks: int = field(default=4, metadata={"help": "blocks of the block mask (union)"})
    ema_start: float = field(default=0.996, metadata={"help": "target-encoder momentum at the first update"})
    ema_end: float = field(default=1.0, metadata={"help": "momentum reached after ema_total_updates"})
    ema_total_updates: int = field(
        default=0, metadata={"help": "updates over which the momentum rises linearly (the run's max_update)"}
    )
    attention: str = field(
        default="dense",
        metadata={
            "help": "CroPA attention: dense (SDPA with the (c*p)^2 mask) | factorised (only the c+p-1 neighbours "
            "of each token are scored); same parameters and outputs"
        },
    )
    regularise_on: str = field(
        default="visible",
        metadata={
            "help": "what forward returns as `context`, the rows the jepa criterion's optional VICReg terms read: "
            "visible (B, D: the context encoder's visible tokens averaged per window) | full (B, D: the downstream "
            "representation of the whole window; one more encoder pass, with gradients) | tokens (B * C * n_vis, "
            "D: every visible token of every window, each a row)"
        },
    )


# ------------------------------------------------------------------------------------------ pure functions
def sincos_2d(num_leads: int, num_patches: int, dim: int) -> Tensor:
    """Fixed 2-D sine-cosine table ``(num_leads * num_patches, dim)``, lead-major rows (row ``a * p + u``).

    MAE's ``get_2d_sincos_pos_embed`` convention: the first ``dim / 2`` columns encode the time index ``u``,
    the last ``dim / 2`` the lead index ``a``, each with :func:`sincos_1d`. With ``num_leads = 1`` it is the
    predictor's table (time in the first half, the constant code of lead 0 in the second), as in the original.

    Example:
        >>> sincos_2d(8, 50, 64).shape
        torch.Size([400, 64])
    """
    if dim % 4 != 0:
        raise ValueError(f"sincos_2d needs dim divisible by 4, got {dim}")
    time = sincos_1d(num_patches, dim // 2).repeat(num_leads, 1)
    lead = sincos_1d(num_leads, dim // 2).repeat_interleave(num_patches, dim=0)
    return torch.cat([time, lead], dim=1)


def cropa_mask(num_leads: int, num_patches: int, device: Optional[torch.device] = None) -> Tensor:
    """Cross-pattern attention mask ``(c * p, c * p)`` bool, True = may attend: token ``(a, u)`` (row
    ``a * p + u``) sees ``(b, v)`` iff ``a == b`` (same lead) or ``u == v`` (same time step).

    Example:
        >>> cropa_mask(2, 2).int().tolist()
        [[1, 1, 1, 0], [1, 1, 0, 1], [1, 0, 1, 1], [0, 1, 1, 1]]
    """
    return grid_cropa_mask(num_leads, num_patches, device=device)


def _uniform(lo: float, hi: float, generator: Optional[torch.Generator]) -> float:
    return lo + (hi - lo) * float(torch.rand(1, generator=generator).item())


def random_time_mask(
    num_patches: int, scale: Sequence[float] = (0.6, 0.7), generator: Optional[torch.Generator] = None
) -> Tensor:
    """Random time columns ``(p,)`` bool (True = masked): ``int(p * r)`` distinct columns, ``r ~ U(lo, hi)``
    (paper 'rb'; 30-34 of 50 columns for the published ``(0.6, 0.7)``).

    Example:
        >>> int(random_time_mask(50, (0.6, 0.7), torch.Generator().manual_seed(0)).sum()) in range(30, 35)
        True
    """
    n_mask = int(num_patches * _uniform(scale[0], scale[1], generator))
    mask = torch.zeros(num_patches, dtype=torch.bool)
    mask[torch.randperm(num_patches, generator=generator)[:n_mask]] = True
    return mask


def block_time_mask(
    num_patches: int,
    scale: Sequence[float] = (0.175, 0.225),
    num_blocks: int = 4,
    generator: Optional[torch.Generator] = None,
) -> Tensor:
    """Union of ``num_blocks`` runs of time columns ``(p,)`` bool (paper 'mb'): each run has ``int(p * r)``
    columns, ``r ~ U(lo, hi)`` (8-11 of 50 for the published ``(0.175, 0.225)``), and starts uniformly in
    ``[0, p - len)`` (exclusive, as the original's ``randperm(p - len)[0]``). Runs may overlap.

    Example:
        >>> m = block_time_mask(50, generator=torch.Generator().manual_seed(0))
        >>> 8 <= int(m.sum()) <= 44
        True
    """
    mask = torch.zeros(num_patches, dtype=torch.bool)
    for _ in range(num_blocks):
        length = int(num_patches * _uniform(scale[0], scale[1], generator))
        start = int(torch.randint(0, max(num_patches - length, 1), (1,), generator=generator).item())
        mask[start : start + length] = True
    return mask


def sample_time_mask(
    mask_type: str,
    num_patches: int,
    scale: Sequence[float],
    num_blocks: int = 4,
    generator: Optional[torch.Generator] = None,
) -> Tensor:
    """:func:`random_time_mask` or :func:`block_time_mask` by name, never masking every column (the context
    encoder needs at least one visible column; the published scales never get there)."""
    if mask_type not in MASK_TYPES:
        raise ValueError(f"mask_type must be one of {MASK_TYPES}, got {mask_type!r}")
    if mask_type == "random":
        mask = random_time_mask(num_patches, scale, generator)
    else:
        mask = block_time_mask(num_patches, scale, num_blocks, generator)
    if bool(mask.all()):
        mask[int(torch.randint(0, num_patches, (1,), generator=generator).item())] = False
    return mask


def ema_momentum(step: int, total: int, start: float = 0.996, end: float = 1.0) -> float:
    """Momentum of the ``step``-th EMA update (0-based): ``start + step * (end - start) / total``, held at
    ``end`` afterwards (the original's ``momentum_target_encoder_scheduler``).

    >>> ema_momentum(0, 100), ema_momentum(50, 100), ema_momentum(200, 100)
    (0.996, 0.998, 1.0)
    """
    if total <= 0:
        raise ValueError(f"the EMA schedule needs a positive number of updates, got {total}")
    return start + min(step, total) * (end - start) / total


@torch.no_grad()
def ema_update(target: nn.Module, online: nn.Module, momentum: float) -> None:
    """In place, for every parameter pair: ``target = momentum * target + (1 - momentum) * online``.

    Both modules must have the same parameters in the same order (``target`` a deep copy of ``online``).
    """
    target_params: List[Tensor] = list(target.parameters())
    online_params: List[Tensor] = list(online.parameters())
    if len(target_params) != len(online_params):
        raise ValueError("ema_update needs modules with the same parameters")
    online_values = [o.detach().to(t.dtype) for t, o in zip(target_params, online_params)]
    # the same two element-wise ops per tensor as a loop of mul_ / add_, without a Python call per parameter
    torch._foreach_mul_(target_params, momentum)
    torch._foreach_add_(target_params, online_values, alpha=1.0 - momentum)


def _init_vit(module: nn.Module, blocks: nn.ModuleList, std: float) -> None:
    """The original's init: truncated normal ``std`` on Linear weights, zero biases, LayerNorm (1, 0), then the
    attention and MLP output projections of block ``l`` (1-based) divided by ``sqrt(2 l)``."""
    for m in module.modules():
        if isinstance(m, nn.Linear):
            nn.init.trunc_normal_(m.weight, std=std, a=-2.0, b=2.0)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.LayerNorm):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
    with torch.no_grad():
        for layer, block in enumerate(blocks, start=1):
            assert isinstance(block, TransformerBlock)
            block.attn.proj.weight.div_(math.sqrt(2.0 * layer))
            fc2 = block.mlp[3]
            assert isinstance(fc2, nn.Linear)
            fc2.weight.div_(math.sqrt(2.0 * layer))


def _blocks(dim: int, depth: int, heads: int, mlp_ratio: float, qkv_bias: bool, drop_path: float) -> nn.ModuleList:
    rates = torch.linspace(0, drop_path, depth).tolist()
    return nn.ModuleList(
        TransformerBlock(dim, heads, mlp_ratio, qkv_bias, drop_path=rate, norm_eps=NORM_EPS) for rate in rates
    )


# ------------------------------------------------------------------------------------------ networks
class CroPAEncoder(nn.Module):
    """Patch embedding, positions added before every block, CroPA attention, final LayerNorm.

    Shapes: ``x`` (B, C, T) -> tokens (B, C * n, D) with ``n`` the visible time columns (all by default).

    Example:
        >>> enc = CroPAEncoder(ECGJEPAConfig(embed_dim=32, depth=1, heads=2))
        >>> enc(torch.randn(2, 8, 2500)).shape
        torch.Size([2, 400, 32])
    """

    pos_embed: Tensor

    def __init__(self, cfg: ECGJEPAConfig) -> None:
        super().__init__()
        if cfg.seq_len % cfg.patch_size != 0:
            raise ValueError(f"seq_len={cfg.seq_len} must be a multiple of patch_size={cfg.patch_size}")
        if cfg.attention not in ATTENTIONS:
            raise ValueError(f"attention must be one of {ATTENTIONS}, got {cfg.attention!r}")
        self.num_leads, self.patch_size, self.attention = cfg.num_leads, cfg.patch_size, cfg.attention
        self.num_patches = cfg.seq_len // cfg.patch_size
        self.leads = list(range(cfg.num_leads)) if cfg.leads is None else [int(i) for i in cfg.leads]
        if not self.leads or any(not 0 <= i < cfg.num_leads for i in self.leads):
            raise ValueError(f"leads must be indices in [0, {cfg.num_leads}), got {cfg.leads}")
        self.embed = nn.Linear(cfg.patch_size, cfg.embed_dim)
        table = sincos_2d(cfg.num_leads, self.num_patches, cfg.embed_dim)
        self.register_buffer("pos_embed", table, persistent=False)
        self.blocks = _blocks(cfg.embed_dim, cfg.depth, cfg.heads, cfg.mlp_ratio, cfg.qkv_bias, cfg.drop_path)
        if self.attention == "factorised":  # same modules and keys, no new parameters, no extra RNG draws
            for block in self.blocks:
                assert isinstance(block, TransformerBlock)
                block.attn = CroPASelfAttention(block.attn, len(self.leads))  # type: ignore[assignment]
        self.norm = nn.LayerNorm(cfg.embed_dim, eps=NORM_EPS)
        _init_vit(self, self.blocks, cfg.init_std)

    def restricted_pos_embed(self) -> Tensor:
        """The rows of :attr:`leads` of the positional table: ``(len(leads) * p, D)`` (``restrict_leads``)."""
        table = self.pos_embed.view(self.num_leads, self.num_patches, -1)[self.leads]
        return table.reshape(len(self.leads) * self.num_patches, -1)

    def forward(self, x: Tensor, visible: Optional[Tensor] = None) -> Tensor:
        """``x`` (B, C, T) with ``C = len(leads)``; ``visible`` (p,) bool time columns to keep (None: all).

        Returns (B, C * n_visible, D), lead-major, after the final LayerNorm.
        """
        batch, leads, length = x.shape
        if leads != len(self.leads) or length != self.num_patches * self.patch_size:
            raise ValueError(
                f"ECG-JEPA takes (B, {len(self.leads)}, {self.num_patches * self.patch_size}) windows, got "
                f"{tuple(x.shape)}; preprocess with the preset `ecg_jepa` (250 Hz, 2500 samples) and set "
                "`leads` for a lead subset"
            )
        tokens = self.embed(x.reshape(batch, leads * self.num_patches, self.patch_size))
        pos = self.restricted_pos_embed()
        # the visible columns are shared by all leads: the kept tokens are a lead-major (leads x n) grid
        keep = None if visible is None else visible.to(x.device).repeat(leads)
        if keep is not None:
            tokens, pos = tokens[:, keep], pos[keep]
        if self.attention == "factorised":  # the blocks' CroPASelfAttention implies the pattern
            for block in self.blocks:
                tokens = block(tokens + pos)
        else:
            allowed = cropa_mask(leads, self.num_patches, device=x.device)
            if keep is not None:
                allowed = allowed[keep][:, keep]
            # SDPA turns a boolean mask into this additive one on every call; once here serves all blocks
            attn_mask = torch.zeros(allowed.shape, dtype=tokens.dtype, device=x.device)
            attn_mask.masked_fill_(~allowed, float("-inf"))
            for block in self.blocks:
                tokens = block(tokens + pos, attn_mask=attn_mask)
        out: Tensor = self.norm(tokens)
        return out


class LeadwisePredictor(nn.Module):
    """Predicts the target representation of the masked time columns of each lead from that lead's visible
    context only: ``Linear(D, Dp)``, mask tokens, 1-row sine-cosine time positions added before every block,
    blocks without attention mask on ``(B * C, p, Dp)``, LayerNorm, ``Linear(Dp, D)``.

    Example:
        >>> pred = LeadwisePredictor(ECGJEPAConfig(embed_dim=32, predictor_embed_dim=16, predictor_depth=1,
        ...                                        predictor_heads=2))
        >>> mask = torch.zeros(50, dtype=torch.bool); mask[:20] = True
        >>> pred(torch.randn(2, 8 * 30, 32), mask).shape
        torch.Size([2, 8, 20, 32])
    """

    pos_embed: Tensor

    def __init__(self, cfg: ECGJEPAConfig) -> None:
        super().__init__()
        self.num_patches = cfg.seq_len // cfg.patch_size
        dim, pdim = cfg.embed_dim, cfg.predictor_embed_dim
        self.embed = nn.Linear(dim, pdim)
        self.mask_token = nn.Parameter(torch.zeros(1, 1, pdim))
        self.register_buffer("pos_embed", sincos_2d(1, self.num_patches, pdim), persistent=False)
        self.blocks = _blocks(
            pdim, cfg.predictor_depth, cfg.predictor_heads, cfg.mlp_ratio, cfg.qkv_bias, cfg.drop_path
        )
        self.norm = nn.LayerNorm(pdim, eps=NORM_EPS)
        self.proj = nn.Linear(pdim, dim)
        _init_vit(self, self.blocks, cfg.init_std)
        nn.init.trunc_normal_(self.mask_token, std=cfg.init_std, a=-2.0, b=2.0)

    def forward(self, context: Tensor, mask: Tensor) -> Tensor:
        """``context`` (B, C * n_vis, D) lead-major context-encoder outputs, ``mask`` (p,) bool (True = masked)
        -> predictions (B, C, n_mask, D) for the masked columns in ascending order."""
        mask = mask.to(context.device)
        batch = context.shape[0]
        n_vis, n_mask = int((~mask).sum()), int(mask.sum())
        hidden = self.embed(context)
        hidden = hidden.reshape(-1, n_vis, hidden.shape[-1])  # (B * C, n_vis, Dp): one sequence per lead
        tokens = torch.cat([hidden, self.mask_token.expand(hidden.shape[0], n_mask, -1)], dim=1)
        order = torch.cat([(~mask).nonzero().flatten(), mask.nonzero().flatten()])
        pos = self.pos_embed[order]
        for block in self.blocks:
            tokens = block(tokens + pos)
        out: Tensor = self.proj(self.norm(tokens))[:, n_vis:]
        return out.reshape(batch, -1, n_mask, out.shape[-1])


class ECGJEPA(nn.Module):
    """Context encoder, EMA target encoder and per-lead predictor, sized by :class:`ECGJEPAConfig`.

    Shapes: ``x`` (B, C, T), ``C = len(leads)``, ``p = T / t`` time columns.
    """

    def __init__(self, cfg: Optional[ECGJEPAConfig] = None) -> None:
        super().__init__()
        cfg = cfg or ECGJEPAConfig()
        if cfg.mask_type not in MASK_TYPES:
            raise ValueError(f"mask_type must be one of {MASK_TYPES}, got {cfg.mask_type!r}")
        if cfg.regularise_on not in REGULARISED_VIEWS:
            raise ValueError(f"regularise_on must be one of {REGULARISED_VIEWS}, got {cfg.regularise_on!r}")
        self.cfg = cfg
        self.embed_dim = cfg.embed_dim
        self.encoder = CroPAEncoder(cfg)
        self.target_encoder = copy.deepcopy(self.encoder)
        self.target_encoder.requires_grad_(False)
        self.predictor = LeadwisePredictor(cfg)

    @property
    def num_patches(self) -> int:
        return self.encoder.num_patches

    def sample_mask(self, generator: Optional[torch.Generator] = None) -> Tensor:
        """One time-column mask (p,) bool for a whole batch (all samples, all leads)."""
        return sample_time_mask(
            self.cfg.mask_type, self.num_patches, self.cfg.mask_scale, self.cfg.num_blocks, generator
        )

    def forward(
        self,
        x: Tensor,
        mask: Optional[Tensor] = None,
        generator: Optional[torch.Generator] = None,
        with_context: bool = True,
    ) -> Dict[str, Tensor]:
        """``x`` (B, C, T) -> ``pred`` (B, C, n_mask, D), ``target`` (B, C, n_mask, D) raw target-encoder outputs
        at the masked columns (no gradient; the loss layer-norms them), ``mask`` (p,) bool, and ``context``
        (N, D), what the optional VICReg terms read: by ``regularise_on``, the context encoder's visible tokens
        averaged per sample (``visible``, N = B), the downstream :meth:`representation` of the whole window
        (``full``, N = B) or every visible token as a row of its own (``tokens``, N = B * C * n_vis: many more rows
        than a batch of windows, so the covariance can reach full rank at batch 16). ``with_context=False`` leaves
        ``context`` out (and with ``full`` saves its extra encoder pass) where nothing reads it."""
        if mask is None:
            mask = self.sample_mask(generator)
        mask = mask.to(x.device)
        with torch.no_grad():
            full = self.target_encoder(x)
            target = full.reshape(x.shape[0], x.shape[1], self.num_patches, -1)[:, :, mask]
        context = self.encoder(x, visible=~mask)
        out = {"pred": self.predictor(context, mask), "target": target.detach(), "mask": mask}
        if with_context:
            out["context"] = self._regularised_view(x, context)
        return out

    def _regularised_view(self, x: Tensor, context: Tensor) -> Tensor:
        """``context`` (B, C * n_vis, D) -> the rows named by ``cfg.regularise_on`` (see :meth:`forward`)."""
        if self.cfg.regularise_on == "full":
            return self.representation(x)
        if self.cfg.regularise_on == "tokens":
            return context.reshape(-1, context.shape[-1])
        return context.mean(dim=1)

    def representation(self, x: Tensor) -> Tensor:
        """The downstream representation (B, D): all tokens through the context encoder with CroPA, final
        LayerNorm, mean over every token."""
        pooled: Tensor = self.encoder(x).mean(dim=1)
        return pooled

    def update_target(self, momentum: float) -> None:
        """One EMA step of the target encoder towards the context encoder (:func:`ema_update`)."""
        ema_update(self.target_encoder, self.encoder, momentum)
