"""BackgroundJobService and BackgroundJob, driven by a ManualClock."""

from __future__ import annotations

import asyncio
import sys
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import datetime, timezone
from typing import Any

import pytest
from traitlets import TraitError

from mashroom_jobs import (
    BackgroundJob,
    BackgroundJobService,
    InvalidCronExpressionError,
    InvalidTimezoneError,
    JobInvocation,
    JobNotScheduledError,
    PluginContext,
    ServiceShutdownError,
)
from mashroom_jobs.testing import ManualClock

UTC = timezone.utc


def step(clock: ManualClock, service: BackgroundJobService, seconds: float, times: int = 1) -> None:
    """Advance one fire interval at a time, letting each run finish."""
    for _ in range(times):
        clock.advance(seconds)
        assert service.wait_until_idle(timeout=5)


# --- scheduling -------------------------------------------------------------------------


def test_a_job_fires_at_each_fire_time(clock: ManualClock, service: BackgroundJobService) -> None:
    runs: list[int] = []
    job = service.schedule_job("Test Job", "0/5 * * * *", lambda: runs.append(1))
    assert job.next_invocation == datetime(2026, 1, 1, 0, 5, tzinfo=UTC)
    step(clock, service, 299)
    assert runs == []
    step(clock, service, 1)
    assert runs == [1]
    step(clock, service, 300, times=3)
    assert len(runs) == 4
    assert job.run_count == 4
    assert job.next_invocation == datetime(2026, 1, 1, 0, 25, tzinfo=UTC)


def test_each_invocation_records_the_fire_time_it_served(
    clock: ManualClock, service: BackgroundJobService
) -> None:
    job = service.schedule_job("tick", "* * * * *", lambda: None)
    step(clock, service, 60, times=2)
    last = job.last_invocation
    assert isinstance(last, JobInvocation)
    assert last.trigger == "schedule"
    assert last.scheduled_for == datetime(2026, 1, 1, 0, 2, tzinfo=UTC)
    assert last.timestamp == datetime(2026, 1, 1, 0, 2, tzinfo=UTC)
    assert last.success and last.error_message is None and last.traceback is None
    assert [i.scheduled_for.minute for i in job.history if i.scheduled_for] == [1, 2]


def test_jobs_are_listed_in_scheduling_order_and_found_by_name(
    service: BackgroundJobService,
) -> None:
    a = service.schedule_job("a", "* * * * *", lambda: None)
    b = service.schedule_job("b", "* * * * *", lambda: None)
    assert service.jobs == (a, b)
    assert service.get_job("b") is b
    assert service.get_job("nope") is None


def test_observers_of_jobs_see_every_change(service: BackgroundJobService) -> None:
    seen: list[tuple[str, ...]] = []
    service.observe(lambda change: seen.append(tuple(j.name for j in change.new)), names="jobs")
    service.schedule_job("a", "* * * * *", lambda: None)
    service.schedule_job("b", "* * * * *", lambda: None)
    service.unschedule_job("a")
    assert seen == [("a",), ("a", "b"), ("b",)]


def test_unscheduling_an_unknown_name_does_nothing(service: BackgroundJobService) -> None:
    service.schedule_job("a", "* * * * *", lambda: None)
    service.unschedule_job("unknown")
    assert [j.name for j in service.jobs] == ["a"]


def test_an_unscheduled_job_fires_no_more(
    clock: ManualClock, service: BackgroundJobService
) -> None:
    runs: list[int] = []
    job = service.schedule_job("a", "* * * * *", lambda: runs.append(1))
    step(clock, service, 60)
    service.unschedule_job("a")
    step(clock, service, 60, times=3)
    assert runs == [1]
    assert not job.active and job.next_invocation is None
    assert service.timer_entries() == 0


def test_scheduling_an_existing_name_replaces_the_job_in_place(
    clock: ManualClock, service: BackgroundJobService
) -> None:
    calls: list[str] = []
    service.schedule_job("first", "* * * * *", lambda: None)
    old = service.schedule_job("x", "* * * * *", lambda: calls.append("old"))
    service.schedule_job("last", "* * * * *", lambda: None)
    new = service.schedule_job("x", "*/2 * * * *", lambda: calls.append("new"))
    assert [j.name for j in service.jobs] == ["first", "x", "last"]
    assert service.jobs[1] is new and not old.active
    step(clock, service, 60, times=2)
    assert calls == ["new"]


def test_an_invalid_replacement_leaves_the_existing_job_untouched(
    clock: ManualClock, service: BackgroundJobService
) -> None:
    runs: list[int] = []
    job = service.schedule_job("x", "* * * * *", lambda: runs.append(1))
    with pytest.raises(InvalidCronExpressionError, match="minute 61"):
        service.schedule_job("x", "61 * * * *", lambda: None)
    with pytest.raises(InvalidTimezoneError):
        service.schedule_job("x", "* * * * *", lambda: None, timezone="Nowhere/Land")
    with pytest.raises(TypeError):
        service.schedule_job("x", "* * * * *", "not callable")  # type: ignore[arg-type]
    assert service.get_job("x") is job and job.active
    step(clock, service, 60)
    assert runs == [1]


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"name": ""}, ValueError, "name must be a non-empty string"),
        ({"name": "   "}, ValueError, "name must be a non-empty string"),
        ({"name": 5}, TypeError, "name must be a string"),
        ({"callback": None}, TypeError, "callback must be callable"),
        ({"callback": lambda a, b: None}, TypeError, "PluginContext as its only required argument"),
        ({"overlap": "queue"}, ValueError, "overlap must be one of"),
        ({"executor": object()}, TypeError, "executor must be a concurrent.futures.Executor"),
        ({"cron_schedule": 5}, InvalidCronExpressionError,
         "expected a string, a CronSchedule or None"),
    ],
    ids=["empty-name", "blank-name", "int-name", "no-callback", "two-args", "overlap",
         "executor", "int-cron"],
)
def test_bad_arguments_raise_errors_naming_the_argument(
    service: BackgroundJobService, kwargs: dict[str, Any], error: type[Exception], message: str
) -> None:
    args: dict[str, Any] = {"name": "job", "cron_schedule": "* * * * *", "callback": lambda: None}
    args.update(kwargs)
    with pytest.raises(error, match=message):
        service.schedule_job(args.pop("name"), args.pop("cron_schedule"), args.pop("callback"),
                             **args)
    assert service.jobs == ()


# --- run once / immediately / manual ----------------------------------------------------


@pytest.mark.parametrize("cron", [None, ""])  # blanks are an invalid expression (issue 25)
def test_a_job_without_schedule_runs_once_right_away_and_stays_listed(
    clock: ManualClock, service: BackgroundJobService, cron: str | None
) -> None:
    runs: list[int] = []
    job = service.schedule_job("once", cron, lambda: runs.append(1))
    assert service.wait_until_idle(5)
    step(clock, service, 3600)
    assert runs == [1]
    assert job.cron_schedule is None and job.next_invocation is None
    assert job.last_invocation is not None and job.last_invocation.trigger == "immediate"
    assert service.jobs == (job,)


def test_invoke_immediately_runs_once_now_and_then_on_schedule(
    clock: ManualClock, service: BackgroundJobService
) -> None:
    job = service.schedule_job("j", "0 * * * *", lambda: None, invoke_immediately=True)
    assert service.wait_until_idle(5)
    assert job.run_count == 1 and job.history[0].trigger == "immediate"
    step(clock, service, 3600)
    assert [i.trigger for i in job.history] == ["immediate", "schedule"]


def test_invoke_now_returns_a_future_resolving_with_the_invocation(
    service: BackgroundJobService,
) -> None:
    job = service.schedule_job("j", "0 * * * *", lambda: 42)
    future = job.invoke_now()
    assert isinstance(future, Future)
    invocation = future.result(timeout=5)
    assert invocation.trigger == "manual" and invocation.scheduled_for is None
    assert invocation.success and job.last_invocation == invocation


# --- callbacks ------------------------------------------------------------------------


def test_a_callback_taking_one_argument_gets_the_plugin_context(
    service: BackgroundJobService,
) -> None:
    received: list[PluginContext] = []
    job = service.schedule_job("ctx", "0 * * * *", received.append)
    job.invoke_now().result(5)
    (context,) = received
    assert context.services.background_jobs is service
    assert context.shell is None
    assert context.logger_factory("my.job").name == "my.job"


def test_a_coroutine_callback_runs_on_the_services_event_loop(
    service: BackgroundJobService,
) -> None:
    threads: list[str] = []

    async def job_body(context: PluginContext) -> None:
        await asyncio.sleep(0)
        threads.append(threading.current_thread().name)
        print("from a coroutine")

    job = service.schedule_job("async", "0 * * * *", job_body)
    invocation = job.invoke_now().result(5)
    assert invocation.success and invocation.output == "from a coroutine\n"
    assert threads == ["mashroom-jobs-asyncio"]


def test_a_failing_coroutine_is_recorded(service: BackgroundJobService) -> None:
    async def boom() -> None:
        raise RuntimeError("async boom")

    job = service.schedule_job("a", None, boom)
    assert service.wait_until_idle(5)
    assert job.last_invocation is not None
    assert job.last_invocation.error_message == "RuntimeError: async boom"


def test_jobs_never_run_on_the_calling_or_timer_thread(
    clock: ManualClock, service: BackgroundJobService
) -> None:
    threads: list[str] = []
    service.schedule_job("t", "* * * * *", lambda: threads.append(threading.current_thread().name),
                         invoke_immediately=True)
    step(clock, service, 60)
    assert len(threads) == 2
    assert all(name.startswith("mashroom-jobs-worker") for name in threads)


def test_a_custom_executor_runs_the_job(service: BackgroundJobService) -> None:
    with ThreadPoolExecutor(1, thread_name_prefix="custom") as pool:
        names: list[str] = []
        job = service.schedule_job("c", "0 * * * *",
                                   lambda: names.append(threading.current_thread().name),
                                   executor=pool)
        job.invoke_now().result(5)
    assert names[0].startswith("custom")


def test_an_executor_that_refuses_work_is_recorded_as_a_failed_run(
    service: BackgroundJobService,
) -> None:
    pool = ThreadPoolExecutor(1)
    pool.shutdown()
    job = service.schedule_job("c", "0 * * * *", lambda: None, executor=pool)
    invocation = job.invoke_now().result(5)
    assert not invocation.success
    assert invocation.error_message is not None
    assert invocation.error_message.startswith("could not start: RuntimeError")
    assert service.wait_until_idle(1)


# --- failures ---------------------------------------------------------------------------


def test_a_failing_job_is_recorded_and_keeps_its_schedule(
    clock: ManualClock, service: BackgroundJobService
) -> None:
    def fail() -> None:
        print("about to fail")
        raise ValueError("bad data")

    job = service.schedule_job("f", "* * * * *", fail)
    ok = service.schedule_job("ok", "* * * * *", lambda: None)
    step(clock, service, 60, times=2)
    last = job.last_invocation
    assert last is not None and not last.success
    assert last.error_message == "ValueError: bad data"
    assert last.traceback is not None and "raise ValueError" in last.traceback
    assert last.output == "about to fail\n"
    assert job.failure_count == 2 and job.run_count == 2
    assert job.next_invocation == datetime(2026, 1, 1, 0, 3, tzinfo=UTC)
    assert ok.run_count == 2 and ok.failure_count == 0


def test_even_system_exit_in_a_job_is_only_recorded(service: BackgroundJobService) -> None:
    job = service.schedule_job("exit", "0 * * * *", lambda: sys.exit(3))
    invocation = job.invoke_now().result(5)
    assert invocation.error_message == "SystemExit: 3"
    assert job.invoke_now().result(5).error_message == "SystemExit: 3"


def test_an_observer_that_raises_does_not_harm_the_scheduler(
    clock: ManualClock, service: BackgroundJobService
) -> None:
    job = service.schedule_job("j", "* * * * *", lambda: None)

    def bad_observer(change: Any) -> None:
        raise RuntimeError("observer bug")

    job.observe(bad_observer, names="run_count")
    step(clock, service, 60, times=2)
    assert job.run_count == 2


# --- output -------------------------------------------------------------------------------


def test_what_a_job_prints_goes_to_its_invocation_not_to_stdout(
    service: BackgroundJobService, capsys: pytest.CaptureFixture[str]
) -> None:
    def noisy() -> None:
        print("to stdout")
        print("to stderr", file=sys.stderr)

    job = service.schedule_job("noisy", "0 * * * *", noisy)
    print("cell output")
    invocation = job.invoke_now().result(5)
    assert invocation.output == "to stdout\nto stderr\n"
    captured = capsys.readouterr()
    assert captured.out == "cell output\n"
    assert "to stdout" not in captured.out and "to stderr" not in captured.err


def test_output_of_concurrent_jobs_does_not_mix(service: BackgroundJobService) -> None:
    barrier = threading.Barrier(2, timeout=5)

    def job_body(name: str) -> Any:
        def body() -> None:
            for i in range(50):
                print(f"{name}{i}")
                if i == 25:
                    barrier.wait()
        return body

    a = service.schedule_job("a", "0 * * * *", job_body("a"))
    b = service.schedule_job("b", "0 * * * *", job_body("b"))
    fa, fb = a.invoke_now(), b.invoke_now()
    assert fa.result(5).output == "".join(f"a{i}\n" for i in range(50))
    assert fb.result(5).output == "".join(f"b{i}\n" for i in range(50))


def test_huge_output_is_truncated_and_says_so(service: BackgroundJobService) -> None:
    job = service.schedule_job("big", "0 * * * *", lambda: print("x" * 250_000))
    output = job.invoke_now().result(5).output
    assert len(output) < 101_000
    assert "[output truncated: 150001 more characters]" in output


# --- overlap, misfires, clock jumps --------------------------------------------------------


def test_a_fire_during_a_running_run_is_skipped_and_counted(
    clock: ManualClock, service: BackgroundJobService
) -> None:
    release = threading.Event()
    started = threading.Event()

    def slow() -> None:
        started.set()
        release.wait(5)

    job = service.schedule_job("slow", "* * * * *", slow)
    clock.advance(60)
    assert started.wait(5)
    clock.advance(60)
    clock.advance(60)
    assert job.running and job.skip_count == 2
    release.set()
    assert service.wait_until_idle(5)
    assert job.run_count == 1 and not job.running


def test_overlap_allow_runs_in_parallel(clock: ManualClock, service: BackgroundJobService) -> None:
    release = threading.Event()
    running = threading.Semaphore(0)

    def slow() -> None:
        running.release()
        release.wait(5)

    job = service.schedule_job("slow", "* * * * *", slow, overlap="allow")
    clock.advance(60)
    clock.advance(60)
    assert running.acquire(timeout=5) and running.acquire(timeout=5)
    assert job.skip_count == 0 and job.running
    release.set()
    assert service.wait_until_idle(5)
    assert job.run_count == 2


def test_missed_fires_are_coalesced_into_one_run(
    clock: ManualClock, service: BackgroundJobService
) -> None:
    job = service.schedule_job("m", "* * * * *", lambda: None)
    clock.advance(600)  # asleep for ten fire times
    assert service.wait_until_idle(5)
    assert job.run_count == 1 and job.misfire_count == 1
    assert job.last_invocation is not None
    assert job.last_invocation.scheduled_for == datetime(2026, 1, 1, 0, 1, tzinfo=UTC)
    assert job.next_invocation == datetime(2026, 1, 1, 0, 11, tzinfo=UTC)


def test_a_wall_clock_jump_forward_is_noticed_within_the_timers_max_sleep(
    clock: ManualClock, service: BackgroundJobService
) -> None:
    job = service.schedule_job("h", "0 * * * *", lambda: None)
    clock.jump(7200)  # the wall clock steps two hours; nobody is woken
    assert job.run_count == 0
    step(clock, service, 60)  # the timer wakes at most every 60 s and sees it
    assert job.run_count == 1 and job.misfire_count == 1
    assert job.next_invocation == datetime(2026, 1, 1, 3, 0, tzinfo=UTC)


def test_a_wall_clock_jump_backwards_reschedules_from_the_new_now(
    clock: ManualClock, service: BackgroundJobService
) -> None:
    step(clock, service, 3 * 3600)  # 03:00
    job = service.schedule_job("h", "0 * * * *", lambda: None)
    assert job.next_invocation == datetime(2026, 1, 1, 4, 0, tzinfo=UTC)
    clock.jump(-2 * 3600 - 1800)  # wall clock back to 00:30
    step(clock, service, 60)  # noticed at the next wake-up
    assert job.next_invocation == datetime(2026, 1, 1, 1, 0, tzinfo=UTC)
    step(clock, service, 29 * 60)
    assert job.run_count == 1


def test_the_timer_does_not_wake_when_nothing_is_due(
    clock: ManualClock, service: BackgroundJobService
) -> None:
    for i in range(1000):
        service.schedule_job(f"hourly {i}", "0 * * * *", lambda: None)
    before = service._runner.timer.wakeups
    clock.advance(30)
    clock.advance(25)
    assert service._runner.timer.wakeups - before <= 2  # the settle wake-ups only: nothing ran
    assert all(j.run_count == 0 for j in service.jobs)


# --- pause / resume ------------------------------------------------------------------------


def test_pause_stops_firing_and_resume_continues_from_now(
    clock: ManualClock, service: BackgroundJobService
) -> None:
    job = service.schedule_job("p", "* * * * *", lambda: None)
    step(clock, service, 60)
    job.pause()
    assert job.paused and job.next_invocation is None
    step(clock, service, 60, times=3)
    assert job.run_count == 1
    job.resume()
    assert not job.paused
    assert job.next_invocation == datetime(2026, 1, 1, 0, 5, tzinfo=UTC)
    step(clock, service, 60)
    assert job.run_count == 2


def test_pause_and_resume_twice_are_harmless(service: BackgroundJobService) -> None:
    job = service.schedule_job("p", "* * * * *", lambda: None)
    job.pause()
    job.pause()
    job.resume()
    job.resume()
    assert not job.paused and service.timer_entries() == 1


def test_a_paused_job_can_still_be_run_now(service: BackgroundJobService) -> None:
    job = service.schedule_job("p", "* * * * *", lambda: None)
    job.pause()
    assert job.invoke_now().result(5).success


def test_actions_on_an_unscheduled_job_raise_a_clear_error(
    service: BackgroundJobService,
) -> None:
    job = service.schedule_job("gone", "* * * * *", lambda: None)
    service.unschedule_job("gone")
    for action in (job.invoke_now, job.pause, job.resume):
        with pytest.raises(JobNotScheduledError, match=r"'gone'.*unscheduled"):
            action()


# --- threads ----------------------------------------------------------------------------


def test_a_job_can_unschedule_itself(clock: ManualClock, service: BackgroundJobService) -> None:
    def once_then_stop(context: PluginContext) -> None:
        context.services.background_jobs.unschedule_job("self")

    job = service.schedule_job("self", "* * * * *", once_then_stop)
    step(clock, service, 60, times=3)
    assert job.run_count == 1 and not job.active and service.jobs == ()


def test_concurrent_scheduling_ends_with_exactly_the_expected_jobs(
    service: BackgroundJobService,
) -> None:
    """8 threads schedule, replace and unschedule 10,000 times in all."""
    expected: dict[str, str] = {}
    lock = threading.Lock()

    def worker(worker_id: int) -> None:
        for i in range(1250):
            name = f"w{worker_id}-{i % 50}"  # each thread owns its 50 names
            if i % 5 == 4:
                service.unschedule_job(name)
                with lock:
                    expected.pop(name, None)
            else:
                cron = f"{i % 60} * * * *"
                service.schedule_job(name, cron, lambda: None)
                with lock:
                    expected[name] = cron

    threads = [threading.Thread(target=worker, args=(w,)) for w in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    names = [j.name for j in service.jobs]
    assert len(names) == len(set(names))
    assert {j.name: j.cron_schedule for j in service.jobs} == expected
    assert all(j.active for j in service.jobs)
    assert service.timer_entries() == len(expected)  # no timer entry left for a removed job


# --- shutdown ----------------------------------------------------------------------------


def test_shutdown_stops_everything_and_leaves_no_thread(clock: ManualClock) -> None:
    baseline = set(threading.enumerate())
    service = BackgroundJobService(clock=clock, timezone="UTC")
    job = service.schedule_job("j", "* * * * *", lambda: None, invoke_immediately=True)

    async def coro() -> None:
        pass

    service.schedule_job("a", None, coro)
    assert service.wait_until_idle(5)
    assert len(service.threads()) >= 3
    service.shutdown(wait=True, timeout=5)
    assert set(threading.enumerate()) == baseline
    assert not job.active
    with pytest.raises(ServiceShutdownError):
        service.schedule_job("k", "* * * * *", lambda: None)
    with pytest.raises(ServiceShutdownError):
        job.invoke_now()
    service.shutdown()  # twice is harmless


# --- configuration --------------------------------------------------------------------


def test_the_service_timezone_is_the_default_zone_of_jobs(clock: ManualClock) -> None:
    service = BackgroundJobService(clock=clock, timezone="Asia/Tokyo")
    try:
        job = service.schedule_job("t", "0 9 * * *", lambda: None)
        assert job.timezone == "Asia/Tokyo"
        assert job.next_invocation is not None
        # 00:00 UTC is already 09:00 in Tokyo: the next is tomorrow's
        assert job.next_invocation.isoformat() == "2026-01-02T09:00:00+09:00"
        other = service.schedule_job("u", "0 9 * * *", lambda: None, timezone="UTC")
        assert other.timezone == "UTC"
    finally:
        service.shutdown()


def test_an_unknown_service_timezone_is_rejected() -> None:
    with pytest.raises(TraitError, match="Invalid time zone 'Atlantis/Capital'"):
        BackgroundJobService(timezone="Atlantis/Capital")


def test_history_is_bounded_by_history_size(clock: ManualClock) -> None:
    service = BackgroundJobService(clock=clock, timezone="UTC", history_size=3)
    try:
        job = service.schedule_job("h", "0 * * * *", lambda: None)
        for _ in range(10):
            job.invoke_now().result(5)
        assert len(job.history) == 3 and job.run_count == 10
        assert job.history[-1] == job.last_invocation
    finally:
        service.shutdown()


def test_history_without_a_store_merges_the_jobs_runs_newest_first(clock: ManualClock) -> None:
    # Rings of 4 runs that wrap, fires shared by all jobs at one time (ties), manual runs
    # in between: the merge reads start times only and builds just the runs it returns,
    # and must list exactly what sorting every kept run would (ties: the jobs' order, then
    # each job's order of record).
    service = BackgroundJobService(clock=clock, timezone="UTC", history_size=4)
    try:
        jobs = [service.schedule_job(name, "* * * * * *", lambda: None)
                for name in ("a", "b", "c")]
        for second in range(7):
            step(clock, service, 1)
            if second % 2:
                clock.advance(0.25)
                jobs[second % 3].invoke_now().result(5)
        kept = sorted((run for job in service.jobs for run in job.history),
                      key=lambda run: run.timestamp, reverse=True)
        assert len(kept) == 12  # 3 jobs x 4
        for limit in (0, 1, 5, 12, 100):
            assert service.history(limit=limit) == kept[:limit]
        since = kept[6].timestamp
        assert service.history(since=since) == [r for r in kept if r.timestamp >= since]
        assert service.history("b") == [r for r in kept if r.job == "b"]
        assert service.history("nobody") == []
    finally:
        service.shutdown()


def test_service_repr_is_a_readable_table(
    clock: ManualClock, service: BackgroundJobService
) -> None:
    assert repr(service) == "BackgroundJobService: no jobs"
    service.schedule_job("Refresh data", "*/5 * * * *", lambda: None)
    text = repr(service)
    assert "Refresh data" in text and "*/5 * * * *" in text
    assert "2026-01-01 00:05:00 UTC" in text and "0x" not in text


def test_job_repr_has_no_memory_address(service: BackgroundJobService) -> None:
    job = service.schedule_job("r", "@hourly", lambda: None)
    assert repr(job) == "<BackgroundJob 'r' '@hourly' active runs=0>"
    assert isinstance(job, BackgroundJob)

