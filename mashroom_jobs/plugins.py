"""Background-job plugins: discovery through entry points, and the loader.

A plugin is an entry point in the group ``mashroom_jobs.plugins``.  The entry
point's name is the plugin's name; its object is the *bootstrap* function,
Mashroom's ``background-job`` plugin translated to Python::

    # pyproject.toml
    [project.entry-points."mashroom_jobs.plugins"]
    "My background job" = "my_package.jobs:bootstrap"

    # my_package/jobs.py
    from mashroom_jobs import background_job_plugin

    @background_job_plugin(default_config={"cron_schedule": "0/5 * * * *", "y": 42})
    def bootstrap(plugin_name, plugin_config, context_holder):
        def job(context):
            context.logger_factory("my_package").info("y is %s", plugin_config["y"])
        return job

Discovery (:func:`discover`, reads ``importlib.metadata``) is separate from
loading (:func:`load_plugins`, takes entry points), so the loader can be
tested with hand-made :class:`importlib.metadata.EntryPoint` objects, as in
xarray's ``backends/plugins.py``.  Nothing is discovered at import time.

Every failure of one plugin (it cannot be imported, its bootstrap raises or
returns something not callable, its ``cron_schedule`` is invalid...) is
logged with the plugin's name and kept as a failed :class:`PluginRecord`; the
other plugins load regardless.
"""

from __future__ import annotations

import inspect
import logging
import traceback
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from importlib.metadata import EntryPoint
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Literal, TypeVar, overload

from .context import PluginContextHolder
from .core.cron import CronSchedule, resolve_zone

if TYPE_CHECKING:
    from .job import BackgroundJob
    from .service import BackgroundJobService

__all__ = [
    "ENTRY_POINT_GROUP",
    "PluginRecord",
    "PluginSpec",
    "background_job_plugin",
    "discover",
    "format_plugins_table",
    "inspect_plugin",
    "load_plugins",
]

ENTRY_POINT_GROUP = "mashroom_jobs.plugins"
#: the attribute :func:`background_job_plugin` sets on a bootstrap function
DEFAULT_CONFIG_ATTRIBUTE = "mashroom_jobs_default_config"
#: config keys that mean something to mashroom-jobs; all others are the plugin's own
RESERVED_KEYS = ("cron_schedule", "invoke_immediately", "timezone")

PluginState = Literal["loaded", "failed", "disabled"]
log = logging.getLogger("mashroom_jobs.plugins")

F = TypeVar("F", bound=Callable[..., Any])


# --- the decorator ----------------------------------------------------------------


@overload
def background_job_plugin(bootstrap: F, /) -> F: ...
@overload
def background_job_plugin(
    *, default_config: Mapping[str, Any] | None = None
) -> Callable[[F], F]: ...
def background_job_plugin(
    bootstrap: F | None = None, /, *, default_config: Mapping[str, Any] | None = None
) -> F | Callable[[F], F]:
    """Mark a function as a background-job plugin's bootstrap, with its default config.

    The Python form of Mashroom's ``defaultConfig``.  The function itself is
    returned unchanged (the config is attached as an attribute), so it stays
    easy to call in tests.

    Parameters
    ----------
    bootstrap : callable, optional
        When used without parentheses (``@background_job_plugin``).
    default_config : mapping, optional
        The plugin's default config.  ``cron_schedule`` (a cron expression, or
        None to run once at load), ``invoke_immediately`` (bool) and
        ``timezone`` (IANA name) have a meaning to mashroom-jobs; every other
        key is the plugin's own and is passed to the bootstrap untouched.  The
        user overrides it with ``c.BackgroundJobService.plugin_config``.

    Returns
    -------
    callable
        The decorated bootstrap, or a decorator.

    Raises
    ------
    TypeError
        When ``default_config`` is not a mapping with string keys, or the
        decorated object is not callable.
    """
    config = _check_default_config(default_config)

    def decorate(function: F) -> F:
        if not callable(function):
            raise TypeError(
                f"@background_job_plugin decorates a bootstrap function, "
                f"got {type(function).__name__}"
            )
        setattr(function, DEFAULT_CONFIG_ATTRIBUTE, MappingProxyType(config))
        return function

    return decorate(bootstrap) if bootstrap is not None else decorate


def _check_default_config(default_config: Mapping[str, Any] | None) -> dict[str, Any]:
    if default_config is None:
        return {}
    if not isinstance(default_config, Mapping):
        raise TypeError(
            f"default_config must be a mapping (dict), got {type(default_config).__name__}"
        )
    bad = [k for k in default_config if not isinstance(k, str)]
    if bad:
        raise TypeError(f"default_config keys must be strings, got {bad[0]!r}")
    return dict(default_config)


# --- records ------------------------------------------------------------------------


@dataclass(frozen=True)
class PluginSpec:
    """What an installed plugin declares, before it is bootstrapped.

    Attributes
    ----------
    name : str
        The entry point's name: the plugin's (and its job's) name.
    entry_point : str
        ``module:attribute`` of the bootstrap function.
    distribution : str or None
        ``name version`` of the distribution that declares it.
    config : mapping
        The effective config: the default config with the user's overrides on top.
    bootstrap : callable or None
        The imported bootstrap function (None when it could not be imported).
    error : str or None
        Why the plugin cannot be used, e.g. an import error or an invalid ``cron_schedule``.
    """

    name: str
    entry_point: str
    distribution: str | None
    config: Mapping[str, Any]
    bootstrap: Callable[..., Any] | None = None
    error: str | None = None
    traceback: str | None = field(default=None, repr=False)

    @property
    def cron_schedule(self) -> str | None:
        """The effective ``cron_schedule`` (None: runs once at load)."""
        value = self.config.get("cron_schedule")
        return value if isinstance(value, str) and value.strip() else None


@dataclass(frozen=True)
class PluginRecord:
    """One background-job plugin as the service loaded it.  Immutable.

    Attributes
    ----------
    name : str
        The plugin's name (its entry point's name); its job has the same name.
    state : {"loaded", "failed", "disabled"}
        ``loaded``: bootstrapped and its job scheduled; ``failed``: see ``error``;
        ``disabled``: listed in ``BackgroundJobService.disabled_plugins``.
    config : mapping
        The effective config (default config merged with the user's overrides).
    job : BackgroundJob or None
        The plugin's job, when loaded.
    error : str or None
        Why it failed, e.g. ``bootstrap raised RuntimeError: no database``.
    traceback : str or None
        The traceback of the failure, when there is one.
    entry_point : str
        ``module:attribute`` of the bootstrap.
    distribution : str or None
        ``name version`` of the distribution that declares the plugin.
    """

    name: str
    state: PluginState
    config: Mapping[str, Any]
    job: BackgroundJob | None = None
    error: str | None = None
    traceback: str | None = field(default=None, repr=False)
    entry_point: str = ""
    distribution: str | None = None

    @property
    def cron_schedule(self) -> str | None:
        """The effective ``cron_schedule`` (None: the job ran once, at load)."""
        value = self.config.get("cron_schedule")
        return value if isinstance(value, str) and value.strip() else None

    def __repr__(self) -> str:
        detail = f" error={self.error!r}" if self.error else ""
        return f"<PluginRecord {self.name!r} {self.state}{detail}>"


# --- discovery and loading -----------------------------------------------------------------


def discover(group: str = ENTRY_POINT_GROUP) -> list[EntryPoint]:
    """The installed background-job plugins: the entry points of ``group``, sorted by name.

    Reads ``importlib.metadata`` now (never at import time), so a plugin
    installed after the kernel started is found on the next load.
    """
    from importlib.metadata import entry_points

    return sorted(entry_points(group=group), key=lambda ep: ep.name)


def _distribution(entry_point: EntryPoint) -> str | None:
    dist = getattr(entry_point, "dist", None)
    if dist is None:
        return None
    try:
        return f"{dist.metadata['Name']} {dist.version}"
    except Exception:  # odd metadata must not break loading
        return None


def _error_text(error: BaseException) -> str:
    text = str(error)
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


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
    distribution = _distribution(entry_point)
    override = dict(overrides or {})
    try:
        bootstrap = entry_point.load()
    except (Exception, SystemExit) as exc:  # a plugin's import may raise anything
        return PluginSpec(
            name, entry_point.value, distribution, MappingProxyType(override),
            error=f"could not import {entry_point.value}: {_error_text(exc)}",
            traceback=traceback.format_exc(),
        )
    if not callable(bootstrap):
        return PluginSpec(
            name, entry_point.value, distribution, MappingProxyType(override),
            error=f"{entry_point.value} is a {type(bootstrap).__name__}, not a bootstrap function",
        )
    default = getattr(bootstrap, DEFAULT_CONFIG_ATTRIBUTE, None) or {}
    config = MappingProxyType({**default, **override})
    error = _config_error(config, default_timezone)
    return PluginSpec(
        name, entry_point.value, distribution, config, bootstrap=bootstrap, error=error
    )


def _config_error(config: Mapping[str, Any], default_timezone: Any) -> str | None:
    """What is wrong with the keys that mean something to us, or None."""
    from .core.errors import MashroomJobsError

    cron = config.get("cron_schedule")
    if cron is not None and not isinstance(cron, str):
        return f"cron_schedule must be a cron expression string or None, got {cron!r}"
    invoke = config.get("invoke_immediately", False)
    if not isinstance(invoke, bool):
        return f"invoke_immediately must be true or false, got {invoke!r}"
    try:
        zone = resolve_zone(config.get("timezone") or default_timezone)
        if cron is not None and cron.strip():
            CronSchedule(cron, zone)
    except MashroomJobsError as exc:
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
    for entry_point in entry_points:
        name = entry_point.name
        if name in seen:
            record = PluginRecord(
                name, "failed", MappingProxyType({}),
                error=f"another plugin is already called {name!r} ({seen[name]}); "
                      f"{entry_point.value} was not loaded",
                entry_point=entry_point.value, distribution=_distribution(entry_point),
            )
            log.error("Background job plugin %r failed: %s", name, record.error)
        else:
            seen[name] = entry_point.value
            record = load_plugin(service, entry_point)
        records.append(record)
    return tuple(records)


def load_plugin(service: BackgroundJobService, entry_point: EntryPoint) -> PluginRecord:
    """Bootstrap one plugin and schedule its job; a failure becomes a failed record."""
    name = entry_point.name
    override = service.plugin_config.get(name) or {}
    if name in service.disabled_plugins:
        return PluginRecord(
            name, "disabled", MappingProxyType(dict(override)),
            entry_point=entry_point.value, distribution=_distribution(entry_point),
        )
    spec = inspect_plugin(entry_point, override, default_timezone=service.timezone)
    record = _bootstrap(service, spec)
    if record.state == "failed":
        log.error("Background job plugin %r failed: %s", name, record.error)
    else:
        log.info("Background job plugin %r loaded: %s", name,
                 record.cron_schedule or "runs once")
    return record


def _bootstrap(service: BackgroundJobService, spec: PluginSpec) -> PluginRecord:
    def failed(error: str, tb: str | None = None) -> PluginRecord:
        return PluginRecord(
            spec.name, "failed", spec.config, error=error, traceback=tb,
            entry_point=spec.entry_point, distribution=spec.distribution,
        )

    if spec.error is not None or spec.bootstrap is None:
        return failed(spec.error or "no bootstrap", spec.traceback)
    holder = PluginContextHolder(service)
    try:
        # the bootstrap gets its own copy: a plugin mutating it changes nothing of ours
        callback = spec.bootstrap(spec.name, dict(spec.config), holder)
        if inspect.isawaitable(callback):  # an async bootstrap: await it off the main thread
            callback = service._loop_thread.submit(_await(callback)).result()
    except (Exception, SystemExit) as exc:
        return failed(f"bootstrap raised {_error_text(exc)}", traceback.format_exc())
    if not callable(callback):
        return failed(
            f"bootstrap returned {type(callback).__name__} {callback!r:.60}, "
            f"not a job callback (a function, possibly async)"
        )
    try:
        job = service.schedule_job(
            spec.name,
            spec.cron_schedule,
            callback,
            timezone=spec.config.get("timezone") or None,
            invoke_immediately=bool(spec.config.get("invoke_immediately", False)),
        )
    except Exception as exc:  # invalid schedule, a callback taking two arguments, shut down...
        return failed(f"could not schedule its job: {_error_text(exc)}", traceback.format_exc())
    return PluginRecord(
        spec.name, "loaded", spec.config, job=job,
        entry_point=spec.entry_point, distribution=spec.distribution,
    )


async def _await(awaitable: Any) -> Any:
    return await awaitable


# --- display ---------------------------------------------------------------------------------


def format_plugins_table(
    records: Iterable[PluginRecord | PluginSpec],
    now: datetime | None = None,
    *,
    fire_times: int = 0,
) -> str:
    """A plain-text table of plugins: name, state, schedule, and the error of a failed one.

    With ``fire_times`` and ``now``, also the next fire times of each schedule.
    """
    records = list(records)
    if not records:
        return f"No background-job plugins installed (entry-point group {ENTRY_POINT_GROUP!r})."
    lines = [f"Background-job plugins: {len(records)}"]
    width = max(len(r.name) for r in records)
    for record in records:
        state: str
        if isinstance(record, PluginRecord):
            state = record.state
        else:
            state = "error" if record.error else "found"
        cron = record.cron_schedule
        schedule = cron if cron is not None else "(once, at load)"
        lines.append(f"  {record.name.ljust(width)}  {state:<8}  {schedule}")
        if record.error:
            lines.append(f"      error: {record.error}")
            continue
        if cron is not None:
            try:
                zone = record.config.get("timezone") or None
                parsed = CronSchedule(cron, zone)
            except Exception:  # shown as the record's error already
                continue
            lines.append(f"      {parsed.describe()}")
            if fire_times and now is not None:
                for when in parsed.fire_times(now, fire_times):
                    lines.append(f"      next: {when:%Y-%m-%d %H:%M:%S %Z}")
        if record.distribution:
            lines.append(f"      from: {record.distribution} ({record.entry_point})")
    return "\n".join(lines)
