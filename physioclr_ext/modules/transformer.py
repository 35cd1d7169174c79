"""Pre-norm ViT transformer pieces shared by the masked-modelling methods (ECG MAE, ST-MEM).

Blocks follow MAE / timm's ViT (He et al., "Masked Autoencoders Are Scalable Vision Learners",
CVPR 2022): ``x + drop_path(attn(norm1(x)))`` then ``x + drop_path(mlp(norm2(x)))``, attention
through :func:`torch.nn.functional.scaled_dot_product_attention` (fused kernels where available),
a ``Linear - GELU - Linear`` MLP, LayerNorm eps 1e-6 and xavier-uniform initialisation.
"""

from __future__ import annotations

from typing import Optional

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

__all__ = ["DropPath", "MultiHeadSelfAttention", "Transformer", "TransformerBlock", "init_weights", "sincos_1d"]


def sincos_1d(n_positions: int, dim: int) -> Tensor:
    """Fixed 1-D sine-cosine position table ``(n_positions, dim)``, MAE convention.

    Row ``p`` is ``[sin(p * w_0), ..., sin(p * w_{dim/2-1}), cos(p * w_0), ..., cos(p * w_{dim/2-1})]``
    with ``w_i = 1 / 10000^(2i / dim)`` (MAE ``get_1d_sincos_pos_embed_from_grid``).

    Example:
        >>> sincos_1d(32, 256).shape
        torch.Size([32, 256])
    """
    if dim % 2 != 0:
        raise ValueError(f"sincos_1d needs an even dim, got {dim}")
    omega = 1.0 / 10000 ** (torch.arange(dim // 2, dtype=torch.float64) * 2.0 / dim)
    angles = torch.arange(n_positions, dtype=torch.float64)[:, None] * omega[None, :]
    return torch.cat([angles.sin(), angles.cos()], dim=1).float()


class DropPath(nn.Module):
    """Stochastic depth per sample (Huang et al., ECCV 2016): zero a residual branch with probability ``p``.

    Uses torch's global RNG during training, like dropout (the fairseq-signals trainer seeds it per update).
    """

    def __init__(self, p: float = 0.0) -> None:
        super().__init__()
        self.p = p

    def forward(self, x: Tensor) -> Tensor:
        if self.p == 0.0 or not self.training:
            return x
        keep = 1.0 - self.p
        shape = (x.shape[0],) + (1,) * (x.ndim - 1)
        return x * x.new_empty(shape).bernoulli_(keep) / keep


class MultiHeadSelfAttention(nn.Module):
    """Multi-head self-attention ``(B, N, D) -> (B, N, D)`` with one fused ``qkv`` Linear and SDPA."""

    def __init__(self, dim: int, heads: int, qkv_bias: bool = True, dropout: float = 0.0) -> None:
        super().__init__()
        if dim % heads != 0:
            raise ValueError(f"dim {dim} is not divisible by heads {heads}")
        self.heads = heads
        self.dropout = dropout
        self.qkv = nn.Linear(dim, 3 * dim, bias=qkv_bias)
        self.proj = nn.Linear(dim, dim)
        self.proj_drop = nn.Dropout(dropout)

    def forward(self, x: Tensor, attn_mask: Optional[Tensor] = None) -> Tensor:
        """``attn_mask``: bool (True = may attend) or additive float, broadcastable to ``(B, heads, N, N)``."""
        b, n, d = x.shape
        q, k, v = self.qkv(x).reshape(b, n, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        out = F.scaled_dot_product_attention(
            q, k, v, attn_mask=attn_mask, dropout_p=self.dropout if self.training else 0.0
        )
        y: Tensor = self.proj_drop(self.proj(out.transpose(1, 2).reshape(b, n, d)))
        return y


class TransformerBlock(nn.Module):
    """Pre-norm transformer block ``(B, N, D) -> (B, N, D)`` (ViT / MAE).

    Args:
        dim: token width D.
        heads: attention heads (D must be divisible by it).
        mlp_ratio: MLP hidden width as a multiple of D.
        qkv_bias: bias in the ``qkv`` projection.
        dropout: dropout on attention weights, after the attention projection and in the MLP.
        drop_path: stochastic-depth probability of both residual branches.
        norm_eps: LayerNorm epsilon.

    Example:
        >>> block = TransformerBlock(64, 4)
        >>> block(torch.randn(2, 10, 64)).shape
        torch.Size([2, 10, 64])
    """

    def __init__(
        self,
        dim: int,
        heads: int,
        mlp_ratio: float = 4.0,
        qkv_bias: bool = True,
        dropout: float = 0.0,
        drop_path: float = 0.0,
        norm_eps: float = 1e-6,
    ) -> None:
        super().__init__()
        hidden = int(dim * mlp_ratio)
        self.norm1 = nn.LayerNorm(dim, eps=norm_eps)
        self.attn = MultiHeadSelfAttention(dim, heads, qkv_bias=qkv_bias, dropout=dropout)
        self.norm2 = nn.LayerNorm(dim, eps=norm_eps)
        self.mlp = nn.Sequential(
            nn.Linear(dim, hidden), nn.GELU(), nn.Dropout(dropout), nn.Linear(hidden, dim), nn.Dropout(dropout)
        )
        self.drop_path = DropPath(drop_path)

    def forward(self, x: Tensor, attn_mask: Optional[Tensor] = None) -> Tensor:
        x = x + self.drop_path(self.attn(self.norm1(x), attn_mask=attn_mask))
        y: Tensor = x + self.drop_path(self.mlp(self.norm2(x)))
        return y


class Transformer(nn.Module):
    """``depth`` :class:`TransformerBlock` s then a final LayerNorm: ``(B, N, D) -> (B, N, D)``.

    Stochastic depth grows linearly from 0 in the first block to ``drop_path`` in the last (timm ViT).

    Example:
        >>> Transformer(64, depth=2, heads=4)(torch.randn(2, 10, 64)).shape
        torch.Size([2, 10, 64])
    """

    def __init__(
        self,
        dim: int,
        depth: int,
        heads: int,
        mlp_ratio: float = 4.0,
        qkv_bias: bool = True,
        dropout: float = 0.0,
        drop_path: float = 0.0,
        norm_eps: float = 1e-6,
    ) -> None:
        super().__init__()
        rates = [drop_path * i / (depth - 1) if depth > 1 else drop_path for i in range(depth)]
        self.blocks = nn.ModuleList(
            TransformerBlock(dim, heads, mlp_ratio, qkv_bias, dropout, rate, norm_eps) for rate in rates
        )
        self.norm = nn.LayerNorm(dim, eps=norm_eps)

    def forward(self, x: Tensor, attn_mask: Optional[Tensor] = None) -> Tensor:
        for block in self.blocks:
            x = block(x, attn_mask=attn_mask)
        y: Tensor = self.norm(x)
        return y


def init_weights(module: nn.Module) -> None:
    """MAE initialisation, for ``model.apply(init_weights)``: xavier-uniform Linear weights, zero biases,
    LayerNorm weight 1 and bias 0."""
    if isinstance(module, nn.Linear):
        nn.init.xavier_uniform_(module.weight)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, nn.LayerNorm):
        if module.weight is not None:
            nn.init.ones_(module.weight)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
