"""Regression tests of defects a new user found (issue 16): each failed before its fix."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from typing import Any

import pytest
from traitlets import TraitError

from mashroom_jobs import BackgroundJobService
from mashroom_jobs.core import capture
from mashroom_jobs.testing import ManualClock, wait_for


def step(clock: ManualClock, service: BackgroundJobService, seconds: float) -> None:
    clock.advance(seconds)
    assert service.wait_until_idle(timeout=5)


def square_of_seven() -> None:
    """A module-level function: it pickles, so a process pool can run it."""
    print(7 * 7)


# --- 2. a job writing bytes to stdout wedged itself ------------------------------------------


def test_a_job_writing_bytes_to_stdout_fails_that_run_and_keeps_its_schedule(
    clock: ManualClock, service: BackgroundJobService
) -> None:
    def writes_bytes() -> None:
        sys.stdout.write(b"raw\n")  # type: ignore[arg-type]

    job = service.schedule_job("bytes", "* * * * *", writes_bytes)
    run = job.invoke_now().result(timeout=5)
    assert not run.success
    assert run.error_message == "TypeError: write() argument must be str, not bytes"
    assert not job.running and service.wait_until_idle(5)
    step(clock, service, 60)  # with overlap="skip", the next fire still runs
    assert job.run_count == 2 and job.skip_count == 0


def test_an_error_while_recording_a_run_fails_the_run_instead_of_wedging_the_job(
    service: BackgroundJobService, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken_getvalue(self: capture.OutputBuffer) -> str:
        raise RuntimeError("buffer exploded")

    monkeypatch.setattr(capture.OutputBuffer, "getvalue", broken_getvalue)
    job = service.schedule_job("j", "@daily", lambda: print("hi"))
    run = job.invoke_now().result(timeout=5)
    assert not run.success
    assert run.error_message == "could not record the run: RuntimeError: buffer exploded"
    assert not job.running and job.run_count == 1 and service.wait_until_idle(5)


# --- 3. a process pool was accepted and never ran anything ------------------------------------


def test_a_process_pool_runs_a_picklable_callback_in_another_process(
    service: BackgroundJobService,
) -> None:
    with ProcessPoolExecutor(max_workers=1) as pool:
        job = service.schedule_job("remote", "@daily", square_of_seven, executor=pool)
        run = job.invoke_now().result(timeout=60)
    assert run.success, run.error_message
    assert run.output == "49\n"  # printed in the worker process, captured there
    assert job.remote and job.executor is None


def test_an_unpicklable_callback_on_a_process_pool_is_a_failed_run_not_a_hang(
    service: BackgroundJobService,
) -> None:
    lock = threading.Lock()
    with ProcessPoolExecutor(max_workers=1) as pool:
        job = service.schedule_job("unpicklable", "@daily", lambda: lock.locked(),
                                   executor=pool)
        run = job.invoke_now().result(timeout=60)
    assert not run.success
    assert run.error_message is not None
    assert run.error_message.startswith("could not be sent to the executor: ")
    assert "pickle" in run.error_message.lower()
    assert job.active and job.next_invocation is not None  # it keeps its schedule


def test_an_executor_that_refuses_the_run_records_a_failed_run(
    service: BackgroundJobService,
) -> None:
    from concurrent.futures import ThreadPoolExecutor

    pool = ThreadPoolExecutor(max_workers=1)
    pool.shutdown()
    job = service.schedule_job("refused", "@daily", lambda: None, executor=pool)
    run = job.invoke_now().result(timeout=5)
    assert not run.success and run.error_message is not None
    assert run.error_message.startswith("could not start: RuntimeError")


# --- 4. an invalid %config value stuck ---------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("timezone", "Mars/X", "Invalid time zone 'Mars/X'"),
        ("max_workers", 0, "max_workers must be at least 1, got 0"),
        ("history_size", -1, "history_size must be at least 1, got -1"),
        ("stop_grace", -1.0, "stop_grace must be a number of seconds >= 0"),
        ("plugin_config", {"x": 1}, "plugin_config['x'] must be a dict"),
    ],
)
def test_an_invalid_config_value_is_refused_and_the_old_one_stays(
    service: BackgroundJobService, name: str, value: Any, message: str
) -> None:
    before = getattr(service, name)
    with pytest.raises(TraitError, match=message.replace("[", r"\[").replace("(", r"\(")):
        setattr(service, name, value)
    assert getattr(service, name) == before
    with pytest.raises(TraitError), service.hold_trait_notifications():
        setattr(service, name, value)  # as %config does: checked at the end, rolled back
    assert getattr(service, name) == before


def test_config_magic_with_an_unknown_zone_keeps_the_old_zone(ip: Any) -> None:
    ip.run_line_magic("load_ext", "mashroom_jobs")
    import mashroom_jobs

    service = mashroom_jobs.get_service()
    ip.run_line_magic("config", 'BackgroundJobService.timezone = "Asia/Tokyo"')
    ip.run_line_magic("config", 'BackgroundJobService.timezone = "Mars/X"')
    assert service.timezone == "Asia/Tokyo"
    job = service.schedule_job("still-works", "0 9 * * *", lambda: None)
    assert job.timezone == "Asia/Tokyo"


# --- 5, 6. callbacks -------------------------------------------------------------------------


def test_only_a_required_positional_parameter_receives_the_context(
    service: BackgroundJobService,
) -> None:
    seen: list[object] = []
    jobs = [service.schedule_job(f"loop-{i}", "@daily", lambda i=i: seen.append(i))
            for i in range(3)]
    for job in jobs:
        assert job.invoke_now().result(timeout=5).success
    assert seen == [0, 1, 2]
    ready = threading.Event()
    ready.set()
    run = service.schedule_job("wait", "@daily", ready.wait).invoke_now().result(timeout=5)
    assert run.success, run.error_message  # Event.wait(timeout=None): no context passed


def test_generator_functions_are_refused_as_callbacks(service: BackgroundJobService) -> None:
    async def agen() -> Any:
        yield 1

    def gen() -> Any:
        yield 1

    with pytest.raises(TypeError, match="is an async generator function"):
        service.schedule_job("agen", "@daily", agen)
    with pytest.raises(TypeError, match="is a generator function"):
        service.schedule_job("gen", "@daily", gen)
    assert service.jobs == ()


# --- 7. shutdown's timeout, and a job that shuts the service down -----------------------------


def test_shutdown_with_a_stuck_job_spends_its_timeout_once_and_names_the_job(
    clock: ManualClock,
) -> None:
    service = BackgroundJobService(clock=clock, timezone="UTC")
    stuck = threading.Event()
    job = service.schedule_job("stuck", "0 * * * *", lambda: stuck.wait(10))
    job.invoke_now()
    assert wait_for(lambda: job.running)
    started = time.monotonic()
    left = service.shutdown(wait=True, timeout=1.0)
    elapsed = time.monotonic() - started
    stuck.set()
    assert left == (job,)
    assert 0.9 <= elapsed < 1.5, elapsed
    assert all(t.daemon for t in service.threads())  # the abandoned run holds no exit


def test_a_job_that_shuts_its_service_down_does_not_wait_for_itself() -> None:
    service = BackgroundJobService(timezone="UTC")
    took: list[float] = []

    def stop_everything() -> None:
        started = time.monotonic()
        service.shutdown(wait=True, timeout=5.0)
        took.append(time.monotonic() - started)

    run = service.schedule_job("stopper", None, stop_everything)
    assert wait_for(lambda: took, timeout=10)
    assert took[0] < 1.0
    assert service.is_shut_down
    del run


# --- 8, 9. output and failures in a plain script -----------------------------------------------


def _script(body: str) -> subprocess.CompletedProcess[str]:
    code = textwrap.dedent(body)
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60)


def test_with_capture_output_off_a_jobs_output_reaches_the_processs_stdout() -> None:
    result = _script("""
        from mashroom_jobs import BackgroundJobService
        service = BackgroundJobService(capture_output=False)
        job = service.schedule_job("talker", "@daily", lambda: print("hello from the job"))
        run = job.invoke_now().result(timeout=5)
        print("recorded output:", repr(run.output))
        service.shutdown()
    """)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["hello from the job", "recorded output: ''"]


def test_a_failing_job_is_visible_in_a_plain_script_without_logging_setup() -> None:
    result = _script("""
        from mashroom_jobs import BackgroundJobService
        service = BackgroundJobService()
        service.schedule_job("divide", "@daily", lambda: 1 / 0).invoke_now().result(timeout=5)
        service.shutdown()
    """)
    assert result.returncode == 0
    assert "Background job 'divide' failed: ZeroDivisionError: division by zero" in result.stderr


def test_the_service_logs_through_the_mashroom_jobs_logger(
    service: BackgroundJobService,
) -> None:
    assert service.log.name == "mashroom_jobs"


# --- 11. after shutdown ----------------------------------------------------------------------


def test_a_panel_stops_flushing_when_its_service_shuts_down_and_a_new_one_never_starts() -> None:
    from mashroom_jobs.panel import JobsPanel

    service = BackgroundJobService(timezone="UTC")
    panel = JobsPanel(service, flush_interval=0.1, callables={})
    try:
        assert panel.flushing
        service.shutdown()
        assert wait_for(lambda: not panel.flushing)
        assert "shut down" in panel.header.notes.value
        late = JobsPanel(service, callables={})
        assert not late.flushing and "shut down" in late.header.notes.value
        late.close()
    finally:
        panel.close()


# --- 12. names -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("a\nb", r"contains the non-printable character '\\n' \(U\+000A"),
        ("\x00", r"contains the non-printable character '\\x00' \(U\+0000"),
        ("x" * 1_000_000, "name is 1,000,000 characters long; the limit is 200"),
    ],
    ids=["newline", "nul", "one-megabyte"],
)
def test_names_are_one_line_of_printable_text_of_at_most_200_characters(
    service: BackgroundJobService, name: str, message: str
) -> None:
    kept = service.schedule_job("kept", "@daily", lambda: None)
    with pytest.raises(ValueError, match=message):
        service.schedule_job(name, "@daily", lambda: None)
    assert service.jobs == (kept,)
    assert len(repr(service)) < 1000
