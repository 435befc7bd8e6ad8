"""Durable jobs in one process: definitions in a real store file, hosted by services that
share it, driven by one ManualClock (each service's host follows the store on its timer,
every second of the clock).  Real processes: tests/test_durable_processes.py."""

from __future__ import annotations

import os
import re
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from mashroom_jobs import (
    BackgroundJobService,
    Command,
    FunctionRef,
    Outcome,
    TargetError,
    TargetUnavailableError,
)
from mashroom_jobs.durable import CatchUp, plan_catch_up
from mashroom_jobs.testing import ManualClock, wait_for

WAIT = 5.0
T0 = "2026-01-05T06:00:00+00:00"  # a Monday


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(T0)


@pytest.fixture
def path(tmp_path: Path) -> str:
    return str(tmp_path / "store.sqlite")


@pytest.fixture
def module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A folder on sys.path for test modules (``durable_tasks``), forgotten after."""
    folder = tmp_path / "modules"
    folder.mkdir()
    (folder / "durable_tasks.py").write_text(
        "import os\n"
        "CALLS = []\n"
        "def record(tag=None, context=None):\n"
        "    CALLS.append((tag, context is not None))\n"
        "    print('recorded', tag)\n"
    )
    monkeypatch.syspath_prepend(str(folder))
    yield folder
    sys.modules.pop("durable_tasks", None)


class Hosts:
    """Services made on one store and clock, shut down at the end."""

    def __init__(self, path: str, clock: ManualClock) -> None:
        self.path, self.clock = path, clock
        self.services: list[BackgroundJobService] = []

    def start(self, name: str, **settings: Any) -> BackgroundJobService:
        service = BackgroundJobService(clock=self.clock, timezone="UTC", store=self.path,
                                       kernel_id=name, **settings)
        self.services.append(service)
        return service

    def idle(self) -> None:
        for service in self.services:
            if not service.is_shut_down:
                assert service.wait_until_idle(WAIT)

    def tick(self, seconds: int = 1) -> None:
        """Move the clock second by second: each host looks at the store each second
        (on a pool worker: wait until each has)."""
        for _ in range(seconds):
            self.clock.advance(1)
            self.settle()

    def settle(self) -> None:
        for service in self.services:
            host = service.durable.host if service.durable is not None else None
            if host is not None and not service.is_shut_down:
                assert wait_for(lambda host=host: not host._busy)
        self.idle()

    def close(self) -> None:
        for service in self.services:
            service.shutdown(timeout=WAIT)


@pytest.fixture
def hosts(path: str, clock: ManualClock) -> Iterator[Hosts]:
    made = Hosts(path, clock)
    yield made
    made.close()


def stored_runs(service: BackgroundJobService, name: str) -> list[Any]:
    return sorted(service.history(name, 100), key=lambda r: (r.timestamp, r.trigger))


# --- definitions outlive their process ------------------------------------------------


def test_jobs_defined_in_one_process_run_in_another_after_it_is_gone(
    hosts: Hosts, module: Path
) -> None:
    a = hosts.start("A")
    command = a.schedule_job("echo", "*/5 * * * *", Command(["echo", "from a command"]),
                             durable=True)
    call = a.schedule_job("call", "*/5 * * * *", "durable_tasks:record", durable=True)
    assert command.durable and command.exclusive and call.target == FunctionRef(
        "durable_tasks:record")
    a.shutdown()
    b = hosts.start("B")
    assert {job.name for job in b.jobs} == {"echo", "call"}
    hosts.clock.advance(300)
    hosts.idle()
    echo = b.get_job("echo")
    assert echo is not None and echo.last_invocation is not None
    assert echo.last_invocation.outcome is Outcome.OK
    assert echo.last_invocation.output == "from a command\n"
    assert sys.modules["durable_tasks"].CALLS == [(None, True)]  # given its context
    assert [r.outcome for r in stored_runs(b, "call")] == [Outcome.OK]


def test_a_pause_made_anywhere_holds_in_every_host_and_after_a_restart(
    hosts: Hosts, module: Path
) -> None:
    b = hosts.start("B")
    b.schedule_job("call", "* * * * *", "durable_tasks:record", durable=True)
    controller = hosts.start("C", durable_jobs=False)  # reads and changes, hosts nothing
    assert controller.jobs == () and controller.durable is not None
    controller.pause_job("call")
    hosts.tick()  # B obeys at its next look at the store
    job = b.get_job("call")
    assert job is not None and job.paused and job.next_invocation is None
    runs = len(stored_runs(b, "call"))
    hosts.clock.advance(120)
    hosts.idle()
    assert len(stored_runs(b, "call")) == runs
    b.shutdown()
    again = hosts.start("B2")
    restarted = again.get_job("call")
    assert restarted is not None and restarted.paused
    controller.resume_job("call")
    hosts.tick()
    assert not restarted.paused and restarted.next_invocation is not None
    info = controller.durable.get("call")
    assert not info.paused and info.changed_by.endswith("kernel C") and info.version == 3


def test_run_now_from_a_process_that_does_not_host_runs_once_in_one_host(
    hosts: Hosts, module: Path
) -> None:
    first = hosts.start("H1")
    first.schedule_job("call", "0 0 1 1 *", "durable_tasks:record", durable=True)
    second = hosts.start("H2")
    controller = hosts.start("C", durable_jobs=False)
    assert controller.durable.run("call") is None  # asked through the store
    hosts.tick()
    hosts.tick()
    assert wait_for(lambda: stored_runs(controller, "call") != [])  # (written by its host)
    runs = stored_runs(controller, "call")
    assert [(r.trigger, r.outcome) for r in runs] == [("manual", Outcome.OK)]
    assert {first.get_job("call").run_count, second.get_job("call").run_count} == {0, 1}


def test_a_stop_asked_anywhere_ends_the_command_and_leaves_no_process(
    hosts: Hosts,
) -> None:
    host = hosts.start("H")
    job = host.schedule_job("sleepy", "0 0 1 1 *",
                            Command(["sh", "-c", "sleep 60 & sleep 60; wait"]), durable=True)
    future = job.invoke_now()
    assert wait_for(lambda: job.running)
    assert wait_for(lambda: _group_of(job) is not None)
    group = _group_of(job)
    controller = hosts.start("C", durable_jobs=False)
    controller.stop_job("sleepy")
    hosts.clock.advance(1)  # the host sees the command at its next look
    record = future.result(WAIT)
    assert record.outcome is Outcome.STOPPED
    assert group is not None and wait_for(lambda: not _alive(group))


def test_a_timed_out_command_leaves_no_process(hosts: Hosts) -> None:
    host = hosts.start("H")
    job = host.schedule_job("slow", "0 0 1 1 *", Command("sleep 60 & sleep 60", shell=True),
                            timeout=1, durable=True)
    future = job.invoke_now()
    assert wait_for(lambda: _group_of(job) is not None)
    group = _group_of(job)
    hosts.clock.advance(1)
    assert future.result(WAIT).outcome is Outcome.TIMED_OUT
    assert group is not None and wait_for(lambda: not _alive(group))


def _group_of(job: Any) -> int | None:
    """The process group of the job's running command (its children are in it)."""
    import psutil

    me = psutil.Process()
    for child in me.children(recursive=True):
        try:
            if child.name() in ("sh", "sleep") and os.getpgid(child.pid) == child.pid:
                return child.pid
        except (psutil.NoSuchProcess, ProcessLookupError):
            continue
    return None


def _alive(group: int) -> bool:
    try:
        os.killpg(group, 0)
    except ProcessLookupError:
        return False
    return True


# --- catching up ---------------------------------------------------------------------------


def test_missed_fires_are_caught_up_once_by_the_latest_policy_with_three_hosts_racing(
    hosts: Hosts, module: Path
) -> None:
    a = hosts.start("A")
    a.schedule_job("hourly", "0 * * * *", "durable_tasks:record", durable=True)
    hosts.clock.advance_to("2026-01-05T07:00:00+00:00")
    hosts.idle()
    a.shutdown()  # nothing runs from 07:00 to 10:30: 08:00, 09:00 and 10:00 are missed
    hosts.clock.advance_to("2026-01-05T10:30:00+00:00")
    racing = [threading.Thread(target=hosts.start, args=(name,)) for name in "BCD"]
    for thread in racing:
        thread.start()
    for thread in racing:
        thread.join(WAIT * 2)
    assert not any(thread.is_alive() for thread in racing)
    hosts.idle()
    reader = hosts.services[-1]
    assert wait_for(lambda: len(stored_runs(reader, "hourly")) >= 4)
    # every host writes what it did (after its batch_delay): shut each down, which writes
    # its queued runs, so that a late duplicate would be read too
    for service in hosts.services:
        assert service.shutdown(timeout=WAIT) == ()
    runs = stored_runs(reader, "hourly")
    got = [(r.scheduled_for.hour, r.trigger, r.outcome) for r in runs]
    assert sorted(got) == [(7, "schedule", Outcome.OK), (8, "schedule", Outcome.MISSED),
                           (9, "schedule", Outcome.MISSED), (10, "catch-up", Outcome.OK)]
    missed = [r for r in runs if r.outcome is Outcome.MISSED]
    assert all("no process ran this fire" in (r.error_message or "") for r in missed)


@pytest.mark.parametrize(("policy", "expected"), [
    ("skip", [("schedule", Outcome.MISSED)] * 3),
    ("all", [("catch-up", Outcome.OK)] * 3),
], ids=["skip", "all"])
def test_the_other_catch_up_policies(hosts: Hosts, module: Path, policy: str,
                                     expected: list[tuple[str, Outcome]]) -> None:
    a = hosts.start("A")
    a.schedule_job("hourly", "0 * * * *", "durable_tasks:record", durable=True,
                   catchup=policy)
    a.shutdown()
    hosts.clock.advance_to("2026-01-05T09:30:00+00:00")  # 07:00, 08:00, 09:00 missed
    b = hosts.start("B")
    assert wait_for(lambda: len(b.history("hourly", 10)) == 3)
    hosts.idle()
    assert wait_for(lambda: len(b.history("hourly", 10)) == 3)
    runs = sorted(b.history("hourly", 10), key=lambda r: r.scheduled_for)
    assert [(r.trigger, r.outcome) for r in runs] == expected
    assert [r.scheduled_for.hour for r in runs] == [7, 8, 9]


def test_fires_older_than_the_window_are_left_alone() -> None:
    from datetime import datetime, timedelta, timezone

    base = datetime(2026, 1, 1, tzinfo=timezone.utc)
    fires = [base + timedelta(hours=h) for h in range(5)]
    assert plan_catch_up(fires, CatchUp("latest")) == ([fires[-1]], fires[:-1])
    assert plan_catch_up(fires, CatchUp("all", limit=2)) == (fires[3:], fires[:3])
    assert plan_catch_up([], CatchUp()) == ([], [])
    with pytest.raises(TargetError, match="catch-up policy must be one of"):
        CatchUp("sometimes")  # type: ignore[arg-type]


def test_the_fires_a_look_back_finds_are_the_newest_and_the_older_ones_are_counted() -> None:
    from datetime import datetime, timedelta, timezone

    from mashroom_jobs.core.cron import CronSchedule
    from mashroom_jobs.durable.catchup import fires_between

    base = datetime(2026, 1, 1, tzinfo=timezone.utc)
    hourly = CronSchedule("0 * * * *", timezone="UTC")
    fires, dropped = fires_between(hourly, base, base + timedelta(hours=5), keep=2)
    assert fires == [base + timedelta(hours=4), base + timedelta(hours=5)]
    assert dropped == 3
    assert fires_between(hourly, base, base + timedelta(minutes=59), keep=2) == ([], 0)


def test_a_suspend_is_caught_up_by_the_policy_instead_of_one_coalesced_run(
    hosts: Hosts, module: Path
) -> None:
    host = hosts.start("H")
    job = host.schedule_job("hourly", "0 * * * *", "durable_tasks:record", durable=True)
    hosts.clock.jump(3 * 3600 + 60)  # the wall clock moved, the process's time did not
    hosts.tick()  # the timer coalesces (and leaves it to the host), the host catches up
    hosts.tick()
    runs = sorted(host.history("hourly", 10), key=lambda r: r.scheduled_for)
    assert [(r.scheduled_for.hour, r.trigger, r.outcome) for r in runs] == [
        (7, "schedule", Outcome.MISSED), (8, "schedule", Outcome.MISSED),
        (9, "catch-up", Outcome.OK)]
    assert job.misfire_count == 1 and job.run_count == 1  # the timer coalesced once


# --- never losing a definition ---------------------------------------------------------------


def test_a_job_whose_module_is_gone_is_parked_kept_and_hosted_again_once_it_is_back(
    hosts: Hosts, module: Path
) -> None:
    a = hosts.start("A")
    a.schedule_job("call", "* * * * *", "durable_tasks:record", durable=True)
    a.shutdown()
    (module / "durable_tasks.py").rename(module / "elsewhere.py")
    sys.modules.pop("durable_tasks", None)
    b = hosts.start("B")
    assert b.get_job("call") is None
    parked = b.durable.host.parked()["call"]
    assert "cannot import 'durable_tasks'" in parked.error
    info = b.durable.get("call")
    assert info.error is not None and info.definition is not None  # kept, with its error
    hosts.tick(2)
    assert b.durable.control.definition("call") is not None
    (module / "elsewhere.py").rename(module / "durable_tasks.py")
    hosts.tick(b.durable.host.retry_every)  # tried again every 30 s
    job = b.get_job("call")
    assert job is not None and job.durable and "call" not in b.durable.host.parked()


def test_a_definition_of_a_newer_kind_is_parked_not_misread(hosts: Hosts, module: Path) -> None:
    a = hosts.start("A")
    a.durable.control.define("future", {"format": 1, "cron": "* * * * *", "timezone": "UTC",
                                        "target": {"kind": "teleport", "to": "mars"}})
    a.durable.host.follow_now()
    assert "unknown target kind 'teleport'" in a.durable.host.parked()["future"].error
    assert a.get_job("future") is None


def test_removing_a_durable_job_is_explicit_and_reaches_every_host(
    hosts: Hosts, module: Path
) -> None:
    a = hosts.start("A")
    b = hosts.start("B")
    a.schedule_job("call", "* * * * *", "durable_tasks:record", durable=True)
    hosts.tick()
    assert b.get_job("call") is not None
    b.unschedule_job("call")
    hosts.tick()
    assert a.get_job("call") is None and b.get_job("call") is None
    assert a.durable.jobs() == []


# --- bad input: a clear error, and nothing changed -----------------------------------------------


def _nested() -> Any:
    def closure() -> None:
        pass

    return closure


class Holder:
    def method(self) -> None:
        pass


@pytest.mark.parametrize(("callback", "why"), [
    (lambda: None, "is a lambda"),
    (_nested(), "is defined inside another function (a closure)"),
    (Holder().method, "is a bound method"),
], ids=["lambda", "closure", "bound-method"])
def test_what_cannot_be_named_again_cannot_be_durable(
    hosts: Hosts, callback: Any, why: str
) -> None:
    service = hosts.start("A")
    with pytest.raises(TypeError, match=re.escape(why)) as info:
        service.schedule_job("x", "* * * * *", callback, durable=True)
    assert "'package.module:function' reference" in str(info.value)
    assert service.durable.jobs() == [] and service.jobs == ()


def test_a_function_of_main_cannot_be_durable(hosts: Hosts) -> None:
    service = hosts.start("A")

    def job() -> None:
        pass

    job.__module__, job.__qualname__ = "__main__", "job"
    with pytest.raises(TypeError, match=r"defined in __main__ \(a notebook or a script\)"):
        service.schedule_job("x", "* * * * *", job, durable=True)


def test_bad_targets_name_what_is_wrong_and_keep_the_existing_job(
    hosts: Hosts, module: Path
) -> None:
    service = hosts.start("A")
    job = service.schedule_job("x", "* * * * *", "durable_tasks:record", durable=True)
    with pytest.raises(TargetError, match=r"kwargs\['when'\] is a datetime"):
        service.schedule_job("x", "* * * * *",
                             FunctionRef("durable_tasks:record",
                                         kwargs={"when": __import__("datetime").datetime.now()}),
                             durable=True)
    with pytest.raises(TargetUnavailableError, match="command not found on the PATH: "
                                                     "'no-such-program-xyz'"):
        service.schedule_job("x", "* * * * *", Command(["no-such-program-xyz"]), durable=True)
    with pytest.raises(TargetUnavailableError, match="module 'durable_tasks' has no 'nope'"):
        service.schedule_job("x", "* * * * *", "durable_tasks:nope", durable=True)
    with pytest.raises(ValueError, match="a durable job needs a cron expression"):
        service.schedule_job("x", None, "durable_tasks:record", durable=True)
    assert service.get_job("x") is job and job.active
    assert service.durable.get("x").version == 1


def test_durable_jobs_need_a_store(clock: ManualClock) -> None:
    service = BackgroundJobService(clock=clock, timezone="UTC")
    try:
        with pytest.raises(ValueError, match="durable jobs are kept in a job store"):
            service.schedule_job("x", "* * * * *", Command(["true"]), durable=True)
    finally:
        service.shutdown()


def test_two_processes_defining_one_name_at_once_end_with_one_definition_everywhere(
    hosts: Hosts, module: Path
) -> None:
    a, b = hosts.start("A"), hosts.start("B")
    barrier = threading.Barrier(2)
    errors: list[BaseException] = []

    def define(service: BackgroundJobService, expression: str) -> None:
        barrier.wait(WAIT)
        try:
            service.schedule_job("race", expression, "durable_tasks:record", durable=True)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=define, args=(a, "*/2 * * * *")),
               threading.Thread(target=define, args=(b, "*/3 * * * *"))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(WAIT)
    assert not any(thread.is_alive() for thread in threads)
    assert errors == []
    hosts.tick()
    stored = a.durable.get("race")
    assert stored.version == 2
    assert a.get_job("race").cron_schedule == b.get_job("race").cron_schedule == \
        stored.definition.cron
    for _ in range(6):  # minute by minute, each fire on time
        hosts.clock.advance(60)
        hosts.idle()
    assert wait_for(lambda: any(r.outcome is Outcome.OK for r in a.history("race", 100)))
    for service in (a, b):  # each writes its queued runs before the check reads them
        assert service.shutdown(timeout=WAIT) == ()
    runs = a.history("race", 100)
    fires = [r.scheduled_for for r in runs if r.outcome is Outcome.OK]
    assert len(fires) == len(set(fires)) and fires  # each fire ran once, in one of them
    assert all(r.outcome in (Outcome.OK, Outcome.ELSEWHERE) for r in runs)


def test_an_in_kernel_job_and_a_durable_one_do_not_take_each_others_names(
    hosts: Hosts, module: Path
) -> None:
    service = hosts.start("A")
    service.schedule_job("mine", "* * * * *", lambda: None)
    with pytest.raises(ValueError, match="'mine' is an in-kernel job of this process"):
        service.schedule_job("mine", "* * * * *", "durable_tasks:record", durable=True)
    service.schedule_job("shared", "* * * * *", "durable_tasks:record", durable=True)
    with pytest.raises(ValueError, match="'shared' is a durable job hosted here"):
        service.schedule_job("shared", "* * * * *", lambda: None)


# --- what the host writes about itself ----------------------------------------------------------


def test_hosts_beat_and_say_what_they_follow_and_what_they_parked(
    hosts: Hosts, module: Path
) -> None:
    reader = hosts.start("R", durable_jobs=False)  # no host: no heartbeat
    a = hosts.start("A", host_kind="run")
    a.schedule_job("call", "* * * * *", "durable_tasks:record", durable=True)
    a.durable.control.define("lost", {"format": 1, "cron": "* * * * *", "timezone": "UTC",
                                      "target": {"kind": "function", "ref": "gone.mod:f"}})
    a.durable.host.follow_now()  # (a change made on its own connection: no one else's)
    hosts.tick(a.durable.host.beat_every)
    [host] = a.durable.hosts()
    assert host.kind == "run" and host.alive and host.origin == a.origin
    assert host.jobs == ("call",) and "cannot import 'gone.mod'" in host.parked["lost"]
    assert host.pid == os.getpid() and host.details == {"kernel_id": "A"}
    lost = a.durable.get("lost")
    assert lost.parked_on == {a.origin: host.parked["lost"]}
    hosts.clock.advance(60)  # no beat for a minute (its ticks do not run: no wake-up)
    a.shutdown()
    assert reader.durable.hosts() == []  # it left


def test_a_host_that_follows_nothing_new_does_little(hosts: Hosts, module: Path) -> None:
    a = hosts.start("A")
    b = hosts.start("B")
    a.schedule_job("call", "0 0 1 1 *", "durable_tasks:record", durable=True)
    hosts.tick()
    followed = b.durable.host.followed
    hosts.tick(20)  # (beats write to the hosts table, which does not count as a change)
    assert b.durable.host.followed == followed


def test_fires_a_blocked_process_could_not_fire_are_caught_up_by_the_policy(
    hosts: Hosts, module: Path
) -> None:
    host = hosts.start("H")
    job = host.schedule_job("hourly", "0 * * * *", "durable_tasks:record", durable=True)
    hosts.clock.advance(3 * 3600 + 60)  # (both clocks moved: the process was blocked)
    hosts.settle()
    assert wait_for(lambda: len(host.history("hourly", 10)) == 3)
    runs = sorted(host.history("hourly", 10), key=lambda r: r.scheduled_for)
    assert [(r.scheduled_for.hour, r.trigger, r.outcome) for r in runs] == [
        (7, "schedule", Outcome.MISSED), (8, "schedule", Outcome.MISSED),
        (9, "catch-up", Outcome.OK)]
    assert job.misfire_count == 1


def test_a_round_two_store_is_migrated_in_place_and_keeps_its_runs_and_claims(
    tmp_path: Path, clock: ManualClock
) -> None:
    import shutil
    import sqlite3

    from mashroom_jobs.store import SCHEMA_VERSION, SQLiteStore

    fixture = Path(__file__).parent / "fixtures" / "round2-store.sqlite"
    path = tmp_path / "round2.sqlite"
    shutil.copy(fixture, path)
    with sqlite3.connect(path) as raw:
        assert raw.execute("SELECT value FROM meta WHERE key = 'schema_version'"
                           ).fetchone()[0] == "1"
    store = SQLiteStore(path, clock=clock)
    try:
        runs = store.history()
        assert [(r.job, r.trigger, r.outcome, r.output.strip()) for r in runs] == [
            ("nightly report", "manual", Outcome.OK, "report written"),
            ("flaky sync", "schedule", Outcome.FAILED, ""),
            ("nightly report", "schedule", Outcome.OK, "report written")]
        assert runs[1].error_message == "ZeroDivisionError: division by zero"
        assert store.control.last_fire("nightly report").isoformat() == \
            "2026-12-01T06:00:00+00:00"  # its claim (and its run) survived
        assert store.control.definitions() == [] and store.control.hosts() == []
    finally:
        store.close()
    with sqlite3.connect(path) as raw:
        assert raw.execute("SELECT value FROM meta WHERE key = 'schema_version'"
                           ).fetchone()[0] == str(SCHEMA_VERSION)


# --- plugin jobs keep what users changed of them -------------------------------------------


def _plugin_entry_point(module: Path) -> Any:
    from importlib.metadata import EntryPoint

    from mashroom_jobs.plugins import ENTRY_POINT_GROUP

    (module / "tick_plugin.py").write_text(
        "from mashroom_jobs import background_job_plugin\n"
        "@background_job_plugin(default_config={'cron_schedule': '0 * * * *'})\n"
        "def bootstrap(name, config, holder):\n"
        "    return lambda: print('tick')\n")
    return EntryPoint(name="Tick", value="tick_plugin:bootstrap", group=ENTRY_POINT_GROUP)


def test_a_plugin_job_paused_anywhere_stays_paused_everywhere_and_after_restarts(
    hosts: Hosts, module: Path
) -> None:
    from mashroom_jobs.plugins import PluginLoader

    entry_point = _plugin_entry_point(module)
    a, b = hosts.start("A"), hosts.start("B")
    loaders = [PluginLoader(a), PluginLoader(b)]
    for loader in loaders:
        loader.load([entry_point])
    a.get_job("Tick").pause()  # in A's panel, say
    hosts.tick()  # B follows the store
    assert b.get_job("Tick").paused
    assert a.durable.overrides() == {"Tick": {"paused": True}}
    b.shutdown()
    c = hosts.start("C")  # a kernel started later loads the plugin paused
    PluginLoader(c).load([entry_point])
    assert c.get_job("Tick").paused and c.get_job("Tick").next_invocation is None
    c.durable.set_override("Tick", cron_schedule="*/10 * * * *")  # from the command line
    hosts.tick()
    for service in (a, c):
        job = service.get_job("Tick")
        assert job.cron_schedule == "*/10 * * * *" and job.paused
    assert a.durable.reset("Tick")
    hosts.tick()
    for service in (a, c):
        job = service.get_job("Tick")
        assert job.cron_schedule == "0 * * * *" and not job.paused
    for loader in loaders:
        loader.close()


def test_the_jobs_command_adds_lists_pauses_and_removes_durable_jobs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import json

    from mashroom_jobs.cli import main

    store = str(tmp_path / "cli.sqlite")
    assert main(["jobs", "add", "backup", "0 3 * * *", "--command", "echo 'backed up'",
                 "--tz", "UTC", "--catchup", "skip", "--store", store]) == 0
    assert "stored durable job 'backup' (version 1): 0 3 * * * (UTC): echo 'backed up'" in \
        capsys.readouterr().out
    assert main(["jobs", "add", "report", "0 7 * * *", "--call", "json:dumps",
                 "--arg", "obj=[1, 2]", "--store", store]) == 0
    capsys.readouterr()
    assert main(["jobs", "pause", "backup", "--store", store]) == 0
    assert main(["jobs", "list", "--json", "--store", store]) == 0
    listed = json.loads(capsys.readouterr().out.split("\n", 1)[1])
    by_name = {job["name"]: job for job in listed["durable"]}
    assert by_name["backup"]["state"] == "paused" and by_name["backup"]["version"] == 2
    assert by_name["backup"]["target"] == {"kind": "command", "argv": ["echo", "backed up"],
                                           "shell": False}
    assert by_name["report"]["target"]["kwargs"] == {"obj": [1, 2]}
    assert by_name["backup"]["catchup"]["policy"] == "skip"
    assert main(["jobs", "add", "bad", "* * * * *", "--command", "no-such-program-xyz",
                 "--store", store]) == 2
    assert "command not found on the PATH: 'no-such-program-xyz'" in capsys.readouterr().err
    assert main(["jobs", "add", "bad", "* * * * *", "--store", store]) == 2
    assert "give exactly one target" in capsys.readouterr().err
    assert main(["jobs", "remove", "backup", "--store", store]) == 0
    assert main(["jobs", "remove", "backup", "--store", store]) == 1
    assert "no durable job named 'backup'" in capsys.readouterr().err
    assert main(["jobs", "show", "report", "--store", store]) == 0
    assert "target:   json:dumps" in capsys.readouterr().out


def test_pausing_a_durable_job_hosted_here_pauses_it_in_place(
    hosts: Hosts, module: Path
) -> None:
    service = hosts.start("A")
    job = service.schedule_job("call", "* * * * *", "durable_tasks:record", durable=True)
    hosts.clock.advance(60)
    hosts.idle()
    assert job.run_count == 1
    job.pause()
    assert service.get_job("call") is job and job.paused and job.run_count == 1
    job.resume()
    assert service.get_job("call") is job and not job.paused and len(job.history) == 1
