"""``mashroom-jobs jobs``: the job store's durable jobs, from a terminal or a script.

``add`` stores a definition (every host runs it from its next fire), ``list`` and ``show``
read them (``--json`` for scripts), ``pause``, ``resume``, ``run``, ``stop`` and ``remove``
act through the store: the hosts obey within about a second.  None of them runs a job in
this process: ``run`` asks a host to.
"""

from __future__ import annotations

import argparse
import json
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from .history import open_store, store_path
from .options import CommandFailure, Once, UsageFailure, run_count, seconds, store_option

if TYPE_CHECKING:
    from ..durable.facade import DurableInfo, DurableJobs
    from ..store import SQLiteStore

__all__ = ["add_jobs_parser", "jobs_command"]

ACTIONS = ("add", "list", "show", "pause", "resume", "run", "stop", "remove", "set", "reset")


def add_jobs_parser(commands: Any) -> None:
    """The ``jobs`` sub-command and its actions."""
    jobs = commands.add_parser(
        "jobs", help="durable jobs in the job store: add, list, show, pause, resume, run, "
                     "stop, remove",
        description="Durable jobs: definitions kept in the job store and run by every host "
                    "attached to it (kernels with the extension, `mashroom-jobs run`, the "
                    "Jupyter Server extension). Changes act through the store; the hosts "
                    "obey within about a second.")
    actions = jobs.add_subparsers(dest="action", required=True, metavar="ACTION")

    add = actions.add_parser(
        "add", help="store a durable job (replacing the one of its name)",
        description="Store a durable job. Exactly one target: --command, --shell, --call or "
                    "--notebook. KEY=VALUE values are read as JSON when they are JSON "
                    "(n=3, ok=true) and as strings otherwise.")
    add.add_argument("name", metavar="NAME")
    add.add_argument("cron", metavar="CRON", help='the cron expression, quoted: "0 7 * * *"')
    target = add.add_argument_group("the target (exactly one)")
    target.add_argument("--command", action=Once, dest="command_line", metavar="'CMD ARGS'",
                        help="a command line, split as a shell would, run without a shell")
    target.add_argument("--shell", action=Once, metavar="'CMD | ...'",
                        help="a command line run by /bin/sh (pipes, globs, &&)")
    target.add_argument("--call", action=Once, metavar="MODULE:FUNCTION",
                        help="an importable function, e.g. reports.daily:build")
    target.add_argument("--arg", action="append", metavar="KEY=VALUE",
                        help="a keyword argument of --call (repeatable)")
    target.add_argument("--notebook", action=Once, metavar="PATH",
                        help="a notebook file, run in a fresh kernel")
    target.add_argument("-p", "--param", action="append", metavar="KEY=VALUE",
                        help="a parameter of --notebook (repeatable)")
    target.add_argument("--kernel", action=Once, metavar="NAME",
                        help="the kernel --notebook runs in (default: its own kernelspec)")
    target.add_argument("--snapshot", action="store_true",
                        help="store --notebook as it is now and run that copy every time "
                             "(default: each run reads the file)")
    target.add_argument("--output-dir", action=Once, metavar="DIR",
                        help="where --notebook's runs keep their executed notebooks "
                             "(default: beside the job store)")
    target.add_argument("--cwd", action=Once, metavar="DIR", help="the working directory")
    target.add_argument("--env", action="append", metavar="KEY=VALUE",
                        help="an environment variable of --command or --shell (repeatable)")
    add.add_argument("--tz", action=Once, metavar="ZONE",
                     help="IANA time zone of the expression (default: the local zone)")
    add.add_argument("--timeout", action=Once, type=seconds, metavar="SECONDS",
                     help="stop a run after this long")
    add.add_argument("--retries", action=Once, type=run_count, default=0, metavar="N",
                     help="retry a failed run N times (default: 0)")
    add.add_argument("--retry-delay", action=Once, type=seconds, default=30.0, metavar="SECONDS",
                     help="seconds between retries (default: %(default)g)")
    add.add_argument("--overlap", action=Once, choices=("skip", "allow"), default="skip",
                     help="a fire while a run is going: skip it or run too (default: skip)")
    add.add_argument("--catchup", action=Once, choices=("latest", "skip", "all"),
                     default="latest",
                     help="fires missed while no host ran: run the latest once (default), "
                          "only record them, or run each")
    add.add_argument("--catchup-window", action=Once, type=seconds, default=7 * 86_400.0,
                     metavar="SECONDS", help="how far back missed fires count (default: a week)")
    add.add_argument("--paused", action="store_true", help="store it paused")
    add.add_argument("--no-check", action="store_true",
                     help="store it even if its target cannot be found here (the hosts park "
                          "it until they can)")
    add.add_argument("--json", action="store_true", help="print what was stored as JSON")
    store_option(add)

    listing = actions.add_parser("list", help="list the durable jobs")
    listing.add_argument("--json", action="store_true", help="print them as JSON")
    store_option(listing)
    for action, text in (("show", "print one durable job, with its hosts and its last runs"),
                         ("pause", "pause a durable job in every host"),
                         ("resume", "resume a durable job (from its next fire time)"),
                         ("run", "ask a host to run a durable job now"),
                         ("stop", "ask every host running a durable job to stop it"),
                         ("remove", "remove a durable job from the store (every host stops "
                                    "hosting it)")):
        sub = actions.add_parser(action, help=text, description=text[0].upper() + text[1:] + ".")
        sub.add_argument("name", metavar="NAME")
        if action == "show":
            sub.add_argument("--json", action="store_true", help="print it as JSON")
        store_option(sub)

    change = actions.add_parser(
        "set", help="change a plugin's job in every process (kept in the store)",
        description="Store changes of an installed plugin's job: every process that loads "
                    "the plugin applies them, now and after restarts, until `jobs reset`. "
                    "(A durable job is changed with `jobs add`, which replaces it.)")
    change.add_argument("name", metavar="NAME")
    change.add_argument("--cron", action=Once, metavar="CRON", help="a new cron expression")
    change.add_argument("--tz", action=Once, metavar="ZONE", help="a new time zone")
    change.add_argument("--timeout", action=Once, type=seconds, metavar="SECONDS")
    change.add_argument("--retries", action=Once, type=run_count, metavar="N")
    change.add_argument("--retry-delay", action=Once, type=seconds, metavar="SECONDS")
    store_option(change)
    reset = actions.add_parser(
        "reset", help="forget what was changed of a plugin's job (its config applies again)",
        description="Forget the stored changes of a plugin's job (pause included): every "
                    "process applies its config again.")
    reset.add_argument("name", metavar="NAME")
    store_option(reset)


def jobs_command(args: argparse.Namespace) -> int:
    from ..core.errors import MashroomJobsError
    from ..durable.facade import DurableJobs

    store = open_store(store_path(args)) if args.action != "add" else _store_for_add(args)
    try:
        durable = DurableJobs(store.control, lambda: datetime.now(timezone.utc))
        try:
            status: int = _ACTIONS[args.action](args, durable, store)
            return status
        except (MashroomJobsError, ValueError, TypeError) as exc:
            if isinstance(exc, MashroomJobsError) and type(exc).__name__ in (
                    "StoreUnavailableError", "JobNotScheduledError"):
                raise CommandFailure(str(exc)) from None
            raise UsageFailure(str(exc)) from None
    finally:
        store.close()


def _store_for_add(args: argparse.Namespace) -> SQLiteStore:
    from ..core.errors import StoreError
    from ..store import SQLiteStore

    try:
        return SQLiteStore(store_path(args))  # made when missing: adding starts a store
    except StoreError as exc:
        raise UsageFailure(str(exc)) from None


def _add(args: argparse.Namespace, durable: DurableJobs, store: SQLiteStore) -> int:
    from ..core.cron import local_zone
    from ..durable import CatchUp, JobDefinition
    from ..targets.spelling import target_from_options

    target = target_from_options(
        command=args.command_line, shell=args.shell, call=args.call, args=args.arg,
        notebook=args.notebook, params=args.param, cwd=args.cwd, env=args.env,
        kernel=args.kernel, snapshot=args.snapshot, output_dir=args.output_dir)
    if not args.no_check:
        target.resolve()  # not found here: an error naming it (or --no-check)
    definition = JobDefinition.make(
        args.name, args.cron, target, timezone=args.tz or local_zone(),
        timeout=args.timeout, retries=args.retries, retry_delay=args.retry_delay,
        overlap=args.overlap, paused=args.paused,
        catchup=CatchUp(args.catchup, window=args.catchup_window))
    stored = durable.define(definition)
    if args.json:
        print(json.dumps(_definition_json(stored), indent=1))
    else:
        print(f"stored durable job {stored.name!r} (version {stored.version}): "
              f"{stored.describe()}")
    return 0


def _list(args: argparse.Namespace, durable: DurableJobs, store: SQLiteStore) -> int:
    from ..text import cut, plain_table, terminal_text

    infos = durable.jobs()
    overrides = durable.overrides()
    if args.json:
        print(json.dumps({"durable": [_info_json(info) for info in infos],
                          "plugin_changes": overrides}, indent=1))
        return 0
    for name, changes in overrides.items():
        print(f"plugin job {terminal_text(name)!r}: stored changes {changes}")
    if not infos:
        print("no durable jobs in the store")
        return 0
    now = datetime.now(timezone.utc)
    rows = [("name", "schedule", "target", "state", "next run", "changed by")]
    for info in infos:
        definition = info.definition
        rows.append((
            cut(terminal_text(info.name), 30),
            f"{definition.cron} ({definition.timezone})" if definition else "?",
            cut(terminal_text(definition.target.describe()), 40) if definition else "?",
            _state(info), _next(info, now), cut(terminal_text(info.changed_by), 40)))
    print("\n".join(plain_table(rows)))
    return 0


def _show(args: argparse.Namespace, durable: DurableJobs, store: SQLiteStore) -> int:
    info = durable.get(args.name)
    runs = store.history(args.name, 10)
    if args.json:
        print(json.dumps({**_info_json(info),
                          "runs": [run.to_json(texts=False) for run in runs]}, indent=1))
        return 0
    definition = info.definition
    print(f"{info.name}: {_state(info)}, version {info.version}, changed "
          f"{info.changed:%Y-%m-%d %H:%M:%S %Z} by {info.changed_by}")
    if definition is not None:
        print(f"  schedule: {definition.cron} ({definition.timezone}); next run "
              f"{_next(info, datetime.now(timezone.utc))}")
        print(f"  target:   {definition.target.describe()}")
        print(f"  catch-up: {definition.catchup.policy}, within "
              f"{definition.catchup.window:g} s")
    if info.error:
        print(f"  error:    {info.error}")
    for origin, error in info.parked_on.items():
        print(f"  parked on {origin}: {error}")
    for run in runs:
        print(f"  {run.timestamp:%Y-%m-%d %H:%M:%S} {run.trigger:9} {run.outcome.value:13} "
              f"{run.origin or ''}")
    return 0


def _verb(args: argparse.Namespace, durable: DurableJobs, store: SQLiteStore) -> int:
    name = args.name
    if args.action in ("pause", "resume") and store.control.definition(name) is None:
        _check_plugin(name)  # not durable: a plugin's job, paused in every process
        durable.set_override(name, paused=args.action == "pause")
        print(f"{args.action}d plugin job {name!r} in every process (until "
              f"`mashroom-jobs jobs reset`)")
        return 0
    if args.action == "remove":
        if not durable.remove(name):
            raise CommandFailure(f"no durable job named {name!r} in the store")
        print(f"removed durable job {name!r}")
    elif args.action == "run":
        durable.run(name)
        print(f"asked the hosts to run {name!r} now")
    elif args.action == "stop":
        durable.stop(name)
        print(f"asked the hosts to stop {name!r}")
    else:
        getattr(durable, args.action)(name)
        print(f"{args.action}d durable job {name!r}")
    return 0


def _set(args: argparse.Namespace, durable: DurableJobs, store: SQLiteStore) -> int:
    from ..core.cron import CronSchedule, resolve_zone

    _check_plugin(args.name)
    changes = {key: value for key, value in (
        ("cron_schedule", args.cron), ("timezone", args.tz), ("timeout", args.timeout),
        ("retries", args.retries), ("retry_delay", args.retry_delay)) if value is not None}
    if not changes:
        raise UsageFailure("give at least one change: --cron, --tz, --timeout, --retries, "
                           "--retry-delay")
    if args.cron is not None:
        CronSchedule(args.cron, resolve_zone(args.tz or "UTC"), name=args.name)  # checked
    durable.set_override(args.name, **changes)
    print(f"stored changes of plugin job {args.name!r}: {changes} (every process applies "
          f"them; `mashroom-jobs jobs reset` forgets them)")
    return 0


def _reset(args: argparse.Namespace, durable: DurableJobs, store: SQLiteStore) -> int:
    if not durable.reset(args.name):
        raise CommandFailure(f"nothing was stored for {args.name!r}")
    print(f"forgot the stored changes of {args.name!r}: its config applies again")
    return 0


def _check_plugin(name: str) -> None:
    from ..plugins import discover

    names = sorted(entry_point.name for entry_point in discover())
    if name not in names:
        raise CommandFailure(f"{name!r} is neither a durable job in the store nor an installed "
                             f"plugin (plugins: {', '.join(map(repr, names)) or 'none'})")


_ACTIONS: dict[str, Any] = {"add": _add, "list": _list, "show": _show, "pause": _verb,
                            "resume": _verb, "run": _verb, "stop": _verb, "remove": _verb,
                            "set": _set, "reset": _reset}


def _state(info: DurableInfo) -> str:
    if info.error:
        return "parked" if info.definition is not None else "unreadable"
    return "paused" if info.paused else "active"


def _next(info: DurableInfo, now: datetime) -> str:
    definition = info.definition
    if definition is None or info.paused:
        return "-"
    following = definition.schedule().next_fire_time(now)
    return f"{following:%Y-%m-%d %H:%M %Z}" if following is not None else "-"


def _definition_json(definition: Any) -> dict[str, Any]:
    return {"name": definition.name, **definition.to_data(), "version": definition.version,
            "changed": definition.changed.isoformat() if definition.changed else None,
            "changed_by": definition.changed_by}


def _info_json(info: DurableInfo) -> dict[str, Any]:
    data: dict[str, Any] = {"name": info.name, "version": info.version,
                            "changed": info.changed.isoformat(), "changed_by": info.changed_by,
                            "state": _state(info), "error": info.error,
                            "parked_on": info.parked_on}
    if info.definition is not None:
        data.update(info.definition.to_data())
    return data


