"""Where plain job bodies run: a pool of daemon threads that replaces a thread given up on.

It never runs on the timer thread or on the kernel's main thread.  Its threads are
daemon threads, so interpreter exit never hangs on a stuck job (the standard
``ThreadPoolExecutor`` joins its workers at exit).  A thread running a job that
was abandoned (it ignored a stop or a timeout) is *retired*: it leaves the pool,
which starts another in its place, so ``max_workers`` runs can always start.
(Coroutines run on an asyncio loop thread: :mod:`._loops`.)
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Executor, Future
from typing import Any, TypeVar

__all__ = ["DaemonThreadPool"]

T = TypeVar("T")
log = logging.getLogger("mashroom_jobs")


class _Worker:
    """One thread of the pool; ``retired`` once the pool gave up on its task."""

    __slots__ = ("retired", "thread")

    def __init__(self) -> None:
        self.retired = False
        self.thread: threading.Thread | None = None


class DaemonThreadPool(Executor):
    """A ``concurrent.futures.Executor`` of at most ``max_workers`` daemon threads.

    Threads start lazily, one per task while none is idle, and stay until
    :meth:`shutdown`.  :meth:`dispatch` is the scheduler's fast path: it runs a
    callable without creating a Future.  :meth:`defer` runs follow-up work (a
    run's bookkeeping) only once no task is waiting to start, so that 10,000
    jobs due together all start before any of their records is written.
    :meth:`retire` gives up on a thread stuck in a task and starts another.
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
        self._workers: dict[threading.Thread, _Worker] = {}
        self._retired = 0  # threads given up on (the next thread's name counts them too)
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
        """The pool's threads (its workers and its bookkeeping thread); not the retired."""
        keeper = () if self._keeper is None else (self._keeper,)
        return (*self._workers, *keeper)

    @property
    def max_workers(self) -> int:
        return self._max_workers

    def dispatch(self, fn: Callable[..., object], *args: Any) -> bool:
        """Run ``fn(*args)`` on a worker; exceptions are logged (wrap it to keep them).

        Returns False when it waits behind busy workers (every thread is taken), True
        when a worker takes it now.  Raises ``RuntimeError`` after :meth:`shutdown`.
        """
        with self._lock:
            if self._shutdown:
                raise RuntimeError("cannot dispatch after shutdown")
            # (fn, args), not a closure or partial: fewer objects per run, fewer GC passes
            self._tasks.append((fn, args))
            if self._idle:
                self._idle -= 1
                self._wake.notify()
            elif len(self._workers) < self._max_workers:
                self._start_worker()
            else:
                return False
        return True

    def _start_worker(self) -> None:
        """Start a thread (holding the lock)."""
        worker = _Worker()
        thread = worker.thread = threading.Thread(
            target=self._work, args=(worker,),
            name=f"{self._name}-{len(self._workers) + self._retired}", daemon=True,
        )
        self._workers[thread] = worker
        thread.start()

    def retire(self, ident: int | None) -> bool:
        """Give up on the thread ``ident`` (stuck in a task): it leaves the pool, and ends
        when its task returns, if ever; another thread takes its place.  False when it is
        not one of the pool's workers."""
        with self._lock:
            thread = next((t for t in self._workers if t.ident == ident), None)
            if thread is None:
                return False
            worker = self._workers.pop(thread)
            worker.retired = True
            self._retired += 1
            if self._tasks and not self._idle and not self._shutdown:
                self._start_worker()  # the tasks waiting for it start now
        return True

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

    def _work(self, worker: _Worker) -> None:
        tasks, lock, wake = self._tasks, self._lock, self._wake
        while not worker.retired:
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
        # retired: the pool gave up on this thread, which ends now that its task returned

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
            threads = list(self._workers)  # not the retired: they were given up on
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

def _join_all(threads: list[threading.Thread], timeout: float | None) -> None:
    deadline = None if timeout is None else time.monotonic() + timeout
    for thread in threads:
        if thread is threading.current_thread():
            continue
        remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
        thread.join(remaining)
