"""Where job bodies run: a daemon thread pool and one asyncio loop thread.

Neither ever runs on the timer thread or on the kernel's main thread.  Both
use daemon threads, so interpreter exit never hangs on a stuck job (the
standard ``ThreadPoolExecutor`` joins its workers at exit).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Coroutine, Iterator
from concurrent.futures import Executor, Future
from typing import Any, TypeVar

__all__ = ["DaemonThreadPool", "LoopThread"]

T = TypeVar("T")
log = logging.getLogger("mashroom_jobs")


class DaemonThreadPool(Executor):
    """A ``concurrent.futures.Executor`` of at most ``max_workers`` daemon threads.

    Threads start lazily, one per task while none is idle, and stay until
    :meth:`shutdown`.  :meth:`dispatch` is the scheduler's fast path: it runs a
    callable without creating a Future.  :meth:`defer` runs follow-up work (a
    run's bookkeeping) only once no task is waiting to start, so that 10,000
    jobs due together all start before any of their records is written.
    """

    #: Longest time (seconds) deferred work waits while tasks keep waiting to start:
    #: longer than it takes to start 10,000 trivial runs.
    defer_limit: float = 0.25

    def __init__(self, max_workers: int = 8, name: str = "mashroom-jobs-worker") -> None:
        if max_workers < 1:
            raise ValueError(f"max_workers must be at least 1, got {max_workers}")
        self._max_workers = max_workers
        self._name = name
        self._tasks: deque[tuple[Callable[..., object], tuple[Any, ...]]] = deque()
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self._idle = 0  # workers waiting on _wake that no dispatch has claimed yet
        self._threads: list[threading.Thread] = []
        self._shutdown = False
        # defer(): FIFO of (when, fn); run in order by one thread at a time
        self._deferred: deque[tuple[float, Callable[..., object], tuple[Any, ...]]] = deque()
        self._drain_lock = threading.Lock()
        self._keeper: threading.Thread | None = None
        self._keeper_wake = threading.Condition(threading.Lock())
        self._keeper_armed = False
        self._holding = 0  # producers inside hold_deferred()

    @property
    def threads(self) -> tuple[threading.Thread, ...]:
        keeper = () if self._keeper is None else (self._keeper,)
        return (*self._threads, *keeper)

    def dispatch(self, fn: Callable[..., object], *args: Any) -> None:
        """Run ``fn(*args)`` on a worker; exceptions are logged (wrap it to keep them)."""
        with self._lock:
            if self._shutdown:
                raise RuntimeError("cannot dispatch after shutdown")
            # (fn, args), not a closure or partial: fewer objects per run, fewer GC passes
            self._tasks.append((fn, args))
            if self._idle:
                self._idle -= 1
                self._wake.notify()
            elif len(self._threads) < self._max_workers:
                thread = threading.Thread(
                    target=self._work, name=f"{self._name}-{len(self._threads)}", daemon=True
                )
                self._threads.append(thread)
                thread.start()

    def submit(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> Future[T]:
        future: Future[T] = Future()

        def run() -> None:
            if not future.set_running_or_notify_cancel():
                return
            try:
                future.set_result(fn(*args, **kwargs))
            except BaseException as exc:
                future.set_exception(exc)

        self.dispatch(run)
        return future

    def defer(self, fn: Callable[..., object], *args: Any) -> None:
        """Run ``fn(*args)`` once no dispatched task is waiting to start; in call order.

        With nothing waiting it runs at once, on this thread.  Otherwise the first
        thread to find nothing waiting runs it, or the pool's bookkeeping thread
        after at most :attr:`defer_limit` seconds.  Exceptions are logged.
        """
        self._deferred.append((time.monotonic(), fn, args))
        if not self._tasks and not self._holding:
            self._drain()
        elif not self._keeper_armed:
            self._arm_keeper()

    def defer_later(self, fn: Callable[..., object], *args: Any) -> None:
        """:meth:`defer`, but never on this thread: for a worker about to start a job,
        whose start must not wait for bookkeeping.  Runs when a thread next drains
        deferred work, or after at most :attr:`defer_limit` seconds."""
        self._deferred.append((time.monotonic(), fn, args))
        if not self._keeper_armed:
            self._arm_keeper()

    @contextlib.contextmanager
    def hold_deferred(self) -> Iterator[None]:
        """While inside, deferred work waits as if tasks were waiting: for a producer
        about to dispatch many tasks (the timer firing 10,000 jobs), so that workers
        that find the queue empty for a moment start on no bookkeeping."""
        with self._lock:
            self._holding += 1
        try:
            yield
        finally:
            with self._lock:
                self._holding -= 1
                # Runs that ended meanwhile wait for a worker: hand one the bookkeeping
                # rather than doing it on the producer's thread (the timer's).
                handoff = not self._tasks and bool(self._deferred) and not self._shutdown
            if handoff:
                try:
                    self.dispatch(self._drain)
                except RuntimeError:  # shut down meanwhile: shutdown() drains
                    pass

    def _drain(self, force: bool = False) -> None:
        """Run deferred work in order while no task waits (or it is overdue, or ``force``)."""
        deferred, tasks, lock = self._deferred, self._tasks, self._drain_lock
        while deferred:
            if not lock.acquire(blocking=False):
                return  # the holder looks again after releasing
            try:
                overdue = time.monotonic() - self.defer_limit
                while deferred:
                    if not force and (tasks or self._holding) and deferred[0][0] > overdue:
                        break  # tasks are waiting to start: they go first
                    _, fn, args = deferred.popleft()
                    try:
                        fn(*args)
                    except BaseException:
                        log.exception("mashroom-jobs: unexpected error in deferred work")
                    del fn, args
            finally:
                lock.release()
            if not force and (tasks or self._holding) and deferred \
                    and deferred[0][0] > time.monotonic() - self.defer_limit:
                if not self._keeper_armed:
                    self._arm_keeper()
                return

    def _arm_keeper(self) -> None:
        with self._keeper_wake:
            if self._keeper is None:
                if self._shutdown:
                    return
                self._keeper = threading.Thread(
                    target=self._keep, name=f"{self._name}-bookkeeper", daemon=True
                )
                self._keeper.start()
            self._keeper_armed = True
            self._keeper_wake.notify()

    def _keep(self) -> None:
        """The bookkeeping thread: runs deferred work that waited too long."""
        wake, deferred = self._keeper_wake, self._deferred
        with wake:
            while not self._shutdown:
                if not deferred:
                    # Idle: the next defer() with tasks waiting arms it again.  Armed
                    # stays True while there is work, so defer() takes this lock once
                    # per burst, not once per run.
                    self._keeper_armed = False
                    if not deferred:  # (a defer() that saw it still armed appended first)
                        wake.wait()
                    continue
                while deferred and not self._shutdown:
                    try:
                        delay = deferred[0][0] + self.defer_limit - time.monotonic()
                    except IndexError:  # drained by a worker meanwhile
                        break
                    if delay > 0:
                        wake.wait(delay)  # shutdown() wakes it early
                        continue
                    wake.release()
                    try:
                        self._drain()
                    finally:
                        wake.acquire()
        self._drain(force=True)  # shut down: whatever is left

    def _work(self) -> None:
        tasks, lock, wake = self._tasks, self._lock, self._wake
        while True:
            try:
                fn, args = tasks.popleft()
            except IndexError:
                with lock:
                    while not tasks:
                        if self._shutdown:
                            return
                        self._idle += 1
                        wake.wait()
                continue
            try:
                fn(*args)
            except BaseException:  # the wrappers record job errors; this is a bug guard
                log.exception("mashroom-jobs: unexpected error in a worker")
            del fn, args

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False,
                 timeout: float | None = None) -> None:
        """Stop accepting work; with ``wait``, join the workers up to ``timeout`` seconds.

        Tasks already dispatched still run unless ``cancel_futures``; deferred work
        of runs that ended is always done.
        """
        with self._lock:
            if self._shutdown:
                return
            self._shutdown = True
            threads = list(self._threads)
            if cancel_futures:
                self._tasks.clear()
            self._idle = 0
            self._wake.notify_all()
        with self._keeper_wake:
            keeper = self._keeper
            self._keeper_wake.notify()
        if keeper is not None:
            threads.append(keeper)
        if wait:
            _join_all(threads, timeout)
        if not self._tasks:
            self._drain(force=True)

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

    def submit(self, coro: Coroutine[Any, Any, T]) -> Future[T]:
        """Schedule a coroutine on the loop; its result arrives in a concurrent Future."""
        return asyncio.run_coroutine_threadsafe(coro, self._ensure_loop())

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

    def shutdown(self, timeout: float | None = None) -> None:
        """Stop the loop (pending tasks are cancelled) and join its thread."""
        with self._lock:
            self._closed = True
            loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout)


def _join_all(threads: list[threading.Thread], timeout: float | None) -> None:
    deadline = None if timeout is None else time.monotonic() + timeout
    for thread in threads:
        if thread is threading.current_thread():
            continue
        remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
        thread.join(remaining)
