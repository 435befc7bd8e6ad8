"""Running a callback out of this process: on a process pool or a Dask cluster.

Only what the callback needs travels: a :class:`RemoteCall` (the callback and how
to call it).  :func:`execute` runs it there, captures what it prints, and sends
back a :class:`RemoteResult` (output, error, traceback, where and when it ran);
timing of the schedule, bookkeeping and history stay in the kernel.

A callback that runs remotely gets a :class:`~mashroom_jobs.PluginContext`
without ``shell`` and with ``services.background_jobs`` None: a job that needs
the service must run locally.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Callable
from concurrent.futures import Executor, Future
from typing import Any, NamedTuple, Protocol

from . import capture
from .claims import Claimer
from .records import bounded_traceback, error_text

__all__ = ["ExecutorBackend", "RemoteBackend", "RemoteCall", "RemoteResult", "execute"]


class RemoteCall(NamedTuple):
    """What travels to the worker."""

    callback: Callable[..., Any]
    #: the PluginContext for the worker (no shell, no service), or None: call with no argument
    context: Any
    is_async: bool
    capture_output: bool


class RemoteResult(NamedTuple):
    """What comes back: the worker's own measurement of the run."""

    started: float  # epoch seconds, the worker's clock
    execution_time_ms: float
    error_message: str | None
    traceback: str | None
    output: str
    worker: str | None


class RemoteBackend(Protocol):
    """Where remote runs go (a process pool, a Dask cluster)."""

    #: claims exclusive fires among the processes sharing this backend (a cluster), or None
    claimer: Claimer | None

    def submit(self, call: RemoteCall, key: str) -> Any:
        """Send a call; returns a future with ``add_done_callback``, ``result``, ``cancel``."""

    def describe_failure(self, error: BaseException) -> str:
        """Why a future failed, for the run's ``error_message`` (unpicklable, lost...)."""


def execute(call: RemoteCall, worker: str | None = None) -> RemoteResult:
    """Run ``call`` here (on ``worker``, named in the result) and report how it went.
    Never raises."""
    started = time.time()
    t0 = time.perf_counter()
    error = tb = None
    buffer = capture.OutputBuffer()
    capture.ensure_installed(force=True)
    token = capture.set_sink(buffer if call.capture_output else None)
    try:
        args = () if call.context is None else (call.context,)
        result = call.callback(*args)
        if call.is_async or inspect.isawaitable(result):
            result = asyncio.run(_awaited(result))
    except BaseException as exc:  # the job may raise anything; report it, don't kill the worker
        error, tb = error_text(exc), bounded_traceback(exc)
    finally:
        capture.reset_sink(token)
    elapsed = (time.perf_counter() - t0) * 1000.0
    return RemoteResult(started, elapsed, error, tb, buffer.getvalue(), worker)


async def _awaited(awaitable: Any) -> Any:
    return await awaitable


class ExecutorBackend:
    """A ``concurrent.futures`` executor out of this process (``ProcessPoolExecutor``)."""

    def __init__(self, executor: Executor) -> None:
        self.executor = executor
        self.claimer: Claimer | None = None  # a pool of this machine coordinates nothing

    def submit(self, call: RemoteCall, key: str) -> Future[RemoteResult]:
        return self.executor.submit(execute, call)

    def describe_failure(self, error: BaseException) -> str:
        if _is_pickling_error(error):
            return f"could not be sent to the executor: {error_text(error)}"
        return f"the executor failed: {error_text(error)}"

    def __repr__(self) -> str:
        return f"ExecutorBackend({self.executor!r})"


def _is_pickling_error(error: BaseException) -> bool:
    import pickle

    text = str(error).lower()
    return isinstance(error, (pickle.PicklingError, AttributeError, TypeError)) and (
        "pickle" in text or "serializ" in text
    )
