"""``%load_ext mashroom_jobs``: the wiring, each step undone in reverse on unload.

Loading creates the kernel's one :class:`BackgroundJobService` (configured from
the shell's config, so ``c.BackgroundJobService...`` in ``ipython_kernel_config.py``
applies), appends it to ``shell.configurables`` (so ``%config BackgroundJobService``
works), registers the magics, shows the service as the jobs panel (an IPython
display formatter) and loads the background-job plugins.  Unloading closes the
service's panels, unloads the plugins, unschedules every job, shuts the service
down (its threads end) and removes what it registered.

The service keeps its runs in the job store: ``mashroom-jobs/store.sqlite`` in the
Jupyter data folder, shared by every kernel that loads the extension, unless the
config sets ``c.BackgroundJobService.store`` (even to None).  A store that cannot
be used is reported in one warning line, and the kernel starts with runs kept in
memory.
"""

from __future__ import annotations

import logging
import os
import re
import sys
import threading
from typing import TYPE_CHECKING, Any, cast

from ._kernel_hooks import KernelHooks
from .core.errors import MashroomJobsError, StoreError
from .plugins import PluginLoader
from .service import BackgroundJobService
from .settings import CONFIG_SECTIONS, store_configured
from .store import default_store_path

if TYPE_CHECKING:
    from IPython.core.interactiveshell import InteractiveShell
    from traitlets.config import Configurable

    from .magics import JobMagics

__all__ = ["get_service", "load_ipython_extension", "unload_ipython_extension"]

#: how long unload waits for running jobs before leaving them to their daemon threads
SHUTDOWN_TIMEOUT = 5.0


class _Extension:
    """What one load registered, so unload removes exactly those objects."""

    def __init__(self, shell: InteractiveShell) -> None:
        self.shell = shell
        self.service: BackgroundJobService | None = None
        self.loader: PluginLoader | None = None
        self.magics: JobMagics | None = None
        self.configurable_added = False
        self.formatter: Any = None
        self.log_handler: logging.Handler | None = None
        self.hooks: KernelHooks | None = None

    def load(self) -> None:
        from .magics import JobMagics

        shell = self.shell
        # first: what goes wrong from here on is told in the kernel's log, never in a cell
        self.log_handler = _route_log(shell)
        service = self.service = _make_service(shell)
        _configurables(shell).append(service)
        self.configurable_added = True
        self.magics = JobMagics(shell, service=service)
        shell.register_magics(self.magics)
        formatter = getattr(getattr(shell, "display_formatter", None), "mimebundle_formatter",
                            None)
        if formatter is not None:
            formatter.for_type(BackgroundJobService, _panel_bundle)
            self.formatter = formatter
        # a job's display() and input() must not reach a cell either (see _kernel_hooks)
        self.hooks = KernelHooks(shell)
        self.hooks.install()
        self.loader = PluginLoader(service)
        self.loader.load()  # never raises because of a plugin

    def unload(self) -> None:
        service, shell = self.service, self.shell
        if service is not None:
            _close_panels(service)
            if self.loader is not None:
                self.loader.close()
            service.unschedule_all()
            service.shutdown(wait=True, timeout=SHUTDOWN_TIMEOUT)
        self.loader = None
        if self.hooks is not None:
            self.hooks.uninstall()
            self.hooks = None
        if self.formatter is not None:
            self.formatter.pop(BackgroundJobService, None)
            self.formatter = None
        if self.log_handler is not None:
            logger = logging.getLogger("mashroom_jobs")
            logger.removeHandler(self.log_handler)
            logger.propagate = True
            self.log_handler = None
        if self.magics is not None:
            _unregister_magics(shell, self.magics)
            self.magics = None
        if self.configurable_added:
            configurables = _configurables(shell)
            configurables[:] = [c for c in configurables if c is not service]
            self.configurable_added = False
        self.service = None


def _configurables(shell: InteractiveShell) -> list[Configurable]:
    """``shell.configurables``, which ``%config`` searches.

    IPython infers its type from ``[self]`` as a list of shells; it holds any Configurable
    (the display formatter, the display hook, and our service).
    """
    return cast("list[Configurable]", shell.configurables)


_lock = threading.Lock()
_loaded: _Extension | None = None


def load_ipython_extension(shell: InteractiveShell) -> None:
    """Create the kernel's BackgroundJobService, register the magics, load the plugins.

    Loading again while loaded does nothing.
    """
    global _loaded
    with _lock:
        if _loaded is not None:
            if _loaded.shell is shell:
                return
            # another shell (tests create several): the process has one service
            _loaded.unload()
            _loaded = None
        extension = _Extension(shell)
        try:
            extension.load()
        except BaseException:
            extension.unload()  # leave nothing half-registered behind
            raise
        _loaded = extension


def unload_ipython_extension(shell: InteractiveShell) -> None:
    """Close the panels, unschedule every job, shut the service down, remove the magics.

    Unloading when not loaded does nothing.
    """
    global _loaded
    with _lock:
        if _loaded is None or _loaded.shell is not shell:
            return
        extension, _loaded = _loaded, None
        extension.unload()


def get_service() -> BackgroundJobService:
    """The BackgroundJobService of this kernel (created by ``%load_ext mashroom_jobs``).

    Returns
    -------
    BackgroundJobService

    Raises
    ------
    MashroomJobsError
        When the extension is not loaded.
    """
    extension = _loaded
    if extension is None or extension.service is None:
        raise MashroomJobsError(
            "the mashroom_jobs extension is not loaded: run %load_ext mashroom_jobs first, "
            "or create a BackgroundJobService() yourself"
        )
    return extension.service


def _make_service(shell: InteractiveShell) -> BackgroundJobService:
    """The kernel's service, on the default store unless the config names one.

    A setting the service refuses is left out, with one warning each: one typo in
    ``ipython_kernel_config.py`` must not take the magics and the plugins away.
    """
    # parent=shell: the service reads c.BackgroundJobService from the shell's config
    kwargs: dict[str, Any] = {"parent": shell, "shell": shell, "kernel_id": kernel_id(shell),
                              "host_kind": "kernel"}
    config = getattr(shell, "config", None)
    if config is not None:
        kwargs["config"] = _valid_settings(config)
    try:
        if not store_configured(kwargs.get("config")):
            kwargs["store"] = default_store_path()
        return BackgroundJobService(**kwargs)
    except StoreError as exc:  # the kernel must start: with runs kept in memory
        logging.getLogger("mashroom_jobs").warning(
            "mashroom-jobs: %s; runs are kept in this kernel's memory only", exc)
        return BackgroundJobService(**{**kwargs, "store": None})


def _valid_settings(config: Any) -> Any:
    """``config`` without the service's settings it would refuse, each one told in a
    warning naming it, its value and the default used instead."""
    from copy import deepcopy

    from traitlets.config import Config

    from .settings import ServiceSettings

    traits = ServiceSettings.class_traits(config=True)
    bad: list[tuple[str, str]] = []
    for section in CONFIG_SECTIONS:
        if section not in config:
            continue
        for name, value in config[section].items():
            if name not in traits:
                continue  # traitlets warns of unknown names itself
            try:  # the service's own validation, on a settings object of no consequence
                ServiceSettings().update_config(Config({"ServiceSettings": {name: value}}))
            except Exception as exc:
                shown = value if not hasattr(value, "get_value") else "(an append/update)"
                default = ("the default store" if name == "store" else
                           f"the default ({traits[name].default()!r})")
                reason = _one_line(exc).replace("a ServiceSettings instance",
                                                "BackgroundJobService")
                logging.getLogger("mashroom_jobs").warning(
                    "mashroom-jobs: c.%s.%s = %r is not valid (%s); %s is used instead",
                    section, name, shown, reason, default)
                bad.append((section, name))
    if not bad:
        return config
    config = deepcopy(config)
    for section, name in bad:
        del config[section][name]
    return config


def _one_line(error: BaseException) -> str:
    text = " ".join(str(error).split())
    return text if len(text) <= 300 else text[:300] + "..."


class _ForwardHandler(logging.Handler):
    """Hands the library's records to the kernel's own log handlers (the kernel process's
    original stderr, which ipykernel keeps away from the cells)."""

    def __init__(self, target: logging.Logger) -> None:
        super().__init__()
        self.target = target

    def emit(self, record: logging.LogRecord) -> None:
        for handler in self.target.handlers:
            if record.levelno >= handler.level:
                handler.handle(record)


def _route_log(shell: Any) -> logging.Handler | None:
    """Give the ``mashroom_jobs`` logger a handler of its own, into the kernel's log (the
    terminal's stderr in terminal IPython), and stop it propagating: a handler on the root
    logger (IPython's ``%config`` errors install one, through ``logging.error``) writes
    to ``sys.stderr``, i.e. into whichever cell is running.  Failures show in the panel.

    None (nothing changed) when the user gave the logger a handler already.
    """
    logger = logging.getLogger("mashroom_jobs")
    if logger.handlers:
        return None
    kernel_log = getattr(getattr(shell, "kernel", None), "log", None)
    handler: logging.Handler
    if isinstance(kernel_log, logging.Logger) and kernel_log.handlers:
        handler = _ForwardHandler(kernel_log)
    else:
        handler = logging.StreamHandler(_process_stderr())
        handler.setFormatter(logging.Formatter("[%(levelname)s %(name)s] %(message)s"))
    logger.addHandler(handler)
    logger.propagate = False
    return handler


def _process_stderr() -> Any:
    """The process's own stderr: in a kernel not ``sys.stderr`` (the running cell's), nor
    file descriptor 2 (which ipykernel forwards to the cells), but its copy of the original."""
    import io

    fd = getattr(sys.stderr, "_original_stdstream_copy", None)
    if isinstance(fd, int):
        return io.TextIOWrapper(io.FileIO(fd, "w", closefd=False), line_buffering=True)
    return sys.__stderr__


def kernel_id(shell: Any) -> str | None:
    """The id of the kernel ``shell`` runs in (from its connection file
    ``kernel-ID.json``), or None outside a kernel."""
    if getattr(shell, "kernel", None) is None:
        return None
    try:
        from ipykernel.connect import get_connection_file

        name = os.path.basename(get_connection_file())
    except Exception:  # not an IPKernelApp (an embedded or test kernel)
        return None
    match = re.fullmatch(r"kernel-(.+)\.json", name)
    return match.group(1) if match else None


def widget_frontend(shell: Any) -> bool:
    """True in an ipykernel (a frontend that may render widgets), False in terminal IPython."""
    return getattr(shell, "kernel", None) is not None


def _panel_bundle(service: BackgroundJobService) -> dict[str, Any]:
    """How a kernel displays the service: its live JobsPanel (the text table as text/plain).

    Outside a kernel (terminal IPython), nothing: the text table is shown instead.
    """
    if not widget_frontend(service.shell):
        return {}
    try:
        from .panel import display_panel  # ipywidgets only when a panel is shown

        bundle = dict(display_panel(service)._repr_mimebundle_())
    except Exception:
        service.log.warning("could not show the jobs panel; showing text", exc_info=True)
        return {}
    bundle["text/plain"] = repr(service)  # what nbval and text-only frontends see
    return bundle


def _close_panels(service: BackgroundJobService) -> None:
    # only if the panel module was ever imported: importing it now would load ipywidgets
    panel = sys.modules.get("mashroom_jobs.panel")
    close = getattr(panel, "close_panels", None)
    if callable(close):
        try:
            close(service)
        except Exception:  # a panel must not keep the service (and its threads) alive
            service.log.exception("closing the jobs panels failed")


def _unregister_magics(shell: Any, magics: Any) -> None:
    """Remove exactly the magics this object registered (IPython has no unregister)."""
    manager = shell.magics_manager
    for kind in ("line", "cell"):
        table = manager.magics[kind]
        for name, function in list(table.items()):
            if getattr(function, "__self__", None) is magics:
                del table[name]
    registry = manager.registry
    for key, value in list(registry.items()):
        if value is magics:
            del registry[key]
