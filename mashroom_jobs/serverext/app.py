"""JobsServerExtension: the jupyter_server extension that hosts jobs in the server process.

An :class:`~jupyter_server.extension.application.ExtensionApp`, loaded by every Jupyter
server (JupyterLab, Notebook 7) of an environment where mashroom-jobs is installed
(``jupyter_server_config.d/mashroom_jobs.json``).  At load it makes one
:class:`~mashroom_jobs.BackgroundJobService` (``host_kind="server"``, on the kernels'
default store unless ``c.BackgroundJobService.store`` says otherwise), which hosts the
store's durable jobs like a kernel does; with ``c.JobsServerExtension.plugins = True`` it
also runs the installed plugins' jobs.  At the server's stop the service shuts down
(running jobs get ``shutdown_timeout`` seconds) and the host's heartbeat is removed.

A store that cannot be opened, or a setting the service refuses, is logged in the
server's log and leaves the server running without the host: the JSON API then answers
503 with the reason.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from jupyter_server.extension.application import ExtensionApp
from jupyter_server.utils import url_path_join
from traitlets import Bool, Float

from ..core.errors import MashroomJobsError
from ..core.events import RunFinished
from ..service import BackgroundJobService
from ..settings import store_configured
from ..store import default_store_path
from .handlers import handlers

__all__ = ["JobsServerExtension"]

#: the key of the server's activity the jobs' runs update (``last_activity_times``)
ACTIVITY_KEY = "mashroom_jobs"


class JobsServerExtension(ExtensionApp):
    """Hosts durable jobs (and, if asked, the plugins' jobs) in the Jupyter server.

    Configured in ``jupyter_server_config.py`` as ``c.JobsServerExtension.plugins = True``;
    the service as in a kernel, ``c.BackgroundJobService.store = "..."``.
    """

    name = "mashroom_jobs"
    #: no page of its own: the API only
    extension_url = "/mashroom-jobs/api/jobs"
    load_other_extensions = True

    plugins = Bool(
        False,
        help="Also run the installed background-job plugins' jobs in the server process "
             "(as `mashroom-jobs run` does). Off by default: kernels with the extension "
             "load them already, and a plugin's code then runs in the server process.",
    ).tag(config=True)
    runs_are_activity = Bool(
        False,
        help="Count each run of a job in the server as activity of the server (its "
             "/api/status last_activity), so that an idle culler (JupyterHub's "
             "jupyterhub-idle-culler, or ServerApp.shutdown_no_activity_timeout) does not "
             "stop a server whose jobs still run. Off: the server is culled as if its jobs "
             "were not there (durable jobs then run in another host, or catch up at the "
             "next start).",
    ).tag(config=True)
    shutdown_timeout = Float(
        5.0,
        help="Seconds the server's stop waits for running jobs (then they are abandoned).",
    ).tag(config=True)

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        #: the server's service, or None when it could not be made (``problem`` says why)
        self.service: BackgroundJobService | None = None
        self.problem: str | None = None
        self._loader: Any = None
        self._forward: logging.Handler | None = None

    # -- ExtensionApp's hooks ---------------------------------------------------------------

    def initialize_settings(self) -> None:
        """Make the server's service (the host), on the server's main thread at start."""
        self._route_log()
        try:
            service = self._make_service()
        except Exception as exc:  # a bad store or setting: the server must start anyway
            self.problem = f"{type(exc).__name__}: {exc}" if not isinstance(
                exc, MashroomJobsError) else str(exc)
            self._log.error("mashroom-jobs: the server does not host jobs: %s", self.problem)
            return
        self.service = service
        if self.runs_are_activity:
            activity = self.settings.get("last_activity_times")
            if isinstance(activity, dict):
                service.subscribe(_activity_recorder(activity), RunFinished)
        if self.plugins:
            from ..plugins import PluginLoader

            self._loader = PluginLoader(service)
            self._loader.load()  # never raises because of a plugin
        durable = service.durable
        base = self.serverapp.base_url if self.serverapp is not None else "/"
        self._log.info(
            "mashroom-jobs: the server hosts %s jobs of the store %s%s; API at %s",
            "the durable" if durable is not None and durable.host is not None else "no durable",
            service.store_path, " and the plugins' jobs" if self.plugins else "",
            url_path_join(base, "mashroom-jobs/api/"))

    def initialize_handlers(self) -> None:
        self.handlers.extend(handlers())

    async def stop_extension(self) -> None:
        """The server stops: shut the service down (off the event loop)."""
        service, self.service = self.service, None
        if service is not None:
            await asyncio.to_thread(self._shut_down, service)
        if self._forward is not None:
            logger = logging.getLogger("mashroom_jobs")
            logger.removeHandler(self._forward)
            logger.propagate = True
            self._forward = None

    @property
    def _log(self) -> Any:
        """The server's log (the extension's own is a logger of its own)."""
        return self.serverapp.log if self.serverapp is not None else self.log

    # -- the service -------------------------------------------------------------------------

    def _make_service(self) -> BackgroundJobService:
        kwargs: dict[str, Any] = {"parent": self, "host_kind": "server"}
        if not store_configured(self.config):
            kwargs["store"] = default_store_path()  # the kernels' store
        server = self.serverapp
        if server is not None:
            kwargs["host_details"] = {"server_url": server.connection_url,
                                      "root_dir": str(server.root_dir)}
        return BackgroundJobService(**kwargs)

    def _shut_down(self, service: BackgroundJobService) -> None:
        if self._loader is not None:
            self._loader.close()
            self._loader = None
        durable = service.durable
        if durable is not None and durable.host is not None:
            durable.host.close()  # first: its heartbeat leaves the store while it is open
        service.unschedule_all()
        left = service.shutdown(wait=True, timeout=self.shutdown_timeout)
        for job in left:
            self._log.warning("mashroom-jobs: job %r was still running when the server "
                             "stopped: it is abandoned", job.name)
        self._log.info("mashroom-jobs: the server's jobs host stopped")

    def _route_log(self) -> None:
        """The library's log records go to the server's log (not Python's last-resort
        stderr handler), unless the application configured the library's logger."""
        logger = logging.getLogger("mashroom_jobs")
        if logger.handlers:
            return
        self._forward = _Forward(self._log)
        logger.addHandler(self._forward)
        logger.setLevel(logging.INFO)
        logger.propagate = False


def _activity_recorder(activity: dict[str, Any]) -> Any:
    """A RunFinished subscriber that marks the server active at each run that ran here."""
    from jupyter_server._tz import utcnow

    def record(event: RunFinished) -> None:
        if event.record.outcome.ran:
            activity[ACTIVITY_KEY] = utcnow()

    return record


class _Forward(logging.Handler):
    """Hands the library's records to the server's logger (its handlers and format)."""

    def __init__(self, target: logging.Logger | logging.LoggerAdapter[Any]) -> None:
        super().__init__()
        self.target = target

    def emit(self, record: logging.LogRecord) -> None:
        logger = self.target.logger if isinstance(self.target, logging.LoggerAdapter) \
            else self.target
        if logger.isEnabledFor(record.levelno):
            logger.handle(record)
