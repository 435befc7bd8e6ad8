"""A service's scheduled jobs: by name, in scheduling order, and its observable ``jobs``.

:class:`JobRegistry` maps each name to its job's
:class:`~mashroom_jobs.core.runtime.JobRuntime` (a replacement keeps its
place) and builds the service's ``jobs`` tuple only when it is read after a
change: ``jobs`` is a property, not a stored trait, as 10,000 schedules must not
copy a growing tuple each.  It counts the observers of ``jobs`` and, while there
are any, announces each change (with traitlets' public ``notify_change``) under
the service's lock, so that observers see the changes in order.  It also finds
the job a verb (run, pause, resume, stop) names, and reads the runs the jobs keep
in memory.  Once the service shuts down it is :attr:`~JobRegistry.closed`: no job
is added any more and the verbs refuse.  Apart from the service, which starts
and deactivates the jobs.
"""

from __future__ import annotations

import heapq
import threading
from datetime import datetime
from typing import Any

from traitlets import All, Bunch
from traitlets.config import LoggingConfigurable

from .core.errors import JobNotScheduledError, ServiceShutdownError
from .core.records import JobInvocation
from .core.runtime import JobRuntime
from .job import BackgroundJob

__all__ = ["JobRegistry", "names_jobs"]

Jobs = tuple[BackgroundJob, ...]


class JobRegistry:
    """The jobs of ``owner`` (the service: ``jobs`` is announced as its trait), changed
    under ``lock`` (the service's).  See the module docstring."""

    def __init__(self, owner: LoggingConfigurable, lock: threading.RLock) -> None:
        self._owner = owner
        self._lock = lock
        # name -> runtime, in scheduling order (a replacement keeps its place)
        self._runtimes: dict[str, JobRuntime] = {}
        self._jobs: Jobs | None = ()  # None: rebuild on read
        self._closed = False
        #: how many observers watch ``jobs`` (changes are announced only while there are)
        self.watchers = 0

    # -- the jobs --

    @property
    def jobs(self) -> Jobs:
        """The jobs, in scheduling order."""
        jobs = self._jobs
        if jobs is None:
            with self._lock:
                jobs = self._jobs = tuple(r.owner for r in self._runtimes.values())  # type: ignore[misc]
        return jobs

    @property
    def closed(self) -> bool:
        """True once the service shut down (see :meth:`close`)."""
        return self._closed

    def close(self) -> list[JobRuntime] | None:
        """The service shuts down: add no job any more.  The jobs to deactivate; None
        when it was closed already."""
        with self._lock:
            if self._closed:
                return None
            self._closed = True
            return list(self._runtimes.values())

    def put(self, runtime: JobRuntime) -> JobRuntime | None:
        """Add a job, replacing the one of its name: returned."""
        name = runtime.spec.name
        with self._lock:
            if self._closed:
                raise ServiceShutdownError(f"cannot schedule {name!r}: the service was shut down")
            old_jobs = self.jobs if self.watchers else None
            old = self._runtimes.get(name)
            self._runtimes[name] = runtime
            self._jobs = None
            if old_jobs is not None:
                self._announce(old_jobs)
        return old

    def remove(self, name: str) -> JobRuntime | None:
        """Remove the job ``name``; None when there is none."""
        with self._lock:
            if name not in self._runtimes:
                return None
            old_jobs = self.jobs if self.watchers else None
            runtime = self._runtimes.pop(name)
            self._jobs = None
            if old_jobs is not None:
                self._announce(old_jobs)
        return runtime

    def clear(self) -> list[JobRuntime]:
        """Remove every job; those removed."""
        with self._lock:
            old_jobs = self.jobs
            removed = list(self._runtimes.values())
            self._runtimes.clear()
            self._jobs = ()
            if self.watchers:
                self._announce(old_jobs)
        return removed

    def get(self, name: str) -> BackgroundJob | None:
        """The job called ``name``, or None."""
        runtime = self._runtimes.get(name)
        return None if runtime is None else runtime.owner  # type: ignore[return-value]

    def runtime_of(self, job: BackgroundJob | str, action: str, *,
                   allow_inactive: bool = False) -> JobRuntime:
        """The runtime of ``job`` (a job or a name) for ``action`` (a verb); unless
        ``allow_inactive``, raises when the job or the service is done."""
        if isinstance(job, str):
            runtime = self._runtimes.get(job)
            if runtime is None:
                raise JobNotScheduledError(f"cannot {action} job {job!r}: no such job")
        elif isinstance(job, BackgroundJob):
            runtime = job.runtime  # (an unscheduled job's runs may still be going: stop)
        else:
            raise TypeError(f"job must be a BackgroundJob or a name, got {type(job).__name__}")
        if not allow_inactive:
            if self._closed:
                raise ServiceShutdownError(
                    f"cannot {action} job {runtime.spec.name!r}: the service was shut down"
                )
            runtime.check_active(action)
        return runtime

    def history(self, name: str | None, limit: int,
                since: datetime | None) -> list[JobInvocation]:
        """The runs the jobs keep in memory, newest first: of job ``name`` or of all.

        Only the ``limit`` newest runs become records: the others are compared by their
        start times, read from the jobs' packed histories (10,000 jobs keep 200,000 runs).
        Runs that started together keep the jobs' order, and each job's order of record.
        """
        if name is None:
            runtimes = list(self._runtimes.values())
        else:
            runtime = self._runtimes.get(name)
            runtimes = [] if runtime is None else [runtime]
        if not limit:
            return []
        snapshots = []
        every: list[float] = []
        for runtime in runtimes:
            with runtime.lock:
                snapshot = runtime.runs.start_times()
            snapshots.append(snapshot)
            every += snapshot[0]
        if since is not None:
            cutoff = since.timestamp()
            every = [start for start in every if start >= cutoff]
        if not every:
            return []
        # the limit-th newest start: only runs at least that new are candidates
        threshold = heapq.nlargest(limit, every)[-1]
        candidates = []  # (start, -the job's place, -the run's serial): newest first
        for place, (starts, oldest, first) in enumerate(snapshots):
            slots = len(starts)
            candidates += [(start, -place, -(first + (slot - oldest) % slots))
                           for slot, start in enumerate(starts) if start >= threshold]
        candidates.sort(reverse=True)
        runs = []
        for _, place, serial in candidates[:limit]:
            runtime = runtimes[-place]
            with runtime.lock:
                run = runtime.runs.by_serial(-serial, runtime.spec.zone, runtime.spec.name)
            if run is not None:  # else pushed out by newer runs meanwhile
                runs.append(run)
        return runs

    # -- observing ``jobs`` --

    def watched(self, change: int | None) -> None:
        """An observer of ``jobs`` was added (``change`` +1) or removed (-1), or all were
        (None); see :func:`names_jobs`."""
        with self._lock:
            self.watchers = 0 if change is None else max(0, self.watchers + change)

    def _announce(self, old: Jobs) -> None:
        """Tell the observers of ``jobs`` (under the lock, so in order)."""
        owner = self._owner
        change = Bunch(name="jobs", old=old, new=self.jobs, owner=owner, type="change")
        try:
            owner.notify_change(change)
        except Exception:  # an observer raised: the change itself is done
            owner.log.exception("an observer of BackgroundJobService.jobs raised")


def names_jobs(names: Any) -> bool:
    """Whether ``names``, as given to ``observe``, include ``jobs``."""
    if names is All:
        return True
    if isinstance(names, str):
        return names == "jobs"
    return "jobs" in names or All in names
