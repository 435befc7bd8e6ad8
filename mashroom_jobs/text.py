"""Jobs as plain text: the status marks and the table ``repr(service)`` and terminals show.

Pure formatting, shared by the service's repr, the panel and the command line.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

from .core.records import JobInvocation, JobState, Outcome

if TYPE_CHECKING:
    from .job import BackgroundJob

__all__ = ["STATE_WORDS", "cut", "format_jobs_table", "pad", "plain_table", "status_mark",
           "terminal_text", "width"]

RUNNING, PAUSED, FAILED, NEVER, OK = "▶", "‖", "✗", "○", "✓"
#: what each mark means (the panel's tooltip)
STATE_WORDS = {
    RUNNING: "running", PAUSED: "paused", FAILED: "failed last time", NEVER: "never run",
    OK: "scheduled",
}


def terminal_text(text: str) -> str:
    """``text`` safe to print on a terminal: one line, control characters (escape
    sequences, a bell, a carriage return) shown as escapes instead of acting."""
    text = " ".join(text.split())
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def width(text: str) -> int:
    """Columns ``text`` takes on a terminal: 2 for a CJK character or an emoji, 0 for a
    combining mark (len() counts each 1)."""
    from wcwidth import wcswidth

    columns = wcswidth(text)
    return columns if columns >= 0 else len(text)  # (-1: a control character left in it)


def pad(text: str, columns: int) -> str:
    """``text`` followed by spaces up to ``columns`` display columns."""
    return text + " " * max(0, columns - width(text))


def cut(text: str, columns: int) -> str:
    """``text`` shortened to at most ``columns`` display columns."""
    if width(text) <= columns:
        return text
    while text and width(text) > columns:
        text = text[:-1]
    return text


def plain_table(rows: Sequence[Sequence[str]]) -> list[str]:
    """Rows as lines of columns aligned by display width, two spaces apart."""
    widths = [max(width(row[i]) for row in rows) for i in range(len(rows[0]))]
    return ["  ".join(pad(c, w) for c, w in zip(row, widths)).rstrip() for row in rows]


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


def result_text(record: JobInvocation) -> str:
    """How a record ended, in a few words: "ok", "FAILED <error>", "skipped", ..."""
    outcome = record.outcome
    if outcome is Outcome.ELSEWHERE:
        return f"ran elsewhere ({record.origin})"
    if outcome.failed:
        return f"FAILED {record.error_message}"
    return str(outcome)


def last_run_text(last: JobInvocation | None) -> str:
    """A job's last record in one line of text."""
    if last is None:
        return "never"
    return f"{last.timestamp:%Y-%m-%d %H:%M:%S} {result_text(last)}"


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
            cut(terminal_text(last_run_text(last)), 60),
            str(state.run_count),
            str(state.failure_count),
        ))
    lines = plain_table(rows)
    title = f"BackgroundJobService: {len(jobs)} job{'s' if len(jobs) != 1 else ''}"
    return "\n".join([title, *lines])
