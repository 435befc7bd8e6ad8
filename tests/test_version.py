"""The version is written once and reported the same everywhere."""

from __future__ import annotations

import importlib.metadata
import subprocess
import sys

import pytest

import mashroom_jobs
from mashroom_jobs.cli import main


def test_the_command_prints_the_package_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["--version"])
    assert exited.value.code == 0
    assert capsys.readouterr().out == f"mashroom-jobs {mashroom_jobs.__version__}\n"


def test_python_dash_m_prints_the_same_version() -> None:
    done = subprocess.run([sys.executable, "-m", "mashroom_jobs", "--version"],
                          capture_output=True, text=True, timeout=60)
    assert (done.returncode, done.stdout, done.stderr) == (
        0, f"mashroom-jobs {mashroom_jobs.__version__}\n", "")


def test_the_installed_metadata_reads_the_version_from_the_package() -> None:
    # pyproject.toml's version is dynamic: hatch reads mashroom_jobs/_version.py
    assert importlib.metadata.version("mashroom-jobs") == mashroom_jobs.__version__
