"""The records the core emits: one run's :class:`JobInvocation` (with its :class:`Outcome`),
one job's :class:`JobState`.

Both are immutable named tuples of plain values.  Past-tense facts (as
APScheduler 4's events are): made once, never changed, safe to hand to any
thread.  Being tuples of atoms (datetimes, numbers, strings, enum members), the
garbage collector stops tracking them after its first look, so 10,000 jobs with a
full history add almost nothing to a collection.

A record has two stored forms, each encoded and decoded in one place: the packed
ring of a job's recent runs (:mod:`._history`) and the store's row
(``mashroom_jobs.store.schema``).
"""

from __future__ import annotations

import enum
import sys
import traceback as _traceback
from datetime import datetime
from typing import Any, Literal, NamedTuple, Protocol

__all__ = ["MAX_LOG_CHARS", "MAX_TEXT_CHARS", "TRIGGERS", "HistorySource", "JobInvocation",
           "JobState", "Outcome", "Trigger", "bounded", "bounded_traceback", "error_text",
           "log_text"]

#: The most characters a run keeps of each text: its output, its error message, its
#: traceback; more is cut, and the cut is said (a 5 MB message must not make a 10 MB row)
MAX_TEXT_CHARS = 100_000
#: The most characters of an error message a log line carries
MAX_LOG_CHARS = 500
#: The most characters one line of a traceback keeps (the frames around it stay readable)
_MAX_LINE_CHARS = 2_000

#: What started a run: its schedule, a click or ``invoke_now()``, ``invoke_immediately``
#: (or a run-once job), a retry of a failed run, or a fire missed while no process ran
#: (a durable job's catch-up).
Trigger = Literal["schedule", "manual", "immediate", "retry", "catch-up"]
#: every trigger, in the order their stored codes follow
TRIGGERS: tuple[Trigger, ...] = ("schedule", "manual", "immediate", "retry", "catch-up")


class Outcome(str, enum.Enum):
    """How a run (or a fire) ended.  Its value is the word shown and stored."""

    #: the callback returned
    OK = "ok"
    #: the callback raised (or could not be started, sent or recorded)
    FAILED = "failed"
    #: stopped on request (``job.stop()``, the Stop button)
    STOPPED = "stopped"
    #: stopped because its ``timeout`` passed
    TIMED_OUT = "timed out"
    #: another process claimed this fire and ran it; nothing ran here
    ELSEWHERE = "ran elsewhere"
    #: the fire was not run: the job's previous run was still going (``overlap="skip"``)
    SKIPPED = "skipped"
    #: the fire passed while no process ran the job (found by a durable job's catch-up)
    MISSED = "missed"

    @property
    def ran(self) -> bool:
        """Whether a callback ran here for this record (counted in ``run_count``)."""
        return self in _RAN

    @property
    def failed(self) -> bool:
        """Whether it counts as a failure (failed, stopped or timed out)."""
        return self in _FAILURES

    def __str__(self) -> str:
        return self.value


_RAN = frozenset({Outcome.OK, Outcome.FAILED, Outcome.STOPPED, Outcome.TIMED_OUT})
_FAILURES = frozenset({Outcome.FAILED, Outcome.STOPPED, Outcome.TIMED_OUT})
#: every outcome, in the order their stored codes follow
OUTCOMES: tuple[Outcome, ...] = tuple(Outcome)


class JobInvocation(NamedTuple):
    """The record of one run of a job (or of a fire that did not run here). Immutable.

    Build it by keyword.

    Attributes
    ----------
    timestamp : datetime
        When the run started (aware, in the job's time zone).
    scheduled_for : datetime or None
        The fire time this run served; None for manual and immediate runs.
    trigger : {"schedule", "manual", "immediate", "retry", "catch-up"}
        What started the run.
    execution_time_ms : float
        How long the callback took.
    outcome : Outcome
        How it ended: ok, failed, stopped, timed out, ran elsewhere, skipped, missed.
    error_message : str or None
        ``"ExceptionType: message"`` of a failed run, ``"stopped"``, ``"timed out after 5 s"``.
    traceback : str or None
        The formatted traceback of a failed run.
    output : str
        What the job printed to stdout and stderr during this run.
    attempt : int
        1 for a first run; 2, 3... for its retries.
    worker : str or None
        The address of the Dask worker that ran it; None for a run in this process.
    origin : str or None
        Who ran it (``host pid N kernel ID``), when it came from the shared store;
        None for a record of this process's memory.
    job : str
        The name of the job this is a run of.
    artifact : str or None
        A file the run produced and kept (a notebook job's executed notebook).
    revision : str or None
        Which version of its target ran (a notebook job: the notebook's content hash),
        so a change shows in the history.
    """

    timestamp: datetime
    scheduled_for: datetime | None
    trigger: Trigger
    execution_time_ms: float
    outcome: Outcome
    error_message: str | None = None
    traceback: str | None = None
    output: str = ""
    attempt: int = 1
    worker: str | None = None
    origin: str | None = None
    job: str = ""
    artifact: str | None = None
    revision: str | None = None

    @property
    def success(self) -> bool:
        """True when the callback returned (``outcome`` is ``Outcome.OK``)."""
        return self.outcome is Outcome.OK

    @property
    def elsewhere(self) -> bool:
        """True when another process claimed this fire and ran it (``origin`` says who);
        nothing ran here.  Not a failure and not counted in ``run_count``."""
        return self.outcome is Outcome.ELSEWHERE

    def to_json(self, *, texts: bool = True) -> dict[str, Any]:
        """The record as JSON data, as ``mashroom-jobs history --json``, ``jobs show
        --json`` and the server's API give it; ``texts=False`` leaves out the longest
        fields (``output``, ``traceback``), for lists of many runs."""
        data: dict[str, Any] = {
            "job": self.job, "started": self.timestamp.isoformat(),
            "scheduled_for": None if self.scheduled_for is None
            else self.scheduled_for.isoformat(),
            "trigger": self.trigger, "attempt": self.attempt,
            "duration_ms": self.execution_time_ms, "outcome": self.outcome.value,
            "success": self.success, "error": self.error_message, "worker": self.worker,
            "origin": self.origin, "artifact": self.artifact, "revision": self.revision,
        }
        if texts:
            data["output"] = self.output
            data["traceback"] = self.traceback
        return data

    def __repr__(self) -> str:
        outcome = self.outcome
        if outcome is Outcome.ELSEWHERE:
            result = f"ran elsewhere ({self.origin})"
        elif outcome is Outcome.OK or outcome is Outcome.SKIPPED or outcome is Outcome.MISSED:
            result = outcome.value
        else:
            result = f"failed: {self.error_message}"
        attempt = f" attempt {self.attempt}" if self.attempt > 1 else ""
        return (
            f"<JobInvocation {self.trigger}{attempt} at "
            f"{self.timestamp.isoformat(timespec='seconds')}"
            f" {self.execution_time_ms:.1f} ms {result}>"
        )


class JobState(NamedTuple):
    """A job's observable state at one moment: what the panel shows. Immutable.

    Published as the ``state`` trait of a :class:`~mashroom_jobs.BackgroundJob`
    after each run, pause, resume, skip or unschedule (coalesced: a run that
    starts and ends between two publications is one change).
    """

    running: bool = False
    paused: bool = False
    active: bool = True
    next_invocation: datetime | None = None
    last_invocation: JobInvocation | None = None
    run_count: int = 0
    failure_count: int = 0
    skip_count: int = 0
    misfire_count: int = 0
    elsewhere_count: int = 0
    #: runs launched that wait for a free thread (every worker is busy)
    waiting: int = 0
    #: what a running run said of its progress (``"cell 7 of 20"``), or None
    progress: str | None = None
    #: more about it, for a tooltip (the cell's first line), or None
    progress_detail: str | None = None


class HistorySource(Protocol):
    """Where a service reads its runs: the job store (every process's, written ones and
    queued ones), or the jobs' in-memory rings (this process's)."""

    def history(self, name: str | None, limit: int,
                since: datetime | None) -> list[JobInvocation]:
        """The runs of job ``name`` (every job: None), newest first, at most ``limit``,
        started at ``since`` or later."""


def bounded(text: str, limit: int = MAX_TEXT_CHARS) -> str:
    """``text`` cut to ``limit`` characters (the marker saying how many were cut comes on
    top), as a run's output is."""
    if len(text) <= limit:
        return text
    return f"{text[:limit]}\n[truncated: {len(text) - limit:,} more characters]"


def error_text(error: BaseException) -> str:
    """``"ExceptionType: message"``, or just the type when the message is empty; at most
    :data:`MAX_TEXT_CHARS` characters of the message."""
    try:
        text = str(error)
    except Exception as exc:  # a broken __str__ must not break the record of the run
        text = f"<str() of the exception raised {type(exc).__name__}>"
    name = type(error).__name__
    return f"{name}: {bounded(text)}" if text else name


def log_text(text: str | None, limit: int = MAX_LOG_CHARS) -> str | None:
    """An error message shortened for a log line (the run's record keeps more)."""
    if text is None or len(text) <= limit:
        return text
    return f"{text[:limit]}... [{len(text) - limit:,} more characters in the run's record]"


def bounded_traceback(error: BaseException | None = None) -> str:
    """The formatted traceback of ``error`` (default: the exception being handled), at
    most about :data:`MAX_TEXT_CHARS` characters: each line longer than 2,000 characters
    (a huge message) is cut, then the middle frames of a still longer one, so that its
    start and the error at its end are kept.  Each cut says how much it took.

    An error that carries the traceback of where it really happened, as text in its
    ``traceback_text`` attribute (a notebook cell's error, formatted by its kernel), gives
    that one instead of the frames that raised it here."""
    if error is None:
        error = sys.exception() if hasattr(sys, "exception") else sys.exc_info()[1]
    if error is None:
        return ""
    own = getattr(error, "traceback_text", None)
    if isinstance(own, str) and own:
        whole = own
    else:
        whole = "".join(_traceback.format_exception(type(error), error, error.__traceback__))
    text = "".join(_short_line(line) for line in whole.splitlines(keepends=True))
    if len(text) <= MAX_TEXT_CHARS:
        return text
    half = MAX_TEXT_CHARS // 2
    return (f"{text[:half]}\n[... {len(text) - 2 * half:,} characters of the traceback cut "
            f"...]\n{text[-half:]}")


def _short_line(line: str) -> str:
    if len(line) <= _MAX_LINE_CHARS:
        return line
    end = "\n" if line.endswith("\n") else ""
    return f"{line[:_MAX_LINE_CHARS]}... [{len(line) - _MAX_LINE_CHARS:,} more characters]{end}"
