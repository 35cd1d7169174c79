"""ECG VQ-VAE (van den Oord et al., NeurIPS 2017) in two forms, both around
:class:`~physioclr_ext.modules.vector_quantizer.VectorQuantizer`.

* :class:`VQHead` (form ``head``, the SMILES-2025 study's ``EncoderVQVAE``, METHODS.md section 7): the
  pooled embedding (B, E) of a frozen pretrained encoder -> [per-feature standardisation, not in the
  study] -> ``Linear(E, latent_dim)`` -> one code per
  window -> MLP decoder ``Linear(latent_dim, decoder_hidden) - ReLU - Linear(decoder_hidden, C * T)``
  reconstructing the input window (B, C, T).
* :class:`ConvVQVAE` (form ``sequence``, the form of VQ-VAE papers): a strided convolutional encoder
  keeps a sequence of latents, (B, C, T) -> (B, T / 2^n_down, latent_dim), one code per step, and a
  transposed-convolution decoder reconstructs (B, C, T). ``T`` is zero-padded to a multiple of
  ``2^n_down`` and the output cropped back.

The study's settings were latent 128, K 64, beta 0.1 with the plain quantiser; its codebook collapsed
in every variant. The defaults here add the cures of the quantiser (EMA, k-means init, re-seeding,
cosine and factorised codes).
"""

from dataclasses import dataclass, field
from typing import Dict, Optional

import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from physioclr_ext.modules.standardize import EmbeddingStandardizer
from physioclr_ext.modules.vector_quantizer import VectorQuantizer, VectorQuantizerConfig

__all__ = ["ConvVQVAE", "ECGVQVAEConfig", "VQHead", "crop_or_check"]


@dataclass
class ECGVQVAEConfig(VectorQuantizerConfig):
    """Sizes of both forms, plus the quantiser's options (no ``from __future__ import annotations``:
    these are also fields of the fairseq-signals model ``ecg_vqvae``)."""

    form: str = field(default="head", metadata={"help": "head (on a frozen pretrained encoder) | sequence"})
    in_channels: int = field(default=12, metadata={"help": "leads C of the reconstructed window"})
    signal_len: int = field(default=2500, metadata={"help": "samples T reconstructed (longer inputs are cropped)"})
    latent_dim: int = field(default=128, metadata={"help": "latent size before quantisation (study: 128)"})
    decoder_hidden: int = field(default=768, metadata={"help": "head form: hidden width of the MLP decoder"})
    standardize_embedding: bool = field(
        default=True,
        metadata={"help": "head form: standardise the frozen embedding per feature (BatchNorm without affine)"},
    )
    conv_channels: int = field(default=64, metadata={"help": "sequence form: width of the conv encoder/decoder"})
    n_down: int = field(default=4, metadata={"help": "sequence form: stride-2 layers (one code per 2^n_down samples)"})


def crop_or_check(x: Tensor, length: int) -> Tensor:
    """The first ``length`` samples of ``x`` (B, C, T); an error when ``T < length``."""
    if x.shape[-1] < length:
        raise ValueError(f"windows of {x.shape[-1]} samples are shorter than signal_len={length}")
    return x[..., :length]


def _vq_outputs(vq: Dict[str, Tensor]) -> Dict[str, Tensor]:
    keys = ("indices", "latent", "commitment_loss", "codebook_loss", "perplexity", "codes_used", "dead_codes")
    return {k: vq[k] for k in keys}


class VQHead(nn.Module):
    """Form ``head``: embedding (B, E) -> quantised latent -> reconstructed window (B, C, T).

    Example:
        >>> head = VQHead(32, ECGVQVAEConfig(in_channels=2, signal_len=100, latent_dim=16, decoder_hidden=24,
        ...                                   codebook_size=8, code_dim=4, kmeans_init=False))
        >>> out = head(torch.randn(5, 32))
        >>> out["recon"].shape, out["indices"].shape
        (torch.Size([5, 2, 100]), torch.Size([5]))
    """

    def __init__(self, embed_dim: int, cfg: ECGVQVAEConfig) -> None:
        super().__init__()
        self.cfg = cfg
        # Frozen embeddings share a large common component; without centring it every latent points the
        # same way and a single code takes them all.
        self.norm: nn.Module = EmbeddingStandardizer(embed_dim) if cfg.standardize_embedding else nn.Identity()
        self.proj = nn.Sequential(self.norm, nn.Linear(embed_dim, cfg.latent_dim))
        self.quantizer = VectorQuantizer(cfg.latent_dim, cfg)
        self.decoder = nn.Sequential(
            nn.Linear(cfg.latent_dim, cfg.decoder_hidden),
            nn.ReLU(),
            nn.Linear(cfg.decoder_hidden, cfg.in_channels * cfg.signal_len),
        )

    def forward(self, h: Tensor) -> Dict[str, Tensor]:
        """``h`` (B, E) -> ``recon`` (B, C, T), ``quantized`` / ``pre_quantization`` (B, latent_dim), and the
        quantiser's ``indices`` (B,), losses and usage statistics."""
        z = self.proj(h)
        vq = self.quantizer(z)
        recon = self.decoder(vq["quantized"]).reshape(len(h), self.cfg.in_channels, self.cfg.signal_len)
        return {"recon": recon, "quantized": vq["quantized"], "pre_quantization": z, **_vq_outputs(vq)}


def _conv_encoder(cfg: ECGVQVAEConfig) -> nn.Sequential:
    layers: list[nn.Module] = []
    width = cfg.in_channels
    for _ in range(cfg.n_down):
        layers += [nn.Conv1d(width, cfg.conv_channels, 4, stride=2, padding=1), nn.ReLU()]
        width = cfg.conv_channels
    layers += [nn.Conv1d(width, cfg.latent_dim, 3, padding=1)]
    return nn.Sequential(*layers)


def _conv_decoder(cfg: ECGVQVAEConfig) -> nn.Sequential:
    layers: list[nn.Module] = [nn.Conv1d(cfg.latent_dim, cfg.conv_channels, 3, padding=1), nn.ReLU()]
    for i in range(cfg.n_down):
        last = i == cfg.n_down - 1
        out = cfg.in_channels if last else cfg.conv_channels
        layers.append(nn.ConvTranspose1d(cfg.conv_channels, out, 4, stride=2, padding=1))
        if not last:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


class ConvVQVAE(nn.Module):
    """Form ``sequence``: (B, C, T) -> codes (B, T', latent) -> reconstruction (B, C, T), T' = ceil(T / 2^n_down).

    Example:
        >>> m = ConvVQVAE(ECGVQVAEConfig(form="sequence", in_channels=2, signal_len=100, latent_dim=8,
        ...                              conv_channels=8, n_down=2, codebook_size=8, code_dim=0))
        >>> out = m(torch.randn(3, 2, 100))
        >>> out["recon"].shape, out["indices"].shape, m.embedding(torch.randn(3, 2, 100)).shape
        (torch.Size([3, 2, 100]), torch.Size([3, 25]), torch.Size([3, 8]))
    """

    def __init__(self, cfg: Optional[ECGVQVAEConfig] = None) -> None:
        super().__init__()
        cfg = cfg or ECGVQVAEConfig(form="sequence")
        self.cfg = cfg
        self.encoder = _conv_encoder(cfg)
        self.quantizer = VectorQuantizer(cfg.latent_dim, cfg)
        self.decoder = _conv_decoder(cfg)

    def encode(self, x: Tensor) -> Tensor:
        """Window (B, C, T) -> latent sequence (B, T', latent_dim) (zero-padded to a multiple of 2^n_down)."""
        x = crop_or_check(x, self.cfg.signal_len)
        pad = (-x.shape[-1]) % (2**self.cfg.n_down)
        z: Tensor = self.encoder(F.pad(x, (0, pad)))
        return z.transpose(1, 2)

    def forward(self, x: Tensor) -> Dict[str, Tensor]:
        """``x`` (B, C, T) -> ``recon`` (B, C, T), ``quantized`` / ``pre_quantization`` (B, T', latent_dim),
        ``indices`` (B, T') and the quantiser's losses and statistics."""
        z = self.encode(x)
        vq = self.quantizer(z)
        recon = self.decoder(vq["quantized"].transpose(1, 2))[..., : self.cfg.signal_len]
        return {"recon": recon, "quantized": vq["quantized"], "pre_quantization": z, **_vq_outputs(vq)}

    def embedding(self, x: Tensor, quantized: bool = True) -> Tensor:
        """Window representation (B, latent_dim): the mean over steps of the (quantised) latents."""
        z = self.encode(x)
        if quantized:
            z = self.quantizer.quantize(z)[0]
        return z.mean(1)
