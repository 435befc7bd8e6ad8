"""The ``mashroom-jobs`` command: run plugins without Jupyter, list them, check cron
expressions, and enable the extension at kernel start.

Exit codes: 0 success; 1 ``run`` could not load any plugin; 2 bad usage (an invalid
expression, zone or date, a missing optional dependency).
"""

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

if TYPE_CHECKING:
    from .job import BackgroundJob
    from .service import BackgroundJobService

__all__ = ["main"]

log = logging.getLogger("mashroom_jobs.cli")

AUTOLOAD_BEGIN = "# >>> mashroom-jobs autoload >>>"
AUTOLOAD_END = "# <<< mashroom-jobs autoload <<<"
AUTOLOAD_BLOCK = (
    f"{AUTOLOAD_BEGIN}\n"
    "# Written by `mashroom-jobs autoload enable`; `mashroom-jobs autoload disable` removes it.\n"
    'c.InteractiveShellApp.extensions.append("mashroom_jobs")\n'
    f"{AUTOLOAD_END}\n"
)


class UsageFailure(Exception):
    """A user error: printed on stderr as one line, exit status 2."""


# --- the parser ---------------------------------------------------------------------


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mashroom-jobs",
        description="Cron background jobs: run background-job plugins, inspect cron expressions.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = commands.add_parser(
        "run", help="run every installed background-job plugin until SIGINT/SIGTERM",
        description="Bootstrap every installed background-job plugin and run its job on "
                    "schedule, logging each run, until SIGINT or SIGTERM.",
    )
    run.add_argument("--metrics-port", type=int, metavar="PORT",
                     help="serve Prometheus metrics on this port (needs prometheus-client)")
    run.add_argument("--metrics-host", default="127.0.0.1", metavar="HOST",
                     help="address the metrics server listens on (default: %(default)s)")
    run.add_argument("--shutdown-timeout", type=float, default=10.0, metavar="SECONDS",
                     help="how long to wait for running jobs when stopping (default: %(default)s)")
    run.add_argument("--config", metavar="FILE", type=Path,
                     help="a traitlets config file, e.g. with c.BackgroundJobService.plugin_config")
    run.add_argument("--dask", metavar="ADDRESS",
                     help="run the plugins' jobs on this Dask cluster: a scheduler address "
                          "(tcp://host:8786) or 'local' for a LocalCluster (needs distributed)")

    plugins = commands.add_parser(
        "plugins", help="list installed plugins, their schedules and load errors",
        description="List installed background-job plugins with their effective schedule, "
                    "its description and next fire times, and any load error. "
                    "Plugins are imported, not bootstrapped.",
    )
    plugins.add_argument("--config", metavar="FILE", type=Path,
                         help="a traitlets config file (plugin_config, disabled_plugins)")

    cron = commands.add_parser(
        "cron", help="validate and describe a cron expression, print its next fire times",
        description="Validate a cron expression, describe it, and print its next fire times.",
    )
    cron.add_argument("expression", metavar="EXPR",
                      help='the expression, quoted: "*/5 * * * *"')
    cron.add_argument("--tz", metavar="ZONE", default=None,
                      help="IANA time zone (default: the local zone)")
    cron.add_argument("-n", type=int, default=5, metavar="N",
                      help="how many fire times (default: %(default)s)")
    cron.add_argument("--from", dest="start", metavar="ISO-DATETIME",
                      help="list fire times after this time (default: now)")

    autoload = commands.add_parser(
        "autoload", help="load the extension at every kernel start (or stop doing so)",
        description="Add or remove mashroom_jobs in c.InteractiveShellApp.extensions of the "
                    "IPython profile's ipython_kernel_config.py.",
    )
    autoload.add_argument("action", choices=["enable", "disable"])
    autoload.add_argument("--profile", default="default", metavar="NAME",
                          help="IPython profile (default: %(default)s)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``mashroom-jobs`` command.

    Parameters
    ----------
    argv : sequence of str, optional
        The arguments (default: ``sys.argv[1:]``).

    Returns
    -------
    int
        The exit status.
    """
    args = _parser().parse_args(argv)
    commands = {"run": _run, "plugins": _plugins, "cron": _cron, "autoload": _autoload}
    try:
        return commands[args.command](args)
    except UsageFailure as exc:
        print(f"mashroom-jobs {args.command}: {exc}", file=sys.stderr)
        return 2


# --- cron ---------------------------------------------------------------------------------


def _cron(args: argparse.Namespace) -> int:
    from .core.cron import CronSchedule, resolve_zone, zone_name
    from .core.errors import MashroomJobsError

    if args.n < 1:
        raise UsageFailure(f"-n must be at least 1, got {args.n}")
    try:
        zone = resolve_zone(args.tz)
        schedule = CronSchedule(args.expression, zone)
    except MashroomJobsError as exc:
        raise UsageFailure(str(exc)) from None
    if args.start is None:
        start = datetime.now(zone)
    else:
        try:
            start = datetime.fromisoformat(args.start)
        except ValueError:
            raise UsageFailure(
                f"invalid --from {args.start!r}: expected an ISO date-time "
                f"such as 2026-03-29T00:00 or 2026-03-29T00:00+01:00"
            ) from None
        if start.tzinfo is None:  # a wall-clock time in the expression's zone
            start = start.replace(tzinfo=zone)
    times = schedule.fire_times(start, args.n)
    print(f"{schedule.expression}: {schedule.describe()}")
    print(f"Next {len(times)} fire time{'s' if len(times) != 1 else ''} "
          f"after {start.isoformat(timespec='seconds')} ({zone_name(zone)}):")
    for when in times:
        print(f"  {when.isoformat()}  {when:%a}")
    return 0


# --- plugins ------------------------------------------------------------------------------


def _service(config_file: Path | None) -> BackgroundJobService:
    from .service import BackgroundJobService

    if config_file is None:
        return BackgroundJobService()
    if not config_file.is_file():
        raise UsageFailure(f"config file {str(config_file)!r} does not exist")
    from traitlets.config.loader import PyFileConfigLoader

    try:
        config = PyFileConfigLoader(config_file.name, str(config_file.parent)).load_config()
        return BackgroundJobService(config=config)
    except Exception as exc:
        raise UsageFailure(f"config file {str(config_file)!r}: {exc}") from None


def _plugins(args: argparse.Namespace) -> int:
    from .plugins import disabled_record, discover, format_plugins_table, inspect_plugin

    service = _service(args.config)
    try:
        records: list[Any] = []
        for entry_point in discover():
            override = service.plugin_config.get(entry_point.name) or {}
            if entry_point.name in service.disabled_plugins:
                records.append(disabled_record(entry_point, override))
                continue
            records.append(
                inspect_plugin(entry_point, override, default_timezone=service.timezone)
            )
        print(format_plugins_table(records, datetime.now(service.zone), fire_times=3))
    finally:
        service.shutdown(wait=False)
    return 0


# --- run ----------------------------------------------------------------------------------


def _run(args: argparse.Namespace) -> int:
    logging.basicConfig(
        level=logging.INFO, stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    collector_factory: Callable[[BackgroundJobService], Any] | None = None
    if args.metrics_port is not None:
        # check before loading anything: a missing extra is a usage error, not a crash later
        try:
            import prometheus_client  # noqa: F401

            from .metrics import prometheus_collector

            collector_factory = prometheus_collector
        except ImportError:
            raise UsageFailure(
                "--metrics-port needs prometheus-client: pip install 'mashroom-jobs[metrics]'"
            ) from None
    if args.shutdown_timeout < 0:
        raise UsageFailure(f"--shutdown-timeout must be >= 0, got {args.shutdown_timeout}")
    if args.dask is not None:
        from .dask_bridge import check_distributed, parse_dask_address

        try:
            if not parse_dask_address(args.dask):
                raise ValueError("--dask needs an address, got ''")
            check_distributed("--dask")
        except (ValueError, ImportError) as exc:
            raise UsageFailure(str(exc)) from None

    service = _service(args.config)
    service.observe(_log_new_jobs, names="jobs")
    stop = threading.Event()
    received: list[str] = []

    def on_signal(signum: int, frame: Any) -> None:
        received.append(signal.Signals(signum).name)
        stop.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    server = None
    try:
        from .plugins import PluginLoader, discover

        entry_points = discover()
        if args.dask is not None:  # every plugin's job goes to the cluster
            service.dask_address = args.dask
            config = dict(service.plugin_config)
            for entry_point in entry_points:
                config[entry_point.name] = {**config.get(entry_point.name, {}),
                                            "executor": "dask"}
            service.plugin_config = config
            log.info("running the jobs on the Dask cluster at %s", args.dask)
        records = PluginLoader(service).load(entry_points)
        loaded = [r for r in records if r.state == "loaded"]
        if not loaded:
            log.error("no background-job plugin could be loaded (%d installed, %d failed)",
                      len(records), sum(r.state == "failed" for r in records))
            return 1
        if collector_factory is not None:
            server = _serve_metrics(collector_factory(service), args.metrics_host,
                                    args.metrics_port)
        log.info("running %d background job%s: %s; stop with Ctrl-C or SIGTERM",
                 len(loaded), "s" if len(loaded) != 1 else "",
                 ", ".join(repr(r.name) for r in loaded))
        while not stop.wait(1.0):
            pass
        log.info("received %s: stopping (waiting up to %.1f s for running jobs)",
                 received[0] if received else "a signal", args.shutdown_timeout)
        return 0
    finally:
        service.unschedule_all()
        service.shutdown(wait=True, timeout=args.shutdown_timeout)
        if server is not None:
            server.shutdown()
            server.server_close()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        if received:
            log.info("stopped")


def _log_new_jobs(change: Any) -> None:
    old = set(change.old or ())
    for job in change.new:
        if job not in old:
            job.observe(_log_run, names="state")


def _log_run(change: Any) -> None:
    job: BackgroundJob = change.owner
    invocation = change.new.last_invocation
    if invocation is None or invocation is getattr(change.old, "last_invocation", None):
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


def _serve_metrics(collector: Any, host: str, port: int) -> Any:
    """Serve ``/metrics`` from a daemon thread; returns the server (``shutdown()`` stops it)."""
    from wsgiref.simple_server import WSGIRequestHandler, make_server

    from prometheus_client import CollectorRegistry, make_wsgi_app

    class QuietHandler(WSGIRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass  # one line per scrape would drown the job log

    registry = CollectorRegistry()
    registry.register(collector)
    try:
        server = make_server(host, port, make_wsgi_app(registry), handler_class=QuietHandler)
    except OSError as exc:
        raise UsageFailure(f"cannot serve metrics on {host}:{port}: {exc}") from None
    thread = threading.Thread(target=server.serve_forever, name="mashroom-jobs-metrics",
                              daemon=True)
    thread.start()
    log.info("serving metrics on http://%s:%d/metrics", host, server.server_port)
    return server


# --- autoload -------------------------------------------------------------------------------


def kernel_config_path(profile: str = "default") -> Path:
    """The ``ipython_kernel_config.py`` of an IPython profile (respects ``IPYTHONDIR``)."""
    from IPython.paths import get_ipython_dir

    return Path(get_ipython_dir()) / f"profile_{profile}" / "ipython_kernel_config.py"


def _autoload(args: argparse.Namespace) -> int:
    if not args.profile or "/" in args.profile or args.profile.startswith("."):
        raise UsageFailure(f"invalid profile name {args.profile!r}")
    path = kernel_config_path(args.profile)
    text = path.read_text(encoding="utf-8") if path.exists() else ""
    present = AUTOLOAD_BEGIN in text
    if args.action == "enable":
        if present:
            print(f"mashroom_jobs is already loaded at kernel start ({path})")
            return 0
        if not text:
            text = "c = get_config()  # noqa\n"
        elif not text.endswith("\n"):
            text += "\n"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"{text}\n{AUTOLOAD_BLOCK}", encoding="utf-8")
        print(f"mashroom_jobs will be loaded at kernel start: added to {path}")
        return 0
    if not present:
        print(f"mashroom_jobs is not loaded at kernel start by {path}: nothing to do")
        return 0
    path.write_text(_remove_block(text), encoding="utf-8")
    print(f"mashroom_jobs will no longer be loaded at kernel start: removed from {path}")
    return 0


def _remove_block(text: str) -> str:
    start = text.index(AUTOLOAD_BEGIN)
    end_marker = text.find(AUTOLOAD_END, start)
    end = len(text) if end_marker < 0 else end_marker + len(AUTOLOAD_END)
    if text[end:end + 1] == "\n":
        end += 1
    # also drop the blank line enable put before the block
    if text[:start].endswith("\n\n"):
        start -= 1
    return text[:start] + text[end:]
