"""Turning a job's state changes into :class:`~.events.StateChanged` events, coalesced.

Only jobs someone observes (``runtime.watched``) are published: for the others
nothing is built at all, so a run leaves no object behind for the garbage
collector.  A change the user makes (pause, resume, unschedule) is published at
once, on the user's thread; a run's end when its record is written; the rest
(a skipped fire, a coalesced misfire, a dropped retry) on the bookkeeping path,
where changes until then merge into one publication.  "Running" is published
only for runs still going :attr:`StatePublisher.running_delay` seconds after
they started: a quick run is one change (its end), and 10,000 starts cost one
timed call, not 10,000.

"Waiting" (a run queued behind busy workers) is published the same way.

Every publication takes its snapshot and publishes it under one lock (the
publisher's, not the job's): subscribers see each job's states in order, and may
call a job's verbs (which take the job's lock) without deadlocking.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from .events import EventBus, StateChanged
from .runtime import JobRuntime
from .scheduler import TimerCall

__all__ = ["StatePublisher"]

log = logging.getLogger("mashroom_jobs")


class StatePublisher:
    """Publishes the states of one runner's watched jobs on its :class:`EventBus`.

    Parameters
    ----------
    bus : EventBus
        Where :class:`StateChanged` events go.
    call_later : callable
        The timer's ``call_later`` (for "running" after :attr:`running_delay`).
    defer_later : callable
        The pool's ``defer_later``: the bookkeeping path, where changes coalesce.
    """

    #: seconds a run must last before "running" is published
    running_delay: float = 0.25

    def __init__(self, bus: EventBus, call_later: Callable[..., TimerCall],
                 defer_later: Callable[..., None]) -> None:
        self._bus = bus
        self._call_later = call_later
        self._defer_later = defer_later
        self._emit_lock = threading.RLock()  # reentrant: a subscriber may publish again
        self._lock = threading.Lock()
        self._running_soon: dict[JobRuntime, None] = {}
        self._running_call: TimerCall | None = None

    def publish(self, runtime: JobRuntime, *, unless_pending: bool = False) -> None:
        """Publish the job's state now, on this thread, if someone watches it.

        With ``unless_pending``, not while a run is queued or being recorded (its start
        or its end will publish).
        """
        runtime.publish_queued = False
        if not runtime.watched:
            return
        with self._emit_lock:
            if unless_pending and runtime.pending and not runtime.started:
                return  # (read without the job's lock: a stale answer only delays)
            state = runtime.snapshot()
            if state == runtime.published:
                return
            runtime.published = state
            self._bus.publish(StateChanged(runtime.spec.name, state, runtime.owner))

    def publish_later(self, runtime: JobRuntime) -> None:
        """Publish soon, on the bookkeeping path; changes until then are coalesced."""
        if not runtime.watched or runtime.publish_queued:
            return
        runtime.publish_queued = True
        try:
            self._defer_later(self._publish_queued, runtime)
        except RuntimeError:  # shut down: nobody is looking any more
            pass

    def soon(self, runtime: JobRuntime) -> None:
        """A job started running (or a run began to wait for a thread): publish it if
        it lasts :attr:`running_delay` seconds."""
        if not runtime.watched:
            return
        with self._lock:
            self._running_soon[runtime] = None
            if self._running_call is not None:
                return
            try:
                self._running_call = self._call_later(
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
            self._defer_later(self._publish_running, runtimes)
        except RuntimeError:
            pass

    def _publish_running(self, runtimes: list[JobRuntime]) -> None:
        for runtime in runtimes:
            if runtime.started or runtime.waiting:
                self.publish(runtime)

    def _publish_queued(self, runtime: JobRuntime) -> None:
        if runtime.publish_queued:
            self.publish(runtime, unless_pending=True)
