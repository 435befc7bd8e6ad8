"""The bridge the service uses: :class:`DaskBackend`, a ``RemoteBackend`` of a Dask cluster.

Here are its public methods (what the service and the runner call) and its connection
(connecting, reconnecting, closing); its sender and receiver threads are in
:mod:`.transport`, its base class.  ``distributed`` is imported only when it connects.
"""

from __future__ import annotations

import collections
import logging
import secrets
import threading
import time
import weakref
from concurrent.futures import CancelledError
from typing import Any

from ..core.records import error_text
from ..core.remote import RemoteCall
from .claims import DaskClaimer
from .config import LOCAL, parse_dask_address
from .errors import ClusterUnavailableError, NotSentError
from .futures import RemoteFuture
from .transport import CONNECT, RECONNECT, Cancel, Transport

__all__ = ["DaskBackend"]

log = logging.getLogger("mashroom_jobs.dask")


class DaskBackend(Transport):
    """Runs jobs' callbacks on a Dask cluster.  See the package docstring.

    Parameters
    ----------
    client : distributed.Client, optional
        The user's client (it stays theirs: never closed or replaced here; while
        distributed reconnects it after losing its scheduler, runs fail at once).
    address : str, optional
        Instead of ``client``: connect to this scheduler (see
        :func:`parse_dask_address`), or start a LocalCluster for ``"local"``; the
        connection is the backend's, rebuilt after it was lost.
    connect_timeout : float
        Seconds one connection attempt may take.
    retry_interval : float
        After a failed attempt, runs fail at once for this many seconds before the
        next one tries to connect again.
    claim_timeout : float
        Seconds a claim of an exclusive fire may wait for the scheduler.
    """

    def __init__(self, client: Any = None, *, address: str | None = None,
                 connect_timeout: float = 5.0, retry_interval: float = 2.0,
                 claim_timeout: float = 5.0) -> None:
        if (client is None) == (address is None):
            raise TypeError("DaskBackend takes a client or an address (one of them)")
        if client is not None and getattr(client, "asynchronous", False):
            raise TypeError(
                "executor= needs a synchronous distributed.Client (asynchronous=False): "
                "the service calls it from its own threads"
            )
        self.user_client = client is not None
        self._client: Any = client
        self._cluster: Any = None  # the LocalCluster of "local"
        self._address = "" if address is None else parse_dask_address(address)
        self.connect_timeout = connect_timeout
        self.retry_interval = retry_interval
        # one lock; the sender thread (and claims waiting for a connection) wait on
        # _cond, the receiver thread on _ended_cond
        lock = threading.RLock()
        self._cond = threading.Condition(lock)
        self._ended_cond = threading.Condition(lock)
        self._queue: collections.deque[RemoteFuture | Any] = collections.deque()
        self._thread: threading.Thread | None = None
        #: runs whose task ended, for the receiver thread to fetch their results
        self._ended: list[RemoteFuture] = []
        self._receiver: threading.Thread | None = None
        self._sent: set[RemoteFuture] = set()  # on the cluster, no result yet
        self._closed = False
        self._retry_at = 0.0
        self._last_error = ""
        self._connecting = False
        self.claimer = DaskClaimer(self, timeout=claim_timeout)

    # -- what the service and the runner use --

    @property
    def client(self) -> Any:
        """The distributed.Client (None while the backend has no connection)."""
        return self._client

    @property
    def address(self) -> str:
        """The scheduler's address (``"local"`` before its LocalCluster has started)."""
        client = self._client
        if client is not None:
            try:
                return str(client.scheduler.address)
            except AttributeError:  # closed
                pass
        if self._cluster is not None:
            return str(self._cluster.scheduler_address)
        return self._address

    def set_address(self, address: str) -> None:
        """Use another scheduler from the next run on (``dask_address`` changed)."""
        if self.user_client:
            raise TypeError("the scheduler of a user's Client cannot be changed")
        address = parse_dask_address(address)
        with self._cond:
            if address == self._address:
                return
            self._address = address
            self._retry_at = 0.0
            self._queue.append(RECONNECT)
            self._start_thread()
            self._cond.notify()

    def submit(self, call: RemoteCall, key: str) -> RemoteFuture:
        """Queue ``call`` for the cluster (never blocks); a future of its RemoteResult.

        The Dask key is ``key`` plus a short random suffix: the same job fired twice
        in one second (or by two kernels) must not become one task.
        """
        future = RemoteFuture(self, call, f"{key}-{secrets.token_hex(4)}")
        with self._cond:
            if self._closed:
                raise ClusterUnavailableError("the Dask backend was closed (service shut down)")
            self._queue.append(future)
            self._start_thread()
            self._cond.notify()
        return future

    def describe_failure(self, error: BaseException) -> str:
        """Why a run failed on the cluster's side, for its ``error_message``."""
        if isinstance(error, (ClusterUnavailableError, NotSentError)):
            return str(error)
        name = type(error).__name__
        if isinstance(error, CancelledError) or name == "FutureCancelledError":
            reason = getattr(error, "reason", None)
            if reason == "scheduler-connection-lost":
                return (f"lost the connection to the Dask scheduler at {self.address} "
                        f"while the job was running")
            return f"cancelled on the Dask cluster ({reason or 'no reason given'})"
        if name == "KilledWorker":
            return f"the Dask worker running it was lost: {error}"
        if isinstance(error, ImportError) and "mashroom_jobs" in str(error):
            return (f"the Dask workers cannot import mashroom_jobs: install mashroom-jobs "
                    f"there ({error_text(error)})")
        return f"the Dask cluster failed the run: {error_text(error)}"

    def connect_soon(self) -> None:
        """Start connecting now (in the background), so the first run need not wait."""
        with self._cond:
            if not self._closed:
                self._queue.append(CONNECT)
                self._start_thread()
                self._cond.notify()

    def wait_connected(self, timeout: float) -> Any:
        """The running client, connecting first if needed (for the claimer).

        Raises
        ------
        ClusterUnavailableError
            When there is none within ``timeout`` seconds.
        """
        deadline = time.monotonic() + timeout
        client = self._client
        if client is not None and client.status == "running":
            return client
        self.connect_soon()
        with self._cond:
            while True:
                client = self._client
                if client is not None and client.status == "running":
                    return client
                remaining = deadline - time.monotonic()
                if self._closed or remaining <= 0 or (
                        not self._connecting and not self._queue and self._last_error):
                    raise ClusterUnavailableError(
                        self._last_error or f"not connected to the Dask scheduler at "
                                            f"{self.address} within {timeout:g} s")
                self._cond.wait(min(remaining, 0.05))

    def cancel_task(self, task: Any) -> None:
        """Cancel a sent task (on the sender thread: it is a call to the scheduler)."""
        with self._cond:
            if self._closed:
                return
            self._queue.append(Cancel(task))
            self._start_thread()
            self._cond.notify()

    def in_flight(self, future: RemoteFuture, sent: bool) -> None:
        """Track runs on the cluster (so that :meth:`close` can end them)."""
        with self._cond:
            if sent:
                self._sent.add(future)
            else:
                self._sent.discard(future)

    def threads(self) -> list[threading.Thread]:
        """The backend's sender and receiver threads, those it started."""
        return [t for t in (self._thread, self._receiver) if t is not None]

    def close(self, timeout: float = 5.0) -> None:
        """Stop sending; runs still queued or on the cluster fail.  Closes the connection
        (and the LocalCluster) the backend owns; a user's Client stays open."""
        with self._cond:
            if self._closed:
                return
            self._closed = True
            self._cond.notify_all()
            self._ended_cond.notify_all()
            thread = self._thread
        deadline = time.monotonic() + timeout
        for each in (thread, self._receiver):
            if each is not None and each is not threading.current_thread():
                each.join(max(0.0, deadline - time.monotonic()))
        self.claimer.forget()
        with self._cond:
            sent = list(self._sent)
        for future in sent:  # dropping its task lets the cluster forget it
            future.fail(ClusterUnavailableError(
                "the service shut down before the run's result came back from the cluster"))
        if not self.user_client:
            self._disconnect(max(0.1, deadline - time.monotonic()))

    def __repr__(self) -> str:
        owner = "user's client" if self.user_client else "own connection"
        return f"<DaskBackend {self.address or 'no address'} ({owner})>"

    # -- the connection (the sender thread's) --

    def _connected(self) -> Any:
        """The running client (sender thread only), connecting when there is none."""
        client = self._client
        if client is not None:
            status = client.status
            if status == "running":
                return client
            if status in ("connecting", "newly-created"):
                raise ClusterUnavailableError(
                    f"lost the connection to the Dask scheduler at {self.address}; "
                    f"reconnecting")
            if self.user_client:
                raise ClusterUnavailableError(
                    f"the Dask client of this job is {status} (it lost its scheduler, or was "
                    f"closed): schedule the job with a new Client, or set dask_address, "
                    f"whose connection the service rebuilds")
            self._disconnect(self.connect_timeout)
        if not self._address:
            raise ClusterUnavailableError(
                "no Dask cluster: c.BackgroundJobService.dask_address is empty")
        if time.monotonic() < self._retry_at:
            raise ClusterUnavailableError(self._last_error)
        with self._cond:
            self._connecting = True
        try:
            self._connect()
        except Exception as exc:
            with self._cond:
                self._retry_at = time.monotonic() + self.retry_interval
                if isinstance(exc, ClusterUnavailableError):  # the probe's own words
                    self._last_error = str(exc)
                else:
                    where = ("could not start a local Dask cluster" if self._address == LOCAL
                             else f"the Dask scheduler at {self._address} is unreachable")
                    self._last_error = f"{where}: {error_text(exc)}"
                self._connecting = False
                self._cond.notify_all()
            log.warning("mashroom-jobs: %s", self._last_error)
            raise ClusterUnavailableError(self._last_error) from None
        with self._cond:
            self._last_error = ""
            self._connecting = False
            self._cond.notify_all()
        return self._client

    def _connect(self) -> None:
        from distributed import Client

        _close_at_exit(self)

        if self._address == LOCAL:
            from distributed import LocalCluster

            # Dask re-runs a task whose worker died up to allowed-failures times; a job
            # may have side effects, so on our own cluster a lost worker fails the run
            # (the workers ignore SIGINT: see worker.dask_setup)
            self._cluster = LocalCluster(processes=True, scheduler_kwargs={"allowed_failures": 0},
                                         preload=["mashroom_jobs.dask_bridge.worker"])
            self._client = Client(self._cluster, set_as_default=False,
                                  timeout=self.connect_timeout)
        else:
            # distributed bounds the TCP connect by `timeout`, but not the handshake after
            # it: a peer that accepts and never speaks Dask (a web server on the port) hung
            # Client() for ever.  Ask first, bounded as a whole.
            probe_scheduler(self._address, self.connect_timeout)
            # `timeout` also bounds distributed's own reconnecting: after it, the client
            # closes and the next run connects anew
            self._client = Client(self._address, set_as_default=False,
                                  timeout=self.connect_timeout)

    def _disconnect(self, timeout: float) -> None:
        """Close the connection (and cluster) this backend owns."""
        client, cluster = self._client, self._cluster
        self._client = self._cluster = None
        self.claimer.forget()
        for thing in (client, cluster):
            if thing is not None:
                try:
                    thing.close(timeout=timeout)
                except Exception:  # already gone
                    log.debug("closing %r failed", thing, exc_info=True)



_connected: weakref.WeakSet[DaskBackend] = weakref.WeakSet()
_exit_hook = threading.Lock()
_exit_registered = False


def _close_at_exit(backend: DaskBackend) -> None:
    """Close ``backend`` when the main thread ends, before ``concurrent.futures`` stops
    taking work: distributed runs a task's done-callbacks through a thread pool, and a
    script that ended with a run on the cluster printed tornado's "cannot schedule new
    futures after interpreter shutdown" traceback when the service closed it later, from
    its ``atexit`` handler.  ``threading._register_atexit`` is what ``concurrent.futures``
    itself uses; the hooks run last registered first, so this one runs before its own."""
    global _exit_registered
    with _exit_hook:
        _connected.add(backend)
        if _exit_registered:
            return
        register = getattr(threading, "_register_atexit", None)
        try:
            if register is not None:
                register(_close_all)
            else:  # (not CPython): the service's atexit handler closes it
                return
        except RuntimeError:  # the interpreter is already shutting down
            return
        _exit_registered = True


def _close_all() -> None:
    for backend in list(_connected):
        try:
            backend.close(timeout=1.0)
        except Exception:  # at exit: nothing may stop the others from closing
            log.debug("closing %r at exit failed", backend, exc_info=True)


def probe_scheduler(address: str, timeout: float) -> None:
    """Check, within ``timeout`` seconds in all, that a Dask scheduler answers at ``address``.

    Raises
    ------
    ClusterUnavailableError
        Naming the address and what answered there: nothing (unreachable), nothing in
        time (a peer that accepts and never speaks Dask), something distributed cannot
        read (a web server: distributed reads its reply as a frame length, and runs out
        of memory), or a Dask server that is not a scheduler (a worker's address).
    """
    import asyncio

    from distributed.comm.core import connect
    from distributed.security import Security

    async def ask() -> Any:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        # the client's TLS settings, as Client() uses them (tls:// addresses); distributed
        # retries a refused connection until its timeout, then says "Timed out"
        comm = await connect(address, timeout=timeout,
                             **Security().get_connection_args("client"))
        try:  # then the handshake, in what is left of the time
            async def identity() -> Any:
                await comm.write({"op": "identity", "reply": True})
                return await comm.read()

            return await asyncio.wait_for(identity(), max(0.05, deadline - loop.time()))
        finally:
            comm.abort()

    try:
        # (the connect and the handshake are each bounded: this only guards against a
        # connect that would overstay its own timeout)
        reply = asyncio.run(asyncio.wait_for(ask(), timeout + 5.0))
    except (asyncio.TimeoutError, TimeoutError):
        raise ClusterUnavailableError(
            f"{address} did not answer as a Dask scheduler within {timeout:g} s "
            f"(dask_connect_timeout): is a Dask scheduler listening there? (its default "
            f"port is 8786; 8787 is its dashboard)") from None
    except OSError as exc:  # refused, no route, closed during the handshake...
        if "Timed out" in str(exc):
            raise ClusterUnavailableError(
                f"the Dask scheduler at {address} is unreachable: nothing accepted a "
                f"connection within {timeout:g} s (dask_connect_timeout)") from None
        raise ClusterUnavailableError(
            f"the Dask scheduler at {address} is unreachable: {error_text(exc)}") from None
    except Exception as exc:  # MemoryError, a decoding error: not Dask's protocol
        raise ClusterUnavailableError(
            f"{address} answered, but not as a Dask scheduler: distributed could not read "
            f"its reply ({error_text(exc)}); is that the scheduler's address? (its default "
            f"port is 8786)") from None
    kind = reply.get("type") if isinstance(reply, dict) else None
    if not isinstance(kind, str) or "Scheduler" not in kind:
        what = f"a Dask {kind}" if isinstance(kind, str) else "a Dask server"
        raise ClusterUnavailableError(
            f"{address} is {what}, not a scheduler: set dask_address to the scheduler's "
            f"address")
