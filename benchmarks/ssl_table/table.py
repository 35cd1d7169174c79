"""Assemble the SSL table: results per task, method, initialisation, protocol and label budget.

Layout of ``results.json``'s ``results``::

    {TASK: {METHOD: {ARM: {PROTOCOL: {SETTING: {METRIC: {"mean", "ci_low", "ci_high", "values"}}}}}}}

ARM is ``pretrained`` or ``random`` (the same architecture at random initialisation) for a
method, ``reference`` for the reference rows; PROTOCOL is ``linear``, ``knn`` or ``finetune``;
SETTING is ``n=10``, ``n=100`` (labels per class) or ``n=all``. The markdown puts one table per
task and metric, one row per method and initialisation with the random-init row right below
the pretrained one. Pure functions, no framework.
"""

from __future__ import annotations

from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

from physioclr_ext.evaluation.results import format_cell

Cell = Mapping[str, Any]
COLUMNS: Tuple[Tuple[str, str], ...] = (
    ("linear", "n=10"),
    ("linear", "n=100"),
    ("linear", "n=all"),
    ("knn", "n=10"),
    ("knn", "n=100"),
    ("knn", "n=all"),
    ("finetune", "n=10"),
    ("finetune", "n=100"),
    ("finetune", "n=all"),
)
PROTOCOL_NAMES = {"linear": "linear", "knn": "kNN", "finetune": "fine-tune"}
ARM_ORDER = ("pretrained", "random", "reference")


def fewshot_arms(results: Mapping[str, Any]) -> Dict[str, Dict[str, Any]]:
    """Few-shot protocol results (``n=100/pretrained``, ``n=100/scratch``) by arm.

    >>> fewshot_arms({"n=100/pretrained": {"auroc": 0.8}, "n=100/scratch": {"auroc": 0.7}})["random"]
    {'n=100': {'auroc': 0.7}}
    """
    arms: Dict[str, Dict[str, Any]] = {}
    for setting, cell in results.items():
        n, _, kind = setting.partition("/")
        arms.setdefault("random" if kind == "scratch" else "pretrained", {})[n] = cell
    return arms


def add_result(
    results: Dict[str, Any], task: str, method: str, arm: str, protocol: str, settings: Mapping[str, Any]
) -> None:
    """Merge ``{setting: {metric: cell}}`` into the nested results."""
    node = results.setdefault(task, {}).setdefault(method, {}).setdefault(arm, {}).setdefault(protocol, {})
    node.update(settings)


def present_columns(task_results: Mapping[str, Any]) -> List[Tuple[str, str]]:
    """The :data:`COLUMNS` that at least one row of the task fills, in order."""
    seen = {
        (p, s)
        for arms in task_results.values()
        for protocols in arms.values()
        for p, settings in protocols.items()
        for s in settings
    }
    return [c for c in COLUMNS if c in seen]


def task_rows(
    task_results: Mapping[str, Any], metric: str
) -> List[Tuple[str, str, Dict[Tuple[str, str], Optional[Cell]]]]:
    """``(method, arm, {column: cell})`` per row: methods in insertion order, arms pretrained,
    random, reference; a missing cell is ``None``."""
    columns = present_columns(task_results)
    rows = []
    for method, arms in task_results.items():
        for arm in sorted(arms, key=lambda a: ARM_ORDER.index(a) if a in ARM_ORDER else len(ARM_ORDER)):
            protocols = arms[arm]
            rows.append((method, arm, {(p, s): protocols.get(p, {}).get(s, {}).get(metric) for p, s in columns}))
    return rows


def render_task(title: str, task_results: Mapping[str, Any], metric: str, notes: Mapping[str, str] = ()) -> str:
    """One markdown table: a row per method and initialisation, a column per protocol and label budget."""
    notes = dict(notes)
    columns = present_columns(task_results)
    header = ["method", "init"] + [f"{PROTOCOL_NAMES.get(p, p)} {s}" for p, s in columns]
    lines = [
        f"#### {title}: {metric} (mean [95% CI])",
        "",
        "| " + " | ".join(header) + " |",
        "|" + "---|" * len(header),
    ]
    marks = {m: "*" * (i + 1) for i, m in enumerate(m for m in task_results if m in notes)}
    for method, arm, cells in task_rows(task_results, metric):
        name = method + marks.get(method, "")
        lines.append(f"| {name} | {arm} | " + " | ".join(format_cell(cells[c]) for c in columns) + " |")
    lines += [f"\n{marks[m]} {m}: {notes[m]}" for m in marks]
    return "\n".join(lines) + "\n"


def render_tables(
    results: Mapping[str, Any], metrics: Sequence[str], titles: Mapping[str, str], notes: Mapping[str, str] = ()
) -> str:
    """Every task's tables, one per metric."""
    blocks = [
        render_task(titles.get(task, task), task_results, metric, notes)
        for task, task_results in results.items()
        for metric in metrics
    ]
    return "\n".join(blocks)


def label_curves(task_results: Mapping[str, Any], protocol: str) -> Dict[str, Dict[str, Dict[str, Any]]]:
    """``{method: {arm: {setting: {metric: cell}}}}`` of one protocol, for :func:`plots.plot_label_curves`."""
    return {
        method: {arm: protocols[protocol] for arm, protocols in arms.items() if protocol in protocols}
        for method, arms in task_results.items()
        if any(protocol in protocols for protocols in arms.values())
    }


def render_collapse(collapse: Mapping[str, Any]) -> str:
    """Markdown table of the collapse diagnostics of each task's test embeddings.

    ``collapse`` is ``{TASK: {METHOD: {ARM: {"per_dim_std", "effective_rank", "dim"}}}}``.
    """
    lines = [
        "#### Test embeddings: mean per-dimension standard deviation and effective rank",
        "",
        "| task | method | init | per-dim std | effective rank | dim |",
        "|---|---|---|---|---|---|",
    ]
    for task, methods in collapse.items():
        for method, arms in methods.items():
            for arm, r in arms.items():
                lines.append(
                    f"| {task} | {method} | {arm} | {r['per_dim_std']:.3g} | {r['effective_rank']:.1f} | {int(r['dim'])} |"
                )
    return "\n".join(lines) + "\n"
