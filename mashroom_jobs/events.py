"""Where the runner's reports go: each job's ``state`` trait, the metrics, the store and
the failure callbacks.

:class:`JobsListener` is the service's :class:`~mashroom_jobs.core.runs.RunListener`.
It runs under the job's lock on the thread that recorded the run, so it only
hands work on: failure callbacks run on a :class:`FailureNotifier` thread of
their own, never on the timer's or a worker's.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Protocol

from .core.executors import DaemonThreadPool
from .core.records import JobInvocation, JobState
from .core.runs import RunFinished
from .core.runtime import JobRuntime
from .job import BackgroundJob
from .metrics import MetricsRecorder

__all__ = ["FailureCallback", "FailureNotifier", "JobsListener", "RunSink"]

log = logging.getLogger("mashroom_jobs")

FailureCallback = Callable[[BackgroundJob, JobInvocation], object]


class RunSink(Protocol):
    """Somewhere finished runs are kept (the shared store)."""

    def record(self, job: str, invocation: JobInvocation) -> None: ...


class FailureNotifier:
    """Calls the failure callbacks, in order, on one thread of its own (made on first use)."""

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


class JobsListener:
    """Applies the runner's reports: a job's state to its trait, a finished run to the
    metrics and the store, a final failure to the notifier."""

    def __init__(self, metrics: MetricsRecorder, notifier: FailureNotifier) -> None:
        self.metrics = metrics
        self.notifier = notifier
        #: where finished runs are written besides memory (the shared store), if any
        self.sink: RunSink | None = None

    def state_changed(self, runtime: JobRuntime, state: JobState) -> None:
        job = runtime.owner
        if isinstance(job, BackgroundJob):
            job.announce_state(state)

    def run_finished(self, runtime: JobRuntime, event: RunFinished) -> None:
        invocation = event.invocation
        self.metrics.record(event.job, invocation)
        if self.sink is not None and not invocation.elsewhere:
            self.sink.record(event.job, invocation)
        job = runtime.owner
        if (isinstance(job, BackgroundJob) and not invocation.success
                and not invocation.elsewhere and not event.retrying
                and not event.stopped_by_user):
            self.notifier.notify(job, invocation)
