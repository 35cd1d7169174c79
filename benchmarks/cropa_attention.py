"""Benchmark of ECG-JEPA's CroPA attention: dense masked SDPA against the factorised form.

Usage (from the repository root)::

    nice -n 5 python benchmarks/cropa_attention.py [--leads 1,8,12,19] [--patches 50,100,200]
        [--batch 1] [--heads 16] [--head-dim 48] [--repeats 5] [--threads 0] [--skip-encoder] [--skip-memory]

Table 1: the attention alone, ``q, k, v`` of shape (batch, heads, leads * patches, head_dim) (defaults: the
paper's 16 heads of 48), forward + backward, for every (leads, patches). Table 2: the whole ECG-JEPA encoder
(8 leads x 50 patches, full input, forward + backward) at the tiny config (width 32, depth 2, 2 heads, batch 16)
and the paper config (768, 12, 16, batch 2). Time: median of ``--repeats`` repeats, dense and factorised
interleaved within each repeat, after one warm-up each. Memory: peak memory of one forward + backward, on CUDA
``torch.cuda.max_memory_allocated``; on CPU (Linux) the peak resident set size of one forward + backward in a
fresh subprocess, above its resident size just before the step (the peak ``VmHWM`` is reset through
``/proc/self/clear_refs``; inputs and weights are allocated beforehand, so the figure is the step's working
memory, the parameters' gradients included; the first step is measured, since memory freed by a warm-up stays
in the process and would hide the peak).

On a shared machine pass ``--threads 1``: with other processes on the cores, OpenMP's spinning threads make
many small kernels (the factorised form's batched ``c x c`` products) up to 100x slower, which measures the
contention, not the code.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable, Dict, List

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import torch  # noqa: E402

from physioclr_ext.modules.cropa_attention import cropa_attention, dense_cropa_attention  # noqa: E402
from physioclr_ext.modules.ecg_jepa import CroPAEncoder, ECGJEPAConfig  # noqa: E402

IMPLS = ("dense", "factorised")
ENCODERS = {
    "tiny": (dict(embed_dim=32, depth=2, heads=2), 16),
    "paper": (dict(embed_dim=768, depth=12, heads=16), 2),
}


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--leads", default="1,8,12,19")
    parser.add_argument("--patches", default="50,100,200")
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--heads", type=int, default=16)
    parser.add_argument("--head-dim", type=int, default=48)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    parser.add_argument("--skip-encoder", action="store_true")
    parser.add_argument("--skip-memory", action="store_true")
    parser.add_argument("--memory-cell", help=argparse.SUPPRESS)  # internal: one memory measurement (JSON)
    return parser.parse_args()


def device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def attention_step(impl: str, leads: int, patches: int, args: argparse.Namespace) -> Callable[[], None]:
    """One forward + backward of the attention alone on fixed random inputs."""
    shape = (args.batch, args.heads, leads * patches, args.head_dim)
    q, k, v = (torch.randn(shape, device=device(), requires_grad=True) for _ in range(3))
    fn = dense_cropa_attention if impl == "dense" else cropa_attention

    def step() -> None:
        fn(q, k, v, leads).sum().backward()

    return step


def encoder_step(impl: str, size: str) -> Callable[[], None]:
    """One forward + backward of the ECG-JEPA encoder (8 leads x 50 patches, full input)."""
    kwargs, batch = ENCODERS[size]
    torch.manual_seed(0)
    enc = CroPAEncoder(ECGJEPAConfig(attention=impl, drop_path=0.0, **kwargs)).to(device())  # type: ignore[arg-type]
    x = torch.randn(batch, 8, 2500, device=device())

    def step() -> None:
        enc.zero_grad(set_to_none=True)
        enc(x).sum().backward()

    return step


def sync() -> None:
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def timed(step: Callable[[], None]) -> float:
    sync()
    start = time.perf_counter()
    step()
    sync()
    return time.perf_counter() - start


def interleaved_medians(steps: Dict[str, Callable[[], None]], repeats: int) -> Dict[str, float]:
    for step in steps.values():
        step()  # warm-up
    times: Dict[str, List[float]] = {name: [] for name in steps}
    for _ in range(repeats):
        for name, step in steps.items():
            times[name].append(timed(step))
    return {name: statistics.median(values) for name, values in times.items()}


def build(cell: Dict[str, object], args: argparse.Namespace) -> Callable[[], None]:
    if cell["kind"] == "attention":
        return attention_step(str(cell["impl"]), int(cell["leads"]), int(cell["patches"]), args)  # type: ignore[call-overload]
    return encoder_step(str(cell["impl"]), str(cell["size"]))


def peak_memory_mib(cell: Dict[str, object], args: argparse.Namespace) -> float:
    """Peak working memory (MiB) of one step: CUDA allocator peak, else ru_maxrss growth in a subprocess."""
    if torch.cuda.is_available():
        step = build(cell, args)
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
        step()
        torch.cuda.synchronize()
        return (torch.cuda.max_memory_allocated() - base) / 2**20
    command = [sys.executable, __file__, "--memory-cell", json.dumps(cell)]
    command += ["--batch", str(args.batch), "--heads", str(args.heads), "--head-dim", str(args.head_dim)]
    command += ["--threads", str(args.threads)]
    out = subprocess.run(command, check=True, capture_output=True, text=True)
    return float(out.stdout.strip().splitlines()[-1])


def _status_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"no {field} in /proc/self/status")


def memory_cell(args: argparse.Namespace) -> None:
    """Child process: print the peak resident memory (MiB) of one step above the resident size before it."""
    step = build(json.loads(args.memory_cell), args)
    # the first step: after a warm-up, the allocator's retained memory would hide the step's peak
    before = _status_kib("VmRSS")
    Path("/proc/self/clear_refs").write_text("5")  # reset VmHWM to the current RSS
    step()
    print((_status_kib("VmHWM") - before) / 1024)


def table(rows: List[List[str]], header: List[str]) -> str:
    widths = [max(len(str(r[i])) for r in rows + [header]) for i in range(len(header))]
    lines = ["| " + " | ".join(h.ljust(w) for h, w in zip(header, widths)) + " |"]
    lines.append("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    lines += ["| " + " | ".join(str(c).rjust(w) for c, w in zip(r, widths)) + " |" for r in rows]
    return "\n".join(lines)


def run_cells(cells: List[Dict[str, object]], label: List[str], args: argparse.Namespace) -> List[str]:
    steps = {str(c["impl"]): build(c, args) for c in cells}
    med = interleaved_medians(steps, args.repeats)
    row = label + [f"{med['dense'] * 1e3:.1f}", f"{med['factorised'] * 1e3:.1f}"]
    row.append(f"{med['dense'] / med['factorised']:.2f}x")
    if not args.skip_memory:
        mem = {str(c["impl"]): peak_memory_mib(c, args) for c in cells}
        row += [f"{mem['dense']:.1f}", f"{mem['factorised']:.1f}"]
    return row


def main() -> None:
    args = parse_args()
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    if args.memory_cell:
        memory_cell(args)
        return
    where = "CUDA max_memory_allocated" if torch.cuda.is_available() else "peak RSS above RSS, fresh subprocess"
    print(f"device {device()}, torch {torch.__version__}, {torch.get_num_threads()} threads; memory: {where}")
    header = ["leads", "patches", "tokens", "dense ms", "factorised ms", "speed-up"]
    if not args.skip_memory:
        header += ["dense MiB", "factorised MiB"]
    rows = []
    for leads in [int(s) for s in args.leads.split(",")]:
        for patches in [int(s) for s in args.patches.split(",")]:
            cells: List[Dict[str, object]] = [
                dict(kind="attention", impl=i, leads=leads, patches=patches) for i in IMPLS
            ]
            rows.append(run_cells(cells, [str(leads), str(patches), str(leads * patches)], args))
            print(" ".join(rows[-1]), file=sys.stderr, flush=True)
    print(
        f"\nAttention alone, forward + backward, batch {args.batch}, {args.heads} heads of {args.head_dim}, "
        f"median of {args.repeats}:"
    )
    print(table(rows, header))
    if args.skip_encoder:
        return
    rows = []
    for size, (kwargs, batch) in ENCODERS.items():
        cells = [dict(kind="encoder", impl=i, size=size) for i in IMPLS]
        label = [f"{size} ({kwargs['embed_dim']}/{kwargs['depth']}/{kwargs['heads']})", str(batch)]
        rows.append(run_cells(cells, label, args))
        print(" ".join(rows[-1]), file=sys.stderr, flush=True)
    print(f"\nECG-JEPA encoder (8 leads x 50 patches, full input), forward + backward, median of {args.repeats}:")
    print(table(rows, ["config (width/depth/heads)", "batch"] + header[3:]))


if __name__ == "__main__":
    main()
