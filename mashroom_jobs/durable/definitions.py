"""A durable job's definition: everything needed to schedule it again in another process,
as JSON-serializable data (never pickled: a definition outlives code changes).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from ..core.arguments import check_choice, check_count, check_flag, check_name, check_seconds
from ..core.cron import CronSchedule, resolve_zone, zone_name
from ..core.errors import InvalidCronExpressionError, TargetError
from ..store.control import Stored
from ..targets import Target, target_from_data
from .catchup import CatchUp

__all__ = ["FORMAT", "JobDefinition"]

#: the version of the definitions' data layout this module writes and reads
FORMAT = 1


@dataclass(frozen=True)
class JobDefinition:
    """A durable job (see the "Durable jobs" page of the documentation).

    ``version``, ``created``, ``changed`` and ``changed_by`` come from the store: the
    definition's version (one higher at each change), when it was first stored, last
    changed and by whom (a process's origin: ``host pid N kernel ID``).
    """

    name: str
    cron: str
    timezone: str
    target: Target
    timeout: float | None = None
    retries: int = 0
    retry_delay: float = 30.0
    overlap: str = "skip"
    paused: bool = False
    catchup: CatchUp = field(default_factory=CatchUp)
    version: int = 0
    created: datetime | None = None
    changed: datetime | None = None
    changed_by: str | None = None
    #: the parsed schedule, made once (by __post_init__): catch-up and the watch of
    #: unclaimed fires ask for it again and again
    _schedule: CronSchedule = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        check_name(self.name)
        if not isinstance(self.cron, str) or not self.cron.strip():
            raise InvalidCronExpressionError(
                self.cron, "a durable job needs a cron expression (it runs on a schedule)")
        # raises for a bad expression or zone
        object.__setattr__(self, "_schedule",
                           CronSchedule(self.cron, resolve_zone(self.timezone), name=self.name))
        check_seconds(self.timeout, "timeout", low=0.001, allow_none=True)
        check_count(self.retries, "retries")
        check_seconds(self.retry_delay, "retry_delay")
        check_choice(self.overlap, "overlap", ("skip", "allow"))
        check_flag(self.paused, "paused")
        if not isinstance(self.target, Target):
            raise TargetError(f"a durable job's target must be a target, got {self.target!r}")

    def schedule(self) -> CronSchedule:
        """The parsed schedule (``H`` hashed from the name, as everywhere)."""
        return self._schedule

    def to_data(self) -> dict[str, Any]:
        """The definition as the store keeps it (its store-given fields aside)."""
        return {
            "format": FORMAT, "cron": self.cron, "timezone": self.timezone,
            "target": self.target.to_data(), "timeout": self.timeout,
            "retries": self.retries, "retry_delay": self.retry_delay, "overlap": self.overlap,
            "paused": self.paused, "catchup": self.catchup.to_data(),
        }

    @classmethod
    def from_stored(cls, stored: Stored) -> JobDefinition:
        """Read a stored definition.

        Raises
        ------
        TargetError, ValueError
            When it cannot be read (a newer format, a target kind this version does not
            know, a field out of range): the host parks the job with that error.
        """
        data = stored.data
        if not isinstance(data, Mapping):
            raise TargetError(f"the stored definition of {stored.name!r} is not an object")
        if int(data.get("format", 1)) > FORMAT:
            raise TargetError(f"the definition of {stored.name!r} was written by a newer "
                              f"mashroom-jobs (format {data.get('format')}); upgrade to run it")
        return cls(
            name=stored.name, cron=data.get("cron"),  # type: ignore[arg-type]
            timezone=data.get("timezone") or "UTC", target=target_from_data(data["target"]),
            timeout=data.get("timeout"), retries=data.get("retries", 0),
            retry_delay=data.get("retry_delay", 30.0), overlap=data.get("overlap", "skip"),
            paused=bool(data.get("paused", False)),
            catchup=CatchUp.from_data(data.get("catchup")), version=stored.version,
            created=stored.created, changed=stored.changed, changed_by=stored.changed_by,
        )

    @classmethod
    def make(cls, name: str, cron: str, target: Target, *, timezone: Any, **options: Any
             ) -> JobDefinition:
        """A new definition; ``timezone`` (a name or a tzinfo) is stored by its name."""
        return cls(name=name, cron=cron, timezone=zone_name(resolve_zone(timezone)),
                   target=target, **options)

    def same_but_paused(self, other: JobDefinition) -> bool:
        """Whether ``other`` differs from this one at most in being paused or not."""
        mine, theirs = self.to_data(), other.to_data()
        mine.pop("paused"), theirs.pop("paused")
        return mine == theirs

    def describe(self) -> str:
        return f"{self.cron} ({self.timezone}): {self.target.describe()}"
