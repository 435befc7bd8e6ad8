"""The run path: how a fire becomes a run, and a run becomes a record.

The :class:`Runner` owns the life of every run of one service, along one path
whatever the clock: the timer hands fires over in batches (:mod:`._batches`);
each fire's rules are applied by its job (:meth:`.JobRuntime.take_fire`);
exclusive fires are claimed (:mod:`.claims`); a run starts where its callback
runs (this thread, the pool, the loop, a user's executor, a cluster); what it
prints goes into its record (:mod:`.capture`); its timeout and stop are watched
(:mod:`._watchdog`); it ends as one :class:`~.records.JobInvocation` with an
:class:`~.records.Outcome`, with which a retry is decided
(:func:`._retries.plan_retry`).  What happened is published as past-tense events
on the :class:`~.events.EventBus` (:class:`~.events.RunFinished`, and the jobs'
states through the :class:`~._publishing.StatePublisher`).

The parts own their state and take narrow inputs; the runner is given
everything it needs when it is made.  It reads time only through the injected
clock and knows nothing of traits, widgets or SQLite.

Nothing stalls silently: a thread given up on is replaced (the pool), a loop
blocked by a coroutine is replaced (:mod:`._loops`), runs that wait for a thread
say so in their job's state and in one warning.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import logging
import os
import sys
import threading
import time
from _thread import get_ident
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import Future
from datetime import datetime, timedelta
from typing import Any

from . import capture
from ._batches import Batch
from ._loops import LoopSupervisor
from ._publishing import StatePublisher
from ._retries import RetryPlan, plan_retry
from ._watchdog import Watchdog
from .claims import Claimer, ClaimQueue, claim_one
from .clock import Clock
from .events import EventBus, FiresCoalesced, RunFinished
from .executors import DaemonThreadPool
from .records import (
    JobInvocation,
    Outcome,
    Trigger,
    bounded_traceback,
    error_text,
    log_text,
)
from .remote import RemoteCall
from .runs import enter_run, leave_run
from .runtime import QUEUED, RUNNING, JobRuntime, JobSpec, PendingRetry, Run
from .scheduler import Due, Timer, TimerCall, TimerEntry

__all__ = ["Runner"]

log = logging.getLogger("mashroom_jobs")

#: seconds between two warnings of one job's failures (the rest are counted in the next)
FAILURE_LOG_INTERVAL = 60.0
#: what the record of a skipped fire says (only the first skip during a run is recorded)
SKIP_MESSAGE = ("skipped: the previous run was still going (overlap='skip'); later fires "
                "skipped during that run are only counted (skip_count)")


class Runner:
    """Runs the jobs of one service.  See the module docstring.

    Parameters
    ----------
    clock : Clock
        Where time comes from.
    bus : EventBus
        Where run events are published.
    max_workers : int
        Threads of the pool where plain callbacks run.
    history_size : int
        Records each job keeps in memory.
    capture_output : bool
        Route what a job prints into its record.
    stop_grace : float
        Seconds a run may go on after a stop or a timeout before it is abandoned.
    get_context : callable
        The context jobs that take one are called with.
    remote_context : object
        The context remote runs get (picklable; no shell, no service).
    claimer : Claimer, optional
        Claims exclusive fires among the processes sharing a store.
    precise : bool
        A batch's worker polls the last stretch before the fire time (``wait_precise``).
    loop_block_limit : float
        Seconds a coroutine may hold the event loop before it counts as blocking it.
    """

    def __init__(self, clock: Clock, bus: EventBus, *, max_workers: int = 8,
                 history_size: int = 20, capture_output: bool = True, stop_grace: float = 5.0,
                 get_context: Callable[[], object] = lambda: None,
                 remote_context: object = None, claimer: Claimer | None = None,
                 precise: bool = False, loop_block_limit: float = 1.0) -> None:
        self.clock = clock
        self.bus = bus
        self.history_size = history_size
        self.capture_output = capture_output
        self.get_context = get_context
        self.remote_context = remote_context
        self.precise = precise
        self.timer = Timer(clock, self.handoff, rescheduled=self._rescheduled)
        self.pool = DaemonThreadPool(max_workers)
        self.loops = LoopSupervisor(clock, self.timer.call_later, loop_block_limit,
                                    self._loop_blocked)
        self.watchdog = Watchdog(self.timer.call_later, stop_grace,
                                 end_queued=self._end_stopped, abandon=self._abandon)
        self.publisher = StatePublisher(bus, self.timer.call_later, self.pool.defer_later)
        #: the store's claims, in bulk (None without a claimer: no store)
        self.claims: ClaimQueue[Run] | None = None if claimer is None else ClaimQueue(
            claimer.claim_many, self.pool.dispatch, self._settle_claim, self._refuse)
        self._idle = threading.Condition(threading.Lock())
        self._inflight: dict[Run, None] = {}
        self._ended: deque[Run] = deque()  # runs whose callback returned, to be recorded
        self._batches = 0  # batches handed over and not yet fired
        self._failure_logs: dict[str, tuple[float, int]] = {}  # job -> (last warning, since)
        self._saturated_since: float | None = None

    # -- settings the service may change ----------------------------------------------

    @property
    def stop_grace(self) -> float:
        return self.watchdog.stop_grace

    @stop_grace.setter
    def stop_grace(self, value: float) -> None:
        self.watchdog.stop_grace = value

    @property
    def abandoned_runs(self) -> int:
        """Runs that ignored a stop or a timeout past ``stop_grace``."""
        return self.watchdog.abandoned

    def threads(self) -> list[threading.Thread]:
        """The threads the runner started: its timer's, its pool's and its loop's."""
        timer = [self.timer.thread] if self.timer.thread is not None else []
        return [*timer, *self.pool.threads, *self.loops.threads()]

    # -- the verbs (on the caller's thread) ---------------------------------------------

    def add(self, runtime: JobRuntime) -> None:
        """Put a new job on the timer (nothing for a run-once job, or while paused)."""
        schedule = runtime.spec.schedule
        if schedule is not None:
            runtime.attach(functools.partial(self.timer.add, schedule, runtime))

    def pause(self, runtime: JobRuntime) -> None:
        if runtime.set_paused(True):
            self._detach(runtime)
            self.publisher.publish(runtime)

    def resume(self, runtime: JobRuntime) -> None:
        """Fire again from the next fire time after now (fires missed while paused are
        not run)."""
        if runtime.set_paused(False):
            self.add(runtime)
            self.publisher.publish(runtime)

    def deactivate(self, runtime: JobRuntime) -> None:
        """Unscheduled, replaced or shut down: it fires no more (a run going ends)."""
        entry = runtime.deactivate()
        if entry is False:
            return
        if entry is not None:
            self.timer.cancel(entry)
        self.publisher.publish(runtime)

    def _detach(self, runtime: JobRuntime) -> None:
        entry = runtime.detach()
        if entry is not None:
            self.timer.cancel(entry)

    def invoke(self, runtime: JobRuntime, trigger: Trigger,
               future: Future[JobInvocation] | None = None,
               scheduled_for: datetime | None = None) -> None:
        """Start a run now (manual, immediate, a caught-up fire claimed already): those
        ignore the overlap rule."""
        self.go(runtime.admit(trigger, scheduled_for, future=future), here=False)

    def record_fire(self, runtime: JobRuntime, record: JobInvocation) -> None:
        """Keep the record of a fire that did not run here (missed, skipped) as a run's:
        in the job's history and published."""
        runtime.record_skip(record, self.history_size)
        bus = self.bus
        if bus.wants(RunFinished):
            bus.publish(RunFinished(runtime.spec.name, record, False, False, runtime.owner))
        self.publisher.publish(runtime)

    def stop(self, runtime: JobRuntime) -> int:
        """Ask every run of a job in flight to stop; how many were asked."""
        runs = [run for run in list(self._inflight) if run.runtime is runtime]
        for run in runs:
            self.watchdog.request_stop(run, "stopped", by_user=True)
        return len(runs)

    # -- fires: handed over by the timer, fired in batches ------------------------------

    def handoff(self, start: float, due: list[Due]) -> None:
        """The timer's hand-off: fire ``due`` at ``start`` (monotonic).  On the timer
        thread: a batch due now is decided before this returns (see :mod:`._batches`)."""
        batch = Batch(start, due, self._batch_done)
        if not batch.total:
            return
        with self._idle:
            self._batches += 1
        try:
            handed = self.pool.dispatch(self._fire, batch)
        except RuntimeError:  # shut down: nothing starts any more
            self._batch_done()
            return
        if not handed:
            # every worker is busy: this thread decides the fires at their time (their
            # runs wait for threads, and say so), rather than the whole batch waiting
            self._wait_until(batch.start)
            batch.fire(self._take, self.go, self.pool.dispatch, self.pool.hold_deferred,
                       here=False)
        elif start <= self.clock.monotonic():
            batch.decided.wait()

    def _fire(self, batch: Batch) -> None:
        """On a pool worker: wait for the batch's time, then fire it (unless the handing
        thread did, the pool having been busy)."""
        if batch.progress >= 0:
            return  # fired meanwhile by the handing thread (its worker came too late)
        if batch.start > self.clock.monotonic():
            batch.warm()
            self._wait_until(batch.start)
        batch.fire(self._take, self.go, self.pool.dispatch, self.pool.hold_deferred,
                   here=True)

    def _wait_until(self, start: float) -> None:
        """Wait for a batch's time: precisely when asked (and the clock can), else with
        the clock's ``wait_until`` (or on a condition of this wait's own)."""
        clock = self.clock
        precise = getattr(clock, "wait_precise", None) if self.precise else None
        wait_until = getattr(clock, "wait_until", None)
        if precise is None and wait_until is not None:
            wait_until(start)
            return
        condition = threading.Condition(threading.Lock())
        with condition:
            while clock.monotonic() < start:
                if precise is not None:
                    precise(condition, start)
                else:
                    clock.wait(condition, start)

    def _take(self, runtime: JobRuntime, scheduled_for: datetime, coalesced: bool) -> Run | None:
        run, changed, note = runtime.take_fire(scheduled_for, coalesced)
        if note:  # the first fire skipped during this run: kept, for the history's picture
            self.record_fire(runtime, JobInvocation(
                timestamp=self.clock.now().astimezone(runtime.spec.zone),
                scheduled_for=scheduled_for, trigger="schedule", execution_time_ms=0.0,
                outcome=Outcome.SKIPPED, error_message=SKIP_MESSAGE, job=runtime.spec.name))
        elif changed:
            self.publisher.publish_later(runtime)
            if coalesced and runtime.spec.catch_up and self.bus.wants(FiresCoalesced):
                self.bus.publish(FiresCoalesced(runtime.spec.name, scheduled_for,
                                                runtime.owner))
        return run

    def _batch_done(self) -> None:
        """A batch handed over was fired (or dropped at shutdown): the runner may be idle."""
        with self._idle:
            self._batches -= 1
            if not self._batches and not self._inflight:
                self._idle.notify_all()

    def _rescheduled(self, entries: list[TimerEntry]) -> None:
        for entry in entries:
            if isinstance(entry.target, JobRuntime):
                self.publisher.publish_later(entry.target)

    # -- a run, from launch to its start --------------------------------------------------

    def go(self, run: Run, here: bool) -> None:
        """Start ``run`` (already counted in its job's ``pending``); never raises.  With
        ``here`` (a batch's thread, a standby in place) a plain callback runs on this
        thread; an exclusive fire is claimed first."""
        self._inflight[run] = None  # (adding never makes the runner idle: no lock needed)
        spec = run.runtime.spec
        try:
            if spec.exclusive and run.trigger == "schedule":
                self._claim(run, spec)
            elif here and spec.remote is None and spec.executor is None \
                    and not spec.kind.is_async:
                self._run_sync(run)
            else:
                self.start(run)
        except Exception as exc:  # the executor refused (shut down, full...): record it
            self._refuse(run, exc)

    def _claim(self, run: Run, spec: JobSpec) -> None:
        assert run.scheduled_for is not None  # only scheduled fires are claimed
        cluster = spec.remote.claimer if spec.remote is not None else None
        if cluster is not None:  # a cluster's claim: one fire at a time, on a worker
            self.pool.dispatch(self._claim_one, run, cluster)
        elif self.claims is not None:  # claimed with the fires due with it, in one go
            self.claims.queue(run, (spec.name, run.scheduled_for))
        else:  # no store: this process is the only one
            self.start(run)

    def _claim_one(self, run: Run, claimer: Claimer) -> None:
        assert run.scheduled_for is not None
        winner, note = claim_one(claimer, (run.runtime.spec.name, run.scheduled_for),
                                 "cluster")
        self._settle_claim(run, winner, note)

    def _settle_claim(self, run: Run, winner: str | None, note: str) -> None:
        """A claimed fire: start it here when ``winner`` is None (won, or not claimed),
        else record that ``winner`` ran it."""
        if winner is not None:
            spec = run.runtime.spec
            self.finish(run, JobInvocation(
                timestamp=self.clock.now().astimezone(spec.zone),
                scheduled_for=run.scheduled_for, trigger=run.trigger, execution_time_ms=0.0,
                outcome=Outcome.ELSEWHERE, attempt=run.attempt, origin=winner, job=spec.name,
            ))
            return
        run.note = note
        try:
            self.start(run)
        except Exception as exc:
            self._refuse(run, exc)

    def _refuse(self, run: Run, error: BaseException) -> None:
        self.finish(run, self._failed(run, f"could not start: {error_text(error)}"))

    def start(self, run: Run) -> None:
        """Send a run (its claim settled) to where its callback runs."""
        spec = run.runtime.spec
        if spec.remote is not None:
            self._start_remote(run)
        elif spec.kind.is_async:
            if spec.executor is None:
                run.handle = self.loops.submit(self._run_async(run))
            else:
                run.handle = spec.executor.submit(asyncio.run, self._run_async(run))
                run.handle.add_done_callback(functools.partial(self._executor_done, run))
        elif spec.executor is None:
            if not self.pool.dispatch(self._run_sync, run):
                self._waits(run)
        else:
            run.handle = spec.executor.submit(self._run_sync, run, False)
            run.handle.add_done_callback(functools.partial(self._executor_done, run))

    def _waits(self, run: Run) -> None:
        """``run`` waits behind busy workers: the job's state says so, and a warning
        names the jobs holding the threads (once per stretch of saturation)."""
        runtime = run.runtime
        runtime.wait_for_thread(run)
        self.publisher.soon(runtime)
        now = self.clock.monotonic()
        if self._saturated_since is not None and now - self._saturated_since < 60.0:
            return
        holding = sorted({r.runtime.spec.name for r in list(self._inflight)
                          if r.state == RUNNING and r.runtime.spec.executor is None})
        if not holding:  # only the batch's own thread is busy: it is free in a moment
            return
        self._saturated_since = now
        log.warning("all %d worker threads are busy (running: %s); runs of %r and others "
                    "wait for a free thread", self.pool.max_workers,
                    ", ".join(map(repr, holding[:5])) + ("…" if len(holding) > 5 else ""),
                    runtime.spec.name)

    def _begin(self, run: Run) -> bool:
        """Mark a run started; False when it was stopped (and recorded) while queued."""
        runtime = run.runtime
        first = runtime.begin(run)
        if first is None:
            return False
        run.t0 = self.clock.monotonic()
        run.on_progress = self._progress
        if first and runtime.watched:
            self.publisher.soon(runtime)
        if runtime.spec.timeout is not None:
            self.watchdog.watch(run)
        return True

    def _progress(self, run: Run, text: str | None, detail: str | None) -> None:
        """A running run said how far it is: its job's state says so (coalesced)."""
        runtime = run.runtime
        if runtime.set_progress(run, None if text is None else str(text)[:200],
                                None if detail is None else str(detail)[:500]):
            self.publisher.publish_later(runtime)

    def _started_at(self, run: Run) -> datetime:
        """The wall time ``run`` started (it has), in its job's zone."""
        assert run.t0 is not None
        clock = self.clock
        elapsed = clock.monotonic() - run.t0
        return (clock.now() - timedelta(seconds=elapsed)).astimezone(run.runtime.spec.zone)

    # -- the three ways a callback runs here ----------------------------------------------

    def _run_sync(self, run: Run, deferred: bool = True) -> None:
        """A plain callback, on this thread (a pool worker, or a user's executor).  With
        ``deferred`` (a pool worker) the record waits until no run waits to start."""
        if not self._begin(run):
            return
        run.thread = get_ident()
        spec = run.runtime.spec
        buffer = capture.OutputBuffer(repr(spec.name)) if self.capture_output else None
        capture.ensure_installed()
        run_token = enter_run(run)
        sink_token = capture.set_sink(buffer)
        try:
            result = spec.callback(self.get_context()) if spec.kind.takes_context \
                else spec.callback()
            if result is not None and inspect.isawaitable(result):
                # a plain function that returned a coroutine: await it on the loop thread
                self.loops.submit(_awaiting(result, buffer, run)).result()
        except BaseException as exc:  # a job may raise anything, even SystemExit
            run.error, run.tb = exc, bounded_traceback(exc)
        finally:
            capture.reset_sink(sink_token)
            leave_run(run_token)
        if _forked:
            _leave_forked_child(spec.name)
        run.ended = self.clock.monotonic()
        run.buffer = buffer
        run.runtime.returned(run)
        if deferred:  # recorded once no run waits to start (one deferred call per burst)
            ended = self._ended
            ended.append(run)
            if len(ended) == 1:
                self.pool.defer(self._end_all)
        else:
            self._end(run)

    async def _run_async(self, run: Run) -> None:
        """A coroutine callback, as a task on the loop thread (its own context)."""
        if not self._begin(run):
            return
        spec = run.runtime.spec
        watched = spec.executor is None  # on the supervised loop (not asyncio.run elsewhere)
        if watched:
            run.task = asyncio.current_task()
            self.loops.run_began()
        buffer = capture.OutputBuffer(repr(spec.name)) if self.capture_output else None
        capture.ensure_installed()
        enter_run(run)  # (the task has a context of its own)
        capture.set_sink(buffer)
        try:
            await (spec.callback(self.get_context()) if spec.kind.takes_context
                   else spec.callback())
        except asyncio.CancelledError as exc:  # stopped, timed out, or the loop shut down
            run.error = exc
        except BaseException as exc:
            run.error, run.tb = exc, bounded_traceback(exc)
        finally:
            if watched:
                self.loops.run_ended()
        run.ended = self.clock.monotonic()
        run.buffer = buffer
        run.runtime.returned(run)
        self._end(run)

    def _loop_blocked(self, task: asyncio.Task[Any] | None, seconds: float) -> None:
        """The loop supervisor replaced a loop that ``task`` held for ``seconds``: the
        coroutine runs that had not started there start on the new loop, and the run that
        held it says so in its output."""
        inflight = list(self._inflight)
        for run in inflight:
            spec = run.runtime.spec
            if run.state == QUEUED and spec.kind.is_async and spec.executor is None \
                    and spec.remote is None and run.handle is not None:
                old, run.handle = run.handle, self.loops.submit(self._run_async(run))
                old.cancel()  # (it never starts: the run starts once, wherever first)
        blocker = next((run for run in inflight if run.task is task), None) \
            if task is not None else None
        if blocker is None:
            log.warning("the asyncio loop of coroutine jobs was blocked for %.1f s; coroutine "
                        "jobs go to a new loop thread", seconds)
            return
        name = blocker.runtime.spec.name
        blocker.note += (f"[mashroom-jobs] this coroutine blocked its event loop for "
                         f"{seconds:.1f} s (a blocking call, such as time.sleep, in async "
                         f"code?); coroutine jobs went on on a new loop thread\n")
        log.warning("coroutine job %r blocked its event loop for %.1f s (a blocking call in "
                    "async code?); coroutine jobs go to a new loop thread", name, seconds)

    def _start_remote(self, run: Run) -> None:
        """Send the callback to a cluster or process pool; the result comes back later."""
        if not self._begin(run):
            return
        spec = run.runtime.spec
        assert spec.remote is not None
        call = RemoteCall(spec.callback, self.remote_context if spec.kind.takes_context else None,
                          spec.kind.is_async, self.capture_output)
        when = run.scheduled_for or self._started_at(run)
        key = f"mashroom-job-{spec.name}-{when:%Y%m%dT%H%M%S%z}-{run.trigger}{run.attempt}"
        try:
            handle = spec.remote.submit(call, key)
        except BaseException as exc:  # unpicklable, cluster gone...
            run.runtime.returned(run)
            self.finish(run, self._failed(run, spec.remote.describe_failure(exc)))
            return
        run.handle = handle
        handle.add_done_callback(functools.partial(self._remote_done, run))
        if run.stop_reason is not None:  # stopped while being sent
            handle.cancel()

    def _remote_done(self, run: Run, future: Any) -> None:
        spec = run.runtime.spec
        assert spec.remote is not None
        try:
            result = future.result()
        except BaseException as exc:
            if run.stop_reason is not None:
                record = self._stopped(run)
            else:
                record = self._failed(run, spec.remote.describe_failure(exc))
        else:
            message = run.stop_reason or result.error_message
            if run.stop_reason is not None:
                outcome = run.outcome_if_stopped
            else:
                outcome = Outcome.OK if message is None else Outcome.FAILED
            record = JobInvocation(
                timestamp=datetime.fromtimestamp(result.started, spec.zone),
                scheduled_for=run.scheduled_for, trigger=run.trigger,
                execution_time_ms=result.execution_time_ms, outcome=outcome,
                error_message=message, traceback=result.traceback,
                output=run.note + result.output, attempt=run.attempt, worker=result.worker,
                job=spec.name,
            )
        run.runtime.returned(run)
        self.finish(run, record)

    def _executor_done(self, run: Run, future: Future[Any]) -> None:
        """A user's executor dropped the run (cancelled, refused, could not pickle it)."""
        if future.cancelled():
            if run.stop_reason is not None:
                record = self._stopped(run)
            else:
                record = self._failed(run, "cancelled by its executor before it started")
        else:
            error = future.exception()
            if error is None:
                return  # the run records itself
            record = self._failed(run, f"could not run on its executor: {error_text(error)}")
        run.runtime.returned(run)
        self.finish(run, record)

    # -- records --------------------------------------------------------------------------

    def _end_all(self) -> None:
        """Record the runs that ended on pool workers, in the order they ended."""
        ended = self._ended
        while True:
            try:
                run = ended.popleft()
            except IndexError:
                return
            self._end(run)

    def _end(self, run: Run) -> None:
        """Record a run whose callback returned (or raised)."""
        try:
            record = self._record_of(run)
        except BaseException as exc:  # a bookkeeping error ends the run, never wedges the job
            log.exception("could not record a run of job %r", run.runtime.spec.name)
            record = self._failed(run, f"could not record the run: {error_text(exc)}")
        self.finish(run, record)

    def _record_of(self, run: Run) -> JobInvocation:
        error = run.error
        if run.stop_reason is not None:
            outcome, message = run.outcome_if_stopped, run.stop_reason
        elif error is None:
            outcome, message = Outcome.OK, None
        else:
            outcome, message = Outcome.FAILED, error_text(error)
        buffer = run.buffer
        assert run.t0 is not None
        return JobInvocation(
            timestamp=self._started_at(run),
            scheduled_for=run.scheduled_for, trigger=run.trigger,
            execution_time_ms=(run.ended - run.t0) * 1000.0, outcome=outcome,
            error_message=message, traceback=run.tb,
            output=run.note + (buffer.getvalue() if buffer is not None else ""),
            attempt=run.attempt, job=run.runtime.spec.name, artifact=run.artifact,
            revision=run.revision,
        )

    def _failed(self, run: Run, message: str,
                outcome: Outcome = Outcome.FAILED) -> JobInvocation:
        """The record of a run that did not (or not fully) happen here."""
        if run.t0 is not None:
            elapsed = (self.clock.monotonic() - run.t0) * 1000.0
            started = self._started_at(run)
        else:
            elapsed, started = 0.0, self.clock.now().astimezone(run.runtime.spec.zone)
        return JobInvocation(
            timestamp=started, scheduled_for=run.scheduled_for,
            trigger=run.trigger, execution_time_ms=elapsed, outcome=outcome,
            error_message=message, output=run.note, attempt=run.attempt,
            job=run.runtime.spec.name, artifact=run.artifact, revision=run.revision,
        )

    def _stopped(self, run: Run) -> JobInvocation:
        """The record of a run stopped (or timed out) before it could end by itself."""
        assert run.stop_reason is not None
        return self._failed(run, run.stop_reason, run.outcome_if_stopped)

    def _end_stopped(self, run: Run) -> None:
        """The watchdog: ``run`` was stopped while queued."""
        self.finish(run, self._stopped(run))

    def _abandon(self, run: Run) -> None:
        """The watchdog: ``run`` ignored its stop; record it and give its thread back."""
        self.finish(run, self._stopped(run))
        if run.thread is not None:
            self.pool.retire(run.thread)

    def finish(self, run: Run, record: JobInvocation) -> None:
        """Record a run once (the first caller wins), publish it, resolve its future."""
        runtime = run.runtime
        try:
            spec = runtime.spec
            plan = functools.partial(self._plan_retry, run, record) \
                if spec.retries and record.outcome.failed else None
            recorded = runtime.record(run, record, self.history_size, plan)
            if recorded is None:
                return  # recorded already (stopped, abandoned): a late result is dropped
            retrying = self._arm_retry(run, *recorded)
            bus = self.bus
            if bus.wants(RunFinished):
                bus.publish(RunFinished(runtime.spec.name, record, retrying,
                                        run.stopped_by_user, runtime.owner))
            self.publisher.publish(runtime)
            if record.outcome.failed:
                self._log_failure(runtime.spec.name, record)
        finally:
            self.watchdog.done(run)
            if run.future is not None and not run.future.done():
                run.future.set_result(record)
            inflight = self._inflight
            inflight.pop(run, None)
            if not inflight and not self._batches:  # (wait_idle checks under the lock)
                with self._idle:
                    self._idle.notify_all()

    def _log_failure(self, name: str, record: JobInvocation) -> None:
        """One warning per job per :data:`FAILURE_LOG_INTERVAL` (the rest are counted)."""
        now = self.clock.monotonic()
        last, since = self._failure_logs.get(name, (-FAILURE_LOG_INTERVAL, 0))
        if now - last < FAILURE_LOG_INTERVAL:
            self._failure_logs[name] = (last, since + 1)
            return
        self._failure_logs[name] = (now, 0)
        more = f" ({since} more failure{'s' if since != 1 else ''} since the last warning)" \
            if since else ""
        log.warning("Background job %r failed: %s%s", name, log_text(record.error_message), more)

    # -- retries --------------------------------------------------------------------------

    def _plan_retry(self, run: Run, record: JobInvocation,
                    following: datetime | None) -> RetryPlan:
        """Whether a failed ``run`` is tried again (under its job's lock: keep it short)."""
        spec = run.runtime.spec
        return plan_retry(outcome=record.outcome, trigger=run.trigger, attempt=run.attempt,
                          stopped_by_user=run.stopped_by_user, retries=spec.retries,
                          retry_delay=spec.retry_delay, now=self.clock.now().timestamp(),
                          next_fire=following.timestamp() if following is not None else None)

    def _arm_retry(self, run: Run, plan: RetryPlan, pending: PendingRetry | None) -> bool:
        """Put a decided retry on the timer; True when one is scheduled."""
        runtime = run.runtime
        if plan.dropped:
            log.warning("retry %d of job %r dropped: its next scheduled fire (%s) comes "
                        "before the retry would", run.attempt, runtime.spec.name,
                        runtime.next_fire)
            return False
        if pending is None or plan.delay is None:
            return False
        try:
            call: TimerCall | None = self.timer.call_later(
                plan.delay, self._retry_due, runtime, run.scheduled_for, run.attempt + 1)
        except RuntimeError:  # the timer stopped
            call = None
        return runtime.arm_retry(pending, call)

    def _retry_due(self, runtime: JobRuntime, scheduled_for: datetime | None,
                   attempt: int) -> None:
        """On the timer thread: the retry is due."""
        taken = runtime.take_retry(scheduled_for, attempt)
        if isinstance(taken, Run):
            self.go(taken, here=False)
        elif taken:  # the next fire is already running: it wins
            log.warning("retry %d of job %r dropped: its next run was already going",
                        attempt - 1, runtime.spec.name)
            self.publisher.publish_later(runtime)

    # -- idle and shutdown ------------------------------------------------------------------

    def in_flight(self) -> int:
        return len(self._inflight)

    def running(self, exclude: Run | None = None) -> list[JobRuntime]:
        """The jobs with a run in progress (once each; unscheduled ones too), but
        ``exclude``'s own."""
        runtimes = {run.runtime: None for run in list(self._inflight)
                    if run.state == RUNNING and run is not exclude}
        return list(runtimes)

    def wait_idle(self, timeout: float | None = None, *, exclude: Run | None = None) -> bool:
        """Block until no run is queued or running (but ``exclude``, the caller's own)."""
        def idle() -> bool:
            return not self._batches and (
                not self._inflight or (len(self._inflight) == 1 and exclude in self._inflight))

        with self._idle:
            return self._idle.wait_for(idle, timeout)

    def stop_all(self, runtimes: Sequence[JobRuntime], wait: bool, deadline: float,
                 exclude: Run | None) -> list[JobRuntime]:
        """Stop the timer, deactivate ``runtimes``, with ``wait`` wait for the runs (but
        ``exclude``) until ``deadline`` (monotonic), then stop the pool and the loop.
        Returns the jobs still running then (their threads are abandoned).  Runs given
        up on before are not waited for."""
        self.timer.stop(max(0.0, deadline - time.monotonic()))
        for runtime in runtimes:
            self.deactivate(runtime)
        if wait:
            self.wait_idle(max(0.0, deadline - time.monotonic()), exclude=exclude)
        left = self.running(exclude=exclude)
        remaining = max(0.0, deadline - time.monotonic()) if wait else 0.0
        self.pool.shutdown(wait=wait, cancel_futures=True, timeout=remaining)
        self.loops.shutdown(max(0.0, deadline - time.monotonic()) if wait else 0.0)
        return left


_forked = False  # set in a child process made by os.fork (see _leave_forked_child)


def _in_forked_child() -> None:
    global _forked
    _forked = True


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_in_forked_child)


def _leave_forked_child(name: str) -> None:
    """A job forked, and the child returned into the scheduler's thread: end the child
    (it holds copies of the scheduler's locks and threads that no longer exist)."""
    try:
        sys.stderr.write(f"mashroom-jobs: job {name!r} forked and its child process returned "
                         f"into the scheduler; the child exits (call os._exit in it)\n")
        sys.stderr.flush()
    finally:
        os._exit(0)


async def _awaiting(awaitable: Awaitable[Any], buffer: capture.OutputBuffer | None,
                    run: Run) -> Any:
    enter_run(run)
    capture.set_sink(buffer)
    return await awaitable
