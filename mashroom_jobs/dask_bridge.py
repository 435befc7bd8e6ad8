"""Running jobs on a Dask cluster (``distributed``): the scheduling stays in the kernel.

:class:`DaskBackend` is the :class:`~mashroom_jobs.core.remote.RemoteBackend` of a
``distributed.Client`` (one the user gives, ``schedule_job(..., executor=client)``)
or of an address the service connects to itself (``dask_address``: ``"tcp://host:8786"``,
or ``"local"`` for a ``LocalCluster`` the service starts and owns).  Only a
:class:`~mashroom_jobs.core.remote.RemoteCall` travels, pickled here with cloudpickle;
on the worker :func:`run_pickled` unpickles it and :func:`~mashroom_jobs.core.remote.execute`
runs it and reports back.  Timing, bookkeeping and history stay in the kernel.

Nothing touches the network on the caller's thread (the timer's, for a fire):
:meth:`DaskBackend.submit` queues the call for the backend's sender thread, which
pickles it, connects (or reconnects) when it must, and hands it to the client.
A connection the service owns is rebuilt when it was lost: a run that finds the
scheduler away fails at once, saying so, and a later fire connects again.

:class:`DaskClaimer` decides which kernel runs an exclusive job's fire when several
kernels (on any machines) share one scheduler: see its docstring.

This module imports nothing of ``distributed`` until a backend connects.
"""

from __future__ import annotations

import collections
import importlib.util
import logging
import os
import re
import secrets
import socket
import threading
import time
import traceback
from concurrent.futures import CancelledError, Future, InvalidStateError
from datetime import datetime
from typing import Any

from .core.errors import MashroomJobsError, StoreUnavailableError
from .core.records import error_text
from .core.remote import RemoteCall, RemoteResult, execute, worker_address

__all__ = [
    "LOCAL", "ClusterUnavailableError", "DaskBackend", "DaskClaimer", "NotSentError",
    "check_distributed", "is_dask_client", "parse_dask_address", "run_pickled",
]

log = logging.getLogger("mashroom_jobs.dask")

#: ``dask_address`` value for a LocalCluster the service starts and owns
LOCAL = "local"
#: the comm protocols a scheduler address may name (distributed's registry)
SCHEMES = ("tcp", "tls", "ws", "wss", "ucx")
INSTALL_HINT = "pip install 'mashroom-jobs[dask]'"

_ADDRESS = re.compile(
    r"^(?:(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*)://)?"
    r"(?P<host>\[[0-9A-Fa-f:.]+\]|[^\s:/\[\]@]+)"
    r"(?::(?P<port>[^/]*))?/?$"
)


class ClusterUnavailableError(MashroomJobsError):
    """The cluster cannot take a run now (unreachable, reconnecting, its client closed)."""


class NotSentError(MashroomJobsError):
    """A run could not be sent to the cluster (its callback does not pickle)."""


# --- configuration ---------------------------------------------------------------------


def parse_dask_address(address: object) -> str:
    """Check a ``dask_address`` and return it in full form.

    Parameters
    ----------
    address : str
        ``""`` (no cluster), ``"local"`` (a ``LocalCluster`` the service owns),
        ``"tcp://host:8786"`` (or ``tls://``, ``ws://``, ``wss://``, ``ucx://``), or
        ``"host:8786"`` (meaning ``tcp://``); IPv6 hosts in brackets.

    Returns
    -------
    str
        The address, ``tcp://`` added to a bare ``host:port``.

    Raises
    ------
    ValueError
        Naming the address and what is wrong with it.
    """
    if not isinstance(address, str):
        raise ValueError(
            f"dask_address must be a string such as 'tcp://host:8786' or 'local', "
            f"got {type(address).__name__} {address!r}"
        )
    text = address.strip()
    if text in ("", LOCAL):
        return text
    example = "expected 'local' or a scheduler address such as 'tcp://host:8786'"
    match = _ADDRESS.match(text)
    if match is None:
        raise ValueError(f"Invalid dask_address {address!r}: {example}")
    scheme = (match["scheme"] or "tcp").lower()
    if scheme not in SCHEMES:
        raise ValueError(
            f"Invalid dask_address {address!r}: unknown protocol {match['scheme']!r} "
            f"(expected one of {', '.join(SCHEMES)}); {example}"
        )
    port = match["port"]
    if port is None or port == "":
        raise ValueError(f"Invalid dask_address {address!r}: no port; {example}")
    if not port.isdigit() or not 1 <= int(port) <= 65535:
        raise ValueError(
            f"Invalid dask_address {address!r}: port {port!r} is not a number in 1-65535"
        )
    return f"{scheme}://{match['host']}:{int(port)}"


def check_distributed(what: str) -> None:
    """Raise ImportError naming ``what`` when ``distributed`` is not installed."""
    if importlib.util.find_spec("distributed") is None:
        raise ImportError(f"{what} needs the distributed package: {INSTALL_HINT}")


def is_dask_client(obj: object) -> bool:
    """True for a ``distributed.Client``, without importing distributed (an object of it
    exists only once something imported it).

    Raises
    ------
    TypeError
        For ``client.get_executor()``: its client is not public, so the Client is needed.
    """
    import sys

    distributed = sys.modules.get("distributed")
    if distributed is None:
        return False
    from distributed.cfexecutor import ClientExecutor

    if isinstance(obj, ClientExecutor):
        raise TypeError("executor=client.get_executor() is not supported: pass the "
                        "distributed.Client itself (executor=client)")
    return isinstance(obj, distributed.Client)


# --- on the worker -----------------------------------------------------------------------


def run_pickled(payload: bytes) -> RemoteResult:
    """On the worker: unpickle a :class:`RemoteCall` and :func:`execute` it. Never raises.

    A call that cannot be unpickled there (a module the worker lacks) is a failed
    result saying so, not a failed task.
    """
    import pickle

    started, t0 = time.time(), time.perf_counter()
    try:
        call = pickle.loads(payload)
    except BaseException as exc:  # anything an unpickled __reduce__ may raise
        return RemoteResult(
            started, (time.perf_counter() - t0) * 1000.0,
            f"could not be loaded on the Dask worker: {error_text(exc)} (the worker needs "
            f"the modules the job is defined in)",
            traceback.format_exc(), "", worker_address(),
        )
    return execute(call)


# --- in the kernel -----------------------------------------------------------------------


class RemoteFuture(Future):  # type: ignore[type-arg]
    """What :meth:`DaskBackend.submit` returns: resolves with the run's
    :class:`RemoteResult`; :meth:`cancel` also cancels the task on the cluster."""

    def __init__(self, backend: DaskBackend, call: RemoteCall, key: str) -> None:
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


class DaskBackend:
    """Runs jobs' callbacks on a Dask cluster.  See the module docstring.

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
            self._queue.append(_RECONNECT)
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
                self._queue.append(_CONNECT)
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
            self._queue.append(_Cancel(task))
            self._start_thread()
            self._cond.notify()

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

    # -- the sender thread --

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
            if item is _RECONNECT:
                self._disconnect(self.connect_timeout)
            elif item is _CONNECT:
                try:
                    self._connected()
                except ClusterUnavailableError:
                    pass  # runs will say so
            elif isinstance(item, _Cancel):
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

        if self._address == LOCAL:
            from distributed import LocalCluster

            # Dask re-runs a task whose worker died up to allowed-failures times; a job
            # may have side effects, so on our own cluster a lost worker fails the run
            self._cluster = LocalCluster(processes=True, scheduler_kwargs={"allowed_failures": 0})
            self._client = Client(self._cluster, set_as_default=False,
                                  timeout=self.connect_timeout)
        else:
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


class _Cancel:
    __slots__ = ("task",)

    def __init__(self, task: Any) -> None:
        self.task = task


_RECONNECT = object()
_CONNECT = object()


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


class DaskClaimer:
    """Claims the fires of exclusive jobs through the cluster's scheduler.

    When kernels on several machines share a scheduler and schedule the same
    exclusive job, each fire must run once.  Per job, the scheduler holds a
    ``distributed.Lock`` and a ``distributed.Variable`` (``mashroom-jobs-claim-<job>``):
    a kernel takes the lock, reads the latest fire claimed, and wins only when its fire
    is later, writing its own; then it releases the lock.  The decision is monotonic, so
    a kernel however late (a slow fire, skewed clocks) loses a fire already claimed,
    and the state is one lock and one small variable per job, not per fire.  Both are
    built into every scheduler: nothing of ours runs there (a scheduler plugin would
    need mashroom-jobs installed on the scheduler of a Gateway or Kubernetes cluster).
    The lock's lease expires when its holder dies (``distributed.scheduler.locks.
    lease-timeout``), so a kernel lost mid-claim blocks the others for that long at
    most; they then run the fire unclaimed (:class:`StoreUnavailableError`).

    Parameters
    ----------
    backend : DaskBackend
        Its connection.
    timeout : float
        Seconds a claim waits for the connection and the lock before giving up.
    identity : str, optional
        Who this kernel is in other kernels' records; default ``"<host> pid <pid>"``.
    """

    #: fires kept per job, so a late loser still learns who ran its fire
    KEEP = 16

    def __init__(self, backend: DaskBackend, *, timeout: float = 5.0,
                 identity: str | None = None) -> None:
        self.backend = backend
        self.timeout = timeout
        self.identity = identity or f"{socket.gethostname()} pid {os.getpid()}"
        self._lock = threading.Lock()
        self._primitives: dict[str, tuple[Any, Any]] = {}
        self._client: Any = None  # whose connection the cached primitives use

    def claim(self, job: str, scheduled_for: datetime) -> str | None:
        """None when this kernel won the fire; else who did.

        Raises
        ------
        StoreUnavailableError
            When the scheduler cannot be asked within :attr:`timeout` seconds.
        """
        try:
            client = self.backend.wait_connected(self.timeout)
            lock, variable = self._primitives_for(job, client)
            if not lock.acquire(timeout=self.timeout):
                raise StoreUnavailableError(
                    f"the claim lock of job {job!r} on the Dask scheduler was not free "
                    f"within {self.timeout:g} s")
        except (ClusterUnavailableError, OSError) as exc:
            raise StoreUnavailableError(f"cannot claim through Dask: {exc}") from None
        except StoreUnavailableError:
            raise
        except Exception as exc:  # CommClosedError and friends
            raise StoreUnavailableError(
                f"cannot claim through Dask: {error_text(exc)}") from None
        try:
            return self._decide(variable, scheduled_for)
        except Exception as exc:
            raise StoreUnavailableError(
                f"cannot claim through Dask: {error_text(exc)}") from None
        finally:
            try:
                lock.release()
            except Exception:  # the lease expires on its own
                log.debug("releasing the claim lock of %r failed", job, exc_info=True)

    def _decide(self, variable: Any, scheduled_for: datetime) -> str | None:
        fire = scheduled_for.timestamp()
        try:
            record = variable.get(timeout=0)
        except TimeoutError:  # never set: the job's first claim anywhere
            record = None
        recent: list[list[Any]] = list(record.get("recent", [])) if record else []
        if record and record["fire"] >= fire:
            for claimed, who in reversed(recent):
                if claimed == fire:
                    return str(who)
            return f"{record['who']} (a later fire was claimed first)"
        recent = [*recent[-(self.KEEP - 1):], [fire, self.identity]]
        variable.set({"fire": fire, "who": self.identity, "recent": recent},
                     timeout=self.timeout)
        return None

    def _primitives_for(self, job: str, client: Any) -> tuple[Any, Any]:
        from distributed import Lock, Variable

        with self._lock:
            if client is not self._client:  # a new connection: new handles
                self._primitives.clear()
                self._client = client
            pair = self._primitives.get(job)
            if pair is None:
                name = f"mashroom-jobs-claim-{job}"
                pair = self._primitives[job] = (
                    Lock(name, scheduler_rpc=client.scheduler, loop=client.loop),
                    Variable(name, client=client),
                )
            return pair

    def forget(self) -> None:
        """Drop the cached locks (their connection closed)."""
        with self._lock:
            self._primitives.clear()
            self._client = None
