"""BackgroundJob: one scheduled job, as users see it (observable, read-only).

A job's attributes read the core's live record of it
(:class:`~mashroom_jobs.core.runtime.JobRuntime`).  What observers watch is one
name, ``state`` (a :class:`~mashroom_jobs.core.records.JobState`)::

    job.observe(lambda change: print(change.new.run_count), names="state")

``state`` is announced after each run, pause, resume, skip or unschedule, on
the thread that made the change (a worker or the pool's bookkeeping thread for
runs, your thread for pause/resume), one announcement at a time: observers see
each job's states in order and must be quick.  Changes between two announcements
are coalesced: a run that starts and ends in between is one change, with
``running`` False and ``run_count`` one higher.  An observer that raises is
logged and never reaches the scheduler.

``state`` is a property, not a stored trait: reading it builds the state now,
and announcements are made (with traitlets' public ``notify_change``) only while
someone observes the job, so 10,000 unobserved jobs build nothing per run.  The
verbs (:meth:`~BackgroundJob.invoke_now`, :meth:`~BackgroundJob.pause`, ...) call
the service's public methods.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Executor, Future
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

from traitlets import All, Bunch, HasTraits

from .core.cron import CronSchedule, zone_name
from .core.records import JobInvocation, JobState, Trigger
from .core.runtime import JobRuntime

if TYPE_CHECKING:
    from .targets import Target

__all__ = ["BackgroundJob", "JobHost", "JobInvocation", "JobState", "Trigger"]


class JobHost(Protocol):
    """What a job's verbs need of its service (BackgroundJobService implements it)."""

    def run_job(self, job: BackgroundJob | str) -> Future[JobInvocation]: ...

    def pause_job(self, job: BackgroundJob | str) -> None: ...

    def resume_job(self, job: BackgroundJob | str) -> None: ...

    def stop_job(self, job: BackgroundJob | str) -> int: ...


class BackgroundJob(HasTraits):
    """One scheduled job. Created by :meth:`BackgroundJobService.schedule_job`."""

    def __init__(self, host: JobHost, runtime: JobRuntime, *, target: Target | None = None,
                 durable: bool = False) -> None:
        self._watchers = 0  # before HasTraits' init, which may observe
        super().__init__()
        self._host = host
        self._runtime = runtime
        self._target = target
        self._durable = durable
        self._description: str | None = None
        self._shown: JobState | None = None  # what observers were last told

    @property
    def state(self) -> JobState:
        """The job's state now: running, paused, next and last run, counts (observable)."""
        return self._runtime.snapshot()

    # -- observing `state` --

    def observe(self, handler: Any, names: Any = All, type: Any = "change") -> None:
        super().observe(handler, names=names, type=type)
        if _names_state(names):
            self._watchers += 1
            if self._shown is None:
                self._shown = self._runtime.snapshot()
            self._runtime.watched = True

    def unobserve(self, handler: Any, names: Any = All, type: Any = "change") -> None:
        super().unobserve(handler, names=names, type=type)
        if _names_state(names):
            self._watchers = max(0, self._watchers - 1)
            self._runtime.watched = self._watchers > 0

    def unobserve_all(self, name: Any = All) -> None:
        super().unobserve_all(name)
        if _names_state(name):
            self._watchers = 0
            self._runtime.watched = False

    def announce_state(self, state: JobState) -> None:
        """Tell the observers of ``state`` (the service calls it; one call at a time)."""
        old, self._shown = self._shown, state
        self.notify_change(Bunch(name="state", old=old, new=state, owner=self, type="change"))

    # -- what it is (fixed: scheduling the name again makes a new job) --

    @property
    def runtime(self) -> JobRuntime:
        """The core's record of this job (counters, runs in flight): for the service."""
        return self._runtime

    @property
    def name(self) -> str:
        """The job's unique name in its service."""
        return self._runtime.spec.name

    @property
    def schedule(self) -> CronSchedule | None:
        """The parsed schedule (None for a run-once job)."""
        return self._runtime.spec.schedule

    @property
    def cron_schedule(self) -> str | None:
        """The cron expression, or None for a job that runs once."""
        schedule = self._runtime.spec.schedule
        return schedule.expression if schedule is not None else None

    @property
    def timezone(self) -> str:
        """The IANA name of the zone the expression is evaluated in."""
        return zone_name(self._runtime.spec.zone)

    @property
    def description(self) -> str:
        """The schedule in plain English (computed on first read: ~300 µs each)."""
        if self._description is None:
            schedule = self._runtime.spec.schedule
            self._description = schedule.describe() if schedule is not None else "Runs once"
        return self._description

    @property
    def callback(self) -> Callable[..., Any]:
        """The callable the job runs (a target's resolved callback, for a target)."""
        return self._runtime.spec.callback

    @property
    def target(self) -> Target | None:
        """What the job runs, as data (a command, a ``"module:function"`` reference, a
        notebook), or None for a plain callable."""
        return self._target

    @property
    def durable(self) -> bool:
        """True for a durable job (kept in the job store, hosted by every process attached
        to it): its verbs act through the store."""
        return self._durable

    @property
    def overlap(self) -> str:
        """``"skip"`` or ``"allow"``: what a fire does while a run is still going."""
        return self._runtime.spec.overlap

    @property
    def executor(self) -> Executor | None:
        """The executor of this process the job runs on (None: the service's threads)."""
        return self._runtime.spec.executor

    @property
    def remote(self) -> bool:
        """True when the job runs on a cluster or in other processes."""
        return self._runtime.spec.remote is not None

    @property
    def timeout(self) -> float | None:
        """Seconds a run may take before it is stopped (None: no limit)."""
        return self._runtime.spec.timeout

    @property
    def retries(self) -> int:
        """How many times a failed run is retried."""
        return self._runtime.spec.retries

    @property
    def retry_delay(self) -> float:
        """Seconds between a failure and its retry."""
        return self._runtime.spec.retry_delay

    @property
    def exclusive(self) -> bool:
        """True when each fire runs in one process of those sharing the store."""
        return self._runtime.spec.exclusive

    # -- where it stands (live; ``state`` is the published snapshot) --

    @property
    def next_invocation(self) -> datetime | None:
        """The next fire time (aware, in the job's zone); None when paused or done."""
        return self._runtime.next_fire

    @property
    def last_invocation(self) -> JobInvocation | None:
        """The last finished run (or a fire another process ran)."""
        return self._runtime.last

    @property
    def failing(self) -> bool:
        """True when the last run failed (cheaper than reading ``last_invocation``)."""
        return self._runtime.failing

    @property
    def history(self) -> tuple[JobInvocation, ...]:
        """The last runs kept in memory (``service.history_size``), newest last."""
        return self._runtime.history

    @property
    def running(self) -> bool:
        """True while a run is in progress."""
        return self._runtime.started > 0

    @property
    def waiting(self) -> int:
        """Runs launched that wait for a free thread (every worker is busy)."""
        return self._runtime.waiting

    @property
    def paused(self) -> bool:
        """True while the schedule is paused."""
        return self._runtime.paused

    @property
    def active(self) -> bool:
        """False once unscheduled, replaced or shut down."""
        return self._runtime.active

    @property
    def run_count(self) -> int:
        """Finished runs in this process."""
        return self._runtime.run_count

    @property
    def failure_count(self) -> int:
        """Finished runs that failed (raised, stopped or timed out)."""
        return self._runtime.failure_count

    @property
    def skip_count(self) -> int:
        """Fires skipped because a run was still going (and retries a fire overtook)."""
        return self._runtime.skip_count

    @property
    def misfire_count(self) -> int:
        """Times several missed fires were coalesced into one run."""
        return self._runtime.misfire_count

    @property
    def elsewhere_count(self) -> int:
        """Fires of this exclusive job that another process claimed and ran."""
        return self._runtime.elsewhere_count

    # -- verbs --

    def invoke_now(self) -> Future[JobInvocation]:
        """Start a run now, whatever the schedule; resolves with its JobInvocation.

        A manual run always starts here (it is never claimed), even when a run is
        going and ``overlap`` is ``"skip"``: it was asked for explicitly.
        """
        return self._host.run_job(self)

    def pause(self) -> None:
        """Stop firing on schedule until :meth:`resume`. Pausing twice is harmless."""
        self._host.pause_job(self)

    def resume(self) -> None:
        """Fire again on schedule, from the next fire time after now.

        Fires missed while paused are not run.
        """
        self._host.resume_job(self)

    def stop(self) -> int:
        """Ask the job's runs in progress to stop; returns how many were asked.

        A coroutine is cancelled; a plain function sees ``context.stop_requested``
        (or ``context.check_stop()`` raises); a run that has not ended
        ``stop_grace`` seconds later is recorded as stopped and its thread abandoned.
        """
        return self._host.stop_job(self)

    def __repr__(self) -> str:
        runtime = self._runtime
        state = "paused" if runtime.paused else ("active" if runtime.active else "unscheduled")
        schedule = self.cron_schedule if self.cron_schedule is not None else "once"
        kind = "durable " if self._durable else ""
        return (f"<{kind}BackgroundJob {self.name!r} {schedule!r} {state} "
                f"runs={runtime.run_count}>")


def _names_state(names: Any) -> bool:
    if names is All:
        return True
    if isinstance(names, str):
        return names == "state"
    return "state" in names or All in names
