"""Jobs as plain text: the status marks and the table ``repr(service)`` and terminals show.

Pure formatting, shared by the service's repr, the panel and the command line.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

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


def status_mark(job: BackgroundJob) -> str:
    """One character for a job's state: running, paused, failed, never run, scheduled."""
    if job.running:
        return RUNNING
    if job.paused:
        return PAUSED  # U+2016: in DejaVu, unlike U+23F8, so every browser draws it
    last = job.last_invocation
    if last is None:
        return NEVER
    return OK if last.success else FAILED


def format_jobs_table(jobs: Iterable[BackgroundJob]) -> str:
    """A plain-text table of jobs, for terminals and ``repr``."""
    jobs = list(jobs)
    if not jobs:
        return "BackgroundJobService: no jobs"
    header = ("", "name", "schedule", "next run", "last run", "runs", "failed")
    rows = [header]
    for job in jobs:
        last = job.last_invocation
        if last is None:
            last_text = "never"
        elif last.elsewhere:
            last_text = f"{last.timestamp:%Y-%m-%d %H:%M:%S} ran elsewhere ({last.origin})"
        else:
            outcome = "ok" if last.success else f"FAILED {last.error_message}"
            last_text = f"{last.timestamp:%Y-%m-%d %H:%M:%S} {outcome}"
        nxt = job.next_invocation
        rows.append((
            status_mark(job),
            job.name,
            job.cron_schedule if job.cron_schedule is not None else "(once)",
            f"{nxt:%Y-%m-%d %H:%M:%S %Z}" if nxt is not None else "-",
            cut(terminal_text(last_text), 60),
            str(job.run_count),
            str(job.failure_count),
        ))
    lines = plain_table(rows)
    title = f"BackgroundJobService: {len(jobs)} job{'s' if len(jobs) != 1 else ''}"
    return "\n".join([title, *lines])
