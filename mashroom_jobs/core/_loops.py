"""Where coroutine jobs run: an asyncio loop on a thread of its own, watched for blocking.

A coroutine that calls a blocking function (``time.sleep``, a synchronous HTTP
request) holds its loop: every other coroutine job on it stalls.  While coroutine
runs are in flight, :class:`LoopSupervisor` posts a heartbeat to the loop every
``block_limit / 2`` seconds (on the runner's timer, through the injected clock);
a heartbeat not answered within ``block_limit`` means the loop is blocked.  The
supervisor then names the task that holds it (its owner records that on the run),
and retires the loop: coroutine runs started from then on go to a fresh loop
thread, while the blocked one finishes what it holds and then ends.  Nothing wakes
while no coroutine runs.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable, Coroutine
from concurrent.futures import Future
from typing import Any, TypeVar

from .clock import Clock
from .scheduler import TimerCall

__all__ = ["LoopSupervisor", "LoopThread"]

T = TypeVar("T")
log = logging.getLogger("mashroom_jobs")

#: seconds a heartbeat seen overdue on the injected clock may still take in real time
#: (the loop thread may simply not have run yet)
REAL_GRACE = 0.05


class LoopThread:
    """One asyncio event loop on its own daemon thread, started on first use."""

    def __init__(self, name: str = "mashroom-jobs-asyncio") -> None:
        self._name = name
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._closed = False

    @property
    def thread(self) -> threading.Thread | None:
        return self._thread

    @property
    def loop(self) -> asyncio.AbstractEventLoop | None:
        return self._loop

    def submit(self, coro: Coroutine[Any, Any, T]) -> Future[T]:
        """Schedule a coroutine on the loop; its result arrives in a concurrent Future."""
        return asyncio.run_coroutine_threadsafe(coro, self._ensure_loop())

    def call_soon(self, fn: Callable[..., object], *args: Any) -> None:
        """Call ``fn(*args)`` on the loop's thread (if it runs)."""
        loop = self._loop
        if loop is not None and not loop.is_closed():
            try:
                loop.call_soon_threadsafe(fn, *args)
            except RuntimeError:  # closed meanwhile
                pass

    def _ensure_loop(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            if self._closed:
                raise RuntimeError("the asyncio loop thread was shut down")
            if self._loop is None:
                loop = asyncio.new_event_loop()
                ready = threading.Event()
                self._thread = threading.Thread(
                    target=self._serve, args=(loop, ready), name=self._name, daemon=True
                )
                self._thread.start()
                ready.wait()
                self._loop = loop
            return self._loop

    @staticmethod
    def _serve(loop: asyncio.AbstractEventLoop, ready: threading.Event) -> None:
        asyncio.set_event_loop(loop)
        loop.call_soon(ready.set)
        try:
            loop.run_forever()
        finally:
            pending = asyncio.all_tasks(loop)
            for task in pending:
                task.cancel()
            if pending:
                loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

    def retire(self) -> None:
        """Take no more work; end the thread once the tasks it holds are done."""
        with self._lock:
            self._closed = True
        self.call_soon(self._stop_when_idle)

    def _stop_when_idle(self) -> None:
        loop = asyncio.get_running_loop()
        if len(asyncio.all_tasks(loop)) == 0:
            loop.stop()
        else:
            loop.call_later(0.05, self._stop_when_idle)

    def shutdown(self, timeout: float | None = None) -> None:
        """Stop the loop (pending tasks are cancelled) and join its thread."""
        with self._lock:
            self._closed = True
            loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        try:
            loop.call_soon_threadsafe(loop.stop)
        except RuntimeError:  # closed already (a retired loop that ended)
            return
        thread.join(timeout)


class LoopSupervisor:
    """The loop coroutine jobs run on, replaced when one of them blocks it.

    Parameters
    ----------
    clock : Clock
        Time for the heartbeats (the runner's clock).
    call_later : callable
        The timer's ``call_later``: the checks run on the timer thread.
    block_limit : float
        Seconds without a heartbeat after which the loop counts as blocked.
    on_blocked : callable
        ``on_blocked(task, seconds)``: the task that held the loop (or None when it
        cannot be told) and how long it had; called once per blocked loop, on the
        timer thread.
    """

    def __init__(self, clock: Clock, call_later: Callable[..., TimerCall], block_limit: float,
                 on_blocked: Callable[[asyncio.Task[Any] | None, float], None]) -> None:
        self._clock = clock
        self._call_later = call_later
        self.block_limit = block_limit
        self._on_blocked = on_blocked
        self._lock = threading.Lock()
        self._current: LoopThread | None = None
        self._closed = False
        self._runs = 0  # coroutine runs in flight: the checks go on while there are any
        # the pending check (one at most: see _arm), or a placeholder while it is armed
        self._check: TimerCall | None = None
        # the heartbeat in flight: when posted (clock), answered (an Event)
        self._beat_posted: float | None = None
        self._beat_seen = threading.Event()
        self._beat_loop: LoopThread | None = None

    @property
    def current(self) -> LoopThread:
        """The loop new coroutine runs go to (started on first use)."""
        with self._lock:
            if self._current is None:
                if self._closed:
                    raise RuntimeError("the asyncio loop thread was shut down")
                self._current = LoopThread()
            return self._current

    def submit(self, coro: Coroutine[Any, Any, T]) -> Future[T]:
        """Run a coroutine on the current loop (not watched: see :meth:`run_began`)."""
        return self.current.submit(coro)

    def threads(self) -> list[threading.Thread]:
        """The current loop's thread (the retired ones are given up on)."""
        loop = self._current
        return [loop.thread] if loop is not None and loop.thread is not None else []

    # -- watching ---------------------------------------------------------------------

    def run_began(self) -> None:
        """A coroutine run started: watch the loop while any runs."""
        with self._lock:
            self._runs += 1
            if self._check is not None or self._closed:
                return  # a check is pending already
        self._arm()

    def run_ended(self) -> None:
        with self._lock:
            self._runs -= 1

    def _arm(self) -> None:
        """Schedule the next check, unless one is pending already: one chain of checks.

        The slot is taken under the lock before the timer is asked, so that a run
        beginning while a check re-arms does not start a second chain."""
        reserved = TimerCall(0.0, self._tick, ())  # a placeholder until the timer answers
        with self._lock:
            if self._check is not None or self._closed:
                return
            self._check = reserved
        try:
            call = self._call_later(self.block_limit / 2, self._tick)
        except RuntimeError:  # the timer stopped: shutting down
            with self._lock:
                if self._check is reserved:
                    self._check = None
            return
        with self._lock:
            if self._check is reserved:
                self._check = call
            elif self._closed:  # shut down meanwhile (else: it ran already)
                call.cancel()

    def _tick(self) -> None:
        """On the timer thread: look at the heartbeat in flight, or post one."""
        with self._lock:
            self._check = None
            if self._closed:
                return
            loop = self._current
            idle = self._runs <= 0
        if loop is not None:
            self._look(loop)
        if idle:  # nothing in flight: stop checking until the next run begins
            with self._lock:
                self._beat_posted = None
                if self._runs <= 0 or self._check is not None:
                    return
        self._arm()

    def _look(self, loop: LoopThread) -> None:
        now = self._clock.monotonic()
        posted = self._beat_posted
        if posted is None or self._beat_loop is not loop or self._beat_seen.is_set():
            self._post(loop, now)
            return
        lag = now - posted
        if lag < self.block_limit:
            return
        # overdue on the clock: the loop thread may not have been scheduled yet (an
        # injected clock moves in jumps); give it a moment of real time
        if self._beat_seen.wait(REAL_GRACE):
            self._post(loop, now)
            return
        self._replace(loop, lag)

    def _post(self, loop: LoopThread, now: float) -> None:
        self._beat_seen.clear()
        self._beat_posted = now
        self._beat_loop = loop
        loop.call_soon(self._beat_seen.set)

    def _replace(self, loop: LoopThread, lag: float) -> None:
        held = None
        event_loop = loop.loop
        if event_loop is not None:
            held = asyncio.current_task(event_loop)  # the task holding the loop, if any
        with self._lock:
            if self._current is loop:
                self._current = None  # the next coroutine run starts a fresh loop
            self._beat_posted = None
        loop.retire()  # it ends by itself once its tasks are done, shutdown or not
        try:
            self._on_blocked(held, lag)
        except Exception:
            log.exception("mashroom-jobs: error while reporting a blocked event loop")

    # -- shutting down ----------------------------------------------------------------

    def shutdown(self, timeout: float | None) -> None:
        """Stop the current loop (and join it within ``timeout``).  Retired loops are
        not waited for (their thread may be blocked for good): each was told to end once
        its tasks are done when it was retired, and nothing keeps it alive after."""
        with self._lock:
            self._closed = True
            loop, self._current = self._current, None
            if self._check is not None:
                self._check.cancel()
                self._check = None
        if loop is not None:
            loop.shutdown(timeout)
