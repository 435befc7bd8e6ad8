"""``mashroom-jobs status``: whether a live host holds the job store, for supervisors and
container health checks.

Exit status 0 when at least one host (a kernel, a Jupyter server, a ``mashroom-jobs run``;
``--kind`` narrows it) wrote a heartbeat less than ``--max-age`` seconds ago (default:
the age after which hosts count as gone); 1 when none did, or there is no store; 2 for bad
usage.  One line says why, on stdout when healthy and on stderr when not; ``--json``
prints every host instead.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import datetime, timezone
from typing import Any

from .history import open_store, store_path
from .options import CommandFailure, Once, UsageFailure, seconds, store_option

__all__ = ["add_status_parser", "status_command"]

KINDS = ("kernel", "server", "run", "python")


def add_status_parser(commands: Any) -> None:
    """Add ``status`` to the command's sub-commands."""
    from ..durable.host import STALE_AFTER

    status = commands.add_parser(
        "status", help="exit 0 when a live host holds the job store (a health check)",
        description="Check that a host (a kernel, a Jupyter server or a `mashroom-jobs run`) "
                    "holds the job store: exit status 0 when one wrote its heartbeat "
                    "recently, 1 when none did or there is no store, with a one-line "
                    "reason. For systemd, Docker HEALTHCHECK and Kubernetes probes.",
    )
    status.add_argument("--kind", action=Once, choices=KINDS,
                        help="only hosts of this kind count (e.g. run: the headless service)")
    status.add_argument("--max-age", action=Once, type=seconds,
                        default=STALE_AFTER.total_seconds(), metavar="SECONDS",
                        help="a heartbeat older than this is stale (default: %(default)g, "
                             "when hosts count as gone)")
    status.add_argument("--json", action="store_true",
                        help="print the hosts as JSON (the exit status is the same)")
    store_option(status)


def status_command(args: argparse.Namespace) -> int:
    from ..core.errors import StoreError
    from ..store.control import HostRow

    path = store_path(args)
    try:
        store = open_store(path)
    except CommandFailure as exc:
        if args.json:
            print(json.dumps({"healthy": False, "reason": str(exc), "hosts": []}))
        raise
    try:
        rows: list[HostRow] = store.control.hosts()
    except StoreError as exc:
        raise CommandFailure(str(exc)) from None
    finally:
        store.close()
    now = datetime.now(timezone.utc)
    healthy, reason = judge(rows, now, args.max_age, args.kind, path)
    if args.json:
        print(json.dumps({"healthy": healthy, "reason": reason, "store": path, "hosts": [
            {"id": r.id, "kind": r.kind, "machine": r.machine, "pid": r.pid,
             "origin": r.data.get("origin"), "started": r.started.isoformat(),
             "seen": r.seen.isoformat(), "age": round((now - r.seen).total_seconds(), 3),
             "jobs": r.data.get("jobs", [])} for r in rows]}, indent=1))
        return 0 if healthy else 1
    if healthy:
        print(f"mashroom-jobs status: {reason}")
        return 0
    print(f"mashroom-jobs status: {reason}", file=sys.stderr)
    return 1


def judge(rows: Any, now: datetime, max_age: float, kind: str | None, path: str
          ) -> tuple[bool, str]:
    """(healthy, the one-line reason) for the heartbeats ``rows`` (newest first)."""
    if max_age <= 0:
        raise UsageFailure(f"--max-age must be more than 0 seconds, got {max_age:g}")
    which = f"{kind} host" if kind else "host"
    rows = [r for r in rows if kind is None or r.kind == kind]
    if not rows:
        return False, f"no {which} has written a heartbeat to the job store {path}"
    live = [r for r in rows if (now - r.seen).total_seconds() <= max_age]
    if not live:
        newest = rows[0]
        age = (now - newest.seen).total_seconds()
        return False, (f"no live {which}: the newest heartbeat ({_who(newest)}) is "
                       f"{age:.0f} s old, more than {max_age:g} s")
    jobs = sorted({job for r in live for job in r.data.get("jobs", [])})
    age = (now - live[0].seen).total_seconds()
    return True, (f"ok: {len(live)} live {which}{'s' if len(live) != 1 else ''} "
                  f"({', '.join(_who(r) for r in live[:3])}{', ...' if len(live) > 3 else ''}; "
                  f"newest heartbeat {age:.0f} s ago), {len(jobs)} durable "
                  f"job{'s' if len(jobs) != 1 else ''} hosted")


def _who(row: Any) -> str:
    return f"{row.kind} on {row.machine} pid {row.pid}"
