"""What to do with the fires of a durable job that passed while no process ran it.

A pure decision, :func:`plan_catch_up`: given the fires missed (oldest first) and the
job's :class:`CatchUp` policy, which to run now and which to record as missed.  The
host applies it (claiming each fire in the store first, so exactly one host acts).

The default, ``"latest"``, is what a notebook user expects of a nightly report: back
after a weekend, it runs once (for the latest fire missed), and the others show in the
history as missed.  Fires older than ``window`` are left alone.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from ..core.cron import CronSchedule
from ..core.errors import TargetError

__all__ = ["MAX_SCAN", "POLICIES", "CatchUp", "fires_between", "plan_catch_up"]

Policy = Literal["skip", "latest", "all"]
POLICIES: tuple[Policy, ...] = ("skip", "latest", "all")


@dataclass(frozen=True)
class CatchUp:
    """A durable job's catch-up policy.

    Parameters
    ----------
    policy : {"latest", "skip", "all"}
        ``"latest"`` runs the latest missed fire once (``trigger="catch-up"``) and records
        the others as missed; ``"skip"`` records them all as missed; ``"all"`` runs each,
        oldest first, one after the other (at most ``limit``; the older ones beyond are
        recorded as missed).
    window : float
        Seconds back from now in which missed fires count (default 7 days).
    limit : int
        With ``"all"``, the most fires run.
    """

    policy: Policy = "latest"
    window: float = 7 * 86_400.0
    limit: int = 10

    def __post_init__(self) -> None:
        if self.policy not in POLICIES:
            raise TargetError(f"catch-up policy must be one of {POLICIES}, got {self.policy!r}")
        if isinstance(self.window, bool) or not isinstance(self.window, (int, float)) \
                or not 0 <= self.window < math.inf:
            raise TargetError(f"catch-up window must be seconds >= 0, got {self.window!r}")
        if isinstance(self.limit, bool) or not isinstance(self.limit, int) or self.limit < 1:
            raise TargetError(f"catch-up limit must be a whole number >= 1, got {self.limit!r}")

    def to_data(self) -> dict[str, Any]:
        return {"policy": self.policy, "window": self.window, "limit": self.limit}

    @classmethod
    def from_data(cls, data: Mapping[str, Any] | str | None) -> CatchUp:
        if data is None:
            return cls()
        if isinstance(data, str):
            return cls(policy=data)  # type: ignore[arg-type]
        return cls(policy=data.get("policy", "latest"), window=data.get("window", 7 * 86_400.0),
                   limit=data.get("limit", 10))


def plan_catch_up(missed: Sequence[datetime], policy: CatchUp
                  ) -> tuple[list[datetime], list[datetime]]:
    """(the fires to run now, oldest first; the fires to record as missed) of ``missed``
    (oldest first, within the window already)."""
    fires = list(missed)
    if not fires or policy.policy == "skip":
        return [], fires
    if policy.policy == "latest":
        return fires[-1:], fires[:-1]
    return fires[-policy.limit:], fires[:-policy.limit]


#: the most fire times one look walks (a job firing every second, after a week)
MAX_SCAN = 100_000


def fires_between(schedule: CronSchedule, since: datetime, until: datetime,
                  keep: int) -> tuple[list[datetime], int]:
    """The newest ``keep`` fire times in ``(since, until]``, oldest first, and how many
    older ones were left out (at most :data:`MAX_SCAN` are walked)."""
    fires: list[datetime] = []
    dropped = 0
    moment = since
    for _ in range(MAX_SCAN):
        following = schedule.next_fire_time(moment)
        if following is None or following > until:
            break
        fires.append(following)
        if len(fires) > keep:
            del fires[0]
            dropped += 1
        moment = following
    return fires, dropped
