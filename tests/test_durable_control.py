"""Durable jobs and the store's control tables, on a real store file: a pause that races
another process's change, the heartbeats of hosts long gone, the last fires of many jobs
at once, one job read without the others."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from mashroom_jobs import Command, JobInvocation, JobNotScheduledError, Outcome
from mashroom_jobs.durable import JobDefinition
from mashroom_jobs.durable.facade import DurableJobs
from mashroom_jobs.store import SQLiteStore
from mashroom_jobs.store.control import Stored
from mashroom_jobs.store.sqlite_store import HOST_RETENTION_SECONDS
from mashroom_jobs.testing import ManualClock

UTC = timezone.utc
T0 = datetime(2026, 1, 5, 6, 0, tzinfo=UTC)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(T0)


@pytest.fixture
def path(tmp_path: Path) -> str:
    return str(tmp_path / "store.sqlite")


@pytest.fixture
def stores(path: str, clock: ManualClock) -> Iterator[tuple[SQLiteStore, SQLiteStore]]:
    """Two stores on one file: this process's and another's."""
    here = SQLiteStore(path, origin="here pid 1", clock=clock)
    there = SQLiteStore(path, origin="there pid 2", clock=clock)
    yield here, there
    here.close()
    there.close()


def definition(name: str = "report", cron: str = "0 * * * *") -> JobDefinition:
    return JobDefinition.make(name, cron, Command(["true"]), timezone="UTC")


@pytest.mark.parametrize("verb", ["pause", "resume"])
def test_a_pause_keeps_a_change_another_process_made_after_it_read_the_job(
    stores: tuple[SQLiteStore, SQLiteStore], clock: ManualClock,
    monkeypatch: pytest.MonkeyPatch, verb: str
) -> None:
    here, there = stores
    jobs = DurableJobs(here.control, clock.now)
    jobs.define(definition())
    if verb == "resume":
        jobs.pause("report")
    before = here.control.definition("report")
    assert before is not None
    read = here.control.definition
    stale: list[Stored] = []

    def read_then_changed_elsewhere(name: str) -> Stored | None:
        stored = read(name)
        if not stale and stored is not None:  # the other process changes it right after
            stale.append(stored)
            there.control.define(name, {**stored.data, "cron": "30 * * * *"})
        return stored

    monkeypatch.setattr(jobs.control, "definition", read_then_changed_elsewhere)
    getattr(jobs, verb)("report")
    after = there.control.definition("report")
    assert after is not None and stale and stale[0].version == before.version
    assert after.data["cron"] == "30 * * * *"  # the other change stays
    assert after.data["paused"] is (verb == "pause")  # and so does the pause
    assert after.version == before.version + 2


def test_a_pause_that_loses_every_race_says_so_and_writes_nothing(
    stores: tuple[SQLiteStore, SQLiteStore], clock: ManualClock,
    monkeypatch: pytest.MonkeyPatch
) -> None:
    here, there = stores
    jobs = DurableJobs(here.control, clock.now)
    jobs.define(definition())
    read = here.control.definition
    crons = iter(f"{minute} * * * *" for minute in range(1, 60))

    def always_changed_elsewhere(name: str) -> Stored | None:
        stored = read(name)
        assert stored is not None
        there.control.define(name, {**stored.data, "cron": next(crons)})
        return stored

    monkeypatch.setattr(jobs.control, "definition", always_changed_elsewhere)
    with pytest.raises(ValueError, match="changed meanwhile"):
        jobs.pause("report")
    after = there.control.definition("report")
    assert after is not None and not after.data["paused"]


def test_a_pause_of_what_is_paused_or_missing_writes_nothing(
    stores: tuple[SQLiteStore, SQLiteStore], clock: ManualClock
) -> None:
    here, _ = stores
    jobs = DurableJobs(here.control, clock.now)
    jobs.define(definition())
    jobs.pause("report")
    jobs.pause("report")
    stored = here.control.definition("report")
    assert stored is not None and stored.version == 2 and stored.data["paused"]
    with pytest.raises(JobNotScheduledError, match="set_override"):
        jobs.pause("nothing")


def test_get_reads_one_job_as_jobs_lists_it_and_run_and_stop_refuse_unknown_names(
    stores: tuple[SQLiteStore, SQLiteStore], clock: ManualClock
) -> None:
    here, there = stores
    jobs = DurableJobs(here.control, clock.now)
    jobs.define(definition("a"))
    jobs.define(definition("b", "*/5 * * * *"))
    there.control.beat("h", "kernel", "m", 2, T0, {"origin": "there", "jobs": [],
                                                    "parked": {"b": "ImportError: x"}})
    listed = {info.name: info for info in jobs.jobs()}
    assert jobs.get("a") == listed["a"] and jobs.get("b") == listed["b"]
    assert jobs.get("b").parked_on == {"there": "ImportError: x"}
    for verb in (jobs.get, jobs.run, jobs.stop):
        with pytest.raises(JobNotScheduledError, match="no durable job named 'c' in the store"):
            verb("c")
    assert jobs.run("a") is None  # asked through the store
    assert jobs.stop("a") == 0
    assert [c.action for c in here.control.commands(0)] == ["run", "stop"]


def test_a_prune_forgets_hosts_not_seen_for_a_day_and_keeps_the_others(
    stores: tuple[SQLiteStore, SQLiteStore], clock: ManualClock
) -> None:
    here, there = stores
    there.control.beat("killed", "kernel", "m", 2, T0, {})
    clock.advance(HOST_RETENTION_SECONDS - 60)
    there.control.beat("alive", "kernel", "m", 3, T0, {})
    here.prune()
    assert {row.id for row in here.control.hosts()} == {"killed", "alive"}
    clock.advance(120)  # the first was last seen a day ago
    here.prune()
    assert [row.id for row in here.control.hosts()] == ["alive"]


def test_last_fires_are_the_last_fire_of_each_job_in_one_read(
    stores: tuple[SQLiteStore, SQLiteStore]
) -> None:
    here, _ = stores
    hour = timedelta(hours=1)
    here.claim_many([("a", T0), ("a", T0 + hour), ("b", T0 - hour)])
    here.record("b", JobInvocation(timestamp=T0, scheduled_for=T0 - hour / 2,
                                   trigger="scheduled", execution_time_ms=1.0,
                                   outcome=Outcome.OK))  # a run newer than b's claim
    assert here.flush(5.0)
    names = ["a", "b", "never", *(f"job {i}" for i in range(900))]  # (more than one query)
    here.claim(names[-1], T0 + 2 * hour)
    fires = here.control.last_fires(names)
    assert fires == {"a": T0 + hour, "b": T0 - hour / 2, names[-1]: T0 + 2 * hour}
    assert all(here.control.last_fire(name) == fires.get(name) for name in names[:4])
    assert here.control.last_fires([]) == {}


def test_a_definition_parses_its_cron_once_and_compares_without_it() -> None:
    one, two = definition(), definition()
    assert one.schedule() is one.schedule()
    assert one == two and hash(one) == hash(two) and "_schedule" not in repr(one)
    assert one.schedule().next_fire_time(T0) == T0 + timedelta(hours=1)
