"""What a background-job plugin declares: the decorator, its default config, and the
records of a plugin before (:class:`PluginSpec`) and after (:class:`PluginRecord`) loading."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Literal, TypeVar, overload

from ..job import BackgroundJob

__all__ = [
    "DEFAULT_CONFIG_ATTRIBUTE", "ENTRY_POINT_GROUP", "RESERVED_KEYS", "PluginRecord",
    "PluginSpec", "PluginState", "background_job_plugin",
]

ENTRY_POINT_GROUP = "mashroom_jobs.plugins"
#: the attribute :func:`background_job_plugin` sets on a bootstrap function
DEFAULT_CONFIG_ATTRIBUTE = "mashroom_jobs_default_config"
#: config keys that mean something to mashroom-jobs (``schedule_job``'s arguments of the
#: same names); all others are the plugin's own
RESERVED_KEYS = ("cron_schedule", "invoke_immediately", "timezone", "overlap", "timeout",
                 "retries", "retry_delay", "exclusive", "executor")

PluginState = Literal["loaded", "failed", "disabled"]

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
        None to run once at load), ``invoke_immediately`` (bool),
        ``timezone`` (IANA name) and ``executor`` (``"dask"``: run on the cluster of
        ``dask_address``) have a meaning to mashroom-jobs; every other
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
        return value if isinstance(value, str) and value != "" else None


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
    #: False when the bootstrap could not be imported: its default config, and so the
    #: default ``cron_schedule``, is unknown
    defaults_known: bool = True

    @property
    def cron_schedule(self) -> str | None:
        """The effective ``cron_schedule`` (None: the job ran once, at load)."""
        value = self.config.get("cron_schedule")
        return value if isinstance(value, str) and value != "" else None

    def __repr__(self) -> str:
        detail = f" error={self.error!r}" if self.error else ""
        return f"<PluginRecord {self.name!r} {self.state}{detail}>"
