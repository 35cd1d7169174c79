"""Training-step throughput of this package's ST-MEM, ECG-JEPA, LFBT and contrastive CNN against the original code.

One training step is forward, loss, backward and an AdamW step (and the EMA step of ECG-JEPA's target
encoder), on the same random batch, float32, for this package's core modules (:mod:`physioclr_ext.modules`
plus the loss of :mod:`physioclr_ext.losses` the criterion calls) and for the original repositories' own
classes, loaded from checkouts given on the command line (never vendored, never fetched here):

* ``--st-mem PATH`` (bakqui/ST-MEM): ``models.st_mem.ST_MEM`` with ``norm_pix_loss``, its ``forward`` loss;
* ``--ecg-jepa PATH`` (sehunfromdaegu/ECG_JEPA): ``ecg_jepa.ecg_jepa`` and its ``forward`` loss, the EMA update
  of ``pretrain_ECG_JEPA.py``;
* ``--lfbt PATH`` (Aiwiscal/ECG_SSL_LFBT): ``run_pt.LeadFusionBT`` (its class and ``off_diagonal``, read from
  ``run_pt.py``, whose module top level imports torchvision for data loading only) on ``models.vgg_1d.VGG16``;
* ``--contrastive PATH`` (KU-AI4H/Contrastive-ECG): ``models.ECG_CNN_Encoder`` (encoder and its projector) and
  ``utils.NTXentLoss`` (the class only, read from ``utils.py``, whose top level imports matplotlib and sklearn),
  two views per ECG through the encoder one after the other, as its ``train.py``.

The originals need ``einops`` (ST-MEM) and ``timm`` (ECG-JEPA) importable (``PYTHONPATH``). If ``timm`` itself
does not import (its package imports torchvision, whose PyPI build may not load against a CPU-only torch), its
two layers ECG-JEPA uses, ``DropPath`` and ``trunc_normal_``, are loaded from that timm's own files (see
``benchmarks/originals.py``, shared with the tests against the originals).

Sizes: ``tiny`` is ``configs/pretraining/<method>_tiny.yaml``; ``small`` is ViT-S for ST-MEM
(``st_mem_vit_s.yaml``), ``ecg_jepa_small.yaml``, the published LFBT (``lfbt.yaml``) and ``contrastive_cnn.yaml``
(the original's own widths; ``contrastive_cnn_tiny.yaml``'s narrower widths are the original's ``forward`` on layers
built at those widths, since its class hard-codes them). Where the architecture
is the same the original's initial weights are copied into ours (the package's importers); ST-MEM at ``tiny``
is not: the original's attention heads are 64 wide whatever the width (48 wide with 3 heads here), so both
arms are initialised on their own and the original does more work. Both arms use AdamW (lr 1e-4, weight
decay 0.05) over their trainable parameters, the contrastive CNN Adam with its config's learning rate and weight
decay 1e-5 (as the original's ``train.py``). ECG-JEPA's time mask is drawn once and used by both arms every
step (the original's mask sampler is replaced on the instance), so both do the same work. Inputs: ST-MEM
(B, 12, 2250) (the crop is data loading), ECG-JEPA (B, 8, 2500), LFBT two views (B, 8, 5000), contrastive CNN two
views (B, 12, 5000) (the augmentations are data loading). Ours passes both contrastive views through the encoder as
one batch of 2B, as the ``ecg_contrastive`` model does, so its BatchNorm statistics (and first loss) differ from
the original's per-view passes; ``--contrastive-per-view`` times ours view by view (the losses are then the
original's, as the test checks).

Each (method, size) runs in a fresh process that builds both arms, checks that their first-step losses agree
(same weights, same masks; ST-MEM draws its per-lead masks from the same seeded global RNG in both), warms up,
then times ``--repeats`` rounds of ``--steps`` steps per arm, the order of the arms alternating every round.
The table gives the median step time, samples/s and the throughput ratio ours / original, and the commit of
each checkout.

Usage:
    PYTHONPATH=/path/to/deps nice -n 5 python benchmarks/vs_originals.py --st-mem ../ST-MEM \
        --ecg-jepa ../ECG_JEPA --lfbt ../ECG_SSL_LFBT --contrastive ../Contrastive-ECG
"""

from __future__ import annotations

import argparse
import ast
import importlib
import json
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import torch
from torch import Tensor, nn

from physioclr_ext.losses.jepa import jepa_loss
from physioclr_ext.losses.lead_fusion_barlow_twins import lead_fusion_barlow_twins_loss
from physioclr_ext.losses.masked_reconstruction import masked_reconstruction_loss
from physioclr_ext.losses.nt_xent import nt_xent_loss
from physioclr_ext.modules import ecg_jepa_import, lfbt_import, st_mem_import
from physioclr_ext.modules.ecg_jepa import ECGJEPA, ECGJEPAConfig, block_time_mask
from physioclr_ext.modules.encoders import CNNConfig, CNNEncoder
from physioclr_ext.modules.heads import MLPHead
from physioclr_ext.modules.lfbt import LFBT, LFBTConfig
from physioclr_ext.modules.st_mem import STMEM

if str(Path(__file__).resolve().parent) not in sys.path:  # the sibling helper, also when imported from the tests
    sys.path.insert(0, str(Path(__file__).resolve().parent))
from originals import checkout_commit, original_code, timm_layers  # noqa: E402
from step_cost_methods import ST_MEM_SIZES, st_mem_config  # noqa: E402

METHODS = ("st_mem", "ecg_jepa", "lfbt", "contrastive")
SIZES = ("tiny", "small")
OPTION = {
    "st_mem": "st_mem",
    "ecg_jepa": "ecg_jepa",
    "lfbt": "lfbt",
    "contrastive": "contrastive",
}  # argparse dest of each checkout
# CPU batches of about 1-2 s per step on two cores; the configs' batches (16, 256; 16, 64; 8, 128; 16, 128) otherwise.
CPU_BATCH: Dict[Tuple[str, str], int] = {
    ("st_mem", "tiny"): 16,
    ("st_mem", "small"): 2,
    ("ecg_jepa", "tiny"): 16,
    ("ecg_jepa", "small"): 2,
    ("lfbt", "tiny"): 4,
    ("lfbt", "small"): 2,
    ("contrastive", "tiny"): 16,
    ("contrastive", "small"): 16,
}
CONFIG_BATCH: Dict[Tuple[str, str], int] = {
    ("st_mem", "tiny"): 16,
    ("st_mem", "small"): 256,
    ("ecg_jepa", "tiny"): 16,
    ("ecg_jepa", "small"): 64,
    ("lfbt", "tiny"): 8,
    ("lfbt", "small"): 128,
    ("contrastive", "tiny"): 16,
    ("contrastive", "small"): 128,
}
# embed, depth, heads, decoder / predictor embed, depth, heads
ECG_JEPA_SIZES = {"tiny": (32, 2, 2, 16, 1, 2), "small": (384, 6, 16, 192, 6, 12)}
LFBT_PROJECTOR = {"tiny": [128, 128, 128], "small": [2048, 2048, 2048]}
# conv widths, embedding E, projection P, Adam learning rate (contrastive_cnn{_tiny,}.yaml)
CONTRASTIVE_SIZES = {"tiny": ((16, 16, 32, 32, 32), 64, 32, 1e-3), "small": ((32, 32, 64, 64, 64), 256, 128, 1e-5)}
ST_MEM_LEN, ECG_JEPA_LEN, LFBT_LEN, CONTRASTIVE_LEN = 2250, 2500, 5000, 5000
CONTRASTIVE_TEMPERATURE, CONTRASTIVE_WEIGHT_DECAY = 0.07, 1e-5
LR, WEIGHT_DECAY, EMA_MOMENTUM = 1e-4, 0.05, 0.996


# ------------------------------------------------------------------------------ loading the originals
def load_definitions(path: Path, names: Sequence[str], namespace: Dict[str, Any]) -> Dict[str, Any]:
    """Execute only the top-level functions and classes ``names`` of the file ``path`` in ``namespace`` (for scripts
    whose module top level imports what the benchmark does not need); returns the namespace."""
    tree = ast.parse(path.read_text(), str(path))
    wanted = set(names)
    found = [node for node in tree.body if isinstance(node, (ast.FunctionDef, ast.ClassDef)) and node.name in wanted]
    if {node.name for node in found} != wanted:
        raise SystemExit(f"{path} has no {' / '.join(sorted(wanted - {node.name for node in found}))}")
    body: List[ast.stmt] = list(found)
    exec(compile(ast.Module(body=body, type_ignores=[]), str(path), "exec"), namespace)  # noqa: S102
    return namespace


def load_lead_fusion_bt(checkout: str) -> type:
    """The original ``LeadFusionBT`` class, executed from the checkout's ``run_pt.py`` (its class and
    ``off_diagonal`` only: the script's top level imports the data pipeline and torchvision)."""
    with original_code(checkout):
        from models.vgg_1d import VGG16
    namespace = {"torch": torch, "nn": nn, "VGG16": VGG16}
    cls: type = load_definitions(Path(checkout, "run_pt.py"), ["off_diagonal", "LeadFusionBT"], namespace)[
        "LeadFusionBT"
    ]
    return cls


# ------------------------------------------------------------------------------ the two arms of a case
@dataclass
class Arm:
    """One arm: ``step()`` runs one training step and returns the loss."""

    step: Callable[[], float]
    params: int


@dataclass
class Pair:
    ours: Arm
    original: Arm
    batch: int
    same_weights: bool
    note: str = ""


def _trainable(params: Sequence[nn.Parameter]) -> List[nn.Parameter]:
    return [p for p in params if p.requires_grad]


def make_step(
    params: Sequence[nn.Parameter],
    loss_fn: Callable[[], Tensor],
    after: Optional[Callable[[], None]] = None,
    optimizer_fn: Optional[Callable[[List[nn.Parameter]], torch.optim.Optimizer]] = None,
) -> Arm:
    """An arm stepping ``optimizer_fn(trainable params)`` (default AdamW, lr 1e-4, weight decay 0.05) on ``loss_fn``."""
    trainable = _trainable(params)
    optimizer: torch.optim.Optimizer
    if optimizer_fn is None:
        optimizer = torch.optim.AdamW(trainable, lr=LR, weight_decay=WEIGHT_DECAY)
    else:
        optimizer = optimizer_fn(trainable)

    def step() -> float:
        optimizer.zero_grad(set_to_none=True)
        loss = loss_fn()
        loss.backward()
        optimizer.step()
        if after is not None:
            after()
        return float(loss.detach())

    return Arm(step, sum(p.numel() for p in trainable))


def st_mem_pair(
    checkout: str,
    size: str,
    batch: int,
    device: torch.device,
    seed: int = 0,
    dims: Optional[Tuple[int, int, int, int, int, int]] = None,
) -> Pair:
    """``dims`` (embed, depth, heads, decoder embed, depth, heads) replaces the size's when given."""
    embed, depth, heads, d_embed, d_depth, d_heads = dims or ST_MEM_SIZES[size]
    with original_code(checkout):
        from models.st_mem import ST_MEM
    torch.manual_seed(seed)
    original = ST_MEM(
        seq_len=ST_MEM_LEN,
        patch_size=75,
        num_leads=12,
        embed_dim=embed,
        depth=depth,
        num_heads=heads,
        decoder_embed_dim=d_embed,
        decoder_depth=d_depth,
        decoder_num_heads=d_heads,
        norm_pix_loss=True,
    )
    same = embed == heads * 64 and d_embed == d_heads * 64
    if same:
        state = original.state_dict()
        ours = STMEM(st_mem_import.original_config(state))
        ours.load_state_dict(st_mem_import.convert_original_state_dict(state))
        note = ""
    else:
        cfg = st_mem_config((embed, depth, heads, d_embed, d_depth, d_heads))
        ours = STMEM(cfg)
        note = f"own init: the original's heads are 64 wide (inner {heads * 64} vs {embed})"
    original.to(device).train()
    ours.to(device).train()
    x = torch.randn(batch, 12, ST_MEM_LEN, generator=torch.Generator().manual_seed(seed + 1)).to(device)

    def ours_loss() -> Tensor:
        out = ours(x)
        total, logs = masked_reconstruction_loss(
            out["pred"], out["target"], out["mask"], norm_target=True, eps=1e-6, reduction="sum", unbiased=True
        )
        return total / max(int(logs["n_masked"]), 1)

    def original_loss() -> Tensor:
        loss: Tensor = original(x, mask_ratio=0.75)["loss"]
        return loss

    return Pair(
        make_step(list(ours.parameters()), ours_loss),
        make_step(list(original.parameters()), original_loss),
        batch,
        same,
        note,
    )


def ecg_jepa_pair(
    checkout: str, size: str, batch: int, device: torch.device, seed: int = 0, drop_path: float = 0.1
) -> Pair:
    embed, depth, heads, p_embed, p_depth, p_heads = ECG_JEPA_SIZES[size]
    with timm_layers() as how, original_code(checkout):
        module = importlib.import_module("ecg_jepa")
    torch.manual_seed(seed)
    original = module.ecg_jepa(
        encoder_embed_dim=embed,
        encoder_depth=depth,
        encoder_num_heads=heads,
        predictor_embed_dim=p_embed,
        predictor_depth=p_depth,
        predictor_num_heads=p_heads,
        drop_path_rate=drop_path,
        mask_scale=(0.175, 0.225),
        mask_type="block",
        pos_type="sincos",
        c=8,
        p=50,
        t=50,
    )
    state = original.state_dict()
    cfg: ECGJEPAConfig = ecg_jepa_import.original_config(
        state, heads=heads, predictor_heads=p_heads, drop_path=drop_path, mask_scale=[0.175, 0.225]
    )
    ours = ECGJEPA(cfg)
    ours.load_state_dict(ecg_jepa_import.convert_original_state_dict(state))
    mask = block_time_mask(50, (0.175, 0.225), 4, torch.Generator().manual_seed(seed + 2))
    # both arms mask the same time columns every step; the original samples inside its target encoder
    original.target_encoder._make_block_mask = lambda scale: mask.clone()
    original.to(device).train()
    ours.to(device).train()
    x = torch.randn(batch, 8, ECG_JEPA_LEN, generator=torch.Generator().manual_seed(seed + 1)).to(device)

    def ours_loss() -> Tensor:
        out = ours(x, mask=mask)
        total, logs = jepa_loss(out["pred"], out["target"], beta=1.0, normalize_target=True, reduction="sum")
        return total / max(int(logs["n_tokens"]), 1)

    def original_loss() -> Tensor:
        loss: Tensor = original(x)
        return loss

    @torch.no_grad()
    def original_ema() -> None:  # pretrain_ECG_JEPA.py's update after each optimiser step
        for param_q, param_k in zip(original.encoder.parameters(), original.target_encoder.parameters()):
            param_k.data.mul_(EMA_MOMENTUM).add_((1.0 - EMA_MOMENTUM) * param_q.detach().data)

    note = f"{int(mask.sum())} of 50 columns masked" + ("" if how == "timm" else "; timm layers from its files")
    return Pair(
        make_step(list(ours.parameters()), ours_loss, lambda: ours.update_target(EMA_MOMENTUM)),
        make_step(list(original.parameters()), original_loss, original_ema),
        batch,
        True,
        note,
    )


def lfbt_pair(checkout: str, size: str, batch: int, device: torch.device, seed: int = 0) -> Pair:
    lead_fusion_bt = load_lead_fusion_bt(checkout)
    projector = LFBT_PROJECTOR[size]
    args = argparse.Namespace(
        num_leads=8, projector="-".join(map(str, projector)), batch_size=batch, lambd=0.0051, gamma=0.8
    )
    torch.manual_seed(seed)
    original = lead_fusion_bt(args)  # not an nn.Module: lists of per-lead modules, on its own device choice
    groups: List[nn.Module] = [*original.backbone_group, *original.projector_group, *original.bn_group]
    ours = LFBT(LFBTConfig(projector=list(projector)))
    backbones = [b.state_dict() for b in original.backbone_group]
    ours.load_state_dict(lfbt_import.convert_original_state_dict(backbones), strict=False)
    for mine, theirs in zip(ours.projectors, original.projector_group):
        mine.load_state_dict(theirs.state_dict())  # the same Sequential indices: Linear, BN, ReLU, ...
    for group in groups:
        group.to(device).train()
    ours.to(device).train()
    gen = torch.Generator().manual_seed(seed + 1)
    y1, y2 = (torch.randn(batch, 8, LFBT_LEN, generator=gen).to(device) for _ in range(2))

    def ours_loss() -> Tensor:
        z1, z2 = ours(y1)[0], ours(y2)[0]  # one pass per view, as the wrapper
        return lead_fusion_barlow_twins_loss(z1, z2, gamma=0.8, lambd=0.0051, eps=1e-5, gather=False)[0]

    def original_loss() -> Tensor:
        loss: Tensor = original.forward(y1, y2)[0]
        return loss

    params = [p for group in groups for p in group.parameters()]
    return Pair(make_step(list(ours.parameters()), ours_loss), make_step(params, original_loss), batch, True)


def load_contrastive(checkout: str) -> Tuple[type, type]:
    """The original ``ECG_CNN_Encoder`` (``models.py``) and ``NTXentLoss`` (its class only, from ``utils.py``)."""
    with original_code(checkout):
        from models import ECG_CNN_Encoder
    namespace = {"torch": torch, "nn": nn, "F": torch.nn.functional}
    loss_cls: type = load_definitions(Path(checkout, "utils.py"), ["NTXentLoss"], namespace)["NTXentLoss"]
    return ECG_CNN_Encoder, loss_cls


def narrow_original(encoder_cls: Any, channels: Sequence[int], embed: int, projection: int, length: int) -> nn.Module:
    """The original encoder class with its layers built at other widths (its ``__init__`` hard-codes 32, 32, 64, 64,
    64 channels and a 256-wide ``fc1``); ``forward`` and the flatten size are the original's own methods."""
    net: nn.Module = encoder_cls.__new__(encoder_cls)
    nn.Module.__init__(net)
    kernel, pad = 15, 7
    net.signal_length, net.alpha = length, 0.1  # type: ignore[assignment]
    previous = 12
    for i, width in enumerate(channels, start=1):
        setattr(net, f"conv{i}", nn.Conv1d(previous, width, kernel_size=kernel, stride=2, padding=pad))
        setattr(net, f"bn{i}", nn.BatchNorm1d(width))
        setattr(net, f"dropout{i}", nn.Dropout(0.1))
        previous = width
    net.avgpool1, net.avgpool2 = nn.AvgPool1d(kernel, stride=2), nn.AvgPool1d(kernel, stride=2)
    net.fc1 = nn.Linear(net._get_flatten_size(), embed)  # type: ignore[operator]
    net.dropout_fc1 = nn.Dropout(0.2)
    net.contrastive_projector = nn.Sequential(nn.Linear(embed, embed), nn.ReLU(), nn.Linear(embed, projection))
    return net


def copy_contrastive_weights(original: Any, encoder: CNNEncoder, head: MLPHead) -> None:
    """The original ``ECG_CNN_Encoder``'s weights into ours: ``conv{i}`` / ``bn{i}`` into the trunk's i-th Conv1d /
    BatchNorm1d (running statistics too), ``fc1`` into the embedding Linear, the projector into the head."""
    convs = [m for m in encoder.trunk if isinstance(m, nn.Conv1d)]
    norms = [m for m in encoder.trunk if isinstance(m, nn.BatchNorm1d)]
    for i, (conv, norm) in enumerate(zip(convs, norms), start=1):
        conv.load_state_dict(getattr(original, f"conv{i}").state_dict())
        norm.load_state_dict(getattr(original, f"bn{i}").state_dict())
    fc: nn.Module = encoder.fc[0]
    fc.load_state_dict(original.fc1.state_dict())
    projector = original.contrastive_projector
    head[0].load_state_dict(projector[0].state_dict())
    head[2].load_state_dict(projector[2].state_dict())


def contrastive_pair(
    checkout: str, size: str, batch: int, device: torch.device, seed: int = 0, joint_views: bool = True
) -> Pair:
    """``joint_views``: ours encodes both views as one batch of 2B (the ``ecg_contrastive`` model); otherwise one
    view after the other, as the original, so that BatchNorm and dropout see the same batches in both arms."""
    encoder_cls, loss_cls = load_contrastive(checkout)
    channels, embed, projection, lr = CONTRASTIVE_SIZES[size]
    if size == "small":  # the original's own class and defaults (it seeds the global RNG with ``seed``)
        original = encoder_cls(
            signal_length=CONTRASTIVE_LEN, embedded_size=embed, CL_embedded_size=projection, seed=seed
        )
        note = ""
    else:
        torch.manual_seed(seed)
        original = narrow_original(encoder_cls, channels, embed, projection, CONTRASTIVE_LEN)
        note = "the original's forward on layers built at the tiny widths"
    flat = original.fc1.in_features // channels[-1]  # time steps the original flattens
    encoder = CNNEncoder(12, CNNConfig(channels=tuple(channels), embed_dim=embed, pooled_length=flat))
    head = MLPHead(embed, [embed], projection)
    copy_contrastive_weights(original, encoder, head)
    ours = nn.ModuleDict({"encoder": encoder, "head": head})
    how = "both views as one batch (BatchNorm over 2B)" if joint_views else "the views one after the other"
    note = "; ".join(filter(None, [note, f"ours encodes {how}"]))
    original.to(device).train()
    ours.to(device).train()
    criterion = loss_cls(temperature=CONTRASTIVE_TEMPERATURE)
    gen = torch.Generator().manual_seed(seed + 1)
    views = torch.randn(2, batch, 12, CONTRASTIVE_LEN, generator=gen).to(device)  # (V, B, C, T) as the task's batch
    y1, y2 = views[0], views[1]

    def ours_loss() -> Tensor:
        if joint_views:  # ecg_contrastive's forward and the nt_xent criterion
            z = head(encoder(views.flatten(0, 1))).view(2, batch, -1)
            z1, z2 = z[0], z[1]
        else:
            z1, z2 = head(encoder(y1)), head(encoder(y2))
        return nt_xent_loss(z1, z2, temperature=CONTRASTIVE_TEMPERATURE, gather=False)[0]

    def original_loss() -> Tensor:  # train.py: each view through the encoder, NTXentLoss on the projections
        loss: Tensor = criterion(original(y1)[1], original(y2)[1])
        return loss

    def adam(params: List[nn.Parameter]) -> torch.optim.Optimizer:
        return torch.optim.Adam(params, lr=lr, weight_decay=CONTRASTIVE_WEIGHT_DECAY)

    return Pair(
        make_step(list(ours.parameters()), ours_loss, optimizer_fn=adam),
        make_step(list(original.parameters()), original_loss, optimizer_fn=adam),
        batch,
        True,
        note,
    )


BUILDERS: Dict[str, Callable[..., Pair]] = {
    "st_mem": st_mem_pair,
    "ecg_jepa": ecg_jepa_pair,
    "lfbt": lfbt_pair,
    "contrastive": contrastive_pair,
}


# ------------------------------------------------------------------------------ timing
def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def timed_steps(arm: Arm, steps: int, device: torch.device) -> float:
    """Mean seconds per step over ``steps`` consecutive steps."""
    _sync(device)
    start = time.perf_counter()
    for _ in range(steps):
        arm.step()
    _sync(device)
    return (time.perf_counter() - start) / steps


def first_losses(pair: Pair, seed: int = 123) -> Tuple[float, float]:
    """The first step's loss of each arm from the same global RNG state (ST-MEM's masks, drop-path)."""
    torch.manual_seed(seed)
    ours = pair.ours.step()
    torch.manual_seed(seed)
    original = pair.original.step()
    return ours, original


def measure(method: str, size: str, checkout: str, args: argparse.Namespace) -> Dict[str, Any]:
    device = torch.device(args.device)
    table = CPU_BATCH if device.type == "cpu" else CONFIG_BATCH
    batch = args.batch or table[(method, size)]
    extra = {"joint_views": False} if method == "contrastive" and args.contrastive_per_view else {}
    pair = BUILDERS[method](checkout, size, batch, device, **extra)
    loss_ours, loss_original = first_losses(pair)
    for _ in range(args.warmup):
        pair.ours.step()
        pair.original.step()
    times: Dict[str, List[float]] = {"ours": [], "original": []}
    for round_ in range(args.repeats):
        order = ("ours", "original") if round_ % 2 == 0 else ("original", "ours")
        for name in order:
            times[name].append(timed_steps(getattr(pair, name), args.steps, device))
    med = {name: statistics.median(values) for name, values in times.items()}
    return {
        "method": method,
        "size": size,
        "batch": batch,
        "same_weights": pair.same_weights,
        "note": pair.note,
        "params": {"ours": pair.ours.params, "original": pair.original.params},
        "first_loss": {"ours": loss_ours, "original": loss_original},
        "seconds": times,
        "median_s": med,
        "samples_per_s": {name: batch / s for name, s in med.items()},
        "ratio": med["original"] / med["ours"],
        "threads": torch.get_num_threads(),
    }


def run_child(method: str, size: str, checkout: str, args: argparse.Namespace) -> Dict[str, Any]:
    """One (method, size) in a fresh interpreter, so neither arm inherits the other cases' allocator state."""
    cmd = [sys.executable, __file__, "--child", method, size, checkout, "--device", args.device]
    cmd += ["--repeats", str(args.repeats), "--steps", str(args.steps), "--warmup", str(args.warmup)]
    if args.batch:
        cmd += ["--batch", str(args.batch)]
    if args.threads:
        cmd += ["--threads", str(args.threads)]
    if args.contrastive_per_view:
        cmd.append("--contrastive-per-view")
    out = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if out.returncode != 0:
        return {"method": method, "size": size, "error": (out.stderr.strip().splitlines() or ["failed"])[-1]}
    result: Dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


# ------------------------------------------------------------------------------ report
def format_table(results: Sequence[Dict[str, Any]]) -> str:
    header = [
        "method",
        "size",
        "batch",
        "weights",
        "ours ms/step",
        "original ms/step",
        "ours samples/s",
        "original samples/s",
        "ours/original",
        "first loss ours / original",
    ]
    rows = [header]
    for r in results:
        if "error" in r:
            rows.append([r["method"], r["size"], "", "", "", "", "", "", "", f"error: {r['error']}"])
            continue
        med, sps, loss = r["median_s"], r["samples_per_s"], r["first_loss"]
        rows.append(
            [
                r["method"],
                r["size"],
                str(r["batch"]),
                "same" if r["same_weights"] else "own init",
                f"{1000 * med['ours']:.0f}",
                f"{1000 * med['original']:.0f}",
                f"{sps['ours']:.1f}",
                f"{sps['original']:.1f}",
                f"{r['ratio']:.2f}x",
                f"{loss['ours']:.5g} / {loss['original']:.5g}",
            ]
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    lines = ["| " + " | ".join(cell.ljust(w) for cell, w in zip(row, widths)) + " |" for row in rows]
    lines.insert(1, "|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return "\n".join(lines)


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--st-mem", help="checkout of bakqui/ST-MEM (skipped if not given)")
    parser.add_argument("--ecg-jepa", help="checkout of sehunfromdaegu/ECG_JEPA (skipped if not given)")
    parser.add_argument("--lfbt", help="checkout of Aiwiscal/ECG_SSL_LFBT (skipped if not given)")
    parser.add_argument("--contrastive", help="checkout of KU-AI4H/Contrastive-ECG (skipped if not given)")
    parser.add_argument(
        "--contrastive-per-view",
        action="store_true",
        help="ours encodes the two contrastive views one after the other, as the original (default: as one batch, "
        "as the ecg_contrastive model)",
    )
    parser.add_argument("--sizes", nargs="+", choices=SIZES, default=list(SIZES))
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--batch", type=int, help="one batch for every case (default: per case, see CPU_BATCH)")
    parser.add_argument("--repeats", type=int, default=5, help="timed rounds per arm (median taken)")
    parser.add_argument("--steps", type=int, default=2, help="steps per timed round")
    parser.add_argument("--warmup", type=int, default=1, help="untimed steps per arm after the loss check")
    parser.add_argument("--threads", type=int, help="torch threads (default: torch's)")
    parser.add_argument("--json", help="also write the results here")
    parser.add_argument("--child", nargs=3, metavar=("METHOD", "SIZE", "CHECKOUT"), help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv: Optional[Sequence[str]] = None) -> None:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.child:
        method, size, checkout = args.child
        print(json.dumps(measure(method, size, checkout, args)))
        return
    checkouts = {m: getattr(args, OPTION[m]) for m in METHODS if getattr(args, OPTION[m])}
    if not checkouts:
        raise SystemExit("give at least one checkout: --st-mem, --ecg-jepa, --lfbt or --contrastive")
    print(f"torch {torch.__version__}, device {args.device}, threads {args.threads or torch.get_num_threads()}")
    for method in METHODS:
        if method in checkouts:
            print(f"{method}: {checkouts[method]} @ {checkout_commit(checkouts[method])}")
        else:
            print(f"{method}: skipped (no checkout given)")
    results = []
    for method, checkout in checkouts.items():
        for size in args.sizes:
            result = run_child(method, size, checkout, args)
            results.append(result)
            print(f"  done {method} {size}", file=sys.stderr, flush=True)
    print(format_table(results))
    for r in results:
        if r.get("note"):
            print(f"{r['method']} {r['size']}: {r['note']}")
    if args.json:
        Path(args.json).write_text(json.dumps({"commits": {m: checkout_commit(p) for m, p in checkouts.items()},
                                               "results": results}, indent=1))  # fmt: skip


if __name__ == "__main__":
    main()
