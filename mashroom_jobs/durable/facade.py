"""Durable jobs as one process sees and controls them: :class:`DurableJobs`.

Every verb acts through the store, so it holds in every process and after restarts: the
hosts obey within about a second (they follow the store).  When this process hosts the
job too, the change takes effect here at once.  ``service.durable`` is one; the command
line makes one over a bare store.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ..core.errors import JobNotScheduledError, MashroomJobsError
from ..core.records import JobInvocation
from ..store.control import HostRow, StoreControl, Stored
from .definitions import JobDefinition
from .host import STALE_AFTER, DurableHost, ParkedJob

__all__ = ["DurableInfo", "DurableJobs", "HostInfo"]

#: reads and writes a pause or resume tries while other processes change the job meanwhile
_PAUSE_ATTEMPTS = 5


@dataclass(frozen=True)
class DurableInfo:
    """A durable job as the store knows it: its definition (None when it cannot be read
    here: ``error`` says why), whether this process hosts it, and parked hosts' errors."""

    name: str
    definition: JobDefinition | None
    version: int
    changed: datetime
    changed_by: str
    #: why it cannot be read or run here (parked), or None
    error: str | None
    #: this process runs it
    hosted_here: bool
    #: the hosts that parked it, with their errors (from their heartbeats)
    parked_on: dict[str, str]

    @property
    def paused(self) -> bool:
        return self.definition is not None and self.definition.paused


@dataclass(frozen=True)
class HostInfo:
    """A host, from its last heartbeat."""

    id: str
    kind: str
    machine: str
    pid: int
    origin: str
    started: datetime
    seen: datetime
    alive: bool
    jobs: tuple[str, ...]
    parked: dict[str, str]
    details: dict[str, Any]


class DurableJobs:
    """The durable jobs of one store, from one process (see the module docstring).

    Parameters
    ----------
    control : StoreControl
        The store's control tables.
    now : callable
        The current time.
    host : DurableHost, optional
        This process's host, when it hosts durable jobs.
    run_here : callable, optional
        ``run_here(name)``: run a job this process hosts now (a manual run's future).
    stop_here : callable, optional
        ``stop_here(name)``: stop this process's runs of the job.
    """

    def __init__(self, control: StoreControl, now: Callable[[], datetime], *,
                 host: DurableHost | None = None,
                 run_here: Callable[[str], Future[JobInvocation]] | None = None,
                 stop_here: Callable[[str], int] | None = None) -> None:
        self.control = control
        self._now = now
        self.host = host
        self._run_here = run_here
        self._stop_here = stop_here

    # -- reading ------------------------------------------------------------------------

    def jobs(self, hosts: list[HostInfo] | None = None) -> list[DurableInfo]:
        """Every durable job of the store, by name (``hosts``: :meth:`hosts`, if just
        read)."""
        here = self._here()
        parked_on = self._parked_on(hosts)
        return [self._info(stored, here, parked_on.get(stored.name, {}))
                for stored in self.control.definitions()]

    def get(self, name: str) -> DurableInfo:
        """The durable job ``name``.  Raises :class:`~mashroom_jobs.JobNotScheduledError`
        when there is none."""
        stored = self._stored(name)
        return self._info(stored, self._here(), self._parked_on().get(name, {}))

    def _stored(self, name: str) -> Stored:
        stored = self.control.definition(name)
        if stored is None:
            raise JobNotScheduledError(f"no durable job named {name!r} in the store")
        return stored

    def _parked_on(self, hosts: list[HostInfo] | None = None) -> dict[str, dict[str, str]]:
        """The live hosts that parked a job, with their errors, by job."""
        parked_on: dict[str, dict[str, str]] = {}
        for host in self.hosts() if hosts is None else hosts:
            if host.alive:
                for name, why in host.parked.items():
                    parked_on.setdefault(name, {})[host.origin] = why
        return parked_on

    def _here(self) -> tuple[dict[str, JobDefinition], dict[str, ParkedJob]]:
        """What this process hosts and what it parked."""
        if self.host is None:
            return {}, {}
        return self.host.hosted(), self.host.parked()

    @staticmethod
    def _info(stored: Stored, here: tuple[dict[str, JobDefinition], dict[str, ParkedJob]],
              parked_on: dict[str, str]) -> DurableInfo:
        hosted, parked_here = here
        definition: JobDefinition | None = None
        error: str | None = None
        try:
            definition = JobDefinition.from_stored(stored)
        except (MashroomJobsError, ValueError, TypeError, KeyError) as exc:
            error = f"{type(exc).__name__}: {exc}"
        parked = parked_here.get(stored.name)
        if parked is not None and error is None:
            error = parked.error
        return DurableInfo(stored.name, definition, stored.version, stored.changed,
                           stored.changed_by, error, stored.name in hosted, parked_on)

    def hosts(self) -> list[HostInfo]:
        """Every host that wrote a heartbeat, the most recently seen first; ``alive``
        when its last heartbeat is fresh."""
        now = self._now()
        return [_host_info(row, now) for row in self.control.hosts()]

    # -- changing --------------------------------------------------------------------------

    def define(self, definition: JobDefinition) -> JobDefinition:
        """Store ``definition`` (made, or replacing the one of its name) and, when this
        process hosts durable jobs, host it now."""
        stored = self.control.define(definition.name, definition.to_data())
        definition = JobDefinition.from_stored(stored)
        if self.host is not None:
            self.host.adopt(definition)
        return definition

    def pause(self, name: str) -> None:
        """Pause the durable job ``name`` in every host (until resumed)."""
        self._set_paused(name, True)

    def resume(self, name: str) -> None:
        """Resume it (from its next fire time after now)."""
        self._set_paused(name, False)

    def _set_paused(self, name: str, paused: bool) -> None:
        # read, then write only over what was read: a change another process made in
        # between (a new cron, say) is read again and kept, never written over
        for attempt in range(_PAUSE_ATTEMPTS):
            stored = self.control.definition(name)
            if stored is None:
                raise JobNotScheduledError(
                    f"no durable job named {name!r} in the store (a plugin's job is paused "
                    f"with set_override(name, paused=True))")
            if bool(stored.data.get("paused")) == paused:
                return
            data = {**stored.data, "paused": paused}
            try:
                written = self.control.define(name, data, expect_version=stored.version)
            except ValueError:  # changed meanwhile: read it again
                if attempt + 1 == _PAUSE_ATTEMPTS:
                    raise
                continue
            if self.host is not None:
                try:
                    self.host.adopt(JobDefinition.from_stored(written))
                except (MashroomJobsError, ValueError, TypeError, KeyError):
                    pass  # parked here: the hosts that can read it obey
            return

    # -- plugin jobs' stored overrides -------------------------------------------------------

    def overrides(self) -> dict[str, dict[str, Any]]:
        """What users changed of plugin jobs (their config keys, and ``paused``), by name."""
        return {stored.name: stored.data for stored in self.control.overrides()}

    def set_override(self, name: str, **changes: Any) -> None:
        """Store changes of the plugin job ``name`` (config keys such as ``cron_schedule``
        or ``timeout``, or ``paused``; None removes a key): every process loading the
        plugin applies them, now and after restarts, until :meth:`reset`.  A change to
        what is stored already writes nothing."""
        current = self.overrides().get(name, {})
        if all(current.get(key) == value for key, value in changes.items()):
            return
        self.control.override(name, changes)
        if self.host is not None:
            self.host.notify()

    def reset(self, name: str) -> bool:
        """Forget what was stored for the plugin job ``name``; False when nothing was."""
        removed = self.control.reset_override(name)
        if removed and self.host is not None:
            self.host.notify()
        return removed

    def watch(self, callback: Callable[[], None]) -> None:
        """Call ``callback()`` (on a pool worker) when another process (or this one)
        changed the store's durable jobs or overrides: the plugin loader follows so."""
        if self.host is not None:
            self.host.watch(callback)

    def remove(self, name: str) -> bool:
        """Remove the durable job ``name`` from the store (every host stops hosting it);
        False when there was none.  The only way a durable job goes."""
        removed = self.control.remove(name)
        if removed and self.host is not None:
            self.host.follow_now()
        return removed

    def run(self, name: str) -> Future[JobInvocation] | None:
        """Run the durable job ``name`` now: here when this process hosts it (its future),
        else the hosts are asked through the store and one runs it (None)."""
        if self.host is not None and self._run_here is not None \
                and name in self.host.hosted():
            return self._run_here(name)
        self._stored(name)  # raises for an unknown name
        self.control.request(name, "run")
        return None

    def stop(self, name: str) -> int:
        """Ask every host running ``name`` to stop it; how many runs here were asked."""
        self._stored(name)  # raises for an unknown name
        stopped = self._stop_here(name) if self._stop_here is not None else 0
        self.control.request(name, "stop")
        return stopped


def _host_info(row: HostRow, now: datetime) -> HostInfo:
    data = dict(row.data)
    jobs = tuple(data.pop("jobs", ()))
    parked = dict(data.pop("parked", {}))
    origin = str(data.pop("origin", f"{row.machine} pid {row.pid}"))
    return HostInfo(row.id, row.kind, row.machine, row.pid, origin, row.started, row.seen,
                    now - row.seen <= STALE_AFTER, jobs, parked, data)
