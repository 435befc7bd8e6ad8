"""The kernel's handle of one run sent to the Dask cluster: :class:`RemoteFuture`.

It resolves with the worker's :class:`~mashroom_jobs.core.remote.RemoteResult`; the
backend's threads attach it to its distributed task and hand it its outcome.
"""

from __future__ import annotations

from concurrent.futures import Future, InvalidStateError
from typing import Any, Protocol

from ..core.remote import RemoteCall, RemoteResult

__all__ = ["RemoteFuture", "Sender"]


class Sender(Protocol):
    """What a :class:`RemoteFuture` needs of the backend that sent it (the DaskBackend)."""

    def cancel_task(self, task: Any) -> None: ...

    def in_flight(self, future: RemoteFuture, sent: bool) -> None: ...

    def received(self, future: RemoteFuture) -> None: ...


class RemoteFuture(Future):  # type: ignore[type-arg]
    """What :meth:`DaskBackend.submit` returns: resolves with the run's
    :class:`RemoteResult`; :meth:`cancel` also cancels the task on the cluster."""

    def __init__(self, backend: Sender, call: RemoteCall, key: str) -> None:
        super().__init__()
        self.backend = backend
        self.call: RemoteCall | None = call
        self.key = key
        #: the distributed Future, once sent
        self.task: Any = None

    def cancel(self) -> bool:
        cancelled = super().cancel()
        task = self.task
        if task is not None:
            self.backend.cancel_task(task)
        return cancelled

    def attach(self, task: Any) -> None:
        """Sent as ``task``: its outcome becomes ours (see :meth:`DaskBackend.received`)."""
        self.task = task
        if self.cancelled():  # cancelled while being sent
            self.backend.cancel_task(task)
            return
        self.backend.in_flight(self, True)
        task.add_done_callback(self.task_done)

    def task_done(self, task: Any) -> None:
        """On distributed's callback thread: hand it over, fetch nothing here."""
        self.backend.received(self)

    def transfer(self) -> None:
        """Fetch this run's own outcome (one round trip; see :meth:`DaskBackend.received`)."""
        task = self.task
        if task is None:
            return
        try:
            result = task.result()
        except BaseException as exc:
            self.fail(exc)
        else:
            self.resolve(result)

    def resolve(self, result: RemoteResult) -> None:
        self.task = self.call = None  # the scheduler may forget the key
        self.backend.in_flight(self, False)
        try:
            self.set_result(result)
        except InvalidStateError:  # cancelled meanwhile: the runner recorded it
            pass

    def fail(self, error: BaseException) -> None:
        self.task = self.call = None
        self.backend.in_flight(self, False)
        try:
            self.set_exception(error)
        except InvalidStateError:
            pass
