"""The run path never stalls silently, and says how each run ended.

Regression tests of round 3's run-path issue: abandoned runs give their threads back,
a coroutine that blocks the loop does not stop the other coroutine jobs, shutdown does
not wait for runs already given up on, runs that wait for a thread say so; plus the
outcome of each kind of ending, the event bus, the pure retry plan and the failure log's
rate limit.  Scheduled time moves on a ManualClock; what only real threads can make true
is awaited with Events and ``wait_for``.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
from collections.abc import Iterator
from datetime import datetime, timezone
from typing import Any

import pytest

from mashroom_jobs import (
    BackgroundJobService,
    JobInvocation,
    Outcome,
    RunFinished,
    StateChanged,
)
from mashroom_jobs.core._retries import RetryPlan, plan_retry
from mashroom_jobs.core.events import EventBus
from mashroom_jobs.testing import ManualClock, wait_for

UTC = timezone.utc
WAIT = 5.0


@pytest.fixture
def gate() -> Iterator[threading.Event]:
    """Holds stuck jobs; set at the end so no thread outlives the test for long."""
    event = threading.Event()
    yield event
    event.set()


def small_service(clock: ManualClock, **settings: Any) -> BackgroundJobService:
    return BackgroundJobService(clock=clock, timezone="UTC", **settings)


# --- threads given up on are replaced ------------------------------------------------


def test_abandoned_runs_give_their_threads_back_so_other_jobs_keep_running(
    clock: ManualClock, gate: threading.Event
) -> None:
    service = small_service(clock, max_workers=2, stop_grace=0.5)
    try:
        stuck = [service.schedule_job(f"stuck{i}", "0 0 1 1 *", lambda: gate.wait(60),
                                      timeout=0.5) for i in range(2)]
        futures = [job.invoke_now() for job in stuck]
        assert wait_for(lambda: all(job.running for job in stuck))
        stuck_threads = {t for t in service.threads() if t.name.startswith("mashroom-jobs-w")}
        clock.advance(0.5)  # the timeouts: asked to stop...
        clock.advance(0.5)  # ...and the grace is over: abandoned
        records = [future.result(WAIT) for future in futures]
        assert [r.outcome for r in records] == [Outcome.TIMED_OUT, Outcome.TIMED_OUT]
        assert service.abandoned_runs == 2
        ticks: list[int] = []
        tick = service.schedule_job("tick", "* * * * * *", lambda: ticks.append(1))
        for _ in range(3):
            clock.advance(1)
            assert service.wait_until_idle(WAIT)
        assert len(ticks) == 3 and tick.run_count == 3
        assert tick.invoke_now().result(WAIT).success
        # the stuck threads still run (nothing can kill a thread) but are no longer the pool's
        assert all(t.is_alive() for t in stuck_threads)
        assert not stuck_threads & set(service.threads())
    finally:
        gate.set()
        service.shutdown(timeout=WAIT)


def test_shutdown_does_not_wait_for_runs_already_abandoned(
    clock: ManualClock, gate: threading.Event
) -> None:
    service = small_service(clock, max_workers=2, stop_grace=0.5)
    job = service.schedule_job("stuck", "0 0 1 1 *", lambda: gate.wait(60), timeout=0.5)
    future = job.invoke_now()
    assert wait_for(lambda: job.running)
    clock.advance(0.5)
    clock.advance(0.5)
    assert future.result(WAIT).outcome is Outcome.TIMED_OUT
    result: list[Any] = []
    # with 60 s to wait, a shutdown that waited for the abandoned thread would still be here
    closer = threading.Thread(target=lambda: result.append(service.shutdown(timeout=60)))
    closer.start()
    closer.join(WAIT)
    assert not closer.is_alive() and result == [()]


def test_runs_that_wait_for_a_thread_say_so_in_their_state_and_in_one_warning(
    clock: ManualClock, gate: threading.Event, caplog: pytest.LogCaptureFixture
) -> None:
    service = small_service(clock, max_workers=1)
    try:
        busy = service.schedule_job("busy", "0 0 1 1 *", lambda: gate.wait(60))
        busy.invoke_now()
        assert wait_for(lambda: busy.running)
        ran: list[int] = []
        queued = service.schedule_job("queued", "* * * * * *", lambda: ran.append(1))
        with caplog.at_level(logging.WARNING, logger="mashroom_jobs"):
            clock.advance(1)  # its fire is decided (it waits) before advance() returns
        assert queued.waiting == 1 and queued.state.waiting == 1 and ran == []
        warnings = [r.getMessage() for r in caplog.records if "worker threads" in r.message]
        assert len(warnings) == 1 and "'busy'" in warnings[0] and "'queued'" in warnings[0]
        gate.set()
        assert service.wait_until_idle(WAIT)
        assert ran == [1] and queued.waiting == 0 and queued.state.waiting == 0
    finally:
        service.shutdown(timeout=WAIT)


def test_one_worker_thread_runs_every_fire_with_no_wait_and_no_warning(
    clock: ManualClock, caplog: pytest.LogCaptureFixture
) -> None:
    # the batch's own thread is the only worker: a lone fire runs on it, and fires due
    # together wait only for it (no job holds a thread: nothing to warn about)
    service = small_service(clock, max_workers=1)
    try:
        ran: list[str] = []
        every = service.schedule_job("every", "* * * * * *", lambda: ran.append("every"))
        with caplog.at_level(logging.WARNING, logger="mashroom_jobs"):
            clock.advance(1)
            assert every.waiting == 0 and service.wait_until_idle(WAIT)
            service.schedule_job("other", "* * * * * *", lambda: ran.append("other"))
            for _ in range(2):
                clock.advance(1)
                assert service.wait_until_idle(WAIT)
        assert sorted(ran) == ["every"] * 3 + ["other"] * 2
        assert not [r for r in caplog.records if "worker threads" in r.getMessage()]
    finally:
        service.shutdown(timeout=WAIT)


# --- a coroutine that blocks the loop --------------------------------------------------


def test_a_coroutine_that_blocks_its_loop_is_recorded_and_the_others_keep_running(
    clock: ManualClock, gate: threading.Event
) -> None:
    service = small_service(clock, loop_block_limit=1.0)
    try:
        async def blocker() -> None:
            gate.wait(60)  # a blocking call in async code: holds the loop thread

        ticks: list[int] = []

        async def tick() -> None:
            await asyncio.sleep(0)
            ticks.append(1)

        blocking = service.schedule_job("blocker", "0 0 1 1 *", blocker)
        ticker = service.schedule_job("tick", "* * * * * *", tick)
        future = blocking.invoke_now()
        assert wait_for(lambda: blocking.running)
        clock.advance(0.5)  # the supervisor posts a heartbeat the blocked loop cannot answer
        clock.advance(1)  # tick's fire queues on the blocked loop; the heartbeat is overdue
        assert wait_for(lambda: len(ticks) == 1)  # moved to a new loop, where it ran
        for count in (2, 3, 4):  # (each run is recorded before the next fire: no skip)
            assert wait_for(lambda count=count: ticker.run_count == count - 1)
            clock.advance(1)
            assert wait_for(lambda count=count: len(ticks) == count)
        assert ticker.run_count == 4 and ticker.failure_count == 0
        gate.set()
        record = future.result(WAIT)
        assert record.success and "blocked its event loop for" in record.output
    finally:
        gate.set()
        service.shutdown(timeout=WAIT)


def test_no_loop_check_wakes_the_timer_while_no_coroutine_runs(
    clock: ManualClock, service: BackgroundJobService
) -> None:
    async def quick() -> None:
        await asyncio.sleep(0)

    job = service.schedule_job("quick", "0 0 1 1 *", quick)
    timer = service._runner.timer
    assert timer.pending_calls() == 0
    assert job.invoke_now().result(WAIT).success
    assert service.wait_until_idle(WAIT)
    assert timer.pending_calls() == 1  # the check the run armed (and "running" publishing)
    clock.advance(1)  # the check finds nothing running and is not armed again
    assert timer.pending_calls() == 0


# --- how a run ended ---------------------------------------------------------------------


def test_each_kind_of_ending_is_its_outcome(
    clock: ManualClock, service: BackgroundJobService, gate: threading.Event
) -> None:
    ok = service.schedule_job("ok", "0 0 1 1 *", lambda: None)
    bad = service.schedule_job("bad", "0 0 1 1 *", lambda: 1 / 0)
    slow = service.schedule_job("slow", "0 0 1 1 *", lambda ctx: ctx.stop_requested.wait(60),
                                timeout=2)
    held = service.schedule_job("held", "0 0 1 1 *", lambda ctx: ctx.stop_requested.wait(60))
    assert ok.invoke_now().result(WAIT).outcome is Outcome.OK
    failed = bad.invoke_now().result(WAIT)
    assert failed.outcome is Outcome.FAILED and failed.error_message == \
        "ZeroDivisionError: division by zero"
    timed = slow.invoke_now()
    stopped = held.invoke_now()
    assert wait_for(lambda: slow.running and held.running)
    held.stop()
    clock.advance(2)
    assert timed.result(WAIT).outcome is Outcome.TIMED_OUT
    assert stopped.result(WAIT).outcome is Outcome.STOPPED
    assert [bad.failure_count, slow.failure_count, held.failure_count] == [1, 1, 1]
    assert not ok.failing and bad.failing


def test_outcomes_survive_the_in_memory_ring_with_their_trigger_and_attempt(
    clock: ManualClock, service: BackgroundJobService
) -> None:
    attempts: list[int] = []

    def flaky() -> None:
        attempts.append(1)
        if len(attempts) < 3:
            raise ValueError("not yet")

    job = service.schedule_job("flaky", "0 * * * *", flaky, retries=3, retry_delay=10)
    clock.advance_to("2026-01-01T01:00:00+00:00")
    for _ in range(2):
        assert service.wait_until_idle(WAIT)
        clock.advance(10)
    assert service.wait_until_idle(WAIT)
    got = [(r.trigger, r.attempt, r.outcome) for r in job.history]
    assert got == [("schedule", 1, Outcome.FAILED), ("retry", 2, Outcome.FAILED),
                   ("retry", 3, Outcome.OK)]
    assert {r.scheduled_for for r in job.history} == {datetime(2026, 1, 1, 1, tzinfo=UTC)}


def test_a_fire_that_comes_between_a_failed_run_and_its_retry_timer_wins(
    clock: ManualClock, service: BackgroundJobService, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the retry is decided with the run's record: a fire that the timer takes before the
    # retry's timer call is made sees it (and drops it), so no retry runs after that fire
    from mashroom_jobs.core.scheduler import Timer

    attempts: list[str] = []
    original = Timer.call_later

    def call_later(timer: Timer, delay: float, fn: Any, *args: Any) -> Any:
        if getattr(fn, "__name__", "") == "_retry_due" and len(attempts) == 1:
            clock.advance(60)  # the job's next fire comes first (its run is recorded)
            assert wait_for(lambda: len(attempts) == 2)
        return original(timer, delay, fn, *args)

    monkeypatch.setattr(Timer, "call_later", call_later)

    def fails_once() -> None:
        attempts.append("run")
        if len(attempts) == 1:
            raise ValueError("first")

    job = service.schedule_job("flaky", "* * * * *", fails_once, retries=1, retry_delay=30)
    clock.advance_to("2026-01-01T01:00:00+00:00")
    assert wait_for(lambda: job.run_count == 2)
    assert service.wait_until_idle(WAIT)
    clock.advance(30)  # when the retry would have been due
    assert service.wait_until_idle(WAIT)
    assert [(r.trigger, r.outcome) for r in job.history] == [
        ("schedule", Outcome.FAILED), ("schedule", Outcome.OK)]
    assert job.skip_count == 1 and attempts == ["run", "run"]


# --- the event bus -------------------------------------------------------------------------


def test_subscribers_hear_the_events_they_asked_for_until_they_unsubscribe(
    clock: ManualClock, service: BackgroundJobService, caplog: pytest.LogCaptureFixture
) -> None:
    finished: list[RunFinished] = []
    everything: list[Any] = []

    def broken(event: Any) -> None:
        raise RuntimeError("a subscriber's bug")

    service.subscribe(broken, RunFinished)
    subscription = service.subscribe(finished.append, RunFinished)
    service.subscribe(everything.append)
    job = service.schedule_job("j", "* * * * *", lambda: None)
    job.observe(lambda change: None, names="state")  # a watched job: its states are events
    with caplog.at_level(logging.ERROR, logger="mashroom_jobs"):
        clock.advance(60)
        assert service.wait_until_idle(WAIT)
    assert [(e.job, e.record.outcome, e.retrying, e.source) for e in finished] == [
        ("j", Outcome.OK, False, job)]
    assert {type(e) for e in everything} == {RunFinished, StateChanged}
    assert any("a subscriber to RunFinished raised" in r.getMessage() for r in caplog.records)
    subscription.unsubscribe()
    subscription.unsubscribe()  # harmless twice
    clock.advance(60)
    assert service.wait_until_idle(WAIT)
    assert len(finished) == 1 and job.run_count == 2


def test_the_bus_refuses_what_is_not_an_event_type_and_builds_nothing_unheard() -> None:
    bus = EventBus()
    with pytest.raises(TypeError, match="event_types must be among RunFinished"):
        bus.subscribe(print, JobInvocation)
    with pytest.raises(TypeError, match="callback must be callable"):
        bus.subscribe("print", RunFinished)  # type: ignore[arg-type]
    assert not bus.wants(RunFinished)
    bus.subscribe(print, RunFinished)
    assert bus.wants(RunFinished) and not bus.wants(StateChanged)


# --- retries: one pure function -------------------------------------------------------------


@pytest.mark.parametrize(("facts", "plan"), [
    ({}, RetryPlan(30.0)),
    ({"outcome": Outcome.OK}, RetryPlan(None)),
    ({"outcome": Outcome.ELSEWHERE}, RetryPlan(None)),
    ({"outcome": Outcome.TIMED_OUT}, RetryPlan(30.0)),
    ({"trigger": "manual"}, RetryPlan(None)),
    ({"stopped_by_user": True, "outcome": Outcome.STOPPED}, RetryPlan(None)),
    ({"attempt": 3}, RetryPlan(None)),
    ({"attempt": 2}, RetryPlan(30.0)),
    ({"next_fire": 1000.0 + 20}, RetryPlan(None, dropped=True)),
    ({"next_fire": 1000.0 + 31}, RetryPlan(30.0)),
], ids=["failed", "ok", "elsewhere", "timed-out", "manual", "stopped-by-user", "no-attempt-left",
        "last-attempt", "next-fire-first", "next-fire-after"])
def test_the_retry_plan_of_a_recorded_run(facts: dict[str, Any], plan: RetryPlan) -> None:
    given: dict[str, Any] = {"outcome": Outcome.FAILED, "trigger": "schedule", "attempt": 1,
                             "stopped_by_user": False, "retries": 2, "retry_delay": 30.0,
                             "now": 1000.0, "next_fire": None}
    given.update(facts)
    assert plan_retry(**given) == plan


# --- what the log says -----------------------------------------------------------------------


def test_a_job_failing_every_second_logs_one_warning_a_minute_with_the_count(
    clock: ManualClock, service: BackgroundJobService, caplog: pytest.LogCaptureFixture
) -> None:
    service.schedule_job("boom", "* * * * * *", lambda: 1 / 0)
    with caplog.at_level(logging.WARNING, logger="mashroom_jobs"):
        for _ in range(61):
            clock.advance(1)
            assert service.wait_until_idle(WAIT)
    failures = [r.getMessage() for r in caplog.records if "failed" in r.getMessage()]
    assert failures == [
        "Background job 'boom' failed: ZeroDivisionError: division by zero",
        "Background job 'boom' failed: ZeroDivisionError: division by zero (59 more failures "
        "since the last warning)",
    ]


@pytest.mark.skipif(not hasattr(os, "fork"), reason="os.fork")
def test_a_forked_child_that_returns_into_the_scheduler_exits(
    service: BackgroundJobService,
) -> None:
    children: list[int] = []

    def forks() -> None:
        pid = os.fork()
        if pid:
            children.append(pid)  # the parent; the child returns without a word

    job = service.schedule_job("forker", "0 0 1 1 *", forks)
    assert job.invoke_now().result(WAIT).success
    assert len(children) == 1
    pid, status = os.waitpid(children[0], 0)  # ended by the runner, not left to linger
    assert pid == children[0] and os.waitstatus_to_exitcode(status) == 0


def test_the_collector_is_paused_only_while_a_batch_is_decided(
    clock: ManualClock, service: BackgroundJobService
) -> None:
    import gc

    seen: list[bool] = []
    for i in range(3):
        service.schedule_job(f"j{i}", "* * * * *", lambda: seen.append(gc.isenabled()))
    clock.advance(60)
    assert service.wait_until_idle(WAIT)
    assert False in seen  # the first fires ran while the batch was still being decided
    assert gc.isenabled()  # and the collector runs again once it was
    gc.disable()  # a program that turned it off keeps it off
    try:
        clock.advance(60)
        assert service.wait_until_idle(WAIT)
        assert not gc.isenabled()
    finally:
        gc.enable()


# --- the batch, the claims and the ring, on the injected clock ---------------------------


def test_a_callback_that_blocks_does_not_hold_up_the_fires_after_it(
    clock: ManualClock, service: BackgroundJobService, gate: threading.Event
) -> None:
    ran: list[str] = []
    blocker = service.schedule_job("a-blocker", "* * * * *", lambda: gate.wait(60))
    others = [service.schedule_job(f"b{i}", "* * * * *", lambda i=i: ran.append(f"b{i}"))
              for i in range(5)]
    clock.advance(60)  # the batch's thread runs the blocker itself; a standby takes the rest
    assert wait_for(lambda: len(ran) == 5)
    assert wait_for(lambda: [job.run_count for job in others] == [1] * 5)
    assert blocker.running
    gate.set()
    assert service.wait_until_idle(WAIT) and blocker.run_count == 1


class SlowClaimer:
    """A shared store whose first claim takes until ``release`` is set."""

    def __init__(self) -> None:
        self.calls: list[list[str]] = []
        self.release = threading.Event()

    def claim(self, job: str, scheduled_for: datetime) -> str | None:
        return self.claim_many([(job, scheduled_for)])[0]

    def claim_many(self, fires: Any) -> list[str | None]:
        self.calls.append([job for job, _ in fires])
        if len(self.calls) == 1:
            self.release.wait(WAIT)
        return [None if job.startswith("mine") else "vm pid 9" for job, _ in fires]


def test_exclusive_fires_are_claimed_once_each_even_while_a_claim_hangs(
    clock: ManualClock,
) -> None:
    from mashroom_jobs.core.events import EventBus
    from mashroom_jobs.core.runner import Runner
    from mashroom_jobs.core.runtime import JobRuntime, JobSpec
    from mashroom_jobs.core.specs import check_job

    claimer = SlowClaimer()
    runner = Runner(clock, EventBus(), claimer=claimer)
    ran: list[str] = []

    def job(name: str, expression: str) -> JobRuntime:
        spec: JobSpec = check_job(
            name, expression, lambda: ran.append(name), default_zone="UTC", timezone=None,
            invoke_immediately=False, overlap="skip", executor=None,
            where=lambda _: (None, None), timeout=None, retries=0, retry_delay=30.0,
            exclusive=True)
        runtime = JobRuntime(spec, 20)
        runner.add(runtime)
        return runtime

    try:
        first = job("mine-1", "* * * * *")
        later = [job("mine-2", "*/2 * * * *"), job("theirs", "*/2 * * * *")]
        clock.advance(60)  # 00:01: mine-1's claim hangs in the store
        assert wait_for(lambda: len(claimer.calls) == 1)
        clock.advance(60)  # 00:02: two fires queue behind it (mine-1's own is skipped)
        claimer.release.set()
        assert runner.wait_idle(WAIT)
        # each fire claimed once (those queued by the time a worker got to them, together)
        assert claimer.calls[0] == ["mine-1"]
        assert sorted(job for call in claimer.calls[1:] for job in call) == ["mine-2", "theirs"]
        assert sorted(ran) == ["mine-1", "mine-2"]
        assert [r.outcome for r in later[1].history] == [Outcome.ELSEWHERE]
        assert later[1].history[0].origin == "vm pid 9"
        assert first.run_count == 1 and first.skip_count == 1
    finally:
        claimer.release.set()
        runner.stop_all([], True, WAIT + time_monotonic(), None)


def time_monotonic() -> float:
    import time

    return time.monotonic()


def test_a_smaller_history_size_keeps_each_jobs_newest_runs(
    clock: ManualClock, service: BackgroundJobService
) -> None:
    job = service.schedule_job("j", "* * * * *", lambda: print("hello"))
    for _ in range(5):
        clock.advance(60)
        assert service.wait_until_idle(WAIT)
    service.history_size = 2
    clock.advance(60)
    assert service.wait_until_idle(WAIT)
    assert [r.scheduled_for.minute for r in job.history if r.scheduled_for] == [5, 6]
    assert [r.output for r in job.history] == ["hello\n", "hello\n"]
    assert service.history("j", 10)[0].scheduled_for.minute == 6


def test_the_stop_flag_outside_a_run_is_never_set() -> None:
    import mashroom_jobs

    flag = mashroom_jobs.stop_requested()
    assert not flag and not flag.is_set() and flag.wait(0) is False
    mashroom_jobs.check_stop()  # raises nothing outside a run


def test_a_watched_job_publishes_its_skipped_fire(
    clock: ManualClock, service: BackgroundJobService, gate: threading.Event
) -> None:
    job = service.schedule_job("slow", "* * * * *", lambda: gate.wait(60))
    seen: list[tuple[bool, int]] = []
    job.observe(lambda change: seen.append((change.new.running, change.new.skip_count)),
                names="state")
    clock.advance(60)
    assert wait_for(lambda: job.running)
    clock.advance(1)  # "running" is published once the run has lasted a moment
    assert wait_for(lambda: (True, 0) in seen)
    clock.advance(59)  # the next fire finds the run still going: skipped, and published
    assert wait_for(lambda: (True, 1) in seen)
    gate.set()
    assert service.wait_until_idle(WAIT)
    assert wait_for(lambda: seen[-1] == (False, 1))


def test_records_say_how_they_ended_in_their_repr() -> None:
    when = datetime(2026, 1, 1, 9, tzinfo=UTC)

    def record(outcome: Outcome, **more: Any) -> str:
        return repr(JobInvocation(timestamp=when, scheduled_for=when, trigger="schedule",
                                  execution_time_ms=1.5, outcome=outcome, **more))

    assert record(Outcome.OK) == "<JobInvocation schedule at 2026-01-01T09:00:00+00:00 1.5 ms ok>"
    assert record(Outcome.FAILED, error_message="ValueError: x", attempt=2).endswith(
        "attempt 2 at 2026-01-01T09:00:00+00:00 1.5 ms failed: ValueError: x>")
    assert record(Outcome.ELSEWHERE, origin="vm pid 7").endswith("ran elsewhere (vm pid 7)>")
    assert record(Outcome.SKIPPED).endswith("ms skipped>")
    assert str(Outcome.TIMED_OUT) == "timed out" and Outcome("missed") is Outcome.MISSED


def test_a_stopped_coroutine_is_cancelled_and_a_run_ending_in_its_grace_is_not_abandoned(
    clock: ManualClock, service: BackgroundJobService
) -> None:
    started = threading.Event()

    async def sleeper() -> None:
        started.set()
        await asyncio.sleep(3600)

    job = service.schedule_job("sleeper", "0 0 1 1 *", sleeper)
    future = job.invoke_now()
    assert started.wait(WAIT)
    assert job.stop() == 1
    assert future.result(WAIT).outcome is Outcome.STOPPED  # cancelled at its await
    clock.advance(service.stop_grace)  # the grace passes with nothing left to give up on
    assert service.abandoned_runs == 0


class LocalCluster:
    """A remote backend that runs calls here, and whose cluster cannot be reached to claim."""

    def __init__(self) -> None:
        from concurrent.futures import ThreadPoolExecutor

        self.pool = ThreadPoolExecutor(1)
        self.claimer = self

    def claim(self, job: str, scheduled_for: datetime) -> str | None:
        from mashroom_jobs import StoreUnavailableError

        raise StoreUnavailableError("the scheduler did not answer")

    def claim_many(self, fires: Any) -> list[str | None]:
        raise AssertionError("a cluster claims one fire at a time")

    def submit(self, call: Any, key: str) -> Any:
        from mashroom_jobs.core.remote import execute

        return self.pool.submit(execute, call, "local worker")

    def describe_failure(self, error: BaseException) -> str:
        return f"failed on the cluster: {error}"


def test_a_fire_whose_cluster_cannot_claim_it_runs_anyway_and_says_so(
    clock: ManualClock, service: BackgroundJobService
) -> None:
    cluster = LocalCluster()
    service._backends.resolve = lambda executor: (None, cluster)  # type: ignore[method-assign]
    try:
        job = service.schedule_job("report", "* * * * *", lambda: print("done"),
                                   executor=cluster, exclusive=True)
        clock.advance(60)
        assert service.wait_until_idle(WAIT)
        record = job.last_invocation
        assert record is not None and record.outcome is Outcome.OK
        assert record.worker == "local worker"
        assert record.output == ("[mashroom-jobs] cluster unavailable, ran without claim: "
                                 "the scheduler did not answer\ndone\n")
    finally:
        cluster.pool.shutdown()


# --- the parts, each alone with the callables it is given ---------------------------------


def _stopped_timer(*args: Any) -> Any:
    raise RuntimeError("the timer was stopped")


def _a_run(clock: ManualClock, **spec: Any) -> Any:
    from mashroom_jobs.core.runtime import JobRuntime
    from mashroom_jobs.core.specs import check_job

    options: dict[str, Any] = {"timeout": None, **spec}
    runtime = JobRuntime(check_job(
        "j", None, lambda: None, default_zone="UTC", timezone=None, invoke_immediately=False,
        overlap="skip", executor=None, where=lambda _: (None, None), retries=0,
        retry_delay=30.0, exclusive=False, **options), 20)
    return runtime, runtime.admit("manual")


def test_the_claim_queue_refuses_its_fires_once_its_pool_is_shut_down() -> None:
    from mashroom_jobs.core.claims import ClaimQueue

    refused: list[tuple[str, str]] = []
    queue: ClaimQueue[str] = ClaimQueue(lambda fires: [None] * len(fires), _stopped_timer,
                                        lambda *a: None, lambda item, error: refused.append(
                                            (item, str(error))))
    queue.queue("a run", ("j", datetime(2026, 1, 1, tzinfo=UTC)))
    assert refused == [("a run", "the timer was stopped")]
    queue.claim_queued()  # nothing left queued: nothing claimed


def test_the_watchdog_does_nothing_once_the_timer_stopped_and_spares_runs_that_ended(
    clock: ManualClock,
) -> None:
    from mashroom_jobs.core._watchdog import Watchdog

    given_up: list[Any] = []
    dog = Watchdog(_stopped_timer, 1.0, end_queued=given_up.append, abandon=given_up.append)
    runtime, run = _a_run(clock, timeout=5.0)
    runtime.begin(run)
    dog.watch(run)  # the timer stopped: no timeout armed, nothing raised
    dog.request_stop(run, "stopped", by_user=True)
    assert run.watch is None and run.stop_reason == "stopped"
    runtime.returned(run)
    dog._give_up(run)  # the grace ends after the run did: nothing to give up on
    assert given_up == [] and dog.abandoned == 0


def test_the_publisher_stays_quiet_once_the_pool_and_timer_are_gone(
    clock: ManualClock,
) -> None:
    from mashroom_jobs.core._publishing import StatePublisher

    heard: list[Any] = []
    bus = EventBus()
    bus.subscribe(heard.append, StateChanged)
    publisher = StatePublisher(bus, _stopped_timer, _stopped_timer)
    runtime, _ = _a_run(clock)
    runtime.watched = True
    publisher.publish_later(runtime)  # the pool is gone: no publication queued
    publisher.soon(runtime)  # the timer is gone: "running" is never published
    publisher._hand_over_running()
    publisher.publish(runtime, unless_pending=True)  # a run is pending: its end will publish
    assert heard == []
    publisher.publish(runtime)
    assert [event.state.paused for event in heard] == [False]
