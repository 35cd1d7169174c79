"""Training-step throughput of this package's ST-MEM, ECG-JEPA and LFBT against the original code.

One training step is forward, loss, backward and an AdamW step (and the EMA step of ECG-JEPA's target
encoder), on the same random batch, float32, for this package's core modules (:mod:`physioclr_ext.modules`
plus the loss of :mod:`physioclr_ext.losses` the criterion calls) and for the original repositories' own
classes, loaded from checkouts given on the command line (never vendored, never fetched here):

* ``--st-mem PATH`` (bakqui/ST-MEM): ``models.st_mem.ST_MEM`` with ``norm_pix_loss``, its ``forward`` loss;
* ``--ecg-jepa PATH`` (sehunfromdaegu/ECG_JEPA): ``ecg_jepa.ecg_jepa`` and its ``forward`` loss, the EMA update
  of ``pretrain_ECG_JEPA.py``;
* ``--lfbt PATH`` (Aiwiscal/ECG_SSL_LFBT): ``run_pt.LeadFusionBT`` (its class and ``off_diagonal``, read from
  ``run_pt.py``, whose module top level imports torchvision for data loading only) on ``models.vgg_1d.VGG16``.

The originals need ``einops`` (ST-MEM) and ``timm`` (ECG-JEPA) importable (``PYTHONPATH``). If ``timm`` itself
does not import (its package imports torchvision, whose PyPI build may not load against a CPU-only torch), its
two layers ECG-JEPA uses, ``DropPath`` and ``trunc_normal_``, are loaded from that timm's own files.

Sizes: ``tiny`` is ``configs/pretraining/<method>_tiny.yaml``; ``small`` is ViT-S for ST-MEM
(``st_mem_vit_s.yaml``), ``ecg_jepa_small.yaml`` and the published LFBT (``lfbt.yaml``). Where the architecture
is the same the original's initial weights are copied into ours (the package's importers); ST-MEM at ``tiny``
is not: the original's attention heads are 64 wide whatever the width (48 wide with 3 heads here), so both
arms are initialised on their own and the original does more work. Both arms use AdamW (lr 1e-4, weight
decay 0.05) over their trainable parameters. ECG-JEPA's time mask is drawn once and used by both arms every
step (the original's mask sampler is replaced on the instance), so both do the same work. Inputs: ST-MEM
(B, 12, 2250) (the crop is data loading), ECG-JEPA (B, 8, 2500), LFBT two views (B, 8, 5000).

Each (method, size) runs in a fresh process that builds both arms, checks that their first-step losses agree
(same weights, same masks; ST-MEM draws its per-lead masks from the same seeded global RNG in both), warms up,
then times ``--repeats`` rounds of ``--steps`` steps per arm, the order of the arms alternating every round.
The table gives the median step time, samples/s and the throughput ratio ours / original, and the commit of
each checkout.

Usage:
    PYTHONPATH=/path/to/deps nice -n 5 python benchmarks/vs_originals.py --st-mem ../ST-MEM \
        --ecg-jepa ../ECG_JEPA --lfbt ../ECG_SSL_LFBT
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import importlib
import importlib.util
import json
import os
import re
import statistics
import subprocess
import sys
import time
import types
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Optional, Sequence, Tuple

import torch
from torch import Tensor, nn

from physioclr_ext.losses.jepa import jepa_loss
from physioclr_ext.losses.lead_fusion_barlow_twins import lead_fusion_barlow_twins_loss
from physioclr_ext.losses.masked_reconstruction import masked_reconstruction_loss
from physioclr_ext.modules import ecg_jepa_import, lfbt_import, st_mem_import
from physioclr_ext.modules.ecg_jepa import ECGJEPA, ECGJEPAConfig, block_time_mask
from physioclr_ext.modules.lfbt import LFBT, LFBTConfig
from physioclr_ext.modules.st_mem import STMEM, STMEMConfig

METHODS = ("st_mem", "ecg_jepa", "lfbt")
SIZES = ("tiny", "small")
OPTION = {"st_mem": "st_mem", "ecg_jepa": "ecg_jepa", "lfbt": "lfbt"}  # argparse dest of each checkout
# CPU batches of about 1-2 s per step on two cores; the configs' batches (16, 256; 16, 64; 8, 128) otherwise.
CPU_BATCH: Dict[Tuple[str, str], int] = {
    ("st_mem", "tiny"): 16,
    ("st_mem", "small"): 2,
    ("ecg_jepa", "tiny"): 16,
    ("ecg_jepa", "small"): 2,
    ("lfbt", "tiny"): 4,
    ("lfbt", "small"): 2,
}
CONFIG_BATCH: Dict[Tuple[str, str], int] = {
    ("st_mem", "tiny"): 16,
    ("st_mem", "small"): 256,
    ("ecg_jepa", "tiny"): 16,
    ("ecg_jepa", "small"): 64,
    ("lfbt", "tiny"): 8,
    ("lfbt", "small"): 128,
}
# embed, depth, heads, decoder / predictor embed, depth, heads
ST_MEM_SIZES = {"tiny": (48, 2, 3, 32, 1, 2), "small": (384, 12, 6, 256, 4, 4)}
ECG_JEPA_SIZES = {"tiny": (32, 2, 2, 16, 1, 2), "small": (384, 6, 16, 192, 6, 12)}
LFBT_PROJECTOR = {"tiny": [128, 128, 128], "small": [2048, 2048, 2048]}
ST_MEM_LEN, ECG_JEPA_LEN, LFBT_LEN = 2250, 2500, 5000
LR, WEIGHT_DECAY, EMA_MOMENTUM = 1e-4, 0.05, 0.996


# ------------------------------------------------------------------------------ loading the originals
@contextlib.contextmanager
def original_code(checkout: str) -> Iterator[None]:
    """The checkout importable (ST-MEM and LFBT both have a top-level ``models``), sys.modules restored after."""
    before = dict(sys.modules)
    for name in [n for n in sys.modules if n in ("models", "ecg_jepa", "pos_encoding") or n.startswith("models.")]:
        del sys.modules[name]
    sys.path.insert(0, checkout)
    try:
        yield
    finally:
        sys.path.remove(checkout)
        root = os.path.realpath(checkout) + os.sep
        for name, module in list(sys.modules.items()):
            if os.path.realpath(getattr(module, "__file__", None) or "/").startswith(root):
                del sys.modules[name]
        sys.modules.update({n: m for n, m in before.items() if n not in sys.modules})


def ensure_timm_layers() -> str:
    """``timm.models.layers`` importable for the original ECG-JEPA; returns how (``timm`` or its layer files)."""
    try:
        importlib.import_module("timm.models.layers")
        return "timm"
    except ImportError as exc:
        spec = importlib.util.find_spec("timm")
        if spec is None or not spec.submodule_search_locations:
            raise SystemExit(f"the original ECG-JEPA needs timm importable ({exc})") from exc
        for name in [n for n in sys.modules if n == "timm" or n.startswith("timm.")]:
            del sys.modules[name]  # the half-imported package
    root = Path(list(spec.submodule_search_locations)[0])
    for name, path in (("timm", root), ("timm.layers", root / "layers"), ("timm.models", root / "models")):
        package = types.ModuleType(name)
        package.__path__ = [str(path)]  # a package whose __init__ is not run
        sys.modules[name] = package
    drop = importlib.import_module("timm.layers.drop")
    init = importlib.import_module("timm.layers.weight_init")
    layers = types.ModuleType("timm.models.layers")
    layers.DropPath, layers.trunc_normal_ = drop.DropPath, init.trunc_normal_  # type: ignore[attr-defined]
    sys.modules["timm.models.layers"] = layers
    return f"timm's layer files ({root})"


def load_lead_fusion_bt(checkout: str) -> type:
    """The original ``LeadFusionBT`` class, executed from the checkout's ``run_pt.py`` (its class and
    ``off_diagonal`` only: the script's top level imports the data pipeline and torchvision)."""
    with original_code(checkout):
        from models.vgg_1d import VGG16
    path = Path(checkout, "run_pt.py")
    tree = ast.parse(path.read_text(), str(path))
    wanted = {"off_diagonal", "LeadFusionBT"}
    found = [node for node in tree.body if isinstance(node, (ast.FunctionDef, ast.ClassDef)) and node.name in wanted]
    if {node.name for node in found} != wanted:
        raise SystemExit(f"{path} has no LeadFusionBT / off_diagonal")
    namespace: Dict[str, Any] = {"torch": torch, "nn": nn, "VGG16": VGG16}
    body: List[ast.stmt] = list(found)
    exec(compile(ast.Module(body=body, type_ignores=[]), str(path), "exec"), namespace)  # noqa: S102
    cls: type = namespace["LeadFusionBT"]
    return cls


def checkout_commit(path: str) -> str:
    """``git -C path rev-parse HEAD``; without git metadata, a COMMIT / REVISION file or a 40-hex name in the path."""
    try:
        out = subprocess.run(["git", "-C", path, "rev-parse", "HEAD"], capture_output=True, text=True, check=False)
        if out.returncode == 0 and re.fullmatch(r"[0-9a-f]{40}", out.stdout.strip()):
            return out.stdout.strip()
    except OSError:
        pass
    for name in ("COMMIT", "REVISION", ".commit"):
        file = Path(path, name)
        if file.is_file():
            return file.read_text().strip().split()[0]
    found = re.search(r"[0-9a-f]{40}", os.path.realpath(path))
    return found.group(0) if found else "unknown (no .git)"


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
    params: Sequence[nn.Parameter], loss_fn: Callable[[], Tensor], after: Optional[Callable[[], None]] = None
) -> Arm:
    trainable = _trainable(params)
    optimizer = torch.optim.AdamW(trainable, lr=LR, weight_decay=WEIGHT_DECAY)

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
        cfg = STMEMConfig(
            embed_dim=embed,
            depth=depth,
            heads=heads,
            decoder_embed_dim=d_embed,
            decoder_depth=d_depth,
            decoder_heads=d_heads,
        )
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
    how = ensure_timm_layers()
    with original_code(checkout):
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


BUILDERS: Dict[str, Callable[..., Pair]] = {"st_mem": st_mem_pair, "ecg_jepa": ecg_jepa_pair, "lfbt": lfbt_pair}


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
    pair = BUILDERS[method](checkout, size, batch, device)
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
        raise SystemExit("give at least one checkout: --st-mem, --ecg-jepa or --lfbt")
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
