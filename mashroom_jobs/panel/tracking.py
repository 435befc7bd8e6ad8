"""What changed since a panel's last flush, as its observers record it.

A :class:`ChangeTracker` observes a service (its ``jobs``, ``plugins`` and
``last_failure``) and each of its jobs' ``state``.  Those observers run on the
timer, worker, notifier and caller threads, so they only record what changed,
under a small lock, and never raise: which jobs changed, whether the list of
jobs did (the page must be rebuilt), whether the header's totals or notes did,
and the last failure to announce.  The panel's flush takes it all at once
(:meth:`ChangeTracker.take`) and renders.  Apart from the view so that
nothing here touches a widget.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from typing import Any

from ..core.records import JobInvocation, JobState
from ..job import BackgroundJob
from ..service import BackgroundJobService
from .control import Listed

__all__ = ["ChangeTracker", "counts_changed"]


def counts_changed(old: object, new: JobState) -> bool:
    """Whether a state change moves the header's totals (running, paused, failing)."""
    if not isinstance(old, JobState):
        return True
    return (old.running != new.running or old.paused != new.paused
            or old.active != new.active or old.last_invocation != new.last_invocation)


class ChangeTracker:
    """The changes a panel on ``service`` has yet to show (see the module docstring).
    Everything is pending at first: the first flush renders it all."""

    def __init__(self, service: BackgroundJobService) -> None:
        self._service = service
        # written by observers (any thread), taken by the flush: each changed job, with the
        # state it published last (None: changed by the panel itself, nothing published)
        self._lock = threading.Lock()
        self._dirty: dict[Listed, JobState | None] = {}
        self._structure = self._counts = self._notes = True
        #: the last failure to announce: (job name, its run, monotonic time it arrived)
        self.failure: tuple[str, JobInvocation, float] | None = None
        self._observed: set[BackgroundJob] = set()
        self._observed_lock = threading.Lock()

    def attach(self) -> None:
        """Start observing the service and its jobs."""
        # observe first, then read: a job scheduled in between is announced, and
        # adding an observed job twice is harmless
        service = self._service
        service.observe(self._on_jobs, names="jobs")
        service.observe(self._on_plugins, names="plugins")
        service.observe(self._on_failure, names="last_failure")
        self._track(service.jobs, ())

    def detach(self) -> None:
        """Stop observing the service and every job observed."""
        service = self._service
        service.unobserve(self._on_jobs, names="jobs")
        service.unobserve(self._on_plugins, names="plugins")
        service.unobserve(self._on_failure, names="last_failure")
        self._track((), tuple(self._observed))

    def take(self) -> tuple[dict[Listed, JobState | None], bool, bool, bool]:
        """What changed since the last take: (the jobs changed, each with the state it
        published last, if any; the list of jobs; the header's totals; its notes)."""
        with self._lock:
            dirty, self._dirty = self._dirty, {}
            structure, self._structure = self._structure, False
            counts, self._counts = self._counts, False
            notes, self._notes = self._notes, False
        return dirty, structure, counts, notes

    def mark(self, job: Listed | None = None, *, structure: bool = False,
             counts: bool = False, notes: bool = False) -> None:
        """Record a change made by the panel itself (a click, the filter, a shutdown)."""
        with self._lock:
            if job is not None:
                self._dirty.setdefault(job, None)
            self._structure |= structure
            self._counts |= counts
            self._notes |= notes

    # -- observers (any thread; quick; never raise) -------------------------------------

    def _track(self, added: Iterable[BackgroundJob], removed: Iterable[BackgroundJob]) -> None:
        with self._observed_lock:
            observed = self._observed
            for job in removed:
                if job in observed:
                    job.unobserve(self._on_job, names="state")
                    observed.discard(job)
            for job in added:
                if job not in observed:
                    job.observe(self._on_job, names="state")
                    observed.add(job)

    def _on_jobs(self, change: Any) -> None:
        old: tuple[BackgroundJob, ...] = change["old"] or ()
        new: tuple[BackgroundJob, ...] = change["new"]
        # fast path for one schedule: no O(n) set building per change
        if len(new) == len(old) + 1 and new[:-1] == old:
            self._track(new[-1:], ())
        else:
            new_set = set(new)
            self._track(new, [j for j in list(self._observed) if j not in new_set])
        with self._lock:
            self._structure = True
            self._counts = True

    def _on_job(self, change: Any) -> None:
        with self._lock:
            self._dirty[change["owner"]] = change["new"]
            if counts_changed(change["old"], change["new"]):
                self._counts = True

    def _on_plugins(self, _change: Any) -> None:
        with self._lock:
            self._notes = True

    def _on_failure(self, change: Any) -> None:
        # (the notifier thread) announced in the header for a while: a toast would need
        # front-end code, which a stock-widgets panel has not
        job, invocation = change["new"]
        with self._lock:
            self.failure = (job.name, invocation, self._service.clock.monotonic())
            self._notes = True
