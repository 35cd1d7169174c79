"""The layering of the package, checked on its import graph (every import, lazy ones included).

core (modules, losses, augmentations, features, preprocess, evaluation)
  <- fairseq-signals layer (models, criterions, tasks, data, optim)
  <- runners
``__main__`` modules are command-line entry points above every layer; the package face
(``physioclr_ext/__init__.py``) and ``_version`` sit outside the layers.
"""

import ast
import subprocess
import sys
from collections import defaultdict
from pathlib import Path
from typing import Dict, List, Set

import pytest

import physioclr_ext

PKG = Path(physioclr_ext.__file__).resolve().parent
CORE = ("modules", "losses", "augmentations", "features", "preprocess", "evaluation")
FRAMEWORK = ("models", "criterions", "tasks", "data", "optim")
RUNNERS = ("runners",)
LEVEL = {**{p: 0 for p in CORE}, **{p: 1 for p in FRAMEWORK}, **{p: 2 for p in RUNNERS}}
FAIRSEQ = ("fairseq_signals", "fairseq_cli", "fairseq")


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PKG.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> Set[str]:
    """Absolute names of every module imported anywhere in ``path`` (function bodies included)."""
    name = _module_name(path)
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    found: Set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            found.add(target)
            found.update(f"{target}.{alias.name}" for alias in node.names)  # `from pkg import module`
    return found


def _graph() -> Dict[str, Set[str]]:
    files = {_module_name(p): p for p in PKG.rglob("*.py")}
    graph = {}
    for name, path in files.items():
        graph[name] = {t for t in _imports(path) if t in files and t != name} | {
            t for t in _imports(path) if t.split(".")[0] in FAIRSEQ
        }
    return graph


def _layer(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def _is_entry_point(module: str) -> bool:
    return module.endswith(".__main__")


def test_no_import_points_up_or_into_fairseq_signals_from_the_core():
    wrong: List[str] = []
    for module, targets in _graph().items():
        if _is_entry_point(module) or _layer(module) not in LEVEL:
            continue
        for target in targets:
            if target.split(".")[0] in FAIRSEQ:
                if LEVEL[_layer(module)] == 0:
                    wrong.append(f"{module} -> {target}")
            elif _layer(target) in LEVEL and LEVEL[_layer(target)] > LEVEL[_layer(module)]:
                wrong.append(f"{module} -> {target}")
            elif _layer(target) not in LEVEL and _layer(target) not in ("", "_version"):
                wrong.append(f"{module} -> {target} (module outside the layers)")
    assert not wrong, "imports against the layering:\n" + "\n".join(sorted(wrong))


def _cycles(graph: Dict[str, Set[str]]) -> List[List[str]]:
    """Strongly connected components with more than one node (Tarjan)."""
    index: Dict[str, int] = {}
    low: Dict[str, int] = {}
    stack: List[str] = []
    on_stack: Set[str] = set()
    out: List[List[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def _internal(graph: Dict[str, Set[str]]) -> Dict[str, Set[str]]:
    # A package's __init__ re-exporting its own modules is not a dependency between files.
    return {
        m: {t for t in ts if t in graph and not t.startswith(m + ".")} for m, ts in graph.items() if _layer(m) != ""
    }


def test_no_cycle_between_files():
    assert _cycles(_internal(_graph())) == []


def test_no_cycle_between_packages():
    packages: Dict[str, Set[str]] = defaultdict(set)
    for module, targets in _internal(_graph()).items():
        if _is_entry_point(module):
            continue
        for target in targets:
            if _layer(target) != _layer(module) and _layer(target) in LEVEL:
                packages[_layer(module)].add(_layer(target))
    assert _cycles(dict(packages)) == []


def test_the_checker_sees_a_cycle_and_an_upward_import():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert "physioclr_ext.runners.compat" in _imports(PKG / "runners" / "launcher.py")


@pytest.mark.parametrize("package", CORE)
def test_importing_a_core_package_leaves_fairseq_signals_unimported(package):
    code = f"import physioclr_ext.{package}, sys; assert 'fairseq_signals' not in sys.modules, sorted(sys.modules)"
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)


@pytest.mark.parametrize("module", ["preprocess.__main__", "features.pipeline"])
def test_the_preprocessing_commands_do_not_load_torch(module):
    """Preprocessing and feature extraction are numpy/scipy work: importing torch costs each command seconds."""
    code = f"import physioclr_ext.{module}, sys; assert 'torch' not in sys.modules, 'torch imported'"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
