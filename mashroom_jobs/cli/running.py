"""``mashroom-jobs run`` and ``mashroom-jobs plugins``: the installed plugins outside
Jupyter, run on schedule until a signal, or listed with their schedules."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .history import default_store
from .options import UsageFailure

if TYPE_CHECKING:
    from ..job import BackgroundJob
    from ..service import BackgroundJobService

log = logging.getLogger("mashroom_jobs.cli")

UNSET: Any = object()


def make_service(config_file: Path | None, store: Any = UNSET,
                 **settings: Any) -> BackgroundJobService:
    """A service with the config file's settings; ``store`` (a path or None) overrides the
    config's store, and without either ``run`` uses the default store."""
    from ..core.errors import StoreError
    from ..service import BackgroundJobService

    config = None
    if config_file is not None:
        if not config_file.is_file():
            raise UsageFailure(f"config file {str(config_file)!r} does not exist")
        from traitlets.config.loader import PyFileConfigLoader

        try:
            config = PyFileConfigLoader(config_file.name, str(config_file.parent)).load_config()
        except Exception as exc:
            raise UsageFailure(f"config file {str(config_file)!r}: {exc}") from None
    kwargs: dict[str, Any] = dict(settings)
    if store is not UNSET:
        kwargs["store"] = store
    try:
        return BackgroundJobService(**kwargs) if config is None \
            else BackgroundJobService(config=config, **kwargs)
    except StoreError as exc:
        raise UsageFailure(f"{exc} (--store none keeps runs in memory)") from None
    except Exception as exc:
        raise UsageFailure(f"config file {str(config_file)!r}: {exc}") from None


def configures_store(config_file: Path | None) -> bool:
    """Whether the config file sets c.BackgroundJobService.store (read again by make_service)."""
    if config_file is None or not config_file.is_file():
        return False
    from traitlets.config.loader import PyFileConfigLoader

    try:
        config = PyFileConfigLoader(config_file.name, str(config_file.parent)).load_config()
    except Exception:
        return False  # make_service says what is wrong with it
    from ..settings import store_configured

    return store_configured(config)


def plugins_command(args: argparse.Namespace) -> int:
    """List the plugins; exit status 1 when one cannot be loaded or the config names one
    that is not installed (so that a CI check can use it)."""
    from ..plugins import (
        discover,
        format_plugins_table,
        inspect_plugin,
        load_plugin,
        unknown_plugin_names,
    )

    service = make_service(args.config, durable_jobs=False)  # a listing hosts nothing
    try:
        records: list[Any] = []
        entry_points = discover()
        for entry_point in entry_points:
            if entry_point.name in service.disabled_plugins:
                # the record the service makes: nothing imported, but where the plugin is from
                records.append(load_plugin(service, entry_point))
                continue
            override = service.plugin_config.get(entry_point.name) or {}
            records.append(
                inspect_plugin(entry_point, override, default_timezone=service.timezone)
            )
        print(format_plugins_table(records, datetime.now(service.zone), fire_times=3))
        problems = unknown_plugin_names(service, entry_points)
    finally:
        service.shutdown(wait=False)
    for problem in problems:
        print(f"mashroom-jobs plugins: {problem}", file=sys.stderr)
    failed = [r.name for r in records if r.error]
    if failed:
        print(f"mashroom-jobs plugins: {len(failed)} plugin{'s' if len(failed) != 1 else ''} "
              f"cannot be loaded: {', '.join(map(repr, failed))}", file=sys.stderr)
    return 1 if failed or problems else 0


# --- run ----------------------------------------------------------------------------------


def run_command(args: argparse.Namespace) -> int:
    logging.basicConfig(
        level=logging.INFO, stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    # Every flag is checked before any plugin is imported or bootstrapped (the parser checked
    # the numbers): a usage error must not come after minutes of plugin start-up.
    collector_factory: Callable[[BackgroundJobService], Any] | None = None
    if args.metrics_port is not None:
        try:
            import prometheus_client  # noqa: F401

            from ..metrics import prometheus_collector

            collector_factory = prometheus_collector
        except ImportError:
            raise UsageFailure(
                "--metrics-port needs prometheus-client: pip install 'mashroom-jobs[metrics]'"
            ) from None
    if args.dask is not None:
        from ..dask_bridge import check_distributed, parse_dask_address

        try:
            if not parse_dask_address(args.dask):
                raise ValueError("--dask needs an address, got ''")
            check_distributed("--dask")
        except (ValueError, ImportError) as exc:
            raise UsageFailure(str(exc)) from None

    store: Any = args.store if "store" in getattr(args, "_given", {}) else UNSET
    if store is UNSET and not configures_store(args.config):
        store = default_store()  # the kernels' store, so plugins' fires run once in all
    service = make_service(args.config, store, host_kind="run")
    server = None
    serving = False
    stop = threading.Event()
    received: list[str] = []
    previous: dict[signal.Signals, Any] = {}

    def on_signal(signum: int, frame: Any) -> None:
        received.append(signal.Signals(signum).name)
        stop.set()

    try:
        if collector_factory is not None:
            # bind now: a port in use or a bad host is a usage error, found before loading
            server = _bind_metrics(collector_factory(service), args.metrics_host,
                                   args.metrics_port)
        service.observe(_log_new_jobs, names="jobs")
        previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
        from ..plugins import PluginLoader, loading

        entry_points = loading.discover()
        if args.dask is not None:  # every plugin's job goes to the cluster
            service.dask_address = args.dask
            config = dict(service.plugin_config)
            for entry_point in entry_points:
                config[entry_point.name] = {**config.get(entry_point.name, {}),
                                            "executor": "dask"}
            service.plugin_config = config
            quiet_distributed()
            log.info("running the jobs on the Dask cluster at %s", args.dask)
        records = PluginLoader(service).load(entry_points)
        loaded = [r for r in records if r.state == "loaded"]
        hosting = service.durable is not None and service.durable.host is not None
        if not loaded and not hosting:
            log.error("%s, and there is no job store to host durable jobs from",
                      _nothing_loaded(records))
            return 1
        if not loaded:
            log.warning("%s: hosting the job store's durable jobs only", _nothing_loaded(records))
        if server is not None:
            threading.Thread(target=server.serve_forever, name="mashroom-jobs-metrics",
                             daemon=True).start()
            serving = True
            log.info("serving metrics on http://%s:%d/metrics", args.metrics_host,
                     server.server_port)
        if loaded:
            log.info("running %d background job%s: %s; stop with Ctrl-C or SIGTERM",
                     len(loaded), "s" if len(loaded) != 1 else "",
                     ", ".join(repr(r.name) for r in loaded))
        if hosting:
            assert service.durable is not None and service.durable.host is not None
            hosted, parked = service.durable.host.hosted(), service.durable.host.parked()
            log.info("hosting %d durable job%s%s%s", len(hosted), "s" if len(hosted) != 1 else "",
                     f": {', '.join(map(repr, hosted))}" if hosted else "",
                     f" ({len(parked)} parked: {', '.join(map(repr, parked))})" if parked else "")
        log.info("job store: %s", service.store_path or "none (runs are kept in memory)")
        while not stop.wait(1.0):
            pass
        log.info("received %s: stopping (waiting up to %.1f s for running jobs)",
                 received[0] if received else "a signal", args.shutdown_timeout)
        return 0
    finally:
        service.unschedule_all()
        for job in service.shutdown(wait=True, timeout=args.shutdown_timeout):
            log.warning("job %r was still running after --shutdown-timeout %g s: it is "
                        "abandoned (its run is not recorded; its thread ends with this process)",
                        job.name, args.shutdown_timeout)
        if server is not None:
            if serving:  # shutdown() waits for serve_forever() to return: only when it runs
                server.shutdown()
            server.server_close()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        if received:
            log.info("stopped")


def quiet_distributed() -> None:
    """Keep distributed's INFO records out of ``run``'s log: with the root logger
    configured, a LocalCluster's start, its workers' registrations and their closing
    were 34 INFO lines in 12 s.  Its warnings and errors still show."""
    import distributed  # noqa: F401 (its import sets its loggers' levels: first, then ours)

    logger = logging.getLogger("distributed")
    if logger.getEffectiveLevel() < logging.WARNING:
        logger.setLevel(logging.WARNING)


def _nothing_loaded(records: Sequence[Any]) -> str:
    """Why ``run`` has nothing to run: no plugin installed, or each one failed or disabled."""
    from ..plugins import ENTRY_POINT_GROUP

    if not records:
        return (f"no background-job plugin is installed "
                f"(none in the entry-point group {ENTRY_POINT_GROUP!r})")
    failed = sum(r.state == "failed" for r in records)
    disabled = [r.name for r in records if r.state == "disabled"]
    text = (f"no background-job plugin could be loaded: {len(records)} installed, "
            f"{failed} failed, {len(disabled)} disabled")
    if disabled:
        text += f" ({', '.join(map(repr, disabled))}, by c.BackgroundJobService.disabled_plugins)"
    return text


def _log_new_jobs(change: Any) -> None:
    old = set(change.old or ())
    for job in change.new:
        if job not in old:
            job.observe(_log_run, names="state")


def _log_run(change: Any) -> None:
    job: BackgroundJob = change.owner
    invocation = change.new.last_invocation
    if invocation is None or invocation == getattr(change.old, "last_invocation", None):
        return
    if invocation.elsewhere:
        log.info("job %r: the fire at %s ran elsewhere, in %s", job.name,
                 invocation.scheduled_for, invocation.origin)
        return
    where = f" on {invocation.worker}" if invocation.worker else ""
    if invocation.success:
        log.info("job %r ran in %.1f ms (%s)%s", job.name, invocation.execution_time_ms,
                 invocation.trigger, where)
    else:
        log.error("job %r failed in %.1f ms (%s)%s: %s", job.name,
                  invocation.execution_time_ms, invocation.trigger, where,
                  invocation.error_message)
    for line in invocation.output.splitlines():
        log.info("job %r output: %s", job.name, line)


def _bind_metrics(collector: Any, host: str, port: int) -> Any:
    """A server for ``/metrics``, bound but not yet serving (``serve_forever()`` starts it)."""
    from wsgiref.simple_server import WSGIRequestHandler, make_server

    from prometheus_client import CollectorRegistry, make_wsgi_app

    class QuietHandler(WSGIRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass  # one line per scrape would drown the job log

    registry = CollectorRegistry()
    registry.register(collector)
    try:
        return make_server(host, port, make_wsgi_app(registry), handler_class=QuietHandler)
    except (OSError, ValueError) as exc:  # in use, no permission, unknown host, bad IDNA name
        raise UsageFailure(f"cannot serve metrics on {host}:{port}: {exc}") from None
