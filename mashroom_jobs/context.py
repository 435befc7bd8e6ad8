"""PluginContext: what a job (or a plugin's bootstrap) may need from its host.

Mirrors Mashroom's ``pluginContext``: ``context.services.background_jobs`` is
the service (Mashroom: ``pluginContext.services.backgroundJobs.service``) and
``context.logger_factory(name)`` returns a logger (``loggerFactory(category)``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any, Protocol

from .core.errors import JobStopped
from .core.records import JobInvocation
from .core.runs import current_run, stop_flag
from .job import BackgroundJob

__all__ = ["BackgroundJobs", "PluginContext", "PluginContextHolder", "PluginServices",
           "check_stop", "report_artifact", "report_progress", "stop_requested"]


class BackgroundJobs(Protocol):
    """What a job or a plugin reaches through ``context.services.background_jobs``: the
    verbs of :class:`~mashroom_jobs.BackgroundJobService` (which implements it)."""

    # schedule_job(name, cron_schedule, callback, **options): its keyword arguments are
    # the service's to define, so the protocol types it as any callable returning the job
    @property
    def schedule_job(self) -> Callable[..., BackgroundJob]: ...

    def unschedule_job(self, name: str) -> None: ...

    def get_job(self, name: str) -> BackgroundJob | None: ...

    @property
    def jobs(self) -> tuple[BackgroundJob, ...]: ...

    def run_job(self, job: BackgroundJob | str) -> Future[JobInvocation]: ...

    def pause_job(self, job: BackgroundJob | str) -> None: ...

    def resume_job(self, job: BackgroundJob | str) -> None: ...

    def stop_job(self, job: BackgroundJob | str) -> int: ...

    @property
    def context(self) -> PluginContext: ...


def _logger_factory(name: str) -> logging.Logger:
    # module level (not a lambda): a context must pickle to reach a Dask worker
    return logging.getLogger(name)


@dataclass(frozen=True)
class PluginServices:
    """The services a job can reach: only ``background_jobs`` for now (None on a worker)."""

    background_jobs: BackgroundJobs | None


@dataclass(frozen=True)
class PluginContext:
    """Passed to a job's callback (when it takes one argument).

    Attributes
    ----------
    services : PluginServices
        ``services.background_jobs`` is the BackgroundJobService running the job
        (None when the job runs on a Dask worker or in another process).
    logger_factory : callable
        ``logger_factory(name)`` returns a standard :class:`logging.Logger`.
    shell : IPython shell or None
        The kernel's shell when the service runs in IPython, else None.
    stop_requested : flag
        Set when the run was asked to stop or timed out: ``if
        context.stop_requested:``, ``.is_set()``, ``.wait(seconds)`` (True once set).
        Long jobs poll it; never set outside a run or on a remote worker.
    """

    services: PluginServices
    logger_factory: Callable[[str], logging.Logger] = field(default=_logger_factory)
    shell: Any = None

    @property
    def stop_requested(self) -> Any:
        """The current run's stop flag (see the class docstring)."""
        return stop_requested()

    def check_stop(self) -> None:
        """Raise :class:`~mashroom_jobs.JobStopped` if the current run was asked to stop."""
        check_stop()

    def report_progress(self, text: str | None, detail: str | None = None) -> None:
        """Say how far the current run is (see :func:`report_progress`)."""
        report_progress(text, detail)


def report_progress(text: str | None, detail: str | None = None) -> None:
    """Say how far the run this code is in has come: ``report_progress("step 3 of 10")``.

    The job's ``state.progress`` (and its row in the panel) shows ``text`` while the run
    goes on, ``detail`` as its tooltip; None clears it; it goes when the run ends.
    Changes are published coalesced, so calling it often is cheap.  Outside a run (or on
    a remote worker) it does nothing.
    """
    run = current_run()
    if run is not None:
        run.report_progress(text, detail)


def report_artifact(path: str | None = None, revision: str | None = None) -> None:
    """Keep in the current run's record a file it produced (``path``: a notebook job's
    executed notebook) and which revision of its target ran (``revision``: a content
    hash).  Either may be given alone; outside a run it does nothing."""
    run = current_run()
    if run is not None:
        if path is not None:
            run.artifact = str(path)
        if revision is not None:
            run.revision = str(revision)


def stop_requested() -> Any:
    """The stop flag of the run this code is in (for a ``%%schedule`` cell, which gets no
    context): ``if mashroom_jobs.stop_requested(): return``."""
    return stop_flag()


def check_stop() -> None:
    """Raise :class:`~mashroom_jobs.JobStopped` if the run this code is in was asked to stop
    (or timed out)."""
    flag = stop_flag()
    if flag.is_set():
        raise JobStopped(str(getattr(flag, "stop_reason", None) or "stopped"))


class PluginContextHolder:
    """Handed to a plugin's bootstrap; ``get_plugin_context()`` returns the context.

    The context is looked up at call time, so a plugin that keeps the holder
    always sees the current one (Mashroom's ``pluginContextHolder``).
    """

    def __init__(self, service: BackgroundJobs) -> None:
        self._service = service

    def get_plugin_context(self) -> PluginContext:
        return self._service.context
