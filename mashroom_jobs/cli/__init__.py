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
import sys
from collections.abc import Sequence
from pathlib import Path

from .._version import __version__
from .autoload import AUTOLOAD_BEGIN, AUTOLOAD_END, autoload_command, kernel_config_path
from .cron import cron_command
from .dashboard import dashboard_command
from .history import history_command, store_command
from .jobs import add_jobs_parser, jobs_command
from .options import (
    DASHBOARD_PORT,
    MAX_FIRE_TIMES,
    MAX_SHUTDOWN_SECONDS,
    CommandFailure,
    Once,
    Parser,
    UsageFailure,
    days,
    fire_count,
    port_number,
    run_count,
    seconds,
    store_flag,
    store_option,
    token_text,
)
from .running import plugins_command, run_command
from .status import add_status_parser, status_command

__all__ = ["AUTOLOAD_BEGIN", "AUTOLOAD_END", "CommandFailure", "UsageFailure", "build_parser",
           "kernel_config_path", "main"]


def build_parser() -> argparse.ArgumentParser:
    """The command's parser: one sub-command per module of this package."""
    parser = Parser(
        prog="mashroom-jobs",
        description="Cron background jobs: run background-job plugins, inspect cron expressions.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}",
                        help="print the version of mashroom-jobs and exit")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = commands.add_parser(
        "run", help="run the plugins' jobs and the store's durable jobs until SIGINT/SIGTERM",
        description="Bootstrap every installed background-job plugin and host the job "
                    "store's durable jobs, running them on schedule and logging each run, "
                    "until SIGINT or SIGTERM.",
    )
    run.add_argument("--metrics-port", action=Once, type=port_number, metavar="PORT",
                     help="serve Prometheus metrics on this port, 0 for any free one "
                          "(needs prometheus-client)")
    run.add_argument("--metrics-host", action=Once, default="127.0.0.1", metavar="HOST",
                     help="address the metrics server listens on (default: %(default)s)")
    run.add_argument("--shutdown-timeout", action=Once, type=seconds, default=10.0,
                     metavar="SECONDS",
                     help=f"how long to wait for running jobs when stopping, at most "
                          f"{MAX_SHUTDOWN_SECONDS} (default: %(default)s)")
    run.add_argument("--config", action=Once, metavar="FILE", type=Path,
                     help="a traitlets config file, e.g. with c.BackgroundJobService.plugin_config")
    run.add_argument("--store", action=Once, type=store_flag, metavar="PATH",
                     help="the job store shared with the kernels (a file or sqlite:///PATH), "
                          "or 'none' to keep runs in memory (default: the config's "
                          "c.BackgroundJobService.store, else the store the kernels use by "
                          "default; `mashroom-jobs store path` prints it)")
    run.add_argument("--dask", action=Once, metavar="ADDRESS",
                     help="run the plugins' jobs on this Dask cluster: a scheduler address "
                          "(tcp://host:8786) or 'local' for a LocalCluster (needs distributed)")

    plugins = commands.add_parser(
        "plugins", help="list installed plugins, their schedules and load errors",
        description="List installed background-job plugins with their effective schedule, "
                    "its description and next fire times, and any load error. "
                    "Plugins are imported, not bootstrapped. Exit status 1 when a plugin "
                    "cannot be loaded or the config names one that is not installed.",
    )
    plugins.add_argument("--config", action=Once, metavar="FILE", type=Path,
                         help="a traitlets config file (plugin_config, disabled_plugins)")

    cron = commands.add_parser(
        "cron", help="validate and describe a cron expression, print its next fire times",
        description="Validate a cron expression, describe it, and print its next fire times.",
    )
    cron.add_argument("expression", metavar="EXPR", nargs="+",
                      help='the expression, quoted: "*/5 * * * *"')
    cron.add_argument("--tz", action=Once, metavar="ZONE", default=None,
                      help="IANA time zone (default: the local zone)")
    cron.add_argument("-n", action=Once, type=fire_count, default=5, metavar="N",
                      help=f"how many fire times, at most {MAX_FIRE_TIMES} "
                           f"(default: %(default)s)")
    cron.add_argument("--from", action=Once, dest="start", metavar="ISO-DATETIME",
                      help="list fire times after this time (default: now)")
    cron.add_argument("--name", action=Once, default=None, metavar="NAME",
                      help="the job's name, which H in the expression is hashed from")

    history = commands.add_parser(
        "history", help="list the runs in the job store, newest first",
        description="List the runs kept in the job store, newest first: those of every kernel "
                    "and `mashroom-jobs run` process sharing it; for a notebook job, which "
                    "revision of the notebook ran and where its executed copy is.",
    )
    history.add_argument("name", nargs="?", metavar="NAME",
                         help="only the runs of this job (quote a name with spaces)")
    history.add_argument("--limit", action=Once, type=run_count, default=50, metavar="N",
                         help="how many runs, at most (default: %(default)s)")
    history.add_argument("--json", action="store_true",
                         help="print the runs as a JSON list, with their output and traceback")
    store_option(history)

    add_jobs_parser(commands)

    store = commands.add_parser(
        "store", help="the job store: where it is, prune it, vacuum it",
        description="path: print where the job store is. prune: delete the runs beyond the "
                    "retention now (the kernels do so in the background). vacuum: rewrite the "
                    "file to give the space of deleted runs back to the disk.",
    )
    store.add_argument("action", choices=["path", "prune", "vacuum"])
    store.add_argument("--keep-runs", action=Once, type=run_count, default=1000, metavar="N",
                       help="prune: runs to keep per job (default: %(default)s)")
    store.add_argument("--keep-days", action=Once, type=days, default=30.0, metavar="DAYS",
                       help="prune: days to keep runs for (default: %(default)g)")
    store_option(store)

    autoload = commands.add_parser(
        "autoload", help="load the extension at every kernel start (or stop doing so)",
        description="Add or remove mashroom_jobs in c.InteractiveShellApp.extensions of the "
                    "IPython profile's ipython_kernel_config.py.",
    )
    autoload.add_argument("action", choices=["enable", "disable"])
    autoload.add_argument("--profile", action=Once, default="default", metavar="NAME",
                          help="IPython profile (default: %(default)s)")

    dashboard = commands.add_parser(
        "dashboard", help="serve the jobs dashboard (Voila) until Ctrl-C",
        description="Serve the jobs dashboard, the control room of the job store (its durable "
                    "jobs, the hosts that run them, the recent runs of every job), with Voila "
                    "(pip install 'mashroom-jobs[dashboard]'), until Ctrl-C or SIGTERM. The "
                    "page's kernel runs no job: its buttons act through the store.",
    )
    dashboard.add_argument("--port", action=Once, type=port_number, default=DASHBOARD_PORT,
                           metavar="PORT",
                           help="port to serve on, 0 for any free one (default: %(default)s)")
    dashboard.add_argument("--ip", action=Once, default="127.0.0.1", metavar="HOST",
                           help="address to listen on; 0.0.0.0 for every interface "
                                "(default: %(default)s)")
    dashboard.add_argument("--token", action=Once, type=token_text, metavar="TOKEN",
                           help="the token the page's address carries (default: a new random "
                                "one each start)")
    dashboard.add_argument("--no-browser", action="store_true",
                           help="do not open the page in a web browser")
    add_status_parser(commands)
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
    args = build_parser().parse_args(argv)
    commands = {"run": run_command, "plugins": plugins_command, "cron": cron_command,
                "history": history_command, "store": store_command, "jobs": jobs_command,
                "autoload": autoload_command, "dashboard": dashboard_command,
                "status": status_command}
    try:
        return commands[args.command](args)
    except UsageFailure as exc:
        print(f"mashroom-jobs {args.command}: {exc}", file=sys.stderr)
        return 2
    except CommandFailure as exc:
        print(f"mashroom-jobs {args.command}: {exc}", file=sys.stderr)
        return 1
