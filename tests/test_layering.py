"""The house's shape: import-linter's contracts (pyproject.toml, run by the test command)
hold, and fail when broken; and what import-linter cannot see is checked here: no module
reads another object's private attributes, and no module imports a higher layer by name at
run time (``importlib.import_module("mashroom_jobs....")``)."""

from __future__ import annotations

import ast
import os
import pathlib
import shutil
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).parents[1]
PACKAGE = ROOT / "mashroom_jobs"
LINT_IMPORTS = pathlib.Path(sys.executable).with_name("lint-imports")

#: underscore names that are public protocols or stdlib API, not privates
PROTOCOL_NAMES = {"_replace", "_fields", "_asdict", "_make", "_field_defaults", "_exit"}


def _modules(package: pathlib.Path = PACKAGE) -> list[pathlib.Path]:
    return sorted(p for p in package.rglob("*.py"))


def _lint_imports(cwd: pathlib.Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(cwd)}
    return subprocess.run([str(LINT_IMPORTS), "--no-cache"], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=120)


def test_the_import_contracts_hold() -> None:
    result = _lint_imports(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Contracts: 4 kept, 0 broken." in result.stdout


def _is_private(name: str) -> bool:
    return (name.startswith("_") and not name.startswith("__") and not name.endswith("_")
            and name not in PROTOCOL_NAMES)


def _classes_attributes(tree: ast.Module) -> dict[str, set[str]]:
    """Each class of a module: the private attributes it gives its instances."""
    found: dict[str, set[str]] = {}
    for node in ast.walk(tree):
        if not isinstance(node, ast.ClassDef):
            continue
        names = found.setdefault(node.name, set())
        for inner in ast.walk(node):
            if isinstance(inner, ast.Attribute) and isinstance(inner.ctx, ast.Store) \
                    and isinstance(inner.value, ast.Name) and inner.value.id in ("self", "cls"):
                names.add(inner.attr)
            elif isinstance(inner, (ast.FunctionDef, ast.AsyncFunctionDef)):
                names.add(inner.name)
            elif isinstance(inner, ast.Constant) and isinstance(inner.value, str):
                names.add(inner.value)  # __slots__ entries
    return found


def private_reads(path: pathlib.Path) -> list[str]:
    """Where ``path`` reads a private name of something else.

    ``self._x`` and ``cls._x`` are a class's own; ``other._x`` is allowed only when
    ``other`` is a plain name bound in the same module to an instance of one of its own
    classes (``entry._group`` in the timer's module, whose classes share their privates).
    Anything reached through another attribute (``self._runner._lock``) is a read of
    another object's private and is refused.
    """
    tree = ast.parse(path.read_text())
    classes = _classes_attributes(tree)
    module_privates = set().union(*classes.values()) if classes else set()
    bad = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            if node.level or (node.module or "").startswith("mashroom_jobs"):
                bad += [f"{path.name}:{node.lineno}: imports {alias.name} from {node.module}"
                        for alias in node.names if _is_private(alias.name)]
        elif isinstance(node, ast.Attribute) and _is_private(node.attr):
            owner = node.value
            if isinstance(owner, ast.Name) and owner.id in ("self", "cls"):
                continue
            if isinstance(owner, ast.Name) and node.attr in module_privates:
                continue  # a sibling class of this module (see the docstring)
            bad.append(f"{path.name}:{node.lineno}: .{node.attr}")
    return bad


def test_no_module_reads_another_objects_private_attributes() -> None:
    bad = [line for path in _modules() for line in private_reads(path)]
    assert bad == []


def dynamic_imports(path: pathlib.Path) -> list[str]:
    """The ``mashroom_jobs`` modules ``path`` imports by name with ``import_module``."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Call) and getattr(node.func, "attr", getattr(
                node.func, "id", "")) == "import_module" and node.args:
            arg = node.args[0]
            if isinstance(arg, ast.Constant) and isinstance(arg.value, str) \
                    and arg.value.startswith("mashroom_jobs."):
                found.append(arg.value)
    return found


def _layer_rank() -> dict[str, int]:
    """Top-level module -> its layer (0 the top) in the layers contract."""
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+

    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
    layers = next(c["layers"] for c in config["contracts"] if c["type"] == "layers")
    rank = {}
    for index, layer in enumerate(layers):
        for module in layer.replace("|", ":").split(":"):
            rank[module.strip().split(".")[1]] = index
    return rank


def dynamic_layer_breaks(package: pathlib.Path = PACKAGE) -> list[str]:
    rank = _layer_rank()
    bad = []
    for path in _modules(package):
        top = path.relative_to(package).with_suffix("").parts[0]
        for target in dynamic_imports(path):
            other = target.split(".")[1]
            if top in rank and other in rank and rank[other] < rank[top]:
                bad.append(f"{path.relative_to(package)} imports {target} at run time")
    return bad


def test_no_module_imports_a_higher_layer_at_run_time() -> None:
    assert dynamic_layer_breaks() == []


def test_each_kind_of_planted_violation_is_caught(tmp_path: pathlib.Path) -> None:
    copy = tmp_path / "mashroom_jobs"
    shutil.copytree(PACKAGE, copy, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    plants = {
        "core/clock.py": "import mashroom_jobs.panel\n",  # a plain import of a higher layer
        "core/errors.py": "from mashroom_jobs import service\n",  # from the root package
        "core/records.py": "from . import runner\n",  # a cycle inside the core
        "core/arguments.py": "import ipywidgets\n",  # Jupyter in the core
        "dask_bridge/errors.py": "from . import backend\n",  # a cycle inside dask_bridge
        "store/location.py": "from ..core import _batches\n",  # an internal module
        "core/callables.py": "import importlib\nimportlib.import_module('mashroom_jobs.panel')\n",
        "core/specs.py": "def peek(runner):\n    return runner.timer._cond\n",  # a private
    }
    for name, code in plants.items():
        path = copy / name
        path.write_text(path.read_text() + "\n" + code)
    report = _lint_imports(tmp_path).stdout
    assert "Contracts: 0 kept, 4 broken." in report, report
    assert "mashroom_jobs.core is not allowed to import mashroom_jobs.panel" in report
    assert "mashroom_jobs.core.errors -> mashroom_jobs.service" in report
    assert "mashroom_jobs.core is not allowed to import ipywidgets" in report
    assert "No cycles are allowed in mashroom_jobs.core." in report
    assert "No cycles are allowed in mashroom_jobs.dask_bridge." in report
    assert "mashroom_jobs.store.location -> mashroom_jobs.core._batches" in report
    assert dynamic_layer_breaks(copy) == [
        "core/callables.py imports mashroom_jobs.panel at run time"]
    assert [line.split(": ")[-1] for line in private_reads(copy / "core/specs.py")] == [
        "._cond"]


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
