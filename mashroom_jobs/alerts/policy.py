"""Which alerts to send, as a pure decision: :class:`AlertPolicy`.

A job's problems (a failure that will not be retried, a fire that did not run, a durable
job parked) open an *episode*: the first problem is told at once; the next ones are only
counted and told in a summary at most every ``summary_interval`` seconds; the job's next
success (or its unparking) closes the episode with one "recovered" alert that says how
many problems there were.  A job failing every second thus sends one alert, then one
summary every ten minutes (the default), then one recovery: not thousands.

Nothing here sends, claims or reads a clock: the caller gives the moments and acts on
the :class:`Alert` values returned (see :mod:`.service_alerts`).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

__all__ = ["Alert", "AlertPolicy", "Kind", "Problem"]

#: what an alert tells
Kind = Literal["failed", "missed", "parked", "summary", "recovered"]
#: what opens or extends an episode
Problem = Literal["failed", "missed", "parked"]

_NOUNS = {"failed": ("failure", "failures"), "missed": ("fire that did not run",
                                                        "fires that did not run"),
          "parked": ("park", "parks")}


@dataclass(frozen=True)
class Alert:
    """One alert to send: about ``job``, of ``kind``, at ``moment`` (the time of what it
    tells), with its ``title`` and ``body``."""

    job: str
    kind: Kind
    moment: datetime
    title: str
    body: str


@dataclass
class _Episode:
    first: Problem
    since: datetime
    last_sent: datetime
    counts: Counter[str] = field(default_factory=Counter)
    unsent: Counter[str] = field(default_factory=Counter)
    last_detail: str = ""
    last_moment: datetime | None = None


def _count_text(counts: Counter[str]) -> str:
    parts = []
    for kind in ("failed", "missed", "parked"):
        n = counts.get(kind, 0)
        if n:
            one, many = _NOUNS[kind]
            parts.append(f"{n} {one if n == 1 else many}")
    return ", ".join(parts)


def _when(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S %Z").strip()


class AlertPolicy:
    """The open episodes of a process's jobs (see the module docstring).

    Parameters
    ----------
    summary_interval : float
        Seconds between two messages about one episode (its first alert, then summaries).
    where : str
        Who is telling (the process's origin), for the bodies.
    """

    def __init__(self, summary_interval: float = 600.0, where: str = "") -> None:
        self.summary_interval = summary_interval
        self.where = where
        self._open: dict[str, _Episode] = {}

    def open_episodes(self) -> dict[str, Problem]:
        """The jobs with an open episode, each with what opened it."""
        return {job: episode.first for job, episode in self._open.items()}

    def problem(self, job: str, kind: Problem, moment: datetime, detail: str) -> Alert | None:
        """A problem of ``job``: its first alert, or None (counted for the summary)."""
        episode = self._open.get(job)
        if episode is None:
            episode = self._open[job] = _Episode(kind, moment, moment)
            episode.counts[kind] += 1
            episode.last_detail, episode.last_moment = detail, moment
            return self._first(job, kind, moment, detail)
        episode.counts[kind] += 1
        episode.unsent[kind] += 1
        episode.last_detail, episode.last_moment = detail, moment
        return None

    def ok(self, job: str, moment: datetime, detail: str = "") -> Alert | None:
        """``job`` ran fine (or is hosted again): the recovery alert of its open episode,
        or None when it had none."""
        episode = self._open.pop(job, None)
        if episode is None:
            return None
        body = (f"Job {job!r} {detail or 'ran ok'} at {_when(moment)}, after "
                f"{_count_text(episode.counts)} since {_when(episode.since)}.")
        if episode.unsent:
            body += f" Not told before: {_count_text(episode.unsent)}."
        return Alert(job, "recovered", moment, f"mashroom-jobs: {job!r} recovered",
                     self._signed(body))

    def due(self, now: datetime) -> list[Alert]:
        """Summaries of the episodes with problems not told for ``summary_interval``."""
        alerts = []
        for job, episode in self._open.items():
            if not episode.unsent:
                continue
            if (now - episode.last_sent).total_seconds() < self.summary_interval:
                continue
            text = _count_text(episode.unsent)
            last = episode.last_moment or now
            body = (f"Job {job!r}: {text} more since {_when(episode.last_sent)} (in all "
                    f"{_count_text(episode.counts)} since {_when(episode.since)}). The latest, "
                    f"at {_when(last)}: {episode.last_detail}")
            alerts.append(Alert(job, "summary", now,
                                f"mashroom-jobs: {job!r} still has problems: {text}",
                                self._signed(body)))
            episode.unsent.clear()
            episode.last_sent = now
        return alerts

    def forget(self, job: str) -> None:
        """Close ``job``'s episode without an alert (it was removed)."""
        self._open.pop(job, None)

    def _first(self, job: str, kind: Problem, moment: datetime, detail: str) -> Alert:
        minutes = self.summary_interval / 60
        every = f"{minutes:g} min" if minutes >= 1 else f"{self.summary_interval:g} s"
        after = (f" Further problems of this job are summarized at most every {every} until "
                 f"it recovers.")
        if kind == "failed":
            title = f"mashroom-jobs: {job!r} failed"
            body = f"Job {job!r} failed at {_when(moment)}: {detail}"
        elif kind == "missed":
            title = f"mashroom-jobs: {job!r} did not run"
            body = f"The fire of job {job!r} at {_when(moment)} did not run: {detail}"
        else:
            title = f"mashroom-jobs: {job!r} is parked"
            body = (f"Durable job {job!r} cannot be run (parked) since {_when(moment)}: "
                    f"{detail}. It stays in the job store; hosts try it again at each change "
                    f"and start.")
        return Alert(job, kind, moment, title, self._signed(body + after))

    def _signed(self, body: str) -> str:
        return f"{body}\n\n(from {self.where})" if self.where else body
