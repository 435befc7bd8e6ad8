"""Retries of failed runs, decided by one pure function: :func:`plan_retry`.

A failed run (not a manual one, nor one the user stopped) of a job with
``retries`` is tried again ``retry_delay`` seconds later, up to ``retries``
times.  A retry never overlaps the job's next scheduled fire: when that fire
comes first, it is the retry, and the retry is dropped (counted in
``skip_count``).  The runner asks once per recorded run and acts on the answer.
"""

from __future__ import annotations

from typing import NamedTuple

from .records import Outcome, Trigger

__all__ = ["RetryPlan", "plan_retry"]


class RetryPlan(NamedTuple):
    """What follows a recorded run: a retry in ``delay`` seconds, or none; ``dropped``
    when one was due but the next fire comes first (it is the retry)."""

    delay: float | None
    dropped: bool = False


NO_RETRY = RetryPlan(None)


def plan_retry(*, outcome: Outcome, trigger: Trigger, attempt: int, stopped_by_user: bool,
               retries: int, retry_delay: float, now: float,
               next_fire: float | None) -> RetryPlan:
    """Whether run ``attempt`` (1 for a first run) is tried again, and when.

    ``now`` and ``next_fire`` (the job's next fire time, or None) are epoch seconds.
    A run that ran elsewhere, succeeded, was manual or stopped by the user is not
    retried; neither is one whose job has no attempts left.
    """
    if (not outcome.failed or trigger == "manual" or stopped_by_user
            or attempt > retries):
        return NO_RETRY
    if next_fire is not None and next_fire <= now + retry_delay:
        # the next fire comes first: it is the retry (decided now, whatever the order in
        # which threads later see the fire and the retry's time)
        return RetryPlan(None, dropped=True)
    return RetryPlan(retry_delay)
