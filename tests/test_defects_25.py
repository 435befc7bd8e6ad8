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


# --- 3. one bad setting disabled the whole extension -------------------------------------------


@pytest.fixture
def configured_shell() -> Any:
    """A real InteractiveShell made with a config (the ``ip`` fixture's has none)."""
    from IPython.core.interactiveshell import InteractiveShell

    from mashroom_jobs import _extension

    shells: list[Any] = []

    def make(config: Any) -> Any:
        shells.append(InteractiveShell.instance(config=config))
        return shells[-1]

    yield make
    for shell in shells:
        _extension.unload_ipython_extension(shell)
    InteractiveShell.clear_instance()


def test_a_bad_setting_in_the_kernel_config_is_one_warning_and_the_extension_loads(
    configured_shell: Any, capfd: pytest.CaptureFixture[str],
) -> None:
    from traitlets.config import Config

    import mashroom_jobs

    config = Config()
    config.BackgroundJobService.timezone = "Europe/Viena"
    config.BackgroundJobService.store = 5
    config.BackgroundJobService.history_size = 7
    shell = configured_shell(config)
    shell.run_line_magic("load_ext", "mashroom_jobs")

    service = mashroom_jobs.get_service()
    assert "jobs" in shell.magics_manager.magics["line"]  # the magics are there
    assert service.timezone == "" and service.history_size == 7  # the good one applies
    assert service.store_path is not None  # the default store, not none
    err = capfd.readouterr().err
    assert err.count("is not valid") == 2, err
    assert ("c.BackgroundJobService.timezone = 'Europe/Viena' is not valid (Invalid time zone "
            "'Europe/Viena'") in err
    assert "the default ('') is used instead" in err
    assert "c.BackgroundJobService.store = 5 is not valid" in err
    assert "the default store is used instead" in err
    assert "Traceback" not in err


# --- 18. one rejected %config sent every later failure into the running cell ------------------


def test_library_records_reach_the_kernels_log_never_a_handler_of_the_root_logger(
    ip: Any, capfd: pytest.CaptureFixture[str],
) -> None:
    import io
    import logging

    import mashroom_jobs

    ip.run_line_magic("load_ext", "mashroom_jobs")
    cell = io.StringIO()  # what IPython's logging.error after a rejected %config installs
    root_handler = logging.StreamHandler(cell)
    logging.getLogger().addHandler(root_handler)
    try:
        ip.run_line_magic("config", 'BackgroundJobService.timezone = "Mars/X"')
        service = mashroom_jobs.get_service()
        run = service.schedule_job("bad", None, lambda: 1 / 0)
        assert service.wait_until_idle(5) and run.last_invocation is not None
        assert "Background job 'bad' failed" not in cell.getvalue()
        assert "Background job 'bad' failed: ZeroDivisionError" in capfd.readouterr().err
    finally:
        logging.getLogger().removeHandler(root_handler)
    ip.run_line_magic("unload_ext", "mashroom_jobs")
    assert logging.getLogger("mashroom_jobs").propagate  # given back
    assert logging.getLogger("mashroom_jobs").handlers == []


def test_in_a_kernel_library_records_go_to_the_kernels_own_log_handlers(
    ip: Any, monkeypatch: pytest.MonkeyPatch,
) -> None:
    import logging
    from types import SimpleNamespace

    import mashroom_jobs
    from mashroom_jobs import _extension

    # (reading a kernel's id imports ipykernel, which changes how widgets open their comms
    # for the rest of the session)
    monkeypatch.setattr(_extension, "kernel_id", lambda shell: None)

    received: list[logging.LogRecord] = []

    class Recorder(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            received.append(record)

    kernel_log = logging.getLogger("test-kernel-app")
    recorder = Recorder()
    kernel_log.addHandler(recorder)
    ip.kernel = SimpleNamespace(log=kernel_log)  # an ipykernel's kernel, as far as logs go
    try:
        ip.run_line_magic("load_ext", "mashroom_jobs")
        service = mashroom_jobs.get_service()
        service.schedule_job("bad", None, lambda: 1 / 0)
        assert service.wait_until_idle(5)
        assert any(r.getMessage().startswith("Background job 'bad' failed")
                   for r in received)
    finally:
        ip.run_line_magic("unload_ext", "mashroom_jobs")
        del ip.kernel
        kernel_log.removeHandler(recorder)


# --- 19. typos in plugin settings were silent --------------------------------------------------


def test_plugin_settings_naming_no_installed_plugin_are_warned_about(
    installed_plugins: Any, ip: Any, capfd: pytest.CaptureFixture[str],
) -> None:
    ip.run_line_magic("load_ext", "mashroom_jobs")
    import mashroom_jobs

    service = mashroom_jobs.get_service()
    capfd.readouterr()
    service.plugin_config = {"Example hearbeat": {"timeout": 5}}
    err = capfd.readouterr().err
    assert ("plugin_config names 'Example hearbeat', which is not an installed background-job "
            "plugin; did you mean 'Example heartbeat'?") in err


def test_failing_plugins_are_said_on_load_in_terminal_ipython(
    installed_plugins: Any, ip: Any, capfd: pytest.CaptureFixture[str],
) -> None:
    ip.run_line_magic("load_ext", "mashroom_jobs")
    err = capfd.readouterr().err
    for name in ("Broken bootstrap", "Broken callback", "Broken import", "Broken schedule"):
        assert f"Background job plugin {name!r} failed" in err, err


# --- 12. store paths --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("{tmp}/newdir/", "names a folder: give a file in it, such as '{tmp}/newdir/store.sqlite'"),
        ("file:{tmp}/f.sqlite", "is a file: URI, which would be read as a folder named 'file:': "
                                "give the path itself ('{tmp}/f.sqlite')"),
        ("file://{tmp}/f.sqlite", "give the path itself ('{tmp}/f.sqlite')"),
        ("{tmp}/" + "a" * 300, "is 300 bytes long; the file system allows at most 255"),
    ],
    ids=["trailing-slash", "file-uri", "file-uri-slashes", "long-name"],
)
def test_store_paths_that_name_no_usable_file_say_why(
    tmp_path: Any, path: str, message: str,
) -> None:
    from mashroom_jobs import StoreError
    from mashroom_jobs.store import SQLiteStore

    with pytest.raises(StoreError) as info:
        SQLiteStore(path.format(tmp=tmp_path))
    assert message.format(tmp=tmp_path) in str(info.value)
    assert list(tmp_path.iterdir()) == []  # nothing made on the way


# --- 15. the command line and the magics -----------------------------------------------------


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["cron", "H H * * *"], "H needs the job's name: give --name NAME"),
        (["cron", "0", "9", "*", "*", "1"],
         "the expression is one argument, got 5 ('0 9 * * 1'): quote it, as in "
         "mashroom-jobs cron \"0 9 * * 1\""),
        (["run", "--store", ""], "names no file: give a path, or none to keep runs in memory"),
        (["history", "--store", ":memory:"], "use none to keep runs in this process's memory"),
    ],
    ids=["h-without-name", "unquoted", "empty-store", "memory-store"],
)
def test_command_line_errors_speak_the_command_lines_words(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str],
) -> None:
    from mashroom_jobs.cli import main

    try:
        code = main(argv)
    except SystemExit as exc:  # argparse's own errors
        code = int(exc.code or 0)
    err = capsys.readouterr().err
    assert code == 2 and message in err, err
    assert "CronSchedule(" not in err and "or None" not in err


@pytest.mark.parametrize(
    ("kind", "magic", "line", "prefix"),
    [("line", "schedule", "--help", "  %schedule [--tz ZONE]"),
     ("cell", "schedule", "-h", "  %%schedule [--tz ZONE]"),
     ("line", "unschedule", "--help", "Unschedule the job NAME"),
     ("line", "jobs", "--help", "  %jobs [--plugins]")],
    ids=["schedule-line", "schedule-cell", "unschedule", "jobs"],
)
def test_magics_print_their_help_for_help(
    ip: Any, kind: str, magic: str, line: str, prefix: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    import mashroom_jobs

    ip.run_line_magic("load_ext", "mashroom_jobs")
    jobs = mashroom_jobs.get_service().jobs
    if kind == "line":
        ip.run_line_magic(magic, line)
    else:
        ip.run_cell_magic(magic, line, "print('not scheduled')\n")
    out = capsys.readouterr().out
    assert out.startswith(prefix), out
    assert mashroom_jobs.get_service().jobs == jobs  # help only: nothing scheduled or removed


def test_schedule_as_a_line_magic_points_to_the_cell_magic(ip: Any) -> None:
    from IPython.core.error import UsageError

    ip.run_line_magic("load_ext", "mashroom_jobs")
    with pytest.raises(UsageError, match="for code, put %%schedule NAME CRON on the first "
                                         "line of a cell"):
        ip.run_line_magic("schedule", "nightly '0 2 * * *'")


def test_the_writers_warning_counts_one_run_in_the_singular(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture,
) -> None:
    import logging
    import sqlite3

    from mashroom_jobs.store import SQLiteStore

    store = SQLiteStore(tmp_path / "s.sqlite", batch_delay=0)
    other = sqlite3.connect(tmp_path / "s.sqlite", timeout=0)
    other.execute("BEGIN IMMEDIATE")  # another process writes: the writer must wait
    try:
        with caplog.at_level(logging.WARNING, logger="mashroom_jobs.store"):
            store.record("j", _invocation())
            from mashroom_jobs.testing import wait_for

            assert wait_for(lambda: caplog.records, timeout=10)
        assert "cannot write 1 run to the job store" in caplog.records[0].getMessage()
    finally:
        other.rollback()
        other.close()
        assert store.close(5)


def _invocation() -> Any:
    from mashroom_jobs import JobInvocation, Outcome

    return JobInvocation(timestamp=datetime(2026, 1, 1, tzinfo=UTC), scheduled_for=None,
                         trigger="manual", execution_time_ms=1.0, outcome=Outcome.OK, job="j")


# --- 17. history printed escape sequences and misaligned wide names ---------------------------


def test_history_shows_escape_sequences_and_aligns_wide_names(
    tmp_path: Any, capsys: pytest.CaptureFixture[str],
) -> None:
    from wcwidth import wcswidth

    from mashroom_jobs.cli import main

    path = str(tmp_path / "s.sqlite")
    service = BackgroundJobService(store=path)

    def bad() -> None:
        raise ValueError("\x1b[31mred\x1b]0;title\x07")

    for name, callback in (("日本語のジョブ", bad), ("emoji 🎉", noop), ("plain", noop)):
        service.schedule_job(name, None, callback)
    assert service.wait_until_idle(5)
    service.shutdown()
    assert main(["history", "--store", path]) == 0
    lines = capsys.readouterr().out.splitlines()[1:]
    assert "\x1b" not in "\n".join(lines) and "\x07" not in "\n".join(lines)
    assert any("ValueError: \\x1b[31mred\\x1b]0;title\\x07" in line for line in lines)
    # each column starts at the same display column on every line
    starts = {wcswidth(line[:line.index("immediate" if "immediate" in line else "trigger")])
              for line in lines}
    assert len(starts) == 1, lines


# --- 4. the store deleted under a running process (real processes: test_store_processes) -----


def test_a_deleted_store_is_reopened_before_the_next_write_with_one_warning(
    tmp_path: Any, caplog: pytest.LogCaptureFixture,
) -> None:
    import logging
    import os

    from mashroom_jobs.store import SQLiteStore

    path = str(tmp_path / "s.sqlite")
    store = SQLiteStore(path, batch_delay=0, check_interval=3600)  # checks before writes
    try:
        for suffix in ("", "-wal", "-shm"):
            if os.path.exists(path + suffix):
                os.unlink(path + suffix)
        with caplog.at_level(logging.WARNING, logger="mashroom_jobs.store"):
            for _ in range(2):
                store.record("j", _invocation())
                assert store.flush(10)
        assert store.reopened == 1 and store.count("j") == 2  # both in the new file
        assert [r.getMessage() for r in caplog.records
                if "deleted or replaced" in r.getMessage()] == [
            f"mashroom-jobs: the job store {path} was deleted or replaced while this process "
            f"used it: it is opened again, so that this process shares its claims with the "
            f"others again (the runs it wrote in the last moments went to the old file)"]
        assert store.claim("j", datetime(2026, 1, 1, tzinfo=UTC)) is None
    finally:
        store.close()


# --- 7. big outputs: the writer's batches and its queue are bounded in characters too ---------


def _big_run(index: int, size: int = 90_000) -> Any:
    from mashroom_jobs import JobInvocation, Outcome

    return JobInvocation(timestamp=datetime(2026, 1, 1, tzinfo=UTC), scheduled_for=None,
                         trigger="manual", execution_time_ms=1.0, outcome=Outcome.OK,
                         output=f"{index}" + "x" * size, job="big")


def test_big_outputs_are_written_in_batches_of_bounded_size(tmp_path: Any) -> None:
    from mashroom_jobs.store import MAX_BATCH_CHARS, SQLiteStore

    # the writer waits (batch_delay) until flush() hurries it: one queue of 100 runs of
    # 90 KB, which was one 9 MB transaction (5,000 such runs: 450 MB, written after 2.9 s)
    store = SQLiteStore(tmp_path / "s.sqlite", batch_delay=60)
    try:
        for i in range(100):
            store.record("big", _big_run(i))
        assert store.flush(30)
        assert store.commits >= 100 * 90_000 // MAX_BATCH_CHARS + 1 >= 2
        assert store.count("big") == 100 and store.shed == 0
    finally:
        store.close()


def test_a_writer_that_falls_behind_stores_runs_without_output_instead_of_growing(
    tmp_path: Any, caplog: pytest.LogCaptureFixture,
) -> None:
    import logging
    import sqlite3

    from mashroom_jobs.store import SQLiteStore

    path = tmp_path / "s.sqlite"
    store = SQLiteStore(path, batch_delay=0, max_pending_chars=1_000_000)
    other = sqlite3.connect(path, timeout=0)
    other.execute("BEGIN IMMEDIATE")  # another process holds the store: nothing is written
    try:
        with caplog.at_level(logging.WARNING, logger="mashroom_jobs.store"):
            for i in range(30):  # 2.7 MB of output for a queue of 1 MB
                store.record("big", _big_run(i))
        assert store.shed == 30 - 1_000_000 // 90_001
    finally:
        other.rollback()
        other.close()
    try:
        assert store.flush(30)
        runs = store.history("big", limit=100)
        assert len(runs) == 30  # every run is stored; the late ones without their output
        kept = [r for r in runs if r.output.endswith("x" * 100)]
        assert len(kept) == 1_000_000 // 90_001
        assert all(r.output.startswith("[not stored: the job store fell behind")
                   for r in runs if r not in kept)
        assert any("fell 1 MB behind the runs' output" in r.getMessage()
                   for r in caplog.records)
    finally:
        store.close()
