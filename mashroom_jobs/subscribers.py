"""The service's subscribers to its runner's events: the jobs' ``state`` traits, the
metrics, the job store and the failure callbacks.

Each is a thin callable subscribed to the runner's
:class:`~mashroom_jobs.core.events.EventBus` for the event types it wants.  They run
on the thread that published (see the bus), so they only hand work on: failure
callbacks run on a :class:`FailureNotifier` thread of their own, never on the
timer's or a worker's; the store only queues the run for its writer thread.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Protocol

from .core.events import RunFinished, StateChanged
from .core.executors import DaemonThreadPool
from .core.records import JobInvocation, Outcome
from .job import BackgroundJob

__all__ = ["FailureCallback", "FailureNotifier", "RunSink", "announce_state", "keep_in"]

log = logging.getLogger("mashroom_jobs")

FailureCallback = Callable[[BackgroundJob, JobInvocation], object]


class RunSink(Protocol):
    """Somewhere finished runs are kept (the shared store)."""

    def record(self, job: str, invocation: JobInvocation) -> None: ...


def announce_state(event: StateChanged) -> None:
    """A watched job's state changed: its ``state`` trait tells its observers."""
    job = event.source
    if isinstance(job, BackgroundJob):
        job.announce_state(event.state)


def keep_in(sink: RunSink) -> Callable[[RunFinished], None]:
    """A subscriber that keeps each record in ``sink`` (the store), but fires another
    process ran: that process keeps those."""
    record = sink.record

    def keep(event: RunFinished) -> None:
        if event.record.outcome is not Outcome.ELSEWHERE:
            record(event.job, event.record)

    return keep


class FailureNotifier:
    """Calls the failure callbacks, in order, on one thread of its own (made on first use).

    Subscribed to :class:`RunFinished`, it hears the failures that are a fire's last
    word: not retried, not stopped by the user.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._callbacks: tuple[FailureCallback, ...] = ()
        self._thread: DaemonThreadPool | None = None

    def add(self, callback: FailureCallback) -> Callable[[], None]:
        """Call ``callback(job, invocation)`` for each failure; returns its remover."""
        if not callable(callback):
            raise TypeError(f"callback must be callable, got {type(callback).__name__}")
        with self._lock:
            self._callbacks = (*self._callbacks, callback)

        def remove() -> None:
            with self._lock:
                self._callbacks = tuple(c for c in self._callbacks if c is not callback)

        return remove

    def on_run(self, event: RunFinished) -> None:
        """The bus's callback: hand a final failure to the notifier thread."""
        job = event.source
        if (isinstance(job, BackgroundJob) and event.record.outcome.failed
                and not event.retrying and not event.stopped_by_user):
            self.notify(job, event.record)

    def notify(self, job: BackgroundJob, invocation: JobInvocation) -> None:
        """Hand a failure to the notifier thread; returns at once."""
        with self._lock:
            if self._thread is None:
                self._thread = DaemonThreadPool(1, name="mashroom-jobs-notify")
            thread = self._thread
        try:
            thread.dispatch(self._call_all, job, invocation)
        except RuntimeError:  # shut down: nobody to tell
            pass

    def _call_all(self, job: BackgroundJob, invocation: JobInvocation) -> None:
        for callback in self._callbacks:
            try:
                callback(job, invocation)
            except Exception:
                log.exception("a failure callback of job %r raised", job.name)

    def threads(self) -> tuple[threading.Thread, ...]:
        return self._thread.threads if self._thread is not None else ()

    def shutdown(self, wait: bool, timeout: float) -> None:
        if self._thread is not None:
            self._thread.shutdown(wait=wait, timeout=timeout)
