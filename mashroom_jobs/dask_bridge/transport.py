"""The two threads of a :class:`~mashroom_jobs.dask_bridge.DaskBackend`, as its base class.

The sender thread takes what the backend queued (runs, cancellations, (re)connections),
pickles the runs and sends those due together as one graph; the receiver thread fetches
the results of ended runs in batches.  They are kept apart from the backend's public
methods and its connection (:mod:`.backend`) so that each module stays short; the state
they share is the backend's, set in its ``__init__``.
"""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING, Any

from ..core.records import error_text
from .errors import ClusterUnavailableError, NotSentError
from .futures import RemoteFuture
from .worker import run_pickled

if TYPE_CHECKING:
    import collections

__all__ = ["CONNECT", "RECONNECT", "Cancel", "Transport"]

log = logging.getLogger("mashroom_jobs.dask")


class Cancel:
    """A sent task to cancel, queued for the sender thread."""

    __slots__ = ("task",)

    def __init__(self, task: Any) -> None:
        self.task = task


#: queued for the sender thread: close the connection (the next run connects anew)
RECONNECT = object()
#: queued for the sender thread: connect now
CONNECT = object()


def _pickled(future: RemoteFuture) -> bytes | None:
    """The call as bytes, or None after failing ``future`` with why it does not pickle."""
    import cloudpickle

    try:
        payload: bytes = cloudpickle.dumps(future.call)
        return payload
    except Exception as exc:
        cause = exc.__cause__ or exc
        future.fail(NotSentError(f"could not be sent to the Dask cluster: {error_text(cause)}"))
        return None


class Transport:
    """The sender and receiver threads of :class:`~mashroom_jobs.dask_bridge.DaskBackend`."""

    if TYPE_CHECKING:  # the backend's state and connection, which these threads use
        connect_timeout: float
        _cond: threading.Condition
        _ended_cond: threading.Condition
        _queue: collections.deque[RemoteFuture | Any]
        _thread: threading.Thread | None
        _ended: list[RemoteFuture]
        _receiver: threading.Thread | None
        _closed: bool

        @property
        def address(self) -> str: ...

        def _connected(self) -> Any: ...

        def _disconnect(self, timeout: float) -> None: ...

    def received(self, future: RemoteFuture) -> None:
        """A run's task ended: its result is fetched by the receiver thread, in batches.

        Fetching each result on distributed's one callback thread costs a round trip to
        a worker per run: at 200 runs a second their records lagged by over a second.
        """
        with self._cond:
            self._ended.append(future)
            if self._receiver is None:
                self._receiver = threading.Thread(target=self._receive_loop, daemon=True,
                                                  name="mashroom-jobs-dask-receiver")
                self._receiver.start()
            self._ended_cond.notify()

    # -- the sender thread (and the receiver's) --

    def _start_thread(self) -> None:
        """(Under the condition.)"""
        if self._thread is None:
            self._thread = threading.Thread(target=self._send_loop, daemon=True,
                                            name="mashroom-jobs-dask-sender")
            self._thread.start()

    def _send_loop(self) -> None:
        while True:
            with self._cond:
                while not self._queue and not self._closed:
                    self._cond.wait()
                items = list(self._queue)
                self._queue.clear()
                closed = self._closed
            if closed:
                for item in items:
                    if isinstance(item, RemoteFuture):
                        item.fail(ClusterUnavailableError(
                            "the service shut down before the run was sent to the cluster"))
                return
            try:
                self._handle(items)
            except BaseException:  # never let the sender die: every run must end
                log.exception("mashroom-jobs: unexpected error sending runs to Dask")
                for item in items:
                    if isinstance(item, RemoteFuture) and not item.done():
                        item.fail(ClusterUnavailableError("unexpected error sending the run"))

    def _receive_loop(self) -> None:
        while True:
            with self._cond:
                while not self._ended and not self._closed:
                    self._ended_cond.wait()
                batch, self._ended = self._ended, []
            if not batch:  # closed, nothing left
                return
            try:
                self._deliver(batch)
            except BaseException:  # never let the receiver die: every run must end
                log.exception("mashroom-jobs: unexpected error receiving runs from Dask")
                for future in batch:
                    if not future.done():
                        future.fail(ClusterUnavailableError("unexpected error receiving the "
                                                            "run's result"))

    def _deliver(self, batch: list[RemoteFuture]) -> None:
        """Resolve runs whose tasks ended: the finished ones' results in one gather."""
        finished: dict[Any, list[RemoteFuture]] = {}
        others: list[RemoteFuture] = []
        for future in batch:
            task = future.task
            if task is None or future.done():
                continue
            if task.status == "finished":
                finished.setdefault(task.client, []).append(future)
            else:
                others.append(future)
        for client, futures in finished.items():
            try:
                results = client.gather([f.task for f in futures])
            except Exception:  # e.g. a worker holding one died: each on its own
                others += futures
                continue
            for future, result in zip(futures, results):
                future.resolve(result)
        for future in others:
            future.transfer()

    def _handle(self, items: list[Any]) -> None:
        runs: list[tuple[RemoteFuture, bytes]] = []
        for item in items:
            if item is RECONNECT:
                self._disconnect(self.connect_timeout)
            elif item is CONNECT:
                try:
                    self._connected()
                except ClusterUnavailableError:
                    pass  # runs will say so
            elif isinstance(item, Cancel):
                try:
                    item.task.cancel()
                except Exception:  # the connection is gone: nothing runs for us anyway
                    pass
            elif not item.done():  # a run (not cancelled while queued)
                payload = _pickled(item)
                if payload is not None:
                    runs.append((item, payload))
        if not runs:
            return
        try:
            client = self._connected()
        except ClusterUnavailableError as exc:
            for future, _ in runs:
                future.fail(exc)
            return
        for future, _ in runs:
            future.call = None
        try:
            # runs due together go as one graph: one message for the scheduler to handle
            # instead of one per run (it serves every client of the cluster on one thread)
            tasks = client.map(run_pickled, [payload for _, payload in runs],
                               key=[future.key for future, _ in runs], pure=False)
        except Exception as exc:  # the client closed under us
            error = ClusterUnavailableError(
                f"could not send the run to the Dask scheduler at {self.address}: "
                f"{error_text(exc)}")
            for future, _ in runs:
                future.fail(error)
            return
        for (future, _), task in zip(runs, tasks):
            future.attach(task)

