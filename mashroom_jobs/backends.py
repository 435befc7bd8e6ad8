"""Where a job's callback runs: its ``executor=`` argument, and the Dask backends it makes.

``schedule_job(executor=...)`` takes a ``concurrent.futures.Executor`` (the
callback runs there, in this process, with the full context), a
``ProcessPoolExecutor`` or a Dask cluster (``"dask"`` for the cluster of
``dask_address``, or a ``distributed.Client``): only the callback travels there
(see :mod:`mashroom_jobs.core.remote`).  :class:`ExecutorBackends` checks the
argument and keeps the Dask backends a service makes on first use (one for
``dask_address``, one per ``distributed.Client``: a sender thread and a claimer
each), so that the service can follow its settings, list their threads and close
them at shutdown.  Apart from the service because none of it concerns a job run
on the service's own threads; :mod:`mashroom_jobs.dask_bridge` (and distributed)
is imported only when a job asks for a cluster.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import Executor, ProcessPoolExecutor
from typing import Any, Protocol

from .core.errors import ServiceShutdownError
from .core.remote import ExecutorBackend, RemoteBackend

__all__ = ["DaskSettings", "ExecutorBackends"]


class DaskSettings(Protocol):
    """What the backends read of the service's settings, when they are needed."""

    dask_address: str
    dask_connect_timeout: float


class ExecutorBackends:
    """A service's executor backends (see the module docstring).

    ``lock`` is the service's: a backend is made under it, and only while
    ``is_shut_down()`` is false, so none is made once the service shuts down.
    """

    def __init__(self, settings: DaskSettings, lock: threading.RLock,
                 is_shut_down: Callable[[], bool]) -> None:
        self._settings = settings
        self._lock = lock
        self._is_shut_down = is_shut_down
        self._dask: Any = None  # the backend of dask_address, once a job used executor="dask"
        self._clients: dict[int, Any] = {}  # id(distributed.Client) -> its backend

    def resolve(self, executor: object) -> tuple[Executor | None, RemoteBackend | None]:
        """An ``executor=`` argument as (an executor of this process, a remote backend);
        raises ``TypeError`` or ``ValueError`` naming it when it is neither."""
        if executor is None:
            return None, None
        if isinstance(executor, str):
            if executor == "dask":
                return None, self._dask_backend()
            raise ValueError(
                f"executor must be an Executor, a distributed.Client or 'dask', got {executor!r}"
            )
        if isinstance(executor, ProcessPoolExecutor):
            return None, ExecutorBackend(executor)
        from .dask_bridge import is_dask_client

        if is_dask_client(executor):
            return None, self._client_backend(executor)
        if isinstance(executor, Executor):
            return executor, None
        raise TypeError(
            f"executor must be a concurrent.futures.Executor, a distributed.Client or 'dask', "
            f"got {type(executor).__name__}"
        )

    def _dask_backend(self) -> RemoteBackend:
        """The backend of ``dask_address`` (made, and connecting, on first use)."""
        from .dask_bridge import DaskBackend, check_distributed

        settings = self._settings
        if not settings.dask_address:
            raise ValueError(
                "executor='dask' needs a cluster: set c.BackgroundJobService.dask_address "
                "to 'tcp://host:8786' or 'local', or pass a distributed.Client as executor"
            )
        check_distributed("executor='dask'")
        with self._lock:
            if self._is_shut_down():
                raise ServiceShutdownError("cannot use Dask: the service was shut down")
            if self._dask is None:
                self._dask = DaskBackend(address=settings.dask_address,
                                         connect_timeout=settings.dask_connect_timeout)
                self._dask.connect_soon()
            return self._dask  # type: ignore[no-any-return]

    def _client_backend(self, client: Any) -> RemoteBackend:
        """One backend (one sender thread, one claimer) per distributed.Client."""
        from .dask_bridge import DaskBackend

        with self._lock:
            if self._is_shut_down():
                raise ServiceShutdownError("cannot use Dask: the service was shut down")
            backend: Any = self._clients.get(id(client))
            if backend is None or backend.client is not client:
                backend = self._clients[id(client)] = DaskBackend(client)
            return backend  # type: ignore[no-any-return]

    def setting_changed(self, name: str, value: Any) -> None:
        """``dask_address`` or ``dask_connect_timeout`` changed: the backend of
        ``dask_address``, if made yet, follows."""
        backend = self._dask
        if backend is None:
            return
        if name == "dask_address":
            backend.set_address(value)
        else:
            backend.connect_timeout = value

    def dask_backends(self) -> list[Any]:
        """The Dask backends made so far (each has ``threads()`` and ``close(timeout)``)."""
        with self._lock:
            backends = list(self._clients.values())
            if self._dask is not None:
                backends.append(self._dask)
        return backends
