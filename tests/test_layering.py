"""The house goes one way: the core is free of Jupyter, each layer imports only the
layers below it, and no module reads another module's private names."""

from __future__ import annotations

import ast
import pathlib
import subprocess
import sys

PACKAGE = pathlib.Path(__file__).parents[1] / "mashroom_jobs"

#: the layers, bottom up; a module may import only from lower layers (and its own package)
LAYERS = {
    "core": 0,
    "context": 1, "job": 1, "metrics": 1, "testing": 1, "store": 1, "dask_bridge": 1,
    "text": 2, "settings": 2, "events": 2, "backends": 2, "registry": 2,
    "service": 3,
    "plugins": 4,
    "panel": 5, "dashboards": 5,
    "magics": 6, "cli": 6, "_kernel_hooks": 6,
    "_extension": 7,
    "__init__": 8, "__main__": 8,
}
#: underscore names that are public protocols, not privates
PROTOCOL_NAMES = {"_replace", "_fields", "_asdict", "_make", "_field_defaults"}


def _modules() -> list[pathlib.Path]:
    return sorted(p for p in PACKAGE.rglob("*.py"))


def _layer(path: pathlib.Path) -> tuple[str, int]:
    parts = path.relative_to(PACKAGE).with_suffix("").parts
    top = parts[0]
    if top not in LAYERS:
        raise AssertionError(f"{path}: no layer for module {top!r}; add it to LAYERS")
    return top, LAYERS[top]


def _runtime_nodes(tree: ast.Module) -> list[ast.AST]:
    """Every node but those under ``if TYPE_CHECKING:`` (type-only imports run nothing)."""
    skipped: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and getattr(node.test, "id", "") == "TYPE_CHECKING":
            skipped.update(id(n) for child in node.body for n in ast.walk(child))
    return [n for n in ast.walk(tree) if id(n) not in skipped]


def _imported_tops(path: pathlib.Path, tree: ast.Module) -> set[str]:
    """The top-level modules of mashroom_jobs this file imports at run time (even lazily)."""
    parts = path.relative_to(PACKAGE).with_suffix("").parts
    package = list(parts[:-1])
    found: set[str] = set()
    for node in _runtime_nodes(tree):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - (node.level - 1)]
                target = [*base, *(node.module.split(".") if node.module else [])]
                if target:
                    found.add(target[0])
                else:  # from . import x
                    found.update(alias.name for alias in node.names)
            elif node.module and node.module.startswith("mashroom_jobs."):
                found.add(node.module.split(".")[1])
        elif isinstance(node, ast.Call) and getattr(node.func, "attr", "") == "import_module":
            arg = node.args[0] if node.args else None
            if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                found.add(arg.value.lstrip(".").split(".")[0])
    return found


def test_each_module_imports_only_from_lower_layers() -> None:
    bad = []
    for path in _modules():
        top, rank = _layer(path)
        for other in _imported_tops(path, ast.parse(path.read_text())):
            if other == top or other not in LAYERS:
                continue
            if LAYERS[other] >= rank:
                bad.append(f"{path.relative_to(PACKAGE)} imports {other}")
    assert bad == []


def _defined_privates(tree: ast.Module) -> set[str]:
    """Private names a module defines: functions, classes, attributes, slots."""
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store):
            names.add(node.attr)
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            names.add(node.id)
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            names.add(node.value)  # __slots__ entries, getattr names
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names.add(node.target.id)
    return names


def _is_private(name: str) -> bool:
    return (name.startswith("_") and not name.startswith("__") and not name.endswith("_")
            and name not in PROTOCOL_NAMES)


def test_no_module_reads_another_modules_private_names() -> None:
    bad = []
    for path in _modules():
        tree = ast.parse(path.read_text())
        own = _defined_privates(tree)
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and (node.level or (node.module or "").startswith(
                    "mashroom_jobs")):
                bad += [f"{path.name}: imports {alias.name} from {node.module}"
                        for alias in node.names if _is_private(alias.name)]
            elif isinstance(node, ast.Attribute) and _is_private(node.attr):
                owner = node.value
                if isinstance(owner, ast.Name) and owner.id in ("self", "cls"):
                    continue
                if node.attr not in own:
                    bad.append(f"{path.relative_to(PACKAGE)}:{node.lineno}: .{node.attr}")
    assert bad == []


def test_the_core_and_the_package_import_without_jupyter_modules() -> None:
    code = (
        "import sys, mashroom_jobs.core, mashroom_jobs;"
        "from mashroom_jobs import BackgroundJobService;"
        "s = BackgroundJobService(); s.schedule_job('x', '* * * * *', print); s.shutdown();"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in "
        "('IPython', 'ipywidgets', 'ipykernel', 'comm', 'distributed', 'dask') "
        "or m.startswith('mashroom_jobs.panel'));"
        "print(bad)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=60, check=True)
    assert result.stdout.strip() == "[]"


def test_the_core_modules_import_neither_traitlets_nor_jupyter() -> None:
    for path in (PACKAGE / "core").rglob("*.py"):
        text = path.read_text()
        for banned in ("import traitlets", "from traitlets", "IPython", "ipywidgets"):
            assert banned not in text, f"{path.name} mentions {banned}"
