"""How a pretraining step's cost grows with the window length and the lead count, per method.

Usage (from the repository root; any environment with the package, fairseq-signals not needed)::

    nice -n 10 python benchmarks/step_cost.py [--size tiny|small] [--methods st_mem ecg_jepa ...]
        [--lengths 2500 5000 10000] [--leads 1 8 12] [--steps 5] [--warmup 2] [--threads 1] [--batch-size B]

For every (method, length, leads) a fresh subprocess builds the method from the package core
(``benchmarks/step_cost_methods.py``: the modules and loss its registered wrapper composes, at the sizes of
``configs/pretraining/<method>_tiny.yaml`` or, with ``--size small``, of the small / paper config), runs
``--warmup`` training steps (forward, loss, backward, AdamW step; ECG-JEPA also its EMA step) and then
``--steps`` timed ones on one random batch, and reports

* the median step time, and
* the peak memory of the step: the process's peak RSS (``resource.getrusage(RUSAGE_SELF).ru_maxrss``) at the
  end minus its RSS (``/proc/self/statm``) just before the model is built, so it counts the weights, the
  batch, the optimiser state, the activations kept for backward and the gradients, not torch itself.

Printed: one table of step time and one of peak memory, rows (method, leads), columns the lengths, and the
growth from the shortest to the longest window. Absolute times depend on the machine and its load; the
ratios between columns are the point. A combination a method cannot take is printed as ``skip`` with the
reason below the table.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

DEFAULT_METHODS = (
    "contrastive_cnn",
    "cnn_transformer",
    "clocs_cmsc",
    "ecg_mae",
    "st_mem",
    "ecg_jepa",
    "lfbt",
    "physioclr",
)


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", choices=("tiny", "small"), default="tiny")
    parser.add_argument("--methods", nargs="+", default=list(DEFAULT_METHODS))
    parser.add_argument("--lengths", nargs="+", type=int, default=[2500, 5000, 10000], help="samples per lead")
    parser.add_argument("--leads", nargs="+", type=int, default=[1, 8, 12])
    parser.add_argument("--steps", type=int, default=5, help="timed steps (median)")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps first")
    parser.add_argument("--threads", type=int, default=1, help="torch threads per run (0: torch's default)")
    parser.add_argument("--batch-size", type=int, default=None, help="default: the tiny config's")
    parser.add_argument("--json", default=None, help="also write the results to this file")
    parser.add_argument("--child", nargs=3, metavar=("METHOD", "LENGTH", "LEADS"), help=argparse.SUPPRESS)
    return parser.parse_args(argv)


# ------------------------------------------------------------------------------------------- one run
def rss_mib() -> float:
    """This process's resident set size now, in MiB (Linux)."""
    with open("/proc/self/statm") as f:
        pages = int(f.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def peak_rss_mib() -> float:
    """This process's peak resident set size so far, in MiB (``ru_maxrss`` is in KiB on Linux)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def warm_torch() -> None:
    """One small step of every kind of layer the methods use, so that torch's lazily loaded kernels and
    workspaces are in the baseline RSS rather than counted as the first case's memory."""
    import torch
    from torch import nn

    model = nn.Sequential(nn.Conv1d(2, 4, 3), nn.BatchNorm1d(4), nn.MaxPool1d(2), nn.Flatten(1), nn.Linear(28, 8))
    attention = nn.TransformerEncoderLayer(8, 2, 16, batch_first=True)
    params = [*model.parameters(), *attention.parameters()]
    optimizer = torch.optim.AdamW(params)
    out = attention(model(torch.randn(3, 2, 16)).view(3, 1, 8))
    nn.functional.smooth_l1_loss(nn.functional.layer_norm(out, (8,)), out.detach()).backward()
    optimizer.step()


def measure(method: str, length: int, leads: int, args: argparse.Namespace) -> Dict[str, Any]:
    """Build one case and time its steps in this process (the child side)."""
    import torch
    from step_cost_methods import Skip, build_case, make_optimizer, train_step

    if args.threads > 0:
        torch.set_num_threads(args.threads)
    warm_torch()
    torch.manual_seed(0)
    base = rss_mib()
    try:
        case = build_case(method, length, leads, args.size, args.batch_size)
    except Skip as exc:
        return {"skip": str(exc)}
    optimizer = make_optimizer(case.model)
    times = []
    for step in range(args.warmup + args.steps):
        start = time.perf_counter()
        train_step(case, optimizer)
        if step >= args.warmup:
            times.append(time.perf_counter() - start)
    return {
        "step_ms": 1000 * statistics.median(times),
        "peak_mib": peak_rss_mib() - base,
        "batch": case.batch_size,
        "params": sum(p.numel() for p in case.model.parameters() if p.requires_grad),
        "notes": case.notes,
    }


def run_child(method: str, length: int, leads: int, args: argparse.Namespace) -> Dict[str, Any]:
    """:func:`measure` in a fresh interpreter, so each peak RSS is that case's alone."""
    command = [sys.executable, __file__, "--child", method, str(length), str(leads), "--size", args.size]
    command += ["--steps", str(args.steps), "--warmup", str(args.warmup), "--threads", str(args.threads)]
    if args.batch_size:
        command += ["--batch-size", str(args.batch_size)]
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        tail = done.stderr.strip().splitlines()[-1:] or ["no output"]
        return {"skip": f"failed (exit {done.returncode}): {tail[0]}"}
    result: Dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


# ------------------------------------------------------------------------------------------- tables
def growth(first: Optional[float], last: Optional[float]) -> str:
    """``last / first`` as ``"4.1x"``, or ``"-"`` when either is missing or the first is not positive."""
    if first is None or last is None or first <= 0:
        return "-"
    return f"{last / first:.1f}x"


def cell(result: Optional[Dict[str, Any]], key: str) -> Optional[float]:
    """The number ``key`` of a result, None for a skipped or missing one."""
    if result is None or "skip" in result:
        return None
    return float(result[key])


def format_table(
    results: Dict[str, Dict[int, Dict[int, Dict[str, Any]]]], key: str, lengths: Sequence[int], title: str
) -> str:
    """One table: rows (method, leads), columns ``lengths``, then the growth from the first to the last length.

    ``results[method][leads][length]`` is a result of :func:`measure` (``{"skip": reason}`` when skipped).
    """
    head = f"{'method':<16}{'leads':>6}{'batch':>6}" + "".join(f"{n:>10}" for n in lengths)
    head += f"{f'{lengths[-1]}/{lengths[0]}':>12}"
    lines = [title, head, "-" * len(head)]
    for method, by_leads in results.items():
        for leads, by_length in by_leads.items():
            values = [cell(by_length.get(n), key) for n in lengths]
            batches = {r["batch"] for r in by_length.values() if "batch" in r}
            batch = str(batches.pop()) if len(batches) == 1 else "-"
            row = f"{method:<16}{leads:>6}{batch:>6}"
            row += "".join(f"{v:>10.1f}" if v is not None else f"{'skip':>10}" for v in values)
            lines.append(row + f"{growth(values[0], values[-1]):>12}")
    return "\n".join(lines)


def skip_reasons(results: Dict[str, Dict[int, Dict[int, Dict[str, Any]]]]) -> List[str]:
    """One line per distinct (method, reason) of the skipped cells."""
    seen: Dict[tuple, List[str]] = {}
    for method, by_leads in results.items():
        for leads, by_length in by_leads.items():
            for length, result in by_length.items():
                if "skip" in result:
                    seen.setdefault((method, result["skip"]), []).append(f"{leads}x{length}")
    return [f"{method} skipped ({', '.join(cases)}): {reason}" for (method, reason), cases in seen.items()]


def main() -> None:
    args = parse_args()
    if args.child:
        method, length, leads = args.child
        print(json.dumps(measure(method, int(length), int(leads), args)))
        return
    results: Dict[str, Dict[int, Dict[int, Dict[str, Any]]]] = {}
    for method in args.methods:
        for leads in args.leads:
            for length in args.lengths:
                result = run_child(method, length, leads, args)
                results.setdefault(method, {}).setdefault(leads, {})[length] = result
                print(f"  {method} {leads} leads x {length}: {result}", file=sys.stderr, flush=True)
    threads = args.threads or "default"
    common = f"--size {args.size}, median of {args.steps} steps after {args.warmup}, torch threads {threads}"
    print(format_table(results, "step_ms", args.lengths, f"Training step time, ms ({common})"))
    print()
    title = "Peak memory of the step, MiB (peak RSS, ru_maxrss, minus the RSS before building the model)"
    print(format_table(results, "peak_mib", args.lengths, title))
    for line in skip_reasons(results):
        print(line)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
