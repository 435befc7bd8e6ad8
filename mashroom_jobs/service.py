"""BackgroundJobService: the Mashroom background-jobs service, as a traitlets Configurable.

It composes the core (a :class:`~mashroom_jobs.core.runner.Runner`: the timer and the
run path), its jobs (a :class:`~mashroom_jobs.registry.JobRegistry`) and where they
run (:mod:`mashroom_jobs.backends`).  What the runner reports arrives as events on one
:class:`~mashroom_jobs.core.events.EventBus`, to which the jobs' ``state`` traits, the
metrics, the store and the failure callbacks subscribe (:mod:`mashroom_jobs.subscribers`);
so may users (:meth:`BackgroundJobService.subscribe`).

Threads: ``jobs`` changes are announced on the thread that schedules or
unschedules, under the service's lock (so observers see them in order); a job's
``state`` on the thread that changed it (see :mod:`mashroom_jobs.job`); failure
callbacks on a notifier thread of their own.  Observers must be quick.

With a ``store`` (a :class:`~mashroom_jobs.store.SQLiteStore`, opened when the
service starts), the runner claims exclusive fires through it and every run is
written to it by the store's writer thread; :meth:`BackgroundJobService.history`
reads it.
"""

from __future__ import annotations

import atexit
import difflib
import logging
import threading
import time
import weakref
from collections.abc import Callable, Coroutine, Mapping
from concurrent.futures import Executor, Future
from datetime import datetime, tzinfo
from typing import Any, Literal, TypeVar

from traitlets import All, Dict, TraitError, Tuple, Unicode, default, observe, validate
from traitlets import Any as AnyTrait

from .alerts import start_alerts
from .backends import ExecutorBackends
from .context import PluginContext, PluginServices
from .core import capture
from .core.arguments import check_count, check_flag, check_seconds
from .core.clock import Clock, SystemClock
from .core.cron import CronSchedule, resolve_zone
from .core.errors import JobNotScheduledError, MashroomJobsError, TargetUnavailableError
from .core.events import (
    EventBus,
    FireMissed,
    FiresCoalesced,
    RunFinished,
    StateChanged,
    Subscription,
)
from .core.records import HistorySource, JobInvocation, Outcome
from .core.runner import Runner
from .core.runs import current_run
from .core.runtime import JobRuntime, JobSpec
from .core.specs import check_job
from .durable import CatchUp, DurableHost, HostedJobs, JobDefinition
from .durable.facade import DurableJobs
from .job import BackgroundJob
from .metrics import MetricsRecorder
from .registry import JobRegistry, names_jobs
from .settings import ServiceSettings
from .store import SQLiteStore, make_origin
from .subscribers import FailureCallback, FailureNotifier, announce_state, keep_in
from .targets import Target, as_target, durable_target
from .text import format_jobs_table

__all__ = ["BackgroundJobService"]

T = TypeVar("T")

#: seconds the store has, at least, to write the last runs at shutdown
STORE_CLOSE_MINIMUM = 0.5


class BackgroundJobService(ServiceSettings):
    """Schedules cron jobs in this process and runs them off the main thread.

    The Python face of Mashroom's ``BackgroundJobService``::

        service = BackgroundJobService()
        job = service.schedule_job("Test Job", "0/5 * * * *", callback)
        service.unschedule_job("Test Job")

    Configure it like any traitlets Configurable, e.g. in
    ``ipython_kernel_config.py``: ``c.BackgroundJobService.timezone = "Europe/Vienna"``
    (the settings and their help: :class:`~mashroom_jobs.settings.ServiceSettings`).
    """

    plugins = Tuple(
        read_only=True,
        help="The background-job plugins of the last load (PluginRecord), sorted by name.",
    )
    last_failure = AnyTrait(
        None, allow_none=True, read_only=True,
        help="(job, invocation) of the last failed run that will not be retried; observe it "
             "to hear of failures (set on the notifier thread).",
    )
    shell = AnyTrait(None, allow_none=True, help="The IPython shell, when there is one.")
    clock = AnyTrait(help="The Clock the service reads time from (tests inject a ManualClock).")
    kernel_id = Unicode(
        None, allow_none=True,
        help="The id of the kernel the service lives in (the extension sets it): part of "
             "its origin in the job store. Read when the service starts.",
    )
    host_kind = Unicode(
        "python",
        help="What hosts this service, in its heartbeat: 'kernel' (the extension), 'run' "
             "(`mashroom-jobs run`), 'server' (the Jupyter Server extension), 'python'. "
             "Read when the service starts.",
    )

    host_details = Dict(
        help="More about the host for its heartbeat in the store (the Jupyter Server "
             "extension gives its URL). Read when the service starts.",
    )

    def __init__(self, **kwargs: Any) -> None:
        _check_keywords(type(self), kwargs)
        # before traitlets' init, which observes (see observe())
        self._lock = threading.RLock()
        self._registry = JobRegistry(self, self._lock)
        super().__init__(**kwargs)
        self._origin = make_origin(self.kernel_id)
        # first: a bad store raises StoreError before any thread or hook exists
        self._store = self._open_store()
        self._context: PluginContext | None = None
        self._metrics = MetricsRecorder()
        self._notifier = FailureNotifier()
        self._notifier.add(self._set_last_failure)
        #: where history() reads: the store when there is one, else the jobs' memory
        self._history: HistorySource = self._store if self._store is not None \
            else self._registry
        # the runner's events, and their subscribers: the traits, metrics, store, callbacks
        self._bus = bus = EventBus()
        bus.subscribe(announce_state, StateChanged)
        bus.subscribe(lambda event: self._metrics.record(event.job, event.record), RunFinished)
        if self._store is not None:
            bus.subscribe(keep_in(self._store), RunFinished)
        bus.subscribe(self._notifier.on_run, RunFinished)
        self._runner = Runner(
            self.clock, bus, max_workers=self.max_workers, history_size=self.history_size,
            capture_output=self.capture_output, stop_grace=self.stop_grace,
            precise=self.precise_wakeups, claimer=self._store,
            loop_block_limit=self.loop_block_limit, get_context=lambda: self.context,
            remote_context=PluginContext(services=PluginServices(background_jobs=None)),
        )
        # where jobs scheduled with executor= run (Dask backends are made on first use)
        self._backends = ExecutorBackends(self, self._lock, lambda: self._registry.closed)
        capture.install()
        _live_services.add(self)
        #: the store's durable jobs, seen and controlled from here (None without a store)
        self.durable: DurableJobs | None = None
        # the alerts (None without an alert URL), before the durable host's first catch-up
        self._alerts = start_alerts(
            urls=self.alert_urls, per_job=self.job_alert_urls,
            summary_interval=self.alert_summary_interval, clock=self.clock,
            where=self._origin, subscribe=bus.subscribe, store=self._store,
            durable=lambda: self.durable)
        if self._store is not None:
            self.durable = self._make_durable(self._store)

    def _make_durable(self, store: SQLiteStore) -> DurableJobs:
        """The durable jobs of ``store``; hosted here unless ``durable_jobs`` is off."""
        host = None
        if self.durable_jobs:
            runner = self._runner
            jobs = HostedJobs(
                host=self._host_definition, set_paused=self._set_hosted_paused,
                unhost=self._unhost, is_hosted=self._is_hosted, run=self._run_hosted,
                stop=self._stop_hosted, record_missed=self._record_missed)
            host = DurableHost(
                store.control, store, jobs, self.clock, runner.timer.call_later,
                runner.pool.dispatch, kind=self.host_kind, origin=self._origin,
                details=lambda: {**({"kernel_id": self.kernel_id} if self.kernel_id else {}),
                                 **self.host_details})
        durable = DurableJobs(store.control, self.clock.now, host=host,
                              run_here=lambda name: self._run_hosted(name, "manual", None),
                              stop_here=self._stop_hosted)
        if host is not None:
            self._bus.subscribe(lambda event: host.coalesced(event.job), FiresCoalesced)
            host.start()
        return durable

    @default("clock")
    def _default_clock(self) -> Clock:
        return SystemClock()

    @validate("clock")
    def _validate_clock(self, proposal: Any) -> Clock:
        clock: object = proposal.value
        if not isinstance(clock, Clock):  # (runtime_checkable: has now, monotonic and wait)
            raise TraitError(
                f"clock must be a Clock (with now(), monotonic() and wait(), such as "
                f"SystemClock() or mashroom_jobs.testing.ManualClock), got "
                f"{type(clock).__name__} {clock!r:.60}")
        return clock

    @default("log")
    def _default_log(self) -> Any:
        # one logger hierarchy; in a plain script a failure reaches stderr (Python's
        # last-resort handler) instead of traitlets' silent logger
        return logging.getLogger("mashroom_jobs")

    def _open_store(self) -> SQLiteStore | None:
        if self.store is None:
            return None
        return SQLiteStore(self.store, origin=self._origin,
                           retention_runs=self.store_retention_runs,
                           retention_days=self.store_retention_days,
                           busy_timeout=self.store_timeout, clock=self.clock)

    @observe("store_retention_runs", "store_retention_days")
    def _observe_retention(self, change: Any) -> None:
        store = self.__dict__.get("_store")  # None while traitlets' init sets config
        if store is not None:
            setattr(store, change.name.replace("store_", ""), change.new)
    @observe("dask_address", "dask_connect_timeout")
    def _observe_dask_settings(self, change: Any) -> None:
        backends = self.__dict__.get("_backends")  # None while traitlets' init sets config
        if backends is not None:
            backends.setting_changed(change.name, change.new)

    @observe("history_size", "capture_output", "stop_grace", "loop_block_limit")
    def _observe_runner_settings(self, change: Any) -> None:
        runner = self.__dict__.get("_runner")  # None while traitlets' init sets config
        if runner is None:
            return
        if change.name == "loop_block_limit":
            runner.loops.block_limit = change.new
        else:
            setattr(runner, change.name, change.new)

    # -- the API --

    def schedule_job(
        self,
        name: str,
        cron_schedule: str | CronSchedule | None,
        callback: Callable[..., Any],
        *,
        timezone: str | tzinfo | None = None,
        invoke_immediately: bool = False,
        overlap: Literal["skip", "allow"] = "skip",
        executor: Executor | Literal["dask"] | Any = None,
        timeout: float | None = None,
        retries: int = 0,
        retry_delay: float = 30.0,
        exclusive: bool = False,
        durable: bool = False,
        catchup: str | Mapping[str, Any] | CatchUp | None = None,
        paused: bool = False,
    ) -> BackgroundJob:
        """Schedule ``callback`` under ``name``; an existing job of that name is replaced.

        Parameters
        ----------
        name : str
            Unique, non-empty, one line of at most 200 characters.
        cron_schedule : str, CronSchedule or None
            Cron expression (5 fields, or 6 with seconds first, or a macro such
            as ``@hourly``; ``H`` is hashed from ``name``), or a parsed
            :class:`CronSchedule` (the job takes its zone). None or ``""``: run once,
            right away (blanks alone are an invalid expression).
        callback : callable, target or str
            A callable that takes the :class:`PluginContext` as its one required
            argument, or no required argument (it may be ``async``); or a target: a
            :class:`~mashroom_jobs.Command`, a :class:`~mashroom_jobs.FunctionRef`, a
            notebook, or a ``"package.module:function"`` string.
        timezone : str or tzinfo, optional
            Zone the expression is evaluated in; default: the service's ``timezone``.
        invoke_immediately : bool
            Also run once right away, then on schedule.
        overlap : {"skip", "allow"}
            A fire while the previous run is still going is skipped (and counted
            in ``skip_count``), or runs in parallel.
        executor : concurrent.futures.Executor, distributed.Client or "dask", optional
            Run this job's callback there instead of the service's threads. A
            ``ProcessPoolExecutor`` gets only the callback (it must be picklable); so
            does a Dask cluster: a ``distributed.Client``, or ``"dask"`` for the
            cluster of ``dask_address``.  There the callback's context has no
            ``shell`` and ``services.background_jobs`` is None.
        timeout : float, optional
            Seconds a run may take; then it is stopped (see :meth:`BackgroundJob.stop`)
            and recorded as ``timed out after N s``.
        retries : int
            Times a failed run (not a manual one) is retried, ``retry_delay`` seconds
            apart; a retry never overlaps the next scheduled fire.
        retry_delay : float
            Seconds before each retry, at most a week (604,800).
        exclusive : bool
            With a shared store: each fire runs in one process of those sharing it.
            A job on a Dask cluster claims its fires through the cluster's scheduler:
            each runs once among the kernels (on any machines) sharing that scheduler.
        durable : bool
            Keep the job in the job store as data, so it outlives this process: every
            process attached to the store hosts it (each fire runs once among them), and
            it is seen and controlled from any of them.  Its target must be one another
            process can name (a target, a ``"module:function"`` string, or a function of
            an importable module); it must have a cron expression and no ``executor``.
        catchup : {"latest", "skip", "all"}, dict or CatchUp, optional
            What a durable job does with the fires missed while no process ran it
            (default: run the latest once, record the others as missed; see
            :class:`~mashroom_jobs.durable.CatchUp`).
        paused : bool
            Schedule it paused (it fires once resumed).

        Returns
        -------
        BackgroundJob

        Raises
        ------
        TypeError, ValueError
            For a bad argument, naming it.
        InvalidCronExpressionError, InvalidTimezoneError
            For an invalid expression or zone. Nothing is replaced.
        TargetError, TargetUnavailableError
            For a target that is not valid, or cannot be found now (a module gone, a
            command not installed). Nothing is replaced.
        ServiceShutdownError
            After :meth:`shutdown`.
        """
        check_flag(durable, "durable")
        check_flag(paused, "paused")
        if durable:
            return self._schedule_durable(
                name, cron_schedule, callback, timezone=timezone, overlap=overlap,
                executor=executor, timeout=timeout, retries=retries, retry_delay=retry_delay,
                invoke_immediately=invoke_immediately, catchup=catchup, paused=paused)
        if catchup is not None:
            raise ValueError("catchup is a durable job's policy: give durable=True too")
        target = as_target(callback)
        if target is not None:
            callback = target.resolve()
        self._check_not_durable(name)
        spec = check_job(name, cron_schedule, callback, default_zone=self.timezone,
                         timezone=timezone, invoke_immediately=invoke_immediately,
                         overlap=overlap, executor=executor, where=self._backends.resolve,
                         timeout=timeout, retries=retries, retry_delay=retry_delay,
                         exclusive=exclusive)
        job = self._add(spec, target=target, durable=False, paused=paused)
        if spec.schedule is None or invoke_immediately:
            self._runner.invoke(job.runtime, "immediate")
        return job

    def _add(self, spec: JobSpec, *, target: Target | None, durable: bool,
             paused: bool) -> BackgroundJob:
        """Put a job in the registry (replacing the one of its name) and on the timer."""
        runner = self._runner
        runtime = JobRuntime(spec, runner.history_size)
        if paused:
            runtime.set_paused(True)
        job = runtime.owner = BackgroundJob(self, runtime, target=target, durable=durable)
        old = self._registry.put(runtime)
        # Outside the service lock: the job's lock, then the timer's (never the reverse).
        if old is not None:
            runner.deactivate(old)
        runner.add(runtime)
        return job

    def _check_not_durable(self, name: str) -> None:
        job = self._registry.get(name)
        if job is not None and job.durable:
            raise ValueError(
                f"{name!r} is a durable job hosted here: choose another name for an in-kernel "
                f"job, or change the durable one with schedule_job(..., durable=True)")

    # -- durable jobs --

    def _schedule_durable(self, name: str, cron_schedule: object, callback: object, *,
                          timezone: str | tzinfo | None, overlap: str, executor: object,
                          timeout: float | None, retries: int, retry_delay: float,
                          invoke_immediately: bool, catchup: object,
                          paused: bool) -> BackgroundJob:
        durable = self.durable
        if durable is None:
            raise ValueError(
                "durable jobs are kept in a job store: this service has none (set "
                "c.BackgroundJobService.store, or give store=PATH)")
        if durable.host is None:
            raise ValueError(
                "this service does not host durable jobs (durable_jobs=False): define it "
                "with service.durable.define(...) or `mashroom-jobs jobs add`")
        if executor is not None:
            raise ValueError("a durable job runs in whichever host claims its fire: it "
                             "cannot name an executor")
        if isinstance(cron_schedule, CronSchedule):
            timezone, cron_schedule = cron_schedule.zone, cron_schedule.expression
        target = durable_target(callback)
        target.resolve()  # a target missing now is an error here, not a parked job
        registered = self._registry.get(name)
        if registered is not None and not registered.durable:
            raise ValueError(f"{name!r} is an in-kernel job of this process: unschedule it "
                             f"first, or give the durable job another name")
        definition = JobDefinition.make(
            name, cron_schedule, target,  # type: ignore[arg-type]
            timezone=self.timezone if timezone is None else timezone, timeout=timeout,
            retries=retries, retry_delay=retry_delay, overlap=overlap, paused=paused,
            catchup=catchup if isinstance(catchup, CatchUp)
            else CatchUp.from_data(catchup))  # type: ignore[arg-type]
        durable.define(definition)
        job = self._registry.get(name)
        if job is None:  # (parked here meanwhile: say why)
            parked = durable.host.parked().get(name)
            raise TargetUnavailableError(parked.error if parked else f"{name!r} is not hosted")
        if invoke_immediately:
            self._runner.invoke(job.runtime, "immediate")
        return job

    def _host_definition(self, definition: JobDefinition) -> BackgroundJob:
        """(The durable host.)  Schedule ``definition`` here as an exclusive durable job."""
        registered = self._registry.get(definition.name)
        if registered is not None and not registered.durable:
            raise ValueError(f"the name {definition.name!r} is taken by an in-kernel job of "
                             f"this process")
        callback = definition.target.resolve()
        spec = check_job(
            definition.name, definition.schedule(), callback, default_zone=self.timezone,
            timezone=None, invoke_immediately=False,
            overlap=definition.overlap,  # type: ignore[arg-type]
            executor=None, where=self._backends.resolve, timeout=definition.timeout,
            retries=definition.retries, retry_delay=definition.retry_delay, exclusive=True,
            catch_up=True)
        return self._add(spec, target=definition.target, durable=True,
                         paused=definition.paused)

    def _hosted(self, name: str) -> JobRuntime | None:
        job = self._registry.get(name)
        return job.runtime if job is not None and job.durable else None

    def _is_hosted(self, name: str) -> bool:
        return self._hosted(name) is not None

    def _set_hosted_paused(self, name: str, paused: bool) -> None:
        runtime = self._hosted(name)
        if runtime is not None:
            (self._runner.pause if paused else self._runner.resume)(runtime)

    def _unhost(self, name: str) -> None:
        if self._hosted(name) is not None:
            runtime = self._registry.remove(name)
            if runtime is not None:
                self._runner.deactivate(runtime)

    def _run_hosted(self, name: str, trigger: str,
                    scheduled_for: datetime | None) -> Future[JobInvocation]:
        runtime = self._hosted(name)
        if runtime is None:
            raise JobNotScheduledError(f"durable job {name!r} is not hosted here")
        future: Future[JobInvocation] = Future()
        self._runner.invoke(runtime, trigger, future, scheduled_for)  # type: ignore[arg-type]
        return future

    def _stop_hosted(self, name: str) -> int:
        runtime = self._hosted(name)
        return self._runner.stop(runtime) if runtime is not None else 0

    def _record_missed(self, name: str, scheduled_for: datetime, reason: str) -> None:
        runtime = self._hosted(name)
        if runtime is None:
            return
        zone = runtime.spec.zone
        self._runner.record_fire(runtime, JobInvocation(
            timestamp=self.clock.now().astimezone(zone),
            scheduled_for=scheduled_for.astimezone(zone), trigger="schedule",
            execution_time_ms=0.0, outcome=Outcome.MISSED, error_message=reason, job=name))
        self._bus.publish(FireMissed(name, scheduled_for, reason, runtime.owner))

    def unschedule_job(self, name: str) -> None:
        """Remove the job ``name``: it fires no more. An unknown name does nothing.

        A run in progress finishes and is recorded on the (now inactive) job.  A durable
        job is removed from the store: every host stops hosting it.
        """
        if self.durable is not None and self._durable_here(name):
            self.durable.remove(name)
            return
        runtime = self._registry.remove(name)
        if runtime is not None:
            self._runner.deactivate(runtime)

    def is_durable(self, name: str) -> bool:
        """Whether ``name`` names a durable job: one hosted here, or only defined in the
        job store.

        A job of this process answers without reading the store; another name is looked
        up in the store (its definition only).

        Parameters
        ----------
        name : str
            The job's name.

        Returns
        -------
        bool
            True for a durable job; False for a job of this process that is not durable,
            for an unknown name, and for every name of a service without a store.

        Raises
        ------
        StoreUnavailableError
            When a name that is no job of this process is looked up and the store cannot
            be read.
        """
        if self.durable is None:
            return False
        registered = self._registry.get(name)
        if registered is not None:
            return registered.durable
        return self.durable.control.definition(name) is not None

    def _durable_here(self, job: BackgroundJob | str) -> bool:
        """Whether ``job`` names a durable job (hosted here, or only in the store); False
        when the store cannot be read."""
        if isinstance(job, BackgroundJob):
            return job.durable and job.active
        if not isinstance(job, str):
            return False
        try:
            return self.is_durable(job)
        except MashroomJobsError:
            return False

    def unschedule_all(self) -> None:
        """Remove every job."""
        for runtime in self._registry.clear():
            self._runner.deactivate(runtime)

    def get_job(self, name: str) -> BackgroundJob | None:
        """The job called ``name``, or None."""
        return self._registry.get(name)

    @property
    def jobs(self) -> tuple[BackgroundJob, ...]:
        """The scheduled jobs, in scheduling order (observable: ``observe(h, names="jobs")``)."""
        return self._registry.jobs

    def run_job(self, job: BackgroundJob | str) -> Future[JobInvocation]:
        """Run a job now (see :meth:`BackgroundJob.invoke_now`)."""
        runtime = self._registry.runtime_of(job, "run")
        future: Future[JobInvocation] = Future()
        self._runner.invoke(runtime, "manual", future)
        return future

    def pause_job(self, job: BackgroundJob | str) -> None:
        """Pause a job (see :meth:`BackgroundJob.pause`); a durable job in every host."""
        self._set_paused(job, True)

    def resume_job(self, job: BackgroundJob | str) -> None:
        """Resume a job (see :meth:`BackgroundJob.resume`); a durable job in every host."""
        self._set_paused(job, False)

    def _set_paused(self, job: BackgroundJob | str, paused: bool) -> None:
        if self._durable_here(job):
            assert self.durable is not None
            (self.durable.pause if paused else self.durable.resume)(_name_of(job))
            return
        runtime = self._registry.runtime_of(job, "pause" if paused else "resume")
        self._store_plugin_state(runtime, paused)
        (self._runner.pause if paused else self._runner.resume)(runtime)

    def _store_plugin_state(self, runtime: JobRuntime, paused: bool) -> None:
        """A plugin's job paused or resumed: kept in the store, so it holds in every
        process and after restarts (until reset: ``mashroom-jobs jobs reset NAME``)."""
        name = runtime.spec.name
        if self.durable is None or not any(
                record.job is runtime.owner for record in self.plugins):
            return
        self.durable.set_override(name, paused=paused)

    def stop_job(self, job: BackgroundJob | str) -> int:
        """Stop a job's runs in progress (see :meth:`BackgroundJob.stop`); a durable job's
        in every host (how many were asked here is returned)."""
        if self._durable_here(job):
            assert self.durable is not None
            return self.durable.stop(_name_of(job))
        runtime = self._registry.runtime_of(job, "stop", allow_inactive=True)
        return self._runner.stop(runtime)

    def on_failure(self, callback: FailureCallback) -> Callable[[], None]:
        """Call ``callback(job, invocation)`` once for each failed run that will not be
        retried, on the service's notifier thread.  Returns a function that removes it."""
        return self._notifier.add(callback)

    def subscribe(self, callback: Callable[[Any], object],
                  event_types: type | tuple[type, ...] | None = None) -> Subscription:
        """Call ``callback(event)`` for each event of ``event_types`` from now on.

        The events are past-tense records of :mod:`mashroom_jobs.core.events`:
        :class:`~mashroom_jobs.core.events.RunFinished` (a run was recorded),
        :class:`~mashroom_jobs.core.events.StateChanged` (a watched job's state),
        :class:`~mashroom_jobs.core.events.FireMissed`.  The callback runs on the thread
        that published (a worker, the timer): keep it quick; an exception it raises is
        logged.  Returns a :class:`~mashroom_jobs.core.events.Subscription`;
        ``subscription.unsubscribe()`` ends it.
        """
        return self._bus.subscribe(callback, event_types)

    def _set_last_failure(self, job: BackgroundJob, invocation: JobInvocation) -> None:
        self.set_trait("last_failure", (job, invocation))

    def history(self, name: str | None = None, limit: int = 50,
                since: datetime | None = None) -> list[JobInvocation]:
        """Recorded runs, newest first: of job ``name``, or of every job.

        With a store, the stored runs of every process sharing it (each with its
        ``origin``; this process's runs not yet written included), also of jobs no
        longer scheduled; fires another process ran appear once, as that process's run.
        Without a store, the in-memory history of the scheduled jobs.

        Raises
        ------
        StoreUnavailableError
            When the store cannot be read.
        """
        if name is not None and not isinstance(name, str):
            raise TypeError(f"name must be a job's name (a string) or None for every job, "
                            f"got {type(name).__name__} {name!r:.60}")
        check_count(limit, "limit")
        if since is not None and (not isinstance(since, datetime) or since.tzinfo is None):
            raise ValueError(f"since must be an aware datetime, got {since!r}")
        return self._history.history(name, limit, since)

    def history_version(self) -> object:
        """A token that changes whenever :meth:`history` may return something new because
        of another process (the store's SQLite ``data_version``) or of a run queued here
        for the store; None without a store (a job's own runs change its ``state``).
        Cheap: a panel compares it each second instead of reading the history again."""
        if self._store is None:
            return None
        try:
            return self._store.version()
        except MashroomJobsError:  # unreadable now: read (and report) at the next look
            return object()

    def wait_until_idle(self, timeout: float | None = None) -> bool:
        """Block until no run is queued or running; False if ``timeout`` passed first.

        Called from inside a job, it does not wait for that job's own run.
        """
        timeout = check_seconds(timeout, "timeout", allow_none=True)
        return self._runner.wait_idle(timeout, exclude=current_run())

    def run_coroutine(self, coroutine: Coroutine[Any, Any, T]) -> Future[T]:
        """Run a coroutine on the service's asyncio loop thread, where coroutine jobs run
        (an async plugin bootstrap is awaited there).  Returns a concurrent Future."""
        return self._runner.loops.submit(coroutine)

    @property
    def abandoned_runs(self) -> int:
        """Runs that ignored a stop or a timeout past ``stop_grace`` (their threads live on)."""
        return self._runner.abandoned_runs

    def shutdown(self, wait: bool = True, timeout: float = 5.0) -> tuple[BackgroundJob, ...]:
        """Stop the timer and run nothing new; with ``wait``, wait for running jobs
        up to ``timeout`` seconds in all.

        Jobs stay in :attr:`jobs` (inactive) for inspection.  Called from a job, it does
        not wait for that job.  Threads left by a job that does not end are daemon
        threads: interpreter exit never hangs.  Calling it twice is harmless.  The job
        store, if any, writes the runs still queued in what is left of ``timeout`` (at
        least 0.5 s), then closes; :meth:`history` still reads it.

        Returns
        -------
        tuple of BackgroundJob
            The jobs still running when it gave up waiting (their threads are abandoned).
        """
        check_flag(wait, "wait")
        timeout = check_seconds(timeout, "timeout") or 0.0
        deadline = time.monotonic() + timeout
        if self.durable is not None and self.durable.host is not None and \
                not self._registry.closed:
            self.durable.host.close()  # first: it would host again what is unscheduled
        runtimes = self._registry.close()
        if runtimes is None:
            return ()
        running = self._runner.stop_all(runtimes, wait, deadline, exclude=current_run())
        left = tuple(runtime.owner for runtime in running)
        for backend in self._backends.dask_backends():  # stop sending; close what it owns
            backend.close(max(0.0, deadline - time.monotonic()) if wait else 1.0)
        self._notifier.shutdown(wait, max(0.0, deadline - time.monotonic()))
        if self._alerts is not None:  # the last alerts, while the store can claim them
            self._alerts.close(max(0.5, deadline - time.monotonic()) if wait else 0.5)
        if self._store is not None:
            # the last runs are written even when the jobs took the whole timeout
            self._store.close(max(STORE_CLOSE_MINIMUM, deadline - time.monotonic()))
        capture.uninstall()
        _live_services.discard(self)
        return left  # type: ignore[return-value]

    @property
    def store_path(self) -> str | None:
        """The job store's file (absolute), or None when runs are kept in memory."""
        return self._store.path if self._store is not None else None

    @property
    def origin(self) -> str:
        """Who this process is in the job store: ``host pid N``, with ``kernel ID`` in a
        kernel."""
        return self._origin

    @property
    def is_shut_down(self) -> bool:
        """True after :meth:`shutdown`."""
        return self._registry.closed

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

    def now(self) -> datetime:
        """The service clock's current time (UTC): what fire times are computed from."""
        return self.clock.now()  # type: ignore[no-any-return]

    def threads(self) -> list[threading.Thread]:
        """Every thread this service started (its timer, workers, loop and notifier)."""
        threads = [*self._runner.threads(), *self._notifier.threads()]
        if self._alerts is not None:
            threads += self._alerts.threads()
        if self._store is not None:
            threads.append(self._store.thread)
        threads += [t for backend in self._backends.dask_backends() for t in backend.threads()]
        return [t for t in threads if t is not None]

    def timer_entries(self) -> int:
        """How many jobs the timer holds (scheduled, not paused): for tests."""
        return len(self._runner.timer)

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
        return self._metrics.snapshot([job.failing for job in self.jobs])

    # -- observing `jobs` (a property, announced by the registry: see there) --

    def observe(self, handler: Any, names: Any = All, type: Any = "change") -> None:
        super().observe(handler, names=names, type=type)
        if names_jobs(names):  # (traitlets observes before __init__: no registry yet)
            self._registry.watched(+1)

    def unobserve(self, handler: Any, names: Any = All, type: Any = "change") -> None:
        super().unobserve(handler, names=names, type=type)
        if names_jobs(names):
            self._registry.watched(-1)

    def unobserve_all(self, name: Any = All) -> None:
        super().unobserve_all(name)
        if names_jobs(name):
            self._registry.watched(None)

    # -- display --

    def __repr__(self) -> str:
        return format_jobs_table(self.jobs)

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        printer.text(repr(self) if not cycle else "BackgroundJobService(...)")


def _check_keywords(cls: type[BackgroundJobService], kwargs: dict[str, Any]) -> None:
    """A TypeError naming a keyword that is not a setting (traitlets would only warn, in a
    DeprecationWarning nobody sees, and ignore it)."""
    known = cls.class_trait_names()
    for key in kwargs:
        if key not in known:
            close = difflib.get_close_matches(key, known, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise TypeError(f"BackgroundJobService() got an unexpected keyword argument "
                            f"{key!r}{hint}")


def _name_of(job: BackgroundJob | str) -> str:
    return job if isinstance(job, str) else job.name


_live_services: weakref.WeakSet[BackgroundJobService] = weakref.WeakSet()


@atexit.register
def _shutdown_all() -> None:
    for service in list(_live_services):
        service.shutdown(wait=False)
