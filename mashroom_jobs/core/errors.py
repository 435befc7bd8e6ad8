"""The errors mashroom-jobs raises. Every one derives from :class:`MashroomJobsError`."""

from __future__ import annotations


class MashroomJobsError(Exception):
    """Base class of every error raised by mashroom-jobs."""


class InvalidCronExpressionError(MashroomJobsError, ValueError):
    """A cron expression that cannot be parsed, is out of range, or can never fire.

    Attributes
    ----------
    expression : str
        The expression as the user gave it.
    reason : str
        What is wrong with it, e.g. ``minute 61 is out of range 0-59``.
    """

    def __init__(self, expression: object, reason: str) -> None:
        self.expression = expression
        self.reason = reason
        super().__init__(f"Invalid cron expression {expression!r}: {reason}")


class InvalidTimezoneError(MashroomJobsError, ValueError):
    """A time zone that is neither a known IANA name nor a ``tzinfo``."""

    def __init__(self, zone: object, reason: str = "") -> None:
        self.zone = zone
        detail = reason or "not a known IANA time zone name (e.g. 'Europe/Vienna') or tzinfo"
        super().__init__(f"Invalid time zone {zone!r}: {detail}")


class ServiceShutdownError(MashroomJobsError, RuntimeError):
    """The service was shut down; it schedules and runs nothing any more."""


class JobNotScheduledError(MashroomJobsError, RuntimeError):
    """An action on a job that was unscheduled or replaced."""


class JobStopped(MashroomJobsError):
    """Raised by ``context.check_stop()`` in a job asked to stop (or timed out).

    Let it propagate: the run is then recorded as stopped.
    """


class StoreError(MashroomJobsError):
    """The job store cannot be used: its path, its file, or its schema (the message says)."""


class StoreUnavailableError(StoreError):
    """The store did not answer in time (another process holds a long write)."""
