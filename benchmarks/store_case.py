"""Case 8: reading a big job store. mashroom-jobs only: APScheduler 3 keeps no run history.

``runs`` runs of ``jobs`` jobs are recorded through the store's queue and writer
thread (the path every run takes), then a service opened on the file answers
``history()`` ``queries`` times: for one job, and for every job.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from datetime import datetime, timedelta, timezone
from typing import Any

from .cases import percentile


def history_cost(runs: int, jobs: int, queries: int = 200) -> dict[str, Any]:
    from mashroom_jobs import BackgroundJobService, JobInvocation, Outcome
    from mashroom_jobs.store import SQLiteStore

    folder = tempfile.mkdtemp(prefix="mashroom-jobs-bench-")
    path = os.path.join(folder, "store.sqlite")
    try:
        store = SQLiteStore(path, retention_runs=runs)
        start = datetime.now(timezone.utc) - timedelta(seconds=runs)
        output = "refreshed 1,234 prices from the feed in 0.4 s\n"
        t0 = time.perf_counter()
        for i in range(runs):
            when = start + timedelta(seconds=i)
            store.record(f"job-{i % jobs}", JobInvocation(
                timestamp=when, scheduled_for=when, trigger="schedule", execution_time_ms=12.5,
                outcome=Outcome.OK, output=output))
        record_s = time.perf_counter() - t0
        assert store.flush(600)
        write_s = time.perf_counter() - t0
        store.close()

        service = BackgroundJobService(store=path)
        try:
            assert len(service.history("job-7", limit=50)) == 50  # warm: the file's pages
            one = _timed(lambda: service.history("job-7", limit=50), queries)
            every = _timed(lambda: service.history(limit=50), queries)
            long = _timed(lambda: service.history("job-7", limit=1000), max(10, queries // 10))
            stored = len(service.history(limit=runs))
        finally:
            service.shutdown()
        size = sum(os.path.getsize(os.path.join(folder, f)) for f in os.listdir(folder))
        return {
            "runs": runs, "jobs": jobs, "stored": stored, "queries": queries,
            "record_us": record_s / runs * 1e6,
            "write_runs_per_s": runs / write_s,
            "history_one_p50_ms": percentile(one, 50), "history_one_p99_ms": percentile(one, 99),
            "history_all_p50_ms": percentile(every, 50),
            "history_all_p99_ms": percentile(every, 99),
            "history_1000_p50_ms": percentile(long, 50),
            "file_mb": size / 1e6,
        }
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _timed(call: Any, times: int) -> list[float]:
    """Milliseconds of each of ``times`` calls, ascending."""
    elapsed = []
    for _ in range(times):
        t0 = time.perf_counter()
        call()
        elapsed.append((time.perf_counter() - t0) * 1000.0)
    return sorted(elapsed)
