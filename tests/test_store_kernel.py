"""The job store in a kernel: the extension's default store and its fallback, the kernel id
in the origin, ``%jobs --plugins`` and the panel."""

from __future__ import annotations

import os
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

import mashroom_jobs
from mashroom_jobs import BackgroundJobService
from mashroom_jobs._extension import kernel_id
from mashroom_jobs.store import SQLiteStore
from mashroom_jobs.testing import ManualClock, wait_for

T0 = datetime(2026, 1, 1, tzinfo=timezone.utc)


def _default_store() -> str:
    return os.path.join(os.environ["JUPYTER_DATA_DIR"], "mashroom-jobs", "store.sqlite")


def test_the_extension_keeps_runs_in_the_store_in_the_jupyter_data_folder(ip: Any) -> None:
    ip.run_line_magic("load_ext", "mashroom_jobs")
    service = mashroom_jobs.get_service()
    assert service.store_path == _default_store()
    job = service.schedule_job("job", "@daily", lambda: print("hello"))
    job.invoke_now().result(5)
    ip.run_line_magic("reload_ext", "mashroom_jobs")  # a kernel restart, as far as runs go
    [run] = mashroom_jobs.get_service().history("job")
    assert run.output == "hello\n" and run.origin == service.origin


@pytest.mark.parametrize("value", [None, "custom"], ids=["none", "a-path"])
def test_a_store_in_the_kernel_config_wins_even_none(ip: Any, tmp_path: Path,
                                                    value: str | None) -> None:
    path = None if value is None else str(tmp_path / "custom.sqlite")
    ip.config.BackgroundJobService.store = path
    ip.run_line_magic("load_ext", "mashroom_jobs")
    assert mashroom_jobs.get_service().store_path == path
    assert not os.path.exists(_default_store())


def test_config_magic_then_reload_ext_moves_the_store(ip: Any, tmp_path: Path) -> None:
    ip.run_line_magic("load_ext", "mashroom_jobs")
    path = tmp_path / "moved.sqlite"
    ip.run_line_magic("config", f"BackgroundJobService.store = {str(path)!r}")
    assert mashroom_jobs.get_service().store_path == _default_store()  # read at start
    ip.run_line_magic("reload_ext", "mashroom_jobs")
    assert mashroom_jobs.get_service().store_path == str(path)


def test_a_bad_store_is_one_warning_and_the_kernel_starts_with_runs_in_memory(
    ip: Any, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "prices.csv"
    path.write_text("name,price\n" * 500)
    ip.config.BackgroundJobService.store = str(path)
    ip.run_line_magic("load_ext", "mashroom_jobs")
    service = mashroom_jobs.get_service()
    assert service.store_path is None and not service.is_shut_down
    # the extension's records go to the kernel's log (here: the process's stderr), never
    # through the root logger (plugins may log their own failures: only the store's is ours)
    [line] = [x for x in capfd.readouterr().err.splitlines() if "job store" in x]
    assert line == (
        f"[WARNING mashroom_jobs] mashroom-jobs: cannot use the job store {path}: the file "
        f"is not a SQLite database; runs are kept in this kernel's memory only")
    job = service.schedule_job("job", "@daily", lambda: None)
    assert job.invoke_now().result(5).success  # nothing is raised into a cell later


def test_the_kernel_id_comes_from_the_connection_file(monkeypatch: pytest.MonkeyPatch) -> None:
    from types import SimpleNamespace

    import ipykernel.connect

    shell = SimpleNamespace(kernel=object())
    monkeypatch.setattr(ipykernel.connect, "get_connection_file",
                        lambda: "/run/user/1000/jupyter/kernel-3f2a9c1e-77.json")
    assert kernel_id(shell) == "3f2a9c1e-77"
    monkeypatch.setattr(ipykernel.connect, "get_connection_file", lambda: "/tmp/other.json")
    assert kernel_id(shell) is None
    assert kernel_id(SimpleNamespace()) is None  # terminal IPython: no kernel


def test_jobs_plugins_says_where_the_store_is(ip: Any,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    ip.run_line_magic("load_ext", "mashroom_jobs")
    capsys.readouterr()
    ip.run_line_magic("jobs", "--plugins")
    assert capsys.readouterr().out.splitlines()[-1] == f"Store: {_default_store()}"


def test_jobs_plugins_says_when_runs_are_kept_in_memory(
    ip: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    ip.config.BackgroundJobService.store = None
    ip.run_line_magic("load_ext", "mashroom_jobs")
    capsys.readouterr()
    ip.run_line_magic("jobs", "--plugins")
    assert capsys.readouterr().out.splitlines()[-1] == \
        "Store: in memory (runs are kept in this kernel only)"


def test_the_panel_header_names_the_store_and_the_detail_marks_other_processes_runs(
    tmp_path: Path,
) -> None:
    from ipywidgets import Widget

    from mashroom_jobs.panel import JobsPanel

    path = str(tmp_path / "store.sqlite")
    other = SQLiteStore(path, origin="vm pid 77 kernel 3f2a9c1e-1111")
    other.record("report", mashroom_jobs.JobInvocation(
        timestamp=T0 - timedelta(minutes=5), scheduled_for=T0 - timedelta(minutes=5),
        trigger="schedule", execution_time_ms=2.0, outcome=mashroom_jobs.Outcome.OK))
    other.close()
    service = BackgroundJobService(clock=ManualClock(T0), timezone="UTC", store=path,
                                   kernel_id="aaaa")
    panel = JobsPanel(service, auto_flush=False, callables={})
    try:
        assert f"Store: <code>{path}</code>" in panel.header.notes.value
        job = service.schedule_job("report", "@daily", lambda: None)
        job.invoke_now().result(5)
        panel.flush()
        panel.button("Show details of report").click()
        detail = panel.rows[0].detail.value
        assert "<th align=left>ran in</th>" in detail
        assert "<td>this kernel</td>" in detail and "<td>kernel 3f2a9c1e…</td>" in detail
        assert "Runs from the job store" in detail
    finally:
        panel.close()
        service.shutdown()
        Widget.close_all()


def test_after_a_restart_the_panel_shows_the_stored_runs(tmp_path: Path) -> None:
    from ipywidgets import Widget

    from mashroom_jobs.panel import JobsPanel

    path = str(tmp_path / "store.sqlite")
    first = BackgroundJobService(clock=ManualClock(T0), timezone="UTC", store=path)
    first.schedule_job("report", "@daily", lambda: print("written")).invoke_now().result(5)
    first.shutdown()
    second = BackgroundJobService(clock=ManualClock(T0), timezone="UTC", store=path)
    panel = JobsPanel(second, auto_flush=False, callables={})
    try:
        second.schedule_job("report", "@daily", lambda: None)
        panel.flush()
        panel.button("Show details of report").click()
        assert wait_for(lambda: "written" in panel.rows[0].detail.value)
    finally:
        panel.close()
        second.shutdown()
        Widget.close_all()
