"""A run's output stays in its run (issue 25, items 2, 5 and 6).

- 2: a job closing ``sys.stdout`` closed the process's stream;
- 5: what a job's threads (a ``Thread``, a ``ThreadPoolExecutor``) printed, its
  ``display()`` and its ``input()`` reached whichever cell was running;
- 6: error messages and tracebacks were unbounded while output was capped.
"""

from __future__ import annotations

import builtins
import logging
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from mashroom_jobs import BackgroundJobService, CronSchedule, InvalidCronExpressionError
from mashroom_jobs.core.records import (
    MAX_TEXT_CHARS,
    bounded_traceback,
    error_text,
    log_text,
)

#: a schedule that does not fire during a test: runs come from invoke_now() only
YEARLY = "0 0 1 1 *"


# --- 2. closing the streams ---------------------------------------------------------------------


@pytest.mark.parametrize("name", ["stdout", "stderr"])
def test_a_job_closing_the_processs_stream_closes_nothing(
    service: BackgroundJobService, name: str, capsys: pytest.CaptureFixture[str],
) -> None:
    def closer() -> None:
        print("before")
        getattr(sys, name).close()
        with getattr(sys, name):  # the context manager closes nothing either
            pass
        print("after")

    run = service.schedule_job("closer", YEARLY, closer).invoke_now().result(5)
    assert run.success and run.output == "before\nafter\n"
    assert not getattr(sys, name).closed
    print("the process still prints", file=getattr(sys, name))
    assert "the process still prints" in getattr(capsys.readouterr(), name[3:])


# --- 5. threads a job starts --------------------------------------------------------------------


def test_a_thread_a_job_starts_prints_into_the_run(
    service: BackgroundJobService, capsys: pytest.CaptureFixture[str],
) -> None:
    class Printer(threading.Thread):  # a subclass with its own run(), as libraries have
        def run(self) -> None:
            print("from a subclass")

    def job() -> None:
        thread = threading.Thread(target=print, args=("from a thread",))
        thread.start()
        thread.join()
        printer = Printer()
        printer.start()
        printer.join()

    run = service.schedule_job("threads", YEARLY, job).invoke_now().result(5)
    assert run.output == "from a thread\nfrom a subclass\n"
    assert capsys.readouterr().out == ""  # nothing reached the process's (the cell's) stream


def test_a_thread_pool_task_prints_into_the_run_that_submitted_it(
    service: BackgroundJobService, capsys: pytest.CaptureFixture[str],
) -> None:
    shared = ThreadPoolExecutor(max_workers=1)  # made outside any run, shared by two jobs

    def job(word: str) -> None:
        shared.submit(print, word).result()
        with ThreadPoolExecutor(max_workers=2) as own:
            list(own.map(print, [f"{word} in its own pool"]))

    try:
        first = service.schedule_job("a", YEARLY, lambda: job("one")).invoke_now().result(5)
        second = service.schedule_job("b", YEARLY, lambda: job("two")).invoke_now().result(5)
    finally:
        shared.shutdown()
    assert first.output == "one\none in its own pool\n"
    assert second.output == "two\ntwo in its own pool\n"  # the worker the first run started
    assert capsys.readouterr().out == ""


def test_the_librarys_own_threads_never_inherit_a_run(
    service: BackgroundJobService, capsys: pytest.CaptureFixture[str],
) -> None:
    def job() -> None:
        thread = threading.Thread(target=print, args=("library thread",),
                                  name="mashroom-jobs-example")
        thread.start()
        thread.join()

    run = service.schedule_job("own", YEARLY, job).invoke_now().result(5)
    assert run.output == ""
    assert capsys.readouterr().out == "library thread\n"


def test_a_thread_writing_after_its_run_was_recorded_is_warned_about_once(
    service: BackgroundJobService, capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    go, done = threading.Event(), threading.Event()

    def late() -> None:
        go.wait(5)
        print("late")
        print("later")
        done.set()

    def job() -> None:
        threading.Thread(target=late, daemon=True).start()

    with caplog.at_level(logging.WARNING, logger="mashroom_jobs"):
        run = service.schedule_job("late", YEARLY, job).invoke_now().result(5)
        go.set()
        assert done.wait(5)
    assert run.output == ""
    assert capsys.readouterr().out == ""  # not into the process's stream (a cell) either
    warnings = [r.getMessage() for r in caplog.records if "after the run" in r.getMessage()]
    assert warnings == ["mashroom-jobs: a thread started by a run of 'late' wrote after the "
                        "run was recorded; what it writes now is not recorded (join the job's "
                        "threads before it returns)"]


def test_a_job_that_shuts_the_service_down_still_prints_into_its_run(
    clock: Any, capsys: pytest.CaptureFixture[str],
) -> None:
    service = BackgroundJobService(clock=clock, timezone="UTC")

    def job() -> None:
        service.shutdown(timeout=1)
        print("after shutdown")

    run = service.schedule_job("stopper", YEARLY, job).invoke_now().result(5)
    assert run.output == "after shutdown\n"
    assert capsys.readouterr().out == ""


def test_threads_outside_runs_and_after_the_last_service_are_left_alone(clock: Any) -> None:
    start, submit = threading.Thread.start, ThreadPoolExecutor.submit
    service = BackgroundJobService(clock=clock, timezone="UTC")
    assert threading.Thread.start is not start  # started threads inherit a run now
    assert ThreadPoolExecutor.submit is not submit
    service.shutdown()
    assert threading.Thread.start is start and ThreadPoolExecutor.submit is submit


# --- 5. display() and input() in a kernel --------------------------------------------------------


def test_display_in_a_job_goes_into_the_run_never_to_the_shells_publisher(ip: Any) -> None:
    from IPython.display import HTML, clear_output, display

    import mashroom_jobs

    published: list[Any] = []
    ip.display_pub.publish = lambda data, *a, **kw: published.append(data)
    ip.display_pub.clear_output = lambda *a, **kw: published.append("cleared")
    ip.run_line_magic("load_ext", "mashroom_jobs")
    service = mashroom_jobs.get_service()

    def job() -> None:
        display(HTML("<b>rich</b>"))
        clear_output()
        print("printed")

    run = service.schedule_job("rich", YEARLY, job).invoke_now().result(5)
    assert run.output == ("<IPython.core.display.HTML object>\n[not shown here: text/html]\n"
                          "printed\n")
    assert published == []
    display(HTML("<i>a cell's own</i>"))  # outside a run: the shell's publisher, as before
    assert published and "text/html" in published[0]


def test_input_in_a_job_fails_at_once_naming_the_job(
    ip: Any, monkeypatch: pytest.MonkeyPatch,
) -> None:
    from types import SimpleNamespace

    import mashroom_jobs
    from mashroom_jobs import _extension

    # (reading a kernel's id imports ipykernel, which changes how widgets open their comms
    # for the rest of the session)
    monkeypatch.setattr(_extension, "kernel_id", lambda shell: None)

    asked: list[str] = []
    ip.kernel = SimpleNamespace(raw_input=lambda prompt="": asked.append(prompt) or "typed",
                                getpass=lambda prompt="": "secret")
    original_input = builtins.input
    try:
        ip.run_line_magic("load_ext", "mashroom_jobs")
        service = mashroom_jobs.get_service()

        def job() -> None:
            ip.kernel.raw_input("name? ")  # what builtins.input is while a cell runs

        run = service.schedule_job("asks", YEARLY, job).invoke_now().result(5)
        assert not run.success and asked == []
        assert run.error_message.startswith(
            "JobInputError: input() was called by the background job 'asks': a job runs "
            "unattended")
        between = service.schedule_job("between", YEARLY, lambda: input()).invoke_now()
        assert between.result(5).error_message.startswith("JobInputError: input() was called")
        assert ip.kernel.raw_input("cell? ") == "typed"  # a cell's input still works
        ip.run_line_magic("unload_ext", "mashroom_jobs")
        assert builtins.input is original_input
    finally:
        del ip.kernel


# --- 6. errors as bounded as output ---------------------------------------------------------


def test_a_huge_error_message_is_cut_with_a_marker(service: BackgroundJobService) -> None:
    def huge() -> None:
        raise ValueError("m" * 5_000_000)

    run = service.schedule_job("huge", YEARLY, huge).invoke_now().result(5)
    assert run.error_message is not None
    assert len(run.error_message) < MAX_TEXT_CHARS + 100
    assert run.error_message.endswith("[truncated: 4,900,000 more characters]")


def test_a_huge_traceback_keeps_its_frames_and_says_what_was_cut() -> None:
    def deep(n: int) -> None:
        if n == 0:
            raise ValueError("m" * 5_000_000)
        deep(n - 1)

    try:
        deep(3)
    except ValueError as exc:
        text = bounded_traceback(exc)
        assert bounded_traceback() == text  # the exception being handled, by default
        assert error_text(exc).endswith("[truncated: 4,900,000 more characters]")
    assert len(text) < 10_000
    assert text.startswith("Traceback (most recent call last):")
    assert text.count("in deep") == 4
    assert "ValueError: mmm" in text and "[4,998,013 more characters]" in text
    assert log_text("x" * 10_000) == "x" * 500 + "... [9,500 more characters in the run's record]"


def test_a_stored_run_never_holds_megabytes(tmp_path: Any) -> None:
    from datetime import datetime, timezone

    from mashroom_jobs import JobInvocation, Outcome
    from mashroom_jobs.store import SQLiteStore

    store = SQLiteStore(tmp_path / "s.sqlite", batch_delay=0)
    big = "t" * 5_000_000
    store.record("j", JobInvocation(
        timestamp=datetime(2026, 1, 1, tzinfo=timezone.utc), scheduled_for=None,
        trigger="manual", execution_time_ms=1.0, outcome=Outcome.FAILED, error_message=big,
        traceback=big, output=big, job="j"))
    assert store.flush(10)
    [run] = store.history("j")
    assert store.close(5)
    for text in (run.error_message, run.traceback, run.output):
        assert text is not None and len(text) < MAX_TEXT_CHARS + 1_100
        assert text.endswith("more characters]")


def test_a_huge_cron_expression_is_named_by_its_start() -> None:
    with pytest.raises(InvalidCronExpressionError) as info:
        CronSchedule("x" * 1_000_000, "UTC")
    assert len(str(info.value)) < 2_000
    assert "... (1,000,000 characters): expected 5 fields" in str(info.value)
    assert info.value.expression == "x" * 1_000_000  # the error keeps what was given


def test_a_huge_traceback_in_a_runs_record_is_bounded(service: BackgroundJobService) -> None:
    def huge() -> None:
        raise ValueError("m" * 5_000_000)

    run = service.schedule_job("huge", YEARLY, huge).invoke_now().result(5)
    assert run.traceback is not None and len(run.traceback) < MAX_TEXT_CHARS + 1_000


def test_a_failed_runs_log_line_is_short(
    service: BackgroundJobService, caplog: pytest.LogCaptureFixture,
) -> None:
    def huge() -> None:
        raise ValueError("m" * 5_000_000)

    with caplog.at_level(logging.WARNING, logger="mashroom_jobs"):
        service.schedule_job("huge", YEARLY, huge).invoke_now().result(5)
    [line] = [r.getMessage() for r in caplog.records if "failed" in r.getMessage()]
    assert len(line) < 1_000
