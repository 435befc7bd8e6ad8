"""Jobs as plain text: the status marks and the table ``repr(service)`` and terminals show.

Pure formatting, shared by the service's repr, the panel and the command line.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from .core.records import JobInvocation, JobState, Outcome

if TYPE_CHECKING:
    from .job import BackgroundJob

__all__ = ["STATE_WORDS", "format_jobs_table", "status_mark"]

RUNNING, PAUSED, FAILED, NEVER, OK = "▶", "‖", "✗", "○", "✓"
#: what each mark means (the panel's tooltip)
STATE_WORDS = {
    RUNNING: "running", PAUSED: "paused", FAILED: "failed last time", NEVER: "never run",
    OK: "scheduled",
}


def status_mark(state: JobState) -> str:
    """One character for a job's state: running, paused, failed, never run, scheduled."""
    if state.running:
        return RUNNING
    if state.paused:
        return PAUSED  # U+2016: in DejaVu, unlike U+23F8, so every browser draws it
    last = state.last_invocation
    if last is None:
        return NEVER
    return FAILED if last.outcome.failed else OK


def last_run_text(last: JobInvocation | None) -> str:
    """A job's last record in one line of text."""
    if last is None:
        return "never"
    outcome = last.outcome
    if outcome is Outcome.ELSEWHERE:
        result = f"ran elsewhere ({last.origin})"
    elif outcome.failed:
        result = f"FAILED {last.error_message}"
    else:
        result = outcome.value
    return f"{last.timestamp:%Y-%m-%d %H:%M:%S} {result}"


def format_jobs_table(jobs: Iterable[BackgroundJob]) -> str:
    """A plain-text table of jobs, for terminals and ``repr``."""
    jobs = list(jobs)
    if not jobs:
        return "BackgroundJobService: no jobs"
    header = ("", "name", "schedule", "next run", "last run", "runs", "failed")
    rows = [header]
    for job in jobs:
        state = job.state  # one consistent reading of the job
        last = state.last_invocation
        nxt = state.next_invocation
        rows.append((
            status_mark(state),
            job.name,
            job.cron_schedule if job.cron_schedule is not None else "(once)",
            f"{nxt:%Y-%m-%d %H:%M:%S %Z}" if nxt is not None else "-",
            " ".join(last_run_text(last).split())[:60],
            str(state.run_count),
            str(state.failure_count),
        ))
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in rows]
    title = f"BackgroundJobService: {len(jobs)} job{'s' if len(jobs) != 1 else ''}"
    return "\n".join([title, *lines])
