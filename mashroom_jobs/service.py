"""BackgroundJobService: the Mashroom background-jobs service, as a traitlets Configurable.

Threads: ``jobs`` is set by the thread that schedules or unschedules, and its
observers run there, under the service's lock (so they see changes in order).
Observers must be quick and must not wait for other threads.
"""

from __future__ import annotations

import atexit
import sys
import threading
import weakref
from collections.abc import Callable
from concurrent.futures import Executor
from contextlib import AbstractContextManager
from datetime import datetime, tzinfo
from typing import Any, Literal

from traitlets import (
    All,
    Bool,
    Dict,  # Dict, List and observe: the plugins and metrics block
    Instance,
    Int,
    List,
    Tuple,
    Unicode,
    Union,
    default,
    observe,
    validate,
)
from traitlets import Any as AnyTrait
from traitlets.config import LoggingConfigurable

from .context import PluginContext, PluginServices
from .core import capture
from .core.clock import Clock, SystemClock
from .core.cron import resolve_zone, shared_schedule, zone_name
from .core.errors import InvalidCronExpressionError, ServiceShutdownError
from .core.executors import DaemonThreadPool, LoopThread
from .core.scheduler import Timer
from .job import BackgroundJob

__all__ = ["BackgroundJobService"]


class _JobsTuple(Tuple):  # type: ignore[type-arg]
    """The ``jobs`` trait, rebuilt from the service's name index only when it is read
    or observed: 10,000 schedules then cost 10,000 dict operations, not 10,000 copies
    of a growing tuple.  Observers see every change as before (see ``_jobs_changing``).
    """

    def get(self, obj: Any, cls: Any = None) -> Any:
        if getattr(obj, "_jobs_stale", False):
            obj._materialize_jobs()
        return super().get(obj, cls)

_OVERLAP = ("skip", "allow")


class BackgroundJobService(LoggingConfigurable):
    """Schedules cron jobs in this process and runs them off the main thread.

    The Python face of Mashroom's ``BackgroundJobService``::

        service = BackgroundJobService()
        job = service.schedule_job("Test Job", "0/5 * * * *", callback)
        service.unschedule_job("Test Job")

    Configure it like any traitlets Configurable, e.g. in
    ``ipython_kernel_config.py``: ``c.BackgroundJobService.timezone = "Europe/Vienna"``.
    """

    timezone = Union(
        [Unicode(), Instance(tzinfo)],
        default_value="",
        help="Default time zone of jobs: an IANA name or tzinfo; empty means the local zone.",
    ).tag(config=True)
    max_workers = Int(
        8, help="Threads running plain (non-async) job callbacks; read when the pool starts."
    ).tag(config=True)
    history_size = Int(20, help="Runs kept in each job's history.").tag(config=True)
    capture_output = Bool(
        True, help="Record what jobs print in their invocations instead of the current cell."
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

    jobs = _JobsTuple(
        read_only=True, help="The scheduled jobs (BackgroundJob), in scheduling order."
    )
    shell = AnyTrait(None, allow_none=True, help="The IPython shell, when there is one.")
    clock = AnyTrait(help="The Clock the service reads time from (tests inject a ManualClock).")

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._lock = threading.RLock()
        # name -> job, in scheduling order (a replacement keeps its place): what `jobs` shows
        self._by_name: dict[str, BackgroundJob] = {}
        self._jobs_stale = False  # `jobs` lags _by_name; nobody observes it
        self._shut_down = False
        self._idle_lock = threading.Lock()  # taken twice per run: a bare lock is cheapest
        self._idle = threading.Condition(self._idle_lock)
        self._in_flight = 0
        self._timer = Timer(self._clock, around_fires=self._firing,
                            precise=self.precise_wakeups)
        self.__pool: DaemonThreadPool | None = None
        self.__loop: LoopThread | None = None
        self._context: PluginContext | None = None
        capture.install()
        _live_services.add(self)

    @default("clock")
    def _default_clock(self) -> Clock:
        return SystemClock()

    @validate("timezone")
    def _validate_timezone(self, proposal: Any) -> str | tzinfo:
        resolve_zone(proposal.value)  # raises InvalidTimezoneError naming the zone
        return proposal.value  # type: ignore[no-any-return]

    @validate("history_size", "max_workers")
    def _validate_positive(self, proposal: Any) -> int:
        if proposal.value < 1:
            raise ValueError(f"{proposal.trait.name} must be at least 1, got {proposal.value}")
        return proposal.value  # type: ignore[no-any-return]

    # -- the API --

    def schedule_job(
        self,
        name: str,
        cron_schedule: str | None,
        callback: Callable[..., Any],
        *,
        timezone: str | tzinfo | None = None,
        invoke_immediately: bool = False,
        overlap: Literal["skip", "allow"] = "skip",
        executor: Executor | None = None,
    ) -> BackgroundJob:
        """Schedule ``callback`` under ``name``; an existing job of that name is replaced.

        Parameters
        ----------
        name : str
            Unique, non-empty name of the job.
        cron_schedule : str or None
            Cron expression (5 fields, or 6 with seconds first, or a macro such
            as ``@hourly``). None or empty: run once, right away.
        callback : callable
            Takes the :class:`PluginContext` or no argument; may be ``async``.
        timezone : str or tzinfo, optional
            Zone the expression is evaluated in; default: the service's ``timezone``.
        invoke_immediately : bool
            Also run once right away, then on schedule.
        overlap : {"skip", "allow"}
            A fire while the previous run is still going is skipped (and counted
            in ``skip_count``), or runs in parallel.
        executor : concurrent.futures.Executor, optional
            Run this job's callback there instead of the service's thread pool.

        Returns
        -------
        BackgroundJob

        Raises
        ------
        TypeError, ValueError
            For a bad ``name``, ``callback``, ``overlap`` or ``executor``.
        InvalidCronExpressionError
            For an invalid or never-firing expression. Nothing is replaced.
        InvalidTimezoneError
            For an unknown zone. Nothing is replaced.
        ServiceShutdownError
            After :meth:`shutdown`.
        """
        if not isinstance(name, str):
            raise TypeError(f"name must be a string, got {type(name).__name__}")
        if not name.strip():
            raise ValueError("name must be a non-empty string")
        if not callable(callback):
            raise TypeError(f"callback must be callable, got {type(callback).__name__}")
        if overlap not in _OVERLAP:
            raise ValueError(f"overlap must be one of {_OVERLAP}, got {overlap!r}")
        if executor is not None and not isinstance(executor, Executor):
            raise TypeError(
                f"executor must be a concurrent.futures.Executor, got {type(executor).__name__}"
            )
        zone = resolve_zone(self.timezone if timezone is None else timezone)
        if cron_schedule is None or (isinstance(cron_schedule, str) and not cron_schedule.strip()):
            schedule = None
        elif isinstance(cron_schedule, str):
            schedule = shared_schedule(cron_schedule, zone)
        else:
            raise InvalidCronExpressionError(
                cron_schedule, f"expected a string or None, got {type(cron_schedule).__name__}"
            )
        job = BackgroundJob(
            self, name, schedule, callback,
            zone=zone, zone_name=zone_name(zone), overlap=overlap, executor=executor,
        )
        with self._lock:
            if self._shut_down:
                raise ServiceShutdownError(f"cannot schedule {name!r}: the service was shut down")
            observed = self._jobs_changing()
            old = self._by_name.get(name)
            self._by_name[name] = job
            if observed is not None:
                if old is None:
                    self._set_jobs((*observed, job))
                else:  # the replacement takes the old job's place
                    index = observed.index(old)
                    self._set_jobs((*observed[:index], job, *observed[index + 1 :]))
            self._track_for_metrics(job)
        # Outside the service lock: the job's lock, then the timer's (never the reverse).
        if old is not None:
            old._deactivate()
        job._start_timer()
        if schedule is None or invoke_immediately:
            job._dispatch("immediate", None)
        return job

    def unschedule_job(self, name: str) -> None:
        """Remove the job ``name``: it fires no more. An unknown name does nothing.

        A run in progress finishes and is recorded on the (now inactive) job.
        """
        with self._lock:
            observed = self._jobs_changing()
            job = self._by_name.pop(name, None)
            if job is None:
                return
            if observed is not None:
                index = observed.index(job)
                self._set_jobs(observed[:index] + observed[index + 1 :])
        job._deactivate()

    def unschedule_all(self) -> None:
        """Remove every job."""
        with self._lock:
            removed = self.jobs  # (brings a stale `jobs` up to date first)
            self._by_name.clear()
            self._set_jobs(())
        for job in removed:
            job._deactivate()

    def get_job(self, name: str) -> BackgroundJob | None:
        """The job called ``name``, or None."""
        return self._by_name.get(name)

    def wait_until_idle(self, timeout: float | None = None) -> bool:
        """Block until no run is queued or running; False if ``timeout`` passed first."""
        with self._idle:
            return self._idle.wait_for(lambda: self._in_flight == 0, timeout)

    def shutdown(self, wait: bool = True, timeout: float = 5.0) -> None:
        """Stop the timer and run nothing new; with ``wait``, wait for running
        jobs up to ``timeout`` seconds.

        Jobs stay in :attr:`jobs` (inactive) for inspection. Threads left by a
        job that does not end are daemon threads: interpreter exit never hangs.
        Calling it twice is harmless.
        """
        with self._lock:
            if self._shut_down:
                return
            self._shut_down = True
            jobs = self.jobs
        self._timer.stop(timeout)
        for job in jobs:
            job._deactivate()
        if wait:
            self.wait_until_idle(timeout)
        if self.__pool is not None:
            self.__pool.shutdown(wait=wait, cancel_futures=True, timeout=timeout if wait else 0)
        if self.__loop is not None:
            self.__loop.shutdown(timeout if wait else 0)
        capture.uninstall()
        _live_services.discard(self)

    @property
    def is_shut_down(self) -> bool:
        """True after :meth:`shutdown`."""
        return self._shut_down

    @property
    def context(self) -> PluginContext:
        """The PluginContext handed to jobs (and to plugins' bootstrap)."""
        context = self._context
        if context is None or context.shell is not self.shell:
            context = self._context = PluginContext(
                services=PluginServices(background_jobs=self), shell=self.shell
            )
        return context

    @property
    def zone(self) -> tzinfo:
        """The resolved default zone of jobs."""
        return resolve_zone(self.timezone)

    # -- internals used by BackgroundJob --

    @property
    def _clock(self) -> Clock:
        return self.clock  # type: ignore[no-any-return]

    @property
    def _pool(self) -> DaemonThreadPool:
        pool = self.__pool
        if pool is None:
            with self._lock:
                if self.__pool is None:
                    self.__pool = DaemonThreadPool(self.max_workers)
                pool = self.__pool
        return pool

    @property
    def _loop_thread(self) -> LoopThread:
        loop = self.__loop
        if loop is None:
            with self._lock:
                if self.__loop is None:
                    self.__loop = LoopThread()
                loop = self.__loop
        return loop

    def _firing(self) -> AbstractContextManager[object]:
        """Around each batch of fires: run bookkeeping waits until all have been handed
        to the pool (see DaemonThreadPool.hold_deferred)."""
        return self._pool.hold_deferred()

    def _threads(self) -> list[threading.Thread]:
        """Every thread this service started (for tests and the extension's unload)."""
        threads = [self._timer.thread]
        if self.__pool is not None:
            threads.extend(self.__pool.threads)
        if self.__loop is not None:
            threads.append(self.__loop.thread)
        return [t for t in threads if t is not None]

    def _run_dispatched(self) -> None:
        with self._idle_lock:
            self._in_flight += 1

    def _run_finished(self) -> None:
        with self._idle_lock:
            self._in_flight -= 1
            if self._in_flight == 0:
                self._idle.notify_all()

    def _jobs_changing(self) -> tuple[BackgroundJob, ...] | None:
        """Called under the lock before ``_by_name`` changes.

        When someone observes ``jobs``: its current value, for the caller to build
        the new one and notify.  Otherwise None, and ``jobs`` is marked stale.
        """
        notifiers = self._trait_notifiers  # (_observed, inlined: twice per schedule)
        by_type, for_all = notifiers.get("jobs"), notifiers.get(All)
        if (by_type and any(by_type.values())) or (for_all and any(for_all.values())):
            return self.jobs  # type: ignore[no-any-return]
        self._jobs_stale = True
        return None

    def _materialize_jobs(self) -> None:
        with self._lock:
            if self._jobs_stale:
                self._trait_values["jobs"] = tuple(self._by_name.values())
                self._jobs_stale = False

    def _set_jobs(self, jobs: tuple[BackgroundJob, ...]) -> None:
        try:
            self.set_trait("jobs", jobs)
        except Exception:  # an observer raised: the change itself is done
            self.log.exception("an observer of BackgroundJobService.jobs raised")

    # -- plugins and metrics (issue 4) ------------------------------------------------
    # Config of background-job plugins (mashroom_jobs.plugins) and the metrics figures.

    plugin_config = Dict(
        help=(
            "Config of background-job plugins, by plugin name; each entry is merged over "
            "the plugin's default config, e.g. "
            "{'My background job': {'cron_schedule': '*/10 * * * *'}}. "
            "'cron_schedule' (None: run once at load), 'invoke_immediately' and 'timezone' "
            "mean something to mashroom-jobs, the other keys are the plugin's own. "
            "A change reloads the plugins it concerns."
        ),
    ).tag(config=True)
    disabled_plugins = List(
        Unicode(),
        help=(
            "Names of background-job plugins not to load. "
            "A change reloads the plugins it concerns."
        ),
    ).tag(config=True)
    plugins = Tuple(
        read_only=True,
        help="The background-job plugins of the last load (PluginRecord), sorted by name.",
    )

    @validate("plugin_config")
    def _validate_plugin_config(self, proposal: Any) -> dict[str, Any]:
        for name, config in proposal.value.items():
            if not isinstance(config, dict):
                raise TypeError(
                    f"plugin_config[{name!r}] must be a dict of config keys, "
                    f"got {type(config).__name__}"
                )
        return proposal.value  # type: ignore[no-any-return]

    def load_plugins(self, entry_points: Any = None) -> tuple[Any, ...]:
        """Bootstrap every background-job plugin and schedule its job.

        Plugins loaded before are unloaded first, so each is bootstrapped once.

        Parameters
        ----------
        entry_points : iterable of importlib.metadata.EntryPoint, optional
            The plugins; by default the installed ones (entry-point group
            ``mashroom_jobs.plugins``).

        Returns
        -------
        tuple of PluginRecord
            Also in :attr:`plugins`. A failing plugin is a ``failed`` record; this never raises
            because of a plugin.
        """
        from . import plugins as _plugins

        self.unload_plugins()
        eps = list(_plugins.discover() if entry_points is None else entry_points)
        self._plugin_entry_points = eps
        records = _plugins.load_plugins(self, eps)
        self.set_trait("plugins", records)
        return records

    def unload_plugins(self) -> None:
        """Unschedule the jobs of the loaded plugins and forget them."""
        for record in self.plugins:
            job = record.job
            if job is not None and self.get_job(record.name) is job:
                self.unschedule_job(record.name)
        self._plugin_entry_points = []
        self.set_trait("plugins", ())

    @observe("plugin_config", "disabled_plugins")
    def _observe_plugin_settings(self, change: Any) -> None:
        # %config after load: reload exactly the plugins whose settings changed
        if not self.plugins or self._shut_down:
            return
        if change.name == "plugin_config":
            old, new = change.old or {}, change.new or {}
            changed = {n for n in set(old) | set(new) if old.get(n) != new.get(n)}
        else:
            changed = set(change.old or ()) ^ set(change.new or ())
        from . import plugins as _plugins

        records = list(self.plugins)
        entry_points = getattr(self, "_plugin_entry_points", ())
        for index, record in enumerate(records):
            if record.name not in changed:
                continue
            entry_point = next((ep for ep in entry_points if ep.name == record.name), None)
            if entry_point is None:
                continue
            if record.job is not None and self.get_job(record.name) is record.job:
                self.unschedule_job(record.name)
            records[index] = _plugins.load_plugin(self, entry_point)
        self.set_trait("plugins", tuple(records))

    def _track_for_metrics(self, job: BackgroundJob) -> None:
        # called by schedule_job (not an observer of `jobs`, which would make it O(jobs))
        self._metrics_recorder.track((), (job,))

    @property
    def _metrics_recorder(self) -> Any:
        recorder = self.__dict__.get("_metrics_recorder_")
        if recorder is None:
            from .metrics import MetricsRecorder

            recorder = self.__dict__.setdefault("_metrics_recorder_", MetricsRecorder())
        return recorder

    def metrics(self) -> dict[str, Any]:
        """The figures Mashroom exports for background jobs, as a dict.

        Returns
        -------
        dict
            ``mashroom_background_jobs_total`` (scheduled jobs),
            ``mashroom_background_jobs_failed`` (scheduled jobs whose last run failed),
            ``mashroom_background_jobs_invocations_total`` (``{job: {"success": n,
            "failure": n}}``, every run since the service started) and
            ``mashroom_background_jobs_duration_seconds`` (``{"buckets": [upper bounds],
            "jobs": {job: {"bucket_counts": [cumulative], "sum": s, "count": n}}}``).
        """
        return self._metrics_recorder.snapshot(self.jobs)  # type: ignore[no-any-return]

    # -- end of plugins and metrics ------------------------------------------------------

    # -- display --

    def __repr__(self) -> str:
        return format_jobs_table(self.jobs, self._clock.now())

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        printer.text(repr(self) if not cycle else "BackgroundJobService(...)")

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, Any]:
        """A live JobsPanel in a kernel (widgets can render); the text table elsewhere."""
        text = repr(self)
        if _widget_frontend(self.shell):
            try:
                from .panel import display_panel  # ipywidgets only when a panel is shown

                bundle = dict(display_panel(self)._repr_mimebundle_())
            except Exception:
                self.log.warning("could not show the jobs panel; showing text", exc_info=True)
            else:
                bundle["text/plain"] = text  # what nbval and text-only frontends see
                return bundle
        return {"text/plain": text}


def _widget_frontend(shell: Any) -> bool:
    """True in an ipykernel (a frontend that may render widgets), False in terminal IPython."""
    if shell is None:
        ipython = sys.modules.get("IPython")
        shell = ipython.get_ipython() if ipython is not None else None
    return getattr(shell, "kernel", None) is not None


def format_jobs_table(jobs: tuple[BackgroundJob, ...], now: datetime) -> str:
    """A plain-text table of jobs, for terminals and ``repr``."""
    header = ("", "name", "schedule", "next run", "last run", "runs", "failed")
    rows = [header]
    for job in jobs:
        last = job.last_invocation
        if last is None:
            last_text = "never"
        else:
            outcome = "ok" if last.success else f"FAILED {last.error_message}"
            last_text = f"{last.timestamp:%Y-%m-%d %H:%M:%S} {outcome}"
        nxt = job.next_invocation
        rows.append((
            status_mark(job),
            job.name,
            job.cron_schedule if job.cron_schedule is not None else "(once)",
            f"{nxt:%Y-%m-%d %H:%M:%S %Z}" if nxt is not None else "-",
            last_text[:60],
            str(job.run_count),
            str(job.failure_count),
        ))
    if len(rows) == 1:
        return "BackgroundJobService: no jobs"
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in rows]
    title = f"BackgroundJobService: {len(jobs)} job{'s' if len(jobs) != 1 else ''}"
    return "\n".join([title, *lines])


def status_mark(job: BackgroundJob) -> str:
    """One character for a job's state: running, paused, failed, never run, scheduled."""
    if job.running:
        return "▶"
    if job.paused:
        return "‖"  # U+2016: in DejaVu, unlike U+23F8, so every browser draws it
    last = job.last_invocation
    if last is not None and not last.success:
        return "✗"
    if last is None:
        return "○"
    return "✓"


_live_services: weakref.WeakSet[BackgroundJobService] = weakref.WeakSet()


@atexit.register
def _shutdown_all() -> None:
    for service in list(_live_services):
        service.shutdown(wait=False)
