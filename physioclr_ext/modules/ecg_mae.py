"""ECG masked autoencoder: MAE (He et al., CVPR 2022) over per-lead patches.

Each token is ``patch_size`` consecutive samples of one lead, so single-lead and multi-lead inputs
share one design: ``(B, C, T)`` gives ``C * N`` tokens with ``N = T // patch_size``. A token is
``Linear(P -> D)`` of its patch (shared by all leads) plus a fixed sine-cosine embedding of its
time position and a learnable embedding of its lead. A random ``mask_ratio`` share of the ``C * N``
tokens is dropped; the encoder sees only the visible ones. A light decoder fills the masked
positions with a learnable mask token, adds its own position and lead embeddings and predicts
every patch; the loss (:func:`physioclr_ext.losses.masked_reconstruction_loss`) is the MSE on the
masked patches against per-patch normalised targets. The representation is the mean of the
encoder tokens of the unmasked input.

Defaults (METHODS.md section 6): the encoder is the Tarif-dev MIT-BIH design (256-d, 8 layers,
8 heads) with its 4-layer decoder at half width (128-d, 4 heads: MAE's decoder is narrower than
its encoder, and the decoder only needs to be light). The patch of 125 samples is 0.25 s at the
package's 500 Hz default, close to ST-MEM's 0.3 s (75 samples at 250 Hz) and Tarif-dev's 0.28 s
(100 samples at 360 Hz), and divides the 5-s and 10-s windows (2500 and 5000 samples). The mask
ratio 0.75 is MAE's and ST-MEM's (Tarif-dev 0.60, MAECG 0.5 on beat-level samples).
"""

from dataclasses import dataclass, field
from typing import Dict, Optional

import torch
import torch.nn as nn
from torch import Tensor

from physioclr_ext.modules.patching import patchify, random_masking, unpatchify
from physioclr_ext.modules.transformer import Transformer, init_weights, sincos_1d

__all__ = ["ECGMAE", "ECGMAEConfig"]


@dataclass
class ECGMAEConfig:
    """Sizes of :class:`ECGMAE` (defaults explained in the module docstring).

    Also the fields of the fairseq-signals model ``ecg_mae``, so every type here must be one
    omegaconf 2.0 accepts (no ``from __future__ import annotations`` in this module).
    """

    in_channels: int = field(default=12, metadata={"help": "leads C of the input (1 for single-lead data)"})
    patch_size: int = field(default=125, metadata={"help": "samples per patch P (0.25 s at 500 Hz)"})
    max_patches: int = field(
        default=64, metadata={"help": "time positions of the sin-cos table; T // patch_size must not exceed it"}
    )
    embed_dim: int = field(default=256, metadata={"help": "encoder width D (the representation size)"})
    depth: int = field(default=8, metadata={"help": "encoder blocks"})
    heads: int = field(default=8, metadata={"help": "encoder attention heads"})
    mlp_ratio: float = field(default=4.0, metadata={"help": "MLP width / token width, encoder and decoder"})
    decoder_embed_dim: int = field(default=128, metadata={"help": "decoder width"})
    decoder_depth: int = field(default=4, metadata={"help": "decoder blocks"})
    decoder_heads: int = field(default=4, metadata={"help": "decoder attention heads"})
    mask_ratio: float = field(default=0.75, metadata={"help": "share of the C*N patch tokens masked in pre-training"})
    drop_path: float = field(default=0.0, metadata={"help": "stochastic depth of the last encoder block"})


class ECGMAE(nn.Module):
    """Masked autoencoder over per-lead patches: ``(B, C, T) -> {pred, target, mask}``.

    Inputs whose ``T`` is not a multiple of ``patch_size`` are cropped to ``floor(T / P) * P``
    samples (the tail is dropped); ``C`` must equal ``in_channels`` and ``T // P`` may not exceed
    ``max_patches``.

    Example:
        >>> model = ECGMAE(ECGMAEConfig(in_channels=2, patch_size=50, embed_dim=32, depth=1, heads=2,
        ...                             decoder_embed_dim=16, decoder_depth=1, decoder_heads=2))
        >>> out = model(torch.randn(3, 2, 500))
        >>> out["pred"].shape, out["mask"].shape, model.embedding(torch.randn(3, 2, 500)).shape
        (torch.Size([3, 20, 50]), torch.Size([3, 20]), torch.Size([3, 32]))
    """

    pos_embed: Tensor
    decoder_pos_embed: Tensor

    def __init__(self, cfg: Optional[ECGMAEConfig] = None) -> None:
        super().__init__()
        cfg = cfg or ECGMAEConfig()
        self.cfg = cfg
        self.patch_size = cfg.patch_size
        self.mask_ratio = cfg.mask_ratio
        self.embed_dim = cfg.embed_dim

        self.patch_embed = nn.Linear(cfg.patch_size, cfg.embed_dim)
        self.register_buffer("pos_embed", sincos_1d(cfg.max_patches, cfg.embed_dim), persistent=False)
        self.lead_embed = nn.Parameter(torch.zeros(cfg.in_channels, cfg.embed_dim))
        self.encoder = Transformer(cfg.embed_dim, cfg.depth, cfg.heads, cfg.mlp_ratio, drop_path=cfg.drop_path)

        self.decoder_embed = nn.Linear(cfg.embed_dim, cfg.decoder_embed_dim)
        self.mask_token = nn.Parameter(torch.zeros(cfg.decoder_embed_dim))
        self.register_buffer("decoder_pos_embed", sincos_1d(cfg.max_patches, cfg.decoder_embed_dim), persistent=False)
        self.decoder_lead_embed = nn.Parameter(torch.zeros(cfg.in_channels, cfg.decoder_embed_dim))
        self.decoder = Transformer(cfg.decoder_embed_dim, cfg.decoder_depth, cfg.decoder_heads, cfg.mlp_ratio)
        self.decoder_pred = nn.Linear(cfg.decoder_embed_dim, cfg.patch_size)

        self.apply(init_weights)
        for p in (self.lead_embed, self.mask_token, self.decoder_lead_embed):
            nn.init.normal_(p, std=0.02)

    def _patches(self, x: Tensor) -> Tensor:
        """Crop to a multiple of P and patch: ``(B, C, T) -> (B, C, N, P)``."""
        if x.ndim != 3 or x.shape[1] != self.cfg.in_channels:
            raise ValueError(f"expected (B, {self.cfg.in_channels}, T) input, got shape {tuple(x.shape)}")
        n = x.shape[-1] // self.patch_size
        if not 1 <= n <= self.cfg.max_patches:
            raise ValueError(
                f"T={x.shape[-1]} gives {n} patches of {self.patch_size} samples; need 1..max_patches="
                f"{self.cfg.max_patches}"
            )
        return patchify(x[..., : n * self.patch_size], self.patch_size)

    def _tokens(self, patches: Tensor) -> Tensor:
        """Embedded tokens with position and lead embeddings: ``(B, C, N, P) -> (B, C * N, D)``."""
        n = patches.shape[2]
        tokens: Tensor = self.patch_embed(patches) + self.pos_embed[:n] + self.lead_embed[:, None, :]
        return tokens.flatten(1, 2)

    def _decode(self, latent: Tensor, keep: Tensor, c: int, n: int) -> Tensor:
        """Visible latents ``(B, n_keep, D)`` at token indices ``keep`` -> predicted patches ``(B, C * N, P)``."""
        visible = self.decoder_embed(latent)
        b, _, dd = visible.shape
        full = self.mask_token.to(visible.dtype).expand(b, c * n, dd).clone()
        full.scatter_(1, keep[..., None].expand(-1, -1, dd), visible)
        pos = (self.decoder_pos_embed[:n] + self.decoder_lead_embed[:, None, :]).flatten(0, 1)
        pred: Tensor = self.decoder_pred(self.decoder(full + pos))
        return pred

    def forward(
        self, x: Tensor, mask_ratio: Optional[float] = None, generator: Optional[torch.Generator] = None
    ) -> Dict[str, Tensor]:
        """Mask, encode the visible tokens, decode every patch.

        Args:
            x: ``(B, C, T)`` signal.
            mask_ratio: share of tokens to mask (default ``cfg.mask_ratio``).
            generator: masking noise; ``None`` uses torch's global RNG.

        Returns:
            ``pred`` ``(B, C * N, P)`` predicted patches, ``target`` ``(B, C * N, P)`` raw patches and
            ``mask`` ``(B, C * N)`` bool (True = masked); token ``c * N + k`` is patch ``k`` of lead ``c``.
        """
        patches = self._patches(x)
        b, c, n, _ = patches.shape
        tokens = self._tokens(patches)
        ratio = self.mask_ratio if mask_ratio is None else mask_ratio
        keep, mask = random_masking(b, c * n, ratio, generator=generator, device=x.device)
        visible = tokens.gather(1, keep[..., None].expand(-1, -1, tokens.shape[-1]))
        pred = self._decode(self.encoder(visible), keep, c, n)
        return {"pred": pred, "target": patches.flatten(1, 2), "mask": mask}

    def encode(self, x: Tensor) -> Tensor:
        """Encoder tokens of the unmasked input: ``(B, C, T) -> (B, C * N, D)``."""
        tokens: Tensor = self.encoder(self._tokens(self._patches(x)))
        return tokens

    def embedding(self, x: Tensor) -> Tensor:
        """Representation for downstream use, the mean of the encoder tokens: ``(B, C, T) -> (B, D)``."""
        return self.encode(x).mean(dim=1)

    @torch.no_grad()
    def reconstruct(
        self,
        x: Tensor,
        mask_ratio: Optional[float] = None,
        generator: Optional[torch.Generator] = None,
        norm_target: bool = True,
        eps: float = 1e-6,
    ) -> Dict[str, Tensor]:
        """Mask ``x`` and predict it back, as signals for plotting (call ``eval()`` first).

        With ``norm_target`` (the model was trained on normalised patches) every predicted patch is
        mapped back with its own target patch's mean and std, as the MAE visualisation demo does.

        Returns:
            ``original`` ``(B, C, T')`` (``x`` cropped to a multiple of P), ``masked`` ``(B, C, T')`` with the
            masked patches set to NaN, ``reconstruction`` ``(B, C, T')`` the prediction of every patch
            (visible ones included), and ``mask`` ``(B, C, N)`` bool.
        """
        out = self.forward(x, mask_ratio=mask_ratio, generator=generator)
        b, c = x.shape[:2]
        target, pred, mask = out["target"], out["pred"], out["mask"]
        if norm_target:
            mean = target.mean(dim=-1, keepdim=True)
            std = (target.var(dim=-1, unbiased=False, keepdim=True) + eps).sqrt()
            pred = pred * std + mean
        patches = target.reshape(b, c, -1, self.patch_size)
        mask = mask.reshape(b, c, -1)
        masked = patches.masked_fill(mask[..., None], float("nan"))
        return {
            "original": unpatchify(patches),
            "masked": unpatchify(masked),
            "reconstruction": unpatchify(pred.reshape(b, c, -1, self.patch_size)),
            "mask": mask,
        }
