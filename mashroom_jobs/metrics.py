"""The figures Mashroom's background-jobs plugin exports, for one service.

* ``mashroom_background_jobs_total`` (gauge): the scheduled jobs;
* ``mashroom_background_jobs_failed`` (gauge): scheduled jobs whose last run failed;
* ``mashroom_background_jobs_invocations_total`` (counter): finished runs by job and
  outcome (``success``/``failure``);
* ``mashroom_background_jobs_duration_seconds`` (histogram): run durations by job.

:meth:`BackgroundJobService.metrics` returns them as a dict; :func:`prometheus_collector`
exposes the same dict through ``prometheus-client`` (imported only there).
Counters survive a job's replacement or removal, as Prometheus counters must.
"""

from __future__ import annotations

import math
import threading
import weakref
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .job import BackgroundJob
    from .service import BackgroundJobService

__all__ = ["DURATION_BUCKETS", "MetricsRecorder", "prometheus_collector"]

#: upper bounds (seconds) of the duration histogram; jobs run longer than web requests
DURATION_BUCKETS = (
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, math.inf,
)


class MetricsRecorder:
    """Counts the finished runs of a service's jobs.

    It observes ``run_count`` of each job (set with ``last_invocation`` in one
    held notification, under the job's lock), so it sees every run exactly
    once, on the thread that finished it.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._tracked: weakref.WeakSet[BackgroundJob] = weakref.WeakSet()
        # job name -> [successes, failures]
        self._outcomes: dict[str, list[int]] = {}
        # job name -> (bucket counts (not cumulative), sum of seconds)
        self._durations: dict[str, tuple[list[int], list[float]]] = {}

    def track(self, old: tuple[BackgroundJob, ...], new: tuple[BackgroundJob, ...]) -> None:
        """Start observing the jobs in ``new`` that were not in ``old``.

        Called on every change of ``service.jobs``, so it must not cost O(jobs) in
        Python per call: the service appends a new job or puts it in its
        predecessor's place, and only those places are looked at.
        """
        if len(new) > len(old) and (not old or new[len(old) - 1] is old[-1]):
            candidates: Iterable[BackgroundJob] = new[len(old):]
        elif len(new) == len(old):
            candidates = [n for n, o in zip(new, old) if n is not o]
        elif len(new) < len(old):
            return  # removals only
        else:
            candidates = new
        for job in candidates:
            if job in self._tracked:
                continue
            self._tracked.add(job)
            job.observe(self._on_run, names="run_count")

    def _on_run(self, change: Any) -> None:
        job = change.owner
        invocation = job.last_invocation
        if invocation is None or change.new <= change.old:
            return
        seconds = invocation.execution_time_ms / 1000.0
        with self._lock:
            outcomes = self._outcomes.setdefault(job.name, [0, 0])
            outcomes[0 if invocation.success else 1] += 1
            counts, total = self._durations.setdefault(
                job.name, ([0] * len(DURATION_BUCKETS), [0.0])
            )
            for index, bound in enumerate(DURATION_BUCKETS):
                if seconds <= bound:
                    counts[index] += 1
                    break
            total[0] += seconds

    def snapshot(self, jobs: tuple[BackgroundJob, ...]) -> dict[str, Any]:
        """The figures as plain data (see :meth:`BackgroundJobService.metrics`)."""
        failed = sum(
            1 for job in jobs
            if job.last_invocation is not None and not job.last_invocation.success
        )
        with self._lock:
            invocations = {
                name: {"success": counts[0], "failure": counts[1]}
                for name, counts in sorted(self._outcomes.items())
            }
            durations = {}
            for name, (counts, total) in sorted(self._durations.items()):
                cumulative, running = [], 0
                for count in counts:
                    running += count
                    cumulative.append(running)
                durations[name] = {
                    "bucket_counts": cumulative, "sum": total[0], "count": running,
                }
        return {
            "mashroom_background_jobs_total": len(jobs),
            "mashroom_background_jobs_failed": failed,
            "mashroom_background_jobs_invocations_total": invocations,
            "mashroom_background_jobs_duration_seconds": {
                "buckets": list(DURATION_BUCKETS),
                "jobs": durations,
            },
        }


def prometheus_collector(service: BackgroundJobService) -> Any:
    """A ``prometheus_client`` collector reading ``service.metrics()`` at each scrape.

    Raises
    ------
    ImportError
        When ``prometheus-client`` is not installed (``pip install 'mashroom-jobs[metrics]'``).
    """
    from prometheus_client.core import (
        CounterMetricFamily,
        GaugeMetricFamily,
        HistogramMetricFamily,
    )
    from prometheus_client.utils import floatToGoString

    class _Collector:
        def collect(self) -> Any:
            figures = service.metrics()
            yield GaugeMetricFamily(
                "mashroom_background_jobs_total", "Number of scheduled background jobs",
                value=figures["mashroom_background_jobs_total"],
            )
            yield GaugeMetricFamily(
                "mashroom_background_jobs_failed",
                "Number of background jobs whose last run failed",
                value=figures["mashroom_background_jobs_failed"],
            )
            counter = CounterMetricFamily(
                "mashroom_background_jobs_invocations", "Finished background job runs",
                labels=["job", "outcome"],
            )
            for job, outcomes in figures["mashroom_background_jobs_invocations_total"].items():
                for outcome, count in outcomes.items():
                    counter.add_metric([job, outcome], count)
            yield counter
            histogram = HistogramMetricFamily(
                "mashroom_background_jobs_duration_seconds",
                "Duration of background job runs", labels=["job"],
            )
            durations = figures["mashroom_background_jobs_duration_seconds"]
            bounds = [floatToGoString(b) for b in durations["buckets"]]
            for job, data in durations["jobs"].items():
                histogram.add_metric(
                    [job], list(zip(bounds, data["bucket_counts"])), sum_value=data["sum"]
                )
            yield histogram

        def describe(self) -> list[Any]:
            return []  # names are only known at scrape time: never checked at registration

    return _Collector()
