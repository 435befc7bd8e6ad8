"""The ``mashroom-jobs`` command: run plugins without Jupyter, list them, check cron
expressions, read and maintain the job store, enable the extension at kernel start, and
serve the jobs dashboard (Voila).

Exit codes: 0 success; 1 ``run`` could not load any plugin, ``autoload disable`` could
not stop the extension from loading (a line the user wrote loads it), there is no job store
to read, or the store was busy too long; 2 bad usage (an invalid expression, zone, date or
flag, a missing optional dependency, an unusable IPython folder or job store).
"""

from __future__ import annotations

import argparse
import ast
import json
import logging
import os
import re
import signal
import sys
import threading
from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

if TYPE_CHECKING:
    from .job import BackgroundJob
    from .service import BackgroundJobService
    from .store import SQLiteStore

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


class CommandFailure(Exception):
    """The command could not do what it was asked: printed on stderr as one line, exit 1."""


# --- the parser ---------------------------------------------------------------------


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser whose usage errors are one line, as the commands' own errors are."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: {message} (see {self.prog} --help)\n")


class _Once(argparse.Action):
    """Store an option's value, and refuse it a second time.

    argparse keeps the last of ``--config a.py --config b.py`` silently; which file the user
    meant is a guess, so a repeated option is a usage error instead.
    """

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace,
                 values: Any, option_string: str | None = None) -> None:
        given: dict[str, Any] = namespace.__dict__.setdefault("_given", {})
        if self.dest in given:
            raise argparse.ArgumentError(
                self, f"given twice ({str(given[self.dest])!r}, then {str(values)!r}); "
                      f"give it once"
            )
        given[self.dest] = values
        setattr(namespace, self.dest, values)


# int() and float() read '٣' and '３' as 3 and ignore '_' and surrounding blanks; a flag's
# number is plain ASCII, so that what the user typed is what the command uses
_WHOLE = re.compile(r"[0-9]+")
_DECIMAL = re.compile(r"[0-9]+(?:\.[0-9]*)?|\.[0-9]+")
#: more fire times than this take seconds to list; a typo like -n 50000000 would look like a hang
MAX_FIRE_TIMES = 10_000
#: the longest --shutdown-timeout; threads cannot wait much longer than 2**63 ns anyway
MAX_SHUTDOWN_SECONDS = 86_400
#: the most runs `history` lists, and the most `store prune --keep-runs` keeps per job
MAX_RUNS = 1_000_000
#: the longest `store prune --keep-days`: about 100 years
MAX_DAYS = 36_500


def _fire_count(text: str) -> int:
    if _WHOLE.fullmatch(text) and 1 <= int(text) <= MAX_FIRE_TIMES:
        return int(text)
    raise argparse.ArgumentTypeError(
        f"expected a whole number from 1 to {MAX_FIRE_TIMES}, got {text!r}"
    )


def _port(text: str) -> int:
    if _WHOLE.fullmatch(text) and len(text) <= 5 and int(text) <= 65535:
        return int(text)
    raise argparse.ArgumentTypeError(
        f"expected a port number from 1 to 65535 (or 0: any free port), got {text!r}"
    )


#: Voila's own default port
DASHBOARD_PORT = 8866
#: characters a token may have: it is part of the page's address, unescaped
_TOKEN = re.compile(r"[A-Za-z0-9._~-]{8,256}")


def _token(text: str) -> str:
    if _TOKEN.fullmatch(text):
        return text
    raise argparse.ArgumentTypeError(
        f"expected 8 to 256 letters, digits or the characters . _ ~ -, got {text!r} (the "
        f"dashboard's buttons steer the jobs: it always asks for a token)"
    )


def _seconds(text: str) -> float:
    # not float() alone: it also takes 'nan', 'inf' and '1e400'
    if _DECIMAL.fullmatch(text) and float(text) <= MAX_SHUTDOWN_SECONDS:
        return float(text)
    raise argparse.ArgumentTypeError(
        f"expected a number of seconds from 0 to {MAX_SHUTDOWN_SECONDS} such as 10 or 2.5, "
        f"got {text!r}"
    )


def _run_count(text: str) -> int:
    if _WHOLE.fullmatch(text) and 1 <= int(text) <= MAX_RUNS:
        return int(text)
    raise argparse.ArgumentTypeError(f"expected a whole number from 1 to {MAX_RUNS:,}, "
                                     f"got {text!r}")


def _days(text: str) -> float:
    if _DECIMAL.fullmatch(text) and 0 < float(text) <= MAX_DAYS:
        return float(text)
    raise argparse.ArgumentTypeError(f"expected a number of days above 0 and at most "
                                     f"{MAX_DAYS:,} such as 30 or 0.5, got {text!r}")


def _store_flag(text: str) -> str | None:
    """``--store PATH``, a ``sqlite:///PATH`` URL, or ``none`` (runs kept in memory)."""
    if text.lower() == "none":
        return None
    from .store import store_location

    try:
        store_location(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="mashroom-jobs",
        description="Cron background jobs: run background-job plugins, inspect cron expressions.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = commands.add_parser(
        "run", help="run every installed background-job plugin until SIGINT/SIGTERM",
        description="Bootstrap every installed background-job plugin and run its job on "
                    "schedule, logging each run, until SIGINT or SIGTERM.",
    )
    run.add_argument("--metrics-port", action=_Once, type=_port, metavar="PORT",
                     help="serve Prometheus metrics on this port, 0 for any free one "
                          "(needs prometheus-client)")
    run.add_argument("--metrics-host", action=_Once, default="127.0.0.1", metavar="HOST",
                     help="address the metrics server listens on (default: %(default)s)")
    run.add_argument("--shutdown-timeout", action=_Once, type=_seconds, default=10.0,
                     metavar="SECONDS",
                     help=f"how long to wait for running jobs when stopping, at most "
                          f"{MAX_SHUTDOWN_SECONDS} (default: %(default)s)")
    run.add_argument("--config", action=_Once, metavar="FILE", type=Path,
                     help="a traitlets config file, e.g. with c.BackgroundJobService.plugin_config")
    run.add_argument("--store", action=_Once, type=_store_flag, metavar="PATH",
                     help="the job store shared with the kernels (a file or sqlite:///PATH), "
                          "or 'none' to keep runs in memory (default: the config's "
                          "c.BackgroundJobService.store, else the store the kernels use by "
                          "default; `mashroom-jobs store path` prints it)")
    run.add_argument("--dask", action=_Once, metavar="ADDRESS",
                     help="run the plugins' jobs on this Dask cluster: a scheduler address "
                          "(tcp://host:8786) or 'local' for a LocalCluster (needs distributed)")

    plugins = commands.add_parser(
        "plugins", help="list installed plugins, their schedules and load errors",
        description="List installed background-job plugins with their effective schedule, "
                    "its description and next fire times, and any load error. "
                    "Plugins are imported, not bootstrapped.",
    )
    plugins.add_argument("--config", action=_Once, metavar="FILE", type=Path,
                         help="a traitlets config file (plugin_config, disabled_plugins)")

    cron = commands.add_parser(
        "cron", help="validate and describe a cron expression, print its next fire times",
        description="Validate a cron expression, describe it, and print its next fire times.",
    )
    cron.add_argument("expression", metavar="EXPR",
                      help='the expression, quoted: "*/5 * * * *"')
    cron.add_argument("--tz", action=_Once, metavar="ZONE", default=None,
                      help="IANA time zone (default: the local zone)")
    cron.add_argument("-n", action=_Once, type=_fire_count, default=5, metavar="N",
                      help=f"how many fire times, at most {MAX_FIRE_TIMES} "
                           f"(default: %(default)s)")
    cron.add_argument("--from", action=_Once, dest="start", metavar="ISO-DATETIME",
                      help="list fire times after this time (default: now)")
    cron.add_argument("--name", action=_Once, default=None, metavar="NAME",
                      help="the job's name, which H in the expression is hashed from")

    history = commands.add_parser(
        "history", help="list the runs in the job store, newest first",
        description="List the runs kept in the job store, newest first: those of every kernel "
                    "and `mashroom-jobs run` process sharing it.",
    )
    history.add_argument("name", nargs="?", metavar="NAME",
                         help="only the runs of this job (quote a name with spaces)")
    history.add_argument("--limit", action=_Once, type=_run_count, default=50, metavar="N",
                         help="how many runs, at most (default: %(default)s)")
    history.add_argument("--json", action="store_true",
                         help="print the runs as a JSON list, with their output and traceback")
    _store_option(history)

    store = commands.add_parser(
        "store", help="the job store: where it is, prune it, vacuum it",
        description="path: print where the job store is. prune: delete the runs beyond the "
                    "retention now (the kernels do so in the background). vacuum: rewrite the "
                    "file to give the space of deleted runs back to the disk.",
    )
    store.add_argument("action", choices=["path", "prune", "vacuum"])
    store.add_argument("--keep-runs", action=_Once, type=_run_count, default=1000, metavar="N",
                       help="prune: runs to keep per job (default: %(default)s)")
    store.add_argument("--keep-days", action=_Once, type=_days, default=30.0, metavar="DAYS",
                       help="prune: days to keep runs for (default: %(default)g)")
    _store_option(store)

    autoload = commands.add_parser(
        "autoload", help="load the extension at every kernel start (or stop doing so)",
        description="Add or remove mashroom_jobs in c.InteractiveShellApp.extensions of the "
                    "IPython profile's ipython_kernel_config.py.",
    )
    autoload.add_argument("action", choices=["enable", "disable"])
    autoload.add_argument("--profile", action=_Once, default="default", metavar="NAME",
                          help="IPython profile (default: %(default)s)")

    dashboard = commands.add_parser(
        "dashboard", help="serve the jobs dashboard (Voila) until Ctrl-C",
        description="Serve the jobs dashboard, a page with the jobs panel and the recent runs, "
                    "with Voila (pip install 'mashroom-jobs[dashboard]'), until Ctrl-C or "
                    "SIGTERM. Each page runs a kernel of its own, which loads the installed "
                    "background-job plugins.",
    )
    dashboard.add_argument("--port", action=_Once, type=_port, default=DASHBOARD_PORT,
                           metavar="PORT",
                           help="port to serve on, 0 for any free one (default: %(default)s)")
    dashboard.add_argument("--ip", action=_Once, default="127.0.0.1", metavar="HOST",
                           help="address to listen on; 0.0.0.0 for every interface "
                                "(default: %(default)s)")
    dashboard.add_argument("--token", action=_Once, type=_token, metavar="TOKEN",
                           help="the token the page's address carries (default: a new random "
                                "one each start)")
    dashboard.add_argument("--no-browser", action="store_true",
                           help="do not open the page in a web browser")
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
    commands = {"run": _run, "plugins": _plugins, "cron": _cron, "history": _history,
                "store": _store_command, "autoload": _autoload, "dashboard": _dashboard}
    try:
        return commands[args.command](args)
    except UsageFailure as exc:
        print(f"mashroom-jobs {args.command}: {exc}", file=sys.stderr)
        return 2
    except CommandFailure as exc:
        print(f"mashroom-jobs {args.command}: {exc}", file=sys.stderr)
        return 1


# --- cron ---------------------------------------------------------------------------------


def _cron(args: argparse.Namespace) -> int:
    from .core.cron import EARLIEST_START, CronSchedule, resolve_zone, zone_name
    from .core.errors import MashroomJobsError

    try:
        zone = resolve_zone(args.tz)
        schedule = CronSchedule(args.expression, zone, name=args.name)
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
        if start < EARLIEST_START:
            raise UsageFailure(
                f"invalid --from {args.start!r}: fire times are listed after "
                f"{EARLIEST_START.isoformat()} at the earliest"
            )
    times = schedule.fire_times(start, args.n)
    after = f"after {start.isoformat(timespec='seconds')} ({zone_name(zone)})"
    print(f"{schedule.expression}: {schedule.describe()}")
    # fewer times than asked for: the next one would be past 9999-12-31, where datetime ends
    if not times:
        print(f"No fire time {after}: dates end with the year 9999.")
        return 0
    print(f"Next {len(times)} fire time{'s' if len(times) != 1 else ''} {after}:")
    for when in times:
        print(f"  {when.isoformat()}  {when:%a}")
    if len(times) < args.n:
        print("No more fire times: dates end with the year 9999.")
    return 0


# --- plugins ------------------------------------------------------------------------------


_UNSET: Any = object()


def _service(config_file: Path | None, store: Any = _UNSET) -> BackgroundJobService:
    """A service with the config file's settings; ``store`` (a path or None) overrides the
    config's store, and without either ``run`` uses the default store."""
    from .core.errors import StoreError
    from .service import BackgroundJobService

    config = None
    if config_file is not None:
        if not config_file.is_file():
            raise UsageFailure(f"config file {str(config_file)!r} does not exist")
        from traitlets.config.loader import PyFileConfigLoader

        try:
            config = PyFileConfigLoader(config_file.name, str(config_file.parent)).load_config()
        except Exception as exc:
            raise UsageFailure(f"config file {str(config_file)!r}: {exc}") from None
    kwargs: dict[str, Any] = {}
    if store is not _UNSET:
        kwargs["store"] = store
    try:
        return BackgroundJobService(**kwargs) if config is None \
            else BackgroundJobService(config=config, **kwargs)
    except StoreError as exc:
        raise UsageFailure(f"{exc} (--store none keeps runs in memory)") from None
    except Exception as exc:
        raise UsageFailure(f"config file {str(config_file)!r}: {exc}") from None


def _configures_store(config_file: Path | None) -> bool:
    """Whether the config file sets c.BackgroundJobService.store (read again by _service)."""
    if config_file is None or not config_file.is_file():
        return False
    from traitlets.config.loader import PyFileConfigLoader

    try:
        config = PyFileConfigLoader(config_file.name, str(config_file.parent)).load_config()
    except Exception:
        return False  # _service says what is wrong with it
    return any(f"{owner}.store" in config for owner in ("BackgroundJobService", "ServiceSettings"))


def _plugins(args: argparse.Namespace) -> int:
    from .plugins import discover, format_plugins_table, inspect_plugin, load_plugin

    service = _service(args.config)
    try:
        records: list[Any] = []
        for entry_point in discover():
            if entry_point.name in service.disabled_plugins:
                # the record the service makes: nothing imported, but where the plugin is from
                records.append(load_plugin(service, entry_point))
                continue
            override = service.plugin_config.get(entry_point.name) or {}
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
    # Every flag is checked before any plugin is imported or bootstrapped (the parser checked
    # the numbers): a usage error must not come after minutes of plugin start-up.
    collector_factory: Callable[[BackgroundJobService], Any] | None = None
    if args.metrics_port is not None:
        try:
            import prometheus_client  # noqa: F401

            from .metrics import prometheus_collector

            collector_factory = prometheus_collector
        except ImportError:
            raise UsageFailure(
                "--metrics-port needs prometheus-client: pip install 'mashroom-jobs[metrics]'"
            ) from None
    if args.dask is not None:
        from .dask_bridge import check_distributed, parse_dask_address

        try:
            if not parse_dask_address(args.dask):
                raise ValueError("--dask needs an address, got ''")
            check_distributed("--dask")
        except (ValueError, ImportError) as exc:
            raise UsageFailure(str(exc)) from None

    store: Any = args.store if "store" in getattr(args, "_given", {}) else _UNSET
    if store is _UNSET and not _configures_store(args.config):
        store = _default_store()  # the kernels' store, so plugins' fires run once in all
    service = _service(args.config, store)
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
        from .plugins import PluginLoader, loading

        entry_points = loading.discover()
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
            log.error("%s", _nothing_loaded(records))
            return 1
        if server is not None:
            threading.Thread(target=server.serve_forever, name="mashroom-jobs-metrics",
                             daemon=True).start()
            serving = True
            log.info("serving metrics on http://%s:%d/metrics", args.metrics_host,
                     server.server_port)
        log.info("running %d background job%s: %s; stop with Ctrl-C or SIGTERM",
                 len(loaded), "s" if len(loaded) != 1 else "",
                 ", ".join(repr(r.name) for r in loaded))
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


def _nothing_loaded(records: Sequence[Any]) -> str:
    """Why ``run`` has nothing to run: no plugin installed, or each one failed or disabled."""
    from .plugins import ENTRY_POINT_GROUP

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


# --- the job store ---------------------------------------------------------------------------


def _store_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--store", action=_Once, type=_store_flag, metavar="PATH",
                        help="the job store (a file or sqlite:///PATH; default: the one the "
                             "kernels and `mashroom-jobs run` use)")


def _default_store() -> str:
    from .core.errors import StoreError
    from .store import default_store_path

    try:
        return default_store_path()
    except StoreError as exc:
        raise UsageFailure(str(exc)) from None


def _store_path(args: argparse.Namespace) -> str:
    from .store import store_location

    if args.store is None:
        if "store" in getattr(args, "_given", {}):
            raise UsageFailure("--store none: there is no job store to read in memory; give "
                               "a path")
        return _default_store()
    return store_location(args.store)


def _open_store(path: str, **settings: Any) -> SQLiteStore:
    from .core.errors import StoreError, StoreUnavailableError
    from .store import SQLiteStore

    if not os.path.exists(path):
        raise CommandFailure(f"there is no job store at {path} (no run has been recorded there)")
    try:
        return SQLiteStore(path, **settings)
    except StoreUnavailableError as exc:  # busy: not the user's mistake
        raise CommandFailure(str(exc)) from None
    except StoreError as exc:
        raise UsageFailure(str(exc)) from None


def _history(args: argparse.Namespace) -> int:
    from .core.errors import StoreError

    path = _store_path(args)
    store = _open_store(path)
    try:
        runs = store.runs(args.name, args.limit)
    except StoreError as exc:
        raise CommandFailure(str(exc)) from None
    finally:
        store.close()
    if args.json:
        print(json.dumps([_run_json(job, run) for job, run in runs], indent=1,
                         ensure_ascii=False))
        return 0
    which = f"of {args.name!r} " if args.name is not None else ""
    if not runs:
        print(f"No runs {which}in {path}")
        return 0
    print(f"{len(runs)} run{'s' if len(runs) != 1 else ''} {which}in {path}, newest first:")
    rows = [("started", "job", "trigger", "duration", "result", "ran in")]
    for job, run in runs:
        trigger = run.trigger + (f" {run.attempt}" if run.attempt > 1 else "")
        result = "ok" if run.success else f"FAILED {run.error_message or ''}"
        rows.append((run.timestamp.isoformat(sep=" ", timespec="seconds"), job, trigger,
                     f"{run.execution_time_ms:.1f} ms", " ".join(result.split())[:60],
                     run.origin or ""))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip())
    return 0


def _run_json(job: str, run: Any) -> dict[str, Any]:
    return {
        "job": job, "started": run.timestamp.isoformat(),
        "scheduled_for": None if run.scheduled_for is None else run.scheduled_for.isoformat(),
        "trigger": run.trigger, "attempt": run.attempt, "duration_ms": run.execution_time_ms,
        "success": run.success, "error": run.error_message, "traceback": run.traceback,
        "output": run.output, "worker": run.worker, "origin": run.origin,
    }


def _store_command(args: argparse.Namespace) -> int:
    import sqlite3

    path = _store_path(args)
    if args.action == "path":
        print(path)
        return 0
    store = _open_store(path, retention_runs=args.keep_runs, retention_days=args.keep_days)
    try:
        if args.action == "prune":
            deleted = store.prune()
            print(f"Pruned {deleted:,} run{'s' if deleted != 1 else ''} from {path}, keeping "
                  f"the newest {args.keep_runs:,} of each job, of the last {args.keep_days:g} "
                  f"days")
            return 0
        before = store.size()
        store.vacuum()
        print(f"Vacuumed {path}: {_megabytes(before)} -> {_megabytes(store.size())}")
        return 0
    except sqlite3.Error as exc:  # another process held it too long
        raise CommandFailure(f"could not {args.action} the job store {path}: {exc}") from None
    finally:
        store.close()


def _megabytes(size: int) -> str:
    return f"{size / 1e6:,.2f} MB"


# --- autoload -------------------------------------------------------------------------------


def kernel_config_path(profile: str = "default") -> Path:
    """The ``ipython_kernel_config.py`` of an IPython profile (respects ``IPYTHONDIR``).

    Raises
    ------
    UsageFailure
        When IPython cannot use its folder (``IPYTHONDIR`` is a file, or not writable) and
        would fall back to a new temporary folder, which no kernel would read.
    """
    return _ipython_dir() / f"profile_{profile}" / "ipython_kernel_config.py"


def _ipython_dir() -> Path:
    import tempfile
    import warnings

    from IPython.paths import get_ipython_dir

    configured = os.environ.get("IPYTHONDIR")
    if configured and os.path.exists(configured) and not os.path.isdir(configured):
        raise UsageFailure(_unusable_ipython_dir(configured, "it is a file, not a folder"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the warning would be a second, vaguer line
        ipdir = get_ipython_dir()
    # IPython falls back to tempfile.mkdtemp() when its folder is not writable; the profile
    # written there would be lost, and `enable` would report success for nothing
    wanted = os.path.normpath(os.path.expanduser(configured or "~/.ipython"))
    fell_back = (ipdir != wanted and Path(ipdir).parent == Path(tempfile.gettempdir())
                 and Path(ipdir).name.startswith(tempfile.gettempprefix()))
    if fell_back:
        try:
            os.rmdir(ipdir)  # the empty folder IPython just made
        except OSError:
            pass
        path = Path(wanted)
        if path.exists():
            reason = "it is not a folder you can write to"
        else:
            reason = f"its parent {str(path.parent)!r} is not a folder you can write to"
        raise UsageFailure(_unusable_ipython_dir(configured or wanted, reason))
    return Path(ipdir)


def _unusable_ipython_dir(path: str, reason: str) -> str:
    return (f"IPYTHONDIR is {path!r}, which IPython cannot use ({reason}): it would put the "
            f"profile in a new temporary folder that no kernel reads; point IPYTHONDIR at a "
            f"folder you can write to")


# the config classes whose `extensions` a kernel loads (IPKernelApp is an InteractiveShellApp)
_EXTENSION_OWNERS = ("InteractiveShellApp", "IPKernelApp")


def _is_extensions(node: Any) -> bool:
    """``c.InteractiveShellApp.extensions`` or ``c.IPKernelApp.extensions``."""
    return (isinstance(node, ast.Attribute) and node.attr == "extensions"
            and isinstance(node.value, ast.Attribute) and node.value.attr in _EXTENSION_OWNERS)


def _adds_mashroom_jobs(node: Any) -> bool:
    """Whether a statement puts "mashroom_jobs" into the kernel's extensions."""
    def mentions(tree: Any) -> bool:
        return any(isinstance(n, ast.Constant) and n.value == "mashroom_jobs"
                   for n in ast.walk(tree))

    # not `+=`: on a config value that was never assigned it raises TypeError, and the kernel
    # then skips the whole file
    if isinstance(node, ast.Assign):
        return any(map(_is_extensions, node.targets)) and mentions(node.value)
    if isinstance(node, ast.Expr) and isinstance(node.value, ast.Call):
        func = node.value.func
        return (isinstance(func, ast.Attribute) and func.attr in ("append", "extend", "insert")
                and _is_extensions(func.value) and mentions(node.value))
    return False


def _users_lines(text: str, path: Path) -> list[tuple[int, int, str]]:
    """The statements outside our block that load mashroom_jobs: (first line, last line, text)."""
    try:
        tree = ast.parse(text, filename=str(path))
    except (SyntaxError, ValueError) as exc:  # ValueError: a NUL byte, before Python 3.12
        where = (f"{path}, line {exc.lineno}: {exc.msg}" if isinstance(exc, SyntaxError)
                 else f"{path}: {exc}")
        raise UsageFailure(
            f"{where}: the file is not valid Python, so it cannot be checked; fix it first"
        ) from None
    lines = text.splitlines()
    ours = range(0)
    if AUTOLOAD_BEGIN in lines and AUTOLOAD_END in lines:
        ours = range(lines.index(AUTOLOAD_BEGIN) + 1, lines.index(AUTOLOAD_END) + 2)
    statements = [n for n in ast.walk(tree) if isinstance(n, ast.stmt) and _adds_mashroom_jobs(n)]
    return sorted(
        (node.lineno, node.end_lineno or node.lineno, lines[node.lineno - 1].strip())
        for node in statements
        if node.lineno not in ours
    )


def _where(found: list[tuple[int, int, str]], path: Path) -> str:
    """``line 3 of /x/ipython_kernel_config.py: c.Inter...``, for a message."""
    first, last, source = found[0]
    if len(found) == 1 and first == last:
        return f"line {first} of {path}: {source}"
    spans = [f"{a}-{b}" if b > a else str(a) for a, b, _ in found]
    return f"line{'s' if len(found) > 1 or first != last else ''} {', '.join(spans)} of {path}"


def _autoload(args: argparse.Namespace) -> int:
    profile = args.profile
    if (not profile or profile.startswith(".") or "\0" in profile
            or any(sep and sep in profile for sep in (os.sep, os.altsep))):
        raise UsageFailure(
            f"invalid profile name {profile!r}: a profile is a folder name such as 'default' "
            f"or 'jobs', without '/' and not starting with '.'"
        )
    path = kernel_config_path(profile)
    try:
        text = path.read_text(encoding="utf-8") if path.exists() else ""
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageFailure(f"cannot read {path}: {exc}") from None
    present = AUTOLOAD_BEGIN in text
    users = _users_lines(text, path)
    if args.action == "enable":
        if users:
            print(f"mashroom_jobs is already loaded at kernel start by {_where(users, path)}")
            return 0
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
    if present:
        text = _remove_block(text)
        path.write_text(text, encoding="utf-8")
        users = _users_lines(text, path)  # line numbers as the file now is
        if users:
            # never claim success while the kernel still loads it
            raise CommandFailure(
                f"removed the block `mashroom-jobs autoload enable` wrote from {path}, but "
                f"mashroom_jobs is still loaded at kernel start by {_where(users, path)}; "
                f"remove that line to stop loading the extension"
            )
        print(f"mashroom_jobs will no longer be loaded at kernel start: removed from {path}")
        return 0
    if users:
        raise CommandFailure(
            f"mashroom_jobs is loaded at kernel start by {_where(users, path)}; "
            f"`mashroom-jobs autoload enable` did not write that line, so it is left alone: "
            f"remove it to stop loading the extension"
        )
    print(f"mashroom_jobs is not loaded at kernel start by {path}: nothing to do")
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


# --- dashboard ------------------------------------------------------------------------------


def _dashboard(args: argparse.Namespace) -> int:
    # Voila's app runs in this process, in the foreground: Ctrl-C and SIGTERM reach it
    # directly and it shuts its kernels down, exit codes need no relaying, and every flag is
    # checked here before Voila starts. A subprocess would add a process and signal
    # forwarding for nothing.
    try:
        from voila.app import Voila
    except ImportError:
        raise UsageFailure(
            "the dashboard needs Voila: pip install 'mashroom-jobs[dashboard]'"
        ) from None
    from .dashboards import JOBS_DASHBOARD

    if not JOBS_DASHBOARD.is_file():
        raise CommandFailure(f"the dashboard notebook {JOBS_DASHBOARD} is missing from the "
                             f"installed package: reinstall mashroom-jobs")
    port = _free_dashboard_port(args.ip, args.port)
    token = args.token or _new_token()
    url = f"http://{_url_host(args.ip)}:{port}/?token={token}"
    argv = [
        str(JOBS_DASHBOARD),
        f"--Voila.ip={args.ip}",
        f"--Voila.port={port}",
        "--Voila.port_retries=0",  # the port checked above, or an error: never another one
        f"--Voila.token={token}",
        "--Voila.open_browser=False",  # Voila would open the address without the token
    ]
    # the kernels' working folder (see the notebook): where the command was started
    os.environ["MASHROOM_JOBS_DASHBOARD_CWD"] = os.getcwd()
    print(f"mashroom-jobs dashboard: serving {url} (Ctrl-C stops it)", file=sys.stderr,
          flush=True)
    if not args.no_browser:
        browser_url = f"http://{_url_host(args.ip, local=True)}:{port}/?token={token}"
        threading.Thread(target=_open_when_serving, args=(browser_url, args.ip, port),
                         name="mashroom-jobs-dashboard-browser", daemon=True).start()
    Voila.launch_instance(argv=argv)
    return 0


def _new_token() -> str:
    import secrets

    return secrets.token_hex(24)


def _free_dashboard_port(host: str, port: int) -> int:
    """``port`` when ``host`` can listen on it (a free one for 0), else a usage error."""
    import socket

    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM,
                                   flags=socket.AI_PASSIVE)
        family, kind, proto, _name, address = infos[0]
        with socket.socket(family, kind, proto) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as Voila's server
            sock.bind(address)
            return int(sock.getsockname()[1])
    except (OSError, UnicodeError) as exc:  # in use, no permission, unknown host
        raise UsageFailure(f"cannot serve the dashboard on {host}:{port}: {exc}") from None


def _url_host(host: str, local: bool = False) -> str:
    """The host part of the page's address: this machine's name (or, for a browser here,
    127.0.0.1) when listening on every interface."""
    import socket

    if host in ("", "0.0.0.0", "::"):
        host = "127.0.0.1" if local else socket.gethostname()
    return f"[{host}]" if ":" in host else host


def _open_when_serving(url: str, host: str, port: int, timeout: float = 60.0) -> None:
    """Open ``url`` in a web browser once the server accepts connections (at most
    ``timeout`` seconds from now)."""
    import socket
    import time
    import webbrowser

    target = "127.0.0.1" if host in ("", "0.0.0.0", "::") else host
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((target, port), timeout=1):
                break
        except OSError:
            time.sleep(0.2)  # polling, with a deadline
    else:
        return
    webbrowser.open(url)
