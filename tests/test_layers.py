"""The package's layers import only downward (issue 11).

Every module of ``src/neurornn`` is read with ``ast`` (nothing is imported) and placed in its
layer (``LAYERS``, bottom to top). Three rules, each failure naming the file, the line and the rule:

(a) a module imports nothing of a higher layer, nor a sibling package of its own layer
    (``tasks`` and ``models`` know nothing of each other);
(b) no import cycle between packages;
(c) no function-level (deferred) import of a neurornn module, written or dynamic
    (``importlib.import_module``); deferred imports are for optional third-party libraries only.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src"
PACKAGE = "neurornn"

# (layer, its packages and top-level modules, whether they may import each other), bottom to top.
LAYERS = (
    ("utilities", ("_version", "_validation", "_files", "_folder", "plotting"), True),
    ("ops", ("ops",), False),
    ("config", ("config",), False),
    ("tasks and models", ("tasks", "models"), False),
    ("runs", ("runs",), False),
    ("training", ("training",), False),
    ("analysis", ("analysis",), False),
    ("experiments and sweeps", ("experiments", "sweeps"), False),
    ("io", ("io",), False),
    ("cli", ("cli",), False),
    ("the package's front", ("__init__", "__main__"), True),
)
LAYER_OF = {unit: (rank, name, siblings) for rank, (name, units, siblings) in enumerate(LAYERS) for unit in units}


@dataclass(frozen=True)
class Import:
    file: str  # relative to the repository root
    line: int
    source: str  # the importing module, e.g. "neurornn.runs.writer"
    target: str  # the imported neurornn module, e.g. "neurornn.models.rnn"
    deferred: bool  # inside a function or class body
    dynamic: bool = False  # importlib.import_module / __import__


def module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    if parts[-1] == "__init__" and len(parts) > 1:
        parts.pop()
    return ".".join(parts)


def unit_of(module: str) -> str:
    """The package or top-level module of ``neurornn`` a module belongs to (``__init__``: the package's front)."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def _resolve(source: str, is_package: bool, node: ast.ImportFrom, modules: set[str]) -> list[str]:
    if node.level == 0:
        base = node.module or ""
    else:
        package = source.split(".") if is_package else source.split(".")[:-1]
        package = package[: len(package) - (node.level - 1)]
        base = ".".join(package + ([node.module] if node.module else []))
    if base.split(".")[0] != PACKAGE:
        return []
    # ``from . import tasks`` imports the submodule neurornn.tasks; ``from .x import name`` imports neurornn.x
    targets = {f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base for alias in node.names}
    return sorted(targets)


def _dynamic_target(call: ast.Call) -> str | None:
    """The neurornn module an ``importlib.import_module(...)`` / ``__import__(...)`` call names, if it names one."""
    func = call.func
    name = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else ""
    if name not in ("import_module", "__import__") or not call.args:
        return None
    arg = call.args[0]
    if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
        return arg.value if arg.value.split(".")[0] == PACKAGE or arg.value.startswith(".") else None
    names = {n.id for n in ast.walk(arg) if isinstance(n, ast.Name)}
    return "(computed from __name__)" if names & {"__name__", "__package__"} else None


def imports_of(path: Path, text: str, modules: set[str]) -> list[Import]:
    """Every import of a neurornn module in one file."""
    source = module_name(path)
    is_package = path.name == "__init__.py"
    file = str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)
    found: list[Import] = []

    def visit(node: ast.AST, deferred: bool) -> None:
        for child in ast.iter_child_nodes(node):
            inner = deferred or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef))
            if isinstance(child, ast.Import):
                for alias in child.names:
                    if alias.name.split(".")[0] == PACKAGE:
                        found.append(Import(file, child.lineno, source, alias.name, deferred))
            elif isinstance(child, ast.ImportFrom):
                for target in _resolve(source, is_package, child, modules):
                    found.append(Import(file, child.lineno, source, target, deferred))
            elif isinstance(child, ast.Call) and (target := _dynamic_target(child)) is not None:
                found.append(Import(file, child.lineno, source, target, deferred, dynamic=True))
            visit(child, inner)

    visit(ast.parse(text, filename=file), False)
    return found


def _package_files() -> list[Path]:
    return sorted((SRC / PACKAGE).rglob("*.py"))


@pytest.fixture(scope="module")
def all_imports() -> list[Import]:
    files = _package_files()
    modules = {module_name(p) for p in files}
    return [imp for p in files for imp in imports_of(p, p.read_text(), modules)]


def layer_violations(imports: list[Import]) -> list[str]:
    """Rule (a): imports of a higher layer, or of a sibling package of the same layer."""
    out = []
    for imp in imports:
        here, there = unit_of(imp.source), unit_of(imp.target)
        if here == there or imp.dynamic:
            continue
        (rank, layer, siblings), (rank_to, layer_to, _) = LAYER_OF[here], LAYER_OF[there]
        if rank_to > rank:
            out.append(f"{imp.file}:{imp.line}: rule (a), imports only downward: {here} (layer '{layer}') imports "
                       f"{imp.target} of the higher layer '{layer_to}'")
        elif rank_to == rank and not siblings:
            out.append(f"{imp.file}:{imp.line}: rule (a), imports only downward: {here} imports {imp.target}, "
                       f"of its sibling package {there} in layer '{layer}'")
    return out


def package_cycles(imports: list[Import]) -> list[str]:
    """Rule (b): every cycle of imports between packages (strongly connected components of more than one)."""
    edges: dict[str, dict[str, Import]] = {}
    for imp in imports:
        here, there = unit_of(imp.source), unit_of(imp.target)
        if here != there and not imp.dynamic:
            edges.setdefault(here, {}).setdefault(there, imp)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    components: list[list[str]] = []

    def connect(unit: str) -> None:  # Tarjan's algorithm
        index[unit] = low[unit] = len(index)
        stack.append(unit)
        for other in edges.get(unit, {}):
            if other not in index:
                connect(other)
                low[unit] = min(low[unit], low[other])
            elif other in stack:
                low[unit] = min(low[unit], index[other])
        if low[unit] == index[unit]:
            component = []
            while True:
                member = stack.pop()
                component.append(member)
                if member == unit:
                    break
            if len(component) > 1:
                components.append(sorted(component))

    for unit in sorted(edges):
        if unit not in index:
            connect(unit)
    out = []
    for component in components:
        links = [edges[a][b] for a in component for b in component if b in edges.get(a, {})]
        where = "; ".join(f"{imp.file}:{imp.line} imports {imp.target}" for imp in links)
        out.append(f"rule (b), no import cycle between packages: {' <-> '.join(component)} import each other ({where})")
    return out


def deferred_imports(imports: list[Import]) -> list[str]:
    """Rule (c): imports of neurornn modules inside a function or class, or made with importlib."""
    out = []
    for imp in imports:
        if imp.dynamic:
            out.append(f"{imp.file}:{imp.line}: rule (c), no deferred import of neurornn: a dynamic import of "
                       f"{imp.target}; import it at the top of the module")
        elif imp.deferred:
            out.append(f"{imp.file}:{imp.line}: rule (c), no deferred import of neurornn: {imp.target} is imported "
                       "inside a function; import it at the top of the module")
    return out


# ---------------------------------------------------------------------- the package
def _fail_on(problems: list[str]) -> None:
    if problems:
        pytest.fail(f"{len(problems)} import(s) break the layers:\n" + "\n".join(problems), pytrace=False)


def test_every_module_has_a_layer():
    units = {unit_of(module_name(p)) for p in _package_files()}
    missing = sorted(units - set(LAYER_OF))
    assert not missing, f"packages or modules of src/neurornn in no layer: {missing}; add them to LAYERS"
    assert "runs" in units and "ops" in units and "config" in units


def test_imports_go_only_downward(all_imports):
    _fail_on(layer_violations(all_imports))


def test_no_import_cycle_between_packages(all_imports):
    _fail_on(package_cycles(all_imports))


def test_no_function_level_import_of_neurornn(all_imports):
    _fail_on(deferred_imports(all_imports))


# ---------------------------------------------------------------------- the checks themselves
MODULES = {"neurornn", "neurornn.tasks", "neurornn.tasks.base", "neurornn.runs", "neurornn.runs.writer",
           "neurornn.training", "neurornn.training.trainer", "neurornn.models", "neurornn.cli", "neurornn._files"}


def _read(relative: str, text: str) -> list[Import]:
    return imports_of(SRC / PACKAGE / relative, text, MODULES)


def test_the_checks_find_what_they_look_for():
    """Each rule flags a module that breaks it, with its file and line (the checks are not vacuous)."""
    upward = _read("runs/writer.py", "import os\nfrom ..training.trainer import train\n")
    assert layer_violations(upward) == [
        "src/neurornn/runs/writer.py:2: rule (a), imports only downward: runs (layer 'runs') imports "
        "neurornn.training.trainer of the higher layer 'training'"]
    sibling = _read("tasks/base.py", "from .. import models\n")
    assert "sibling package models" in layer_violations(sibling)[0]
    assert layer_violations(_read("runs/writer.py", "from .. import tasks\nfrom .._files import x\n")) == []

    cycle = upward + _read("training/trainer.py", "from ..runs import RunWriter\n")
    assert package_cycles(cycle) == [
        "rule (b), no import cycle between packages: runs <-> training import each other "
        "(src/neurornn/runs/writer.py:2 imports neurornn.training.trainer; "
        "src/neurornn/training/trainer.py:1 imports neurornn.runs)"]

    deferred = _read("cli/__init__.py", "import importlib\n\ndef f():\n    from ..runs import load_run\n"
                                        "    import matplotlib\n    importlib.import_module(f'{__name__}.train')\n")
    assert deferred_imports(deferred) == [
        "src/neurornn/cli/__init__.py:4: rule (c), no deferred import of neurornn: neurornn.runs is imported "
        "inside a function; import it at the top of the module",
        "src/neurornn/cli/__init__.py:6: rule (c), no deferred import of neurornn: a dynamic import of "
        "(computed from __name__); import it at the top of the module"]
