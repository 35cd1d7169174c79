"""The pretraining methods of ``benchmarks/step_cost.py``, composed from the package core.

Each builder mirrors its registered wrapper (``physioclr_ext/models/*.py`` plus its criterion) with the
modules of :mod:`physioclr_ext.modules` and the losses of :mod:`physioclr_ext.losses`, without
fairseq-signals, so the benchmark runs on any Python the package supports. Sizes are those of
``configs/pretraining/<method>_tiny.yaml`` (``size="tiny"``) or of the small / paper config
(``size="small"``); the batch size is the tiny config's unless given. Inputs are random tensors of the
shape the task would hand over (views already made: augmentations are data-loading work, not part of
the step).

How a method meets a window length ``L`` and a lead count ``C`` it was not published with (a user who
trains on longer windows changes the same option):

* contrastive CNN / CNN-transformer, LFBT: any ``L`` and ``C`` (adaptive pooling; LFBT: one VGG per lead,
  leads II for 1, II, III, V1-V6 for 8, all twelve for 12);
* CLOCS CMSC: the two views are adjacent windows of ``L`` samples each; ``input_length = L``;
* ECG MAE: ``max_patches`` raised to ``L / patch_size`` where the config's 64 is too few (a fixed sin-cos
  table: no parameter changes);
* ST-MEM: ``seq_len = 0.9 L`` (the configs crop 2,250 of 2,500), a multiple of ``patch_size`` 75;
* ECG-JEPA: ``seq_len = L``; ``num_leads`` 8 (1 lead: ``leads=[0]``) or 12.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional, Tuple

import torch
from torch import Tensor, nn

from physioclr_ext.losses.clocs import clocs_loss
from physioclr_ext.losses.jepa import jepa_loss
from physioclr_ext.losses.lead_fusion_barlow_twins import lead_fusion_barlow_twins_loss
from physioclr_ext.losses.masked_reconstruction import masked_reconstruction_loss
from physioclr_ext.losses.nt_xent import nt_xent_loss
from physioclr_ext.modules.ecg_jepa import ECGJEPA, ECGJEPAConfig
from physioclr_ext.modules.ecg_mae import ECGMAE, ECGMAEConfig
from physioclr_ext.modules.encoders import build_encoder
from physioclr_ext.modules.heads import MLPHead
from physioclr_ext.modules.lfbt import CANONICAL_LEADS, LFBT, LFBT_LEADS, LFBTConfig
from physioclr_ext.modules.st_mem import STMEM, STMEMConfig, random_crop

SIZES = ("tiny", "small")


class Skip(Exception):
    """This (method, length, leads) is not a valid configuration; the message says why."""


@dataclass
class Case:
    """One method at one input shape: ``loss(model, inputs)`` is the training forward and loss."""

    model: nn.Module
    inputs: Dict[str, Any]
    loss: Callable[[nn.Module, Dict[str, Any]], Tensor]
    batch_size: int
    after_step: Optional[Callable[[], None]] = None
    notes: List[str] = field(default_factory=list)


# ------------------------------------------------------------------------------ contrastive (views)
class ContrastiveNet(nn.Module):
    """Encoder + projection head of the ``ecg_contrastive`` model: views (V, B, C, T) -> z (V, B, P)."""

    def __init__(self, encoder: str, in_channels: int, embed_dim: int, projection_dim: int, **args: Any) -> None:
        super().__init__()
        self.encoder = build_encoder(encoder, in_channels, embed_dim=embed_dim, **args)
        self.head: nn.Module = MLPHead(embed_dim, [embed_dim], projection_dim) if projection_dim > 0 else nn.Identity()

    def forward(self, views: Tensor) -> Tensor:
        n_views, batch = views.shape[:2]
        return self.head(self.encoder(views.flatten(0, 1))).view(n_views, batch, -1)


def _views(batch: int, leads: int, length: int, n_views: int = 2) -> Dict[str, Any]:
    return {"views": torch.randn(n_views, batch, leads, length)}


def _nt_xent(temperature: float) -> Callable[[nn.Module, Dict[str, Any]], Tensor]:
    def loss(model: nn.Module, inputs: Dict[str, Any]) -> Tensor:
        z = model(inputs["views"])
        return nt_xent_loss(z[0], z[1], temperature, gather=False)[0]

    return loss


CNN_TINY = {"channels": [16, 16, 32, 32, 32]}
CONTRASTIVE_SIZES = {  # (embed_dim, projection_dim, encoder_args) of *_tiny.yaml and the paper config
    ("cnn", "tiny"): (64, 32, CNN_TINY),
    ("cnn", "small"): (256, 128, {}),
    ("cnn_transformer", "tiny"): (64, 32, {**CNN_TINY, "heads": 2, "transformer_layers": 1, "feedforward_dim": 64}),
    ("cnn_transformer", "small"): (256, 128, {"heads": 2, "transformer_layers": 1}),
}


def contrastive(encoder: str) -> Callable[..., Case]:
    def build(length: int, leads: int, size: str, batch_size: Optional[int] = None) -> Case:
        embed, proj, args = CONTRASTIVE_SIZES[(encoder, size)]
        batch = batch_size or 16
        model = ContrastiveNet(encoder, leads, embed, proj, **args)
        return Case(model, _views(batch, leads, length), _nt_xent(0.07), batch)

    return build


def clocs_cmsc(length: int, leads: int, size: str, batch_size: Optional[int] = None) -> Case:
    """CMSC: two adjacent windows of ``length`` samples are the two views (``input_length = length``)."""
    batch = batch_size or 16
    model = ContrastiveNet("clocs_cnn", leads, 64 if size == "tiny" else 128, 0, input_length=length)
    inputs = {**_views(batch, leads, length), "patient_id": torch.arange(batch) // 2}

    def loss(model: nn.Module, inputs: Dict[str, Any]) -> Tensor:
        return clocs_loss(model(inputs["views"]), inputs["patient_id"], 0.1, gather=False)[0]

    return Case(model, inputs, loss, batch)


# ------------------------------------------------------------------------------ masked reconstruction
def _masked_mse(unbiased: bool, crop: Optional[int] = None) -> Callable[[nn.Module, Dict[str, Any]], Tensor]:
    """The ``masked_reconstruction`` criterion, divided by the masked patches as the trainer divides."""

    def loss(model: nn.Module, inputs: Dict[str, Any]) -> Tensor:
        source = inputs["source"] if crop is None else random_crop(inputs["source"], crop)
        out = model(source)
        total, logs = masked_reconstruction_loss(
            out["pred"], out["target"], out["mask"], norm_target=True, eps=1e-6, reduction="sum", unbiased=unbiased
        )
        return total / max(int(logs["n_masked"]), 1)

    return loss


ECG_MAE_SIZES = {  # embed, depth, heads, decoder embed, decoder depth, decoder heads, mask ratio
    "tiny": (64, 2, 4, 32, 1, 2, 0.75),
    "small": (128, 4, 4, 64, 2, 4, 0.6),
}


def ecg_mae(length: int, leads: int, size: str, batch_size: Optional[int] = None) -> Case:
    embed, depth, heads, d_embed, d_depth, d_heads, ratio = ECG_MAE_SIZES[size]
    patches = length // 125
    cfg = ECGMAEConfig(
        in_channels=leads,
        patch_size=125,
        max_patches=max(64, patches),
        embed_dim=embed,
        depth=depth,
        heads=heads,
        decoder_embed_dim=d_embed,
        decoder_depth=d_depth,
        decoder_heads=d_heads,
        mask_ratio=ratio,
    )
    batch = batch_size or 16
    notes = [f"max_patches={patches}"] if patches > 64 else []
    return Case(ECGMAE(cfg), {"source": torch.randn(batch, leads, length)}, _masked_mse(False), batch, notes=notes)


ST_MEM_SIZES = {  # embed, depth, heads, decoder embed, decoder depth, decoder heads (ViT-S tiny / ViT-S)
    "tiny": (48, 2, 3, 32, 1, 2),
    "small": (384, 12, 6, 256, 4, 4),
}


def st_mem_seq_len(length: int, patch_size: int = 75) -> int:
    """The crop ST-MEM sees of a ``length``-sample window: 90 % (2,250 of 2,500), down to a multiple of P."""
    return (length * 9 // 10) // patch_size * patch_size


def st_mem_config(dims: Tuple[int, int, int, int, int, int], **fields: Any) -> STMEMConfig:
    """``STMEMConfig`` from ``(embed, depth, heads, decoder embed, decoder depth, decoder heads)`` (a
    :data:`ST_MEM_SIZES` entry) and other fields."""
    embed, depth, heads, d_embed, d_depth, d_heads = dims
    return STMEMConfig(
        embed_dim=embed,
        depth=depth,
        heads=heads,
        decoder_embed_dim=d_embed,
        decoder_depth=d_depth,
        decoder_heads=d_heads,
        **fields,
    )


def st_mem(length: int, leads: int, size: str, batch_size: Optional[int] = None) -> Case:
    seq_len = st_mem_seq_len(length)
    cfg = st_mem_config(ST_MEM_SIZES[size], num_leads=leads, seq_len=seq_len)
    batch = batch_size or 16
    source = {"source": torch.randn(batch, leads, length)}
    return Case(STMEM(cfg), source, _masked_mse(True, crop=seq_len), batch, notes=[f"seq_len={seq_len}"])


# ------------------------------------------------------------------------------ ECG-JEPA
ECG_JEPA_SIZES = {  # embed, depth, heads, predictor embed, predictor depth, predictor heads
    "tiny": (32, 2, 2, 16, 1, 2),
    "small": (384, 6, 16, 192, 6, 12),
}


def ecg_jepa(length: int, leads: int, size: str, batch_size: Optional[int] = None) -> Case:
    if length % 50:
        raise Skip(f"ECG-JEPA needs a multiple of patch_size 50 samples, got {length}")
    if leads > 12:
        raise Skip("ECG-JEPA's lead table has at most 12 rows here")
    embed, depth, heads, p_embed, p_depth, p_heads = ECG_JEPA_SIZES[size]
    cfg = ECGJEPAConfig(
        num_leads=max(8, leads),
        leads=list(range(leads)) if leads < 8 else None,
        seq_len=length,
        embed_dim=embed,
        depth=depth,
        heads=heads,
        predictor_embed_dim=p_embed,
        predictor_depth=p_depth,
        predictor_heads=p_heads,
    )
    net = ECGJEPA(cfg)
    batch = batch_size or 16

    def loss(model: nn.Module, inputs: Dict[str, Any]) -> Tensor:
        out = model(inputs["source"])
        total, logs = jepa_loss(out["pred"], out["target"], beta=1.0, normalize_target=True, reduction="sum")
        return total / max(int(logs["n_tokens"]), 1)

    # The wrapper applies the EMA step owed for the last update at the next forward; same work per step.
    return Case(net, {"source": torch.randn(batch, leads, length)}, loss, batch, lambda: net.update_target(0.996))


# ------------------------------------------------------------------------------ LFBT
def lfbt_leads(leads: int) -> List[str]:
    """The lead names of an LFBT with ``leads`` inputs: II; the original's eight; all twelve."""
    by_count = {1: ["II"], 8: list(LFBT_LEADS), 12: list(CANONICAL_LEADS)}
    if leads not in by_count:
        raise Skip(f"LFBT lead sets are defined here for 1, 8 or 12 leads, not {leads}")
    return by_count[leads]


def lfbt(length: int, leads: int, size: str, batch_size: Optional[int] = None) -> Case:
    projector = [128, 128, 128] if size == "tiny" else [2048, 2048, 2048]
    net = LFBT(LFBTConfig(leads=lfbt_leads(leads), projector=projector))
    batch = batch_size or 8

    def loss(model: nn.Module, inputs: Dict[str, Any]) -> Tensor:
        z1, z2 = (model(view)[0] for view in inputs["views"])  # one pass per view, as the wrapper
        return lead_fusion_barlow_twins_loss(z1, z2, gamma=0.8, lambd=0.0051, eps=1e-5, gather=False)[0]

    return Case(net, _views(batch, leads, length), loss, batch)


def physioclr(length: int, leads: int, size: str, batch_size: Optional[int] = None) -> Case:
    raise Skip(
        "its encoder is fairseq-signals' wav2vec 2.0 (physioclr_ext/models/physioclr.py), not a core module; "
        "the core holds only its decoder, peak head and loss"
    )


METHODS: Dict[str, Callable[..., Case]] = {
    "contrastive_cnn": contrastive("cnn"),
    "cnn_transformer": contrastive("cnn_transformer"),
    "clocs_cmsc": clocs_cmsc,
    "ecg_mae": ecg_mae,
    "st_mem": st_mem,
    "ecg_jepa": ecg_jepa,
    "lfbt": lfbt,
    "physioclr": physioclr,
}


def build_case(method: str, length: int, leads: int, size: str = "tiny", batch_size: Optional[int] = None) -> Case:
    """The :class:`Case` of ``method`` at windows of ``length`` samples and ``leads`` leads.

    Raises:
        KeyError: an unknown method or size.
        Skip: the combination is not valid for the method.
    """
    if size not in SIZES:
        raise KeyError(f"size must be one of {SIZES}, got {size!r}")
    return METHODS[method](length, leads, size, batch_size)


def train_step(case: Case, optimizer: torch.optim.Optimizer) -> float:
    """One step: forward, loss, backward, optimiser step (and the EMA step where the method has one)."""
    optimizer.zero_grad(set_to_none=True)
    loss = case.loss(case.model, case.inputs)
    loss.backward()
    optimizer.step()
    if case.after_step is not None:
        case.after_step()
    return float(loss.detach())


def make_optimizer(model: nn.Module) -> torch.optim.Optimizer:
    """AdamW over the trainable parameters (ECG-JEPA's target encoder has none)."""
    return torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4, weight_decay=0.05)
