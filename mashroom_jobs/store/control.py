"""The store's control tables: what durable jobs are (definitions), what users changed of
plugin jobs (overrides), what they asked hosts to do (commands), and who hosts (heartbeats).

Everything here is small and rare next to the runs: a definition changes when a user
changes it, a host beats every few seconds.  Each change bumps one counter in ``meta``
(``control_version``) in the same transaction, so a host follows every other process's
changes by asking SQLite whether anything was committed at all (``PRAGMA data_version``,
answered from shared memory: no read of the file) and, only then, whether that counter
moved: :meth:`StoreControl.changed`.

The store keeps definitions as JSON text; what a definition means is the durable layer's
business (``mashroom_jobs.durable``).  One connection and one lock of its own, so that no
claim of an exclusive fire waits for a heartbeat.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Callable, Collection, Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any, NamedTuple, TypeVar

from ..core.clock import Clock
from ..core.errors import StoreUnavailableError
from .schema import micros, moment

__all__ = ["Command", "HostRow", "StoreControl", "Stored"]

T = TypeVar("T")

#: commands older than this are deleted (nobody will take them any more)
COMMAND_RETENTION_US = 86_400 * 1_000_000
#: job names per query of :meth:`StoreControl.last_fires` (each is bound twice; SQLite
#: takes at most 999 parameters in its oldest builds)
_NAMES_PER_QUERY = 400


class Stored(NamedTuple):
    """A definition (or an override) as the store keeps it."""

    name: str
    data: dict[str, Any]
    version: int
    created: datetime | None  # (None for an override)
    changed: datetime
    changed_by: str


class Command(NamedTuple):
    """What a user asked the hosts of a durable job to do: ``"run"`` (one host runs it
    now) or ``"stop"`` (every host stops its runs)."""

    id: int
    job: str
    action: str
    requested: datetime
    requested_by: str


class HostRow(NamedTuple):
    """One host's last heartbeat."""

    id: str
    kind: str
    machine: str
    pid: int
    started: datetime
    seen: datetime
    data: dict[str, Any]


class StoreControl:
    """The control tables of one store (see the module docstring).

    Parameters
    ----------
    connect : callable
        Makes a connection to the store (its own, opened on first use).
    origin : str
        Who this process is (written as ``changed_by``, ``requested_by``, ``taken_by``).
    clock : Clock
        What "now" is.
    path : str
        The store's file, for messages.
    """

    def __init__(self, connect: Callable[[], sqlite3.Connection], origin: str, clock: Clock,
                 path: str) -> None:
        self._connect = connect
        self.origin = origin
        self.clock = clock
        self.path = path
        self._lock = threading.Lock()
        self._conn: sqlite3.Connection | None = None
        self._closed = False
        self._data_version: int | None = None
        self._control_version: int | None = None

    # -- the connection ------------------------------------------------------------------

    @contextmanager
    def _connection(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            if self._closed:
                raise StoreUnavailableError(f"the job store {self.path} is closed")
            try:
                if self._conn is None:
                    self._conn = self._connect()
                yield self._conn
            except sqlite3.Error as exc:
                raise StoreUnavailableError(
                    f"could not use the job store {self.path}: {exc}") from None

    def _write(self, change: Callable[[sqlite3.Connection, int], T], *,
               bump: bool = True) -> T:
        """Run ``change(conn, now_us)`` in one transaction that bumps ``control_version``
        (not for heartbeats: hosts follow definitions and commands, not each other)."""
        with self._connection() as conn:
            conn.execute("BEGIN IMMEDIATE")
            try:
                result = change(conn, micros(self.clock.now()))
                if bump:
                    conn.execute("UPDATE meta SET value = CAST(value AS INTEGER) + 1 "
                                 "WHERE key = 'control_version'")
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
            return result

    def _read(self, sql: str, params: tuple[Any, ...] = ()) -> list[Any]:
        with self._connection() as conn:
            return conn.execute(sql, params).fetchall()

    def changed(self) -> bool:
        """Whether another process changed a definition, an override, a command or a host
        since the last call (the first call says True).  Costs one ``PRAGMA
        data_version`` while nothing was committed anywhere."""
        with self._connection() as conn:
            data_version = int(conn.execute("PRAGMA data_version").fetchone()[0])
            if data_version == self._data_version:
                return False
            self._data_version = data_version
            row = conn.execute(
                "SELECT value FROM meta WHERE key = 'control_version'").fetchone()
        version = int(row[0]) if row is not None else 0
        if version == self._control_version:
            return False
        self._control_version = version
        return True

    # -- definitions -----------------------------------------------------------------------

    def definitions(self) -> list[Stored]:
        """Every durable job's definition, by name."""
        rows = self._read("SELECT name, data, version, created_us, changed_us, changed_by "
                          "FROM definitions ORDER BY name")
        return [_stored(row, created=True) for row in rows]

    def definition(self, name: str) -> Stored | None:
        rows = self._read("SELECT name, data, version, created_us, changed_us, changed_by "
                          "FROM definitions WHERE name = ?", (name,))
        return _stored(rows[0], created=True) if rows else None

    def define(self, name: str, data: dict[str, Any], *,
               expect_version: int | None = None) -> Stored:
        """Store ``data`` as the definition of ``name`` (made, or replaced with a version
        one higher); returns what was stored.  With ``expect_version``, only when the
        stored version is that (0: when there is none), else raise ``ValueError``: a
        change made meanwhile by another process wins and is reported."""
        text = json.dumps(data, sort_keys=True)

        def change(conn: sqlite3.Connection, now: int) -> Stored:
            row = conn.execute("SELECT version, created_us FROM definitions WHERE name = ?",
                               (name,)).fetchone()
            version, created = (int(row[0]), int(row[1])) if row is not None else (0, now)
            if expect_version is not None and version != expect_version:
                raise ValueError(f"the definition of {name!r} changed meanwhile (version "
                                 f"{version}, not {expect_version})")
            conn.execute("INSERT OR REPLACE INTO definitions VALUES (?, ?, ?, ?, ?, ?)",
                         (name, text, version + 1, created, now, self.origin))
            return Stored(name, json.loads(text), version + 1, moment(created),
                          moment(now), self.origin)

        return self._write(change)

    def remove(self, name: str) -> bool:
        """Delete the definition of ``name``; False when there was none."""
        def change(conn: sqlite3.Connection, now: int) -> bool:
            return conn.execute("DELETE FROM definitions WHERE name = ?", (name,)).rowcount > 0

        return self._write(change)

    # -- overrides of plugin jobs -------------------------------------------------------------

    def overrides(self) -> list[Stored]:
        rows = self._read("SELECT name, data, version, NULL, changed_us, changed_by "
                          "FROM overrides ORDER BY name")
        return [_stored(row, created=False) for row in rows]

    def override(self, name: str, changes: dict[str, Any]) -> Stored:
        """Merge ``changes`` into the stored override of the plugin job ``name`` (a key set
        to None is removed); returns the override now stored."""
        def change(conn: sqlite3.Connection, now: int) -> Stored:
            row = conn.execute("SELECT data, version FROM overrides WHERE name = ?",
                               (name,)).fetchone()
            data: dict[str, Any] = json.loads(row[0]) if row is not None else {}
            version = int(row[1]) if row is not None else 0
            for key, value in changes.items():
                if value is None:
                    data.pop(key, None)
                else:
                    data[key] = value
            if data:
                conn.execute("INSERT OR REPLACE INTO overrides VALUES (?, ?, ?, ?, ?)",
                             (name, json.dumps(data, sort_keys=True), version + 1, now,
                              self.origin))
            else:
                conn.execute("DELETE FROM overrides WHERE name = ?", (name,))
            return Stored(name, data, version + 1, None, moment(now), self.origin)

        return self._write(change)

    def reset_override(self, name: str) -> bool:
        """Forget what was stored for the plugin job ``name``; False when nothing was."""
        def change(conn: sqlite3.Connection, now: int) -> bool:
            return conn.execute("DELETE FROM overrides WHERE name = ?", (name,)).rowcount > 0

        return self._write(change)

    # -- commands ---------------------------------------------------------------------------

    def request(self, job: str, action: str) -> int:
        """Ask the hosts of ``job`` to ``action`` (``"run"``, ``"stop"``); the command's id."""
        if action not in ("run", "stop"):
            raise ValueError(f"action must be 'run' or 'stop', got {action!r}")

        def change(conn: sqlite3.Connection, now: int) -> int:
            conn.execute("DELETE FROM commands WHERE requested_us < ?",
                         (now - COMMAND_RETENTION_US,))
            cursor = conn.execute(
                "INSERT INTO commands (job, action, requested_us, requested_by) "
                "VALUES (?, ?, ?, ?)", (job, action, now, self.origin))
            return int(cursor.lastrowid or 0)

        return self._write(change)

    def commands(self, after: int) -> list[Command]:
        """Commands with an id above ``after``, oldest first (untaken "run"s, every
        "stop")."""
        rows = self._read(
            "SELECT id, job, action, requested_us, requested_by FROM commands "
            "WHERE id > ? AND (action = 'stop' OR taken_by IS NULL) ORDER BY id", (after,))
        return [Command(int(r[0]), str(r[1]), str(r[2]), moment(r[3]), str(r[4]))
                for r in rows]

    def last_command(self) -> int:
        """The id of the newest command (hosts start following from there)."""
        rows = self._read("SELECT max(id) FROM commands")
        return int(rows[0][0] or 0)

    def take(self, command: Command) -> bool:
        """Take a "run" command: True for exactly one of the hosts that try."""
        def change(conn: sqlite3.Connection, now: int) -> bool:
            return conn.execute(
                "UPDATE commands SET taken_by = ?, taken_us = ? WHERE id = ? "
                "AND taken_by IS NULL", (self.origin, now, command.id)).rowcount == 1

        return self._write(change)

    # -- hosts --------------------------------------------------------------------------------

    def beat(self, host_id: str, kind: str, machine: str, pid: int, started: datetime,
             data: dict[str, Any]) -> None:
        """Write this host's heartbeat (its row, ``seen`` now)."""
        text = json.dumps(data, sort_keys=True)

        def change(conn: sqlite3.Connection, now: int) -> None:
            conn.execute("INSERT OR REPLACE INTO hosts VALUES (?, ?, ?, ?, ?, ?, ?)",
                         (host_id, kind, machine, pid, micros(started), now, text))

        self._write(change, bump=False)

    def leave(self, host_id: str) -> None:
        """Remove this host's row (it stopped cleanly)."""
        def change(conn: sqlite3.Connection, now: int) -> None:
            conn.execute("DELETE FROM hosts WHERE id = ?", (host_id,))

        self._write(change, bump=False)

    def hosts(self) -> list[HostRow]:
        """Every host's last heartbeat, the most recently seen first."""
        rows = self._read("SELECT id, kind, machine, pid, started_us, seen_us, data FROM hosts "
                          "ORDER BY seen_us DESC")
        return [HostRow(str(r[0]), str(r[1]), str(r[2]), int(r[3]), moment(r[4]),
                        moment(r[5]), json.loads(r[6])) for r in rows]

    def forget_hosts(self, seen_before: datetime) -> int:
        """Delete the rows of hosts last seen before ``seen_before``; how many."""
        def change(conn: sqlite3.Connection, now: int) -> int:
            return int(conn.execute("DELETE FROM hosts WHERE seen_us < ?",
                                    (micros(seen_before),)).rowcount)

        return self._write(change, bump=False)

    # -- fires ----------------------------------------------------------------------------------

    def last_fire(self, job: str) -> datetime | None:
        """The latest fire of ``job`` any process claimed or recorded (a run, a catch-up, a
        fire recorded as missed), or None."""
        rows = self._read(
            "SELECT max(t) FROM (SELECT max(scheduled_for_us) AS t FROM claims WHERE job = ? "
            "UNION ALL SELECT max(scheduled_for_us) FROM runs WHERE job = ?)", (job, job))
        value = rows[0][0] if rows else None
        return None if value is None else moment(int(value))

    def last_fires(self, jobs: Collection[str]) -> dict[str, datetime]:
        """:meth:`last_fire` of each of ``jobs`` in one query (a few for many jobs); the
        jobs with none are left out."""
        names = sorted(set(jobs))
        found: dict[str, datetime] = {}
        for start in range(0, len(names), _NAMES_PER_QUERY):
            chunk = tuple(names[start:start + _NAMES_PER_QUERY])
            marks = ", ".join("?" * len(chunk))
            rows = self._read(
                f"SELECT job, max(t) FROM (SELECT job, max(scheduled_for_us) AS t FROM claims "
                f"WHERE job IN ({marks}) GROUP BY job UNION ALL SELECT job, "
                f"max(scheduled_for_us) FROM runs WHERE job IN ({marks}) GROUP BY job) "
                f"GROUP BY job", chunk + chunk)
            found.update((str(job), moment(int(value))) for job, value in rows
                         if value is not None)
        return found

    def close(self) -> None:
        with self._lock:
            self._closed = True
            conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()

    def reset_connection(self) -> None:
        """The file was reopened (deleted or replaced): the next use reconnects."""
        with self._lock:
            conn, self._conn = self._conn, None
            self._data_version = None
        if conn is not None:
            conn.close()


def _stored(row: Any, *, created: bool) -> Stored:
    return Stored(str(row[0]), json.loads(row[1]), int(row[2]),
                  moment(row[3]) if created else None, moment(row[4]), str(row[5]))
