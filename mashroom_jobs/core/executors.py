"""Where job bodies run: a daemon thread pool and one asyncio loop thread.

Neither ever runs on the timer thread or on the kernel's main thread.  Both
use daemon threads, so interpreter exit never hangs on a stuck job (the
standard ``ThreadPoolExecutor`` joins its workers at exit).
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
from collections.abc import Callable, Coroutine
from concurrent.futures import Executor, Future
from typing import Any, TypeVar

__all__ = ["DaemonThreadPool", "LoopThread"]

T = TypeVar("T")
log = logging.getLogger("mashroom_jobs")


class DaemonThreadPool(Executor):
    """A ``concurrent.futures.Executor`` of at most ``max_workers`` daemon threads.

    Threads start lazily, one per task while none is idle, and stay until
    :meth:`shutdown`.  :meth:`dispatch` is the scheduler's fast path: it runs a
    callable without creating a Future.
    """

    def __init__(self, max_workers: int = 8, name: str = "mashroom-jobs-worker") -> None:
        if max_workers < 1:
            raise ValueError(f"max_workers must be at least 1, got {max_workers}")
        self._max_workers = max_workers
        self._name = name
        self._queue: queue.SimpleQueue[Callable[[], object] | None] = queue.SimpleQueue()
        self._idle = threading.Semaphore(0)
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()
        self._shutdown = False

    @property
    def threads(self) -> tuple[threading.Thread, ...]:
        return tuple(self._threads)

    def dispatch(self, fn: Callable[[], object]) -> None:
        """Run ``fn()`` on a worker; exceptions are logged (wrap it to keep them)."""
        if self._shutdown:
            raise RuntimeError("cannot dispatch after shutdown")
        self._queue.put(fn)
        if self._idle.acquire(blocking=False):
            return
        with self._lock:
            if len(self._threads) < self._max_workers and not self._shutdown:
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

    def _work(self) -> None:
        get, release = self._queue.get, self._idle.release
        while True:
            fn = get()
            if fn is None:
                return
            try:
                fn()
            except BaseException:  # the wrappers record job errors; this is a bug guard
                log.exception("mashroom-jobs: unexpected error in a worker")
            del fn
            release()

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False,
                 timeout: float | None = None) -> None:
        """Stop accepting work; with ``wait``, join the workers up to ``timeout`` seconds."""
        with self._lock:
            if self._shutdown:
                return
            self._shutdown = True
            threads = list(self._threads)
        if cancel_futures:
            while True:
                try:
                    self._queue.get_nowait()
                except queue.Empty:
                    break
        for _ in threads:
            self._queue.put(None)
        if wait:
            _join_all(threads, timeout)


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
    import time

    deadline = None if timeout is None else time.monotonic() + timeout
    for thread in threads:
        if thread is threading.current_thread():
            continue
        remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
        thread.join(remaining)
