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
