"""Any value for any argument: only the documented errors escape, and nothing already
scheduled is lost (hypothesis)."""

from __future__ import annotations

import math
from collections.abc import Iterator
from datetime import timezone
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from traitlets import TraitError

from mashroom_jobs import BackgroundJobService, MashroomJobsError
from mashroom_jobs.plugins import schedule_arguments
from mashroom_jobs.testing import ManualClock

#: what may escape schedule_job for a bad argument
DOCUMENTED = (TypeError, ValueError, MashroomJobsError)

# values of every kind a user might pass by mistake
anything = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True, allow_infinity=True),
    st.text(), st.binary(max_size=8), st.lists(st.integers(), max_size=3),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
    st.sampled_from([object(), print, lambda: None, timezone.utc, math.inf, -1, 0, 1e-9,
                     "UTC", "Europe/Vienna", "* * * * *", "@hourly", "skip", "allow"]),
)


@pytest.fixture(scope="module")
def fuzz_service() -> Iterator[BackgroundJobService]:
    service = BackgroundJobService(clock=ManualClock("2026-01-01T00:00:00+00:00"),
                                   timezone="UTC")
    yield service
    service.shutdown()


ARGUMENTS = ["name", "cron_schedule", "callback", "timezone", "invoke_immediately", "overlap",
             "executor", "timeout", "retries", "retry_delay", "exclusive"]
VALID: dict[str, Any] = {"name": "fuzzed", "cron_schedule": "0 0 1 1 *", "callback": lambda: None}


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                   HealthCheck.function_scoped_fixture])
@given(argument=st.sampled_from(ARGUMENTS), value=anything)
def test_any_value_of_any_schedule_job_argument_raises_only_documented_errors(
    fuzz_service: BackgroundJobService, argument: str, value: Any
) -> None:
    service = fuzz_service
    kept = service.schedule_job("kept", "0 0 * * *", lambda: None)
    kwargs = {**VALID, argument: value}
    name, cron, callback = kwargs.pop("name"), kwargs.pop("cron_schedule"), kwargs.pop("callback")
    if callable(value) and argument == "callback":
        kwargs["invoke_immediately"] = False  # a fuzzed callable must not run
    try:
        job = service.schedule_job(name, cron, callback, **kwargs)
    except DOCUMENTED as exc:
        assert str(exc)  # every refusal says something
        if argument in ("timeout", "retries", "retry_delay", "overlap", "exclusive",
                        "invoke_immediately", "executor"):
            assert argument in str(exc), f"{argument}: {exc}"  # it names the argument
    else:
        service.unschedule_job(job.name)
    assert service.get_job("kept") is kept and kept.active  # nothing scheduled was lost
    assert kept.next_invocation is not None


CONFIG_TRAITS = ["timezone", "max_workers", "history_size", "capture_output", "stop_grace",
                 "notify_failures", "plugin_config", "disabled_plugins", "precise_wakeups"]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                   HealthCheck.function_scoped_fixture])
@given(trait=st.sampled_from(CONFIG_TRAITS), value=anything)
def test_any_config_value_is_accepted_or_refused_with_a_trait_error_keeping_the_old_one(
    fuzz_service: BackgroundJobService, trait: str, value: Any
) -> None:
    service = fuzz_service
    before = getattr(service, trait)
    try:
        with service.hold_trait_notifications():  # as %config sets them
            setattr(service, trait, value)
    except TraitError:
        assert getattr(service, trait) == before
    else:
        setattr(service, trait, before)


@settings(max_examples=300, deadline=None)
@given(config=st.dictionaries(
    st.sampled_from(["cron_schedule", "invoke_immediately", "timezone", "overlap", "timeout",
                     "retries", "retry_delay", "exclusive"]),
    anything, max_size=4))
def test_any_plugin_config_gives_arguments_or_a_documented_error(config: dict[str, Any]) -> None:
    try:
        arguments = schedule_arguments(config, "UTC")
    except DOCUMENTED as exc:
        assert str(exc)
    else:
        assert set(arguments) >= {"cron_schedule", "timeout", "retries", "exclusive"}


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                   HealthCheck.function_scoped_fixture])
@given(line=st.one_of(
    st.text(max_size=40),
    st.builds(lambda name, cron, rest: f"{name} {cron} {rest}",
              st.text(max_size=8), st.text(max_size=16),
              st.sampled_from(["", "--now", "--tz", "--tz Mars/X", "--timeout", "--timeout -1",
                               "--retries x", "--retry-delay inf", "--bogus"])),
))
def test_any_schedule_magic_line_schedules_or_is_one_usage_error(
    ip: Any, fuzz_service: BackgroundJobService, line: str
) -> None:
    from IPython.core.error import UsageError

    from mashroom_jobs.magics import JobMagics

    service = fuzz_service
    ip.register_magics(JobMagics(ip, service=service))
    kept = service.schedule_job("kept", "0 0 * * *", lambda: None)
    before = {job.name for job in service.jobs}
    try:
        ip.run_cell_magic("schedule", line, "pass\n")
    except UsageError as exc:
        assert "\n" not in str(exc)  # one line
        assert {job.name for job in service.jobs} == before
    for job in service.jobs:
        if job.name != "kept":
            service.unschedule_job(job.name)
    assert service.get_job("kept") is kept and kept.active
