"""The job store's file: its schema and the migrations to it, opening a file as a job
store (WAL mode, the schema made or migrated, a clear reason when it cannot be), and runs
as rows and back.

Apart from the store class so that everything tied to the file's layout is in one place:
a new schema version changes this module only.
"""

from __future__ import annotations

import functools
import os
import sqlite3
import time
from collections.abc import Sequence
from datetime import datetime, timedelta, timezone, tzinfo
from typing import Any
from zoneinfo import ZoneInfo

from ..core.errors import StoreError, StoreUnavailableError
from ..core.records import MAX_TEXT_CHARS, JobInvocation, Outcome, bounded

#: the schema this module writes; a store of a newer version is refused
SCHEMA_VERSION = 3

_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_MICROSECOND = timedelta(microseconds=1)

# Version N's schema is MIGRATIONS[0] + ... + MIGRATIONS[N-1]: each step takes a store
# from one version to the next, in one transaction.
MIGRATIONS: tuple[tuple[str, ...], ...] = (
    (  # 0 -> 1
        "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID",
        "INSERT INTO meta VALUES ('application', 'mashroom-jobs')",
        # scheduled_for_us: the fire time, exact, in microseconds since 1970 (UTC)
        "CREATE TABLE claims (job TEXT NOT NULL, scheduled_for_us INTEGER NOT NULL,"
        " origin TEXT NOT NULL, claimed_at_us INTEGER NOT NULL,"
        " PRIMARY KEY (job, scheduled_for_us)) WITHOUT ROWID",
        "CREATE TABLE runs (id INTEGER PRIMARY KEY, job TEXT NOT NULL, zone TEXT NOT NULL,"
        " started_us INTEGER NOT NULL, scheduled_for_us INTEGER, trigger TEXT NOT NULL,"
        " attempt INTEGER NOT NULL, duration_ms REAL NOT NULL, success INTEGER NOT NULL,"
        " error TEXT, traceback TEXT, output TEXT NOT NULL, worker TEXT, origin TEXT NOT NULL)",
        "CREATE INDEX runs_by_job ON runs (job, started_us DESC, id DESC)",
        "CREATE INDEX runs_by_time ON runs (started_us DESC, id DESC)",
    ),
    (  # 1 -> 2: how each run ended, one word (Outcome's value); NULL in rows of version 1,
       # which are read from `success` (a run then either succeeded or failed)
        "ALTER TABLE runs ADD COLUMN outcome TEXT",
    ),
    (  # 2 -> 3: durable jobs (definitions as JSON, by name), plugin jobs' stored overrides,
       # commands for the hosts (run now, stop), the hosts' heartbeats; and what a run
       # produced (a file) and of which revision of its target
        "CREATE TABLE definitions (name TEXT PRIMARY KEY, data TEXT NOT NULL,"
        " version INTEGER NOT NULL, created_us INTEGER NOT NULL, changed_us INTEGER NOT NULL,"
        " changed_by TEXT NOT NULL) WITHOUT ROWID",
        "CREATE TABLE overrides (name TEXT PRIMARY KEY, data TEXT NOT NULL,"
        " version INTEGER NOT NULL, changed_us INTEGER NOT NULL, changed_by TEXT NOT NULL)"
        " WITHOUT ROWID",
        "CREATE TABLE commands (id INTEGER PRIMARY KEY, job TEXT NOT NULL, action TEXT NOT NULL,"
        " requested_us INTEGER NOT NULL, requested_by TEXT NOT NULL, taken_by TEXT,"
        " taken_us INTEGER)",
        "CREATE TABLE hosts (id TEXT PRIMARY KEY, kind TEXT NOT NULL, machine TEXT NOT NULL,"
        " pid INTEGER NOT NULL, started_us INTEGER NOT NULL, seen_us INTEGER NOT NULL,"
        " data TEXT NOT NULL) WITHOUT ROWID",
        # bumped by every change of the three tables above: what hosts follow
        "INSERT INTO meta VALUES ('control_version', '0')",
        "ALTER TABLE runs ADD COLUMN artifact TEXT",
        "ALTER TABLE runs ADD COLUMN revision TEXT",
    ),
)
assert len(MIGRATIONS) == SCHEMA_VERSION

INSERT_RUN = (
    "INSERT INTO runs (job, zone, started_us, scheduled_for_us, trigger, attempt, duration_ms,"
    " success, error, traceback, output, worker, origin, outcome, artifact, revision)"
    " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)"
)
SELECT_RUNS = (
    "SELECT job, zone, started_us, scheduled_for_us, trigger, attempt, duration_ms, success,"
    " error, traceback, output, worker, origin, outcome, artifact, revision FROM runs"
)


# --- opening ------------------------------------------------------------------------------


def connect(path: str, busy_timeout: float) -> sqlite3.Connection:
    """A connection to the store ``path`` for any thread, in autocommit mode."""
    conn = sqlite3.connect(path, timeout=busy_timeout, isolation_level=None,
                           check_same_thread=False)
    try:
        conn.execute("PRAGMA synchronous=NORMAL")
        # only the writer thread checkpoints, outside the hot paths (see writer.checkpoint)
        conn.execute("PRAGMA wal_autocheckpoint=0")
    except BaseException:
        conn.close()
        raise
    return conn


def open_store(path: str, busy_timeout: float) -> sqlite3.Connection:
    """A connection to the store ``path``, made (with its folder) when missing, in WAL
    mode and migrated to :data:`SCHEMA_VERSION`.

    Raises
    ------
    StoreError
        When the file cannot be used (:class:`StoreUnavailableError` when it is locked).
    """
    folder = os.path.dirname(path)
    if os.path.isdir(path):
        raise StoreError(f"cannot use the job store {path}: it is a folder, not a file")
    existed = os.path.exists(path)
    try:
        os.makedirs(folder, exist_ok=True)
    except OSError as exc:
        raise StoreError(f"cannot create the job store {path}: cannot make its "
                         f"folder {folder}: {exc.strerror or exc}") from None
    try:
        conn = connect(path, busy_timeout)
    except sqlite3.Error as exc:
        raise StoreError(open_failure(exc, path, existed, busy_timeout)) from None
    try:
        _set_wal(conn, path, busy_timeout)
        _migrate(conn, path)
    except sqlite3.Error as exc:
        conn.close()
        error = StoreUnavailableError if locked(exc) else StoreError
        raise error(open_failure(exc, path, existed, busy_timeout)) from None
    except BaseException:
        conn.close()
        raise
    return conn


def _set_wal(conn: sqlite3.Connection, path: str, busy_timeout: float) -> None:
    # Switching to WAL takes a lock no busy handler waits for: retry for busy_timeout.
    deadline = time.monotonic() + busy_timeout
    while True:
        try:
            mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
            break
        except sqlite3.OperationalError as exc:
            if not locked(exc) or time.monotonic() >= deadline:
                raise
            time.sleep(0.01)
    if str(mode).lower() != "wal":
        raise StoreError(f"cannot use the job store {path}: SQLite cannot put it in "
                         f"WAL mode (it stays in {mode!r} mode)")


def _migrate(conn: sqlite3.Connection, path: str) -> None:
    # BEGIN IMMEDIATE takes the write lock, so two processes opening a new file
    # create the schema once; it also finds a read-only file at once.
    conn.execute("BEGIN IMMEDIATE")
    try:
        version = _version(conn, path)
        if version > SCHEMA_VERSION:
            raise StoreError(
                f"cannot use the job store {path}: its schema is version {version}, "
                f"newer than the version {SCHEMA_VERSION} this mashroom-jobs knows; "
                f"upgrade mashroom-jobs, or use another store"
            )
        for step in MIGRATIONS[version:]:
            for statement in step:
                conn.execute(statement)
        # written on every open: a file SQLite could open only read-only fails here,
        # at start, instead of at the first run
        conn.execute("INSERT OR REPLACE INTO meta VALUES ('schema_version', ?)",
                     (str(SCHEMA_VERSION),))
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise


def _version(conn: sqlite3.Connection, path: str) -> int:
    tables = {row[0] for row in conn.execute(
        "SELECT name FROM sqlite_master WHERE type = 'table'")}
    if not tables:
        return 0
    meta = dict(conn.execute("SELECT key, value FROM meta").fetchall()) \
        if "meta" in tables else {}
    if meta.get("application") != "mashroom-jobs":
        raise StoreError(
            f"cannot use the job store {path}: it is a SQLite database of something "
            f"else (tables {', '.join(sorted(tables))}), not a mashroom-jobs store"
        )
    try:
        return int(meta.get("schema_version", "0"))
    except ValueError:
        raise StoreError(f"cannot use the job store {path}: its schema version "
                         f"{meta.get('schema_version')!r} is not a number") from None


def open_failure(exc: sqlite3.Error, path: str, existed: bool, busy_timeout: float) -> str:
    """A sqlite3 error at opening, as "cannot use the job store PATH: why"."""
    text = str(exc)
    folder = os.path.dirname(path)
    if "file is not a database" in text:
        why = "the file is not a SQLite database"
    elif "readonly" in text or "read-only" in text:
        if existed and not os.access(path, os.W_OK):
            why = "the file is read-only"
        elif not os.access(folder, os.W_OK):
            why = (f"its folder {folder} is read-only (SQLite must create the "
                   f"{os.path.basename(path)}-wal and -shm files next to it)")
        else:
            why = f"it cannot be written ({text})"
    elif "unable to open" in text:
        if not existed and not os.access(folder, os.W_OK):
            return (f"cannot create the job store {path}: its folder {folder} is "
                    f"not writable")
        why = f"it cannot be opened ({text})"
    elif locked(exc):
        why = (f"another process holds it locked (waited {busy_timeout:g} s): "
               f"{text}")
    else:
        why = text
    return f"cannot use the job store {path}: {why}"


def locked(exc: BaseException) -> bool:
    """Whether a sqlite3 error says another connection holds the database."""
    text = str(exc)
    return "locked" in text or "busy" in text


# --- values in and out of rows ------------------------------------------------------------


def micros(moment: datetime) -> int:
    """An aware datetime as exact microseconds since 1970 (UTC)."""
    return (moment - _EPOCH) // _MICROSECOND


def _zone_text(moment: datetime) -> str:
    """The zone a run's times are shown in: an IANA key, or a fixed offset ``+01:00``."""
    key = getattr(moment.tzinfo, "key", None)
    if isinstance(key, str):
        return key
    offset = moment.utcoffset() or timedelta(0)
    sign = "-" if offset < timedelta(0) else "+"
    minutes = abs(offset) // timedelta(minutes=1)
    return f"{sign}{minutes // 60:02d}:{minutes % 60:02d}"


@functools.lru_cache(maxsize=256)
def _zone(text: str) -> tzinfo:
    if text[:1] in "+-" and len(text) == 6:
        minutes = int(text[1:3]) * 60 + int(text[4:6])
        return timezone(timedelta(minutes=-minutes if text[0] == "-" else minutes))
    try:
        return ZoneInfo(text)
    except (ValueError, OSError):  # written where that zone exists, read where it does not
        return timezone.utc


def moment(micros: int) -> datetime:
    """Microseconds since 1970 (as :func:`micros` makes them) as an aware UTC datetime."""
    return _EPOCH + timedelta(microseconds=micros)


def _moment(micros: int, zone: tzinfo) -> datetime:
    return (_EPOCH + timedelta(microseconds=micros)).astimezone(zone)


def _outcome(word: str | None, success: object) -> Outcome:
    if word is None:  # a row of schema version 1
        return Outcome.OK if success else Outcome.FAILED
    try:
        return Outcome(word)
    except ValueError:  # written by a newer version: say what can be said
        return Outcome.OK if success else Outcome.FAILED


def invocation(row: Sequence[Any]) -> JobInvocation:
    """A run read with :data:`SELECT_RUNS` (the decoder of :func:`run_row`)."""
    zone = _zone(row[1])
    return JobInvocation(
        timestamp=_moment(row[2], zone),
        scheduled_for=None if row[3] is None else _moment(row[3], zone), trigger=row[4],
        execution_time_ms=row[6], outcome=_outcome(row[13], row[7]), error_message=row[8],
        traceback=row[9], output=row[10], attempt=row[5], worker=row[11], origin=row[12],
        job=str(row[0]), artifact=row[14], revision=row[15],
    )


#: a stored text's most characters: a run's own cap, and room for the note of what it cut
_STORED_CHARS = MAX_TEXT_CHARS + 1_000


def run_row(job: str, inv: JobInvocation, origin: str) -> tuple[Any, ...]:
    """The values :data:`INSERT_RUN` stores for a run of ``job`` (``origin`` when the run
    names none); the encoder of :func:`invocation`.  ``success`` is kept for readers of
    schema version 1's layout."""
    scheduled = inv.scheduled_for
    return (
        job, _zone_text(inv.timestamp), micros(inv.timestamp),
        None if scheduled is None else micros(scheduled), inv.trigger, inv.attempt,
        # bounded here too: whoever made the record, a row never holds megabytes
        float(inv.execution_time_ms), int(inv.outcome is Outcome.OK),
        None if inv.error_message is None else bounded(inv.error_message, _STORED_CHARS),
        None if inv.traceback is None else bounded(inv.traceback, _STORED_CHARS),
        bounded(inv.output or "", _STORED_CHARS), inv.worker, inv.origin or origin,
        inv.outcome.value, inv.artifact, inv.revision,
    )
