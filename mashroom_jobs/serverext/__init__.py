"""The Jupyter Server extension: a host of durable jobs in the server process.

While JupyterLab or Notebook 7 is up, the server runs the job store's durable jobs (and,
when configured, the installed plugins' jobs) with no kernel open, and serves a small
JSON API under its base URL (``/mashroom-jobs/api/...``) behind Jupyter's own
authentication and authorization.  Installing the package enables it (a
``jupyter_server_config.d`` file); ``jupyter server extension disable mashroom_jobs.serverext``
turns it off.  Settings: ``c.JobsServerExtension...`` and, as in a kernel,
``c.BackgroundJobService...`` in ``jupyter_server_config.py``.

Nothing here is imported by the rest of the package: it is the outermost room, and
jupyter_server is imported only when a server loads it.
"""

from __future__ import annotations

from typing import Any

__all__ = ["_jupyter_server_extension_points"]


def _jupyter_server_extension_points() -> list[dict[str, Any]]:
    """The extension's entry point, as jupyter_server looks it up."""
    from .app import JobsServerExtension

    return [{"module": "mashroom_jobs.serverext", "app": JobsServerExtension}]
