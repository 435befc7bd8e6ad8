"""Regression tests of issue 25 (defects found trying the project as a new user would).

Each failed before its fix.  Items with more machinery have files of their own:
output that escapes its run (5) in ``test_run_output.py``, the store replaced under a
running process (4) in ``test_store_identity.py``, Dask peers that do not answer (1)
in ``test_dask_connect.py``.
"""

from __future__ import annotations

import math
from datetime import date, datetime, timezone
from typing import Any

import pytest
from traitlets import TraitError

from mashroom_jobs import BackgroundJobService, CronSchedule, InvalidCronExpressionError
from mashroom_jobs.testing import ManualClock

UTC = timezone.utc


def noop() -> None:
    pass


# --- 9. an unknown keyword or a bad clock was accepted ----------------------------------------


def test_an_unknown_keyword_of_the_service_is_a_type_error_naming_it() -> None:
    with pytest.raises(TypeError, match=r"unexpected keyword argument 'time_zone'; "
                                        r"did you mean 'timezone'\?"):
        BackgroundJobService(time_zone="Asia/Tokyo")


def test_a_clock_without_the_clock_methods_is_refused_at_once() -> None:
    with pytest.raises(TraitError, match=r"clock must be a Clock .* got str 'x'"):
        BackgroundJobService(clock="x")


# --- 10. blanks ran the job now -----------------------------------------------------------------


def test_a_blank_expression_is_invalid_and_only_none_or_empty_run_once(
    service: BackgroundJobService,
) -> None:
    with pytest.raises(InvalidCronExpressionError, match="it is blank"):
        service.schedule_job("nightly", "   ", noop)
    assert service.jobs == ()  # nothing scheduled, nothing run
    assert service.schedule_job("once", "", noop).cron_schedule is None


# --- 11. steps longer than their field -----------------------------------------------------------


def test_the_first_weekday_idiom_with_a_long_step_fires_on_the_first_monday() -> None:
    schedule = CronSchedule("1 1 */100,1-7 * MON", "UTC")
    times = schedule.fire_times(datetime(2026, 1, 1, tzinfo=UTC), 3)
    # '*' starts the day-of-month field: both day fields must match (the first Monday)
    assert [t.date().isoformat() for t in times] == ["2026-01-05", "2026-02-02", "2026-03-02"]
    assert "holds only 1" in schedule.describe()


@pytest.mark.parametrize(
    ("expression", "first", "note"),
    [
        ("*/61 * * * *", "01:00", "minute step 61 is longer than the field: it holds only 0"),
        ("5/100 * * * *", "00:05", "minute step 100 is longer than the field: it holds only 5"),
        ("0 */25 * * *", "00:00", "hour step 25 is longer than the field: it holds only 0"),
    ],
    ids=["star", "start", "hour"],
)
def test_a_step_longer_than_its_field_holds_its_first_value_and_says_so(
    expression: str, first: str, note: str,
) -> None:
    schedule = CronSchedule(expression, "UTC")
    after = datetime(2026, 1, 1, 0, 0, tzinfo=UTC)
    assert f"{schedule.next_fire_time(after):%H:%M}" == first
    assert note in schedule.describe()


# --- 13. the panel's arguments -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"flush_interval": math.nan}, TypeError, "flush_interval must be a number of seconds"),
        ({"flush_interval": 1e300}, ValueError, "flush_interval must be at most 3600"),
        ({"page_size": "5"}, TypeError, "page_size must be a whole number of rows, got '5'"),
        ({"page_size": 2.5}, TypeError, "page_size must be a whole number of rows, got 2.5"),
        ({"callables": "abc"}, TypeError, "callables must be a mapping of names to functions"),
        ({"callables": {"x": 3}}, TypeError, "callables must map names (str) to functions"),
    ],
    ids=["nan", "huge", "str-page", "float-page", "str-callables", "not-callable"],
)
def test_bad_panel_arguments_are_errors_naming_them(
    service: BackgroundJobService, kwargs: dict[str, Any], error: type[Exception], message: str,
) -> None:
    from mashroom_jobs.panel import JobsPanel

    with pytest.raises(error) as info:
        JobsPanel(service, **kwargs)
    assert message in str(info.value)


# --- 14. raw errors or silent acceptance in public calls ------------------------------------------


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda s: s.fire_times("2020", 1), "start must be a timezone-aware datetime, got str"),
        (lambda s: s.next_fire_time(date(2020, 1, 1)),
         "after must be a timezone-aware datetime, got date"),
        (lambda s: s.fire_times(datetime(2020, 1, 1, tzinfo=UTC), 1.5),
         "n must be a whole number of fire times"),
    ],
    ids=["str-start", "date-after", "float-n"],
)
def test_a_schedule_asked_with_a_wrong_type_says_what_it_needs(call: Any, message: str) -> None:
    with pytest.raises(TypeError, match=message):
        call(CronSchedule("* * * * *", "UTC"))


def test_service_calls_check_their_arguments(clock: ManualClock) -> None:
    service = BackgroundJobService(clock=clock, timezone="UTC")
    with pytest.raises(TypeError, match="timeout must be a number of seconds, got 'x'"):
        service.wait_until_idle("x")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"name must be a job's name .* got int 5"):
        service.history(name=5)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="timeout must be a number of seconds, got 'x'"):
        service.shutdown(timeout="x")  # type: ignore[arg-type]
    assert not service.is_shut_down  # a bad call shut nothing down
    service.shutdown()


def test_a_retry_delay_the_timer_would_never_reach_is_refused(
    service: BackgroundJobService,
) -> None:
    with pytest.raises(ValueError, match="retry_delay must be at most 604800 seconds"):
        service.schedule_job("r", None, noop, retries=1, retry_delay=1e300)
    assert service.jobs == ()


def test_a_store_timeout_of_zero_runs_a_fire_unclaimed_when_another_process_writes(
    tmp_path: Any, clock: ManualClock,
) -> None:
    import sqlite3

    path = tmp_path / "store.sqlite"
    service = BackgroundJobService(clock=clock, timezone="UTC", store=str(path),
                                   store_timeout=0)
    try:
        job = service.schedule_job("j", "* * * * *", noop, exclusive=True)
        other = sqlite3.connect(path, timeout=0)
        other.execute("BEGIN IMMEDIATE")  # another process's write, held
        try:
            clock.advance(60)
            assert service.wait_until_idle(5)
        finally:
            other.rollback()
            other.close()
        run = job.last_invocation
        assert run is not None and run.success
        assert "ran without claim" in run.output  # it did not wait for the store
    finally:
        service.shutdown()


# --- 21. the form picked a function for the user --------------------------------------------------


def test_the_form_schedules_nothing_until_a_function_is_chosen(
    service: BackgroundJobService,
) -> None:
    from ipywidgets import Widget

    from mashroom_jobs.panel import JobsPanel

    panel = JobsPanel(service, auto_flush=False, callables={"first": noop})
    try:
        panel.form.name.value = "x"
        panel.form.cron.value = "@daily"
        panel.form.schedule.click()
        assert service.jobs == ()
        assert "Choose the function the job runs." in panel.form.message.value
        panel.form.callable.label = "first"
        panel.form.schedule.click()
        assert [job.name for job in service.jobs] == ["x"]
    finally:
        panel.close()
        Widget.close_all()
