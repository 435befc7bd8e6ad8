"""BackgroundJob (observable state of one job) and JobInvocation (one run's record).

Threads: a job's traits are set by the thread that caused the change (the
timer thread for ``next_invocation``, a worker or the asyncio loop thread for
``running``, ``last_invocation``, counts and ``history``; the caller for
``paused``), and observers run on that thread.  Each change is one coherent
update made under the job's lock with notifications held, so an observer
never sees ``run_count`` without the matching ``last_invocation``.  Observers
must be quick and must not block: they run inside the job's bookkeeping.  An
observer that raises is logged; it never reaches the scheduler.
"""

from __future__ import annotations

import asyncio
import inspect
import threading
import traceback
from collections.abc import Awaitable, Callable
from concurrent.futures import Executor, Future
from dataclasses import dataclass
from datetime import datetime, tzinfo
from typing import TYPE_CHECKING, Any, Literal

from traitlets import Bool, HasTraits, Instance, Int, Tuple, Unicode

from .core import capture
from .core.cron import CronSchedule
from .core.errors import JobNotScheduledError, ServiceShutdownError
from .core.scheduler import TimerEntry

if TYPE_CHECKING:
    from .service import BackgroundJobService

__all__ = ["BackgroundJob", "JobInvocation", "Trigger"]

Trigger = Literal["schedule", "manual", "immediate"]


@dataclass(frozen=True)
class JobInvocation:
    """The record of one run of a job. Immutable.

    Attributes
    ----------
    timestamp : datetime
        When the run started (aware, in the job's time zone).
    scheduled_for : datetime or None
        The fire time this run served; None for manual and immediate runs.
    trigger : {"schedule", "manual", "immediate"}
        What started the run.
    execution_time_ms : float
        How long the callback took.
    success : bool
        False when the callback raised.
    error_message : str or None
        ``"ExceptionType: message"`` of a failed run.
    traceback : str or None
        The formatted traceback of a failed run.
    output : str
        What the job printed to stdout and stderr during this run.
    """

    timestamp: datetime
    scheduled_for: datetime | None
    trigger: Trigger
    execution_time_ms: float
    success: bool
    error_message: str | None = None
    traceback: str | None = None
    output: str = ""

    def __repr__(self) -> str:
        result = "ok" if self.success else f"failed: {self.error_message}"
        return (
            f"<JobInvocation {self.trigger} at {self.timestamp.isoformat(timespec='seconds')}"
            f" {self.execution_time_ms:.1f} ms {result}>"
        )


class BackgroundJob(HasTraits):
    """One scheduled job. Created by :meth:`BackgroundJobService.schedule_job`.

    Every trait is read-only for users and observable::

        job.observe(lambda change: print(change.new), names="run_count")
    """

    name = Unicode(read_only=True, help="The job's unique name in its service.")
    cron_schedule = Unicode(
        None, allow_none=True, read_only=True,
        help="The cron expression, or None for a job that runs once.",
    )
    timezone = Unicode(read_only=True, help="The IANA zone the expression is evaluated in.")
    description = Unicode(read_only=True, help="The schedule in plain English.")
    next_invocation = Instance(
        datetime, allow_none=True, read_only=True,
        help="The next fire time (aware, in the job's zone); None when paused or done.",
    )
    last_invocation = Instance(
        JobInvocation, allow_none=True, read_only=True, help="The last finished run."
    )
    running = Bool(False, read_only=True, help="True while a run is in progress.")
    paused = Bool(False, read_only=True, help="True while the schedule is paused.")
    active = Bool(True, read_only=True, help="False once unscheduled, replaced or shut down.")
    run_count = Int(0, read_only=True, help="Finished runs.")
    failure_count = Int(0, read_only=True, help="Finished runs that raised.")
    skip_count = Int(0, read_only=True, help="Fires skipped because a run was still going.")
    misfire_count = Int(0, read_only=True, help="Times several missed fires were coalesced.")
    history = Tuple(read_only=True, help="The last runs (JobInvocation), newest last.")

    def __init__(
        self,
        service: BackgroundJobService,
        name: str,
        schedule: CronSchedule | None,
        callback: Callable[..., Any],
        *,
        zone: tzinfo,
        zone_name: str,
        overlap: Literal["skip", "allow"] = "skip",
        executor: Executor | None = None,
    ) -> None:
        super().__init__()
        self._service = service
        self._schedule = schedule
        self._callback = callback
        self._takes_context = _takes_context(callback)
        self._is_async = _is_async(callback)
        self._zone = zone
        self.overlap = overlap
        self._executor = executor
        self._lock = threading.RLock()
        self._entry: TimerEntry | None = None
        self._pending = 0  # dispatched and not finished
        self._started = 0  # started and not finished
        self.set_trait("name", name)
        self.set_trait("cron_schedule", schedule.expression if schedule else None)
        self.set_trait("timezone", zone_name)
        self.set_trait("description", schedule.describe() if schedule else "Runs once")

    # -- public --

    @property
    def schedule(self) -> CronSchedule | None:
        """The parsed schedule (None for a run-once job)."""
        return self._schedule

    @property
    def callback(self) -> Callable[..., Any]:
        """The callable the job runs."""
        return self._callback

    def invoke_now(self) -> Future[JobInvocation]:
        """Start a run now, whatever the schedule; resolves with its JobInvocation.

        A manual run always starts, even when a run is going and ``overlap`` is
        ``"skip"``: it was asked for explicitly.
        """
        self._check_active("run")
        future: Future[JobInvocation] = Future()
        self._dispatch("manual", None, future)
        return future

    def pause(self) -> None:
        """Stop firing on schedule until :meth:`resume`. Pausing twice is harmless."""
        with self._lock:
            self._check_active("pause")
            if self.paused:
                return
            self._cancel_timer()
            self._update(paused=True, next_invocation=None)

    def resume(self) -> None:
        """Fire again on schedule, from the next fire time after now.

        Fires missed while paused are not run.
        """
        with self._lock:
            self._check_active("resume")
            if not self.paused:
                return
            self._update(paused=False)
            self._start_timer()

    def __repr__(self) -> str:
        state = "paused" if self.paused else ("active" if self.active else "unscheduled")
        schedule = self.cron_schedule if self.cron_schedule is not None else "once"
        return f"<BackgroundJob {self.name!r} {schedule!r} {state} runs={self.run_count}>"

    # -- the service's side --

    def _check_active(self, action: str) -> None:
        if self._service.is_shut_down:
            raise ServiceShutdownError(
                f"cannot {action} job {self.name!r}: the service was shut down"
            )
        if not self.active:
            raise JobNotScheduledError(
                f"cannot {action} job {self.name!r}: it was unscheduled or replaced"
            )

    def _start_timer(self) -> None:
        with self._lock:
            if not self.active or self.paused or self._schedule is None:
                return
            self._entry = self._service._timer.add(self._schedule, self)
            self._update(next_invocation=self._entry.next_fire)

    def _cancel_timer(self) -> None:
        if self._entry is not None:
            self._service._timer.cancel(self._entry)
            self._entry = None

    def _deactivate(self) -> None:
        with self._lock:
            self._cancel_timer()
            if self.active:
                self._update(active=False, next_invocation=None)

    def _update(self, **values: Any) -> None:
        """Set several traits as one change; an observer's error is logged, not raised."""
        with self._lock:
            try:
                with self.hold_trait_notifications():
                    for name, value in values.items():
                        self.set_trait(name, value)
            except Exception:
                self._service.log.exception("an observer of job %r raised", self.name)

    # -- TimerTarget --

    def fire(self, scheduled_for: datetime, next_fire: datetime | None, coalesced: bool) -> None:
        if not self.active or self.paused:
            return
        self._dispatch("schedule", scheduled_for)
        if coalesced:
            self._update(next_invocation=next_fire, misfire_count=self.misfire_count + 1)
        else:
            self._update(next_invocation=next_fire)

    def rescheduled(self, next_fire: datetime | None) -> None:
        if self.active and not self.paused:
            self._update(next_invocation=next_fire)

    # -- running --

    def _dispatch(self, trigger: Trigger, scheduled_for: datetime | None,
                  future: Future[JobInvocation] | None = None) -> None:
        with self._lock:
            if trigger == "schedule" and self.overlap == "skip" and self._pending:
                self._update(skip_count=self.skip_count + 1)
                return
            self._pending += 1
        service = self._service
        service._run_dispatched()
        try:
            if self._is_async:
                coro = self._run_async(trigger, scheduled_for, future)
                if self._executor is None:
                    service._loop_thread.submit(coro)
                else:
                    self._executor.submit(asyncio.run, coro)
            elif self._executor is None:
                service._pool.dispatch(lambda: self._run_sync(trigger, scheduled_for, future))
            else:
                self._executor.submit(self._run_sync, trigger, scheduled_for, future)
        except Exception as exc:  # the executor refused (shut down, full...): record it
            now = service._clock.now().astimezone(self._zone)
            self._finish(
                JobInvocation(now, scheduled_for, trigger, 0.0, False,
                              f"could not start: {type(exc).__name__}: {exc}", None, ""),
                future,
                started=False,
            )

    def _call(self) -> Any:
        if self._takes_context:
            return self._callback(self._service.context)
        return self._callback()

    def _begin(self) -> tuple[datetime, float]:
        with self._lock:
            self._started += 1
            if self._started == 1:
                self._update(running=True)
        clock = self._service._clock
        return clock.now().astimezone(self._zone), clock.monotonic()

    def _run_sync(self, trigger: Trigger, scheduled_for: datetime | None,
                  future: Future[JobInvocation] | None) -> None:
        started_at, t0 = self._begin()
        error: BaseException | None = None
        tb = None
        capturing = capture.capturing()
        capture.ensure_installed()
        with capturing:
            try:
                result = self._call()
                if inspect.isawaitable(result):  # a plain function that returned a coroutine
                    self._service._loop_thread.submit(
                        _awaiting(result, capturing.buffer)
                    ).result()
            except BaseException as exc:  # a job may raise anything, even SystemExit
                error, tb = exc, traceback.format_exc()
        self._end(trigger, scheduled_for, future, started_at, t0, error, tb, capturing.buffer)

    async def _run_async(self, trigger: Trigger, scheduled_for: datetime | None,
                         future: Future[JobInvocation] | None) -> None:
        started_at, t0 = self._begin()
        error: BaseException | None = None
        tb = None
        capturing = capture.capturing()
        capture.ensure_installed()
        with capturing:  # the task has its own context: this binds only this run
            try:
                await self._call()
            except BaseException as exc:
                error, tb = exc, traceback.format_exc()
        self._end(trigger, scheduled_for, future, started_at, t0, error, tb, capturing.buffer)

    def _end(self, trigger: Trigger, scheduled_for: datetime | None,
             future: Future[JobInvocation] | None, started_at: datetime, t0: float,
             error: BaseException | None, tb: str | None, buffer: capture.OutputBuffer) -> None:
        elapsed_ms = (self._service._clock.monotonic() - t0) * 1000.0
        message = None if error is None else _error_message(error)
        invocation = JobInvocation(
            started_at, scheduled_for, trigger, elapsed_ms, error is None, message, tb,
            buffer.getvalue() if self._service.capture_output else "",
        )
        if error is not None:
            self._service.log.warning("Background job %r failed: %s", self.name, message)
        self._finish(invocation, future, started=True)

    def _finish(self, invocation: JobInvocation, future: Future[JobInvocation] | None,
                *, started: bool) -> None:
        size = max(1, self._service.history_size)
        with self._lock:
            self._pending -= 1
            if started:
                self._started -= 1
            history = (*self.history[-(size - 1):], invocation) if size > 1 else (invocation,)
            self._update(
                last_invocation=invocation,
                run_count=self.run_count + 1,
                failure_count=self.failure_count + (0 if invocation.success else 1),
                history=history,
                running=self._started > 0,
            )
        if future is not None:
            future.set_result(invocation)
        self._service._run_finished()


async def _awaiting(awaitable: Awaitable[Any], buffer: capture.OutputBuffer) -> Any:
    token = capture._current.set(buffer)
    try:
        return await awaitable
    finally:
        capture._current.reset(token)


def _error_message(error: BaseException) -> str:
    text = str(error)
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


def _is_async(callback: Callable[..., Any]) -> bool:
    if inspect.iscoroutinefunction(callback):
        return True
    call = getattr(callback, "__call__", None)  # noqa: B004 - an instance with async __call__
    return call is not None and inspect.iscoroutinefunction(call)


def _takes_context(callback: Callable[..., Any]) -> bool:
    """Whether to pass the PluginContext: the callback takes one positional argument.

    Raises TypeError for a callback that needs more than one argument.
    """
    try:
        signature = inspect.signature(callback)
    except (TypeError, ValueError):  # builtins without a signature: call without arguments
        return False
    params = list(signature.parameters.values())
    positional = [
        p for p in params
        if p.kind in (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    ]
    required = [p for p in positional if p.default is inspect.Parameter.empty]
    required_kw = [
        p for p in params
        if p.kind is inspect.Parameter.KEYWORD_ONLY and p.default is inspect.Parameter.empty
    ]
    if len(required) > 1 or required_kw:
        raise TypeError(
            f"callback {getattr(callback, '__qualname__', callback)!r} must take the "
            f"PluginContext as its only argument, or no argument; its signature is {signature}"
        )
    has_varargs = any(p.kind is inspect.Parameter.VAR_POSITIONAL for p in params)
    return bool(positional) or has_varargs
