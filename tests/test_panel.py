"""JobsPanel, driven without a browser: change the service, click buttons, read widgets.

Time moves only through the ManualClock; the background flusher is off
(``auto_flush=False``) except in the tests that are about it, so every
assert follows an explicit ``panel.flush()``.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import pytest
from IPython.core.events import EventManager, available_events
from ipywidgets import Widget
from ipywidgets.widgets.widget import _instances

from mashroom_jobs import BackgroundJobService
from mashroom_jobs.panel import JobsPanel, close_panels
from mashroom_jobs.panel.form import CHOOSE
from mashroom_jobs.plugins import PluginLoader
from mashroom_jobs.testing import ManualClock, wait_for


def noop() -> None:
    pass


def rows(panel: JobsPanel) -> list[Any]:
    """The visible rows."""
    return panel.rows


def row_of(panel: JobsPanel, name: str) -> Any:
    matches = [r for r in rows(panel) if r.name.value == name]
    assert len(matches) == 1, f"no single visible row for {name!r}"
    return matches[0]


def names(panel: JobsPanel) -> list[str]:
    return [r.name.value for r in rows(panel)]


def observer_count(obj: Any) -> int:
    return sum(len(h) for by_type in obj._trait_notifiers.values() for h in by_type.values())


@pytest.fixture
def sent(monkeypatch: pytest.MonkeyPatch) -> list[tuple[Widget, dict[str, Any]]]:
    """Every update message widgets send to the front end, as (widget, message)."""
    messages: list[tuple[Widget, dict[str, Any]]] = []
    original = Widget._send

    def recording(self: Widget, msg: dict[str, Any], buffers: Any = None) -> None:
        messages.append((self, msg))
        original(self, msg, buffers)

    monkeypatch.setattr(Widget, "_send", recording)
    return messages


@pytest.fixture
def make_panel(service: BackgroundJobService) -> Iterator[Any]:
    made: list[JobsPanel] = []

    def make(**kwargs: Any) -> JobsPanel:
        kwargs.setdefault("auto_flush", False)
        kwargs.setdefault("callables", {})
        p = JobsPanel(service, **kwargs)
        made.append(p)
        return p

    yield make
    for p in made:
        p.close()
    Widget.close_all()


# --- rows ---------------------------------------------------------------------------------


def test_each_row_shows_mark_name_schedule_next_run_last_run_and_counts(
    service: BackgroundJobService, panel: JobsPanel
) -> None:
    service.schedule_job("report", "*/5 * * * *", noop)
    panel.flush()

    row = row_of(panel, "report")
    assert row.mark.value == "○" and row.mark.tooltip == "never run"
    assert row.schedule.value == "<code>*/5 * * * *</code> Every 5 minutes"
    assert row.next.value == "00:05:00 <small>(in 5 min)</small>"
    assert row.last.value == "<i>never</i>"
    assert row.counts.value == "runs 0 · failed 0"
    assert "mashroom-jobs-row" in row.box._dom_classes
    assert "mashroom-jobs-panel" in panel._dom_classes


def test_schedule_names_the_zone_only_when_it_is_not_the_services(
    service: BackgroundJobService, panel: JobsPanel
) -> None:
    service.schedule_job("utc", "0 9 * * *", noop)
    service.schedule_job("vienna", "0 9 * * *", noop, timezone="Europe/Vienna")
    panel.flush()

    assert "Europe/Vienna" not in row_of(panel, "utc").schedule.value
    assert row_of(panel, "vienna").schedule.value.endswith("<small>(Europe/Vienna)</small>")
    # 09:00 in Vienna is 08:00 UTC, shown in the service's zone
    assert row_of(panel, "vienna").next.value.startswith("08:00:00")


def test_buttons_are_icon_buttons_named_by_action_and_job(
    service: BackgroundJobService, panel: JobsPanel
) -> None:
    service.schedule_job("backup", "@daily", noop)
    panel.flush()

    for tooltip in ("Run backup now", "Pause backup", "Unschedule backup"):
        button = panel.button(tooltip)
        assert button.description == "" and button.icon
    with pytest.raises(LookupError):
        panel.button("Resume backup")


def test_a_scheduled_run_shows_in_the_row_after_the_next_flush_only(
    clock: ManualClock, service: BackgroundJobService, panel: JobsPanel
) -> None:
    service.schedule_job("tick", "*/5 * * * *", noop)
    panel.flush()
    clock.advance(minutes=5)
    assert service.wait_until_idle(5)

    row = row_of(panel, "tick")
    assert row.counts.value == "runs 0 · failed 0"  # observers only marked it dirty
    panel.flush()
    assert row.counts.value == "runs 1 · failed 0"
    assert row.mark.value == "✓"
    assert row.last.value.startswith("00:05:00 · 0 ms · ")
    assert row.next.value == "00:10:00 <small>(in 5 min)</small>"


def test_the_relative_next_run_time_ticks_as_the_clock_moves(
    clock: ManualClock, service: BackgroundJobService, panel: JobsPanel
) -> None:
    service.schedule_job("hourly", "@hourly", noop)
    panel.flush()
    assert row_of(panel, "hourly").next.value == "01:00:00 <small>(in 1 h)</small>"

    clock.advance(minutes=56)
    panel.flush()
    assert row_of(panel, "hourly").next.value == "01:00:00 <small>(in 4 min)</small>"


# --- actions -------------------------------------------------------------------------------


def test_clicking_unschedule_removes_the_job_and_its_row_at_once(
    service: BackgroundJobService, panel: JobsPanel
) -> None:
    service.schedule_job("a", "@daily", noop)
    service.schedule_job("b", "@daily", noop)
    panel.flush()

    panel.button("Unschedule a").click()

    assert service.get_job("a") is None
    assert names(panel) == ["b"]
    assert panel.header.counts.value.startswith("<b>1 job</b>")


def test_clicking_run_now_starts_a_run_and_the_row_shows_it_running(
    service: BackgroundJobService, panel: JobsPanel
) -> None:
    started, release = threading.Event(), threading.Event()

    def slow() -> None:
        started.set()
        release.wait(5)

    service.schedule_job("slow", "@daily", slow)
    panel.flush()
    panel.button("Run slow now").click()
    assert started.wait(5)
    panel.flush()

    row = row_of(panel, "slow")
    assert row.mark.value == "▶"
    assert row.last.value.startswith("<b>running…</b>")
    assert "1 running" in panel.header.counts.value

    release.set()
    assert service.wait_until_idle(5)
    panel.flush()
    assert row.mark.value == "✓" and row.counts.value == "runs 1 · failed 0"
    assert "0 running" in panel.header.counts.value


def test_clicking_pause_toggles_to_resume_and_back(
    service: BackgroundJobService, panel: JobsPanel
) -> None:
    job = service.schedule_job("p", "*/5 * * * *", noop)
    panel.flush()

    panel.button("Pause p").click()
    assert job.paused
    row = row_of(panel, "p")
    assert row.pause.tooltip == "Resume p" and row.mark.value == "‖"
    assert row.next.value == "paused"
    assert "1 paused" in panel.header.counts.value

    panel.button("Resume p").click()
    assert not job.paused
    assert row.pause.tooltip == "Pause p"
    assert row.next.value == "00:05:00 <small>(in 5 min)</small>"


def test_an_action_that_fails_shows_its_error_in_the_panel(
    service: BackgroundJobService, panel: JobsPanel
) -> None:
    service.schedule_job("gone", "@daily", noop)
    panel.flush()
    pause = panel.button("Pause gone")
    job = service.get_job("gone")
    assert job is not None
    job.runtime.deactivate()  # unscheduled behind the panel's back, not yet flushed

    pause.click()  # must not raise into the caller

    assert "cannot pause job 'gone'" in panel.header.message.value


def test_an_expanded_row_shows_history_output_and_traceback(
    service: BackgroundJobService, panel: JobsPanel
) -> None:
    calls = iter([False, True])

    def flaky() -> None:
        print("checking <things>")
        if next(calls):
            raise ValueError("disk full")

    job = service.schedule_job("flaky", "@daily", flaky)
    for _ in range(2):
        job.invoke_now().result(5)
    assert service.wait_until_idle(5)
    panel.flush()
    row = row_of(panel, "flaky")
    assert row.mark.value == "✗"
    assert "ValueError: disk full" in row.last.value
    assert row.last.tooltip == "ValueError: disk full"
    assert row.box.children == (row.line,)

    panel.button("Show details of flaky").click()

    detail = row.detail.value
    assert row.box.children == (row.line, row.detail)
    assert detail.count("<td>manual</td>") == 2
    assert "checking &lt;things&gt;" in detail  # the captured output, escaped
    assert "Traceback (most recent call last)" in detail and "ValueError: disk full" in detail
    panel.button("Hide details of flaky").click()
    assert row.box.children == (row.line,)


# --- header, filter, pages ------------------------------------------------------------


def test_the_header_counts_jobs_running_paused_and_failing(
    service: BackgroundJobService, panel: JobsPanel
) -> None:
    def fail() -> None:
        raise RuntimeError("no")

    service.schedule_job("ok", "@daily", noop)
    service.schedule_job("bad", "@daily", fail).invoke_now().result(5)
    service.schedule_job("sleepy", "@daily", noop).pause()
    assert service.wait_until_idle(5)
    panel.flush()

    assert panel.header.counts.value == "<b>3 jobs</b> · 0 running · 1 paused · 1 failing"


def test_the_filter_matches_substrings_of_name_and_schedule(
    service: BackgroundJobService, panel: JobsPanel
) -> None:
    service.schedule_job("sync-orders", "*/5 * * * *", noop)
    service.schedule_job("sync-users", "0 * * * *", noop)
    service.schedule_job("report", "*/5 9-17 * * *", noop)
    panel.flush()

    panel.header.filter.value = "sync"
    assert names(panel) == ["sync-orders", "sync-users"]
    panel.header.filter.value = "*/5"
    assert names(panel) == ["sync-orders", "report"]
    panel.header.filter.value = "nothing like it"
    assert names(panel) == []
    assert panel.header.counts.value.endswith("· 0 match")
    panel.header.filter.value = ""
    assert len(names(panel)) == 3


def test_paging_reuses_the_same_row_widgets(
    service: BackgroundJobService, make_panel: Any
) -> None:
    for i in range(25):
        service.schedule_job(f"job-{i:02}", "@daily", noop)
    panel = make_panel(page_size=10)
    first_page_widgets = [r.name for r in rows(panel)]
    models_before = len(_instances)

    assert panel.header.page_label.value == "Page 1 of 3" and panel.header.previous_page.disabled
    panel.button("Next page").click()
    panel.button("Next page").click()

    assert panel.header.page_label.value == "Page 3 of 3" and panel.header.next_page.disabled
    assert names(panel) == [f"job-{i}" for i in range(20, 25)]
    assert [r.name for r in rows(panel)] == first_page_widgets[:5]
    assert len(_instances) == models_before
    panel.button("Run job-22 now").click()  # buttons follow the job on the reused row
    assert service.wait_until_idle(5)
    job = service.get_job("job-22")
    assert job is not None and job.run_count == 1


def test_unscheduling_the_last_job_of_the_last_page_moves_back_a_page(
    service: BackgroundJobService, make_panel: Any
) -> None:
    for i in range(3):
        service.schedule_job(f"j{i}", "@daily", noop)
    panel = make_panel(page_size=2)
    panel.go_to_page(1)
    assert names(panel) == ["j2"]

    panel.button("Unschedule j2").click()

    assert panel.page == 0 and names(panel) == ["j0", "j1"]
    assert panel.header.page_label.value == "Page 1 of 1"


# --- the add-job form -------------------------------------------------------------------


def test_an_invalid_cron_expression_shows_its_error_in_place(panel: JobsPanel) -> None:
    panel.form.cron.value = "61 * * * *"
    assert "minute 61 is out of range 0-59" in panel.form.feedback.value


def test_a_valid_cron_expression_shows_its_description_and_next_three_fire_times(
    panel: JobsPanel,
) -> None:
    panel.form.cron.value = "*/15 * * * *"
    assert panel.form.feedback.value == (
        "Every 15 minutes — next: 2026-01-01 00:15:00, 2026-01-01 00:30:00, "
        "2026-01-01 00:45:00 <small>(UTC)</small>"
    )
    panel.form.zone.value = "Mars/Olympus"
    assert "Mars/Olympus" in panel.form.feedback.value
    assert "color" in panel.form.feedback.value  # shown as an error


def test_the_form_schedules_a_job_with_the_chosen_callable_and_zone(
    service: BackgroundJobService, make_panel: Any
) -> None:
    def job_a() -> None:
        pass

    panel = make_panel(callables={"job_a": job_a, "noop": noop})
    panel.form.name.value = "from-form"
    panel.form.cron.value = "0 9 * * *"
    panel.form.zone.value = "Asia/Tokyo"
    panel.form.callable.label = "job_a"

    panel.button("Schedule the job").click()

    job = service.get_job("from-form")
    assert job is not None and job.callback is job_a and job.timezone == "Asia/Tokyo"
    assert panel.form.message.value == "Scheduled from-form."
    assert names(panel) == ["from-form"]


@pytest.mark.parametrize(
    ("name", "cron", "callable_label", "message"),
    [
        ("", "@daily", "noop", "Give the job a name."),
        ("x", "not cron", "noop", "expected 5 fields"),
        ("x", "@daily", None, "Choose the function the job runs"),
        ("taken", "@daily", "noop", "A job named 'taken' already exists"),
    ],
    ids=["no-name", "bad-cron", "no-callable", "duplicate-name"],
)
def test_every_form_error_is_shown_in_the_form(
    service: BackgroundJobService, make_panel: Any,
    name: str, cron: str, callable_label: str | None, message: str,
) -> None:
    service.schedule_job("taken", "@daily", noop)
    panel = make_panel(callables={"noop": noop} if callable_label else {})
    panel.form.name.value = name
    panel.form.cron.value = cron
    panel.form.callable.label = callable_label

    panel.button("Schedule the job").click()

    assert message in panel.form.message.value
    assert [j.name for j in service.jobs] == ["taken"]


def test_the_form_offers_the_functions_of_the_users_namespace_refreshed_after_each_cell(
    service: BackgroundJobService, make_panel: Any
) -> None:
    events = EventManager(None, available_events)
    ns: dict[str, Any] = {"first": noop, "_private": noop, "exit": noop, "value": 3}
    service.shell = SimpleNamespace(user_ns=ns, user_ns_hidden={"exit": exit}, events=events)
    panel = make_panel(callables=None)
    assert panel.form.callable.options == ((CHOOSE, None), ("first", noop))
    assert panel.form.callable.value is None  # nothing chosen for the user (issue 25)

    ns["second"] = print_twice
    events.trigger("post_run_cell", None)
    assert [label for label, _ in panel.form.callable.options] == [CHOOSE, "first", "second"]
    panel.form.callable.label = "second"
    ns["third"] = print_twice
    events.trigger("post_run_cell", None)
    assert panel.form.callable.label == "second"  # the choice survives a refresh

    panel.close()
    assert events.callbacks["post_run_cell"] == []


def print_twice() -> None:
    print("twice")


# --- several panels, closing --------------------------------------------------------


def test_several_panels_on_one_service_stay_consistent(
    service: BackgroundJobService, make_panel: Any
) -> None:
    service.schedule_job("shared", "@daily", noop)
    one, two = make_panel(), make_panel()

    one.button("Pause shared").click()
    two.flush()
    assert two.button("Resume shared").tooltip == "Resume shared"

    two.button("Unschedule shared").click()
    one.flush()
    assert names(one) == names(two) == []


def test_closing_100_panels_leaves_observers_and_widget_models_where_they_were(
    service: BackgroundJobService,
) -> None:
    job = service.schedule_job("watched", "@daily", noop)
    service_observers, job_observers = observer_count(service), observer_count(job)
    models = len(_instances)

    panels = [JobsPanel(service, page_size=3, auto_flush=(i % 10 == 0)) for i in range(100)]
    # each panel observes jobs, plugins and last_failure
    assert observer_count(service) == service_observers + 300
    assert observer_count(job) > job_observers
    for p in panels:
        p.close()

    assert observer_count(service) == service_observers
    assert observer_count(job) == job_observers
    assert len(_instances) == models
    assert not any(p.flushing for p in panels)


def test_close_panels_closes_every_panel_on_the_service(
    service: BackgroundJobService, make_panel: Any
) -> None:
    panels = [make_panel(), make_panel()]
    assert close_panels(service) == 2
    assert all(p.closed for p in panels)
    assert close_panels(service) == 0


# --- displaying the service ----------------------------------------------------------


def test_with_the_extension_the_service_displays_as_a_panel_in_a_kernel_and_as_text_elsewhere(
    ip: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    import mashroom_jobs

    ip.run_line_magic("load_ext", "mashroom_jobs")
    service = mashroom_jobs.get_service()
    service.schedule_job("shown", "@daily", noop)
    data, _ = ip.display_formatter.format(service)
    assert data == {"text/plain": repr(service)}  # terminal IPython: the text table

    monkeypatch.setattr(ip, "kernel", object(), raising=False)  # as in ipykernel's shell
    try:
        bundle, _ = ip.display_formatter.format(service)
        again, _ = ip.display_formatter.format(service)
        view = bundle["application/vnd.jupyter.widget-view+json"]
        assert bundle["text/plain"] == repr(service)
        assert "shown" in bundle["text/plain"]
        assert again["application/vnd.jupyter.widget-view+json"] == view  # one panel, reused
        shown = _instances[view["model_id"]]
        assert isinstance(shown, JobsPanel) and "shown" in names(shown)
    finally:
        assert close_panels(service) == 1
    ip.run_line_magic("unload_ext", "mashroom_jobs")
    data, _ = ip.display_formatter.format(service)
    assert set(data) == {"text/plain"}  # the formatter went with the extension


# --- scale, coalescing, threads -------------------------------------------------------


@pytest.mark.timeout(120)
def test_10000_jobs_need_at_most_600_widget_models_and_off_page_jobs_send_nothing(
    service: BackgroundJobService, make_panel: Any, sent: list[tuple[Widget, dict[str, Any]]]
) -> None:
    for i in range(10_000):
        service.schedule_job(f"job-{i:05}", "@daily", noop)
    models = len(_instances)
    panel = make_panel()

    assert len(_instances) - models <= 600
    assert panel.header.page_label.value == "Page 1 of 500"
    sent.clear()
    for job in service.jobs[5000:5100]:  # off the page: runs, pause + resume
        job.invoke_now()
        job.pause()
        job.resume()
    assert service.wait_until_idle(10)
    assert panel.flush()  # they were dirty...
    assert sent == []  # ...and nothing went to the front end

    service.jobs[3].invoke_now().result(5)  # control: a visible job does send
    assert service.wait_until_idle(5)
    panel.flush()
    assert {w for w, _ in sent} <= set(row_of(panel, "job-00003").models())
    assert sent


def test_a_burst_of_changes_reaches_the_front_end_in_one_message_per_widget(
    service: BackgroundJobService, panel: JobsPanel, sent: list[tuple[Widget, dict[str, Any]]]
) -> None:
    job = service.schedule_job("busy", "@daily", noop)
    panel.flush()
    flushes = panel.flush_count
    sent.clear()
    for _ in range(50):
        job.invoke_now().result(5)
    assert service.wait_until_idle(5)
    panel.flush()

    assert panel.flush_count == flushes + 1
    per_widget = Counter(id(w) for w, _ in sent)
    assert per_widget and max(per_widget.values()) == 1
    assert row_of(panel, "busy").counts.value == "runs 50 · failed 0"


@pytest.mark.realtime
def test_the_background_flusher_pushes_changes_a_few_times_a_second_and_stops_on_close(
    service: BackgroundJobService, make_panel: Any
) -> None:
    job = service.schedule_job("busy", "@daily", noop)
    panel = make_panel(auto_flush=True, flush_interval=0.25)
    flushes = panel.flush_count
    started = time.monotonic()
    while job.run_count < 300:
        job.invoke_now().result(5)
    deadline = time.monotonic() + 5
    while row_of(panel, "busy").counts.value != "runs 300 · failed 0":
        assert time.monotonic() < deadline, "the flusher did not push the change"
        threading.Event().wait(0.02)
    elapsed = time.monotonic() - started

    assert panel.flush_count - flushes <= elapsed / 0.25 + 2
    thread = panel._thread
    panel.close()
    assert thread is not None and not thread.is_alive()


def test_jobs_changing_on_worker_threads_while_the_panel_pages_and_flushes(
    service: BackgroundJobService, make_panel: Any, caplog: pytest.LogCaptureFixture
) -> None:
    jobs = [service.schedule_job(f"t{i:03}", "@daily", noop) for i in range(60)]
    panel = make_panel(page_size=10)
    stop = threading.Event()

    def churn(offset: int) -> None:
        i = offset
        while not stop.is_set():
            job = jobs[i % len(jobs)]
            job.invoke_now()
            job.pause()
            job.resume()
            i += 7

    workers = [threading.Thread(target=churn, args=(k,), daemon=True) for k in range(4)]
    with caplog.at_level(logging.ERROR):
        for w in workers:
            w.start()
        for step in range(200):
            panel.go_to_page(step % panel.page_count)
            panel.flush()
        stop.set()
        for w in workers:
            w.join(10)
        assert service.wait_until_idle(10)
        for page in range(panel.page_count):
            panel.go_to_page(page)
            panel.flush()
            for row in rows(panel):
                job = row.job
                assert row.name.value == job.name
                assert row.counts.value == f"runs {job.run_count} · failed 0"
                assert row.pause.tooltip == f"Pause {job.name}"
    assert not [r for r in caplog.records if r.name.startswith("mashroom_jobs")]


def test_failed_plugins_are_listed_with_their_error_in_the_header(
    service: BackgroundJobService, panel: JobsPanel
) -> None:
    from importlib.metadata import EntryPoint

    assert "Plugins" not in panel.header.notes.value  # no plugins: no line
    group = "mashroom_jobs.plugins"
    loader = PluginLoader(service)
    loader.load([
        EntryPoint(name="Good", value="tests.test_panel:_good_bootstrap", group=group),
        EntryPoint(name="Gone", value="no_such_module_for_mashroom:bootstrap", group=group),
    ])
    panel.flush()
    text = panel.header.notes.value
    assert "1 loaded" in text and "1 failed" in text
    assert "<b>Gone</b>" in text and "No module named" in text
    loader.close()
    panel.flush()
    assert "Plugins" not in panel.header.notes.value


def _good_bootstrap(plugin_name: str, plugin_config: dict[str, Any], holder: Any) -> Any:
    return lambda: None


# --- stop and failures ------------------------------------------------------------------


def test_the_stop_button_shows_only_while_a_job_runs_and_stops_it(
    clock: ManualClock, service: BackgroundJobService, panel: JobsPanel
) -> None:
    def waits(context: Any) -> None:
        context.stop_requested.wait(10)

    job = service.schedule_job("long", "@daily", waits)
    panel.flush()
    with pytest.raises(LookupError):
        panel.button("Stop long")
    panel.button("Run long now").click()
    clock.advance(1)  # a run still going after a moment is published as running
    assert wait_for(lambda: job.state.running)
    panel.flush()
    panel.button("Stop long").click()
    assert service.wait_until_idle(5)
    assert job.last_invocation is not None and job.last_invocation.error_message == "stopped"
    panel.flush()
    row = row_of(panel, "long")
    assert "stopped" in row.last.value and row.mark.value == "✗"
    with pytest.raises(LookupError):
        panel.button("Stop long")


def test_a_failed_run_is_announced_in_the_header_for_a_minute(
    clock: ManualClock, service: BackgroundJobService, panel: JobsPanel
) -> None:
    def broken() -> None:
        raise RuntimeError("disk full")

    service.schedule_job("nightly", "@daily", broken).invoke_now().result(timeout=5)
    assert wait_for(lambda: service.last_failure is not None)
    panel.flush()
    assert "✗ nightly failed at 00:00:00: RuntimeError: disk full" in panel.header.notes.value
    clock.advance(61)
    panel.flush()
    assert "nightly" not in panel.header.notes.value


def test_notify_failures_off_keeps_the_header_quiet(
    service: BackgroundJobService, panel: JobsPanel
) -> None:
    service.notify_failures = False
    service.schedule_job("quiet", "@daily", lambda: 1 / 0).invoke_now().result(timeout=5)
    assert wait_for(lambda: service.last_failure is not None)
    panel.flush()
    assert "quiet" not in panel.header.notes.value


# --- rendering from what was published --------------------------------------------------


def test_rows_draw_from_the_published_state_and_a_tick_reads_no_job(
    clock: ManualClock, service: BackgroundJobService, panel: JobsPanel,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from mashroom_jobs.core.runtime import JobRuntime

    job = service.schedule_job("j", "* * * * *", noop)
    panel.flush()
    snapshots: list[str] = []
    original = JobRuntime.snapshot

    def counted(self: JobRuntime) -> Any:
        snapshots.append(self.spec.name)
        return original(self)

    monkeypatch.setattr(JobRuntime, "snapshot", counted)
    clock.advance(60)
    assert service.wait_until_idle(5)
    published = len(snapshots)  # the publisher's, one per change the panel hears of
    assert published >= 1
    panel.flush()
    assert len(snapshots) == published  # the row drew the state it was sent
    assert row_of(panel, "j").counts.value == "runs 1 · failed 0"
    for _ in range(3):
        clock.advance(1)  # a tick redraws the relative times from what it showed
        assert panel.flush()
    assert len(snapshots) == published and job.run_count == 1


def test_an_expanded_row_reads_the_store_again_only_when_the_store_changed(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch,
) -> None:
    from datetime import timedelta

    from mashroom_jobs import JobInvocation, Outcome
    from mashroom_jobs.store import SQLiteStore

    path = str(tmp_path / "store.sqlite")
    clock = ManualClock("2026-01-01T00:00:00+00:00")
    service = BackgroundJobService(clock=clock, timezone="UTC", store=path)
    panel = JobsPanel(service, auto_flush=False, callables={})
    try:
        job = service.schedule_job("report", "@daily", noop)
        job.invoke_now().result(5)
        panel.flush()
        reads: list[str | None] = []
        original = BackgroundJobService.history

        def counted(self: BackgroundJobService, name: str | None = None, *a: Any,
                    **k: Any) -> Any:
            reads.append(name)
            return original(self, name, *a, **k)

        monkeypatch.setattr(BackgroundJobService, "history", counted)
        panel.button("Show details of report").click()
        assert reads == ["report"]
        for _ in range(3):
            clock.advance(1)
            assert panel.flush()  # ticks: nothing changed, nothing read
        assert reads == ["report"]
        other = SQLiteStore(path, origin="vm pid 77")  # another process writes a run
        when = clock.now() - timedelta(seconds=1)
        other.record("report", JobInvocation(
            timestamp=when, scheduled_for=None, trigger="manual", execution_time_ms=2.0,
            outcome=Outcome.FAILED, error_message="ValueError: from elsewhere"))
        other.close()
        clock.advance(1)
        panel.flush()
        assert reads == ["report", "report"]
        assert "ValueError: from elsewhere" in panel.rows[0].detail.value
    finally:
        panel.close()
        service.shutdown()
        Widget.close_all()
