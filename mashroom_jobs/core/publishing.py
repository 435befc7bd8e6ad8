"""Turning a job's state changes into :class:`JobState` publications, coalesced.

What observers see of a job is its last published state.  A change the user
makes (pause, resume, unschedule) is published at once, on the user's thread; a
run's record when it is written; the rest (a skipped fire, a coalesced misfire,
a dropped retry) on the bookkeeping path, where changes until then merge into
one publication.  "Running" is published only for runs still going
:attr:`StatePublisher.running_delay` seconds after they started: a quick run is
one change (its end), and 10,000 starts cost one timed call, not 10,000.
Every publication of a job is made under its lock, so observers see its
states in order.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

from .records import JobState
from .runs import RunFinished, RunListener

if TYPE_CHECKING:
    from .executors import DaemonThreadPool
    from .runtime import JobRuntime
    from .scheduler import Timer, TimerCall

__all__ = ["StatePublisher"]

log = logging.getLogger("mashroom_jobs")


class StatePublisher:
    """Publishes the jobs' states of one runner to its :class:`RunListener`."""

    #: seconds a run must last before "running" is published
    running_delay: float = 0.25

    def __init__(self, listener: RunListener, timer: Timer,
                 pool: Callable[[], DaemonThreadPool]) -> None:
        self.listener = listener
        self._timer = timer
        self._pool = pool  # the runner's (made on first use)
        self._lock = threading.Lock()
        self._running_soon: dict[JobRuntime, None] = {}
        self._running_call: TimerCall | None = None

    def publish(self, runtime: JobRuntime) -> None:
        """Publish the job's state now, on this thread."""
        with runtime.lock:
            runtime.publish_queued = False
            self._emit(runtime, runtime.snapshot())

    def publish_later(self, runtime: JobRuntime) -> None:
        """Publish soon, on the bookkeeping path; changes until then are coalesced."""
        with runtime.lock:
            if runtime.publish_queued:
                return
            runtime.publish_queued = True
        try:
            self._pool().defer_later(self._publish_queued, runtime)
        except RuntimeError:  # shut down: nobody is looking any more
            pass

    def finished(self, runtime: JobRuntime, event: RunFinished) -> None:
        """A run was recorded (called under ``runtime.lock``): its state goes with it."""
        runtime.publish_queued = False
        runtime.published = event.state
        try:
            self.listener.run_finished(runtime, event)
        except Exception:
            log.exception("a listener of job %r raised", runtime.spec.name)

    def run_started(self, runtime: JobRuntime) -> None:
        """A job's first run in flight started: say "running" if it lasts."""
        with self._lock:
            self._running_soon[runtime] = None
            if self._running_call is not None:
                return
            try:
                self._running_call = self._timer.call_later(
                    self.running_delay, self._hand_over_running)
            except RuntimeError:  # the timer stopped: shutting down
                pass

    def _hand_over_running(self) -> None:
        # on the timer thread: the publishing (and observers) go to the bookkeeping path
        with self._lock:
            runtimes = list(self._running_soon)
            self._running_soon.clear()
            self._running_call = None
        try:
            self._pool().defer_later(self._publish_running, runtimes)
        except RuntimeError:
            pass

    def _publish_running(self, runtimes: list[JobRuntime]) -> None:
        for runtime in runtimes:
            with runtime.lock:
                if runtime.started:
                    self._emit(runtime, runtime.snapshot())

    def _publish_queued(self, runtime: JobRuntime) -> None:
        with runtime.lock:
            if not runtime.publish_queued:
                return
            runtime.publish_queued = False
            if runtime.pending and not runtime.started:
                return  # a run is queued or being recorded: its start or end publishes
            self._emit(runtime, runtime.snapshot())

    def _emit(self, runtime: JobRuntime, state: JobState) -> None:
        # under runtime.lock
        if state == runtime.published:
            return
        runtime.published = state
        try:
            self.listener.state_changed(runtime, state)
        except Exception:
            log.exception("a listener of job %r raised", runtime.spec.name)
