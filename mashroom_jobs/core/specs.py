"""``schedule_job``'s arguments, checked and resolved into a :class:`~.runtime.JobSpec`.

Each bad argument is an error naming it (see :mod:`.arguments`), raised in the
order of the signature and before anything is scheduled or replaced.  The
expression and the zone become a shared :class:`~.cron.CronSchedule`; where the
callback runs is resolved by the caller's ``where`` (the service's executor
backends).  Apart from the service, which only adds the job, so that the checks
need no Jupyter.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Executor
from datetime import tzinfo
from typing import Any

from .arguments import check_choice, check_count, check_flag, check_name, check_seconds
from .callables import inspect_callback
from .cron import CronSchedule, resolve_zone, shared_schedule
from .errors import InvalidCronExpressionError
from .remote import RemoteBackend
from .runtime import JobSpec, Overlap

__all__ = ["MAX_RETRY_DELAY", "Where", "check_job", "resolve_schedule"]

#: the longest ``retry_delay``, in seconds (a week): a retry later than that is no retry
MAX_RETRY_DELAY = 7 * 86_400.0

#: resolves an ``executor=`` argument: (an executor of this process, a remote backend)
Where = Callable[[object], tuple[Executor | None, RemoteBackend | None]]


def check_job(name: str, cron_schedule: object, callback: Callable[..., Any], *,
              default_zone: str | tzinfo, timezone: str | tzinfo | None,
              invoke_immediately: bool, overlap: Overlap, executor: object, where: Where,
              timeout: float | None, retries: int, retry_delay: float,
              exclusive: bool, catch_up: bool = False) -> JobSpec:
    """The job ``schedule_job`` is asked for, every argument checked (see its docstring);
    ``default_zone`` is the service's ``timezone`` setting."""
    check_name(name)
    kind = inspect_callback(callback)
    check_choice(overlap, "overlap", ("skip", "allow"))
    check_flag(invoke_immediately, "invoke_immediately")
    check_flag(exclusive, "exclusive")
    timeout = check_seconds(timeout, "timeout", low=0.001, allow_none=True)
    check_count(retries, "retries")
    retry_delay = check_seconds(retry_delay, "retry_delay") or 0.0
    if retry_delay > MAX_RETRY_DELAY:
        # the timer would hold it for ever: the retry, and the failure's callbacks after
        # it, would silently never come
        raise ValueError(f"retry_delay must be at most {MAX_RETRY_DELAY:g} seconds (a week), "
                         f"got {retry_delay:g}")
    schedule, zone = resolve_schedule(cron_schedule, timezone, default_zone, name)
    local, remote = where(executor)
    return JobSpec(name, callback, kind, schedule, zone, overlap, local, remote,
                   timeout, retries, retry_delay, exclusive, catch_up)


def resolve_schedule(cron_schedule: object, timezone: str | tzinfo | None,
                     default_zone: str | tzinfo,
                     name: str) -> tuple[CronSchedule | None, tzinfo]:
    """The schedule (None: run once) and zone of ``cron_schedule`` in ``timezone`` (or
    ``default_zone``); ``name`` hashes the expression's ``H`` fields."""
    if isinstance(cron_schedule, CronSchedule):
        if timezone is not None and resolve_zone(timezone) != cron_schedule.zone:
            raise ValueError(
                f"timezone={timezone!r} contradicts the CronSchedule's zone "
                f"{cron_schedule.timezone!r}: give the zone to CronSchedule only"
            )
        return cron_schedule, cron_schedule.zone
    zone = resolve_zone(default_zone if timezone is None else timezone)
    if cron_schedule is None or cron_schedule == "":
        return None, zone
    if isinstance(cron_schedule, str) and not cron_schedule.strip():
        # as CronSchedule and `mashroom-jobs cron` say: blanks are no expression
        raise InvalidCronExpressionError(
            cron_schedule, "it is blank: give 5 fields (or 6 with seconds first), or None "
                           "(or '') to run the job once, right away")
    if isinstance(cron_schedule, str):
        return shared_schedule(cron_schedule, zone, name=name), zone  # name: for H
    raise InvalidCronExpressionError(
        cron_schedule,
        f"expected a string, a CronSchedule or None, got {type(cron_schedule).__name__}",
    )
