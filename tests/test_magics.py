"""%jobs, %%schedule and %unschedule, through a real IPython shell and a manual clock."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from typing import Any

import pytest
from IPython.core.error import UsageError

from mashroom_jobs import BackgroundJobService
from mashroom_jobs.magics import JobMagics
from mashroom_jobs.testing import ManualClock


@pytest.fixture
def magics(ip: Any, service: BackgroundJobService) -> Iterator[JobMagics]:
    """The magics bound to the manual-clock service (no extension, no plugins)."""
    job_magics = JobMagics(ip, service=service)
    ip.register_magics(job_magics)
    yield job_magics


def _tick(clock: ManualClock, service: BackgroundJobService, minutes: float) -> None:
    clock.advance(minutes=minutes)
    assert service.wait_until_idle(5)


def test_schedule_runs_the_cell_in_the_notebook_namespace_on_schedule(
    ip: Any, magics: JobMagics, service: BackgroundJobService, clock: ManualClock,
    capsys: pytest.CaptureFixture[str],
) -> None:
    ip.user_ns["counter"] = 0
    ip.run_cell_magic("schedule", '"Refresh data" "*/5 * * * *"', "counter += 1\nlast = counter")
    assert capsys.readouterr().out == (
        "Scheduled 'Refresh data': Every 5 minutes, next run 2026-01-01 00:05:00 UTC\n"
    )
    job = service.get_job("Refresh data")
    assert job.cron_schedule == "*/5 * * * *" and ip.user_ns["counter"] == 0
    _tick(clock, service, 5)
    _tick(clock, service, 5)
    assert ip.user_ns["counter"] == 2 and ip.user_ns["last"] == 2
    assert job.run_count == 2 and job.failure_count == 0


def test_what_the_scheduled_cell_prints_goes_to_its_runs_not_to_the_current_cell(
    ip: Any, magics: JobMagics, service: BackgroundJobService, clock: ManualClock,
    capsys: pytest.CaptureFixture[str],
) -> None:
    ip.run_cell_magic("schedule", "printer '* * * * *'", "print('from the job')")
    capsys.readouterr()
    _tick(clock, service, 1)
    assert service.get_job("printer").last_invocation.output == "from the job\n"
    assert "from the job" not in capsys.readouterr().out


def test_schedule_with_tz_and_now_runs_once_right_away_in_that_zone(
    ip: Any, magics: JobMagics, service: BackgroundJobService
) -> None:
    ip.user_ns["runs"] = []
    ip.run_cell_magic("schedule", 'report "0 9 * * 1-5" --tz Europe/Vienna --now',
                      "runs.append(1)")
    assert service.wait_until_idle(5)
    job = service.get_job("report")
    assert job.timezone == "Europe/Vienna"
    assert job.next_invocation.isoformat() == "2026-01-01T09:00:00+01:00"
    assert ip.user_ns["runs"] == [1] and job.last_invocation.trigger == "immediate"


def test_a_scheduled_cell_may_await_and_use_ipython_syntax(
    ip: Any, magics: JobMagics, service: BackgroundJobService, clock: ManualClock
) -> None:
    ip.run_cell_magic(
        "schedule", 'async "* * * * *"',
        "import asyncio\nawait asyncio.sleep(0)\nvalue = 42\nnames = %who_ls",
    )
    _tick(clock, service, 1)
    job = service.get_job("async")
    assert job.last_invocation.success, job.last_invocation.traceback
    assert ip.user_ns["value"] == 42 and "value" in ip.user_ns["names"]


def test_scheduling_the_same_name_again_replaces_the_job(
    ip: Any, magics: JobMagics, service: BackgroundJobService
) -> None:
    ip.run_cell_magic("schedule", 'x "* * * * *"', "pass")
    ip.run_cell_magic("schedule", 'x "0 * * * *"', "pass")
    assert [(j.name, j.cron_schedule) for j in service.jobs] == [("x", "0 * * * *")]
    assert service.timer_entries() == 1


@pytest.mark.parametrize(
    ("line", "cell", "message"),
    [
        ('job "61 * * * *"', "pass",
         "%%schedule 'job': Invalid cron expression '61 * * * *': minute 61 is out of range 0-59"),
        ('job "* * * * *" --tz Mars/Base', "pass", "Invalid time zone 'Mars/Base'"),
        ("job", "pass", "the following arguments are required: cron"),
        ('job "* * * * *" --every 5', "pass", "unrecognized arguments: --every 5"),
        ('"job "* * * * *"', "pass", "No closing quotation"),
        ('"  " "* * * * *"', "pass", "the job name is empty"),
        ('job "* * * * *"', "  \n", "the cell is empty, there is nothing to run"),
        ('job "* * * * *"', "x = 1\nif x\n", "syntax error in the cell, line 2"),
        ('job "* * * * *" --timeout soon', "pass", "argument --timeout: invalid float value"),
        ('job "* * * * *" --timeout -1', "pass", "timeout must be at least 0.001 seconds"),
        ('job "* * * * *" --retries -2', "pass", "retries must be a whole number >= 0, got -2"),
        ('job "* * * * *" --retry-delay nan', "pass",
         "retry_delay must be a number of seconds, got nan"),
    ],
    ids=["bad-cron", "bad-zone", "no-cron", "unknown-option", "open-quote", "blank-name",
         "empty-cell", "syntax-error", "text-timeout", "negative-timeout", "negative-retries",
         "nan-delay"],
)
def test_bad_schedule_input_is_a_usage_error_and_schedules_nothing(
    ip: Any, magics: JobMagics, service: BackgroundJobService, line: str, cell: str,
    message: str,
) -> None:
    with pytest.raises(UsageError) as info:
        ip.run_cell_magic("schedule", line, cell)
    assert message in str(info.value) and "\n" not in str(info.value)
    assert service.jobs == ()


def test_schedule_takes_a_timeout_and_retries(
    ip: Any, magics: JobMagics, service: BackgroundJobService
) -> None:
    ip.run_cell_magic(
        "schedule", 'nightly "0 2 * * *" --timeout 600 --retries 2 --retry-delay 45', "pass\n")
    job = service.get_job("nightly")
    assert job is not None
    assert (job.timeout, job.retries, job.retry_delay) == (600.0, 2, 45.0)


def test_a_usage_error_prints_one_line_and_no_traceback(
    ip: Any, magics: JobMagics, capsys: pytest.CaptureFixture[str]
) -> None:
    ip.run_cell('%%schedule job "61 * * * *"\npass\n')
    captured = capsys.readouterr()
    output = (captured.out + captured.err).strip()
    assert output == (
        "UsageError: %%schedule 'job': Invalid cron expression '61 * * * *': "
        "minute 61 is out of range 0-59"
    )


def test_unschedule_removes_the_job_named_with_or_without_quotes(
    ip: Any, magics: JobMagics, service: BackgroundJobService,
    capsys: pytest.CaptureFixture[str],
) -> None:
    ip.run_cell_magic("schedule", '"Refresh data" "* * * * *"', "pass")
    ip.run_cell_magic("schedule", 'other "* * * * *"', "pass")
    job = service.get_job("Refresh data")
    ip.run_line_magic("unschedule", '"Refresh data"')
    ip.run_line_magic("unschedule", "other")
    assert service.jobs == () and not job.active
    assert capsys.readouterr().out.endswith("Unscheduled 'Refresh data'\nUnscheduled 'other'\n")


def test_unschedule_of_an_unknown_job_names_the_scheduled_ones(
    ip: Any, magics: JobMagics, service: BackgroundJobService
) -> None:
    service.schedule_job("a", "* * * * *", lambda: None)
    with pytest.raises(UsageError, match=r"no job named 'b'; scheduled jobs: 'a'"):
        ip.run_line_magic("unschedule", "b")
    with pytest.raises(UsageError, match="give the name of the job"):
        ip.run_line_magic("unschedule", "  ")


def test_jobs_prints_the_text_table_when_the_panel_is_not_available(
    ip: Any, magics: JobMagics, service: BackgroundJobService,
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "mashroom_jobs.panel", None)  # import fails
    service.schedule_job("tick", "*/5 * * * *", lambda: None)
    assert ip.run_line_magic("jobs", "") is None
    out = capsys.readouterr().out
    assert out == repr(service) + "\n"
    assert "tick" in out and "*/5 * * * *" in out


def test_jobs_in_terminal_ipython_prints_the_text_table(
    ip: Any, magics: JobMagics, service: BackgroundJobService, capsys: pytest.CaptureFixture[str]
) -> None:
    service.schedule_job("nightly", "0 2 * * *", lambda: None)
    assert ip.run_line_magic("jobs", "") is None
    out = capsys.readouterr().out
    assert out.startswith("BackgroundJobService: 1 job\n")
    assert "nightly  0 2 * * *" in out and "JobsPanel(" not in out


def test_jobs_returns_the_panel_in_a_kernel(
    ip: Any, magics: JobMagics, service: BackgroundJobService, monkeypatch: pytest.MonkeyPatch
) -> None:
    panel_module = pytest.importorskip("mashroom_jobs.panel")
    monkeypatch.setattr(ip, "kernel", object(), raising=False)  # what ipykernel's shell has
    panel = ip.run_line_magic("jobs", "")
    try:
        assert isinstance(panel, panel_module.JobsPanel)
        assert ip.run_line_magic("jobs", "") is panel  # shown again, not a second panel
    finally:
        close = getattr(panel_module, "close_panels", None)
        if close is not None:
            close(service)


def test_jobs_plugins_lists_plugins_with_state_schedule_and_error(
    ip: Any, installed_plugins: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    ip.run_line_magic("load_ext", "mashroom_jobs")
    capsys.readouterr()
    ip.run_line_magic("jobs", "--plugins")
    out = capsys.readouterr().out
    assert "Example heartbeat  loaded    */5 * * * *" in out
    assert "Broken import      failed" in out
    assert "error: bootstrap raised RuntimeError: no database configured" in out
    assert "error: invalid config: Invalid cron expression '61 * * * *'" in out
    with pytest.raises(UsageError, match="unrecognized arguments: --bogus"):
        ip.run_line_magic("jobs", "--bogus")


# --- targets and durable jobs from a magic ------------------------------------------------


def test_schedule_a_command_in_kernel_and_durably_and_unschedule_it(
    ip: Any, tmp_path: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    from IPython.core.error import UsageError

    from mashroom_jobs import Command, Outcome, get_service

    ip.config.BackgroundJobService.store = str(tmp_path / "store.sqlite")
    ip.run_line_magic("load_ext", "mashroom_jobs")
    service = get_service()
    ip.run_line_magic("schedule", "greet '0 0 1 1 *' --command 'echo hello there'")
    job = service.get_job("greet")
    assert job is not None and job.target == Command(["echo", "hello", "there"])
    assert not job.durable
    assert job.invoke_now().result(10).output == "hello there\n"
    ip.run_line_magic("schedule", "backup '0 3 * * *' --shell 'echo a | tr a b' --durable "
                                  "--catchup skip")
    assert "Scheduled durable job 'backup'" in capsys.readouterr().out
    backup = service.get_job("backup")
    assert backup is not None and backup.durable
    run = backup.invoke_now().result(10)
    assert run.outcome is Outcome.OK and run.output == "b\n"
    assert service.durable.get("backup").definition.catchup.policy == "skip"
    with pytest.raises(UsageError, match="a cell cannot be durable"):
        ip.run_cell_magic("schedule", "cellular '* * * * *' --durable", "print(1)")
    with pytest.raises(UsageError, match="give exactly one target"):
        ip.run_line_magic("schedule", "two '* * * * *' --command 'true' --call os:getpid")
    ip.run_line_magic("unschedule", "backup")
    assert "Removed durable job 'backup' from the job store" in capsys.readouterr().out
    assert service.get_job("backup") is None and service.durable.jobs() == []


def test_unschedule_removes_a_durable_job_only_in_the_store_reading_only_its_definition(
    ip: Any, tmp_path: Any, clock: ManualClock, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from mashroom_jobs import Command
    from mashroom_jobs.durable import JobDefinition

    service = BackgroundJobService(store=str(tmp_path / "store.sqlite"), durable_jobs=False,
                                   clock=clock, timezone="UTC")
    try:
        durable = service.durable
        assert durable is not None
        durable.define(JobDefinition.make("nightly", "0 3 * * *", Command(["true"]),
                                          timezone="UTC"))
        service.schedule_job("local", "@daily", lambda: None)
        ip.register_magics(JobMagics(ip, service=service))

        def every(*_args: Any) -> Any:
            raise AssertionError("read every durable job (or host) to answer about one")

        monkeypatch.setattr(durable.control, "definitions", every)
        monkeypatch.setattr(durable, "hosts", every)
        assert service.is_durable("nightly")
        assert not service.is_durable("local") and not service.is_durable("nope")
        ip.run_line_magic("unschedule", "nightly")
        out = capsys.readouterr().out
        assert "Removed durable job 'nightly' from the job store" in out
        assert "Unscheduled 'nightly'" in out
        assert durable.control.definition("nightly") is None
        with pytest.raises(UsageError, match="no job named 'nightly'; scheduled jobs: 'local'"):
            ip.run_line_magic("unschedule", "nightly")
        ip.run_line_magic("unschedule", "local")
        assert capsys.readouterr().out == "Unscheduled 'local'\n"
    finally:
        service.shutdown()
