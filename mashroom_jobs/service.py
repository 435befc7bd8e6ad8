"""BackgroundJobService: the Mashroom background-jobs service, as a traitlets Configurable.

It composes the core (a :class:`~mashroom_jobs.core.scheduler.Timer`, a
:class:`~mashroom_jobs.core.runner.Runner`) and applies what the runner reports
to the jobs' ``state`` traits, the metrics and the failure callbacks.

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
import logging
import sys
import threading
import time
import weakref
from collections.abc import Callable, Coroutine
from concurrent.futures import Executor, Future, ProcessPoolExecutor
from datetime import datetime, tzinfo
from typing import Any, Literal, TypeVar

from traitlets import All, Bunch, Tuple, Unicode, default, observe
from traitlets import Any as AnyTrait

from .context import PluginContext, PluginServices
from .core import capture
from .core.arguments import check_choice, check_count, check_flag, check_name, check_seconds
from .core.callables import inspect_callback
from .core.clock import Clock, SystemClock
from .core.cron import CronSchedule, resolve_zone, shared_schedule
from .core.errors import InvalidCronExpressionError, JobNotScheduledError, ServiceShutdownError
from .core.records import JobInvocation
from .core.remote import ExecutorBackend, RemoteBackend
from .core.runner import Runner
from .core.runs import current_run
from .core.runtime import JobRuntime, JobSpec
from .core.scheduler import Timer
from .events import FailureCallback, FailureNotifier, JobsListener
from .job import BackgroundJob
from .metrics import MetricsRecorder
from .settings import ServiceSettings
from .store import SQLiteStore, make_origin
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

    def __init__(self, **kwargs: Any) -> None:
        # before traitlets' init, which observes (see observe())
        self._lock = threading.RLock()
        self._jobs_watchers = 0
        super().__init__(**kwargs)
        self._origin = make_origin(self.kernel_id)
        # first: a bad store raises StoreError before any thread or hook exists
        self._store = self._open_store()
        # name -> runtime, in scheduling order (a replacement keeps its place)
        self._runtimes: dict[str, JobRuntime] = {}
        self._jobs: tuple[BackgroundJob, ...] | None = ()  # None: rebuild on read
        self._shut_down = False
        self._context: PluginContext | None = None
        self._metrics = MetricsRecorder()
        self._notifier = FailureNotifier()
        self._notifier.add(self._set_last_failure)
        self._listener = JobsListener(self._metrics, self._notifier)
        self._timer = Timer(self.clock, around_fires=self._firing, precise=self.precise_wakeups)
        self._runner = Runner(
            self.clock, self._timer, self._listener, max_workers=self.max_workers,
            history_size=self.history_size, capture_output=self.capture_output,
            stop_grace=self.stop_grace, get_context=lambda: self.context,
        )
        self._runner.remote_context = PluginContext(
            services=PluginServices(background_jobs=None), shell=None
        )
        # On the real clock the timer hands each batch of fires to a pool worker ahead of
        # its time (see Timer.handoff): early enough to get the GIL twice (timer, then
        # worker) when the kernel's main thread is busy, so neither hand-off delays the
        # fire itself.  An injected clock is moved by hand and a test reads the outcome
        # right after: there the timer decides each fire itself, before advance() returns.
        self._runner.precise = self.precise_wakeups
        if isinstance(self.clock, SystemClock):
            self._timer.lead = 2 * sys.getswitchinterval() + 0.002
            self._timer.handoff = self._runner.handoff
        if self._store is not None:
            self._runner.claimer = self._store
            self._listener.sink = self._store
        # Dask backends (mashroom_jobs.dask_bridge, imported on first use): the one of
        # dask_address, and one per distributed.Client given as executor=
        self._dask: Any = None
        self._dask_clients: dict[int, Any] = {}
        capture.install()
        _live_services.add(self)

    @default("clock")
    def _default_clock(self) -> Clock:
        return SystemClock()

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
        backend = self.__dict__.get("_dask")  # None until a job used executor="dask"
        if backend is None:
            return
        if change.name == "dask_address":
            backend.set_address(change.new)
        else:
            backend.connect_timeout = change.new

    @observe("history_size", "capture_output", "stop_grace")
    def _observe_runner_settings(self, change: Any) -> None:
        runner = self.__dict__.get("_runner")  # None while traitlets' init sets config
        if runner is not None:
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
    ) -> BackgroundJob:
        """Schedule ``callback`` under ``name``; an existing job of that name is replaced.

        Parameters
        ----------
        name : str
            Unique, non-empty, one line of at most 200 characters.
        cron_schedule : str, CronSchedule or None
            Cron expression (5 fields, or 6 with seconds first, or a macro such
            as ``@hourly``; ``H`` is hashed from ``name``), or a parsed
            :class:`CronSchedule` (the job takes its zone). None or empty: run once,
            right away.
        callback : callable
            Takes the :class:`PluginContext` as its one required argument, or no
            required argument; may be ``async``.
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
            Seconds before each retry.
        exclusive : bool
            With a shared store: each fire runs in one process of those sharing it.
            A job on a Dask cluster claims its fires through the cluster's scheduler:
            each runs once among the kernels (on any machines) sharing that scheduler.

        Returns
        -------
        BackgroundJob

        Raises
        ------
        TypeError, ValueError
            For a bad argument, naming it.
        InvalidCronExpressionError, InvalidTimezoneError
            For an invalid expression or zone. Nothing is replaced.
        ServiceShutdownError
            After :meth:`shutdown`.
        """
        check_name(name)
        kind = inspect_callback(callback)
        check_choice(overlap, "overlap", ("skip", "allow"))
        check_flag(invoke_immediately, "invoke_immediately")
        check_flag(exclusive, "exclusive")
        timeout = check_seconds(timeout, "timeout", low=0.001, allow_none=True)
        check_count(retries, "retries")
        retry_delay = check_seconds(retry_delay, "retry_delay") or 0.0
        schedule, zone = self._schedule_of(cron_schedule, timezone, name)
        local, remote = self._executor_of(executor)
        spec = JobSpec(name, callback, kind, schedule, zone, overlap, local, remote,
                       timeout, retries, retry_delay, exclusive)
        runtime = JobRuntime(spec, self._runner)
        job = runtime.owner = BackgroundJob(self, runtime)
        with self._lock:
            if self._shut_down:
                raise ServiceShutdownError(f"cannot schedule {name!r}: the service was shut down")
            old_jobs = self.jobs if self._jobs_watchers else None
            old = self._runtimes.get(name)
            self._runtimes[name] = runtime
            self._jobs = None
            if old_jobs is not None:
                self._announce_jobs(old_jobs)
        # Outside the service lock: the job's lock, then the timer's (never the reverse).
        if old is not None:
            old.deactivate()
        runtime.start_timer()
        if schedule is None or invoke_immediately:
            runtime.invoke("immediate")
        return job

    def _schedule_of(self, cron_schedule: object, timezone: str | tzinfo | None,
                     name: str) -> tuple[CronSchedule | None, tzinfo]:
        if isinstance(cron_schedule, CronSchedule):
            if timezone is not None and resolve_zone(timezone) != cron_schedule.zone:
                raise ValueError(
                    f"timezone={timezone!r} contradicts the CronSchedule's zone "
                    f"{cron_schedule.timezone!r}: give the zone to CronSchedule only"
                )
            return cron_schedule, cron_schedule.zone
        zone = resolve_zone(self.timezone if timezone is None else timezone)
        if cron_schedule is None or (isinstance(cron_schedule, str) and not cron_schedule.strip()):
            return None, zone
        if isinstance(cron_schedule, str):
            return shared_schedule(cron_schedule, zone, name=name), zone  # name: for H
        raise InvalidCronExpressionError(
            cron_schedule,
            f"expected a string, a CronSchedule or None, got {type(cron_schedule).__name__}",
        )

    def _executor_of(self, executor: object) -> tuple[Executor | None, RemoteBackend | None]:
        if executor is None:
            return None, None
        if isinstance(executor, str):
            if executor == "dask":
                return None, self._dask_backend()
            raise ValueError(
                f"executor must be an Executor, a distributed.Client or 'dask', got {executor!r}"
            )
        if isinstance(executor, ProcessPoolExecutor):
            return None, ExecutorBackend(executor)
        from .dask_bridge import is_dask_client

        if is_dask_client(executor):
            return None, self._client_backend(executor)
        if isinstance(executor, Executor):
            return executor, None
        raise TypeError(
            f"executor must be a concurrent.futures.Executor, a distributed.Client or 'dask', "
            f"got {type(executor).__name__}"
        )

    def _dask_backend(self) -> RemoteBackend:
        """The backend of ``dask_address`` (made, and connecting, on first use)."""
        from .dask_bridge import DaskBackend, check_distributed

        if not self.dask_address:
            raise ValueError(
                "executor='dask' needs a cluster: set c.BackgroundJobService.dask_address "
                "to 'tcp://host:8786' or 'local', or pass a distributed.Client as executor"
            )
        check_distributed("executor='dask'")
        with self._lock:
            if self._shut_down:
                raise ServiceShutdownError("cannot use Dask: the service was shut down")
            if self._dask is None:
                self._dask = DaskBackend(address=self.dask_address,
                                         connect_timeout=self.dask_connect_timeout)
                self._dask.connect_soon()
            return self._dask  # type: ignore[no-any-return]

    def _client_backend(self, client: Any) -> RemoteBackend:
        """One backend (one sender thread, one claimer) per distributed.Client."""
        from .dask_bridge import DaskBackend

        with self._lock:
            if self._shut_down:
                raise ServiceShutdownError("cannot use Dask: the service was shut down")
            backend = self._dask_clients.get(id(client))
            if backend is None or backend.client is not client:
                backend = self._dask_clients[id(client)] = DaskBackend(client)
            return backend  # type: ignore[no-any-return]

    def unschedule_job(self, name: str) -> None:
        """Remove the job ``name``: it fires no more. An unknown name does nothing.

        A run in progress finishes and is recorded on the (now inactive) job.
        """
        with self._lock:
            if name not in self._runtimes:
                return
            old_jobs = self.jobs if self._jobs_watchers else None
            runtime = self._runtimes.pop(name)
            self._jobs = None
            if old_jobs is not None:
                self._announce_jobs(old_jobs)
        runtime.deactivate()

    def unschedule_all(self) -> None:
        """Remove every job."""
        with self._lock:
            old_jobs = self.jobs
            removed = list(self._runtimes.values())
            self._runtimes.clear()
            self._jobs = ()
            if self._jobs_watchers:
                self._announce_jobs(old_jobs)
        for runtime in removed:
            runtime.deactivate()

    def get_job(self, name: str) -> BackgroundJob | None:
        """The job called ``name``, or None."""
        runtime = self._runtimes.get(name)
        return None if runtime is None else runtime.owner  # type: ignore[return-value]

    @property
    def jobs(self) -> tuple[BackgroundJob, ...]:
        """The scheduled jobs, in scheduling order (observable: ``observe(h, names="jobs")``)."""
        jobs = self._jobs
        if jobs is None:
            with self._lock:
                jobs = self._jobs = tuple(r.owner for r in self._runtimes.values())  # type: ignore[misc]
        return jobs

    def run_job(self, job: BackgroundJob | str) -> Future[JobInvocation]:
        """Run a job now (see :meth:`BackgroundJob.invoke_now`)."""
        runtime = self._runtime_of(job, "run")
        future: Future[JobInvocation] = Future()
        runtime.invoke("manual", future)
        return future

    def pause_job(self, job: BackgroundJob | str) -> None:
        """Pause a job (see :meth:`BackgroundJob.pause`)."""
        self._runtime_of(job, "pause").pause()

    def resume_job(self, job: BackgroundJob | str) -> None:
        """Resume a job (see :meth:`BackgroundJob.resume`)."""
        self._runtime_of(job, "resume").resume()

    def stop_job(self, job: BackgroundJob | str) -> int:
        """Stop a job's runs in progress (see :meth:`BackgroundJob.stop`)."""
        runtime = self._runtime_of(job, "stop", allow_inactive=True)
        return self._runner.stop(runtime)

    def _runtime_of(self, job: BackgroundJob | str, action: str,
                    allow_inactive: bool = False) -> JobRuntime:
        if isinstance(job, str):
            runtime = self._runtimes.get(job)
            if runtime is None:
                raise JobNotScheduledError(f"cannot {action} job {job!r}: no such job")
        elif isinstance(job, BackgroundJob):
            runtime = job.runtime  # (an unscheduled job's runs may still be going: stop)
        else:
            raise TypeError(f"job must be a BackgroundJob or a name, got {type(job).__name__}")
        if not allow_inactive:
            if self._shut_down:
                raise ServiceShutdownError(
                    f"cannot {action} job {runtime.spec.name!r}: the service was shut down"
                )
            runtime.check_active(action)
        return runtime

    def on_failure(self, callback: FailureCallback) -> Callable[[], None]:
        """Call ``callback(job, invocation)`` once for each failed run that will not be
        retried, on the service's notifier thread.  Returns a function that removes it."""
        return self._notifier.add(callback)

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
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 0:
            raise ValueError(f"limit must be a whole number >= 0, got {limit!r}")
        if since is not None and (not isinstance(since, datetime) or since.tzinfo is None):
            raise ValueError(f"since must be an aware datetime, got {since!r}")
        if self._store is not None:
            return self._store.history(name, limit, since)
        runtimes = list(self._runtimes.values())
        if name is not None:
            runtimes = [r for r in runtimes if r.spec.name == name]
        runs = [inv for r in runtimes for inv in r.history
                if since is None or inv.timestamp >= since]
        runs.sort(key=lambda inv: inv.timestamp, reverse=True)
        return runs[:limit]

    def wait_until_idle(self, timeout: float | None = None) -> bool:
        """Block until no run is queued or running; False if ``timeout`` passed first.

        Called from inside a job, it does not wait for that job's own run.
        """
        return self._runner.wait_idle(timeout, exclude=current_run())

    def run_coroutine(self, coroutine: Coroutine[Any, Any, T]) -> Future[T]:
        """Run a coroutine on the service's asyncio loop thread, where coroutine jobs run
        (an async plugin bootstrap is awaited there).  Returns a concurrent Future."""
        return self._runner.loop.submit(coroutine)

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
        deadline = time.monotonic() + max(0.0, timeout)
        with self._lock:
            if self._shut_down:
                return ()
            self._shut_down = True
            runtimes = list(self._runtimes.values())
        self._timer.stop(max(0.0, deadline - time.monotonic()))
        for runtime in runtimes:
            runtime.deactivate()
        if wait:
            self.wait_until_idle(max(0.0, deadline - time.monotonic()))
        left = tuple(r.owner for r in self._runner.running(exclude=current_run()))
        self._runner.shutdown(wait, max(0.0, deadline - time.monotonic()))
        for backend in self._dask_backends():  # stop sending; close what the service owns
            backend.close(max(0.0, deadline - time.monotonic()) if wait else 1.0)
        self._notifier.shutdown(wait, max(0.0, deadline - time.monotonic()))
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

    def now(self) -> datetime:
        """The service clock's current time (UTC): what fire times are computed from."""
        return self.clock.now()  # type: ignore[no-any-return]

    def threads(self) -> list[threading.Thread]:
        """Every thread this service started (its timer, workers, loop and notifier)."""
        threads = [self._timer.thread, *self._runner.threads(), *self._notifier.threads()]
        if self._store is not None:
            threads.append(self._store.thread)
        threads += [t for backend in self._dask_backends() for t in backend.threads()]
        return [t for t in threads if t is not None]

    def timer_entries(self) -> int:
        """How many jobs the timer holds (scheduled, not paused): for tests."""
        return len(self._timer)

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

    # -- observing `jobs` (a property: 10,000 schedules must not copy a growing tuple) --

    def observe(self, handler: Any, names: Any = All, type: Any = "change") -> None:
        super().observe(handler, names=names, type=type)
        if _names_jobs(names):
            with self._lock:
                self._jobs_watchers += 1

    def unobserve(self, handler: Any, names: Any = All, type: Any = "change") -> None:
        super().unobserve(handler, names=names, type=type)
        if _names_jobs(names):
            with self._lock:
                self._jobs_watchers = max(0, self._jobs_watchers - 1)

    def unobserve_all(self, name: Any = All) -> None:
        super().unobserve_all(name)
        if _names_jobs(name):
            with self._lock:
                self._jobs_watchers = 0

    def _announce_jobs(self, old: tuple[BackgroundJob, ...]) -> None:
        """Tell the observers of ``jobs`` (under the lock, so in order)."""
        change = Bunch(name="jobs", old=old, new=self.jobs, owner=self, type="change")
        try:
            self.notify_change(change)
        except Exception:  # an observer raised: the change itself is done
            self.log.exception("an observer of BackgroundJobService.jobs raised")

    # -- internals ----------------------------------------------------------------------

    def _dask_backends(self) -> list[Any]:
        with self._lock:
            backends = list(self._dask_clients.values())
            if self._dask is not None:
                backends.append(self._dask)
        return backends

    def _firing(self) -> Any:
        """Around each batch of fires: run bookkeeping waits until all have been handed
        to the pool (see DaemonThreadPool.hold_deferred)."""
        return self._runner.pool.hold_deferred()

    # -- display --

    def __repr__(self) -> str:
        return format_jobs_table(self.jobs)

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        printer.text(repr(self) if not cycle else "BackgroundJobService(...)")


def _names_jobs(names: Any) -> bool:
    if names is All:
        return True
    if isinstance(names, str):
        return names == "jobs"
    return "jobs" in names or All in names


_live_services: weakref.WeakSet[BackgroundJobService] = weakref.WeakSet()


@atexit.register
def _shutdown_all() -> None:
    for service in list(_live_services):
        service.shutdown(wait=False)
