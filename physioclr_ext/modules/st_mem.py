"""ST-MEM: spatio-temporal masked electrocardiogram modelling (Na, Park, Tae, Joo, ICLR 2024, arXiv 2402.09450).

Re-implemented from the paper's description (reference sheet, section 2) and checked against the
equations of the original code (bakqui/ST-MEM, ``models/st_mem.py`` and ``models/encoder/st_mem_vit.py``);
none of its code is copied. With the original's weights (:mod:`physioclr_ext.modules.st_mem_import`) the
features agree to float precision.

Input contract (preprocessing preset ``st_mem``): 12 leads in the order I, II, III, aVR, aVL, aVF,
V1-V6, 250 Hz, 0.67-40 Hz zero-phase Butterworth, one z-score per window over all leads and time,
10-s windows of 2500 samples. The model sees ``seq_len = 2250`` samples (9 s): a random crop in
training (:func:`random_crop`), three crops starting at 0, 125 and 250 at test time (:func:`test_crops`).

Tokens: each lead is cut into ``N = seq_len / patch_size`` patches (2250 / 75 = 30). A patch embedding
``LayerNorm(P) -> Linear(P, D) -> LayerNorm(D)`` shared by all leads; a fixed position table of ``N + 2``
rows shared by all leads, as the original builds it: row 0 (left SEP) and row ``N + 1`` (right SEP) are
zero vectors and patch ``j = 0 .. N-1`` gets ``sincos(j)`` (:func:`position_table`); one learnable SEP
vector before and after every lead's tokens; one learnable embedding per lead added to all of that lead's
tokens, SEPs included. Masking is MAE-style and **independent per lead**: every lead keeps
``int(N * (1 - mask_ratio))`` patches at its own random positions, the SEPs are always kept. The kept
tokens of all leads, ``(B, C * (n_keep + 2), D)``, go through one ViT with full self-attention.

The decoder is applied **to each lead separately** with shared weights (``(B * C, N + 2, Dd)``), so it
cannot copy a masked patch from another lead: ``Linear(D, Dd)``, a learnable mask token, fixed sine-cosine
decoder positions (same layout), ``decoder_depth`` blocks (LayerNorm eps 1e-5), LayerNorm (eps 1e-6),
``Linear(Dd, P)``; SEP outputs are dropped. The loss (criterion ``masked_reconstruction``) is the MSE on
masked patches against targets normalised per patch with the **unbiased** variance
(:attr:`STMEM.target_var_unbiased`). The downstream representation (:meth:`STMEM.embedding`) is the mean
of the unmasked encoder's non-SEP block outputs followed by the encoder's own final LayerNorm, the same
pretrained layer that normalises every token before the decoder (original ``ST_MEM_ViT``).

Two options keep the layout of checkpoints trained before this was made faithful (see :class:`STMEMConfig`):
``position_layout="shifted"`` (SEPs ``sincos(0)`` and ``sincos(N + 1)``, patch ``j`` ``sincos(j + 1)``) and
``pool_norm="fc_norm"`` (every token through the final norm, mean, then a separate LayerNorm ``fc_norm``).

Example:
    >>> model = STMEM(STMEMConfig(**ST_MEM_SIZES["vit_s"]))
    >>> out = model(torch.randn(2, 12, 2250))
    >>> out["pred"].shape, out["mask"].shape
    (torch.Size([2, 12, 30, 75]), torch.Size([2, 12, 30]))
"""

from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple

import torch
from torch import Tensor, nn

from physioclr_ext.modules.patching import patchify, random_masking, unpatchify
from physioclr_ext.modules.transformer import Transformer, init_weights, sincos_1d

__all__ = ["ST_MEM_SIZES", "STMEM", "STMEMConfig", "position_table", "random_crop", "test_crops"]

# Encoder sizes of the paper (reference sheet section 2): ViT-S and ViT-B with 64-wide heads.
ST_MEM_SIZES: Dict[str, Dict[str, int]] = {
    "vit_s": {"embed_dim": 384, "depth": 12, "heads": 6},
    "vit_b": {"embed_dim": 768, "depth": 12, "heads": 12},
}
TEST_CROP_STARTS: Tuple[int, ...] = (0, 125, 250)
# LayerNorm epsilons of the original: torch's default (1e-5) in every transformer block (encoder and
# decoder) and in the encoder's final norm; 1e-6 only in the decoder's final norm.
ENCODER_NORM_EPS, DECODER_NORM_EPS = 1e-5, 1e-6
POSITION_LAYOUTS = ("original", "shifted")
POOL_NORMS = ("encoder", "fc_norm")


@dataclass
class STMEMConfig:
    """Sizes of :class:`STMEM`, ViT-B by default (reference sheet section 2; :data:`ST_MEM_SIZES` for ViT-S).

    Also the fields of the fairseq-signals model ``st_mem``, so every type here must be one omegaconf 2.0
    accepts (no ``from __future__ import annotations`` in this module, lists rather than tuples).
    """

    num_leads: int = field(default=12, metadata={"help": "leads C, in the order I, II, III, aVR, aVL, aVF, V1-V6"})
    seq_len: int = field(
        default=2250,
        metadata={"help": "samples per lead seen by the model, T (9 s at 250 Hz); a multiple of patch_size"},
    )
    patch_size: int = field(default=75, metadata={"help": "samples per patch P (0.3 s at 250 Hz)"})
    embed_dim: int = field(default=768, metadata={"help": "encoder width D (ViT-B 768, ViT-S 384)"})
    depth: int = field(default=12, metadata={"help": "encoder blocks"})
    heads: int = field(default=12, metadata={"help": "encoder attention heads (ViT-B 12, ViT-S 6)"})
    mlp_ratio: float = field(default=4.0, metadata={"help": "MLP width as a multiple of D"})
    qkv_bias: bool = field(default=True, metadata={"help": "bias in the attention qkv projection"})
    decoder_embed_dim: int = field(default=256, metadata={"help": "lead-wise decoder width"})
    decoder_depth: int = field(default=4, metadata={"help": "lead-wise decoder blocks"})
    decoder_heads: int = field(default=4, metadata={"help": "lead-wise decoder attention heads"})
    mask_ratio: float = field(default=0.75, metadata={"help": "share of each lead's patches masked"})
    drop_path: float = field(default=0.0, metadata={"help": "encoder stochastic depth (0 in pretraining)"})
    crop_starts: List[int] = field(
        default_factory=lambda: list(TEST_CROP_STARTS),
        metadata={"help": "starts of the evaluation crops whose representations are averaged"},
    )
    position_layout: str = field(
        default="original",
        metadata={
            "help": "position table: 'original' (ST-MEM: zero vectors for both SEPs, patch j gets sincos(j)) or "
            "'shifted' (this package before the faithful port: SEPs sincos(0) and sincos(N+1), patch j sincos(j+1))"
        },
    )
    pool_norm: str = field(
        default="encoder",
        metadata={
            "help": "downstream pooling: 'encoder' (ST-MEM: mean of the non-SEP block outputs, then the encoder's "
            "final LayerNorm) or 'fc_norm' (this package before: final norm on every token, mean, then a separate "
            "LayerNorm fc_norm); 'fc_norm' is needed to load st_mem checkpoints trained before"
        },
    )
    decoder_block_norm_eps: float = field(
        default=1e-5,
        metadata={"help": "LayerNorm eps inside the decoder blocks (ST-MEM 1e-5; 1e-6 before the faithful port)"},
    )


def position_table(num_patches: int, dim: int, layout: str = "original") -> Tensor:
    """The fixed position rows of one lead's ``[SEP, patch 0 .. patch N-1, SEP]``: ``(N + 2, dim)``.

    ``"original"`` (ST-MEM): rows 0 and ``N + 1`` are zero and row ``j + 1`` is :func:`sincos_1d`'s row ``j``,
    so the SEPs carry no position and the first patch gets ``sincos(0)``. ``"shifted"``: ``sincos_1d(N + 2)``,
    the SEPs at positions 0 and ``N + 1`` and patch ``j`` at ``j + 1``.

    Example:
        >>> table = position_table(30, 8)
        >>> table.shape, bool(table[0].any()), bool(table[-1].any()), table[1, 4].item()
        (torch.Size([32, 8]), False, False, 1.0)
    """
    if layout == "shifted":
        return sincos_1d(num_patches + 2, dim)
    if layout != "original":
        raise ValueError(f"position_layout must be one of {POSITION_LAYOUTS}, got {layout!r}")
    zero = torch.zeros(1, dim)
    return torch.cat([zero, sincos_1d(num_patches, dim), zero])


def _check_length(x: Tensor, seq_len: int) -> None:
    if x.ndim != 3:
        raise ValueError(f"ST-MEM expects (B, C, T) windows, got shape {tuple(x.shape)}")
    if x.shape[-1] < seq_len:
        raise ValueError(
            f"ST-MEM needs windows of at least seq_len={seq_len} samples, got {x.shape[-1]}; preprocess the "
            f"recordings with the preset `st_mem` (250 Hz, 10-s windows of 2500 samples)"
        )


def random_crop(x: Tensor, seq_len: int, generator: Optional[torch.Generator] = None) -> Tensor:
    """One random window of ``seq_len`` samples per signal, all leads together: ``(B, C, T) -> (B, C, seq_len)``.

    Each signal gets its own start, uniform in ``[0, T - seq_len]`` (``generator=None``: torch's global RNG,
    which the fairseq-signals trainer seeds per update).

    Example:
        >>> random_crop(torch.randn(4, 12, 2500), 2250, torch.Generator().manual_seed(0)).shape
        torch.Size([4, 12, 2250])
    """
    _check_length(x, seq_len)
    batch, leads, length = x.shape
    if length == seq_len:
        return x
    device = generator.device if generator is not None else x.device
    starts = torch.randint(0, length - seq_len + 1, (batch,), generator=generator, device=device).to(x.device)
    index = starts[:, None] + torch.arange(seq_len, device=x.device)[None, :]
    return x.gather(2, index[:, None, :].expand(batch, leads, seq_len))


def test_crops(x: Tensor, seq_len: int, starts: Sequence[int] = TEST_CROP_STARTS) -> Tensor:
    """The fixed evaluation crops: ``(B, C, T) -> (K, B, C, seq_len)``, one per start.

    ST-MEM averages its predictions over the crops starting at 0, 125 and 250 of a 2500-sample window.
    Starts beyond ``T - seq_len`` are moved back to ``T - seq_len`` and duplicates dropped, so a window of
    exactly ``seq_len`` samples gives one crop.

    Example:
        >>> test_crops(torch.randn(2, 12, 2500), 2250).shape
        torch.Size([3, 2, 12, 2250])
    """
    _check_length(x, seq_len)
    last = x.shape[-1] - seq_len
    kept = sorted({min(max(int(s), 0), last) for s in starts}) or [0]
    return torch.stack([x[..., s : s + seq_len] for s in kept])


test_crops.__test__ = False  # type: ignore[attr-defined]  # not a test, though pytest's name rule says so


class STMEM(nn.Module):
    """ST-MEM encoder and lead-wise decoder, sized by :class:`STMEMConfig`.

    Shapes: ``x`` (B, C, T) with ``C = num_leads`` and ``T = seq_len``; ``N = T / P`` patches per lead.

    Example:
        >>> model = STMEM(STMEMConfig(embed_dim=32, depth=1, heads=2, decoder_embed_dim=16, decoder_depth=1,
        ...                           decoder_heads=2))
        >>> model.embedding(torch.randn(2, 12, 2250)).shape
        torch.Size([2, 32])
    """

    pos_embed: Tensor
    decoder_pos_embed: Tensor
    #: ST-MEM normalises its targets with the unbiased variance (``torch.var``'s default); read by the
    #: criterion ``masked_reconstruction`` and by :meth:`reconstruct`.
    target_var_unbiased: bool = True

    def __init__(self, cfg: Optional[STMEMConfig] = None) -> None:
        super().__init__()
        cfg = cfg or STMEMConfig()
        if cfg.seq_len % cfg.patch_size != 0:
            raise ValueError(f"seq_len={cfg.seq_len} must be a multiple of patch_size={cfg.patch_size}")
        if cfg.pool_norm not in POOL_NORMS:
            raise ValueError(f"pool_norm must be one of {POOL_NORMS}, got {cfg.pool_norm!r}")
        self.cfg = cfg
        self.num_leads, self.seq_len, self.patch_size = cfg.num_leads, cfg.seq_len, cfg.patch_size
        self.num_patches = cfg.seq_len // cfg.patch_size
        self.embed_dim, self.mask_ratio = cfg.embed_dim, cfg.mask_ratio
        dim, dec_dim = cfg.embed_dim, cfg.decoder_embed_dim
        self.patch_embed = nn.Sequential(
            nn.LayerNorm(cfg.patch_size), nn.Linear(cfg.patch_size, dim), nn.LayerNorm(dim)
        )
        self.register_buffer("pos_embed", position_table(self.num_patches, dim, cfg.position_layout), persistent=False)
        self.sep_embed = nn.Parameter(torch.zeros(dim))
        self.lead_embed = nn.Parameter(torch.zeros(cfg.num_leads, dim))
        self.encoder = Transformer(
            dim, cfg.depth, cfg.heads, cfg.mlp_ratio, cfg.qkv_bias, drop_path=cfg.drop_path, norm_eps=ENCODER_NORM_EPS
        )
        # Only in the old layout: a norm of its own after pooling, which pretraining never trains.
        self.fc_norm: Optional[nn.LayerNorm] = nn.LayerNorm(dim) if cfg.pool_norm == "fc_norm" else None

        self.decoder_embed = nn.Linear(dim, dec_dim)
        self.mask_token = nn.Parameter(torch.zeros(dec_dim))
        self.register_buffer(
            "decoder_pos_embed", position_table(self.num_patches, dec_dim, cfg.position_layout), persistent=False
        )
        self.decoder = Transformer(
            dec_dim, cfg.decoder_depth, cfg.decoder_heads, cfg.mlp_ratio, cfg.qkv_bias, norm_eps=DECODER_NORM_EPS
        )
        for module in self.decoder.blocks.modules():  # the blocks' eps differs from the final norm's in the original
            if isinstance(module, nn.LayerNorm):
                module.eps = cfg.decoder_block_norm_eps
        self.decoder_pred = nn.Linear(dec_dim, cfg.patch_size)
        self._init_weights()

    def _init_weights(self) -> None:
        self.apply(init_weights)
        for param in (self.sep_embed, self.lead_embed, self.mask_token):
            nn.init.normal_(param, std=0.02)

    # ----------------------------------------------------------------------------------- encoder
    def _check_input(self, x: Tensor) -> None:
        if x.ndim != 3 or x.shape[1] != self.num_leads or x.shape[2] != self.seq_len:
            raise ValueError(
                f"ST-MEM takes (B, {self.num_leads}, {self.seq_len}) windows, got {tuple(x.shape)}; crop longer "
                "windows with random_crop/test_crops (preprocessing preset `st_mem`)"
            )

    def _tokens(self, x: Tensor) -> Tensor:
        """Patch tokens with their positions: ``(B, C, T) -> (B, C, N, D)``."""
        self._check_input(x)
        tokens: Tensor = self.patch_embed(patchify(x, self.patch_size)) + self.pos_embed[1:-1]
        return tokens

    def _add_seps(self, tokens: Tensor) -> Tensor:
        """``(B, C, n, D)`` patch tokens -> ``(B, C * (n + 2), D)`` with SEPs and lead embeddings."""
        batch, leads, _, dim = tokens.shape
        left = (self.sep_embed + self.pos_embed[0]).expand(batch, leads, 1, dim)
        right = (self.sep_embed + self.pos_embed[-1]).expand(batch, leads, 1, dim)
        tokens = torch.cat([left, tokens, right], dim=2) + self.lead_embed[None, :, None, :]
        return tokens.flatten(1, 2)

    def forward_encoder(
        self, x: Tensor, mask_ratio: Optional[float] = None, generator: Optional[torch.Generator] = None
    ) -> Tuple[Tensor, Tensor, Tensor]:
        """Mask each lead independently and encode the kept tokens.

        Returns:
            ``latent`` (B, C * (n_keep + 2), D), lead by lead ``[SEP, kept patches, SEP]``;
            ``mask`` (B, C, N) bool, True = masked; ``keep`` (B, C, n_keep) ascending patch indices.
        """
        ratio = self.mask_ratio if mask_ratio is None else mask_ratio
        tokens = self._tokens(x)
        batch, leads, n, dim = tokens.shape
        keep, mask = random_masking(batch * leads, n, ratio, generator=generator, device=x.device)
        kept = tokens.reshape(batch * leads, n, dim).gather(1, keep[:, :, None].expand(-1, -1, dim))
        latent = self.encoder(self._add_seps(kept.view(batch, leads, -1, dim)))
        return latent, mask.view(batch, leads, n), keep.view(batch, leads, -1)

    def encode_blocks(self, x: Tensor) -> Tensor:
        """All tokens without masking, before the final norm: ``(B, C, T) -> (B, C * (N + 2), D)``."""
        tokens = self._add_seps(self._tokens(x))
        for block in self.encoder.blocks:
            tokens = block(tokens)
        return tokens

    def encode(self, x: Tensor) -> Tensor:
        """All tokens without masking, each through the final norm as the decoder sees them:
        ``(B, C, T) -> (B, C * (N + 2), D)`` (lead by lead, SEPs included)."""
        tokens: Tensor = self.encoder.norm(self.encode_blocks(x))
        return tokens

    def embedding(self, x: Tensor) -> Tensor:
        """The downstream representation ``(B, C, T) -> (B, D)``.

        ``pool_norm="encoder"`` (ST-MEM's ``ST_MEM_ViT``): the mean over all leads and patches of the block
        outputs, SEPs left out, then the encoder's final LayerNorm. ``"fc_norm"``: the mean of the normalised
        non-SEP tokens, then ``fc_norm``.
        """
        if self.fc_norm is None:
            tokens = self.encode_blocks(x).view(x.shape[0], self.num_leads, self.num_patches + 2, -1)
            pooled: Tensor = self.encoder.norm(tokens[:, :, 1:-1].mean(dim=(1, 2)))
            return pooled
        tokens = self.encode(x).view(x.shape[0], self.num_leads, self.num_patches + 2, -1)
        legacy: Tensor = self.fc_norm(tokens[:, :, 1:-1].mean(dim=(1, 2)))
        return legacy

    # ----------------------------------------------------------------------------------- decoder
    def forward_decoder(self, latent: Tensor, keep: Tensor) -> Tensor:
        """Decode every lead on its own: ``latent`` (B, C * (n_keep + 2), D), ``keep`` (B, C, n_keep)
        -> predicted patches (B, C, N, P).

        The decoder transformer gets ``(B * C, N + 2, Dd)``: one sequence per lead, the same weights for all,
        no attention across leads.
        """
        batch, leads, n_keep = keep.shape
        hidden = self.decoder_embed(latent).view(batch * leads, n_keep + 2, -1)
        width = hidden.shape[-1]
        patches = self.mask_token.expand(batch * leads, self.num_patches, width)
        patches = patches.scatter(1, keep.reshape(batch * leads, n_keep, 1).expand(-1, -1, width), hidden[:, 1:-1])
        sequence = torch.cat([hidden[:, :1], patches, hidden[:, -1:]], dim=1) + self.decoder_pos_embed
        pred: Tensor = self.decoder_pred(self.decoder(sequence))[:, 1:-1]
        return pred.reshape(batch, leads, self.num_patches, self.patch_size)

    def forward(
        self, x: Tensor, mask_ratio: Optional[float] = None, generator: Optional[torch.Generator] = None
    ) -> Dict[str, Tensor]:
        """``x`` (B, C, T) -> ``pred`` (B, C, N, P), ``target`` (B, C, N, P) raw patches of ``x``,
        ``mask`` (B, C, N) bool (True = masked, the patches the loss scores)."""
        latent, mask, keep = self.forward_encoder(x, mask_ratio, generator)
        return {"pred": self.forward_decoder(latent, keep), "target": patchify(x, self.patch_size), "mask": mask}

    @torch.no_grad()
    def reconstruct(
        self,
        x: Tensor,
        mask_ratio: Optional[float] = None,
        generator: Optional[torch.Generator] = None,
        norm_target: bool = True,
        eps: float = 1e-6,
        unbiased: Optional[bool] = None,
    ) -> Dict[str, Tensor]:
        """Mask, encode and decode ``x`` (B, C, T) for inspection.

        Returns ``original`` (B, C, T); ``masked`` (B, C, T), NaN on masked patches; ``reconstruction``
        (B, C, T), the prediction for every patch. With ``norm_target`` (a model trained on normalised patch
        targets) each predicted patch is mapped back with its target patch's own mean and standard deviation
        (unbiased variance unless ``unbiased=False``; default :attr:`target_var_unbiased`).
        """
        out = self(x, mask_ratio, generator)
        pred, target, mask = out["pred"], out["target"], out["mask"]
        if norm_target:
            mean = target.mean(dim=-1, keepdim=True)
            unbiased = self.target_var_unbiased if unbiased is None else unbiased
            std = (target.var(dim=-1, unbiased=unbiased, keepdim=True) + eps).sqrt()
            pred = pred * std + mean
        masked = target.masked_fill(mask[..., None], float("nan"))
        return {"original": x, "masked": unpatchify(masked), "reconstruction": unpatchify(pred)}

    def crop_embedding(self, x: Tensor, starts: Optional[Sequence[int]] = None) -> Tensor:
        """Evaluation representation of longer windows ``(B, C, T >= seq_len) -> (B, D)``: the mean over the
        test crops at ``starts`` (default ``cfg.crop_starts``) of :meth:`embedding`. Followed by a linear head
        this equals averaging the per-crop logits, which is how ST-MEM scores a window."""
        crops = test_crops(x, self.seq_len, self.cfg.crop_starts if starts is None else starts)
        return self.embedding(crops.flatten(0, 1)).view(crops.shape[0], x.shape[0], -1).mean(dim=0)
