"""One job in the core: what it runs (:class:`JobSpec`), where it stands (:class:`JobRuntime`)
and its runs in flight (:class:`Run`).

A JobRuntime is the timer's target for its job, counts its runs in flight (the
overlap rule) and keeps its counters and its recent runs (a compact
:class:`~._history.RunHistory`).  It changes only through its own methods, each one
step under :attr:`JobRuntime.lock`; it never reads the clock, runs anything or
tells anyone: the :class:`~.runner.Runner` calls these steps and acts on what they
return.

A :class:`Run` lives from launch to record: ``QUEUED`` (launched, counted against
the overlap rule) → ``RUNNING`` (its callback started) → ``ENDED`` (its callback
returned; its record is being written) → ``DONE`` (recorded; its future
resolved).  It is also the stop flag its job polls (``context.stop_requested``).
"""

from __future__ import annotations

import enum
import logging
import threading
from collections.abc import Callable
from concurrent.futures import Executor, Future
from datetime import datetime, tzinfo
from typing import TYPE_CHECKING, Any, Literal, NamedTuple

from ._history import RunHistory
from ._retries import NO_RETRY, RetryPlan
from .callables import CallbackKind
from .cron import CronSchedule
from .errors import JobNotScheduledError
from .records import JobInvocation, JobState, Outcome, Trigger
from .remote import RemoteBackend

if TYPE_CHECKING:
    from .capture import OutputBuffer
    from .scheduler import TimerCall, TimerEntry

__all__ = ["JobRuntime", "JobSpec", "Overlap", "Run", "RunState", "StopRequest"]

log = logging.getLogger("mashroom_jobs")

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
    #: fires missed while asleep are caught up by whoever hosts the job (a durable job),
    #: not coalesced into one run here
    catch_up: bool = False


class RunState(enum.IntEnum):
    """Where a run is in its life (ordered: a later state is greater)."""

    QUEUED = 0
    RUNNING = 1
    ENDED = 2
    DONE = 3


QUEUED, RUNNING, ENDED, DONE = RunState


class StopRequest(enum.Enum):
    """What :meth:`JobRuntime.request_stop` found."""

    #: nothing to do: the run had ended, or was asked already
    NONE = 0
    #: the run had not started: it never will (record it now)
    QUEUED = 1
    #: the run is going: it was asked (cancel what can be cancelled, then wait)
    RUNNING = 2


class Run:
    """One run in flight.  Also the stop flag its job polls (``context.stop_requested``).

    Its ``state`` and stop fields change under the job's lock, in the job's methods;
    the rest is written by the runner on the run's own path.
    """

    __slots__ = (
        "artifact", "attempt", "buffer", "ended", "error", "event", "future", "handle", "note",
        "on_progress", "revision", "runtime", "scheduled_for", "state", "stop_reason",
        "stopped_by_user", "t0", "task", "tb", "thread", "timed_out", "trigger", "waiting",
        "watch",
    )

    def __init__(self, runtime: JobRuntime, trigger: Trigger, scheduled_for: datetime | None,
                 attempt: int = 1, future: Future[JobInvocation] | None = None) -> None:
        self.runtime = runtime
        self.trigger = trigger
        self.scheduled_for = scheduled_for
        self.attempt = attempt
        self.future = future
        self.state = QUEUED
        self.stop_reason: str | None = None
        self.stopped_by_user = False
        self.timed_out = False
        self.waiting = False  # queued behind busy workers (counted in the job's ``waiting``)
        self.handle: Any = None  # what cancels it: a task's or an executor's future
        self.task: Any = None  # its asyncio task, for a coroutine
        self.watch: TimerCall | None = None  # its timeout, or the grace after a stop
        self.event: threading.Event | None = None  # made when a job first waits on it
        self.thread: int | None = None  # the thread running its callback (its ident)
        self.note = ""
        #: when its callback started (the clock's monotonic time), once it has: its wall
        #: time is worked out when the run is recorded, off the start's critical path
        self.t0: float | None = None
        # how the callback ended (set on its thread, read when the run is recorded)
        self.ended = 0.0
        self.error: BaseException | None = None
        self.tb: str | None = None
        self.buffer: OutputBuffer | None = None
        #: tells the runner of the run's progress (set when the run starts)
        self.on_progress: Callable[[Run, str | None, str | None], None] | None = None
        #: a file the run produced, and which revision of its target ran (its record's)
        self.artifact: str | None = None
        self.revision: str | None = None

    def report_progress(self, text: str | None, detail: str | None = None) -> None:
        """Say how far the run is (``"cell 7 of 20"``; None: nothing to say any more):
        shown in its job's state, coalesced with the run's other changes."""
        if self.on_progress is not None:
            self.on_progress(self, text, detail)

    @property
    def outcome_if_stopped(self) -> Outcome:
        """The outcome of this run should it end now having been asked to stop."""
        return Outcome.TIMED_OUT if self.timed_out else Outcome.STOPPED

    def is_set(self) -> bool:
        """True once a stop or a timeout was requested."""
        return self.stop_reason is not None

    __bool__ = is_set

    def wait(self, timeout: float | None = None) -> bool:
        """Block until a stop is requested or ``timeout`` passes; True if stopped."""
        with self.runtime.lock:
            if self.stop_reason is not None:
                return True
            if self.event is None:
                self.event = threading.Event()
            event = self.event
        return event.wait(timeout)

    def __repr__(self) -> str:
        return f"<Run of {self.runtime.spec.name!r} {self.trigger} {self.state.name}>"


class PendingRetry:
    """A retry decided when its run was recorded; its timer call follows
    (:meth:`JobRuntime.arm_retry`).  Cancelled by a fire that comes first, a pause or an
    unschedule."""

    __slots__ = ("call", "cancelled")

    def __init__(self) -> None:
        self.call: TimerCall | None = None
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True
        if self.call is not None:
            self.call.cancel()


class JobRuntime:
    """The mutable half of a job.  Everything changes under :attr:`lock`, in its methods."""

    __slots__ = (
        "active", "elsewhere_count", "entry", "failure_count", "lock", "misfire_count", "owner",
        "paused", "pending", "progress", "publish_queued", "published", "retry", "run_count",
        "runs", "skip_count", "skip_noted", "spec", "started", "waiting", "watched",
    )

    def __init__(self, spec: JobSpec, history_size: int, owner: object = None) -> None:
        self.spec = spec
        #: the object events about this job name as their source (the service's job)
        self.owner = owner
        # held briefly, never while observers run (see publishing.py)
        self.lock = threading.Lock()
        self.entry: TimerEntry | None = None
        self.retry: PendingRetry | None = None
        self.active = True
        self.paused = False
        self.pending = 0  # runs launched and not finished: the overlap rule counts these
        self.started = 0  # runs started and not finished: "running"
        self.waiting = 0  # runs launched that wait for a free thread
        self.progress: tuple[Run, str, str | None] | None = None  # a running run's word
        self.run_count = self.failure_count = self.skip_count = 0
        #: a skipped fire was recorded since the last scheduled run started (one record
        #: per run in progress: a long run skipping every second fills no history)
        self.skip_noted = False
        self.misfire_count = self.elsewhere_count = 0
        self.runs = RunHistory(history_size)
        #: someone observes the job's state: publish its changes (else build nothing)
        self.watched = False
        self.publish_queued = False
        self.published: JobState | None = None  # what was published last

    # -- what observers see --

    @property
    def next_fire(self) -> datetime | None:
        entry = self.entry
        return entry.next_fire if entry is not None else None

    @property
    def last(self) -> JobInvocation | None:
        """The last record (built from the history: nothing is kept per run)."""
        with self.lock:
            return self.runs.get(-1, self.spec.zone, self.spec.name) if len(self.runs) else None

    @property
    def failing(self) -> bool:
        """Whether the last record is a failure (without building it)."""
        with self.lock:
            return self.runs.last_failed()

    @property
    def history(self) -> tuple[JobInvocation, ...]:
        """The records kept, oldest first."""
        with self.lock:
            return self.runs.runs(self.spec.zone, self.spec.name)

    def snapshot(self) -> JobState:
        """The state now, as one immutable record (takes :attr:`lock`)."""
        with self.lock:
            last = self.runs.get(-1, self.spec.zone, self.spec.name) if len(self.runs) else None
            return JobState(
                running=self.started > 0, paused=self.paused, active=self.active,
                next_invocation=self.next_fire, last_invocation=last, run_count=self.run_count,
                failure_count=self.failure_count, skip_count=self.skip_count,
                misfire_count=self.misfire_count, elsewhere_count=self.elsewhere_count,
                waiting=self.waiting,
                progress=self.progress[1] if self.progress is not None else None,
                progress_detail=self.progress[2] if self.progress is not None else None,
            )

    def set_progress(self, run: Run, text: str | None, detail: str | None) -> bool:
        """What ``run`` (running) says of its progress; False when it is not running."""
        with self.lock:
            if run.state != RUNNING:
                return False
            self.progress = None if text is None else (run, text, detail)
            return True

    def check_active(self, action: str) -> None:
        if not self.active:
            raise JobNotScheduledError(
                f"cannot {action} job {self.spec.name!r}: it was unscheduled or replaced"
            )

    # -- the schedule's state (the runner puts the entry on its timer and takes it off) --

    def set_paused(self, paused: bool) -> bool:
        """Pause or resume; False when it was so already.  Raises when the job is no
        longer active.  (The runner takes it off the timer or puts it back.)"""
        with self.lock:
            self.check_active("pause" if paused else "resume")
            if self.paused == paused:
                return False
            self.paused = paused
            return True

    def deactivate(self) -> TimerEntry | Literal[False] | None:
        """Unscheduled, replaced or shut down: it fires no more (a run going ends).
        False when it was inactive already; else its timer entry (None when it had none)
        for the runner to cancel, taken off with any pending retry."""
        with self.lock:
            if not self.active:
                return False
            self.active = False
            return self._take_off()

    def attach(self, add: Callable[[], TimerEntry]) -> None:
        """Put the job on the timer with ``add()`` if it should be there (active, not
        paused, scheduled) and is not."""
        with self.lock:
            if self.active and not self.paused and self.spec.schedule is not None \
                    and self.entry is None:
                self.entry = add()

    def detach(self) -> TimerEntry | None:
        """Take the job off the timer: its entry (for the runner to cancel), and any
        pending retry (cancelled)."""
        with self.lock:
            return self._take_off()

    def _take_off(self) -> TimerEntry | None:
        entry, self.entry = self.entry, None
        if self.retry is not None:
            self.retry.cancel()
            self.retry = None
        return entry

    # -- runs: launched, started, ended, recorded --

    def take_fire(self, scheduled_for: datetime, coalesced: bool
                  ) -> tuple[Run | None, bool, bool]:
        """Apply a fire's rules (paused, overlap, a pending retry): the run to start (it
        is then counted in ``pending``) or None; whether the visible state changed
        otherwise (a skip, a misfire, a dropped retry); and whether this fire's skip is to
        be recorded (the first fire skipped during a run of a job that is not exclusive:
        an exclusive job's fire may run in another process).  Per job and fire: keep it
        short."""
        note = False
        with self.lock:
            if not self.active or self.paused:
                return None, False, False
            changed = coalesced
            if coalesced:
                self.misfire_count += 1
                if self.spec.catch_up:  # its host catches the missed fires up, by its policy
                    return None, True, False
            dropped = self.retry is not None
            if dropped:  # a retry never overlaps a fire: the fire wins
                self.retry.cancel()  # type: ignore[union-attr]
                self.retry = None
                self.skip_count += 1
                changed = True
            run = None
            if self.pending and self.spec.overlap == "skip":
                self.skip_count += 1
                changed = True
                if not self.skip_noted and not self.spec.exclusive:
                    self.skip_noted = note = True
            else:
                self.pending += 1
                self.skip_noted = False
                run = Run(self, "schedule", scheduled_for)
        if dropped:
            log.warning("a retry of job %r was dropped: its next scheduled fire came first",
                        self.spec.name)
        return run, changed, note

    def admit(self, trigger: Trigger, scheduled_for: datetime | None = None, attempt: int = 1,
              future: Future[JobInvocation] | None = None) -> Run:
        """A run that ignores the overlap rule (manual, immediate), counted in ``pending``."""
        with self.lock:
            self.pending += 1
        return Run(self, trigger, scheduled_for, attempt, future)

    def take_retry(self, scheduled_for: datetime | None, attempt: int) -> Run | bool:
        """The pending retry is due: its run (counted in ``pending``); or False when it
        was dropped or the job stopped; or True when the job's next run is already going
        (that run wins: a skip)."""
        with self.lock:
            call, self.retry = self.retry, None
            if call is None or call.cancelled or not self.active or self.paused:
                return False
            if self.pending:
                self.skip_count += 1
                return True
            self.pending += 1
        return Run(self, "retry", scheduled_for, attempt)

    def wait_for_thread(self, run: Run) -> None:
        """``run`` waits behind busy workers (shown as ``waiting``)."""
        with self.lock:
            if run.state == QUEUED and not run.waiting:
                run.waiting = True
                self.waiting += 1

    def begin(self, run: Run) -> bool | None:
        """Mark ``run`` started: None when it was stopped (and recorded) while queued;
        else whether it is the job's only run going (``running`` just became true)."""
        with self.lock:
            if run.state != QUEUED:
                return None
            run.state = RUNNING
            if run.waiting:
                run.waiting = False
                self.waiting -= 1
            self.started += 1
            return self.started == 1

    def returned(self, run: Run) -> None:
        """``run``'s callback returned: it no longer counts as running."""
        with self.lock:
            if run.state == RUNNING:
                run.state = ENDED
                self.started -= 1
            if self.progress is not None and self.progress[0] is run:
                self.progress = None

    def request_stop(self, run: Run, reason: str, *, by_user: bool,
                     timed_out: bool = False) -> StopRequest:
        """Ask ``run`` to stop (once): what was found (see :class:`StopRequest`)."""
        with self.lock:
            if run.state >= ENDED or run.stop_reason is not None:
                return StopRequest.NONE
            run.stop_reason = reason
            run.stopped_by_user = by_user
            run.timed_out = timed_out
            event = run.event
            queued = run.state == QUEUED
        if event is not None:
            event.set()
        return StopRequest.QUEUED if queued else StopRequest.RUNNING

    def still_running(self, run: Run) -> bool:
        with self.lock:
            return run.state == RUNNING

    def record(self, run: Run, record: JobInvocation, history_size: int,
               plan: Callable[[datetime | None], RetryPlan] | None = None
               ) -> tuple[RetryPlan, PendingRetry | None] | None:
        """Record ``run`` once: None when it was recorded already (stopped, abandoned: a
        late result is dropped).  Else whether it is retried, decided by
        ``plan(next_fire)`` in the same step, so that a fire coming meanwhile sees the
        retry (and wins): the plan, and the retry to :meth:`arm_retry` when there is one."""
        with self.lock:
            if run.state == DONE:
                return None
            if run.state == RUNNING:
                self.started -= 1
            if run.waiting:
                run.waiting = False
                self.waiting -= 1
            if self.progress is not None and self.progress[0] is run:
                self.progress = None
            run.state = DONE
            self.pending -= 1
            self._count(record, history_size)
            decided = NO_RETRY if plan is None else plan(self.next_fire)
            pending = None
            if decided.dropped:
                self.skip_count += 1
            elif decided.delay is not None:
                pending = self.retry = PendingRetry()
            return decided, pending

    def record_skip(self, record: JobInvocation, history_size: int) -> None:
        """Keep the record of a fire that did not run (skipped, missed)."""
        with self.lock:
            self._count(record, history_size)

    def _count(self, record: JobInvocation, history_size: int) -> None:
        outcome = record.outcome
        if outcome is Outcome.ELSEWHERE:
            self.elsewhere_count += 1
        elif outcome.ran:
            self.run_count += 1
            if outcome.failed:
                self.failure_count += 1
        self.runs.append(record, history_size)

    def arm_retry(self, pending: PendingRetry, call: TimerCall | None) -> bool:
        """Give a decided retry its timer call (None: the timer stopped); False (and the
        call cancelled) when a fire, a pause or an unschedule took the retry meanwhile."""
        with self.lock:
            if call is None or pending.cancelled or not self.active or self.paused:
                if call is not None:
                    call.cancel()
                if self.retry is pending:
                    self.retry = None
                return False
            pending.call = call
            return True

    def warm(self) -> None:
        """Touch what a fire and its run will read, just before a precise fire."""
        self.active  # noqa: B018
        self.pending  # noqa: B018
        self.spec.callback  # noqa: B018

    def __repr__(self) -> str:
        return f"<JobRuntime {self.spec.name!r}>"
