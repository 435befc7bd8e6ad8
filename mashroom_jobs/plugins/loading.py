"""Finding background-job plugins (entry points) and loading them into a service.

Discovery (:func:`discover`, reads ``importlib.metadata``) is separate from
loading (:func:`load_plugins`, takes entry points), so the loader can be tested
with hand-made :class:`importlib.metadata.EntryPoint` objects, as in xarray's
``backends/plugins.py``.  Nothing is discovered at import time.
:class:`PluginLoader` loads a service's plugins and reloads those whose
config changes.
"""

from __future__ import annotations

import inspect
import logging
import threading
import traceback
from collections.abc import Iterable, Mapping
from importlib.metadata import EntryPoint
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from ..context import PluginContextHolder
from ..core.arguments import check_choice, check_count, check_flag, check_seconds
from ..core.cron import CronSchedule, resolve_zone
from ..core.errors import MashroomJobsError, ServiceShutdownError
from ..core.records import error_text
from .declaring import DEFAULT_CONFIG_ATTRIBUTE, ENTRY_POINT_GROUP, PluginRecord, PluginSpec

if TYPE_CHECKING:
    from ..service import BackgroundJobService

__all__ = [
    "PluginLoader", "disabled_record", "discover", "distribution_of", "inspect_plugin",
    "load_plugin", "load_plugins", "schedule_arguments", "unknown_plugin_names",
]

log = logging.getLogger("mashroom_jobs.plugins")


# --- discovery and loading -----------------------------------------------------------------


def discover(group: str = ENTRY_POINT_GROUP) -> list[EntryPoint]:
    """The installed background-job plugins: the entry points of ``group``, sorted by name.

    Reads ``importlib.metadata`` now (never at import time), so a plugin
    installed after the kernel started is found on the next load.
    """
    from importlib.metadata import entry_points

    return sorted(entry_points(group=group), key=lambda ep: ep.name)


def distribution_of(entry_point: EntryPoint) -> str | None:
    dist = getattr(entry_point, "dist", None)
    if dist is None:
        return None
    try:
        return f"{dist.metadata['Name']} {dist.version}"
    except Exception:  # odd metadata must not break loading
        return None


def disabled_record(entry_point: EntryPoint, override: Mapping[str, Any]) -> PluginRecord:
    """The record of a plugin the user disabled (``disabled_plugins``)."""
    return PluginRecord(
        entry_point.name, "disabled", MappingProxyType(dict(override)),
        entry_point=entry_point.value, distribution=distribution_of(entry_point),
    )


def inspect_plugin(
    entry_point: EntryPoint,
    overrides: Mapping[str, Any] | None = None,
    *,
    default_timezone: Any = None,
) -> PluginSpec:
    """Import a plugin's bootstrap and work out its effective config, without bootstrapping it.

    Parameters
    ----------
    entry_point : importlib.metadata.EntryPoint
        The plugin's entry point.
    overrides : mapping, optional
        The user's config for this plugin; wins over the default config.
    default_timezone : str or tzinfo, optional
        Zone to check ``cron_schedule`` in when the config names none.

    Returns
    -------
    PluginSpec
        With ``error`` set when the plugin cannot be imported, its bootstrap is
        not callable, or its config is invalid.  Never raises for a bad plugin.
    """
    name = entry_point.name
    distribution = distribution_of(entry_point)
    override = dict(overrides or {})
    try:
        bootstrap = entry_point.load()
    except (Exception, SystemExit) as exc:  # a plugin's import may raise anything
        return PluginSpec(
            name, entry_point.value, distribution, MappingProxyType(override),
            error=f"could not import {entry_point.value}: {error_text(exc)}",
            traceback=traceback.format_exc(),
        )
    if not callable(bootstrap):
        return PluginSpec(
            name, entry_point.value, distribution, MappingProxyType(override),
            error=f"{entry_point.value} is a {type(bootstrap).__name__}, not a bootstrap function",
        )
    default = getattr(bootstrap, DEFAULT_CONFIG_ATTRIBUTE, None) or {}
    config = MappingProxyType({**default, **override})
    error = _config_error(config, default_timezone, name)
    return PluginSpec(
        name, entry_point.value, distribution, config, bootstrap=bootstrap, error=error
    )


def schedule_arguments(config: Mapping[str, Any], default_timezone: Any = None,
                       name: str | None = None) -> dict[str, Any]:
    """``schedule_job``'s arguments from a plugin's config (the keys of RESERVED_KEYS);
    ``name`` (the plugin's, its job's) is what an ``H`` in ``cron_schedule`` hashes.

    A plugin's job is ``exclusive`` unless its config says ``"exclusive": False``: with a
    shared store, each fire runs in one of the kernels that load the plugin.

    Raises
    ------
    TypeError, ValueError, MashroomJobsError
        Naming the key and the value that is wrong.
    """
    cron = config.get("cron_schedule")
    if cron is not None and not isinstance(cron, str):
        raise TypeError(f"cron_schedule must be a cron expression string or None, got {cron!r}")
    zone = resolve_zone(config.get("timezone") or default_timezone)
    return {
        "cron_schedule": (CronSchedule(cron, zone, name=name)
                          if cron is not None and cron != "" else None),
        "invoke_immediately": check_flag(config.get("invoke_immediately", False),
                                         "invoke_immediately"),
        "overlap": check_choice(config.get("overlap", "skip"), "overlap", ("skip", "allow")),
        "timeout": check_seconds(config.get("timeout"), "timeout", low=0.001, allow_none=True),
        "retries": check_count(config.get("retries", 0), "retries"),
        "retry_delay": check_seconds(config.get("retry_delay", 30.0), "retry_delay"),
        "exclusive": check_flag(config.get("exclusive", True), "exclusive"),
        "executor": _executor(config.get("executor")),
    }


def _executor(executor: object) -> str | None:
    if executor is None or executor == "dask":
        return "dask" if executor else None
    raise ValueError(f"executor must be 'dask' (the cluster of dask_address) or None "
                     f"(the kernel's threads), got {executor!r}")


def _config_error(config: Mapping[str, Any], default_timezone: Any,
                  name: str | None) -> str | None:
    """What is wrong with the keys that mean something to us, or None."""
    try:
        schedule_arguments(config, default_timezone, name)
    except (MashroomJobsError, TypeError, ValueError) as exc:
        return f"invalid config: {exc}"
    return None


def load_plugins(
    service: BackgroundJobService, entry_points: Iterable[EntryPoint]
) -> tuple[PluginRecord, ...]:
    """Bootstrap each plugin and schedule its job on ``service``; the pure loader.

    Parameters
    ----------
    service : BackgroundJobService
        Supplies the user's ``plugin_config`` and ``disabled_plugins`` and runs the jobs.
    entry_points : iterable of importlib.metadata.EntryPoint
        The plugins, e.g. from :func:`discover`.  A second entry point with an
        already seen name fails (names must be unique, as jobs' are).

    Returns
    -------
    tuple of PluginRecord
        One per entry point, in order.  Never raises because of a plugin.
    """
    records: list[PluginRecord] = []
    seen: dict[str, str] = {}
    stored = stored_overrides(service)
    for entry_point in entry_points:
        name = entry_point.name
        if name in seen:
            record = PluginRecord(
                name, "failed", MappingProxyType({}),
                error=f"another plugin is already called {name!r} ({seen[name]}); "
                      f"{entry_point.value} was not loaded",
                entry_point=entry_point.value, distribution=distribution_of(entry_point),
                defaults_known=False,
            )
            log.error("Background job plugin %r failed: %s", name, record.error)
        else:
            seen[name] = entry_point.value
            record = load_plugin(service, entry_point, stored.get(name))
        records.append(record)
    return tuple(records)


def unknown_plugin_names(service: BackgroundJobService,
                         entry_points: Iterable[EntryPoint]) -> list[str]:
    """What is wrong with names in ``plugin_config`` and ``disabled_plugins`` that no
    installed plugin has (a typo there changes nothing, silently), one sentence each."""
    import difflib

    installed = sorted({ep.name for ep in entry_points})
    problems = []
    for setting, names in (("plugin_config", list(service.plugin_config)),
                           ("disabled_plugins", list(service.disabled_plugins))):
        for name in names:
            if name in installed:
                continue
            close = difflib.get_close_matches(name, installed, n=1)
            hint = (f"; did you mean {close[0]!r}?" if close else
                    f"; installed: {', '.join(map(repr, installed)) or 'none'}")
            problems.append(f"{setting} names {name!r}, which is not an installed "
                            f"background-job plugin{hint}")
    return problems


def stored_overrides(service: BackgroundJobService) -> dict[str, dict[str, Any]]:
    """What users changed of plugin jobs in the job store (paused, a new schedule...), by
    name; nothing without a store (or when it cannot be read: then the config alone)."""
    if service.durable is None:
        return {}
    try:
        return service.durable.overrides()
    except MashroomJobsError as exc:
        log.warning("mashroom-jobs: cannot read the plugins' stored changes now: %s", exc)
        return {}


def load_plugin(service: BackgroundJobService, entry_point: EntryPoint,
                stored: Mapping[str, Any] | None = None) -> PluginRecord:
    """Bootstrap one plugin and schedule its job; a failure becomes a failed record.
    ``stored``: what users changed of its job in the job store (over ``plugin_config``)."""
    name = entry_point.name
    stored = dict(stored or {})
    paused = bool(stored.pop("paused", False))
    override = {**(service.plugin_config.get(name) or {}), **stored}
    if name in service.disabled_plugins:
        return disabled_record(entry_point, override)
    spec = inspect_plugin(entry_point, override, default_timezone=service.timezone)
    record = _bootstrap(service, spec, paused)
    if record.state == "failed":
        log.error("Background job plugin %r failed: %s", name, record.error)
    else:
        log.info("Background job plugin %r loaded: %s", name,
                 record.cron_schedule or "runs once")
    return record


def _bootstrap(service: BackgroundJobService, spec: PluginSpec,
               paused: bool = False) -> PluginRecord:
    def failed(error: str, tb: str | None = None) -> PluginRecord:
        return PluginRecord(
            spec.name, "failed", spec.config, error=error, traceback=tb,
            entry_point=spec.entry_point, distribution=spec.distribution,
            defaults_known=spec.bootstrap is not None,
        )

    if spec.error is not None or spec.bootstrap is None:
        return failed(spec.error or "no bootstrap", spec.traceback)
    holder = PluginContextHolder(service)
    try:
        # the bootstrap gets its own copy: a plugin mutating it changes nothing of ours
        callback = spec.bootstrap(spec.name, dict(spec.config), holder)
        if inspect.isawaitable(callback):
            # an async bootstrap: awaited on the loop its coroutine job will run on
            callback = service.run_coroutine(_await(callback)).result()
    except (Exception, SystemExit) as exc:
        return failed(f"bootstrap raised {error_text(exc)}", traceback.format_exc())
    if not callable(callback):
        return failed(
            f"bootstrap returned {type(callback).__name__} {callback!r:.60}, "
            f"not a job callback (a function, possibly async)"
        )
    try:
        arguments = schedule_arguments(spec.config, service.timezone, spec.name)
        job = service.schedule_job(spec.name, arguments.pop("cron_schedule"), callback,
                                   paused=paused, **arguments)
    except Exception as exc:  # invalid schedule, a callback taking two arguments, shut down...
        return failed(f"could not schedule its job: {error_text(exc)}", traceback.format_exc())
    return PluginRecord(
        spec.name, "loaded", spec.config, job=job,
        entry_point=spec.entry_point, distribution=spec.distribution,
    )


async def _await(awaitable: Any) -> Any:
    return await awaitable


class PluginLoader:
    """Loads a service's background-job plugins, and reloads them when their config changes.

    ``%config BackgroundJobService.plugin_config = {...}`` (or ``disabled_plugins``)
    after :meth:`load` re-bootstraps exactly the plugins whose settings changed.
    The records go to ``service.plugins``.

    Parameters
    ----------
    service : BackgroundJobService
        Supplies ``plugin_config`` and ``disabled_plugins`` and runs the jobs.
    """

    def __init__(self, service: BackgroundJobService) -> None:
        self.service = service
        self._entry_points: list[EntryPoint] = []
        self._observing = False
        self._lock = threading.RLock()  # the config's observer and the store's watcher
        self._stored: dict[str, dict[str, Any]] = {}  # the stored changes applied
        self._watching = False

    def load(self, entry_points: Iterable[EntryPoint] | None = None) -> tuple[PluginRecord, ...]:
        """Bootstrap every plugin and schedule its job; those loaded before are unloaded first.

        Parameters
        ----------
        entry_points : iterable of importlib.metadata.EntryPoint, optional
            The plugins; by default the installed ones (:func:`discover`).

        Returns
        -------
        tuple of PluginRecord
            Also in ``service.plugins``.  A failing plugin is a ``failed`` record: this
            never raises because of a plugin.

        Raises
        ------
        ServiceShutdownError
            When the service was shut down.
        """
        service = self.service
        if service.is_shut_down:
            raise ServiceShutdownError("cannot load plugins: the service was shut down")
        with self._lock:
            self.unload()
            self._entry_points = list(discover() if entry_points is None else entry_points)
            self._stored = stored_overrides(service)
            records = load_plugins(service, self._entry_points)
            service.set_trait("plugins", records)
            self._warn_unknown_names()
            if not self._observing:
                service.observe(self._on_settings,
                                names=["plugin_config", "disabled_plugins"])
                self._observing = True
            if not self._watching and service.durable is not None:
                service.durable.watch(self._on_store)  # changes made in other processes
                self._watching = True
        return records

    def unload(self) -> None:
        """Unschedule the jobs of the loaded plugins and forget them."""
        service = self.service
        for record in service.plugins:
            if record.job is not None and service.get_job(record.name) is record.job:
                service.unschedule_job(record.name)
        self._entry_points = []
        service.set_trait("plugins", ())

    def close(self) -> None:
        """Unload, and stop following the config."""
        self.unload()
        if self._observing:
            self.service.unobserve(self._on_settings,
                                   names=["plugin_config", "disabled_plugins"])
            self._observing = False

    def _on_settings(self, change: Any) -> None:
        service = self.service
        if not service.plugins or service.is_shut_down:
            return
        if change.name == "plugin_config":
            old, new = change.old or {}, change.new or {}
            changed = {n for n in set(old) | set(new) if old.get(n) != new.get(n)}
        else:
            changed = set(change.old or ()) ^ set(change.new or ())
        records = list(service.plugins)
        for index, record in enumerate(records):
            entry_point = next((ep for ep in self._entry_points if ep.name == record.name), None)
            if record.name not in changed or entry_point is None:
                continue
            if record.job is not None and service.get_job(record.name) is record.job:
                service.unschedule_job(record.name)
            records[index] = load_plugin(service, entry_point)
        service.set_trait("plugins", tuple(records))
        self._warn_unknown_names()

    def _on_store(self) -> None:
        """(A pool worker.)  The store's changes of plugin jobs moved: a pause or a resume
        is applied in place; any other change reloads the plugin with it."""
        service = self.service
        with self._lock:
            if not service.plugins or service.is_shut_down:
                return
            stored, previous = stored_overrides(service), self._stored
            changed = {name for name in set(stored) | set(previous)
                       if stored.get(name) != previous.get(name)}
            self._stored = stored
            if not changed:
                return
            records = list(service.plugins)
            for index, record in enumerate(records):
                if record.name not in changed:
                    continue
                new = dict(stored.get(record.name, {}))
                old = dict(previous.get(record.name, {}))
                paused = bool(new.pop("paused", False))
                old.pop("paused", None)
                if new == old and record.job is not None and record.job.active:
                    # only paused or resumed (pause_job writes nothing: it is stored)
                    (service.pause_job if paused else service.resume_job)(record.job)
                    continue
                entry_point = next((ep for ep in self._entry_points if ep.name == record.name),
                                   None)
                if entry_point is None:
                    continue
                if record.job is not None and service.get_job(record.name) is record.job:
                    service.unschedule_job(record.name)
                records[index] = load_plugin(service, entry_point, stored.get(record.name))
                log.info("mashroom-jobs: plugin %r reloaded with its stored changes %s",
                         record.name, stored.get(record.name, {}))
            service.set_trait("plugins", tuple(records))

    def _warn_unknown_names(self) -> None:
        for problem in unknown_plugin_names(self.service, self._entry_points):
            log.warning("mashroom-jobs: %s", problem)
