"""BackgroundJob (observable state of one job) and JobInvocation (one run's record).

Threads: a job's traits are set by the thread that caused the change (the
timer thread for ``next_invocation``, a worker or the asyncio loop thread for
``running``, ``last_invocation``, counts and ``history``; the caller for
``paused``), and observers run on that thread.  The record of a run on the
service's pool (``last_invocation``, counts, ``history``, ``running`` going
back to False) waits while other runs wait to start, at most
``DaemonThreadPool.defer_limit`` (0.25 s), and may then be written by the
pool's bookkeeping thread: 10,000 jobs due together all start first.  Each change is one coherent
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
import types
from collections.abc import Awaitable, Callable
from concurrent.futures import Executor, Future
from dataclasses import dataclass
from datetime import datetime, tzinfo
from typing import TYPE_CHECKING, Any, Literal

from traitlets import All, Bool, HasTraits, Instance, Int, Tuple, Unicode, default
from traitlets.utils.bunch import Bunch

from .core import capture
from .core.cron import CronSchedule
from .core.errors import JobNotScheduledError, ServiceShutdownError
from .core.executors import DaemonThreadPool
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

    #: Names of the traits someone observes; None: every trait (an ``All`` observer).
    #: Kept by ``_add_notifiers``/``_remove_notifiers``; lets a run skip the traitlets
    #: machinery for traits nobody watches.  ``unobserve_all`` leaves it too wide: safe.
    _watched: frozenset[Any] | None = frozenset()

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
        self._clock = service._clock  # the timer's clock too: fixed for the service's life
        self._lock = threading.RLock()
        self._entry: TimerEntry | None = None
        self._pending = 0  # dispatched and not finished
        self._started = 0  # started and not finished
        # No observer exists yet: store the checked values directly (set_trait is ~1 µs each).
        self._trait_values.update(
            name=name,
            cron_schedule=schedule.expression if schedule else None,
            timezone=zone_name,
        )

    @default("description")
    def _default_description(self) -> str:
        # on first read: cron-descriptor costs ~300 µs per new expression, and most of
        # 10,000 jobs are never described
        schedule = self._schedule
        return schedule.describe() if schedule is not None else "Runs once"

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
            self._set_one("next_invocation", self._entry.next_fire)

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
        """Set several traits as one change; an observer's error is logged, not raised.

        What ``hold_trait_notifications`` does, at a tenth of its cost (this runs
        several times per run): every value is stored first, then observers are told,
        so each sees all the new values.  Values come from this module and are not
        validated again; a trait nobody observes is just stored.
        """
        with self._lock:
            stored = self._trait_values
            watched = self._watched
            changes: list[Bunch] | None = None
            for name, new in values.items():
                try:
                    old = stored[name]
                except KeyError:
                    old = getattr(self, name)  # a default not yet instantiated
                stored[name] = new
                if old is not new and (watched is None or name in watched) \
                        and _differ(old, new):
                    change = Bunch(name=name, old=old, new=new, owner=self, type="change")
                    if changes is None:
                        changes = [change]
                    else:
                        changes.append(change)
            for change in changes or ():
                try:
                    self.notify_change(change)
                except Exception:
                    self._service.log.exception("an observer of job %r raised", self.name)

    def _set_one(self, name: str, new: Any) -> None:
        """``_update`` of one trait; for a trait nobody observes, just a store."""
        watched = self._watched
        if watched is None or name in watched:
            self._update(**{name: new})
        else:
            with self._lock:
                self._trait_values[name] = new

    def _add_notifiers(self, handler: Any, name: Any, type: Any) -> None:
        super()._add_notifiers(handler, name, type)
        watched = self._watched
        if watched is None or name in watched:
            return
        if name is All:
            self._watched = None
        else:  # 10,000 jobs observed alike share one set
            grown = watched | {name}
            self._watched = _WATCHED_SETS.setdefault(grown, grown)

    def _remove_notifiers(self, handler: Any, name: Any, type: Any) -> None:
        super()._remove_notifiers(handler, name, type)
        self._refresh_watched()

    def _refresh_watched(self) -> None:
        notifiers = self._trait_notifiers
        if _observed(notifiers, All):
            self._watched = None
        else:
            watched = frozenset(n for n in notifiers if _observed(notifiers, n))
            # 10,000 jobs observed alike share one set
            self._watched = _WATCHED_SETS.setdefault(watched, watched)

    # -- TimerTarget --

    def fire(self, scheduled_for: datetime, next_fire: datetime | None, coalesced: bool) -> None:
        # One pass under the lock: the overlap rule, the count, next_invocation; then
        # the run is handed to the executor (this is per job, 10,000 times a second).
        values = self._trait_values
        with self._lock:
            if not values["active"] or values["paused"]:
                return
            launch = not (self._pending and self.overlap == "skip")
            if launch:
                self._pending += 1
            else:
                self._update(skip_count=values["skip_count"] + 1)
            if coalesced:
                self._update(next_invocation=next_fire, misfire_count=self.misfire_count + 1)
            else:
                self._set_one("next_invocation", next_fire)
        if launch:
            self._launch("schedule", scheduled_for, None)

    def warm(self) -> None:
        """Called by the timer shortly before a fire: read what ``fire`` and the run
        will touch, so it is in the CPU caches."""
        self._trait_values.get("active")
        self._pending  # noqa: B018
        self._callback  # noqa: B018

    def rescheduled(self, next_fire: datetime | None) -> None:
        if self.active and not self.paused:
            self._update(next_invocation=next_fire)

    # -- running --

    def _dispatch(self, trigger: Trigger, scheduled_for: datetime | None,
                  future: Future[JobInvocation] | None = None) -> None:
        """Start a manual or immediate run: those ignore the overlap rule, which only
        scheduled fires (:meth:`fire`) apply."""
        with self._lock:
            self._pending += 1
        self._launch(trigger, scheduled_for, future)

    def _launch(self, trigger: Trigger, scheduled_for: datetime | None,
                future: Future[JobInvocation] | None) -> None:
        """Hand a counted run (``_pending`` includes it) to its executor."""
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
                pool = service._pool
                # the plain function and self: a bound method per run is one more object
                pool.dispatch(BackgroundJob._run_sync, self, trigger, scheduled_for, future, pool)
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
        """Mark the run started; returns its start (UTC; ``_end`` converts) and a monotonic t0."""
        with self._lock:
            self._started += 1
            if self._started == 1:
                self._set_one("running", True)
        clock = self._clock
        return clock.now(), clock.monotonic()

    def _run_sync(self, trigger: Trigger, scheduled_for: datetime | None,
                  future: Future[JobInvocation] | None,
                  pool: DaemonThreadPool | None = None) -> None:
        """One run of a plain callback.  With ``pool`` (the service's), the record-keeping
        waits until the runs waiting to start have started (``pool.defer``)."""
        # _begin(), inlined: this and the callback are all a run costs before it starts
        with self._lock:
            self._started += 1
            if self._started == 1:
                self._set_one("running", True)
        clock = self._clock
        started_at, t0 = clock.now(), clock.monotonic()
        error: BaseException | None = None
        tb = None
        buffer = capture.OutputBuffer()
        capture.ensure_installed()
        token = capture._current.set(buffer)  # capture.capturing(), inlined: this is per run
        try:
            result = self._call()
            # a plain function that returned a coroutine
            if result is not None and inspect.isawaitable(result):
                self._service._loop_thread.submit(_awaiting(result, buffer)).result()
        except BaseException as exc:  # a job may raise anything, even SystemExit
            error, tb = exc, traceback.format_exc()
        finally:
            capture._current.reset(token)
        if pool is None:
            self._end(trigger, scheduled_for, future, started_at, t0, error, tb, buffer)
        else:
            pool.defer(BackgroundJob._end, self, trigger, scheduled_for, future, started_at, t0,
                       error, tb, buffer, clock.monotonic())

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
             error: BaseException | None, tb: str | None, buffer: capture.OutputBuffer,
             ended: float | None = None) -> None:
        if ended is None:
            ended = self._clock.monotonic()
        elapsed_ms = (ended - t0) * 1000.0
        message = None if error is None else _error_message(error)
        invocation = JobInvocation(
            started_at.astimezone(self._zone), scheduled_for, trigger, elapsed_ms,
            error is None, message, tb,
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


_WATCHED_SETS: dict[frozenset[Any], frozenset[Any]] = {}


def _observed(notifiers: dict[Any, dict[Any, list[Any]]], name: Any) -> bool:
    """Whether a HasTraits' ``_trait_notifiers`` holds a handler for ``name``.

    (traitlets leaves empty lists behind after ``unobserve``.)
    """
    by_type = notifiers.get(name)
    return bool(by_type) and any(by_type.values())  # type: ignore[union-attr]


def _differ(old: Any, new: Any) -> bool:
    """Whether a change is worth a notification, as traitlets decides it."""
    try:
        return not bool(old == new)
    except Exception:  # traitlets notifies when the comparison fails
        return True


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
    if type(callback) is types.FunctionType and "_is_coroutine_marker" not in callback.__dict__:
        # a plain function (not marked by inspect.markcoroutinefunction): its code says
        return bool(callback.__code__.co_flags & inspect.CO_COROUTINE)
    if inspect.iscoroutinefunction(callback):
        return True
    call = getattr(callback, "__call__", None)  # noqa: B004 - an instance with async __call__
    return call is not None and inspect.iscoroutinefunction(call)


def _takes_context(callback: Callable[..., Any]) -> bool:
    """Whether to pass the PluginContext: the callback takes one positional argument.

    Raises TypeError for a callback that needs more than one argument.
    """
    code = getattr(callback, "__code__", None)
    if (type(callback) is types.FunctionType and code is not None
            and not hasattr(callback, "__wrapped__") and not hasattr(callback, "__signature__")):
        # A plain function: read its code object (inspect.signature costs ~20 µs).
        positional = code.co_argcount
        required = positional - len(callback.__defaults__ or ())
        kwonly = code.co_varnames[positional:positional + code.co_kwonlyargcount]
        required_kw = [k for k in kwonly if k not in (callback.__kwdefaults__ or {})]
        if required <= 1 and not required_kw:
            return positional > 0 or bool(code.co_flags & inspect.CO_VARARGS)
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
