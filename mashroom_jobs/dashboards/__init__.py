"""Notebooks that ship with the package, for ``mashroom-jobs dashboard``, and what they use.

``jobs.ipynb`` is the control room: the job store's durable jobs and the hosts that run
them (kernels, Jupyter servers, ``mashroom-jobs run``), alive or gone, with buttons that
act through the store, and the latest runs of every job.  Voila renders it as a page
without code.  The page's kernel runs no job itself (:func:`control_room_service`): it is
a view and a remote control over the hosts, so opening a page starts nothing.  It is
package data (inside the wheel), so the command works from an installed package as from
a checkout.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..service import BackgroundJobService
from ..settings import store_configured

__all__ = ["JOBS_DASHBOARD", "control_room_service"]

#: the jobs dashboard notebook
JOBS_DASHBOARD = Path(__file__).with_name("jobs.ipynb")


def control_room_service(shell: Any = None) -> BackgroundJobService:
    """A service over the job store that hosts nothing: it reads the store's durable jobs,
    hosts and runs, and changes them through the store (the hosts obey within about a
    second), but runs no job, loads no plugin and writes no heartbeat.

    The store is the one ``c.BackgroundJobService.store`` names in the IPython profile's
    config (``shell.config``), else the kernels' default store.

    Parameters
    ----------
    shell : InteractiveShell, optional
        The kernel's shell, whose config is read.

    Raises
    ------
    StoreError
        When the store cannot be opened.
    """
    from ..store import default_store_path

    kwargs: dict[str, Any] = {"durable_jobs": False, "notify_failures": False}
    config = getattr(shell, "config", None)
    if shell is not None:
        kwargs["parent"] = shell
        kwargs["shell"] = shell
    if not store_configured(config):
        kwargs["store"] = default_store_path()
    return BackgroundJobService(**kwargs)
