"""%load_ext / %unload_ext / %reload_ext mashroom_jobs in a real IPython InteractiveShell."""

from __future__ import annotations

import sys
import threading
import time
import types
from typing import Any

import pytest

import mashroom_jobs
from mashroom_jobs import BackgroundJobService, MashroomJobsError
from mashroom_jobs.service import _live_services


def _ours() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("mashroom-jobs")]


def _services_of(shell: Any) -> list[BackgroundJobService]:
    return [s for s in list(_live_services) if s.shell is shell]


def _wait_for(predicate: Any, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.01)
    return predicate()


def _bootstrapped() -> list[str]:
    import mashroom_jobs_example

    return mashroom_jobs_example.BOOTSTRAPPED


def test_load_ext_creates_the_kernel_service_with_the_shell_as_plugin_context_shell(
    ip: Any, installed_plugins: Any
) -> None:
    ip.run_line_magic("load_ext", "mashroom_jobs")
    service = mashroom_jobs.get_service()
    assert service.shell is ip and service.context.shell is ip
    assert service.context.services.background_jobs is service
    assert service in ip.configurables
    assert {"jobs", "unschedule"} <= set(ip.magics_manager.magics["line"])
    assert "schedule" in ip.magics_manager.magics["cell"]
    plugins = {p.name: p.state for p in service.plugins}
    assert plugins["Example heartbeat"] == "loaded"
    assert plugins["Broken bootstrap"] == "failed"  # and the load did not fail


def test_loading_twice_is_harmless(ip: Any, installed_plugins: Any) -> None:
    before = len(_bootstrapped())
    ip.run_line_magic("load_ext", "mashroom_jobs")
    service = mashroom_jobs.get_service()
    ip.run_line_magic("load_ext", "mashroom_jobs")
    mashroom_jobs.load_ipython_extension(ip)  # even around IPython's own guard
    assert mashroom_jobs.get_service() is service
    assert _services_of(ip) == [service]
    assert [c for c in ip.configurables if isinstance(c, BackgroundJobService)] == [service]
    assert len(_bootstrapped()) == before + 1
    assert [j.name for j in service.jobs] == ["Example heartbeat"]


def test_kernel_config_reaches_the_service_and_config_magic_changes_it(
    ip: Any, installed_plugins: Any
) -> None:
    # what c.BackgroundJobService... in ipython_kernel_config.py does
    ip.config.BackgroundJobService.plugin_config = {
        "Example heartbeat": {"cron_schedule": "0 9 * * *"}
    }
    ip.config.BackgroundJobService.history_size = 7
    ip.run_line_magic("load_ext", "mashroom_jobs")
    service = mashroom_jobs.get_service()
    assert service.history_size == 7
    assert service.get_job("Example heartbeat").cron_schedule == "0 9 * * *"

    ip.run_line_magic("config", "BackgroundJobService.history_size = 3")
    ip.run_line_magic(
        "config",
        "BackgroundJobService.plugin_config = "
        "{'Example heartbeat': {'cron_schedule': '30 17 * * 1-5'}}",
    )
    assert service.history_size == 3
    assert service.get_job("Example heartbeat").cron_schedule == "30 17 * * 1-5"
    assert len(service.jobs) == 1


def test_unload_unschedules_every_job_removes_the_magics_and_leaves_no_thread_of_ours(
    ip: Any, installed_plugins: Any
) -> None:
    baseline = set(threading.enumerate())
    ip.run_line_magic("load_ext", "mashroom_jobs")
    service = mashroom_jobs.get_service()
    ip.user_ns["ran"] = threading.Event()
    ip.run_cell_magic("schedule", '"Cell job" "*/5 * * * *" --now', "ran.set()")
    assert ip.user_ns["ran"].wait(5)
    service.get_job("Example heartbeat").invoke_now().result(5)
    jobs = service.jobs
    assert len(jobs) == 2 and _ours()  # the timer and a worker run

    ip.run_line_magic("unload_ext", "mashroom_jobs")

    assert service.is_shut_down and service.jobs == () and service.plugins == ()
    assert not any(job.active for job in jobs)
    assert service not in ip.configurables
    assert "jobs" not in ip.magics_manager.magics["line"]
    assert "schedule" not in ip.magics_manager.magics["cell"]
    assert _wait_for(lambda: not _ours()), _ours()
    assert set(threading.enumerate()) - baseline == set()
    assert threading.active_count() == len(baseline)
    with pytest.raises(MashroomJobsError, match="not loaded: run %load_ext mashroom_jobs"):
        mashroom_jobs.get_service()


def test_reload_ends_with_one_service_plugins_bootstrapped_once_and_no_duplicate_timers(
    ip: Any, installed_plugins: Any
) -> None:
    ip.run_line_magic("load_ext", "mashroom_jobs")
    old = mashroom_jobs.get_service()
    before = len(_bootstrapped())

    ip.run_line_magic("reload_ext", "mashroom_jobs")

    service = mashroom_jobs.get_service()
    assert service is not old and old.is_shut_down
    assert _services_of(ip) == [service]
    assert [c for c in ip.configurables if isinstance(c, BackgroundJobService)] == [service]
    assert _bootstrapped()[before:] == ["Example heartbeat"]
    assert [j.name for j in service.jobs] == ["Example heartbeat"]
    assert service.timer_entries() == 1
    assert len([t for t in _ours() if t.name == "mashroom-jobs-timer"]) == 1
    # the magics act on the new service
    ip.run_line_magic("unschedule", "Example heartbeat")
    assert service.jobs == ()


def test_unload_closes_the_services_panels_when_the_panel_module_was_imported(
    ip: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    closed: list[Any] = []
    panel_module = types.ModuleType("mashroom_jobs.panel")
    panel_module.close_panels = closed.append  # type: ignore[attr-defined]
    ip.run_line_magic("load_ext", "mashroom_jobs")
    service = mashroom_jobs.get_service()
    monkeypatch.setitem(sys.modules, "mashroom_jobs.panel", panel_module)
    ip.run_line_magic("unload_ext", "mashroom_jobs")
    assert closed == [service]


def test_unload_does_not_import_the_panel_module(ip: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delitem(sys.modules, "mashroom_jobs.panel", raising=False)
    ip.run_line_magic("load_ext", "mashroom_jobs")
    ip.run_line_magic("unload_ext", "mashroom_jobs")
    assert "mashroom_jobs.panel" not in sys.modules


def test_get_service_without_the_extension_says_how_to_load_it() -> None:
    with pytest.raises(MashroomJobsError, match="%load_ext mashroom_jobs"):
        mashroom_jobs.get_service()
