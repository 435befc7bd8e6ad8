"""Claims through the cluster: :class:`DaskClaimer` decides which kernel runs an exclusive
job's fire when several kernels (on any machines) share one scheduler.

It uses only a ``distributed.Lock`` and a ``distributed.Variable`` per job, imported when
the first claim is made, through the connection of its :class:`~.backend.DaskBackend`.
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

__all__ = ["Connected", "DaskClaimer"]


class Connected(Protocol):
    """What the claimer needs of its backend (the DaskBackend): its client, once
    connected."""

    def wait_connected(self, timeout: float) -> Any: ...

log = logging.getLogger("mashroom_jobs.dask")


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
