"""The settings of the service: every ``c.BackgroundJobService...`` option, with its help.

:class:`~mashroom_jobs.BackgroundJobService` inherits them, so they are set as
``c.BackgroundJobService.timezone = "Europe/Vienna"`` in a config file or with
``%config BackgroundJobService.timezone = "UTC"`` in a kernel.  Validators raise
``TraitError``: traitlets then keeps the old value, also inside
``hold_trait_notifications()`` (which ``%config`` uses).
"""

from __future__ import annotations

import math
import os
from datetime import tzinfo
from typing import Any

from traitlets import Bool, Dict, Float, Instance, Int, List, TraitError, Unicode, Union, validate
from traitlets.config import LoggingConfigurable

from .core.cron import resolve_zone
from .store import store_location

__all__ = ["CONFIG_SECTIONS", "ServiceSettings", "store_configured"]

#: the config sections the service reads its settings from (traitlets: its classes' names)
CONFIG_SECTIONS = ("BackgroundJobService", "ServiceSettings")


def store_configured(config: Any) -> bool:
    """Whether a traitlets ``config`` names the service's ``store`` (if not, a kernel, the
    server extension, the dashboard and ``mashroom-jobs run`` use the default store)."""
    return config is not None and any(f"{section}.store" in config
                                      for section in CONFIG_SECTIONS)


class ServiceSettings(LoggingConfigurable):
    """The configurable settings of :class:`~mashroom_jobs.BackgroundJobService`."""

    timezone = Union(
        [Unicode(), Instance(tzinfo)],
        default_value="",
        help="Default time zone of jobs: an IANA name or tzinfo; empty means the local zone.",
    ).tag(config=True)
    max_workers = Int(
        8, help="Threads running plain (non-async) job callbacks; read when the pool starts."
    ).tag(config=True)
    history_size = Int(20, help="Runs kept in each job's in-memory history.").tag(config=True)
    capture_output = Bool(
        True,
        help="Record what jobs print in their runs. False: it goes where the process's "
             "output goes (in a kernel, to whichever cell is running).",
    ).tag(config=True)
    precise_wakeups = Bool(
        False,
        help=(
            "Wake a few milliseconds before each fire time and poll the rest holding the GIL, "
            "so jobs start within ~0.1 ms instead of the 0.2-2 ms (more on a busy VM) a timed "
            "sleep overshoots by. Costs 2-8 ms of CPU, and of the main thread's GIL time, per "
            "fire time; read when the service starts."
        ),
    ).tag(config=True)
    stop_grace = Float(
        5.0,
        help="Seconds a run asked to stop (or timed out) has to end before it is recorded as "
             "stopped and its thread abandoned.",
    ).tag(config=True)
    durable_jobs = Bool(
        True,
        help="Host the job store's durable jobs (when there is a store): schedule them in "
             "this process, follow the changes other processes make (within about a "
             "second), catch up the fires missed while no process ran, and write this "
             "process's heartbeat. False: this process only reads and changes them. Read "
             "when the service starts.",
    ).tag(config=True)
    loop_block_limit = Float(
        1.0,
        help="Seconds a coroutine job may hold the event loop of coroutine jobs (a blocking "
             "call such as time.sleep in async code) before the loop counts as blocked: the "
             "run's output then says so, and coroutine jobs go on on a new loop thread.",
    ).tag(config=True)
    notify_failures = Bool(
        True,
        help="Announce each failed run (after its last retry) for a minute in the header of "
             "the open jobs panels. (JupyterLab's notification toasts can't be raised from a "
             "kernel without front-end code, which mashroom-jobs does not ship.)",
    ).tag(config=True)
    store = Union(
        [Unicode(), Instance(os.PathLike)], default_value=None, allow_none=True,
        help=(
            "The job store: a SQLite file shared by every process that names it, which keeps "
            "every run and lets each fire of an exclusive job run in one process only. A path "
            "or a sqlite:///PATH URL; None keeps runs in this process's memory. A plain "
            "BackgroundJobService() defaults to None; the IPython extension and `mashroom-jobs "
            "run` default to mashroom-jobs/store.sqlite in the Jupyter data folder. Read when "
            "the service starts (%reload_ext mashroom_jobs applies a change)."
        ),
    ).tag(config=True)
    store_timeout = Float(
        2.0,
        help="Seconds a claim of an exclusive fire waits while another process holds the job "
             "store (a long write); then the fire runs here anyway, its output saying "
             "'store unavailable, ran without claim'. 0: a claim never waits, so a fire that "
             "comes while another process writes runs here unclaimed (and may run twice); "
             "at most 3600. Read when the service starts.",
    ).tag(config=True)
    store_retention_runs = Int(
        1000, help="Runs the job store keeps per job; older ones are pruned in the background.",
    ).tag(config=True)
    store_retention_days = Float(
        30.0, help="Days the job store keeps a run; older ones are pruned in the background.",
    ).tag(config=True)
    dask_address = Unicode(
        "",
        help=(
            "The Dask cluster jobs scheduled with executor='dask' run on: a scheduler address "
            "('tcp://host:8786', 'tls://...', or 'host:8786'), or 'local' for a LocalCluster "
            "the service starts on first use and closes at shutdown. Empty: none. A lost "
            "connection is rebuilt by the next run. Needs distributed "
            "(pip install 'mashroom-jobs[dask]')."
        ),
    ).tag(config=True)
    dask_connect_timeout = Float(
        10.0,
        help="Seconds one attempt to connect to dask_address may take (a run waiting for it "
             "fails after that, and the next one tries again).",
    ).tag(config=True)
    plugin_config = Dict(
        help=(
            "Per-plugin config overrides: {plugin name: {key: value}}, on top of each "
            "plugin's default config. A change reloads the plugins it concerns."
        ),
    ).tag(config=True)
    disabled_plugins = List(
        Unicode(),
        help="Names of background-job plugins not to load. A change reloads those it concerns.",
    ).tag(config=True)
    alert_urls = List(
        Unicode(),
        help=(
            "Apprise URLs (mailto://, json://, slack://, msteams://, ntfy://, ...) every job's "
            "alerts go to: a failure that will not be retried, a fire no host ran, a durable "
            "job parked, and the recovery after any of these (one alert, then a summary at "
            "most every alert_summary_interval, then one recovery). Each alert is claimed in "
            "the job store, so hosts sharing it send it once. Needs apprise (pip install "
            "'mashroom-jobs[alerts]'). Read when the service starts."
        ),
    ).tag(config=True)
    job_alert_urls = Dict(
        value_trait=List(Unicode()), key_trait=Unicode(),
        help=(
            "More alert URLs by job name: {pattern: [urls]}, the pattern as in fnmatch "
            "('nightly-*'); a job's alerts go to alert_urls and to those of every pattern its "
            "name matches. Kept in config, not in the job store: the URLs hold secrets. Read "
            "when the service starts."
        ),
    ).tag(config=True)
    alert_summary_interval = Float(
        600.0,
        help="Seconds between two alerts about one job's ongoing problems (its first alert, "
             "then summaries of the failures and missed fires since) until it recovers.",
    ).tag(config=True)

    @validate("timezone")
    def _validate_timezone(self, proposal: Any) -> str | tzinfo:
        try:
            resolve_zone(proposal.value)
        except ValueError as exc:
            raise TraitError(str(exc)) from None
        return proposal.value  # type: ignore[no-any-return]

    @validate("store")
    def _validate_store(self, proposal: Any) -> str | None:
        if proposal.value is None:
            return None
        try:
            store_location(proposal.value)
        except ValueError as exc:
            raise TraitError(str(exc)) from None
        path: str | os.PathLike[str] = proposal.value
        return os.fspath(path)  # a pathlib.Path is kept as its text

    @validate("store_retention_days")
    def _validate_retention_days(self, proposal: Any) -> float:
        if not 0 < proposal.value < math.inf:
            raise TraitError(f"store_retention_days must be a number of days > 0, "
                             f"got {proposal.value}")
        return proposal.value  # type: ignore[no-any-return]

    @validate("history_size", "max_workers", "store_retention_runs")
    def _validate_positive(self, proposal: Any) -> int:
        if proposal.value < 1:
            raise TraitError(f"{proposal.trait.name} must be at least 1, got {proposal.value}")
        return proposal.value  # type: ignore[no-any-return]

    @validate("store_timeout")
    def _validate_store_timeout(self, proposal: Any) -> float:
        if not 0 <= proposal.value <= 3600:
            raise TraitError(f"store_timeout must be a number of seconds from 0 to 3600, "
                             f"got {proposal.value}")
        return proposal.value  # type: ignore[no-any-return]

    @validate("stop_grace")
    def _validate_stop_grace(self, proposal: Any) -> float:
        if not 0 <= proposal.value < math.inf:
            raise TraitError(f"stop_grace must be a number of seconds >= 0, got {proposal.value}")
        return proposal.value  # type: ignore[no-any-return]

    @validate("loop_block_limit")
    def _validate_loop_block_limit(self, proposal: Any) -> float:
        if not 0.01 <= proposal.value < math.inf:
            raise TraitError(f"loop_block_limit must be a number of seconds >= 0.01, "
                             f"got {proposal.value}")
        return proposal.value  # type: ignore[no-any-return]

    @validate("dask_connect_timeout")
    def _validate_dask_connect_timeout(self, proposal: Any) -> float:
        if not 0 < proposal.value < math.inf:
            raise TraitError(
                f"dask_connect_timeout must be a number of seconds > 0, got {proposal.value}")
        return proposal.value  # type: ignore[no-any-return]

    @validate("dask_address")
    def _validate_dask_address(self, proposal: Any) -> str:
        from .dask_bridge import check_distributed, parse_dask_address

        try:
            address = parse_dask_address(proposal.value)
            if address:
                check_distributed("dask_address")
        except (ValueError, ImportError) as exc:
            raise TraitError(str(exc)) from None
        return address

    @validate("alert_urls")
    def _validate_alert_urls(self, proposal: Any) -> list[str]:
        _check_urls(proposal.value, "alert_urls")
        return proposal.value  # type: ignore[no-any-return]

    @validate("job_alert_urls")
    def _validate_job_alert_urls(self, proposal: Any) -> dict[str, list[str]]:
        for pattern, urls in proposal.value.items():
            _check_urls(urls, f"job_alert_urls[{pattern!r}]")
        return proposal.value  # type: ignore[no-any-return]

    @validate("alert_summary_interval")
    def _validate_alert_summary_interval(self, proposal: Any) -> float:
        if not 1 <= proposal.value <= 7 * 86_400:
            raise TraitError(f"alert_summary_interval must be seconds from 1 to 604800 (a "
                             f"week), got {proposal.value}")
        return proposal.value  # type: ignore[no-any-return]

    @validate("plugin_config")
    def _validate_plugin_config(self, proposal: Any) -> dict[str, Any]:
        for name, config in proposal.value.items():
            if not isinstance(config, dict):
                raise TraitError(
                    f"plugin_config[{name!r}] must be a dict of config keys, "
                    f"got {type(config).__name__}"
                )
        return proposal.value  # type: ignore[no-any-return]


def _check_urls(urls: list[str], what: str) -> None:
    if not urls:
        return
    from .alerts import check_alert_urls

    try:
        check_alert_urls(urls, what)
    except (ValueError, ImportError) as exc:
        raise TraitError(str(exc)) from None
