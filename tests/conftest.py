"""Shared fixtures. Time moves only through the ManualClock in unit tests."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from mashroom_jobs import BackgroundJobService
from mashroom_jobs.testing import ManualClock


@pytest.fixture(autouse=True)
def _private_jupyter_data_dir(tmp_path_factory: pytest.TempPathFactory,
                              monkeypatch: pytest.MonkeyPatch) -> None:
    """The extension and ``mashroom-jobs run`` keep their job store in the Jupyter data
    folder: each test gets its own, never the user's (subprocesses inherit it)."""
    monkeypatch.setenv("JUPYTER_DATA_DIR", str(tmp_path_factory.mktemp("jupyter-data")))


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock("2026-01-01T00:00:00+00:00")


@pytest.fixture
def service(clock: ManualClock) -> Iterator[BackgroundJobService]:
    svc = BackgroundJobService(clock=clock, timezone="UTC")
    yield svc
    svc.shutdown(wait=True, timeout=5)


@pytest.fixture
def panel(service: BackgroundJobService) -> Iterator[Any]:
    """A JobsPanel without the background flusher: tests call ``panel.flush()``."""
    from ipywidgets import Widget

    from mashroom_jobs.panel import JobsPanel

    jobs_panel = JobsPanel(service, auto_flush=False, callables={})
    yield jobs_panel
    jobs_panel.close()
    Widget.close_all()


# --- background-job plugins and the IPython shell (issue 4) -----------------------------


class PluginDistributions:
    """The example and broken plugin distributions, pip-installed into their own folders."""

    def __init__(self, example: Any, broken: Any) -> None:
        self.example = example
        self.broken = broken

    def env(self, *folders: Any) -> dict[str, str]:
        """os.environ with PYTHONPATH set to ``folders`` only (for subprocesses)."""
        import os

        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(str(f) for f in folders)
        env.pop("IPYTHONDIR", None)
        return env


@pytest.fixture(scope="session")
def plugin_dists(tmp_path_factory: pytest.TempPathFactory) -> PluginDistributions:
    """``pip install`` plugins_examples/mashroom-jobs-{example,broken} (real wheels, real
    entry points), each into a temporary ``--target`` folder."""
    import subprocess
    import sys
    from pathlib import Path

    examples = Path(__file__).resolve().parent.parent / "plugins_examples"
    root = tmp_path_factory.mktemp("plugin-dists")
    targets = {}
    for key in ("example", "broken"):
        targets[key] = root / key
        subprocess.run(
            [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps",
             "--no-build-isolation", "--no-index", "--disable-pip-version-check",
             "--target", str(targets[key]), str(examples / f"mashroom-jobs-{key}")],
            check=True, capture_output=True, timeout=120,
        )
    return PluginDistributions(targets["example"], targets["broken"])


@pytest.fixture(scope="session")
def installed_plugins(plugin_dists: PluginDistributions) -> Iterator[PluginDistributions]:
    """Both plugin distributions importable (and discoverable) in this process."""
    import sys

    paths = [str(plugin_dists.example), str(plugin_dists.broken)]
    sys.path[:0] = paths
    yield plugin_dists
    for path in paths:
        sys.path.remove(path)
    for name in [m for m in sys.modules if m.startswith(("mashroom_jobs_example",
                                                         "mashroom_jobs_broken"))]:
        del sys.modules[name]


@pytest.fixture
def ip() -> Iterator[Any]:
    """A real IPython InteractiveShell; the extension is unloaded and the shell cleared after."""
    from IPython.core.interactiveshell import InteractiveShell

    from mashroom_jobs import _extension

    shell = InteractiveShell.instance()
    yield shell
    _extension.unload_ipython_extension(shell)
    InteractiveShell.clear_instance()


# --- selecting the tests that drive time by hand --------------------------------------


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--injected-clock-only", action="store_true",
        help="skip every test that makes a real clock (SystemClock), so that only tests "
             "driving time by hand (ManualClock) run: to measure what the behaviour suite "
             "covers of the run path (scripts/injected_clock_coverage.sh)")


@pytest.fixture(autouse=True)
def _injected_clock_only(request: pytest.FixtureRequest,
                         monkeypatch: pytest.MonkeyPatch) -> None:
    if not request.config.getoption("--injected-clock-only"):
        return
    from mashroom_jobs.core.clock import SystemClock

    def refuse(cls: type, *args: Any, **kwargs: Any) -> Any:
        pytest.skip("uses the real clock")

    monkeypatch.setattr(SystemClock, "__new__", refuse)
