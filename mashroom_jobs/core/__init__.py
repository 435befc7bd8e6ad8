"""The scheduling core: the stdlib and cron-descriptor only (no Jupyter)."""

from .clock import Clock, SystemClock
from .cron import CronSchedule, local_zone, resolve_zone, shared_schedule, zone_name
from .errors import (
    InvalidCronExpressionError,
    InvalidTimezoneError,
    JobNotScheduledError,
    MashroomJobsError,
    ServiceShutdownError,
)

__all__ = [
    "Clock",
    "CronSchedule",
    "InvalidCronExpressionError",
    "InvalidTimezoneError",
    "JobNotScheduledError",
    "MashroomJobsError",
    "ServiceShutdownError",
    "SystemClock",
    "local_zone",
    "resolve_zone",
    "shared_schedule",
    "zone_name",
]
