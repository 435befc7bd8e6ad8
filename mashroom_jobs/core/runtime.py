"""One job's runtime: what it runs (:class:`JobSpec`) and where it stands (:class:`JobRuntime`).

A JobRuntime is the timer's target for its job, counts its runs in flight
(the overlap rule), and keeps its counters and its recent runs (a compact
:class:`~.history.RunHistory`) in plain attributes.  It never reads the clock
or runs anything itself: it asks its :class:`~mashroom_jobs.core.runner.Runner`.
While someone watches (``watched``), every change of what they may see goes out
as one :class:`~mashroom_jobs.core.records.JobState`, through the runner's
publisher, to the service's ``BackgroundJob``.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import Executor, Future
from datetime import datetime, tzinfo
from typing import TYPE_CHECKING, Any, Literal, NamedTuple

from .callables import CallbackKind
from .cron import CronSchedule
from .errors import JobNotScheduledError
from .history import RunHistory
from .records import JobInvocation, JobState, Trigger
from .retries import drop_retry
from .scheduler import TimerCall, TimerEntry

if TYPE_CHECKING:
    from .remote import RemoteBackend
    from .runner import Runner

__all__ = ["JobRuntime", "JobSpec", "Overlap"]

Overlap = Literal["skip", "allow"]


class JobSpec(NamedTuple):
    """What a job runs and how; fixed for the job's life (scheduling again replaces the job)."""

    name: str
    callback: Callable[..., Any]
    kind: CallbackKind
    schedule: CronSchedule | None
    zone: tzinfo
    overlap: Overlap = "skip"
    #: an executor of this process (the callback runs there with the full context)
    executor: Executor | None = None
    #: a cluster or process pool: only the callback travels (see core.remote)
    remote: RemoteBackend | None = None
    timeout: float | None = None
    retries: int = 0
    retry_delay: float = 30.0
    #: claim each scheduled fire in the shared store (or cluster): it runs in one process
    exclusive: bool = False


class JobRuntime:
    """The mutable half of a job.  Everything changes under :attr:`lock`."""

    __slots__ = (
        "active", "elsewhere_count", "entry", "failure_count", "lock", "misfire_count", "owner",
        "paused", "pending", "publish_queued", "published", "retry", "run_count", "runner",
        "runs", "skip_count", "spec", "started", "watched",
    )

    def __init__(self, spec: JobSpec, runner: Runner, owner: object = None) -> None:
        self.spec = spec
        self.runner = runner
        #: the object the listener publishes to (the service's BackgroundJob)
        self.owner = owner
        # held briefly, never while observers run (see publishing.py)
        self.lock = threading.Lock()
        self.entry: TimerEntry | None = None
        self.retry: TimerCall | None = None
        self.active = True
        self.paused = False
        self.pending = 0  # runs launched and not finished: the overlap rule counts these
        self.started = 0  # runs started and not finished: "running"
        self.run_count = self.failure_count = self.skip_count = 0
        self.misfire_count = self.elsewhere_count = 0
        self.runs = RunHistory(runner.history_size)
        #: someone observes the job's state: publish its changes (else build nothing)
        self.watched = False
        self.publish_queued = False
        self.published: JobState | None = None  # what the listener heard last

    # -- what observers see --

    @property
    def next_fire(self) -> datetime | None:
        entry = self.entry
        return entry.next_fire if entry is not None else None

    @property
    def last(self) -> JobInvocation | None:
        """The last finished run (built from the history: nothing is kept per run)."""
        with self.lock:
            return self.runs.get(-1, self.spec.zone, self.spec.name) if len(self.runs) else None

    @property
    def failing(self) -> bool:
        """Whether the last run failed (without building it)."""
        with self.lock:
            return self.runs.last_failed()

    @property
    def history(self) -> tuple[JobInvocation, ...]:
        """The runs kept, oldest first."""
        with self.lock:
            return self.runs.runs(self.spec.zone, self.spec.name)

    def snapshot(self) -> JobState:
        """The state now, as one immutable record (takes :attr:`lock`)."""
        with self.lock:
            last = self.runs.get(-1, self.spec.zone, self.spec.name) if len(self.runs) else None
            return JobState(
                self.started > 0, self.paused, self.active, self.next_fire, last,
                self.run_count, self.failure_count, self.skip_count, self.misfire_count,
                self.elsewhere_count,
            )

    def record(self, invocation: JobInvocation, history_size: int) -> None:
        """Count a finished run and keep it (under :attr:`lock`)."""
        if invocation.elsewhere:
            self.elsewhere_count += 1
        else:
            self.run_count += 1
            if not invocation.success:
                self.failure_count += 1
        self.runs.append(invocation, history_size)

    # -- verbs (the service calls them on the caller's thread) --

    def check_active(self, action: str) -> None:
        if not self.active:
            raise JobNotScheduledError(
                f"cannot {action} job {self.spec.name!r}: it was unscheduled or replaced"
            )

    def start_timer(self) -> None:
        """Put the job on the timer (nothing for a run-once job, or while paused)."""
        with self.lock:
            if self.active and not self.paused and self.spec.schedule is not None:
                self.entry = self.runner.timer.add(self.spec.schedule, self)

    def pause(self) -> None:
        with self.lock:
            self.check_active("pause")
            if self.paused:
                return
            self.paused = True
            self._cancel_timer()
        self.runner.publisher.publish(self)

    def resume(self) -> None:
        with self.lock:
            self.check_active("resume")
            if not self.paused:
                return
            self.paused = False
        self.start_timer()  # fires missed while paused are not run
        self.runner.publisher.publish(self)

    def deactivate(self) -> None:
        """Unscheduled, replaced or shut down: it fires no more (a run in progress ends)."""
        with self.lock:
            if not self.active:
                return
            self.active = False
            self._cancel_timer()
        self.runner.publisher.publish(self)

    def _cancel_timer(self) -> None:
        if self.entry is not None:
            self.runner.timer.cancel(self.entry)
            self.entry = None
        if self.retry is not None:
            self.retry.cancel()
            self.retry = None

    def invoke(self, trigger: Trigger,
               future: Future[JobInvocation] | None = None) -> None:
        """Start a manual or immediate run: those ignore the overlap rule."""
        with self.lock:
            self.pending += 1
        self.runner.launch(self, trigger, None, 1, future)

    # -- TimerTarget: the timer thread, once per job and fire: keep it short --

    def fire(self, scheduled_for: datetime, next_fire: datetime | None, coalesced: bool) -> None:
        if self.take_fire(coalesced):
            self.runner.launch(self, "schedule", scheduled_for, 1, None)

    def take_fire(self, coalesced: bool) -> bool:
        """Apply a fire's rules (paused, overlap, a pending retry); True when a run is to
        start (it is then counted in ``pending``).  Per job and fire: keep it short."""
        with self.lock:
            if not self.active or self.paused:
                return False
            changed = coalesced
            if coalesced:
                self.misfire_count += 1
            if self.retry is not None:  # a retry never overlaps a fire: the fire wins
                drop_retry(self)
                changed = True
            launch = not (self.pending and self.spec.overlap == "skip")
            if launch:
                self.pending += 1
            else:
                self.skip_count += 1
                changed = True
        if changed:
            self.runner.publisher.publish_later(self)
        return launch

    def rescheduled(self, next_fire: datetime | None) -> None:
        self.runner.publisher.publish_later(self)

    def warm(self) -> None:
        """Touch what :meth:`fire` and the run will read, just before a precise fire."""
        self.active  # noqa: B018
        self.pending  # noqa: B018
        self.spec.callback  # noqa: B018

    def __repr__(self) -> str:
        return f"<JobRuntime {self.spec.name!r}>"
