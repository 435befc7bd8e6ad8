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

import bisect
import itertools
import math
import threading
from collections.abc import Callable, Iterable
from typing import Any

from .core.records import JobInvocation

__all__ = ["DURATION_BUCKETS", "MetricsRecorder", "prometheus_collector"]

#: upper bounds (seconds) of the duration histogram; jobs run longer than web requests
DURATION_BUCKETS = (
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, math.inf,
)


class MetricsRecorder:
    """Counts the finished runs of a service's jobs.

    The service calls :meth:`record` once per finished run, on the thread that
    recorded it; fires that did not run here (elsewhere, skipped) are not counted.
    Each job's figures are one ``bytearray`` of doubles (successes, failures, the sum
    of seconds, then the bucket counts): nothing for the garbage collector to track
    (an ``array.array`` would be).
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        # job name -> [successes, failures, sum of seconds, *bucket counts (not cumulative)]
        self._figures: dict[str, bytearray] = {}

    def record(self, job: str, invocation: JobInvocation) -> None:
        """Count one finished run of ``job`` (a record of a fire that did not run here,
        elsewhere, skipped or missed, is not a run)."""
        if not invocation.outcome.ran:
            return
        seconds = invocation.execution_time_ms / 1000.0
        with self._lock:
            buffer = self._figures.get(job)
            if buffer is None:
                buffer = self._figures[job] = bytearray(8 * (3 + len(DURATION_BUCKETS)))
            with memoryview(buffer).cast("d") as figures:
                figures[0 if invocation.success else 1] += 1
                figures[2] += seconds
                figures[3 + bisect.bisect_left(DURATION_BUCKETS, seconds)] += 1

    def snapshot(self, failing: Iterable[bool]) -> dict[str, Any]:
        """The figures as plain data (see :meth:`BackgroundJobService.metrics`);
        ``failing`` says, for each scheduled job, whether its last run failed."""
        failing = list(failing)
        with self._lock:
            figures = {name: list(memoryview(buffer).cast("d"))
                       for name, buffer in sorted(self._figures.items())}
        invocations = {name: {"success": int(v[0]), "failure": int(v[1])}
                       for name, v in figures.items()}
        durations = {}
        for name, values in figures.items():
            cumulative = [int(c) for c in itertools.accumulate(values[3:])]
            durations[name] = {"bucket_counts": cumulative, "sum": values[2],
                               "count": cumulative[-1]}
        return {
            "mashroom_background_jobs_total": len(failing),
            "mashroom_background_jobs_failed": sum(failing),
            "mashroom_background_jobs_invocations_total": invocations,
            "mashroom_background_jobs_duration_seconds": {
                "buckets": list(DURATION_BUCKETS),
                "jobs": durations,
            },
        }


def prometheus_collector(service: Any) -> Any:
    """A ``prometheus_client`` collector reading ``service.metrics()`` at each scrape.

    Raises
    ------
    ImportError
        When ``prometheus-client`` is not installed (``pip install 'mashroom-jobs[metrics]'``).
    """
    from prometheus_client import utils
    from prometheus_client.core import (
        CounterMetricFamily,
        GaugeMetricFamily,
        HistogramMetricFamily,
    )

    # prometheus_client's utils are unannotated: the one function used here, typed
    go_float: Callable[[float], str] = utils.floatToGoString

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
            bounds = [go_float(b) for b in durations["buckets"]]
            for job, data in durations["jobs"].items():
                histogram.add_metric(
                    [job], list(zip(bounds, data["bucket_counts"])), sum_value=data["sum"]
                )
            yield histogram

        def describe(self) -> list[Any]:
            return []  # names are only known at scrape time: never checked at registration

    return _Collector()
