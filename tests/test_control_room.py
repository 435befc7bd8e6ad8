"""The control room in the panel, driven as widgets (``click()``), with the injected clock:
column headers, each job's recent runs as a strip, the store's durable jobs beside the
kernel's own (those hosted elsewhere as rows whose buttons act through the store, parked
ones with their error), the hosts alive and gone, and the form's targets and "durable".
Also the records of skipped fires the strips show."""

from __future__ import annotations

import html
import re
import threading
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from ipywidgets import Widget

from mashroom_jobs import BackgroundJobService, Command
from mashroom_jobs.core.records import Outcome
from mashroom_jobs.durable import JobDefinition
from mashroom_jobs.panel import JobsPanel
from mashroom_jobs.panel.control import StoredJob
from mashroom_jobs.panel.format import strip_html
from mashroom_jobs.targets import FunctionRef
from mashroom_jobs.testing import ManualClock, wait_for

CELL = re.compile(r'data-outcome="(\w+)" title="([^"]*)"')


def noop() -> None:
    pass


def cells(html: str) -> list[tuple[str, str]]:
    """(outcome, hover text) of each cell of a strip."""
    return CELL.findall(html)


def row_of(panel: JobsPanel, name: str) -> Any:
    (row,) = [r for r in panel.rows if r.name.value == name]
    return row


@pytest.fixture
def store(tmp_path: Path) -> str:
    return str(tmp_path / "store.sqlite")


@pytest.fixture
def made() -> Iterator[list[Any]]:
    """Services and panels made by a test, closed after it."""
    things: list[Any] = []
    yield things
    for thing in reversed(things):
        if isinstance(thing, JobsPanel):
            thing.close()
        else:
            thing.shutdown(wait=True, timeout=5)
    Widget.close_all()


def _service(made: list[Any], clock: ManualClock, store: str | None = None,
             **kwargs: Any) -> BackgroundJobService:
    service = BackgroundJobService(clock=clock, timezone="UTC", store=store, **kwargs)
    made.append(service)
    return service


def _panel(made: list[Any], service: BackgroundJobService) -> JobsPanel:
    panel = JobsPanel(service, auto_flush=False,
                      callables={"noop": noop, "inline": lambda: None})
    made.append(panel)
    return panel


def _tick(clock: ManualClock, panel: JobsPanel, seconds: float = 2.0) -> None:
    """Let the panel's next flush read the store (it reads at most every 2 s)."""
    clock.advance(seconds)
    panel.flush()


# --- the table: headers and strips ---------------------------------------------------------


def test_the_jobs_table_has_column_headers_shown_with_its_rows(
    made: list[Any], clock: ManualClock
) -> None:
    service = _service(made, clock)
    panel = _panel(made, service)
    titles = [re.sub("<[^>]+>", "", cell.value) for cell in panel.columns.children]
    assert titles == ["", "", "job", "schedule", "next run", "last run", "recent runs", "runs",
                      "actions"]
    assert panel.columns.layout.display == "none"  # no job: no table
    service.schedule_job("tick", "@daily", noop)
    panel.flush()
    assert panel.columns.layout.display == ""
    # aligned: each header cell has the layout of the row's cells below it
    row = panel.rows[0]
    assert panel.columns.children[6].layout is row.strip.layout
    assert "green: ok" in panel.columns.children[6].tooltip  # the legend


def test_a_rows_strip_shows_its_runs_oldest_first_coloured_by_outcome_with_time_on_hover(
    made: list[Any], clock: ManualClock
) -> None:
    service = _service(made, clock)
    panel = _panel(made, service)
    outcomes = iter([None, ValueError("boom"), None])

    def flaky() -> None:
        error = next(outcomes)
        if error is not None:
            raise error

    job = service.schedule_job("flaky", "@daily", flaky)
    panel.flush()
    assert "no runs" in row_of(panel, "flaky").strip.value
    for _ in range(3):
        job.invoke_now().result(5)
        clock.advance(1)
    assert service.wait_until_idle(5)
    panel.flush()
    shown = cells(row_of(panel, "flaky").strip.value)
    assert [outcome for outcome, _ in shown] == ["ok", "failed", "ok"]
    assert re.fullmatch(r"00:00:0\d · failed · \d+ ms: ValueError: boom", shown[1][1])


def test_strip_heights_grow_with_duration_and_fires_that_did_not_run_are_marked() -> None:
    from mashroom_jobs.core.records import JobInvocation

    clock = ManualClock("2026-01-01T12:00:00+00:00")
    now = clock.now()

    def run(outcome: Outcome, ms: float, origin: str | None = None) -> JobInvocation:
        return JobInvocation(timestamp=now, scheduled_for=now, trigger="schedule",
                             execution_time_ms=ms, outcome=outcome, origin=origin,
                             error_message=None if outcome is Outcome.OK else outcome.value)

    html = strip_html([run(Outcome.OK, 1), run(Outcome.OK, 10_000), run(Outcome.TIMED_OUT, 500),
                       run(Outcome.SKIPPED, 0), run(Outcome.MISSED, 0),
                       run(Outcome.ELSEWHERE, 0, "box pid 7"), run(Outcome.STOPPED, 20)],
                      now, now.tzinfo)  # type: ignore[arg-type]
    heights = [int(h) for h in re.findall(r"height:(\d+)px;margin", html)]
    assert heights[0] < heights[2] < heights[1] == 18  # the longest is full height
    assert [o for o, _ in cells(html)] == ["ok", "ok", "timed_out", "skipped", "missed",
                                           "elsewhere", "stopped"]
    assert cells(html)[5][1] == "12:00:00 · ran elsewhere in box pid 7"
    assert "dashed" in html.split('data-outcome="missed"')[1].split("</span>")[0]
    # at most the newest 20
    assert len(cells(strip_html([run(Outcome.OK, 1)] * 30, now, now.tzinfo))) == 20  # type: ignore[arg-type]


def test_a_long_run_records_one_skipped_fire_and_counts_the_others(
    made: list[Any], clock: ManualClock
) -> None:
    service = _service(made, clock)
    release = threading.Event()
    job = service.schedule_job("slow", "* * * * * *", lambda: release.wait(10))
    clock.advance(1)  # the first run starts and blocks
    for _ in range(3):  # three fires come while it runs
        clock.advance(1)
    assert job.skip_count == 3
    skipped = [r for r in job.history if r.outcome is Outcome.SKIPPED]
    assert len(skipped) == 1 and "previous run was still going" in (
        skipped[0].error_message or "")
    release.set()
    assert service.wait_until_idle(5)
    clock.advance(1)  # a new run, then skips again: one more record
    assert service.wait_until_idle(5)
    assert [r.outcome for r in job.history] == [Outcome.SKIPPED, Outcome.OK, Outcome.OK]


def test_an_exclusive_job_records_no_skip_since_another_process_may_run_the_fire(
    made: list[Any], clock: ManualClock, store: str
) -> None:
    service = _service(made, clock, store)
    release = threading.Event()
    job = service.schedule_job("slow", "* * * * * *", lambda: release.wait(10),
                               exclusive=True)
    for _ in range(3):
        clock.advance(1)
    release.set()
    assert service.wait_until_idle(5)
    assert job.skip_count == 2
    assert Outcome.SKIPPED not in [r.outcome for r in job.history]


# --- durable jobs and hosts ----------------------------------------------------------------


def _define(service: BackgroundJobService, name: str, cron: str = "0 3 * * *",
            target: Any = None) -> None:
    assert service.durable is not None
    service.durable.define(JobDefinition.make(name, cron, target or Command(["true"]),
                                              timezone="UTC"))


def test_durable_jobs_hosted_elsewhere_are_rows_whose_buttons_act_through_the_store(
    made: list[Any], clock: ManualClock, store: str
) -> None:
    host = _service(made, clock, store)  # another process, hosting durable jobs
    viewer = _service(made, clock, store, durable_jobs=False)  # this kernel hosts none
    _define(viewer, "nightly")
    assert host.durable is not None and host.durable.host is not None
    host.durable.host.follow_now()
    assert host.get_job("nightly") is not None
    panel = _panel(made, viewer)
    _tick(clock, panel)
    row = row_of(panel, "nightly")
    assert isinstance(row.job, StoredJob)
    assert "durable" in row.schedule.value and "At 03:00" in row.schedule.value
    assert row.next.value.startswith("03:00:00")  # computed from the definition
    assert row.stop in row.actions.children  # any host may run it: Stop is always there

    panel.button("Pause nightly").click()
    host.durable.host.follow_now()  # (the host obeys at its next look, within a second)
    assert host.get_job("nightly").paused  # type: ignore[union-attr]
    panel.flush()
    assert panel.button("Resume nightly") and row.next.value == "paused"
    panel.button("Resume nightly").click()
    host.durable.host.follow_now()
    assert not host.get_job("nightly").paused  # type: ignore[union-attr]

    panel.button("Run nightly now").click()
    assert panel.header.message.value == "Asked the hosts of nightly to run it now."
    host.durable.host.follow_now()  # the host takes the command and runs it
    assert host.wait_until_idle(5)
    assert host.get_job("nightly").run_count == 1  # type: ignore[union-attr]
    assert host.history("nightly")[0].trigger == "manual"
    assert wait_for(lambda: viewer.history("nightly"))  # written to the store (a thread)
    _tick(clock, panel)
    assert [o for o, _ in cells(row.strip.value)] == ["ok"]  # from the store's history

    # expanded: the store's history and the definition
    panel.button("Show details of nightly").click()
    assert "Durable job: runs <code>true</code>; catch-up latest" in row.detail.value
    assert "manual" in row.detail.value

    panel.button("Unschedule nightly").click()
    assert viewer.durable is not None and viewer.durable.jobs() == []
    host.durable.host.follow_now()
    assert host.get_job("nightly") is None
    panel.flush()
    assert [r.name.value for r in panel.rows] == []


def test_a_durable_job_hosted_here_is_marked_and_its_pause_holds_in_the_other_host(
    made: list[Any], clock: ManualClock, store: str
) -> None:
    here = _service(made, clock, store)
    other = _service(made, clock, store)
    _define(here, "report")
    assert other.durable is not None and other.durable.host is not None
    other.durable.host.follow_now()
    panel = _panel(made, here)
    panel.flush()
    row = row_of(panel, "report")
    assert row.job is here.get_job("report") and row.job.durable
    assert "durable" in row.schedule.value
    # a run in the other host: this row's strip shows it (from the store), with who ran it
    other.run_job("report").result(5)
    assert wait_for(lambda: here.history("report"))
    _tick(clock, panel)
    ((outcome, title),) = cells(row.strip.value)
    assert outcome == "ok" and title.endswith(f"· {other.origin}")
    assert row.counts.value == "runs 1 · failed 0"  # among its runs in the store

    panel.button("Pause report").click()
    other.durable.host.follow_now()
    assert other.get_job("report").paused  # type: ignore[union-attr]


def test_a_parked_durable_job_is_listed_with_its_error(
    made: list[Any], clock: ManualClock, store: str
) -> None:
    service = _service(made, clock, store)
    _define(service, "etl", target=FunctionRef("no_such_module_for_tests:run"))
    assert service.get_job("etl") is None  # parked here: it cannot be hosted
    panel = _panel(made, service)
    _tick(clock, panel)
    row = row_of(panel, "etl")
    assert row.mark.value == "⚠" and row.mark.tooltip == "parked here"
    assert "parked: TargetUnavailableError" in row.next.value
    assert "No module named 'no_such_module_for_tests'" in row.next.tooltip  # in full
    panel.button("Show details of etl").click()
    assert "Parked here: TargetUnavailableError" in row.detail.value


def test_the_hosts_sharing_the_store_are_listed_alive_and_gone(
    made: list[Any], clock: ManualClock, store: str
) -> None:
    service = _service(made, clock, store)
    _define(service, "nightly")
    assert service.durable is not None
    control = service.durable.control
    control.beat("old", "run", "box", 99, clock.now() - timedelta(hours=2),
                 {"origin": "box pid 99", "jobs": ["nightly"], "parked": {}})
    clock.advance(60)  # the old host's heartbeat is a minute old: gone

    def beaten() -> bool:  # this host beats every fifth look at the store, on a worker
        clock.advance(1)
        return any(h.alive for h in service.durable.hosts())  # type: ignore[union-attr]

    assert wait_for(beaten, timeout=10, interval=0.02)
    panel = _panel(made, service)
    text = re.sub("<[^>]+>", "", panel.hosts.value)
    assert text.startswith("Hosts sharing the job store: 1 alive, 1 gone")
    lines = text.split("\n") if "\n" in text else panel.hosts.value.split("<br>")[1:]
    assert len(lines) == 2
    assert "● python" in re.sub("<[^>]+>", "", lines[0]) and "(this process)" in lines[0]
    assert "alive, started" in lines[0] and "1 durable job" in lines[0]
    assert "○ run box pid 99" in re.sub("<[^>]+>", "", lines[1])
    assert "gone, last seen 00:0" in lines[1]


def test_the_panel_reads_the_stored_jobs_again_for_new_runs_or_news_not_for_heartbeats(
    made: list[Any], clock: ManualClock, store: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # every host writes a heartbeat every 5 s: reading every definition and each job's
    # runs again for each of them would cost the kernel a query per job every few seconds
    viewer = _service(made, clock, store, durable_jobs=False)
    _define(viewer, "nightly")
    assert viewer.durable is not None
    control = viewer.durable.control
    reads: list[int] = []
    definitions = control.definitions
    monkeypatch.setattr(control, "definitions", lambda: reads.append(1) or definitions())
    panel = _panel(made, viewer)

    def beat(parked: dict[str, str]) -> None:  # another process's heartbeat
        control.beat("other", "run", "box", 99, clock.now(),
                     {"origin": "box pid 99", "jobs": ["nightly"], "parked": parked})

    beat({})
    _tick(clock, panel)
    assert row_of(panel, "nightly")
    first = len(reads)
    for _ in range(3):  # heartbeats that say what the last one did
        beat({})
        _tick(clock, panel)
    assert len(reads) == first
    beat({"nightly": "TargetUnavailableError: gone"})  # news: it parked the job
    _tick(clock, panel)
    assert len(reads) == first + 1
    assert row_of(panel, "nightly").job.info.parked_on == {
        "box pid 99": "TargetUnavailableError: gone"}
    _define(viewer, "weekly")  # a new definition
    _tick(clock, panel)
    assert len(reads) == first + 2 and row_of(panel, "weekly")
    for text in ("w", "we", "wee", ""):  # typing in the filter reads nothing
        panel.header.filter.value = text
        panel.flush()
    assert len(reads) == first + 2 and len(panel.rows) == 2
    panel.button("Pause weekly").click()  # a click that changed the store: read once
    panel.flush()
    assert len(reads) == first + 3 and panel.button("Resume weekly")


def test_without_a_store_there_is_no_hosts_line(made: list[Any], clock: ManualClock) -> None:
    panel = _panel(made, _service(made, clock))
    assert panel.hosts.layout.display == "none"
    assert not panel.form.durable.value and panel.form.durable.disabled


# --- the form: targets and "durable" ---------------------------------------------------------


def test_the_form_schedules_a_command_and_a_reference_and_a_durable_job(
    made: list[Any], clock: ManualClock, store: str
) -> None:
    service = _service(made, clock, store)
    panel = _panel(made, service)
    form = panel.form
    assert [kind for _, kind in form.runs.options][:3] == ["function", "reference", "command"]
    form.runs.value = "command"
    assert form.command.layout.display is None and form.callable.layout.display == "none"
    form.name.value, form.cron.value, form.command.value = "sync", "*/5 * * * *", "true --x 'a b'"
    form.schedule.click()
    job = service.get_job("sync")
    assert job is not None and not job.durable
    assert job.target is not None and job.target.to_data()["argv"] == ["true", "--x", "a b"]

    form.runs.value = "reference"
    form.name.value, form.reference.value = "ref", "json:dumps"
    form.cron.value = "@daily"
    form.durable.value = True
    form.schedule.click()
    assert form.message.value == "Scheduled ref as a durable job (in the job store)."
    assert service.durable is not None
    assert service.durable.get("ref").definition.target.to_data()["ref"] == "json:dumps"  # type: ignore[union-attr]
    assert service.get_job("ref").durable  # type: ignore[union-attr]


@pytest.mark.parametrize(("kind", "values", "error"), [
    ("reference", {"reference": "json.dumps"}, "Give the function as 'package.module:function'"),
    ("command", {"command": "  "}, "Give the command line to run"),
    ("command", {"command": "echo 'unclosed"}, "Cannot read the command"),
    ("function", {"durable": True},
     "a durable job's target must be something another process can name"),
    ("command", {"command": "true", "durable": True, "cron": ""},
     "A durable job runs on a schedule: give a cron expression."),
], ids=["reference-without-colon", "empty-command", "unclosed-quote", "notebook-function-durable",
        "durable-without-cron"])
def test_the_forms_mistakes_are_said_in_the_form_and_nothing_is_scheduled(
    made: list[Any], clock: ManualClock, store: str, kind: str, values: dict[str, Any],
    error: str,
) -> None:
    service = _service(made, clock, store)
    panel = _panel(made, service)
    form = panel.form
    form.runs.value = kind
    form.name.value, form.cron.value = "job", values.pop("cron", "@daily")
    if kind == "function":
        form.callable.label = "inline"  # a lambda: it cannot be durable
    for key, value in values.items():
        getattr(form, key).value = value
    form.schedule.click()
    assert error in html.unescape(form.message.value)
    assert service.jobs == () and service.durable is not None and service.durable.jobs() == []


def test_a_stored_durable_name_is_taken_in_the_form(
    made: list[Any], clock: ManualClock, store: str
) -> None:
    service = _service(made, clock, store, durable_jobs=False)
    _define(service, "nightly")
    panel = _panel(made, service)
    form = panel.form
    form.runs.value = "command"
    form.name.value, form.command.value = "nightly", "true"
    form.schedule.click()
    assert "A job named 'nightly' already exists" in form.message.value


def test_the_form_leaves_checking_what_a_job_runs_to_the_targets(
    made: list[Any], clock: ManualClock, store: str
) -> None:
    service = _service(made, clock, store)
    form = _panel(made, service).form
    form.cron.value = "@daily"
    said = {
        ("reference", "json:dumps()"): "Give the function as 'package.module:function' (a "
        "function of an importable module), got 'json:dumps()'.",
        ("reference", "json:"): "Give the function as 'package.module:function'",
        ("command", "echo 'unclosed"): "Cannot read the command: cannot split the command "
        "\"echo 'unclosed\": No closing quotation",
        ("command", "''"): "Cannot read the command: a command needs at least the program "
        "to run",
    }
    for (kind, text), error in said.items():
        form.runs.value = kind
        form.name.value = "job"
        getattr(form, kind).value = text
        form.schedule.click()
        assert error in html.unescape(form.message.value), (text, form.message.value)
    assert service.jobs == ()
    form.runs.value, form.name.value, form.reference.value = "reference", "ref", " json:dumps "
    form.schedule.click()
    job = service.get_job("ref")
    assert job is not None and not job.durable and job.target == FunctionRef("json:dumps")
    form.runs.value, form.name.value, form.command.value = "command", "cmd", "true --x 'a b'"
    form.schedule.click()
    job = service.get_job("cmd")
    assert job is not None and job.target == Command(["true", "--x", "a b"])
