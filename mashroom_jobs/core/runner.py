"""The run mechanics: how a fire becomes a run, and a run becomes a record.

The :class:`Runner` takes a job's runs from the timer (or a click), claims
exclusive fires in the shared store, picks where each callback runs (the
service's daemon thread pool, its asyncio loop thread, a user's executor, or a
remote backend), routes what it prints into its record, enforces timeouts and
stops, schedules retries, and reports past-tense facts (a
:class:`~.runs.RunFinished` when a run is recorded, a new ``JobState`` when a
job's visible state changes) through its :class:`~.publishing.StatePublisher`.
It reads time only through the injected clock and knows nothing of traits,
widgets or SQLite.

Parts off the way of a plain run live next to it: the batches the timer hands
over ahead of their time (:mod:`.batches`), the claims of exclusive fires
(:mod:`.claims`), stops and timeouts (:mod:`.stopping`) and retries
(:mod:`.retries`).
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import logging
import threading
import time
import traceback
from collections.abc import Awaitable, Callable
from concurrent.futures import Future
from datetime import datetime
from typing import Any

from . import capture
from .batches import Batch, fire_batch
from .claims import FireClaims
from .clock import Clock
from .executors import DaemonThreadPool, LoopThread
from .publishing import StatePublisher
from .records import JobInvocation, Trigger, error_text
from .remote import RemoteCall
from .retries import schedule_retry
from .runs import (
    DONE,
    ENDED,
    QUEUED,
    RUNNING,
    Claimer,
    Run,
    RunFinished,
    RunListener,
    enter_run,
    leave_run,
)
from .runtime import JobRuntime, JobSpec
from .scheduler import Due, Timer
from .stopping import request_stop, time_out

__all__ = ["Runner"]

log = logging.getLogger("mashroom_jobs")


class Runner:
    """Runs the jobs of one service.  See the module docstring."""

    def __init__(self, clock: Clock, timer: Timer, listener: RunListener, *,
                 max_workers: int = 8, history_size: int = 20, capture_output: bool = True,
                 stop_grace: float = 5.0,
                 get_context: Callable[[], object] = lambda: None) -> None:
        self.clock = clock
        self.timer = timer
        self.publisher = StatePublisher(listener, timer, lambda: self.pool)
        self.max_workers = max_workers
        self.history_size = history_size
        self.capture_output = capture_output
        self.stop_grace = stop_grace
        self.get_context = get_context
        #: the context remote runs get (picklable; no shell, no service)
        self.remote_context: object = None
        #: claims exclusive fires (the shared store), when there is one
        self.claimer: Claimer | None = None
        #: exclusive fires waiting to be claimed (see :mod:`.claims`)
        self.claims = FireClaims(self)
        #: runs that ignored a stop or a timeout past the grace period
        self.abandoned_runs = 0
        self._lock = threading.Lock()
        self._pool: DaemonThreadPool | None = None
        self._loop: LoopThread | None = None
        self._idle = threading.Condition(threading.Lock())
        self._inflight: dict[Run, None] = {}
        self._batches = 0  # batches handed over and not yet fired
        #: what a batch's first worker waits on for the fire time (see :mod:`.batches`)
        self.batch_wait = threading.Condition(threading.Lock())
        #: a batch's first worker polls the last stretch before the fire time
        self.precise = False

    @property
    def pool(self) -> DaemonThreadPool:
        pool = self._pool
        if pool is None:
            with self._lock:
                if self._pool is None:
                    self._pool = DaemonThreadPool(self.max_workers)
                pool = self._pool
        return pool

    @property
    def loop(self) -> LoopThread:
        loop = self._loop
        if loop is None:
            with self._lock:
                if self._loop is None:
                    self._loop = LoopThread()
                loop = self._loop
        return loop

    def threads(self) -> list[threading.Thread]:
        """The threads the runner started (its pool's and its loop's)."""
        threads = list(self._pool.threads) if self._pool is not None else []
        if self._loop is not None and self._loop.thread is not None:
            threads.append(self._loop.thread)
        return threads

    # -- launching ----------------------------------------------------------------------

    def launch(self, runtime: JobRuntime, trigger: Trigger, scheduled_for: datetime | None,
               attempt: int, future: Future[JobInvocation] | None) -> None:
        """Start a run already counted in ``runtime.pending``; never raises."""
        self.go(Run(runtime, trigger, scheduled_for, attempt, future), here=False)

    def go(self, run: Run, *, here: bool) -> None:
        """Start ``run``; with ``here`` (on a pool worker), a plain callback runs on this
        thread and an exclusive fire is claimed on it, instead of going to the pool."""
        with self._idle:
            self._inflight[run] = None
        spec = run.runtime.spec
        try:
            claimer = self.claimer_of(spec) if spec.exclusive and run.trigger == "schedule" \
                else None
            if claimer is not None and claimer is self.claimer:
                self.claims.queue(run)  # claimed with the fires due with it, in one go
            elif claimer is not None:  # a cluster's claim: one fire at a time
                self.pool.dispatch(FireClaims.claim_then_start, self.claims, run)
            elif here and spec.remote is None and spec.executor is None \
                    and not spec.kind.is_async:
                self._run_sync(run)
            else:
                self.start(run)
        except Exception as exc:  # the executor refused (shut down, full...): record it
            self.finish(run, self.failed(run, f"could not start: {error_text(exc)}"))

    # -- fires handed over by the timer ahead of their time ---------------------------------

    def handoff(self, start: float, due: list[Due]) -> None:
        """The timer's hand-off (:attr:`Timer.handoff`): fire ``due`` at ``start``
        (monotonic) from a pool worker (see :mod:`.batches`).  On the timer thread: quick."""
        batch = Batch(start, due)
        if not batch.entries:
            return
        with self._idle:
            self._batches += 1
        try:
            self.pool.dispatch(fire_batch, self, batch)
        except RuntimeError:  # shut down: nothing starts any more
            self.batch_done()

    def batch_done(self) -> None:
        """A batch handed over was fired (or dropped at shutdown): the runner may be idle."""
        with self._idle:
            self._batches -= 1
            if not self._batches and not self._inflight:
                self._idle.notify_all()

    # -- where a callback runs --------------------------------------------------------------

    def start(self, run: Run) -> None:
        """Send a run (its claim settled) to where its callback runs."""
        spec = run.runtime.spec
        if spec.remote is not None:
            self._start_remote(run)
        elif spec.kind.is_async:
            if spec.executor is None:
                run.handle = self.loop.submit(self._run_async(run))
            else:
                run.handle = spec.executor.submit(asyncio.run, self._run_async(run))
                run.handle.add_done_callback(functools.partial(Runner._executor_done, self, run))
        elif spec.executor is None:
            self.pool.dispatch(Runner._run_sync, self, run)
        else:
            run.handle = spec.executor.submit(Runner._run_sync, self, run, False)
            run.handle.add_done_callback(functools.partial(Runner._executor_done, self, run))

    def claimer_of(self, spec: JobSpec) -> Claimer | None:
        """Who claims an exclusive job's fires: the cluster it runs on (whose kernels may
        be on other machines), else the shared store."""
        if spec.remote is not None and spec.remote.claimer is not None:
            return spec.remote.claimer
        return self.claimer

    def _begin(self, run: Run) -> bool:
        """Mark a run started; False when it was stopped (and recorded) while queued."""
        runtime = run.runtime
        with runtime.lock:
            if run.state != QUEUED:
                return False
            run.state = RUNNING
            runtime.started += 1
            first = runtime.started == 1
        clock = self.clock
        run.started_at, run.t0 = clock.now(), clock.monotonic()
        if first:
            self.publisher.run_started(runtime)
        timeout = runtime.spec.timeout
        if timeout is not None:
            run.watch = self.timer.call_later(timeout, time_out, self, run)
        return True

    def _ended(self, run: Run) -> None:
        """The callback returned: the run no longer counts as running."""
        runtime = run.runtime
        with runtime.lock:
            if run.state == RUNNING:
                run.state = ENDED
                runtime.started -= 1

    # -- the three ways a callback runs ---------------------------------------------------

    def _run_sync(self, run: Run, deferred: bool = True) -> None:
        """A plain callback, on a pool worker (bookkeeping deferred) or a user's executor."""
        if not self._begin(run):
            return
        spec = run.runtime.spec
        buffer = capture.OutputBuffer() if self.capture_output else None
        capture.ensure_installed()
        run_token = enter_run(run)
        sink_token = capture.set_sink(buffer)
        error: BaseException | None = None
        tb = None
        try:
            result = spec.callback(self.get_context()) if spec.kind.takes_context \
                else spec.callback()
            if result is not None and inspect.isawaitable(result):
                # a plain function that returned a coroutine: await it on the loop thread
                self.loop.submit(_awaiting(result, buffer, run)).result()
        except BaseException as exc:  # a job may raise anything, even SystemExit
            error, tb = exc, traceback.format_exc()
        finally:
            capture.reset_sink(sink_token)
            leave_run(run_token)
        ended = self.clock.monotonic()
        self._ended(run)
        if deferred:
            self.pool.defer(Runner._end, self, run, ended, error, tb, buffer)
        else:
            self._end(run, ended, error, tb, buffer)

    async def _run_async(self, run: Run) -> None:
        """A coroutine callback, as a task on the loop thread (its own context)."""
        if not self._begin(run):
            return
        spec = run.runtime.spec
        buffer = capture.OutputBuffer() if self.capture_output else None
        capture.ensure_installed()
        enter_run(run)  # (the task has a context of its own)
        capture.set_sink(buffer)
        error: BaseException | None = None
        tb = None
        try:
            await (spec.callback(self.get_context()) if spec.kind.takes_context
                   else spec.callback())
        except asyncio.CancelledError as exc:  # stopped, timed out, or the loop shut down
            error = exc
        except BaseException as exc:
            error, tb = exc, traceback.format_exc()
        ended = self.clock.monotonic()
        self._ended(run)
        self._end(run, ended, error, tb, buffer)

    def _start_remote(self, run: Run) -> None:
        """Send the callback to a cluster or process pool; the result comes back later."""
        if not self._begin(run):
            return
        spec = run.runtime.spec
        assert spec.remote is not None
        call = RemoteCall(spec.callback, self.remote_context if spec.kind.takes_context else None,
                          spec.kind.is_async, self.capture_output)
        when = run.scheduled_for or run.started_at
        key = f"mashroom-job-{spec.name}-{when:%Y%m%dT%H%M%S%z}-{run.trigger}{run.attempt}"
        try:
            handle = spec.remote.submit(call, key)
        except BaseException as exc:  # unpicklable, cluster gone...
            self._ended(run)
            self.finish(run, self.failed(run, spec.remote.describe_failure(exc)))
            return
        run.handle = handle
        handle.add_done_callback(functools.partial(Runner._remote_done, self, run))
        if run.stop_reason is not None:  # stopped while being sent
            handle.cancel()

    def _remote_done(self, run: Run, future: Any) -> None:
        spec = run.runtime.spec
        assert spec.remote is not None
        try:
            result = future.result()
        except BaseException as exc:
            reason = run.stop_reason or spec.remote.describe_failure(exc)
            invocation = self.failed(run, reason)
        else:
            message = run.stop_reason or result.error_message
            invocation = JobInvocation(
                datetime.fromtimestamp(result.started, spec.zone), run.scheduled_for,
                run.trigger, result.execution_time_ms, message is None, message,
                result.traceback, run.note + result.output, run.attempt, result.worker,
                job=spec.name,
            )
        self._ended(run)
        self.finish(run, invocation)

    def _executor_done(self, run: Run, future: Future[Any]) -> None:
        """A user's executor dropped the run (cancelled, refused, could not pickle it)."""
        if run.state == DONE:
            return
        if future.cancelled():
            reason = run.stop_reason or "cancelled by its executor before it started"
        else:
            error = future.exception()
            if error is None:
                return  # the run records itself
            reason = f"could not run on its executor: {error_text(error)}"
        self._ended(run)
        self.finish(run, self.failed(run, reason))

    # -- records ----------------------------------------------------------------------

    def _end(self, run: Run, ended: float, error: BaseException | None, tb: str | None,
             buffer: capture.OutputBuffer | None) -> None:
        try:
            message = run.stop_reason or (None if error is None else error_text(error))
            output = run.note + (buffer.getvalue() if buffer is not None else "")
            assert run.started_at is not None
            invocation = JobInvocation(
                run.started_at.astimezone(run.runtime.spec.zone), run.scheduled_for,
                run.trigger, (ended - run.t0) * 1000.0, message is None, message, tb, output,
                run.attempt, job=run.runtime.spec.name,
            )
        except BaseException as exc:  # a bookkeeping error ends the run, never wedges the job
            log.exception("could not record a run of job %r", run.runtime.spec.name)
            invocation = self.failed(run, f"could not record the run: {error_text(exc)}")
        self.finish(run, invocation)

    def failed(self, run: Run, message: str) -> JobInvocation:
        """The record of a run that did not (or not fully) happen here."""
        now = self.clock.now()
        elapsed = 0.0
        if run.started_at is not None:
            elapsed = (self.clock.monotonic() - run.t0) * 1000.0
            now = run.started_at
        return JobInvocation(now.astimezone(run.runtime.spec.zone), run.scheduled_for,
                             run.trigger, elapsed, False, message, None, run.note, run.attempt,
                             job=run.runtime.spec.name)

    def finish(self, run: Run, invocation: JobInvocation) -> None:
        """Record a run once (the first caller wins), tell the listener, resolve its future."""
        runtime = run.runtime
        try:
            with runtime.lock:
                if run.state == DONE:
                    return  # recorded already (stopped, abandoned): a late result is dropped
                if run.state == RUNNING:
                    runtime.started -= 1
                run.state = DONE
                runtime.pending -= 1
                runtime.record(invocation, self.history_size)
                retrying = schedule_retry(self, run, invocation)
            self.publisher.finished(runtime, RunFinished(runtime.spec.name, invocation, retrying,
                                                         run.stopped_by_user))
            if not invocation.success and not invocation.elsewhere:
                log.warning("Background job %r failed: %s", runtime.spec.name,
                            invocation.error_message)
        finally:
            if run.watch is not None:
                run.watch.cancel()
            if run.future is not None and not run.future.done():
                run.future.set_result(invocation)
            with self._idle:
                self._inflight.pop(run, None)
                if not self._inflight and not self._batches:
                    self._idle.notify_all()

    # -- stop (see :mod:`.stopping`) ------------------------------------------------------

    def stop(self, runtime: JobRuntime) -> int:
        """Ask every run of a job in flight to stop; how many were asked."""
        runs = [run for run in list(self._inflight) if run.runtime is runtime]
        for run in runs:
            request_stop(self, run, "stopped", by_user=True)
        return len(runs)

    # -- idle and shutdown -------------------------------------------------------------

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

    def shutdown(self, wait: bool, timeout: float) -> None:
        """Stop the pool and the loop; with ``wait``, within ``timeout`` seconds in all."""
        deadline = time.monotonic() + timeout
        if self._pool is not None:
            self._pool.shutdown(wait=wait, cancel_futures=True,
                                timeout=max(0.0, deadline - time.monotonic()) if wait else 0)
        if self._loop is not None:
            self._loop.shutdown(max(0.0, deadline - time.monotonic()) if wait else 0)


async def _awaiting(awaitable: Awaitable[Any], buffer: capture.OutputBuffer | None,
                    run: Run) -> Any:
    enter_run(run)
    capture.set_sink(buffer)
    return await awaitable
