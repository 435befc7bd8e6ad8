"""The run this thread (or asyncio task) is in: the stop flag jobs poll, and the
marker the runner sets around a callback (a context variable, so threads and tasks
each see their own).
"""

from __future__ import annotations

import contextvars
import threading

from .runtime import Run

__all__ = ["current_run", "enter_run", "leave_run", "stop_flag"]


class _NeverStopped:
    """The stop flag outside a run: never set."""

    def is_set(self) -> bool:
        return False

    def __bool__(self) -> bool:
        return False

    def wait(self, timeout: float | None = None) -> bool:
        threading.Event().wait(timeout)
        return False


_NEVER = _NeverStopped()
_current_run: contextvars.ContextVar[Run | None] = contextvars.ContextVar(
    "mashroom_jobs_run", default=None
)


def stop_flag() -> Run | _NeverStopped:
    """The stop flag of the run this thread (or task) is in."""
    run = _current_run.get()
    return _NEVER if run is None else run


def current_run() -> Run | None:
    """The run this thread (or task) is executing, if any."""
    return _current_run.get()


def enter_run(run: Run) -> contextvars.Token[Run | None]:
    """Mark this thread (or task) as executing ``run``, until :func:`leave_run`."""
    return _current_run.set(run)


def leave_run(token: contextvars.Token[Run | None]) -> None:
    _current_run.reset(token)
