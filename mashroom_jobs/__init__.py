"""mashroom-jobs: cron background jobs for Jupyter kernels.

The scheduling core (:mod:`mashroom_jobs.core`) has no Jupyter imports; the
panel, the magics, the plugin loader and the IPython extension load lazily.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._version import __version__
from .context import (
    PluginContext,
    PluginContextHolder,
    check_stop,
    report_progress,
    stop_requested,
)
from .core.cron import CronSchedule
from .core.errors import (
    InvalidCronExpressionError,
    InvalidTimezoneError,
    JobInputError,
    JobNotScheduledError,
    JobStopped,
    MashroomJobsError,
    ServiceShutdownError,
    StoreError,
    StoreUnavailableError,
    TargetError,
    TargetUnavailableError,
)
from .core.events import FireMissed, FiresCoalesced, RunFinished, StateChanged, Subscription
from .core.records import Outcome
from .job import BackgroundJob, JobInvocation, JobState
from .service import BackgroundJobService
from .targets import Command, FunctionRef, Notebook

if TYPE_CHECKING:
    from IPython.core.interactiveshell import InteractiveShell

__all__ = [
    "BackgroundJob",
    "BackgroundJobService",
    "Command",
    "CronSchedule",
    "FireMissed",
    "FiresCoalesced",
    "FunctionRef",
    "InvalidCronExpressionError",
    "InvalidTimezoneError",
    "JobInputError",
    "JobInvocation",
    "JobNotScheduledError",
    "JobState",
    "JobStopped",
    "MashroomJobsError",
    "Notebook",
    "Outcome",
    "PluginContext",
    "PluginContextHolder",
    "RunFinished",
    "ServiceShutdownError",
    "StateChanged",
    "StoreError",
    "StoreUnavailableError",
    "Subscription",
    "TargetError",
    "TargetUnavailableError",
    "__version__",
    "check_stop",
    "report_progress",
    "stop_requested",
]


def load_ipython_extension(ipython: InteractiveShell) -> None:
    """``%load_ext mashroom_jobs``."""
    from ._extension import load_ipython_extension as load

    load(ipython)


def unload_ipython_extension(ipython: InteractiveShell) -> None:
    """``%unload_ext mashroom_jobs``."""
    from ._extension import unload_ipython_extension as unload

    unload(ipython)


_LAZY = {
    # name -> module that defines it; imported on first access (PEP 562)
    "JobsPanel": ".panel",
    "RecentRuns": ".panel",
    "get_service": "._extension",
    "background_job_plugin": ".plugins",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'mashroom_jobs' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value
