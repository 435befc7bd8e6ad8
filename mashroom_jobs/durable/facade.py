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
from ..store.control import HostRow, StoreControl
from .definitions import JobDefinition
from .host import STALE_AFTER, DurableHost

__all__ = ["DurableInfo", "DurableJobs", "HostInfo"]


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

    def jobs(self) -> list[DurableInfo]:
        """Every durable job of the store, by name."""
        hosted = self.host.hosted() if self.host is not None else {}
        parked_here = self.host.parked() if self.host is not None else {}
        parked_on: dict[str, dict[str, str]] = {}
        for host in self.hosts():
            if host.alive:
                for name, why in host.parked.items():
                    parked_on.setdefault(name, {})[host.origin] = why
        infos = []
        for stored in self.control.definitions():
            definition: JobDefinition | None = None
            error: str | None = None
            try:
                definition = JobDefinition.from_stored(stored)
            except (MashroomJobsError, ValueError, TypeError, KeyError) as exc:
                error = f"{type(exc).__name__}: {exc}"
            here = parked_here.get(stored.name)
            if here is not None and error is None:
                error = here.error
            infos.append(DurableInfo(
                stored.name, definition, stored.version, stored.changed, stored.changed_by,
                error, stored.name in hosted, parked_on.get(stored.name, {})))
        return infos

    def get(self, name: str) -> DurableInfo:
        """The durable job ``name``.  Raises :class:`~mashroom_jobs.JobNotScheduledError`
        when there is none."""
        for info in self.jobs():
            if info.name == name:
                return info
        raise JobNotScheduledError(f"no durable job named {name!r} in the store")

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
        stored = self.control.definition(name)
        if stored is None:
            raise JobNotScheduledError(
                f"no durable job named {name!r} in the store (a plugin's job is paused with "
                f"set_override(name, paused=True))")
        if bool(stored.data.get("paused")) == paused:
            return
        data = {**stored.data, "paused": paused}
        stored = self.control.define(name, data)
        if self.host is not None:
            try:
                self.host.adopt(JobDefinition.from_stored(stored))
            except (MashroomJobsError, ValueError, TypeError, KeyError):
                pass  # parked here: the hosts that can read it obey

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
        self.get(name)  # raises for an unknown name
        self.control.request(name, "run")
        return None

    def stop(self, name: str) -> int:
        """Ask every host running ``name`` to stop it; how many runs here were asked."""
        self.get(name)
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
