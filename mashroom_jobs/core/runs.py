"""One run in flight, and the facts the runner reports about runs.

A :class:`Run` lives from launch to record: ``QUEUED`` (launched, counted
against the overlap rule) → ``RUNNING`` (its callback started) → ``ENDED``
(its callback returned; its record is being written) → ``DONE`` (recorded; its
future resolved).  It is also the stop flag its job polls
(``context.stop_requested``).  :class:`RunFinished` is the past-tense event a
:class:`RunListener` hears when a run was recorded; a :class:`Claimer` decides
which process runs an exclusive fire.
"""

from __future__ import annotations

import contextvars
import threading
from collections.abc import Sequence
from concurrent.futures import Future
from datetime import datetime
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol

from .records import JobInvocation, JobState, Trigger

if TYPE_CHECKING:
    from .runtime import JobRuntime
    from .scheduler import TimerCall

__all__ = [
    "DONE", "ENDED", "QUEUED", "RUNNING", "Claimer", "Run", "RunFinished", "RunListener",
    "current_run", "enter_run", "leave_run", "stop_flag",
]

QUEUED, RUNNING, ENDED, DONE = range(4)


class RunFinished(NamedTuple):
    """A run ended and was recorded (the event the service applies to its job)."""

    job: str
    invocation: JobInvocation
    #: a retry of this run is scheduled: it is not the fire's last word yet
    retrying: bool
    #: the user stopped it (``job.stop()``, the Stop button): a failure nobody needs told of
    stopped_by_user: bool = False


class RunListener(Protocol):
    """Who hears about runs.  Called under the job's lock, in order: be quick."""

    def state_changed(self, runtime: JobRuntime, state: JobState) -> None: ...

    def run_finished(self, runtime: JobRuntime, event: RunFinished) -> None: ...


class Claimer(Protocol):
    """Decides which process runs an exclusive job's fire (the shared store)."""

    def claim(self, job: str, scheduled_for: datetime) -> str | None:
        """None when this process won the fire; else who did.  Raises
        :class:`StoreUnavailableError` when it cannot tell in a bounded time."""

    def claim_many(self, fires: Sequence[tuple[str, datetime]]) -> list[str | None]:
        """:meth:`claim` for several ``(job, scheduled_for)`` fires at once (one answer
        each, in order); raises :class:`StoreUnavailableError` for all of them."""


class Run:
    """One run in flight.  Also the stop flag its job polls (``context.stop_requested``)."""

    __slots__ = ("attempt", "event", "future", "handle", "note", "runtime", "scheduled_for",
                 "started_at", "state", "stop_reason", "stopped_by_user", "t0", "trigger",
                 "watch")

    def __init__(self, runtime: JobRuntime, trigger: Trigger, scheduled_for: datetime | None,
                 attempt: int, future: Future[JobInvocation] | None) -> None:
        self.runtime = runtime
        self.trigger = trigger
        self.scheduled_for = scheduled_for
        self.attempt = attempt
        self.future = future
        self.state = QUEUED
        self.stop_reason: str | None = None
        self.stopped_by_user = False
        self.handle: Any = None  # what cancels it: a task's or an executor's future
        self.watch: TimerCall | None = None  # its timeout, or the grace after a stop
        self.event: threading.Event | None = None  # made when a job first waits on it
        self.note = ""
        self.started_at: datetime | None = None
        self.t0 = 0.0

    def is_set(self) -> bool:
        """True once a stop or a timeout was requested."""
        return self.stop_reason is not None

    __bool__ = is_set

    def wait(self, timeout: float | None = None) -> bool:
        """Block until a stop is requested or ``timeout`` passes; True if stopped."""
        with self.runtime.lock:
            if self.stop_reason is not None:
                return True
            if self.event is None:
                self.event = threading.Event()
            event = self.event
        return event.wait(timeout)


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
