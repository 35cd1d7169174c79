"""Factorised cross-pattern attention (CroPA, ECG-JEPA) without the dense ``(c p) x (c p)`` scores.

Tokens form a lead-major ``c x p`` grid (row ``a * p + u`` is lead ``a``, time ``u``); token ``(a, u)`` may
attend to ``(b, v)`` iff ``a == b`` or ``u == v``, i.e. to ``c + p - 1`` tokens. Dense masked attention
(:func:`dense_cropa_attention`) computes all ``(c p)^2`` scores and throws most away. :func:`cropa_attention`
computes only the two neighbourhoods of every token:

* lead neighbourhood, scores ``(B, H, c, p, p)``: the ``p`` tokens of the same lead;
* time neighbourhood, scores ``(B, H, p, c, c)``: the ``c`` tokens of the same time step, with the token itself
  masked (it is already in the lead neighbourhood: counted once),

and normalises both with one softmax over their union (the concatenation ``(B, H, c, p, p + c)``), so the
result equals the dense masked attention. Memory of the scores: ``c p (p + c)`` against ``(c p)^2``. With one
lead or one time step every token sees every other, and plain unmasked SDPA is used.

The context encoder of ECG-JEPA keeps a subset of time columns shared by all leads; its tokens are still a
lead-major ``c x p'`` grid, and the dense mask sliced to them is the CroPA mask of that grid, so the same
function applies with ``p = p'``.

Example:
    >>> q, k, v = torch.randn(3, 2, 4, 3 * 5, 8).unbind(0)
    >>> torch.allclose(cropa_attention(q, k, v, 3), dense_cropa_attention(q, k, v, 3), atol=1e-6)
    True
"""

from __future__ import annotations

import math
from typing import Optional

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from physioclr_ext.modules.transformer import MultiHeadSelfAttention

__all__ = ["CroPASelfAttention", "cropa_attention", "dense_cropa_attention", "grid_cropa_mask"]


def grid_cropa_mask(num_leads: int, num_patches: int, device: torch.device | None = None) -> Tensor:
    """CroPA mask ``(c p, c p)`` bool (True = may attend) of a lead-major ``c x p`` token grid."""
    index = torch.arange(num_leads * num_patches, device=device)
    lead, time = index // num_patches, index % num_patches
    return (lead[:, None] == lead[None, :]) | (time[:, None] == time[None, :])


def _grid(x: Tensor, num_leads: int) -> Tensor:
    """``(B, H, c p, d)`` -> ``(B, H, c, p, d)`` (a view), checking that the token count is a grid."""
    batch, heads, tokens, dim = x.shape
    if num_leads <= 0 or tokens % num_leads != 0:
        raise ValueError(f"{tokens} tokens are not a grid of {num_leads} leads")
    return x.view(batch, heads, num_leads, tokens // num_leads, dim)


def cropa_attention(
    q: Tensor,
    k: Tensor,
    v: Tensor,
    num_leads: int,
    dropout_p: float = 0.0,
    scale: float | None = None,
) -> Tensor:
    """CroPA attention of ``q, k, v`` ``(B, H, c p, d)`` (lead-major tokens) -> ``(B, H, c p, d)``.

    Equal to ``F.scaled_dot_product_attention(q, k, v, attn_mask=grid_cropa_mask(c, p))`` without its dense
    scores; ``dropout_p`` drops attention weights as SDPA does (pass 0 in evaluation), ``scale`` defaults to
    ``1 / sqrt(d)``.
    """
    if dropout_p == 0.0 and (num_leads == 1 or num_leads == q.shape[-2]):
        # one lead or one time step: every token sees every other, plain (fused) attention is the same
        return F.scaled_dot_product_attention(q, k, v, scale=scale)
    return _neighbourhood_attention(q, k, v, num_leads, dropout_p, scale)


def _neighbourhood_attention(
    q: Tensor, k: Tensor, v: Tensor, num_leads: int, dropout_p: float = 0.0, scale: float | None = None
) -> Tensor:
    """The factorised computation of :func:`cropa_attention` for any grid (also ``c = 1`` or ``p = 1``)."""
    qg, kg, vg = _grid(q, num_leads), _grid(k, num_leads), _grid(v, num_leads)
    batch, heads, c, p, dim = qg.shape
    qg = qg * (scale if scale is not None else 1.0 / math.sqrt(dim))
    qt, kt, vt = qg.transpose(2, 3), kg.transpose(2, 3), vg.transpose(2, 3)  # (B, H, p, c, d)
    self_pair = torch.eye(c, dtype=torch.bool, device=q.device)[:, None, :]  # (a, ., b): b == a
    # scores inline, so that only the softmax output outlives this line (peak memory)
    weights = torch.softmax(
        torch.cat(
            [
                qg @ kg.transpose(-1, -2),  # (B, H, c, p, p): (a, u) against (a, v)
                # (B, H, c, p, c): (a, u) against (b, u), the token itself masked (it is in the lead part)
                (qt @ kt.transpose(-1, -2)).transpose(2, 3).masked_fill_(self_pair, float("-inf")),
            ],
            dim=-1,
        ),
        dim=-1,
    )  # the lead part always holds the token itself, so no row is all -inf (c = 1 included)
    if dropout_p > 0.0:
        weights = F.dropout(weights, p=dropout_p)
    lead_w, time_w = weights[..., :p], weights[..., p:]
    out = lead_w @ vg + (time_w.transpose(2, 3) @ vt).transpose(2, 3)  # (B, H, c, p, d)
    return out.reshape(batch, heads, c * p, dim)


def dense_cropa_attention(q: Tensor, k: Tensor, v: Tensor, num_leads: int) -> Tensor:
    """The reference: SDPA with the dense boolean CroPA mask, same shapes as :func:`cropa_attention`."""
    mask = grid_cropa_mask(num_leads, q.shape[-2] // num_leads, device=q.device)
    return F.scaled_dot_product_attention(q, k, v, attn_mask=mask)


class CroPASelfAttention(nn.Module):
    """Drop-in for a :class:`~physioclr_ext.modules.transformer.MultiHeadSelfAttention` of a block whose tokens
    are a lead-major grid of ``num_leads`` leads: the same ``qkv``, ``proj``, ``proj_drop`` modules (taken over,
    so the state-dict keys and weights are unchanged), attention through :func:`cropa_attention`.

    Shapes: ``(B, num_leads * n, D) -> (B, num_leads * n, D)`` for any ``n`` (all or only the visible columns).

    Example:
        >>> attn = MultiHeadSelfAttention(16, 2)
        >>> x = torch.randn(2, 3 * 4, 16)
        >>> dense = attn(x, attn_mask=grid_cropa_mask(3, 4))
        >>> torch.allclose(CroPASelfAttention(attn, num_leads=3)(x), dense, atol=1e-6)
        True
    """

    def __init__(self, attn: MultiHeadSelfAttention, num_leads: int) -> None:
        super().__init__()
        self.heads, self.dropout, self.num_leads = attn.heads, attn.dropout, num_leads
        self.qkv, self.proj, self.proj_drop = attn.qkv, attn.proj, attn.proj_drop

    def forward(self, x: Tensor, attn_mask: Optional[Tensor] = None) -> Tensor:
        """``attn_mask`` must be None: the CroPA pattern is implied by ``num_leads``."""
        if attn_mask is not None:
            raise ValueError("CroPASelfAttention builds its own pattern; pass no attn_mask")
        b, n, d = x.shape
        q, k, v = self.qkv(x).reshape(b, n, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        out = cropa_attention(q, k, v, self.num_leads, dropout_p=self.dropout if self.training else 0.0)
        y: Tensor = self.proj_drop(self.proj(out.transpose(1, 2).reshape(b, n, d)))
        return y
