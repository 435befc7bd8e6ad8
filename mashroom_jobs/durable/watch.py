"""Fires of durable jobs that passed while no live host hosted the job: :class:`UnclaimedFires`.

Catch-up finds the fires missed while *no* process ran; this finds those missed while
processes run but none of them hosts the job: it is parked in every live host (its module
is missing there), or every host is configured not to host durable jobs.  A fire counts
when it is older than ``grace`` seconds (a host claims its fire at fire time) and no
process claimed it: the watcher claims it itself, so exactly one process reports it and a
host that starts later does not catch it up again.

A job some live host hosts is left alone: its unclaimed fires are that host's business
(``overlap="skip"`` leaves a fire unclaimed while a run is still going).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Protocol

from ..core.errors import MashroomJobsError, StoreUnavailableError
from ..store.control import HostRow, StoreControl
from .catchup import fires_between
from .definitions import JobDefinition

__all__ = ["UnclaimedFires"]

log = logging.getLogger("mashroom_jobs.durable")


class Claims(Protocol):
    """The store's claims of fires (a fire handled by exactly one host)."""

    def claim_many(self, fires: Sequence[tuple[str, datetime]]) -> list[str | None]: ...


class UnclaimedFires:
    """See the module docstring.

    Parameters
    ----------
    control : StoreControl
        The store's control tables (definitions, heartbeats).
    claims : Claims
        The store (its ``claim_many``).
    started : datetime
        Fires before this are left to catch-up.
    alive : callable
        ``alive(row, now)``: whether a heartbeat is fresh.
    grace : float
        Seconds after a fire before it counts as unclaimed.
    limit : int
        The most fires reported per job per check (the newest).
    """

    def __init__(self, control: StoreControl, claims: Claims, started: datetime,
                 alive: Callable[[HostRow, datetime], bool], *, grace: float = 60.0,
                 limit: int = 20) -> None:
        self._control = control
        self._claims = claims
        self._alive = alive
        self.grace = grace
        self.limit = limit
        self._since: dict[str, datetime] = {}
        self._started = started

    def check(self, now: datetime) -> list[tuple[JobDefinition, datetime]]:
        """The fires, oldest first, that passed unclaimed since the last check (each now
        claimed by this process)."""
        try:
            stored = self._control.definitions()
            hosts = self._control.hosts()
        except StoreUnavailableError as exc:
            log.warning("mashroom-jobs: could not look for unclaimed fires now: %s", exc)
            return []
        until = now - timedelta(seconds=self.grace)
        hosted = {job for row in hosts if self._alive(row, now)
                  for job in row.data.get("jobs", ())}
        found: list[tuple[JobDefinition, datetime]] = []
        names = set()
        for item in stored:
            names.add(item.name)
            since = max(self._since.get(item.name, self._started), item.changed)
            self._since[item.name] = max(since, until)
            if item.name in hosted or until <= since:
                continue
            try:
                definition = JobDefinition.from_stored(item)
            except (MashroomJobsError, ValueError, TypeError, KeyError):
                definition = None
            if definition is None or definition.paused:
                continue
            fires, _ = fires_between(definition.schedule(), since, until, self.limit)
            if not fires:
                continue
            try:
                winners = self._claims.claim_many([(item.name, fire) for fire in fires])
            except StoreUnavailableError as exc:
                log.warning("mashroom-jobs: could not claim the unclaimed fires of %r: %s",
                            item.name, exc)
                continue
            found += [(definition, fire) for fire, winner in zip(fires, winners)
                      if winner is None]
        for name in [n for n in self._since if n not in names]:
            del self._since[name]
        return found

