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
        # a 1 MB expression is named by its start (and the reason by at most 1,000
        # characters): the message lands in logs and cells
        super().__init__(f"Invalid cron expression {_shown(expression)}: {_cut(reason, 1000)}")


def _shown(value: object, limit: int = 200) -> str:
    text = repr(value)
    if len(text) <= limit:
        return text
    size = f" ({len(value):,} characters)" if isinstance(value, str) else ""
    return f"{text[:limit]}...{size}"


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text) - limit:,} more)"


class InvalidTimezoneError(MashroomJobsError, ValueError):
    """A time zone that is neither a known IANA name nor a ``tzinfo``."""

    def __init__(self, zone: object, reason: str = "") -> None:
        self.zone = zone
        detail = reason or "not a known IANA time zone name (e.g. 'Europe/Vienna') or tzinfo"
        super().__init__(f"Invalid time zone {_shown(zone)}: {_cut(detail, 1000)}")


class ServiceShutdownError(MashroomJobsError, RuntimeError):
    """The service was shut down; it schedules and runs nothing any more."""


class JobNotScheduledError(MashroomJobsError, RuntimeError):
    """An action on a job that was unscheduled or replaced."""


class JobStopped(MashroomJobsError):
    """Raised by ``context.check_stop()`` in a job asked to stop (or timed out).

    Let it propagate: the run is then recorded as stopped.
    """


class JobInputError(MashroomJobsError, RuntimeError):
    """A background job asked for input (``input()``, ``getpass()``): nobody can answer
    it, and in a kernel the prompt would appear in an unrelated cell."""


class StoreError(MashroomJobsError):
    """The job store cannot be used: its path, its file, or its schema (the message says)."""


class StoreUnavailableError(StoreError):
    """The store did not answer in time (another process holds a long write)."""


class TargetError(MashroomJobsError, ValueError):
    """A job's target that is not valid as given: a malformed ``"module:function"``
    reference, an empty command, arguments that are not JSON, a target kind unknown."""


class TargetUnavailableError(MashroomJobsError):
    """A job's target that cannot be found now: its module or function is gone, its
    command is not installed, its notebook is missing.  A durable job whose target is
    unavailable is parked (kept, retried), never deleted."""
