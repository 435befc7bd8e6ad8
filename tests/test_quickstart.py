"""The install command of getting started (and the README's quick start) installs in a fresh
virtual environment, as a new user runs it.

A fresh ``python3 -m venv`` has the pip its interpreter bundles (23.2 with Python 3.11),
not the latest one, and that pip once could not install the package with its ``[lab]``
extra together with the example plugin. This test takes the command from
docs/getting-started.md (the README shows the same one), drops its last step (starting
JupyterLab), runs the rest unchanged in a copy of the checkout with this test's interpreter
as ``python3``, and imports what it installed: JupyterLab, Dask's distributed (notebook
05), mashroom-jobs and the example plugin.
Slow (pip installs JupyterLab, about a minute with a warm pip cache); deselect with
``-m "not binder"``.
"""

from __future__ import annotations

import os
import re
import shutil
import stat
import sys
from pathlib import Path

import pytest
from test_binder import _LEAKY, _pip_cache_dir, _run

ROOT = Path(__file__).resolve().parent.parent

pytestmark = [pytest.mark.binder, pytest.mark.timeout(1800)]

#: what a copy of the checkout leaves out: environments, caches, build output
_NOT_COPIED = shutil.ignore_patterns(
    ".venv", ".git", "__pycache__", ".hypothesis", ".pytest_cache", ".mypy_cache",
    ".ruff_cache", "build", "dist", "*.egg-info", "test-artifacts", "node_modules",
)


def _first_bash_block(path: Path, heading: str) -> str:
    """The one-line command of the first ```bash block under ``heading`` in ``path``."""
    text = path.read_text(encoding="utf-8")
    section = text.split(f"\n{heading}\n", 1)[1].split("\n## ", 1)[0]
    block = re.search(r"```bash\n(.*?)\n```", section, re.DOTALL)
    assert block is not None, f"no ```bash block under {heading} in {path.name}"
    assert "\n" not in block[1].strip(), block[1]
    return block[1].strip()


def quick_start_command() -> str:
    """The install command of docs/getting-started.md."""
    return _first_bash_block(ROOT / "docs" / "getting-started.md", "## Install")


def test_the_readme_shows_the_install_command_of_getting_started() -> None:
    assert _first_bash_block(ROOT / "README.md", "## Quick start") == quick_start_command()


def test_the_install_command_installs_what_the_tour_needs() -> None:
    # notebook 05 needs distributed, notebook 02 the example plugin, every notebook JupyterLab
    command = quick_start_command()
    assert "'.[lab,dask]'" in command and "./plugins_examples/mashroom-jobs-example" in command


def test_the_quick_start_installs_with_a_fresh_venvs_own_pip(tmp_path: Path) -> None:
    steps = quick_start_command().split(" && ")
    # everything but the last step installs; the last starts JupyterLab, which a test must not
    assert steps[0] == "python3 -m venv .venv", steps
    assert steps[-1].startswith(".venv/bin/jupyter lab "), steps
    assert not any("jupyter" in step for step in steps[:-1]), steps
    install = " && ".join(steps[:-1])

    checkout = tmp_path / "checkout"
    shutil.copytree(ROOT, checkout, ignore=_NOT_COPIED)
    # `python3` is this test's interpreter: its `-m venv` bundles its own pip, not upgraded
    shims = tmp_path / "bin"
    shims.mkdir()
    python3 = shims / "python3"
    python3.write_text(f'#!/bin/sh\nexec "{sys.executable}" "$@"\n')
    python3.chmod(python3.stat().st_mode | stat.S_IXUSR)
    home = tmp_path / "home"
    home.mkdir()
    env = {k: v for k, v in os.environ.items()
           if k not in _LEAKY and not k.startswith(("PYTEST_", "JUPYTER_"))}
    env.update(PATH=f"{shims}{os.pathsep}{os.environ.get('PATH', '')}", HOME=str(home),
               PIP_DISABLE_PIP_VERSION_CHECK="1")
    cache = _pip_cache_dir()
    if cache:
        env["PIP_CACHE_DIR"] = cache

    _run(["bash", "-c", install], env=env, cwd=checkout, timeout=1500)

    # from outside the checkout, which would shadow the installed packages
    _run([str(checkout / ".venv" / "bin" / "python"), "-c",
          "import sys, jupyterlab, distributed, mashroom_jobs, mashroom_jobs_example\n"
          f"assert mashroom_jobs.__file__.startswith({str(checkout)!r}), mashroom_jobs.__file__\n"
          "from mashroom_jobs.plugins import discover\n"
          "assert 'Example heartbeat' in [ep.name for ep in discover()]\n"],
         env=env, cwd=tmp_path, timeout=120)
