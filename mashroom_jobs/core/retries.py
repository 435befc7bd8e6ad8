"""Retries of failed runs: when one is scheduled, and when it gives way to a fire.

A failed run (not a manual one, nor one the user stopped) of a job with
``retries`` is tried again ``retry_delay`` seconds later, up to ``retries``
times.  A retry never overlaps the job's next scheduled fire: when that fire
comes first (or is already running) it is the retry, and the retry is dropped
(counted in ``skip_count``).  Kept apart from :mod:`.runner`, which only asks,
once per recorded run, whether a retry follows (:func:`schedule_retry`).
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import TYPE_CHECKING

from .records import JobInvocation
from .runs import Run

if TYPE_CHECKING:
    from .runner import Runner
    from .runtime import JobRuntime

__all__ = ["drop_retry", "retry", "schedule_retry"]

log = logging.getLogger("mashroom_jobs")


def schedule_retry(runner: Runner, run: Run, invocation: JobInvocation) -> bool:
    """Schedule a retry of ``run`` if it is due one (called under ``runtime.lock``);
    True when one is scheduled."""
    runtime = run.runtime
    spec = runtime.spec
    if (invocation.success or invocation.elsewhere or run.trigger == "manual"
            or run.stopped_by_user or run.attempt > spec.retries
            or not runtime.active or runtime.paused):
        return False
    following = runtime.next_fire
    if following is not None and following.timestamp() <= (
            runner.clock.now().timestamp() + spec.retry_delay):
        # the next fire comes first: it is the retry (decided now, whatever the order
        # in which threads see the fire and the retry's time)
        runtime.skip_count += 1
        log.warning("retry %d of job %r dropped: its next scheduled fire (%s) comes "
                    "before the retry would", run.attempt, spec.name, following)
        return False
    try:
        runtime.retry = runner.timer.call_later(
            spec.retry_delay, retry, runner, runtime, run.scheduled_for, run.attempt + 1)
    except RuntimeError:  # the timer stopped
        return False
    return True


def retry(runner: Runner, runtime: JobRuntime, scheduled_for: datetime | None,
          attempt: int) -> None:
    """On the timer thread: the retry is due."""
    with runtime.lock:
        runtime.retry = None
        if not runtime.active or runtime.paused:
            return
        if runtime.pending:  # the next fire is already running: it wins
            runtime.skip_count += 1
            log.warning("retry %d of job %r dropped: its next run was already going",
                        attempt - 1, runtime.spec.name)
            drop = True
        else:
            runtime.pending += 1
            drop = False
    if drop:
        runner.publisher.publish_later(runtime)
    else:
        runner.launch(runtime, "retry", scheduled_for, attempt, None)


def drop_retry(runtime: JobRuntime) -> None:
    """A fire came before a pending retry (called under ``runtime.lock``): it wins."""
    if runtime.retry is not None:
        runtime.retry.cancel()
        runtime.retry = None
        runtime.skip_count += 1
        log.warning("a retry of job %r was dropped: its next scheduled fire came first",
                    runtime.spec.name)
