"""The performance internals: the pool's deferred bookkeeping, timer groups and the trait
fast path (the cron layer's are in test_cron_differential.py).  Scheduled behaviour moves
on a ManualClock; the pool's own timing is checked with Events and generous timeouts,
never with sleeps."""

from __future__ import annotations

import threading
import time
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from traitlets import All

from mashroom_jobs import BackgroundJobService
from mashroom_jobs.core.cron import CronSchedule
from mashroom_jobs.core.executors import DaemonThreadPool
from mashroom_jobs.core.scheduler import Timer
from mashroom_jobs.testing import ManualClock, wait_for

UTC = timezone.utc
WAIT = 5.0  # generous real-time bound for anything that should happen "soon"


def step(clock: ManualClock, service: BackgroundJobService, seconds: float, times: int = 1) -> None:
    """Advance one fire interval at a time, letting each run (and its record) finish."""
    for _ in range(times):
        clock.advance(seconds)
        assert service.wait_until_idle(timeout=WAIT)


@pytest.fixture
def pool() -> Any:
    executor = DaemonThreadPool(max_workers=2, name="internals-pool")
    yield executor
    executor.shutdown(wait=True, cancel_futures=True, timeout=WAIT)


def blocker(pool: DaemonThreadPool) -> tuple[threading.Event, threading.Event]:
    """Occupy one worker until the returned gate is set; the other Event: it started."""
    gate, started = threading.Event(), threading.Event()

    def hold() -> None:
        started.set()
        gate.wait(WAIT * 2)

    pool.dispatch(hold)
    assert started.wait(WAIT)
    return gate, started


# --- DaemonThreadPool -------------------------------------------------------------------


def test_submit_delivers_results_and_exceptions_through_the_future(
    pool: DaemonThreadPool,
) -> None:
    assert pool.submit(lambda a, b=0: a * 10 + b, 4, b=2).result(timeout=WAIT) == 42
    failing = pool.submit(lambda: 1 / 0)
    with pytest.raises(ZeroDivisionError):
        failing.result(timeout=WAIT)
    assert isinstance(failing.exception(), ZeroDivisionError)


def test_dispatch_calls_the_function_with_its_arguments_on_a_worker(
    pool: DaemonThreadPool,
) -> None:
    seen: list[tuple[Any, ...]] = []
    done = threading.Event()

    def record(*args: Any) -> None:
        seen.append((*args, threading.current_thread().name))
        done.set()

    pool.dispatch(record, 1, "two", None)
    assert done.wait(WAIT)
    assert seen[0][:3] == (1, "two", None)
    assert seen[0][3].startswith("internals-pool-")


def test_a_worker_survives_a_dispatched_function_that_raises(pool: DaemonThreadPool) -> None:
    pool.dispatch(lambda: 1 / 0)
    assert pool.submit(lambda: "still here").result(timeout=WAIT) == "still here"


def test_max_workers_must_be_positive() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        DaemonThreadPool(max_workers=0)


def test_no_more_than_max_workers_threads_run_at_once() -> None:
    pool = DaemonThreadPool(max_workers=3, name="bounded")
    gate = threading.Event()
    started = threading.Semaphore(0)
    lock = threading.Lock()
    active = [0, 0]  # now, most
    names: set[str] = set()

    def task() -> None:
        with lock:
            active[0] += 1
            active[1] = max(active)
            names.add(threading.current_thread().name)
        started.release()
        gate.wait(WAIT * 2)
        with lock:
            active[0] -= 1

    try:
        futures = [pool.submit(task) for _ in range(10)]
        for _ in range(3):
            assert started.acquire(timeout=WAIT)
        # the other seven wait for a worker: no fourth starts while three block
        assert not started.acquire(timeout=0.2)
        assert len(pool.threads) == 3
        gate.set()
        for future in futures:
            future.result(timeout=WAIT)
        assert active[1] == 3
        assert len(names) == 3
        assert len([t for t in pool.threads if t.name.startswith("bounded-")]) == 3
    finally:
        gate.set()
        pool.shutdown(wait=True, timeout=WAIT)


def test_defer_with_nothing_waiting_runs_at_once_on_the_calling_thread(
    pool: DaemonThreadPool,
) -> None:
    ran_on: list[threading.Thread] = []
    pool.defer(lambda: ran_on.append(threading.current_thread()))
    assert ran_on == [threading.current_thread()]


def test_deferred_work_all_runs_in_the_order_deferred_while_runs_are_queued() -> None:
    pool = DaemonThreadPool(max_workers=1, name="ordered")
    done: list[int] = []
    finished = threading.Event()
    total = 300

    def record(i: int) -> None:
        done.append(i)
        if len(done) == total:
            finished.set()

    try:
        gate, _ = blocker(pool)
        # each queued run defers its bookkeeping, as BackgroundJob._run_sync does
        for i in range(total):
            pool.dispatch(pool.defer, record, i)
        gate.set()
        assert finished.wait(WAIT)
        assert done == list(range(total))
    finally:
        pool.shutdown(wait=True, timeout=WAIT)


def test_no_deferred_work_is_lost_or_repeated_with_several_workers() -> None:
    pool = DaemonThreadPool(max_workers=4, name="lossless")
    lock = threading.Lock()
    done: list[int] = []
    finished = threading.Event()
    total = 2000

    def record(i: int) -> None:
        with lock:
            done.append(i)
            if len(done) == total:
                finished.set()

    def run(i: int) -> None:
        pool.defer(record, i)

    try:
        for i in range(total):
            pool.dispatch(run, i)
        assert finished.wait(WAIT)
        assert sorted(done) == list(range(total))
    finally:
        pool.shutdown(wait=True, timeout=WAIT)


def test_deferred_work_waits_for_queued_runs_at_most_about_the_defer_limit() -> None:
    pool = DaemonThreadPool(max_workers=1)
    queued_started = threading.Event()
    ran = threading.Event()
    where: list[str] = []
    try:
        gate, _ = blocker(pool)
        pool.dispatch(queued_started.set)  # waits to start behind the blocked worker
        t0 = time.monotonic()
        pool.defer(lambda: (where.append(threading.current_thread().name), ran.set()))
        assert where == []  # a run is waiting: not at once
        assert ran.wait(pool.defer_limit + 2.0), "deferred work starved by a waiting run"
        elapsed = time.monotonic() - t0
        assert elapsed >= pool.defer_limit * 0.8
        assert where == ["mashroom-jobs-worker-bookkeeper"]
        assert not queued_started.is_set()  # the run still waits: the limit, not the queue
        gate.set()
        assert queued_started.wait(WAIT)
    finally:
        pool.shutdown(wait=True, timeout=WAIT)


def test_hold_deferred_keeps_deferred_work_back_until_the_block_exits_then_a_worker_runs_it(
    pool: DaemonThreadPool,
) -> None:
    pool.defer_limit = 30.0  # this test is about the block, not the limit
    ran = threading.Event()
    where: list[threading.Thread] = []

    def record() -> None:
        where.append(threading.current_thread())
        ran.set()

    pool.submit(lambda: None).result(timeout=WAIT)  # a worker exists, idle
    with pool.hold_deferred():
        pool.defer(record)
        assert not ran.wait(0.2)  # nothing waits to start, yet it is held back
        assert where == []
    # handed to a worker, not run on the producer's (the timer's) thread
    assert ran.wait(WAIT)
    assert where[0] is not threading.current_thread()
    assert where[0].name.startswith("internals-pool-")
    assert not where[0].name.endswith("bookkeeper")


def test_work_deferred_inside_a_long_hold_runs_after_the_defer_limit_on_the_bookkeeper(
    pool: DaemonThreadPool,
) -> None:
    ran = threading.Event()
    where: list[str] = []
    with pool.hold_deferred():
        t0 = time.monotonic()
        pool.defer(lambda: (where.append(threading.current_thread().name), ran.set()))
        assert ran.wait(pool.defer_limit + 2.0)
        assert time.monotonic() - t0 >= pool.defer_limit * 0.8
        assert where == ["internals-pool-bookkeeper"]


def test_nested_holds_release_deferred_work_only_when_the_outer_one_exits(
    pool: DaemonThreadPool,
) -> None:
    pool.defer_limit = 30.0
    ran = threading.Event()
    with pool.hold_deferred():
        with pool.hold_deferred():
            pool.defer(ran.set)
        assert not ran.wait(0.2)
    assert ran.wait(WAIT)


def test_shutdown_joins_every_thread_including_the_bookkeeper_and_refuses_new_work() -> None:
    baseline = set(threading.enumerate())
    pool = DaemonThreadPool(max_workers=3)
    gate = threading.Event()
    for _ in range(3):
        pool.dispatch(gate.wait, WAIT)
    pool.dispatch(lambda: None)  # waits to start, so defer() wakes the bookkeeper
    kept = threading.Event()
    pool.defer(kept.set)
    assert kept.wait(pool.defer_limit + 2.0)
    names = {t.name for t in pool.threads}
    assert "mashroom-jobs-worker-bookkeeper" in names
    assert len(names) == 4
    gate.set()
    pool.shutdown(wait=True, timeout=WAIT)
    assert not any(t.is_alive() for t in pool.threads)
    assert set(threading.enumerate()) - baseline == set()
    with pytest.raises(RuntimeError):
        pool.dispatch(lambda: None)
    with pytest.raises(RuntimeError):
        pool.submit(lambda: None)
    pool.shutdown()  # twice is harmless


def test_shutdown_cancels_queued_runs_but_still_does_deferred_work() -> None:
    pool = DaemonThreadPool(max_workers=1)
    gate, _ = blocker(pool)
    cancelled = threading.Event()
    pool.dispatch(cancelled.set)
    recorded: list[str] = []
    pool.defer(recorded.append, "bookkeeping")
    assert recorded == []
    pool.shutdown(wait=False, cancel_futures=True)
    gate.set()
    for thread in pool.threads:
        thread.join(WAIT)
        assert not thread.is_alive()
    assert recorded == ["bookkeeping"]
    assert not cancelled.is_set()


# --- Timer groups -------------------------------------------------------------------------


def timer_of(service: BackgroundJobService) -> Timer:
    return service._runner.timer


def live_groups(service: BackgroundJobService) -> int:
    return timer_of(service).groups()[0]


def test_a_hundred_jobs_on_one_expression_share_one_group_and_all_fire(
    clock: ManualClock, service: BackgroundJobService
) -> None:
    counts = [0] * 100
    lock = threading.Lock()

    def job_body(i: int) -> Any:
        def run() -> None:
            with lock:
                counts[i] += 1
        return run

    jobs = [service.schedule_job(f"j{i}", "* * * * *", job_body(i)) for i in range(100)]
    timer = timer_of(service)
    assert len(timer) == 100
    assert timer.groups() == (1, 1)
    for minute in (1, 2, 3):
        step(clock, service, 60)
        assert counts == [minute] * 100
        groups, heap = timer.groups()
        assert groups == 1 and heap <= 2
    assert {j.next_invocation for j in jobs} == {datetime(2026, 1, 1, 0, 4, tzinfo=UTC)}
    assert {j.run_count for j in jobs} == {3}


def test_unscheduling_one_job_of_a_group_leaves_the_others_firing(
    clock: ManualClock, service: BackgroundJobService
) -> None:
    runs: dict[str, int] = {}
    lock = threading.Lock()

    def body(name: str) -> Any:
        def run() -> None:
            with lock:
                runs[name] = runs.get(name, 0) + 1
        return run

    for name in ("a", "b", "c", "d"):
        service.schedule_job(name, "*/5 * * * *", body(name))
    step(clock, service, 300)
    service.unschedule_job("b")
    assert len(timer_of(service)) == 3
    step(clock, service, 300, times=2)
    assert runs == {"a": 3, "b": 1, "c": 3, "d": 3}
    # the first and the last of the group too
    service.unschedule_job("a")
    service.unschedule_job("d")
    step(clock, service, 300)
    assert runs == {"a": 3, "b": 1, "c": 4, "d": 3}
    assert live_groups(service) == 1


def test_replacing_and_unscheduling_every_job_leaves_no_entry_and_no_live_group(
    clock: ManualClock, service: BackgroundJobService
) -> None:
    old: list[int] = []
    new: list[int] = []
    for i in range(20):
        service.schedule_job(f"j{i}", "* * * * *", lambda: old.append(1))
    step(clock, service, 60)
    assert len(old) == 20
    for i in range(20):  # the same name on another expression: replaced
        service.schedule_job(f"j{i}", "*/2 * * * *", lambda: new.append(1))
    timer = timer_of(service)
    assert len(timer) == 20
    step(clock, service, 60)  # 00:02
    assert len(old) == 20 and len(new) == 20
    service.unschedule_all()
    assert len(timer) == 0
    assert live_groups(service) == 0
    step(clock, service, 120, times=2)
    assert len(old) == 20 and len(new) == 20
    assert timer.groups() == (0, 0)  # dead heap items were dropped when they came up


def test_one_expression_in_two_zones_makes_two_groups_firing_at_their_own_times(
    clock: ManualClock, service: BackgroundJobService
) -> None:
    berlin = [service.schedule_job(f"b{i}", "0 9 * * *", lambda: None,
                                   timezone="Europe/Berlin") for i in range(3)]
    york = [service.schedule_job(f"n{i}", "0 9 * * *", lambda: None,
                                 timezone="America/New_York") for i in range(3)]
    assert live_groups(service) == 2 and len(timer_of(service)) == 6
    clock.advance_to("2026-01-01T08:00:00+00:00")  # 09:00 in Berlin, 03:00 in New York
    assert service.wait_until_idle(WAIT)
    assert [j.run_count for j in berlin + york] == [1, 1, 1, 0, 0, 0]
    clock.advance_to("2026-01-01T14:00:00+00:00")  # 09:00 in New York
    assert service.wait_until_idle(WAIT)
    assert [j.run_count for j in berlin + york] == [1, 1, 1, 1, 1, 1]
    for job in york:
        assert job.last_invocation is not None and job.last_invocation.scheduled_for == \
            datetime(2026, 1, 1, 14, tzinfo=UTC)
    assert {j.next_invocation for j in berlin} == {datetime(2026, 1, 2, 8, tzinfo=UTC)}
    assert {j.next_invocation for j in york} == {datetime(2026, 1, 2, 14, tzinfo=UTC)}
    assert live_groups(service) == 2


class Receiver:
    """A timer's hand-off that records what it is handed: (start, [(targets, fire time,
    next fire time, coalesced)])."""

    def __init__(self) -> None:
        self.handed: list[tuple[float, list[tuple[list[object], datetime, datetime | None,
                                                  bool]]]] = []

    def __call__(self, start: float, due: list[Any]) -> None:
        self.handed.append((start, [([e.target for e in entries], s, f, c)
                                    for entries, s, f, c in due]))

    def fires(self, target: object) -> list[int]:
        """The minutes of the fire times ``target`` was handed over at."""
        return [when.minute for _, due in self.handed for targets, when, _, _ in due
                if target in targets]


def test_a_fired_group_merges_with_the_group_already_waiting_at_its_next_time(
    clock: ManualClock,
) -> None:
    receiver = Receiver()
    timer = Timer(clock, receiver, name="merge-timer")
    schedule = CronSchedule("* * * * *", "UTC")
    first, second = object(), object()
    try:
        timer.add(schedule, first)  # 00:01
        timer.add(schedule, second, after=datetime(2026, 1, 1, 0, 1, tzinfo=UTC))  # 00:02
        assert timer.groups()[0] == 2
        clock.advance(60)
        assert timer.groups()[0] == 1 and len(timer) == 2
        clock.advance(60)
        clock.advance(60)
        assert (receiver.fires(first), receiver.fires(second)) == ([1, 2, 3], [2, 3])
        assert timer.groups()[0] == 1
    finally:
        timer.stop(WAIT)


def test_a_timer_wakes_its_lead_early_and_hands_the_fires_over(clock: ManualClock) -> None:
    receiver = Receiver()
    timer = Timer(clock, receiver, name="handoff-timer", lead=0.5)
    target = object()
    try:
        timer.add(CronSchedule("* * * * *", "UTC"), target)  # due at 00:01:00
        clock.advance(59.4)
        assert receiver.handed == []
        clock.advance(0.1)  # 00:00:59.5: the lead before the fire time
        minute = datetime(2026, 1, 1, 0, 1, tzinfo=UTC)
        assert receiver.handed == [(pytest.approx(clock.monotonic() + 0.5),
                                    [([target], minute, minute + timedelta(minutes=1), False)])]
    finally:
        timer.stop(WAIT)


def test_fires_handed_over_ahead_of_time_start_at_their_time_on_the_injected_clock() -> None:
    clock = ManualClock("2026-01-01T00:00:00+00:00", handoff_lead=0.5)
    service = BackgroundJobService(clock=clock, timezone="UTC")
    try:
        ran: list[str] = []
        jobs = [service.schedule_job(f"j{i}", "0 * * * *", lambda i=i: ran.append(f"j{i}"))
                for i in range(20)]
        clock.advance_to("2026-01-01T00:59:59.6+00:00")  # handed over 0.5 s ahead...
        assert ran == [] and service.wait_until_idle(0.05) is False  # ...and waiting
        clock.advance(0.4)  # 01:00: its time
        assert service.wait_until_idle(WAIT)
        assert sorted(ran) == sorted(job.name for job in jobs)
        assert {job.last_invocation.scheduled_for.hour for job in jobs} == {1}
    finally:
        service.shutdown()


# --- the published state ------------------------------------------------------------------


def test_an_observer_added_later_sees_each_run_as_one_state_with_its_invocation(
    clock: ManualClock, service: BackgroundJobService
) -> None:
    job = service.schedule_job("j", "* * * * *", lambda: None)
    step(clock, service, 60)  # one run before anyone observes
    seen: list[tuple[int, int, int | None, bool]] = []

    def on_state(change: Any) -> None:
        last = change.new.last_invocation
        minute = last.scheduled_for.minute if last and last.scheduled_for else None
        seen.append((change.old.run_count, change.new.run_count, minute, change.new.running))

    job.observe(on_state, names="state")
    step(clock, service, 60, times=3)
    # coalesced: each quick run is one change, never a "running" state in between
    assert seen == [(1, 2, 2, False), (2, 3, 3, False), (3, 4, 4, False)]
    job.unobserve(on_state, names="state")
    step(clock, service, 60, times=2)
    assert len(seen) == 3
    assert job.run_count == 6 and job.state.run_count == 6


def test_each_published_state_carries_the_next_fire_time(
    clock: ManualClock, service: BackgroundJobService
) -> None:
    job = service.schedule_job("j", "*/10 * * * *", lambda: None)
    moves: list[datetime | None] = []
    job.observe(lambda change: moves.append(change.new.next_invocation), names="state")
    step(clock, service, 600, times=2)
    assert moves == [datetime(2026, 1, 1, 0, 20, tzinfo=UTC),
                     datetime(2026, 1, 1, 0, 30, tzinfo=UTC)]


def test_a_long_run_is_published_as_running_before_it_ends(
    clock: ManualClock, service: BackgroundJobService
) -> None:
    release = threading.Event()
    job = service.schedule_job("slow", "0 * * * *", lambda: release.wait(10))
    states: list[tuple[bool, int]] = []
    running = threading.Event()

    def on_state(change: Any) -> None:
        states.append((change.new.running, change.new.run_count))
        if change.new.running:
            running.set()

    job.observe(on_state, names="state")
    future = job.invoke_now()
    assert wait_for(lambda: job.running)
    assert states == []  # "running" is published only once the run has lasted a moment
    clock.advance(1)
    assert running.wait(5)
    assert job.running and job.state.running
    release.set()
    future.result(5)
    assert states == [(True, 0), (False, 1)]


def test_removing_one_of_two_observers_of_the_state_keeps_the_other_notified(
    clock: ManualClock, service: BackgroundJobService
) -> None:
    job = service.schedule_job("j", "* * * * *", lambda: None)
    first: list[int] = []
    second: list[int] = []

    def one(change: Any) -> None:
        first.append(change.new.run_count)

    def two(change: Any) -> None:
        second.append(change.new.run_count)

    job.observe(one, names="state")
    job.observe(two, names="state")
    step(clock, service, 60)
    job.unobserve(one, names="state")
    step(clock, service, 60, times=2)
    assert first == [1]
    assert second == [1, 2, 3]


def test_an_observer_of_all_traits_sees_each_state_until_removed(
    clock: ManualClock, service: BackgroundJobService
) -> None:
    job = service.schedule_job("j", "* * * * *", lambda: None)
    changes: list[tuple[str, Any]] = []

    def everything(change: Any) -> None:
        changes.append((change.name, change.new))

    job.observe(everything)  # names=All
    step(clock, service, 60)
    assert [name for name, _ in changes] == ["state"]
    assert changes[0][1].run_count == 1
    assert changes[0][1].next_invocation == datetime(2026, 1, 1, 0, 2, tzinfo=UTC)
    job.unobserve(everything, names=All)
    changes.clear()
    step(clock, service, 60)
    assert changes == []
    assert job.run_count == 2


def test_unobserved_traits_read_correctly_after_runs(
    clock: ManualClock, service: BackgroundJobService
) -> None:
    job = service.schedule_job("j", "* * * * *", lambda: None)
    failing = service.schedule_job("f", "* * * * *", lambda: 1 / 0)
    step(clock, service, 60, times=2)
    assert job.run_count == 2 and job.failure_count == 0
    assert job.next_invocation == datetime(2026, 1, 1, 0, 3, tzinfo=UTC)
    assert job.last_invocation is not None
    assert job.last_invocation.scheduled_for == datetime(2026, 1, 1, 0, 2, tzinfo=UTC)
    assert [i.scheduled_for.minute for i in job.history if i.scheduled_for] == [1, 2]
    assert job.running is False
    assert failing.run_count == 2 and failing.failure_count == 2
    assert failing.last_invocation is not None and not failing.last_invocation.success
    job.pause()
    assert job.paused and job.next_invocation is None
    job.resume()
    assert job.next_invocation == datetime(2026, 1, 1, 0, 3, tzinfo=UTC)


def test_a_timer_stopped_while_its_thread_starts_does_not_keep_its_starter_waiting(
    clock: ManualClock,
) -> None:
    for _ in range(20):  # the race: stop() between starting the thread and its first wait
        timer = Timer(clock, Receiver(), name="race-timer")
        stopper = threading.Thread(target=timer.stop, args=(WAIT,))
        started = time.monotonic()
        stopper.start()
        try:
            timer.call_later(60, lambda: None)
        except RuntimeError:  # stopped first: refused at once
            pass
        stopper.join(WAIT)
        assert time.monotonic() - started < 2.0


# --- LoopSupervisor ---------------------------------------------------------------------


def test_a_coroutine_run_beginning_while_the_loop_check_rearms_starts_no_second_check() -> None:
    from collections.abc import Callable

    from mashroom_jobs.core._loops import LoopSupervisor
    from mashroom_jobs.core.scheduler import TimerCall

    pending: list[TimerCall] = []  # the timer, by hand: the checks it holds

    def call_later(delay: float, fn: Callable[..., object], *args: object) -> TimerCall:
        pending.append(TimerCall(delay, fn, args))
        return pending[-1]

    class HookedClock(ManualClock):
        """Calls ``hook`` once, at the next read: between a check's steps."""

        hook: Callable[[], None] | None = None

        def monotonic(self) -> float:
            hook, self.hook = self.hook, None
            if hook is not None:
                hook()
            return super().monotonic()

    clock = HookedClock()
    supervisor = LoopSupervisor(clock, call_later, 2.0, lambda task, lag: None)
    assert supervisor.current.loop is None  # a loop to watch (never started: no thread)
    supervisor.run_began()
    assert len(pending) == 1
    for _ in range(3):  # each check: another run begins after it took its slot, before it re-arms
        clock.hook = supervisor.run_began
        pending.pop().fn()
        assert clock.hook is None  # (it did begin)
        assert len(pending) == 1  # one check pending: one chain, not two
    supervisor.shutdown(0)
    assert pending[0].cancelled
