"""Stopping runs: a stop request, a timeout, and giving up on a run that ignores both.

A stop (``job.stop()``, the Stop button) or a timeout sets the run's stop flag
(``context.stop_requested``) and cancels what can be cancelled (a coroutine's
task, an executor's or a cluster's future).  A run stopped while queued is
recorded at once; one that ignores a stop (or a timeout) for
:attr:`.Runner.stop_grace` seconds is recorded as failed and its thread
abandoned: whatever it does later is dropped (see :mod:`.runs`).  Kept apart
from :mod:`.runner`: none of this is on the way of a run that ends by itself.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from .runs import ENDED, QUEUED, RUNNING, Run

if TYPE_CHECKING:
    from .runner import Runner

__all__ = ["abandon", "request_stop", "time_out"]

log = logging.getLogger("mashroom_jobs")


def time_out(runner: Runner, run: Run) -> None:
    """On the timer thread: the run's ``timeout`` is over."""
    timeout = run.runtime.spec.timeout
    request_stop(runner, run, f"timed out after {timeout:g} s", by_user=False)


def request_stop(runner: Runner, run: Run, reason: str, *, by_user: bool) -> None:
    """Ask ``run`` to stop (once; a run already ended or asked is left alone)."""
    runtime = run.runtime
    with runtime.lock:
        if run.state >= ENDED or run.stop_reason is not None:
            return
        run.stop_reason = reason
        run.stopped_by_user = by_user
        queued = run.state == QUEUED
        event = run.event
    if event is not None:
        event.set()
    handle = run.handle
    if handle is not None:
        handle.cancel()  # a coroutine's task, an executor's or a cluster's future
    if queued:  # never started: done now (a worker that picks it up skips it)
        runner.finish(run, runner.failed(run, reason))
        return
    if run.watch is not None:
        run.watch.cancel()
    try:
        run.watch = runner.timer.call_later(runner.stop_grace, abandon, runner, run)
    except RuntimeError:  # the timer stopped: shutting down, which abandons it anyway
        pass


def abandon(runner: Runner, run: Run) -> None:
    """The grace after a stop is over and the callback is still running: give up on it."""
    with run.runtime.lock:
        if run.state != RUNNING:
            return
    runner.abandoned_runs += 1
    log.warning("Background job %r did not stop within %g s of being asked; its thread "
                "is abandoned and whatever it does later is dropped",
                run.runtime.spec.name, runner.stop_grace)
    assert run.stop_reason is not None
    runner.finish(run, runner.failed(run, run.stop_reason))
