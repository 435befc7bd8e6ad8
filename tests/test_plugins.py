"""Background-job plugins: discovery through importlib.metadata, loading, isolation, config."""

from __future__ import annotations

import logging
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from importlib.metadata import EntryPoint
from pathlib import Path
from typing import Any

import pytest
from traitlets import TraitError

from mashroom_jobs import BackgroundJobService, ServiceShutdownError, background_job_plugin
from mashroom_jobs.plugins import (
    ENTRY_POINT_GROUP,
    PluginLoader,
    discover,
    format_plugins_table,
    load_plugins,
)
from mashroom_jobs.testing import ManualClock

BROKEN = ("Broken bootstrap", "Broken callback", "Broken import", "Broken schedule")


@pytest.fixture
def loader(service: BackgroundJobService) -> Iterator[PluginLoader]:
    plugin_loader = PluginLoader(service)
    yield plugin_loader
    plugin_loader.close()


def _by_name(records: Any) -> dict[str, Any]:
    return {record.name: record for record in records}


def _example_module() -> Any:
    import mashroom_jobs_example

    return mashroom_jobs_example


# --- real distributions, discovered through importlib.metadata ---------------------------


def test_installed_plugins_are_discovered_through_importlib_metadata(
    installed_plugins: Any,
) -> None:
    found = {ep.name: ep for ep in discover()}
    assert {"Example heartbeat", *BROKEN} <= set(found)
    example = found["Example heartbeat"]
    assert example.group == ENTRY_POINT_GROUP
    assert example.value == "mashroom_jobs_example:bootstrap"
    assert example.dist is not None and example.dist.metadata["Name"] == "mashroom-jobs-example"
    assert Path(str(example.dist.locate_file(""))).resolve() == installed_plugins.example.resolve()


def test_importing_the_plugin_module_discovers_and_imports_no_plugin() -> None:
    code = (
        "import sys, mashroom_jobs, mashroom_jobs.plugins;"
        "prefixes = ('mashroom_jobs_', 'IPython', 'ipywidgets');"
        "bad = [m for m in sys.modules if m.startswith(prefixes)];"
        "assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


def test_example_plugin_loads_with_its_default_config_and_its_job_runs_on_schedule(
    installed_plugins: Any, service: BackgroundJobService, loader: PluginLoader, clock: ManualClock
) -> None:
    example = _example_module()
    before = len(example.BOOTSTRAPPED)
    records = _by_name(loader.load())
    record = records["Example heartbeat"]
    assert record.state == "loaded" and record.error is None
    assert dict(record.config) == {
        "cron_schedule": "*/5 * * * *", "invoke_immediately": False, "message": "still alive"
    }
    assert record.distribution == "mashroom-jobs-example 0.1.0"
    assert example.BOOTSTRAPPED[before:] == ["Example heartbeat"]
    job = service.get_job("Example heartbeat")
    assert job is record.job and job.cron_schedule == "*/5 * * * *"
    assert service.plugins == tuple(records.values())

    clock.advance(minutes=5)
    assert service.wait_until_idle(5)
    assert job.run_count == 1 and job.last_invocation.success
    assert "Example heartbeat: still alive" in job.last_invocation.output


def test_each_broken_plugin_fails_alone_with_its_error_logged_under_its_name(
    installed_plugins: Any, service: BackgroundJobService, loader: PluginLoader,
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.ERROR, logger="mashroom_jobs.plugins"):
        records = _by_name(loader.load())
    assert records["Example heartbeat"].state == "loaded"
    expected = {
        "Broken import": "could not import mashroom_jobs_broken.unimportable:bootstrap: "
                         "ModuleNotFoundError: No module named 'mashroom_jobs_missing_dependency'",
        "Broken bootstrap": "bootstrap raised RuntimeError: no database configured",
        "Broken callback": "bootstrap returned int 42, not a job callback",
        "Broken schedule": "minute 61 is out of range 0-59",
    }
    for name, message in expected.items():
        assert records[name].state == "failed"
        assert message in records[name].error
        assert records[name].job is None and service.get_job(name) is None
        assert any(name in r.getMessage() and message in r.getMessage() for r in caplog.records)
    assert records["Broken bootstrap"].traceback.startswith("Traceback")
    assert [job.name for job in service.jobs] == ["Example heartbeat"]


def test_plugin_config_overrides_the_default_config_and_passes_its_own_keys_through(
    installed_plugins: Any, service: BackgroundJobService, loader: PluginLoader, clock: ManualClock
) -> None:
    service.plugin_config = {
        "Example heartbeat": {"cron_schedule": "0 * * * *", "message": "hello", "extra": [1]}
    }
    record = _by_name(loader.load())["Example heartbeat"]
    assert dict(record.config) == {
        "cron_schedule": "0 * * * *", "invoke_immediately": False, "message": "hello",
        "extra": [1],
    }
    job = record.job
    assert job.cron_schedule == "0 * * * *"
    clock.advance(minutes=60)
    assert service.wait_until_idle(5)
    assert "Example heartbeat: hello" in job.last_invocation.output


def test_a_plugin_without_cron_schedule_runs_once_at_load_and_never_again(
    installed_plugins: Any, service: BackgroundJobService, loader: PluginLoader, clock: ManualClock
) -> None:
    service.plugin_config = {"Example heartbeat": {"cron_schedule": None}}
    job = _by_name(loader.load())["Example heartbeat"].job
    assert service.wait_until_idle(5)
    assert job.run_count == 1 and job.last_invocation.trigger == "immediate"
    assert job.next_invocation is None and service.timer_entries() == 0
    clock.advance(days=1)
    assert service.wait_until_idle(5)
    assert job.run_count == 1


def test_invoke_immediately_runs_once_at_load_and_then_on_schedule(
    installed_plugins: Any, service: BackgroundJobService, loader: PluginLoader, clock: ManualClock
) -> None:
    service.plugin_config = {"Example heartbeat": {"invoke_immediately": True}}
    job = _by_name(loader.load())["Example heartbeat"].job
    assert service.wait_until_idle(5)
    assert [i.trigger for i in job.history] == ["immediate"]
    clock.advance(minutes=5)
    assert service.wait_until_idle(5)
    assert [i.trigger for i in job.history] == ["immediate", "schedule"]


def test_a_plugins_config_sets_its_jobs_timeout_retries_overlap_and_exclusive(
    installed_plugins: Any, service: BackgroundJobService, loader: PluginLoader
) -> None:
    service.plugin_config = {"Example heartbeat": {
        "timeout": 30, "retries": 2, "retry_delay": 5, "overlap": "allow", "exclusive": False}}
    job = _by_name(loader.load())["Example heartbeat"].job
    assert (job.timeout, job.retries, job.retry_delay) == (30.0, 2, 5.0)
    assert job.overlap == "allow" and job.exclusive is False


def test_a_plugins_job_is_exclusive_unless_its_config_says_otherwise(
    installed_plugins: Any, service: BackgroundJobService, loader: PluginLoader
) -> None:
    assert _by_name(loader.load())["Example heartbeat"].job.exclusive is True


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"timeout": -5}, "invalid config: timeout must be at least 0.001 seconds, got -5"),
        ({"retries": "3"}, "invalid config: retries must be a whole number >= 0, got '3'"),
        ({"exclusive": "no"}, "invalid config: exclusive must be True or False, got 'no'"),
        ({"overlap": "queue"}, "invalid config: overlap must be one of ('skip', 'allow')"),
    ],
    ids=["timeout", "retries", "exclusive", "overlap"],
)
def test_a_bad_value_for_a_reserved_key_fails_the_plugin_naming_the_key(
    installed_plugins: Any, service: BackgroundJobService, loader: PluginLoader,
    config: dict[str, Any], message: str,
) -> None:
    service.plugin_config = {"Example heartbeat": config}
    record = _by_name(loader.load())["Example heartbeat"]
    assert record.state == "failed" and record.error is not None
    assert record.error.startswith(message)
    assert service.get_job("Example heartbeat") is None


def test_a_disabled_plugin_is_neither_bootstrapped_nor_scheduled(
    installed_plugins: Any, service: BackgroundJobService, loader: PluginLoader
) -> None:
    example = _example_module()
    before = len(example.BOOTSTRAPPED)
    service.disabled_plugins = ["Example heartbeat"]
    record = _by_name(loader.load())["Example heartbeat"]
    assert record.state == "disabled" and record.job is None
    assert len(example.BOOTSTRAPPED) == before
    assert service.get_job("Example heartbeat") is None


def test_changing_the_config_after_load_reloads_only_the_plugins_it_concerns(
    installed_plugins: Any, service: BackgroundJobService, loader: PluginLoader
) -> None:
    example = _example_module()
    loader.load()
    before = len(example.BOOTSTRAPPED)
    failed_before = _by_name(service.plugins)["Broken bootstrap"]

    service.plugin_config = {"Example heartbeat": {"cron_schedule": "0 9 * * *"}}
    records = _by_name(service.plugins)
    assert records["Example heartbeat"].job.cron_schedule == "0 9 * * *"
    assert records["Broken bootstrap"] is failed_before  # untouched
    assert len(example.BOOTSTRAPPED) == before + 1
    assert [job.name for job in service.jobs] == ["Example heartbeat"]
    assert service.timer_entries() == 1  # the replaced job's timer entry is gone

    service.disabled_plugins = ["Example heartbeat"]
    assert _by_name(service.plugins)["Example heartbeat"].state == "disabled"
    assert service.jobs == ()
    service.disabled_plugins = []
    assert _by_name(service.plugins)["Example heartbeat"].state == "loaded"
    assert len(service.jobs) == 1


def test_unloading_plugins_unschedules_their_jobs_and_loading_again_bootstraps_once_more(
    installed_plugins: Any, service: BackgroundJobService, loader: PluginLoader
) -> None:
    example = _example_module()
    before = len(example.BOOTSTRAPPED)
    loader.load()
    user_job = service.schedule_job("mine", "* * * * *", lambda: None)
    old = service.get_job("Example heartbeat")
    loader.unload()
    assert service.plugins == () and not old.active
    assert service.jobs == (user_job,)  # the user's own job stays
    loader.load()
    loader.load()  # loading again replaces, it does not add
    assert len(example.BOOTSTRAPPED) == before + 3
    assert [job.name for job in service.jobs] == ["mine", "Example heartbeat"]
    assert service.timer_entries() == 2


def test_plugins_table_shows_state_schedule_and_errors(
    installed_plugins: Any, service: BackgroundJobService, loader: PluginLoader
) -> None:
    loader.load()
    table = format_plugins_table(service.plugins)
    assert "Example heartbeat  loaded    */5 * * * *" in table
    assert "Every 5 minutes" in table
    assert "error: bootstrap raised RuntimeError: no database configured" in table


def test_plugin_config_must_map_names_to_dicts(service: BackgroundJobService) -> None:
    with pytest.raises(TraitError, match=r"plugin_config\['x'\] must be a dict"):
        service.plugin_config = {"x": "*/5 * * * *"}
    assert service.plugin_config == {}  # the bad value did not stick


def test_loading_plugins_on_a_shut_down_service_is_an_error(
    installed_plugins: Any, service: BackgroundJobService, loader: PluginLoader
) -> None:
    example = _example_module()
    before = len(example.BOOTSTRAPPED)
    service.shutdown()
    with pytest.raises(ServiceShutdownError, match="cannot load plugins"):
        loader.load()
    assert len(example.BOOTSTRAPPED) == before  # nothing was bootstrapped


# --- the pure loader, with hand-made entry points ----------------------------------------

FAKE_PLUGINS = '''
import sys
from mashroom_jobs import background_job_plugin

SEEN = []
NOT_CALLABLE = {"a": 1}

@background_job_plugin(default_config={"cron_schedule": "*/10 * * * *", "k": 1})
async def async_bootstrap(name, config, holder):
    context = holder.get_plugin_context()
    async def job(ctx):
        SEEN.append((name, ctx is context, ctx.services.background_jobs))
    return job

@background_job_plugin
def bare(name, config, holder):
    return lambda: None

def exits(name, config, holder):
    sys.exit(3)

def two_arguments(name, config, holder):
    return lambda a, b: None

@background_job_plugin(default_config={"timezone": "Mars/Base", "cron_schedule": "* * * * *"})
def bad_zone(name, config, holder):
    return lambda: None

@background_job_plugin(default_config={"invoke_immediately": "yes"})
def bad_flag(name, config, holder):
    return lambda: None

@background_job_plugin(default_config={"cron_schedule": "0 12 * * *", "timezone": "Asia/Tokyo"})
def mutating(name, config, holder):
    config["cron_schedule"] = "changed"
    return lambda: None
'''


@pytest.fixture
def fake_plugins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    (tmp_path / "mj_fake_plugins.py").write_text(textwrap.dedent(FAKE_PLUGINS))
    monkeypatch.syspath_prepend(str(tmp_path))
    yield "mj_fake_plugins"
    sys.modules.pop("mj_fake_plugins", None)


def _ep(name: str, value: str) -> EntryPoint:
    return EntryPoint(name=name, value=value, group=ENTRY_POINT_GROUP)


def test_an_async_bootstrap_and_an_async_job_get_the_service_context(
    fake_plugins: str, service: BackgroundJobService, clock: ManualClock
) -> None:
    (record,) = load_plugins(service, [_ep("async", f"{fake_plugins}:async_bootstrap")])
    assert record.state == "loaded" and record.job.cron_schedule == "*/10 * * * *"
    clock.advance(minutes=10)
    assert service.wait_until_idle(5)
    seen = sys.modules[fake_plugins].SEEN
    assert seen == [("async", True, service)]


@pytest.mark.parametrize(
    ("target", "error"),
    [
        ("exits", "bootstrap raised SystemExit: 3"),
        ("two_arguments", "could not schedule its job: TypeError: callback"),
        ("bad_zone", "invalid config: Invalid time zone 'Mars/Base'"),
        ("bad_flag", "invalid config: invoke_immediately must be True or False, got 'yes'"),
        ("NOT_CALLABLE", "is a dict, not a bootstrap function"),
        ("missing_name", "could not import mj_fake_plugins:missing_name: AttributeError"),
    ],
    ids=["sys-exit", "two-arguments", "bad-zone", "bad-flag", "not-callable", "no-attribute"],
)
def test_a_bad_plugin_becomes_a_failed_record_and_the_next_one_still_loads(
    fake_plugins: str, service: BackgroundJobService, target: str, error: str
) -> None:
    bad, good = load_plugins(
        service, [_ep("bad", f"{fake_plugins}:{target}"), _ep("good", f"{fake_plugins}:bare")]
    )
    assert bad.state == "failed" and error in bad.error
    assert good.state == "loaded"
    assert [job.name for job in service.jobs] == ["good"]


def test_a_second_plugin_with_the_same_name_fails_and_the_first_keeps_its_job(
    fake_plugins: str, service: BackgroundJobService
) -> None:
    first, second = load_plugins(
        service, [_ep("same", f"{fake_plugins}:bare"), _ep("same", f"{fake_plugins}:exits")]
    )
    assert first.state == "loaded" and service.get_job("same") is first.job
    assert second.state == "failed" and "another plugin is already called 'same'" in second.error


def test_the_bootstrap_gets_a_copy_of_the_config_and_the_timezone_is_honoured(
    fake_plugins: str, service: BackgroundJobService
) -> None:
    (record,) = load_plugins(service, [_ep("m", f"{fake_plugins}:mutating")])
    assert record.config["cron_schedule"] == "0 12 * * *"
    assert record.job.cron_schedule == "0 12 * * *" and record.job.timezone == "Asia/Tokyo"


def test_background_job_plugin_works_with_and_without_arguments_and_rejects_bad_config(
) -> None:
    @background_job_plugin(default_config={"cron_schedule": "@hourly"})
    def with_config(name: str, config: dict[str, Any], holder: Any) -> Any:
        return None

    @background_job_plugin
    def without(name: str, config: dict[str, Any], holder: Any) -> Any:
        return None

    assert dict(with_config.mashroom_jobs_default_config) == {"cron_schedule": "@hourly"}
    assert dict(without.mashroom_jobs_default_config) == {}
    with pytest.raises(TypeError, match="default_config must be a mapping"):
        background_job_plugin(default_config="*/5 * * * *")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="keys must be strings"):
        background_job_plugin(default_config={1: "x"})  # type: ignore[dict-item]


# --- metrics -----------------------------------------------------------------------------


def test_metrics_count_jobs_failures_invocations_and_durations(
    service: BackgroundJobService, clock: ManualClock
) -> None:
    def fails() -> None:
        raise ValueError("boom")

    ok = service.schedule_job("ok", "* * * * *", lambda: None)
    service.schedule_job("bad", "* * * * *", fails)
    for _ in range(3):
        clock.advance(minutes=1)
        assert service.wait_until_idle(5)
    ok.invoke_now().result(5)
    figures = service.metrics()
    assert figures["mashroom_background_jobs_total"] == 2
    assert figures["mashroom_background_jobs_failed"] == 1
    assert figures["mashroom_background_jobs_invocations_total"] == {
        "bad": {"success": 0, "failure": 3}, "ok": {"success": 4, "failure": 0},
    }
    histogram = figures["mashroom_background_jobs_duration_seconds"]
    assert histogram["buckets"][-1] == float("inf")
    assert histogram["jobs"]["ok"]["count"] == 4
    assert histogram["jobs"]["ok"]["bucket_counts"] == [4] * len(histogram["buckets"])
    assert histogram["jobs"]["ok"]["sum"] == 0.0  # the manual clock did not move during runs

    # a counter survives its job being replaced and removed; the gauges follow the jobs
    replacement = service.schedule_job("ok", "0 0 * * *", lambda: None)
    service.unschedule_job("bad")
    replacement.invoke_now().result(5)  # the replacing job is counted too
    figures = service.metrics()
    assert figures["mashroom_background_jobs_total"] == 1
    assert figures["mashroom_background_jobs_failed"] == 0
    assert figures["mashroom_background_jobs_invocations_total"] == {
        "bad": {"success": 0, "failure": 3}, "ok": {"success": 5, "failure": 0},
    }


def test_the_prometheus_collector_exposes_the_same_figures(
    service: BackgroundJobService, clock: ManualClock
) -> None:
    prometheus_client = pytest.importorskip("prometheus_client")
    from mashroom_jobs.metrics import prometheus_collector

    job = service.schedule_job("job \"quoted\"", "* * * * *", lambda: None)
    job.invoke_now().result(5)
    registry = prometheus_client.CollectorRegistry()
    registry.register(prometheus_collector(service))
    text = prometheus_client.generate_latest(registry).decode()
    assert "mashroom_background_jobs_total 1.0" in text
    assert "mashroom_background_jobs_failed 0.0" in text
    assert ('mashroom_background_jobs_invocations_total{job="job \\"quoted\\"",outcome="success"}'
            " 1.0") in text
    assert 'mashroom_background_jobs_duration_seconds_bucket{job="job \\"quoted\\"",le="+Inf"} 1.0'\
        in text


def test_a_plugins_cron_schedule_may_use_h_hashed_from_the_plugins_name(
    installed_plugins: Any, service: BackgroundJobService, loader: PluginLoader
) -> None:
    from mashroom_jobs import CronSchedule

    service.plugin_config = {"Example heartbeat": {"cron_schedule": "H * * * *"}}
    job = _by_name(loader.load())["Example heartbeat"].job
    expected = CronSchedule("H * * * *", "UTC", name="Example heartbeat")
    assert job.cron_schedule == "H * * * *"
    assert job.next_invocation == expected.next_fire_time(service.now())
    assert "hashed" in format_plugins_table(service.plugins)
