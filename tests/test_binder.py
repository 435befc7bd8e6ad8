"""binder/ cannot rot silently: mybinder.org's steps in a fresh virtual environment.

repo2docker installs ``binder/requirements.txt`` and then runs ``binder/postBuild`` from
the repository's root.  This test does the same in a new venv (its ``bin`` first on
PATH, HOME and IPYTHONDIR in a temporary folder), then runs the tour notebooks under
nbval with that venv's Python, exactly as ``scripts/test.sh`` runs them, plus one
notebook that checks that a kernel of that environment starts with the extension loaded
(``mashroom-jobs autoload enable``).  Slow (pip installs, about a minute with a warm pip
cache); deselect with ``-m "not binder"``.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parent.parent

pytestmark = [pytest.mark.binder, pytest.mark.timeout(1800)]

#: variables of the calling environment that would leak into the fresh one
_LEAKY = ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "IPYTHONDIR", "PIP_TARGET", "PIP_PREFIX",
          "PIP_USER", "PIP_REQUIRE_VIRTUALENV", "CONDA_PREFIX")


def _pip_cache_dir() -> str | None:
    """The calling user's pip cache, so the fresh venv's installs reuse it despite the new HOME."""
    if os.environ.get("PIP_CACHE_DIR"):
        return os.environ["PIP_CACHE_DIR"]
    result = subprocess.run(
        [sys.executable, "-m", "pip", "cache", "dir"], capture_output=True, text=True, timeout=60
    )
    if result.returncode != 0:  # pip's cache is disabled
        return None
    return result.stdout.strip() or None


def _run(args: list[str], *, env: dict[str, str], cwd: Path, timeout: float
         ) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        args, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout
    )
    assert result.returncode == 0, (
        f"{' '.join(args)} exited with {result.returncode}\n"
        f"--- stdout (end) ---\n{result.stdout[-6000:]}\n"
        f"--- stderr (end) ---\n{result.stderr[-6000:]}"
    )
    return result


def _autoload_check(path: Path) -> None:
    """A notebook that fails unless its kernel loaded mashroom_jobs and its plugin at start."""
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(
        "import sys\n"
        "import mashroom_jobs\n"
        "assert 'mashroom_jobs' in get_ipython().extension_manager.loaded, 'not autoloaded'\n"
        "plugins = {r.name: r.state for r in mashroom_jobs.get_service().plugins}\n"
        "assert plugins.get('Example heartbeat') == 'loaded', plugins\n"
        "assert mashroom_jobs.__file__.startswith(sys.prefix), mashroom_jobs.__file__\n"
        "%unload_ext mashroom_jobs\n"
    )]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                 "language": "python"}
    nbformat.write(nb, path)


def test_binder_steps_install_an_environment_that_runs_every_notebook(tmp_path: Path) -> None:
    venv, home = tmp_path / "venv", tmp_path / "home"
    home.mkdir()
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    bin_dir = venv / "bin"
    python = str(bin_dir / "python")

    env = {k: v for k, v in os.environ.items()
           if k not in _LEAKY and not k.startswith(("PYTEST_", "JUPYTER_"))}
    env.update(
        PATH=f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
        VIRTUAL_ENV=str(venv),
        HOME=str(home),
        IPYTHONDIR=str(home / ".ipython"),
        PIP_DISABLE_PIP_VERSION_CHECK="1",
    )
    cache = _pip_cache_dir()
    if cache:
        env["PIP_CACHE_DIR"] = cache

    # mybinder.org's two steps, from the repository's root
    _run([python, "-m", "pip", "install", "-r", "binder/requirements.txt"],
         env=env, cwd=ROOT, timeout=1200)
    assert os.access(ROOT / "binder" / "postBuild", os.X_OK), "binder/postBuild must be executable"
    _run([str(ROOT / "binder" / "postBuild")], env=env, cwd=ROOT, timeout=900)

    kernel_config = home / ".ipython" / "profile_default" / "ipython_kernel_config.py"
    assert 'c.InteractiveShellApp.extensions.append("mashroom_jobs")' in kernel_config.read_text()
    # installed into the fresh venv (run outside the checkout, which would shadow it)
    _run([python, "-c",
          "import sys, mashroom_jobs, mashroom_jobs_example\n"
          "assert mashroom_jobs.__file__.startswith(sys.prefix), mashroom_jobs.__file__\n"
          "from mashroom_jobs.plugins import discover\n"
          "assert 'Example heartbeat' in [ep.name for ep in discover()]\n"],
         env=env, cwd=tmp_path, timeout=120)

    # the test harness (not something Binder needs), then the notebooks as scripts/test.sh runs them
    _run([python, "-m", "pip", "install", "nbval>=0.11", "pytest>=8", "pytest-timeout"],
         env=env, cwd=tmp_path, timeout=600)
    check = tmp_path / "autoload_check.ipynb"
    _autoload_check(check)
    result = _run(
        [python, "-m", "pytest", "notebooks", str(check), "--nbval", "--nbval-current-env",
         "--nbval-sanitize-with", "notebooks/sanitize.cfg", "--nbval-cell-timeout", "120",
         "-p", "no:cacheprovider", "-q", "--timeout", "300"],
        env=env, cwd=ROOT, timeout=900,
    )
    summary = result.stdout.strip().splitlines()[-1]
    assert " passed" in summary and "failed" not in summary and "error" not in summary, summary
