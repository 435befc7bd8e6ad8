"""Stop, timeout, retries and failure notifications, driven by a ManualClock."""

from __future__ import annotations

import asyncio
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone
from typing import Any

import pytest

from mashroom_jobs import (
    BackgroundJob,
    BackgroundJobService,
    JobInvocation,
    JobStopped,
    PluginContext,
)
from mashroom_jobs.testing import ManualClock, wait_for

UTC = timezone.utc


def step(clock: ManualClock, service: BackgroundJobService, seconds: float) -> None:
    clock.advance(seconds)
    assert service.wait_until_idle(timeout=5)


# --- stop and timeout ---------------------------------------------------------------------


def test_a_job_ignoring_its_timeout_is_recorded_as_timed_out_after_the_grace_and_abandoned(
    clock: ManualClock, service: BackgroundJobService
) -> None:
    release = threading.Event()
    flags: list[bool] = []
    calls = 0

    def stubborn(context: PluginContext) -> None:
        nonlocal calls
        calls += 1
        if calls == 1:  # the first run hangs, ignoring the stop flag
            release.wait(30)
            flags.append(context.stop_requested.is_set())
            print("too late")

    job = service.schedule_job("stubborn", "0 * * * *", stubborn, timeout=10)
    first = job.invoke_now()
    assert wait_for(lambda: job.running)
    clock.advance(10)  # the timeout: the run is asked to stop...
    assert not first.done()  # ...and has stop_grace (5 s) to end
    clock.advance(5)
    run = first.result(timeout=5)
    assert not run.success and run.error_message == "timed out after 10 s"
    assert run.execution_time_ms == pytest.approx(15_000)
    assert service.abandoned_runs == 1
    assert not job.running and job.failure_count == 1
    # its slot is free: the next fire runs, although overlap is "skip"
    clock.advance_to("2026-01-01T01:00:00+00:00")
    assert wait_for(lambda: job.run_count == 2)
    assert job.last_invocation is not None and job.last_invocation.success
    assert job.skip_count == 0
    release.set()  # the abandoned thread ends at last: what it did is dropped
    assert wait_for(lambda: flags == [True])
    time.sleep(0.1)
    assert job.run_count == 2 and all("too late" not in r.output for r in job.history)


def test_a_job_that_polls_its_stop_flag_ends_early_and_is_recorded_as_stopped(
    service: BackgroundJobService,
) -> None:
    def patient(context: PluginContext) -> None:
        while not context.stop_requested.wait(0.01):
            pass
        print("cleaned up")

    job = service.schedule_job("patient", "@daily", patient)
    future = job.invoke_now()
    assert wait_for(lambda: job.running)
    assert job.stop() == 1
    run = future.result(timeout=5)
    assert not run.success and run.error_message == "stopped"
    assert run.output == "cleaned up\n"  # it ended by itself: its output is kept
    assert service.abandoned_runs == 0 and not job.running


def test_check_stop_raises_job_stopped_in_a_run_asked_to_stop(
    service: BackgroundJobService,
) -> None:
    raised: list[str] = []

    def polite(context: PluginContext) -> None:
        try:
            while True:
                context.check_stop()
                time.sleep(0.005)
        except JobStopped as exc:
            raised.append(str(exc))
            raise

    job = service.schedule_job("polite", "@daily", polite)
    future = job.invoke_now()
    assert wait_for(lambda: job.running)
    job.stop()
    run = future.result(timeout=5)
    assert raised == ["stopped"]
    assert run.error_message == "stopped" and run.traceback is not None


def test_stopping_a_coroutine_job_cancels_its_task(service: BackgroundJobService) -> None:
    cancelled = threading.Event()

    async def sleeper() -> None:
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            cancelled.set()
            raise

    job = service.schedule_job("sleeper", "@daily", sleeper)
    future = job.invoke_now()
    assert wait_for(lambda: job.running)
    job.stop()
    run = future.result(timeout=5)  # at once: no grace needed
    assert cancelled.is_set()
    assert not run.success and run.error_message == "stopped"
    assert service.abandoned_runs == 0


def test_a_timeout_cancels_a_coroutine_job(
    clock: ManualClock, service: BackgroundJobService
) -> None:
    async def slow() -> None:
        await asyncio.sleep(60)

    job = service.schedule_job("slow", "@daily", slow, timeout=2.5)
    future = job.invoke_now()
    assert wait_for(lambda: job.running)
    clock.advance(2.5)
    run = future.result(timeout=5)
    assert run.error_message == "timed out after 2.5 s"


def test_a_run_stopped_while_queued_is_recorded_at_once_and_never_starts(
    clock: ManualClock,
) -> None:
    service = BackgroundJobService(clock=clock, timezone="UTC", max_workers=1)
    release = threading.Event()
    started: list[str] = []
    try:
        blocker = service.schedule_job("blocker", "@daily", lambda: release.wait(10))
        waiting = service.schedule_job("waiting", "@daily", lambda: started.append("ran"))
        blocker.invoke_now()
        assert wait_for(lambda: blocker.running)
        future = waiting.invoke_now()  # queued behind the blocker: the only worker is busy
        assert waiting.stop() == 1
        run = future.result(timeout=5)
        assert run.error_message == "stopped" and run.execution_time_ms == 0
        release.set()
        assert service.wait_until_idle(5)
        assert started == []
    finally:
        release.set()
        service.shutdown()


def test_a_run_waiting_in_a_user_executor_is_cancelled_through_its_future(
    service: BackgroundJobService,
) -> None:
    release = threading.Event()
    with ThreadPoolExecutor(max_workers=1) as pool:
        pool.submit(release.wait, 10)  # the executor's only thread is busy
        job = service.schedule_job("queued", "@daily", lambda: None, executor=pool)
        future = job.invoke_now()
        job.stop()
        run = future.result(timeout=5)
        release.set()
    assert not run.success and run.error_message == "stopped"


def test_stopping_a_job_that_is_not_running_does_nothing(
    service: BackgroundJobService,
) -> None:
    job = service.schedule_job("idle", "@daily", lambda: None)
    assert job.stop() == 0 and job.run_count == 0


# --- retries ---------------------------------------------------------------------------------


def failing() -> None:
    raise RuntimeError("down")


def test_a_failed_run_is_retried_after_retry_delay_with_its_attempt_number(
    clock: ManualClock, service: BackgroundJobService
) -> None:
    job = service.schedule_job("flaky", "0 * * * *", failing, retries=2, retry_delay=30)
    step(clock, service, 3600)
    for _ in range(3):
        step(clock, service, 30)
    runs = job.history
    assert [(r.trigger, r.attempt) for r in runs] == [
        ("schedule", 1), ("retry", 2), ("retry", 3)]
    fire = datetime(2026, 1, 1, 1, 0, tzinfo=UTC)
    assert all(r.scheduled_for == fire for r in runs)  # the attempts serve one fire
    assert [r.timestamp.second for r in runs] == [0, 30, 0]
    assert job.run_count == job.failure_count == 3


def test_retries_stop_at_the_first_success(
    clock: ManualClock, service: BackgroundJobService
) -> None:
    outcomes = iter([RuntimeError("once"), None, RuntimeError("never retried")])

    def once_then_fine() -> None:
        error = next(outcomes)
        if error is not None:
            raise error

    job = service.schedule_job("once", "0 * * * *", once_then_fine, retries=5, retry_delay=10)
    step(clock, service, 3600)
    step(clock, service, 10)
    step(clock, service, 60)
    assert [(r.trigger, r.success) for r in job.history] == [
        ("schedule", False), ("retry", True)]


def test_a_retry_that_would_come_after_the_next_fire_is_dropped_the_fire_wins(
    clock: ManualClock, service: BackgroundJobService
) -> None:
    heard: list[int] = []
    service.on_failure(lambda job, run: heard.append(run.attempt))
    job = service.schedule_job("minutely", "* * * * *", failing, retries=3, retry_delay=90)
    step(clock, service, 60)  # fails; a retry 90 s later would come after the next fire
    assert job.skip_count == 1
    step(clock, service, 60)  # the next fire runs (and fails: the same again)
    step(clock, service, 90)  # one more fire at 00:03; no retry ran in between
    assert [(r.trigger, r.attempt) for r in job.history] == [("schedule", 1)] * 3
    assert job.skip_count == 3
    assert wait_for(lambda: heard == [1, 1, 1])  # each fire's failure was final: announced


def test_a_fire_drops_a_pending_retry_when_the_clock_jumps_past_both(
    clock: ManualClock, service: BackgroundJobService
) -> None:
    job = service.schedule_job("hourly", "0 * * * *", failing, retries=1, retry_delay=600)
    step(clock, service, 3600)  # 01:00 fails; the retry is due at 01:10
    clock.jump(3600)  # the wall clock steps to 02:00 at once (an NTP step, a suspend)
    step(clock, service, 1)  # the 02:00 fire wins; its failure schedules a retry of its own
    step(clock, service, 600)
    assert [(r.trigger, r.scheduled_for.hour) for r in job.history] == [
        ("schedule", 1), ("schedule", 2), ("retry", 2)]
    assert job.skip_count == 1


def test_manual_runs_and_runs_stopped_by_the_user_are_not_retried(
    clock: ManualClock, service: BackgroundJobService
) -> None:
    job = service.schedule_job("manual", "0 * * * *", failing, retries=2, retry_delay=1)
    job.invoke_now().result(timeout=5)
    step(clock, service, 5)
    assert [r.trigger for r in job.history] == ["manual"]

    def waits(context: PluginContext) -> None:
        context.stop_requested.wait(10)

    stopped = service.schedule_job("stopped", "0 * * * *", waits, retries=2, retry_delay=1)
    future = stopped.invoke_now()
    assert wait_for(lambda: stopped.running)
    stopped.stop()
    future.result(timeout=5)
    step(clock, service, 5)
    assert [r.trigger for r in stopped.history] == ["manual"]


def test_a_timed_out_scheduled_run_is_retried(
    clock: ManualClock, service: BackgroundJobService
) -> None:
    def slow(context: PluginContext) -> None:
        context.stop_requested.wait(10)

    job = service.schedule_job("slow", "0 * * * *", slow, timeout=5, retries=1, retry_delay=1)
    clock.advance(3600)
    assert wait_for(lambda: job.running)
    clock.advance(5)
    assert wait_for(lambda: job.failure_count == 1)
    clock.advance(1)
    assert wait_for(lambda: job.running)
    clock.advance(5)
    assert service.wait_until_idle(5)
    assert [(r.trigger, r.error_message) for r in job.history] == [
        ("schedule", "timed out after 5 s"), ("retry", "timed out after 5 s")]


# --- failure notifications --------------------------------------------------------------------


def test_on_failure_is_called_once_per_failed_fire_off_the_timer_thread(
    clock: ManualClock, service: BackgroundJobService
) -> None:
    heard: list[tuple[str, int, str]] = []
    done = threading.Event()

    def on_failure(job: BackgroundJob, run: JobInvocation) -> None:
        heard.append((job.name, run.attempt, threading.current_thread().name))
        done.set()

    remove = service.on_failure(on_failure)
    traits: list[Any] = []
    service.observe(lambda change: traits.append(change.new), names="last_failure")
    service.schedule_job("ok", "0 * * * *", lambda: None)
    job = service.schedule_job("flaky", "0 * * * *", failing, retries=1, retry_delay=10)
    step(clock, service, 3600)
    assert heard == []  # a retry follows: not the fire's last word
    step(clock, service, 10)
    assert done.wait(5)
    assert heard == [("flaky", 2, "mashroom-jobs-notify-0")]
    assert wait_for(lambda: len(traits) == 1)
    assert traits[0][0] is job and traits[0][1].attempt == 2
    remove()
    job.invoke_now().result(timeout=5)
    time.sleep(0.1)
    assert len(heard) == 1 and len(traits) == 2


def test_a_run_the_user_stopped_is_not_announced_as_a_failure_but_a_timeout_is(
    clock: ManualClock, service: BackgroundJobService
) -> None:
    heard: list[str | None] = []
    service.on_failure(lambda job, run: heard.append(run.error_message))

    def waits(context: PluginContext) -> None:
        context.stop_requested.wait(10)

    job = service.schedule_job("waits", "0 * * * *", waits, timeout=5)
    future = job.invoke_now()
    assert wait_for(lambda: job.running)
    job.stop()
    assert future.result(timeout=5).error_message == "stopped"
    future = job.invoke_now()
    assert wait_for(lambda: job.running)
    clock.advance(5)
    assert future.result(timeout=5).error_message == "timed out after 5 s"
    assert wait_for(lambda: heard == ["timed out after 5 s"])
    time.sleep(0.05)
    assert heard == ["timed out after 5 s"]


def test_a_failure_callback_that_raises_is_logged_and_the_others_still_run(
    service: BackgroundJobService, caplog: pytest.LogCaptureFixture
) -> None:
    heard: list[str] = []

    def broken(job: BackgroundJob, run: JobInvocation) -> None:
        raise ValueError("callback bug")

    service.on_failure(broken)
    service.on_failure(lambda job, run: heard.append(job.name))
    service.schedule_job("f", "@daily", failing).invoke_now().result(timeout=5)
    assert wait_for(lambda: heard == ["f"])
    assert any("a failure callback of job 'f' raised" in r.getMessage() for r in caplog.records)


# --- arguments ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"timeout": 0}, ValueError, "timeout must be at least 0.001 seconds, got 0"),
        ({"timeout": "5"}, TypeError, "timeout must be a number of seconds, got '5'"),
        ({"timeout": float("inf")}, TypeError, "timeout must be a number of seconds, got inf"),
        ({"retries": -1}, ValueError, "retries must be a whole number >= 0, got -1"),
        ({"retries": True}, ValueError, "retries must be a whole number >= 0, got True"),
        ({"retry_delay": -1}, ValueError, "retry_delay must be at least 0 seconds, got -1"),
    ],
    ids=["zero-timeout", "text-timeout", "infinite-timeout", "negative-retries", "bool-retries",
         "negative-delay"],
)
def test_bad_stop_and_retry_arguments_are_refused_naming_the_argument(
    service: BackgroundJobService, kwargs: dict[str, Any], error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message):
        service.schedule_job("j", "@daily", lambda: None, **kwargs)
    assert service.jobs == ()
