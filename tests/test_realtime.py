"""A few short tests on the real clock: the path that ManualClock replaces elsewhere."""

from __future__ import annotations

import threading
import time

import pytest

from mashroom_jobs import BackgroundJobService, Outcome

pytestmark = pytest.mark.realtime


def test_an_every_second_job_fires_about_once_per_second() -> None:
    service = BackgroundJobService()
    third_run = threading.Event()
    starts: list[float] = []

    def tick() -> None:
        starts.append(time.time())
        if len(starts) == 3:
            third_run.set()

    try:
        begin = time.time()
        job = service.schedule_job("every second", "* * * * * *", tick)
        assert third_run.wait(5)
        elapsed = time.time() - begin
        assert 2.0 < elapsed < 4.0
        lateness = [
            (inv.timestamp - inv.scheduled_for).total_seconds()
            for inv in job.history
            if inv.scheduled_for is not None
        ]
        assert len(lateness) >= 2
        assert all(0 <= late < 0.25 for late in lateness), lateness  # generous on a busy CI
        assert job.misfire_count == 0
    finally:
        service.shutdown()


def test_a_blocked_main_thread_does_not_stop_jobs() -> None:
    service = BackgroundJobService()
    runs = threading.Semaphore(0)
    try:
        service.schedule_job("every second", "* * * * * *", lambda: runs.release())
        deadline = time.monotonic() + 2.5
        while time.monotonic() < deadline:  # hold the GIL in pure Python, like a busy cell
            sum(range(1000))
        assert runs.acquire(timeout=1) and runs.acquire(timeout=1)
    finally:
        service.shutdown()


def test_interpreter_exit_does_not_hang_on_a_stuck_job() -> None:
    import subprocess
    import sys

    code = (
        "import threading, time\n"
        "from mashroom_jobs import BackgroundJobService\n"
        "s = BackgroundJobService()\n"
        "started = threading.Event()\n"
        "def stuck():\n"
        "    started.set(); time.sleep(600)\n"
        "s.schedule_job('stuck', None, stuck)\n"
        "assert started.wait(10)\n"
        "print('exiting')\n"
    )
    began = time.monotonic()
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "exiting\n"
    assert time.monotonic() - began < 30  # the stuck job would hold it for 600 s


def test_a_thread_ignoring_its_timeout_is_abandoned_after_the_grace_and_the_next_fire_runs(
) -> None:
    service = BackgroundJobService(stop_grace=0.3)
    never = threading.Event()
    calls: list[float] = []

    def hangs_once() -> None:
        calls.append(time.monotonic())
        if len(calls) == 1:
            never.wait(30)  # ignores every stop request

    try:
        job = service.schedule_job("hang", "* * * * * *", hangs_once, timeout=0.5)
        deadline = time.monotonic() + 6
        while time.monotonic() < deadline and job.run_count < 3:
            time.sleep(0.05)
        assert job.run_count >= 3, job.history
        # a fire that fell while the first run hung is a recorded skip, not a run
        first, *then = [r for r in job.history if r.outcome is not Outcome.SKIPPED]
        assert first.error_message == "timed out after 0.5 s"
        assert 0.75 <= first.execution_time_ms / 1000 < 2.0  # timeout + grace, then given up
        assert service.abandoned_runs == 1
        assert then and all(run.success for run in then)  # the schedule went on
    finally:
        never.set()
        service.shutdown()


def test_a_job_that_blocks_does_not_hold_up_the_others_due_in_the_same_second() -> None:
    service = BackgroundJobService()
    release = threading.Event()
    late: list[float] = []
    done = threading.Event()

    def quick() -> None:
        late.append(time.time() % 1.0)  # fire times are whole seconds
        if len(late) == 20:
            done.set()

    try:
        service.schedule_job("blocker", "* * * * * *", lambda: release.wait(5))
        for i in range(20):
            service.schedule_job(f"quick-{i}", "* * * * * *", quick)
        assert done.wait(5)
        assert max(late) < 0.5, late  # the first fire's 20 quick runs, none behind the blocker
    finally:
        release.set()
        service.shutdown()
