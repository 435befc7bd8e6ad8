"""Alerts: the policy alone (pure), the service's alerts with a recording channel (the
injected clock), claims across hosts, and real local receivers (an SMTP server from
aiosmtpd and an HTTP server, on 127.0.0.1 only) reached through apprise."""

from __future__ import annotations

import http.server
import json
import logging
import socket
import threading
import time
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from traitlets import TraitError

from mashroom_jobs import BackgroundJobService, Command
from mashroom_jobs.alerts import AlertPolicy, JobAlerts
from mashroom_jobs.core.events import RunFinished
from mashroom_jobs.core.records import JobInvocation, Outcome
from mashroom_jobs.durable import CatchUp, JobDefinition
from mashroom_jobs.store import SQLiteStore
from mashroom_jobs.testing import ManualClock, wait_for

pytest.importorskip("apprise")

T0 = datetime(2026, 3, 2, 12, 0, tzinfo=timezone.utc)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


# --- the policy (pure) ------------------------------------------------------------------


def test_fail_fail_succeed_is_one_failure_alert_and_one_recovery() -> None:
    policy = AlertPolicy(600, where="box pid 1")
    first = policy.problem("nightly", "failed", at(0), "ValueError: boom")
    assert first is not None and first.kind == "failed"
    assert first.title == "mashroom-jobs: 'nightly' failed"
    assert "ValueError: boom" in first.body and first.body.endswith("(from box pid 1)")
    assert policy.problem("nightly", "failed", at(60), "ValueError: again") is None
    recovered = policy.ok("nightly", at(120))
    assert recovered is not None and recovered.kind == "recovered"
    assert "after 2 failures since 2026-03-02 12:00:00 UTC" in recovered.body
    assert "Not told before: 1 failure." in recovered.body
    assert policy.ok("nightly", at(180)) is None  # healthy: nothing to tell
    assert policy.open_episodes() == {}


def test_a_job_failing_every_second_sends_one_alert_then_a_summary_per_interval() -> None:
    policy = AlertPolicy(600)
    alerts = []
    for second in range(1500):  # 25 minutes of failures, one a second
        alert = policy.problem("flappy", "failed", at(second), f"boom {second}")
        alerts += [alert] if alert is not None else []
        alerts += policy.due(at(second))
    assert [a.kind for a in alerts] == ["failed", "summary", "summary"]
    assert alerts[1].title == "mashroom-jobs: 'flappy' still has problems: 600 failures"
    assert "The latest, at 2026-03-02 12:10:00 UTC: boom 600" in alerts[1].body
    assert alerts[2].moment == at(1200)


def test_missed_fires_and_parks_open_episodes_of_their_own_kind() -> None:
    policy = AlertPolicy(600)
    missed = policy.problem("report", "missed", at(0), "no process ran it")
    assert missed is not None and missed.title == "mashroom-jobs: 'report' did not run"
    assert policy.problem("report", "missed", at(3600), "no process ran it") is None
    parked = policy.problem("etl", "parked", at(0), "ModuleNotFoundError: No module 'etl'")
    assert parked is not None and parked.title == "mashroom-jobs: 'etl' is parked"
    back = policy.ok("etl", at(5), "is hosted again")
    assert back is not None and "Job 'etl' is hosted again at" in back.body
    assert "after 1 park" in back.body


# --- the service's alerts, with the injected clock and a recording channel ---------------


class Recording:
    """A channel that keeps what it was asked to send (and fails for 'bad://' URLs)."""

    def __init__(self) -> None:
        self.messages: list[tuple[str, str, str]] = []

    def send(self, url: str, title: str, body: str) -> str | None:
        if url.startswith("json://127.0.0.1:1/"):
            return "connection refused"
        self.messages.append((url, title, body))
        return None


def _alerts(clock: ManualClock, store: Any = None, channel: Any = None,
            **kwargs: Any) -> JobAlerts:
    return JobAlerts(urls=["json://127.0.0.1:9/all"], per_job=kwargs.pop("per_job", {}),
                     summary_interval=600, clock=clock, where="here", claims=store,
                     channel=channel or Recording(), **kwargs)


def _failure(job: str, moment: datetime, **kwargs: Any) -> RunFinished:
    record = JobInvocation(timestamp=moment, scheduled_for=moment, trigger="schedule",
                           execution_time_ms=3.0, outcome=Outcome.FAILED,
                           error_message="ValueError: boom", job=job)
    return RunFinished(job, record, kwargs.get("retrying", False),
                       kwargs.get("stopped", False), None)


def test_retried_failures_and_stops_by_the_user_are_not_alerts(clock: ManualClock) -> None:
    channel = Recording()
    alerts = _alerts(clock, channel=channel)
    alerts.on_run(_failure("a", at(0), retrying=True))
    alerts.on_run(_failure("a", at(1), stopped=True))
    assert alerts._queue.empty()  # nothing even queued
    alerts.on_run(_failure("a", at(2)))
    alerts.handle(alerts._queue.get_nowait())
    assert [title for _, title, _ in channel.messages] == ["mashroom-jobs: 'a' failed"]


def test_per_job_urls_add_to_the_services_and_a_job_without_any_sends_nothing(
    clock: ManualClock,
) -> None:
    channel = Recording()
    alerts = JobAlerts(urls=[], per_job={"nightly-*": ["json://127.0.0.1:9/n"],
                                         "nightly-eu": ["json://127.0.0.1:9/eu"]},
                       summary_interval=600, clock=clock, where="", channel=channel)
    assert alerts.urls_for("nightly-eu") == ["json://127.0.0.1:9/n", "json://127.0.0.1:9/eu"]
    alerts.handle(_failure("hourly", at(0)))
    assert channel.messages == []
    alerts.handle(_failure("nightly-eu", at(0)))
    assert [url for url, _, _ in channel.messages] == ["json://127.0.0.1:9/n",
                                                       "json://127.0.0.1:9/eu"]


def test_each_alert_goes_out_once_across_hosts_sharing_the_store(
    clock: ManualClock, tmp_path: Path
) -> None:
    path = str(tmp_path / "store.sqlite")
    stores = [SQLiteStore(path, origin=f"host {i}", clock=clock) for i in range(3)]
    channels = [Recording() for _ in stores]
    try:
        hosts = [_alerts(clock, store, channel) for store, channel in zip(stores, channels)]
        for host in hosts:  # each host sees the same job fail in the same window
            host.handle(_failure("shared", at(1)))
        assert sum(len(c.messages) for c in channels) == 1
        for host in hosts:  # and recover
            host.handle(RunFinished("shared", _failure("shared", at(2)).record._replace(
                outcome=Outcome.OK, error_message=None), False, False, None))
        assert [title for c in channels for _, title, _ in c.messages] == [
            "mashroom-jobs: 'shared' failed", "mashroom-jobs: 'shared' recovered"]
    finally:
        for store in stores:
            store.close()


def test_an_unreachable_url_is_logged_and_the_others_still_get_the_alert(
    clock: ManualClock, caplog: pytest.LogCaptureFixture
) -> None:
    channel = Recording()
    alerts = JobAlerts(urls=["json://127.0.0.1:1/down", "json://127.0.0.1:9/up"], per_job={},
                       summary_interval=600, clock=clock, where="", channel=channel)
    with caplog.at_level(logging.WARNING, "mashroom_jobs.alerts"):
        alerts.handle(_failure("x", at(0)))
    assert [url for url, _, _ in channel.messages] == ["json://127.0.0.1:9/up"]
    (alert, url, why), = alerts.failures
    assert alert.kind == "failed" and why == "connection refused"
    assert url.startswith("json://127.0.0.1:1") and "could not be sent to" in caplog.text


def test_a_parked_durable_job_alerts_once_and_its_recovery_too(clock: ManualClock) -> None:
    channel = Recording()
    parked: dict[str, str] = {}
    alerts = _alerts(clock, channel=channel, parked=lambda: dict(parked), poll_interval=1)
    parked["etl"] = "TargetUnavailableError: no module named 'etl_jobs'"
    for _ in range(3):
        clock.advance(1)
        alerts.tick()
    del parked["etl"]
    clock.advance(1)
    alerts.tick()
    assert [title for _, title, _ in channel.messages] == [
        "mashroom-jobs: 'etl' is parked", "mashroom-jobs: 'etl' recovered"]


def test_a_parked_durable_job_that_is_removed_is_forgotten_not_recovered(
    clock: ManualClock,
) -> None:
    channel = Recording()
    parked: dict[str, str] = {}
    hosted: set[str] = set()
    alerts = _alerts(clock, channel=channel, parked=lambda: dict(parked),
                     hosted=lambda: set(hosted), poll_interval=1)
    parked["etl"] = parked["ml"] = "TargetUnavailableError: no module named 'jobs'"
    clock.advance(1)
    alerts.tick()
    del parked["etl"]  # removed from the store: no recovery
    del parked["ml"]  # its module is installed now: hosted again, a recovery
    hosted.add("ml")
    clock.advance(1)
    alerts.tick()
    assert [title for _, title, _ in channel.messages] == [
        "mashroom-jobs: 'etl' is parked", "mashroom-jobs: 'ml' is parked",
        "mashroom-jobs: 'ml' recovered"]
    parked["etl"] = "TargetUnavailableError: no module named 'jobs'"  # defined again
    clock.advance(1)
    alerts.tick()  # a new episode: its first alert again, not a summary of the old one
    _, title, body = channel.messages[-1]
    assert title == "mashroom-jobs: 'etl' is parked" and body.startswith("Durable job 'etl'")


def test_a_services_parked_job_removed_from_the_store_sends_no_recovery(
    tmp_path: Path,
) -> None:
    from mashroom_jobs.targets import FunctionRef

    clock = ManualClock("2026-03-02T12:00:00+00:00")
    service = BackgroundJobService(store=str(tmp_path / "store.sqlite"), timezone="UTC",
                                   clock=clock, alert_urls=["json://127.0.0.1:9/all"])
    try:
        alerts, durable = service._alerts, service.durable
        assert alerts is not None and durable is not None
        alerts.close()  # the test ticks the alerts itself, with the injected clock
        alerts._channel = channel = Recording()
        alerts.poll_interval = 1
        for name in ("gone", "back"):
            durable.define(JobDefinition.make(name, "0 9 * * *",
                                              FunctionRef("no_such_module:run"),
                                              timezone="UTC"))
        assert durable.host is not None and set(durable.host.parked()) == {"gone", "back"}
        clock.advance(1)
        alerts.tick()
        durable.remove("gone")  # the host drops it from its parked jobs
        durable.define(JobDefinition.make("back", "0 9 * * *", Command(["true"]),
                                          timezone="UTC"))  # hostable now
        assert durable.host.parked() == {} and set(durable.host.hosted()) == {"back"}
        clock.advance(1)
        alerts.tick()
        assert [title for _, title, _ in channel.messages] == [
            "mashroom-jobs: 'gone' is parked", "mashroom-jobs: 'back' is parked",
            "mashroom-jobs: 'back' recovered"]
    finally:
        service.shutdown()


def test_bad_alert_settings_are_refused_naming_them() -> None:
    with pytest.raises(TraitError, match="alert_urls: apprise cannot read the URL 'nope://"):
        BackgroundJobService(alert_urls=["nope://where"])
    with pytest.raises(TraitError, match=r"job_alert_urls\['x'\] must be apprise URLs"):
        BackgroundJobService(job_alert_urls={"x": [""]})
    with pytest.raises(TraitError, match="alert_summary_interval must be seconds from 1"):
        BackgroundJobService(alert_summary_interval=0)
    service = BackgroundJobService()
    try:
        assert service._alerts is None  # no URL: no alerts, no thread
        assert not any(t.name == "mashroom-jobs-alerts" for t in service.threads())
    finally:
        service.shutdown()


# --- real receivers: an SMTP server and an HTTP server on 127.0.0.1 ------------------------


class Receivers:
    """An aiosmtpd SMTP server and an HTTP server that keep what they receive."""

    def __init__(self) -> None:
        from aiosmtpd.controller import Controller

        self.mails: list[str] = []
        self.posts: list[dict[str, Any]] = []
        mails, posts = self.mails, self.posts

        class Mailbox:
            async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
                mails.append(envelope.content.decode(errors="replace"))
                return "250 OK"

        class Hook(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", 0))
                posts.append(json.loads(self.rfile.read(length)))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        # aiosmtpd 1.4 cannot take port 0 (its start-up probe connects to it): pick one
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            smtp_port = sock.getsockname()[1]
        self.smtp = Controller(Mailbox(), hostname="127.0.0.1", port=smtp_port)
        self.smtp.start()
        self.http = http.server.HTTPServer(("127.0.0.1", 0), Hook)
        threading.Thread(target=self.http.serve_forever, daemon=True).start()
        self.urls = [
            f"json://127.0.0.1:{self.http.server_address[1]}/hook",
            f"mailto://127.0.0.1:{smtp_port}?from=jobs@example.com&to=ops@example.com"
            f"&mode=insecure",
        ]

    def titles(self) -> tuple[list[str], list[str]]:
        """(the HTTP posts' titles, the mails' subjects)."""
        subjects = [line.removeprefix("Subject: ") for mail in self.mails
                    for line in mail.splitlines() if line.startswith("Subject: ")]
        return [post["title"] for post in self.posts], subjects

    def close(self) -> None:
        self.smtp.stop()
        self.http.shutdown()
        self.http.server_close()


@pytest.fixture
def receivers() -> Iterator[Receivers]:
    pytest.importorskip("aiosmtpd")
    found = Receivers()
    yield found
    found.close()


outcomes: list[bool] = []


def fail_fail_succeed() -> None:
    """Fails until ``outcomes`` says otherwise (a module-level function: durable-able)."""
    if not outcomes.pop(0):
        raise ValueError("the report's source is down")


@pytest.mark.realtime
def test_fail_fail_succeed_reaches_mail_and_http_as_one_failure_and_one_recovery(
    receivers: Receivers, tmp_path: Path
) -> None:
    service = BackgroundJobService(store=str(tmp_path / "store.sqlite"), timezone="UTC",
                                   alert_urls=receivers.urls)
    try:
        outcomes[:] = [False, False, True]
        job = service.schedule_job("report", "0 9 * * *", fail_fail_succeed)
        started = time.monotonic()
        assert not job.invoke_now().result(5).success
        assert wait_for(lambda: receivers.titles() == (["mashroom-jobs: 'report' failed"],) * 2,
                        timeout=10), receivers.titles()
        print(f"from the failure to both receivers: {time.monotonic() - started:.3f} s")
        assert not job.invoke_now().result(5).success
        assert job.invoke_now().result(5).success
        assert service._alerts is not None and service._alerts.wait_idle(10)
        expected = ["mashroom-jobs: 'report' failed", "mashroom-jobs: 'report' recovered"]
        assert wait_for(lambda: receivers.titles() == (expected, expected), timeout=10), \
            receivers.titles()
        assert "ValueError: the report's source is down" in receivers.posts[0]["message"]
        assert "after 2 failures since" in receivers.posts[1]["message"]
    finally:
        service.shutdown()
    assert receivers.titles() == (expected, expected)  # nothing more at shutdown


@pytest.mark.realtime
def test_a_fire_no_host_ran_is_one_did_not_run_alert(
    receivers: Receivers, tmp_path: Path
) -> None:
    path = str(tmp_path / "store.sqlite")
    # defined at midnight by a process that hosts nothing; no host runs until 03:30
    definer = BackgroundJobService(store=path, durable_jobs=False, timezone="UTC",
                                   clock=ManualClock("2026-03-02T00:00:00+00:00"))
    assert definer.durable is not None
    definer.durable.define(JobDefinition.make(
        "hourly-export", "0 * * * *", Command(["true"]), timezone="UTC",
        catchup=CatchUp("skip")))
    definer.shutdown()
    host = BackgroundJobService(store=path, timezone="UTC", alert_urls=receivers.urls,
                                clock=ManualClock("2026-03-02T03:30:00+00:00"))
    try:
        missed = [r for r in host.history("hourly-export") if r.outcome is Outcome.MISSED]
        assert len(missed) == 3  # 01:00, 02:00, 03:00, recorded by the catch-up
        expected = ["mashroom-jobs: 'hourly-export' did not run"]
        assert wait_for(lambda: receivers.titles() == (expected, expected), timeout=10), \
            receivers.titles()
        assert "The fire of job 'hourly-export' at 2026-03-02 01:00:00 UTC did not run" in \
            receivers.posts[0]["message"]
    finally:
        host.shutdown()
    assert receivers.titles() == (expected, expected)


@pytest.mark.realtime
def test_an_unreachable_alert_url_is_logged_and_changes_nothing_else(
    receivers: Receivers, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    service = BackgroundJobService(store=str(tmp_path / "store.sqlite"), timezone="UTC",
                                   alert_urls=["json://127.0.0.1:1/down", receivers.urls[0]])
    try:
        with caplog.at_level(logging.WARNING, "mashroom_jobs"):
            outcomes[:] = [False]
            job = service.schedule_job("report", "0 9 * * *", fail_fail_succeed)
            record = job.invoke_now().result(5)
            assert wait_for(lambda: len(receivers.posts) == 1, timeout=10)
            assert service._alerts is not None and service._alerts.wait_idle(10)
        # the run is recorded as it was, the job is as it was, the other URL got it
        assert record.error_message == "ValueError: the report's source is down"
        assert job.active and not job.paused and job.run_count == 1
        assert service.history("report")[0].error_message == record.error_message
        warnings = [r.getMessage() for r in caplog.records
                    if r.name == "mashroom_jobs.alerts"]
        assert len(warnings) == 1, warnings
        assert warnings[0].startswith("mashroom-jobs: the alert \"mashroom-jobs: 'report' "
                                      "failed\" could not be sent to json://127.0.0.1:1")
    finally:
        service.shutdown()


# --- fires no live host hosted (the watch) -------------------------------------------------


def test_fires_that_pass_while_no_live_host_hosts_the_job_are_found_once(
    tmp_path: Path,
) -> None:
    from mashroom_jobs.durable.watch import UnclaimedFires
    from mashroom_jobs.targets import FunctionRef

    clock = ManualClock("2026-03-02T12:00:00+00:00")
    store = SQLiteStore(str(tmp_path / "store.sqlite"), clock=clock)
    try:
        control = store.control
        for name in ("orphan", "hosted"):  # every minute; "orphan" is parked everywhere
            control.define(name, JobDefinition.make(
                name, "* * * * *", FunctionRef("no_such_module:run"), timezone="UTC").to_data())
        control.beat("h1", "server", "box", 1, clock.now(),
                     {"jobs": ["hosted"], "parked": {"orphan": "TargetUnavailableError: ..."}})
        watch = UnclaimedFires(control, store, clock.now(),
                               lambda row, now: now - row.seen <= timedelta(seconds=15),
                               grace=60)
        alive = {"jobs": ["hosted"], "parked": {"orphan": "..."}}
        clock.advance(60 * 3 + 30)  # 12:03:30: fires 12:01 and 12:02 are over a minute old
        control.beat("h1", "server", "box", 1, clock.now(), alive)  # h1 still hosts "hosted"
        found = watch.check(clock.now())
        assert [(d.name, f"{f:%H:%M}") for d, f in found] == [("orphan", "12:01"),
                                                               ("orphan", "12:02")]
        assert store.claim("orphan", found[0][1]) == store.origin  # claimed: nobody runs it
        assert watch.check(clock.now()) == []  # told once
        clock.advance(60)
        control.beat("h1", "server", "box", 1, clock.now(), alive)
        assert [(d.name, f"{f:%H:%M}") for d, f in watch.check(clock.now())] == [
            ("orphan", "12:03")]
        clock.advance(60)  # h1 is gone now: the fires of the job it hosted pass unclaimed too
        assert sorted((d.name, f"{f:%H:%M}") for d, f in watch.check(clock.now())) == [
            ("hosted", "12:04"), ("orphan", "12:04")]
    finally:
        store.close()
