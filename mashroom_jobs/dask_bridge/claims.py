"""Claims through the cluster: :class:`DaskClaimer` decides which kernel runs an exclusive
job's fire when several kernels (on any machines) share one scheduler.

It uses only a ``distributed.Lock`` per job and the scheduler's metadata store, through
the connection of its :class:`~.backend.DaskBackend` (``distributed`` is imported when the
first claim is made).
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from datetime import datetime
from typing import Any, Protocol

from ..core.errors import StoreUnavailableError
from ..core.records import error_text
from .errors import ClusterUnavailableError

__all__ = ["METADATA_KEY", "Connected", "DaskClaimer"]


#: the scheduler's metadata entry under which each job's latest claimed fire is kept
METADATA_KEY = "mashroom-jobs-claims"


class Connected(Protocol):
    """What the claimer needs of its backend (the DaskBackend): its client, once
    connected."""

    def wait_connected(self, timeout: float) -> Any: ...

log = logging.getLogger("mashroom_jobs.dask")


class DaskClaimer:
    """Claims the fires of exclusive jobs through the cluster's scheduler.

    When kernels on several machines share a scheduler and schedule the same
    exclusive job, each fire must run once.  Per job, the scheduler holds a
    ``distributed.Lock`` (``mashroom-jobs-claim-<job>``) and an entry of its metadata
    (``["mashroom-jobs-claims", job]``): a kernel takes the lock, reads the latest fire
    claimed, and wins only when its fire is later, writing its own; then it releases the
    lock.  (Metadata rather than a ``distributed.Variable``: reading a Variable never
    set, at a job's first claim, made the scheduler log an error with a traceback.)
    The decision is monotonic, so a kernel however late (a slow fire, skewed clocks)
    loses a fire already claimed, and the state is one lock and one small metadata entry
    per job, not per fire.  Both are built into every scheduler: nothing of ours runs
    there (a scheduler plugin would need mashroom-jobs installed on the scheduler of a
    Gateway or Kubernetes cluster).
    The lock's lease expires when its holder dies (``distributed.scheduler.locks.
    lease-timeout``), so a kernel lost mid-claim blocks the others for that long at
    most; they then run the fire unclaimed (:class:`StoreUnavailableError`).

    Parameters
    ----------
    backend : Connected
        Its connection.
    timeout : float
        Seconds a claim waits for the connection and the lock before giving up.
    identity : str, optional
        Who this kernel is in other kernels' records; default ``"<host> pid <pid>"``.
    """

    #: fires kept per job, so a late loser still learns who ran its fire
    KEEP = 16

    def __init__(self, backend: Connected, *, timeout: float = 5.0,
                 identity: str | None = None) -> None:
        self.backend = backend
        self.timeout = timeout
        self.identity = identity or f"{socket.gethostname()} pid {os.getpid()}"
        self._lock = threading.Lock()
        self._primitives: dict[str, Any] = {}  # job -> its distributed.Lock
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
            lock = self._lock_for(job, client)
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
            return self._decide(client, job, scheduled_for)
        except Exception as exc:
            raise StoreUnavailableError(
                f"cannot claim through Dask: {error_text(exc)}") from None
        finally:
            try:
                lock.release()
            except Exception:  # the lease expires on its own
                log.debug("releasing the claim lock of %r failed", job, exc_info=True)

    def _decide(self, client: Any, job: str, scheduled_for: datetime) -> str | None:
        fire = scheduled_for.timestamp()
        keys = [METADATA_KEY, job]
        # None: never set, the job's first claim anywhere
        record = client.sync(client.scheduler.get_metadata, keys=keys, default=None,
                             callback_timeout=self.timeout)
        recent: list[list[Any]] = list(record.get("recent", [])) if record else []
        if record and record["fire"] >= fire:
            for claimed, who in reversed(recent):
                if claimed == fire:
                    return str(who)
            return f"{record['who']} (a later fire was claimed first)"
        recent = [*recent[-(self.KEEP - 1):], [fire, self.identity]]
        client.sync(client.scheduler.set_metadata, keys=keys,
                    value={"fire": fire, "who": self.identity, "recent": recent},
                    callback_timeout=self.timeout)
        return None

    def _lock_for(self, job: str, client: Any) -> Any:
        from distributed import Lock

        with self._lock:
            if client is not self._client:  # a new connection: new handles
                self._primitives.clear()
                self._client = client
            lock = self._primitives.get(job)
            if lock is None:
                lock = self._primitives[job] = Lock(
                    f"mashroom-jobs-claim-{job}", scheduler_rpc=client.scheduler,
                    loop=client.loop)
            return lock

    def forget(self) -> None:
        """Drop the cached locks (their connection closed)."""
        with self._lock:
            self._primitives.clear()
            self._client = None
