"""Paired comparison over pretraining seeds: several ``ssl_table.py`` runs, one per seed, on one table.

Usage (from the repository root)::

    python benchmarks/ssl_table_seeds.py DIR [DIR ...] [--method NAME] [--task a] [--protocol linear]
        [--n 100] [--metric auroc]

Each ``DIR`` is the ``--out`` of one ``benchmarks/ssl_table.py`` run made with ``--pretrain-seed S
--random-init-seed S`` (the same seed for both arms; every other option equal). One run's confidence interval is
over its probe seeds (which labelled windows are drawn) for one pretraining run and one random initialisation;
the spread between pretraining runs is larger. This script takes each run's mean for the pretrained and the
random arm, and reports the mean over runs of each arm and of the paired difference (pretrained - random, same
seed) with 95% Student-t intervals over the runs: the difference's interval excluding 0 is the evidence that
pretraining pays whatever the seed. Each row also says how that run's own probe-seed CIs lie (``apart``: the
pretrained arm's above the random arm's; ``overlap``; ``below``) and the effective rank of its test embeddings,
pretrained and random (signs of collapse). Runs whose seeds or options differ are refused.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from physioclr_ext.evaluation.results import format_cell  # noqa: E402  (after sys.path)
from physioclr_ext.evaluation.stats import mean_ci  # noqa: E402

# Options that must be equal across the runs (the seeds and the output folder may differ).
SAME = ("tasks", "budget_minutes", "budget_samples", "pool_exclude", "pretrain_override", "gpu", "quick", "n", "seeds")


def load_run(path: Path) -> Dict[str, Any]:
    """``results.json`` of one ``ssl_table.py`` run."""
    file = path / "results.json"
    if not file.is_file():
        raise SystemExit(f"{file} not found: is {path} the --out of benchmarks/ssl_table.py?")
    return json.loads(file.read_text())


def arm_cell(run: Mapping[str, Any], method: str, task: str, arm: str, protocol: str, n: str, metric: str) -> dict:
    """One arm's cell of ``metric`` at ``n`` labels: its mean over probe seeds (and CI, where the run has one)."""
    try:
        cell = run["results"][task][method][arm][protocol][n][metric]
    except KeyError as missing:
        raise SystemExit(f"no {task}/{method}/{arm}/{protocol}/{n}/{metric} in a run ({missing})") from None
    return dict(cell)


def own_cis(pretrained: Mapping[str, Any], random: Mapping[str, Any]) -> str:
    """How one run's two probe-seed CIs lie: ``apart`` (pretrained above), ``below`` (under), ``overlap``, or
    ``-`` where the run has no CIs (one probe seed)."""
    p_low, p_high = pretrained.get("ci_low"), pretrained.get("ci_high")
    r_low, r_high = random.get("ci_low"), random.get("ci_high")
    if None in (p_low, p_high, r_low, r_high):
        return "-"
    if p_low > r_high:
        return "apart"
    if p_high < r_low:
        return "below"
    return "overlap"


def effective_ranks(run: Mapping[str, Any], method: str, task: str) -> Optional[tuple]:
    """(pretrained, random) effective rank of the run's test embeddings, ``None`` where it has no collapse stats."""
    try:
        arms = run["collapse"][task][method]
        return float(arms["pretrained"]["effective_rank"]), float(arms["random"]["effective_rank"])
    except (KeyError, TypeError):
        return None


def check_runs(runs: Sequence[Mapping[str, Any]]) -> List[int]:
    """Pretraining seeds of ``runs``; refuses runs without a same-seed random arm or with other options."""
    seeds = []
    first = runs[0]["meta"]["args"]
    for run in runs:
        args = run["meta"]["args"]
        seed, rinit = args.get("pretrain_seed"), args.get("random_init_seed")
        if rinit is None or rinit != seed:
            raise SystemExit(f"{args['out']}: random-init seed {rinit} is not its pretraining seed {seed}")
        differ = [key for key in SAME if args.get(key) != first.get(key)]
        if differ:
            raise SystemExit(f"{args['out']} differs from {first['out']} in {', '.join(differ)}")
        seeds.append(int(seed))
    if len(set(seeds)) != len(seeds):
        raise SystemExit(f"repeated pretraining seeds {seeds}")
    return seeds


def paired(pretrained: Sequence[float], random: Sequence[float]) -> Dict[str, Dict[str, Any]]:
    """``mean_ci`` of each arm and of the paired differences."""
    differences = [p - r for p, r in zip(pretrained, random)]
    return {"pretrained": mean_ci(pretrained), "random": mean_ci(random), "difference": mean_ci(differences)}


def render(
    seeds: Sequence[int],
    pretrained: Sequence[float],
    random: Sequence[float],
    title: str,
    cis: Optional[Sequence[str]] = None,
    ranks: Optional[Sequence[Optional[tuple]]] = None,
) -> str:
    """Markdown: one row per seed (with how its own CIs lie and its effective ranks, where given), then the means
    over seeds with their intervals."""
    summary = paired(pretrained, random)
    cis = list(cis) if cis is not None else ["-"] * len(seeds)
    ranks = list(ranks) if ranks is not None else [None] * len(seeds)
    lines = [
        title,
        "",
        "| pretraining seed | pretrained | random init, same seed | difference | the run's own CIs "
        "| effective rank, pretrained / random |",
        "|---|---|---|---|---|---|",
    ]
    for seed, p, r, ci, rank in sorted(zip(seeds, pretrained, random, cis, ranks), key=lambda row: row[0]):
        rank_cell = "-" if rank is None else f"{rank[0]:.1f} / {rank[1]:.1f}"
        lines.append(f"| {seed} | {p:.3f} | {r:.3f} | {p - r:+.3f} | {ci} | {rank_cell} |")
    lines.append(
        f"| mean of {len(seeds)} [95% t-interval] | {format_cell(summary['pretrained'])} | {format_cell(summary['random'])} "
        f"| {format_cell(summary['difference'])} | {cis.count('apart')} of {len(seeds)} apart | |"
    )
    low = summary["difference"]["ci_low"]
    verdict = "pays" if low is not None and low > 0 else "not shown to pay"
    lines += ["", f"Paired over pretraining seeds: {verdict} (the difference's interval {'excludes' if verdict == 'pays' else 'includes'} 0)."]  # fmt: skip
    return "\n".join(lines)


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("dirs", nargs="+", type=Path, help="--out folders of ssl_table.py runs, one per seed")
    p.add_argument("--method", default=None, help="method row (default: the runs' only method)")
    p.add_argument("--task", default="a")
    p.add_argument("--protocol", default="linear", choices=("linear", "knn"))
    p.add_argument("--n", default="100", help="labels per class (or 'all')")
    p.add_argument("--metric", default="auroc")
    args = p.parse_args(argv)
    if len(args.dirs) < 2:
        p.error("give at least two runs (one per pretraining seed)")
    return args


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = parse_args(argv)
    runs = [load_run(d) for d in args.dirs]
    seeds = check_runs(runs)
    method = args.method
    if method is None:
        names = {tuple(r["meta"]["args"]["methods"]) for r in runs}
        if len(names) != 1 or len(next(iter(names))) != 1:
            raise SystemExit(f"the runs have methods {sorted(names)}: choose one with --method")
        method = next(iter(names))[0]
    n = f"n={args.n}"
    pre_cells = [arm_cell(r, method, args.task, "pretrained", args.protocol, n, args.metric) for r in runs]
    rnd_cells = [arm_cell(r, method, args.task, "random", args.protocol, n, args.metric) for r in runs]
    pre = [float(c["mean"]) for c in pre_cells]
    rnd = [float(c["mean"]) for c in rnd_cells]
    cis = [own_cis(p, r) for p, r in zip(pre_cells, rnd_cells)]
    ranks = [effective_ranks(r, method, args.task) for r in runs]
    title = (
        f"{method}, task {args.task}, {args.protocol} probe {args.metric} at {n} (each run: mean of its probe seeds)"
    )
    print(render(seeds, pre, rnd, title, cis, ranks))
    return 0


if __name__ == "__main__":
    sys.exit(main())
