"""``mashroom-jobs history`` and ``mashroom-jobs store``: read the job store's runs, say
where it is, prune and vacuum it."""

from __future__ import annotations

import argparse
import json
import os
from typing import TYPE_CHECKING, Any

from .options import CommandFailure, UsageFailure

if TYPE_CHECKING:
    from ..store import SQLiteStore


def default_store() -> str:
    from ..core.errors import StoreError
    from ..store import default_store_path

    try:
        return default_store_path()
    except StoreError as exc:
        raise UsageFailure(str(exc)) from None


def store_path(args: argparse.Namespace) -> str:
    from ..store import store_location

    if args.store is None:
        if "store" in getattr(args, "_given", {}):
            raise UsageFailure("--store none: there is no job store to read in memory; give "
                               "a path")
        return default_store()
    return store_location(args.store)


def open_store(path: str, **settings: Any) -> SQLiteStore:
    from ..core.errors import StoreError, StoreUnavailableError
    from ..store import SQLiteStore

    if not os.path.exists(path):
        raise CommandFailure(f"there is no job store at {path} (no run has been recorded there)")
    try:
        return SQLiteStore(path, **settings)
    except StoreUnavailableError as exc:  # busy: not the user's mistake
        raise CommandFailure(str(exc)) from None
    except StoreError as exc:
        raise UsageFailure(str(exc)) from None


def history_command(args: argparse.Namespace) -> int:
    from ..core.errors import StoreError
    from ..text import cut, plain_table, result_text, terminal_text

    path = store_path(args)
    store = open_store(path)
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
    # a notebook job's runs: which revision of the notebook ran, and its executed copy
    kept = any(run.artifact or run.revision for _, run in runs)
    rows: list[tuple[str, ...]] = [("started", "job", "trigger", "duration", "result",
                                    "ran in") + (("revision", "executed notebook") if kept
                                                 else ())]
    for job, run in runs:
        trigger = run.trigger + (f" {run.attempt}" if run.attempt > 1 else "")
        # what a job wrote is shown, never obeyed: its escape sequences could rewrite
        # the terminal (colour it, retitle it, hide the lines above)
        row: tuple[str, ...] = (
            run.timestamp.isoformat(sep=" ", timespec="seconds"), terminal_text(job), trigger,
            f"{run.execution_time_ms:.1f} ms" if run.outcome.ran else "-",
            cut(terminal_text(result_text(run)), 60),
            terminal_text(run.origin or ""))
        if kept:
            row += (terminal_text(run.revision or ""), terminal_text(run.artifact or ""))
        rows.append(row)
    for line in plain_table(rows):
        print(line)
    return 0


def _run_json(job: str, run: Any) -> dict[str, Any]:
    return {**run.to_json(), "job": job}


def store_command(args: argparse.Namespace) -> int:
    import sqlite3

    path = store_path(args)
    if args.action == "path":
        print(path)
        return 0
    store = open_store(path, retention_runs=args.keep_runs, retention_days=args.keep_days)
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
