"""What 10,000 jobs cost the garbage collector: a bound on tracked objects per job.

Counts are deterministic where times are not: a full collection's time grows with the
objects it traverses (about 0.3 µs each here), so the bound keeps it near 20 ms at
10,000 jobs even with every job's history full, and nothing a run allocates may live
on (a run that left one object behind per job would mean 10,000 more per second).
"""

from __future__ import annotations

import gc

from mashroom_jobs import BackgroundJobService
from mashroom_jobs.testing import ManualClock

JOBS = 300
HISTORY = 20


def noop() -> None:
    pass


def _tracked() -> int:
    gc.collect()
    return len(gc.get_objects())


def test_a_job_with_a_full_history_costs_at_most_seven_tracked_objects() -> None:
    service = BackgroundJobService(clock=ManualClock(), timezone="UTC", history_size=HISTORY)
    try:
        service.schedule_job("warm-up", "0 0 * * *", noop).invoke_now().result(timeout=5)
        before = _tracked()
        jobs = [service.schedule_job(f"job-{i}", "0 0 * * *", noop) for i in range(JOBS)]
        scheduled = _tracked()
        for round_ in range(HISTORY):
            for job in jobs:
                job.invoke_now()
            assert service.wait_until_idle(10)
            if round_ == 0:  # the pool's threads and each job's metrics now exist
                after_one_run = _tracked()
        assert all(len(job.history) == HISTORY for job in jobs)
        with_history = _tracked()
        del jobs
    finally:
        service.shutdown()
    per_job = (scheduled - before) / JOBS
    # BackgroundJob, JobRuntime, its lock, JobSpec, TimerEntry, RunHistory
    assert per_job <= 7, per_job
    # the first run of each job: the pool's threads, nothing per job
    assert after_one_run - scheduled < 300, after_one_run - scheduled
    # 19 more runs per job added nothing the collector tracks: no per-run object lives on
    assert with_history - after_one_run < 30, with_history - after_one_run
