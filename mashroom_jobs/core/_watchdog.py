"""Stops, timeouts, and giving up on a run that ignores both: the :class:`Watchdog`.

A stop (``job.stop()``, the Stop button) or a timeout sets the run's stop flag
(``context.stop_requested``) and cancels what can be cancelled (a coroutine's
task, an executor's or a cluster's future).  A run stopped while queued is
recorded at once; one that ignores a stop (or a timeout) for ``stop_grace``
seconds is recorded as stopped (or timed out) and abandoned: its thread is given
back to the pool, which replaces it (see ``executors.DaemonThreadPool.retire``),
and whatever the run does later is dropped.

The watchdog owns its timed calls and its count of abandoned runs; it knows the
rest of the runner only through the callables it is given.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from .runtime import Run, StopRequest
from .scheduler import TimerCall

__all__ = ["Watchdog"]

log = logging.getLogger("mashroom_jobs")

CallLater = Callable[..., TimerCall]


class Watchdog:
    """Timeouts and stops of one runner's runs.

    Parameters
    ----------
    call_later : callable
        The timer's ``call_later(delay, fn, *args)``; raises ``RuntimeError`` once the
        timer stopped.
    stop_grace : float
        Seconds a run may go on after a stop or a timeout before it is abandoned.
    end_queued : callable
        ``end_queued(run)``: record a run stopped before it started.
    abandon : callable
        ``abandon(run)``: record a run that ignored its stop, and give its thread back.
    """

    def __init__(self, call_later: CallLater, stop_grace: float, *,
                 end_queued: Callable[[Run], None], abandon: Callable[[Run], None]) -> None:
        self._call_later = call_later
        self.stop_grace = stop_grace
        self._end_queued = end_queued
        self._abandon = abandon
        #: runs that ignored a stop or a timeout past the grace period
        self.abandoned = 0

    def watch(self, run: Run) -> None:
        """``run`` started: arm its timeout, if its job has one."""
        timeout = run.runtime.spec.timeout
        if timeout is not None:
            try:
                run.watch = self._call_later(timeout, self._time_out, run)
            except RuntimeError:  # the timer stopped: shutting down
                pass

    def _time_out(self, run: Run) -> None:
        """On the timer thread: the run's ``timeout`` is over."""
        timeout = run.runtime.spec.timeout
        self.request_stop(run, f"timed out after {timeout:g} s", by_user=False,
                          timed_out=True)

    def request_stop(self, run: Run, reason: str, *, by_user: bool,
                     timed_out: bool = False) -> None:
        """Ask ``run`` to stop (once; a run already ended or asked is left alone)."""
        found = run.runtime.request_stop(run, reason, by_user=by_user, timed_out=timed_out)
        if found is StopRequest.NONE:
            return
        handle = run.handle
        if handle is not None:
            handle.cancel()  # a coroutine's task, an executor's or a cluster's future
        if found is StopRequest.QUEUED:  # never started: done now (a worker skips it)
            self._end_queued(run)
            return
        if run.watch is not None:
            run.watch.cancel()
        try:
            run.watch = self._call_later(self.stop_grace, self._give_up, run)
        except RuntimeError:  # the timer stopped: shutting down, which abandons it anyway
            pass

    def _give_up(self, run: Run) -> None:
        """The grace after a stop is over: abandon the run if it is still going."""
        if not run.runtime.still_running(run):
            return
        self.abandoned += 1
        log.warning("Background job %r did not stop within %g s of being asked; it is "
                    "abandoned (its thread is replaced) and whatever it does later is dropped",
                    run.runtime.spec.name, self.stop_grace)
        self._abandon(run)

    @staticmethod
    def done(run: Run) -> None:
        """``run`` was recorded: its timeout or grace no longer matters."""
        if run.watch is not None:
            run.watch.cancel()
