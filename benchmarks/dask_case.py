"""Case 7: jobs on a Dask cluster, beside the same work submitted straight to Dask.

One process starts a ``LocalCluster(n_workers=2, processes=True)`` and measures,
on that cluster and alternating (``rounds`` times, the order flipped each round):

* **raw Dask**: at each whole second of the window, ``client.submit`` of ``n``
  trivial tasks (keys unique), as a user would without a scheduler;
* **mashroom-jobs, the same work**: ``n`` jobs on ``* * * * * *`` with
  ``executor=client`` and ``overlap="allow"``: every fire is sent, however late;
* **mashroom-jobs, the defaults**: the same with ``overlap="skip"``: a fire while the
  job's previous run is still on the cluster is skipped (counted as lost here).

Lateness = the task's start on the worker (``time.time()`` there: same machine, same
clock) minus the fire time it serves; for mashroom-jobs the start its worker
reports in the run's JobInvocation.  Fires lost = ``n`` × window minus the fires
that ran.  Note that the scheduler of a LocalCluster runs in this process, so both
pay for it alike.
"""

from __future__ import annotations

import importlib
import math
import time
from typing import Any

from .cases import EVERY_SECOND, percentile, sleep_until


def stamp() -> float:
    """The raw task: when it started, on the worker."""
    return time.time()


def noop() -> None:
    """The job: nothing (its start is what the worker reports)."""


def _figures(late_s: list[float], expected: int, ran: int) -> dict[str, Any]:
    late = sorted(x * 1000.0 for x in late_s)
    return {"p50_ms": percentile(late, 50), "p99_ms": percentile(late, 99),
            "max_ms": late[-1] if late else math.nan, "expected": expected,
            "missed": expected - ran}


def raw(client: Any, n: int, window: int, grace: float) -> dict[str, Any]:
    first = math.ceil(time.time()) + 1
    batches: list[tuple[float, list[Any]]] = []
    for k in range(window):
        fire = first + k
        sleep_until(fire)
        batches.append((fire, [client.submit(stamp, key=f"raw-{fire}-{i}", pure=False)
                               for i in range(n)]))
    late: list[float] = []
    for fire, futures in batches:
        late += [start - fire for start in client.gather(futures)]
        del futures[:]
    sleep_until(first + window - 1 + grace)
    return _figures(late, n * window, len(late))


def ours(client: Any, n: int, window: int, grace: float, overlap: str) -> dict[str, Any]:
    from mashroom_jobs import BackgroundJobService

    service = BackgroundJobService(timezone="UTC")
    jobs = [service.schedule_job(f"job-{i}", EVERY_SECOND, noop, executor=client,
                                 overlap=overlap)  # type: ignore[arg-type]
            for i in range(n)]
    for job in jobs:  # as for raw Dask, the window's first fire is the first
        job.pause()
    service.wait_until_idle(30)
    first = math.ceil(time.time()) + 1
    sleep_until(first - 0.5)
    for job in jobs:
        job.resume()
    sleep_until(first + window - 1 + grace)
    for job in jobs:
        job.pause()
    service.wait_until_idle(30)
    wanted = set(range(first, first + window))
    late: list[float] = []
    for job in jobs:
        for run in job.history:
            served = run.scheduled_for
            if (run.success and not run.elsewhere and served is not None
                    and int(served.timestamp()) in wanted):
                late.append(run.timestamp.timestamp() - served.timestamp())
    figures = _figures(late, n * window, len(late))
    figures["skipped"] = sum(job.skip_count for job in jobs)
    figures["failed"] = sum(job.failure_count for job in jobs)
    service.shutdown(wait=True, timeout=10)
    return figures


def dask_vs_raw(n: int, window: int, rounds: int = 1, grace: float = 2.0) -> dict[str, Any]:
    """Both ways on one cluster, ``rounds`` times, alternating; every round's figures."""
    try:
        from distributed import Client, LocalCluster
    except ImportError as exc:
        return {"available": False, "reason": f"distributed not installed: {exc}"}
    t0 = time.perf_counter()
    with LocalCluster(n_workers=2, threads_per_worker=2, processes=True,
                      dashboard_address=":0") as cluster, \
            Client(cluster, set_as_default=False) as client:
        # every worker up, with what both ways import already imported
        client.run(importlib.import_module, "benchmarks.dask_case")
        client.run(importlib.import_module, "mashroom_jobs.dask_bridge")
        startup_s = time.perf_counter() - t0
        results: dict[str, list[dict[str, Any]]] = {"allow": [], "raw": [], "skip": []}
        order = list(results)
        for _ in range(rounds):
            for which in order:
                if which == "raw":
                    results[which].append(raw(client, n, window, grace))
                else:
                    results[which].append(ours(client, n, window, grace, which))
                time.sleep(0.5)  # let the cluster forget the last tasks
            order.reverse()
    return {"available": True, "n": n, "window_s": window, "rounds": rounds,
            "cluster_startup_s": startup_s, **results}
