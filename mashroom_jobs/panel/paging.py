"""Which jobs a panel lists and which of them it shows: the filter and the pages.

The panel lists the jobs its filter text matches (in a job's name, expression or
description), cut into pages of a fixed size, one of them shown at a time.
:class:`Pages` keeps that list and the page shown, clamped to the pages there
are whenever the list changes.  Apart from the view because none of it touches
a widget: the flush asks it which jobs to put in the rows.
"""

from __future__ import annotations

from collections.abc import Iterable

from .control import Listed

__all__ = ["Pages", "matching"]


def matching(jobs: Iterable[Listed], text: str) -> list[Listed]:
    """The jobs whose name, expression or description contains ``text`` (lower case;
    empty: every job)."""
    if not text:
        return list(jobs)
    return [
        j for j in jobs
        if text in j.name.lower() or text in (j.cron_schedule or "").lower()
        or text in j.description.lower()
    ]


class Pages:
    """The jobs a panel lists, cut into pages of ``size``; the page shown, from 0."""

    def __init__(self, size: int) -> None:
        self.size = size
        #: the jobs the filter matches, in scheduling order
        self.jobs: list[Listed] = []
        self.page = 0
        #: the page shown changed since the flush last looked
        self.moved = True

    @property
    def count(self) -> int:
        """Pages the jobs fill (at least 1)."""
        return max(1, -(-len(self.jobs) // self.size))

    def go(self, page: int) -> None:
        """Show page ``page`` (clamped to the pages there are)."""
        self.page = max(0, min(page, self.count - 1))
        self.moved = True

    def refilter(self, jobs: Iterable[Listed], text: str) -> None:
        """List the ``jobs`` that match ``text``, keeping the page shown if it still is one."""
        self.jobs = matching(jobs, text)
        self.page = max(0, min(self.page, self.count - 1))

    def visible(self) -> list[Listed]:
        """The jobs on the page shown."""
        start = self.page * self.size
        return self.jobs[start: start + self.size]
