"""The job store: every run, and a claim on each exclusive fire, in one SQLite file that
every kernel and ``mashroom-jobs run`` process of a user shares.

:class:`SQLiteStore` is two things to the service:

* the runner's :class:`~mashroom_jobs.core.runs.Claimer`: at a fire time of an
  exclusive job, each process sharing the store ``INSERT``\\ s the key
  ``(job, scheduled_for)`` into ``claims``; the primary key lets exactly one of
  them in, and the others learn who won.  No lock outlives its process (SQLite's
  locks are the operating system's, released when a process dies), and the key
  stays for a day, so a process whose clock lags fires the same time in vain.
* the listener's ``RunSink``: :meth:`SQLiteStore.record` only appends the run to
  a queue; a writer thread of the store inserts queued runs in batches (one
  transaction each), retries while another process holds the database, and
  never drops a run because the store is busy.  The timer never waits on SQLite.

:meth:`SQLiteStore.history` reads the runs of every process, with this process's
runs still queued merged in.  A job's definition is not stored (a callable cannot
be): only runs and claims.

Threads: the writer thread owns its connection; claims (pool workers) and reads
(any thread) each have a connection and a lock of their own.
"""

from __future__ import annotations

import functools
import itertools
import logging
import os
import socket
import sqlite3
import tempfile
import threading
import time
from collections import deque
from collections.abc import Iterator, Sequence
from datetime import datetime, timedelta, timezone, tzinfo
from typing import Any
from zoneinfo import ZoneInfo

from .core.clock import Clock, SystemClock
from .core.errors import StoreError, StoreUnavailableError
from .core.records import JobInvocation

__all__ = [
    "NETWORK_FILESYSTEMS", "SCHEMA_VERSION", "SQLiteStore", "default_store_path",
    "local_store_path", "make_origin", "network_filesystem", "store_location",
]

log = logging.getLogger("mashroom_jobs.store")

#: the schema this module writes; a store of a newer version is refused
SCHEMA_VERSION = 1
URL_PREFIX = "sqlite:///"
#: seconds a claim waits for another process's write before the fire runs unclaimed
DEFAULT_BUSY_TIMEOUT = 2.0
#: claims are kept this long: a process whose clock lags less than this never runs a
#: fire that another one already ran
CLAIM_RETENTION_SECONDS = 86_400.0
#: runs queued for the writer, at most; beyond it the oldest are dropped (with a warning)
MAX_PENDING = 100_000
#: runs inserted in one transaction, at most
MAX_BATCH = 5_000
#: file systems on which SQLite's locks (and so WAL) are unreliable
NETWORK_FILESYSTEMS = frozenset({
    "nfs", "nfs4", "cifs", "smbfs", "smb3", "ncpfs", "9p", "afs", "coda", "ceph",
    "glusterfs", "lustre", "gpfs", "beegfs", "orangefs", "pvfs2", "davfs", "fuse.davfs2",
    "fuse.sshfs", "sshfs", "fuse.ceph", "fuse.glusterfs", "fuse.gcsfuse", "gcsfuse",
    "fuse.s3fs", "s3fs", "fuse.rclone", "fuse.juicefs", "fuse.cephfs", "fuse.lizardfs",
    "fuse.moosefs", "fuse.mfs", "fuse.blobfuse", "fuse.blobfuse2", "fuse.goofys",
})

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
)
assert len(MIGRATIONS) == SCHEMA_VERSION

_INSERT_RUN = (
    "INSERT INTO runs (job, zone, started_us, scheduled_for_us, trigger, attempt, duration_ms,"
    " success, error, traceback, output, worker, origin) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)"
)
_SELECT_RUNS = (
    "SELECT job, zone, started_us, scheduled_for_us, trigger, attempt, duration_ms, success,"
    " error, traceback, output, worker, origin FROM runs"
)


# --- where the store lives -------------------------------------------------------------


def store_location(value: object) -> str:
    """The file path a ``store`` setting names: a path, or a ``sqlite:///PATH`` URL.

    As in SQLAlchemy, ``sqlite:///jobs.sqlite`` is relative (to the working directory)
    and ``sqlite:////home/me/jobs.sqlite`` absolute; ``~`` is expanded.

    Raises
    ------
    ValueError
        For anything else, saying what a valid value looks like.
    """
    if isinstance(value, os.PathLike):
        value = os.fspath(value)
    if not isinstance(value, str):
        raise ValueError(f"store must be a file path or a sqlite:///PATH URL, "
                         f"got {type(value).__name__}")
    path = value
    if value.startswith(URL_PREFIX):
        path = value[len(URL_PREFIX):]
    elif "://" in value:
        scheme = value.split("://", 1)[0]
        if scheme.lower() == "sqlite":
            raise ValueError(f"invalid store URL {value!r}: a SQLite URL has no host; write "
                             f"sqlite:///relative/path or sqlite:////absolute/path")
        raise ValueError(f"unsupported store {value!r}: the job store is a SQLite file; give "
                         f"its path or a sqlite:///PATH URL")
    if not path.strip():
        raise ValueError(f"store {value!r} names no file: give a path, or None to keep runs "
                         f"in memory")
    if "\0" in path:
        raise ValueError(f"store {value!r} contains a NUL character")
    if path == ":memory:" or path.startswith("file::memory:"):
        raise ValueError(f"store {value!r} is an in-memory database, which no other process "
                         f"can share: use None to keep runs in this process's memory")
    return os.path.abspath(os.path.expanduser(path))


def _unescape_mount(field: str) -> str:
    # /proc/mounts writes space, tab, newline and backslash as octal escapes
    for code, char in (("\\040", " "), ("\\011", "\t"), ("\\012", "\n"), ("\\134", "\\")):
        field = field.replace(code, char)
    return field


def network_filesystem(path: str, mounts: str = "/proc/mounts") -> str | None:
    """The type of the network file system ``path``'s folder is on, or None.

    Reads the mount table ``mounts`` (Linux's ``/proc/mounts`` by default; a missing
    or unreadable table means "not known to be remote") and picks the mount with the
    longest mount point containing the folder's real path.
    """
    # (realpath resolves the symbolic links of the part that exists, and keeps the rest)
    real = os.path.realpath(os.path.dirname(os.path.abspath(path)))
    try:
        with open(mounts, encoding="utf-8", errors="replace") as f:
            lines = f.read().splitlines()
    except OSError:
        return None
    best, fstype = -1, ""
    for line in lines:
        fields = line.split()
        if len(fields) < 3:
            continue
        point = _unescape_mount(fields[1])
        inside = point == "/" or real == point or real.startswith(point.rstrip("/") + "/")
        if inside and len(point) >= best:  # a later mount on the same point hides earlier
            best, fstype = len(point), fields[2]
    return fstype if fstype in NETWORK_FILESYSTEMS else None


def _temp_store_path() -> str:
    uid = os.getuid() if hasattr(os, "getuid") else os.getlogin()
    return os.path.join(tempfile.gettempdir(), f"mashroom-jobs-{uid}", "store.sqlite")


def local_store_path(mounts: str = "/proc/mounts") -> str:
    """A store path on a local disk, for when the default folder is on a network file
    system: the Jupyter runtime folder when it is local, else a folder of this user's in
    the system's temporary folder (``/tmp/mashroom-jobs-UID/store.sqlite``)."""
    from jupyter_core.paths import jupyter_runtime_dir

    runtime = os.path.join(jupyter_runtime_dir(), "mashroom-jobs-store.sqlite")
    if network_filesystem(runtime, mounts) is None:
        return runtime
    path = _temp_store_path()
    folder = os.path.dirname(path)
    os.makedirs(folder, mode=0o700, exist_ok=True)
    if hasattr(os, "getuid") and os.stat(folder).st_uid != os.getuid():
        # someone else made it: their file would hold this user's runs
        raise StoreError(f"cannot use {folder} for the job store: it belongs to another user")
    return path


def default_store_path(mounts: str = "/proc/mounts") -> str:
    """Where the extension and ``mashroom-jobs run`` keep the store unless configured:
    ``mashroom-jobs/store.sqlite`` in the Jupyter data folder (``jupyter --data-dir``),
    or a local folder (:func:`local_store_path`, with one warning naming both paths) when
    that is on a network file system."""
    from jupyter_core.paths import jupyter_data_dir

    path = os.path.join(jupyter_data_dir(), "mashroom-jobs", "store.sqlite")
    fstype = network_filesystem(path, mounts)
    if fstype is None:
        return path
    local = local_store_path(mounts)
    log.warning("mashroom-jobs: %s is on a network file system (%s), where SQLite's locks are "
                "unreliable: the job store is %s instead", os.path.dirname(path), fstype, local)
    return local


def make_origin(kernel_id: str | None = None) -> str:
    """Who this process is in the store: ``host pid 1234``, with `` kernel ID`` in a kernel."""
    origin = f"{socket.gethostname()} pid {os.getpid()}"
    return f"{origin} kernel {kernel_id}" if kernel_id else origin


# --- values in and out of rows ------------------------------------------------------------


def _micros(moment: datetime) -> int:
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


def _moment(micros: int, zone: tzinfo) -> datetime:
    return (_EPOCH + timedelta(microseconds=micros)).astimezone(zone)


def _invocation(row: Sequence[Any]) -> JobInvocation:
    zone = _zone(row[1])
    return JobInvocation(
        _moment(row[2], zone), None if row[3] is None else _moment(row[3], zone), row[4],
        row[6], bool(row[7]), row[8], row[9], row[10], row[5], row[11], row[12], False,
        str(row[0]),
    )


class SQLiteStore:
    """The job store in one SQLite file (WAL mode), shared by every process of a user.

    Parameters
    ----------
    path : str
        The file (made, with its folder, when missing), or a ``sqlite:///PATH`` URL.
    origin : str, optional
        Who this process is in the store (default: :func:`make_origin`).
    retention_runs : int
        Runs kept per job; older ones are pruned in the background.
    retention_days : float
        Runs older than this are pruned.
    busy_timeout : float
        Seconds a claim (or a read) waits for another process's write; a claim that
        cannot be made in about that time raises :class:`StoreUnavailableError`.
    clock : Clock, optional
        What "now" is for retention and claims (the service's clock).
    batch_delay : float
        Seconds the writer waits after a run arrives, to write what follows with it.
    prune_interval : float
        Seconds between background prunes (the first comes a minute after opening).
    mounts : str
        The mount table read to find a network file system (tests give their own).

    Raises
    ------
    StoreError
        When the file cannot be opened or created, is not a SQLite database or not a
        job store, is read-only, or has a schema newer than this version knows; the
        message names the path and the reason.
    """

    def __init__(self, path: str | os.PathLike[str], *, origin: str | None = None,
                 retention_runs: int = 1000, retention_days: float = 30.0,
                 busy_timeout: float = DEFAULT_BUSY_TIMEOUT, clock: Clock | None = None,
                 batch_delay: float = 0.1, prune_interval: float = 600.0,
                 mounts: str = "/proc/mounts") -> None:
        try:
            self.path = store_location(path)
        except ValueError as exc:
            raise StoreError(str(exc)) from None
        self.origin = origin or make_origin()
        self.retention_runs = retention_runs
        self.retention_days = retention_days
        self.busy_timeout = busy_timeout
        self.clock: Clock = clock if clock is not None else SystemClock()
        self.batch_delay = batch_delay
        self.prune_interval = prune_interval
        fstype = network_filesystem(self.path, mounts)
        if fstype is not None:
            log.warning("mashroom-jobs: the job store %s is on a network file system (%s), "
                        "where SQLite's locks are unreliable; it is used as configured, but a "
                        "local path such as %s is safer", self.path, fstype, _temp_store_path())
        self._writer_conn = self._open()
        try:
            self._claim_conn: sqlite3.Connection | None = self._connect()
            self._read_conn: sqlite3.Connection | None = self._connect()
        except sqlite3.Error as exc:
            self._writer_conn.close()
            raise StoreError(self._reason(exc, True)) from None
        self._claim_lock = threading.Lock()
        self._read_lock = threading.Lock()
        self._write_lock = threading.Lock()  # the writer's connection: the writer, prune()
        # Runs move queue -> _writing -> committed; _mark_lock makes each move atomic for
        # history(), which so sees every run exactly once: in the file or still queued.
        self._queue: deque[tuple[str, JobInvocation]] = deque()
        self._writing: list[tuple[str, JobInvocation]] = []
        self._mark_lock = threading.Lock()
        self._drained = threading.Condition(self._mark_lock)
        self._wake = threading.Event()
        self._hurry = threading.Event()
        self._closing = threading.Event()
        self._close_deadline = float("inf")
        self._closed = False
        self.written = 0  # runs written by this process
        self.dropped = 0  # runs dropped because the queue was full
        self._last_warning = 0.0
        self._commits = itertools.count(1)
        self._thread = threading.Thread(target=self._write_loop, name="mashroom-jobs-store",
                                        daemon=True)
        self._thread.start()

    # -- opening ----------------------------------------------------------------------

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, timeout=self.busy_timeout, isolation_level=None,
                               check_same_thread=False)
        try:
            conn.execute("PRAGMA synchronous=NORMAL")
            # only the writer thread checkpoints, outside the hot paths (see _checkpoint)
            conn.execute("PRAGMA wal_autocheckpoint=0")
        except BaseException:
            conn.close()
            raise
        return conn

    def _open(self) -> sqlite3.Connection:
        folder = os.path.dirname(self.path)
        if os.path.isdir(self.path):
            raise StoreError(f"cannot use the job store {self.path}: it is a folder, not a file")
        existed = os.path.exists(self.path)
        try:
            os.makedirs(folder, exist_ok=True)
        except OSError as exc:
            raise StoreError(f"cannot create the job store {self.path}: cannot make its "
                             f"folder {folder}: {exc.strerror or exc}") from None
        try:
            conn = self._connect()
        except sqlite3.Error as exc:
            raise StoreError(self._reason(exc, existed)) from None
        try:
            self._set_wal(conn)
            self._migrate(conn)
        except sqlite3.Error as exc:
            conn.close()
            error = StoreUnavailableError if _locked(exc) else StoreError
            raise error(self._reason(exc, existed)) from None
        except BaseException:
            conn.close()
            raise
        return conn

    def _set_wal(self, conn: sqlite3.Connection) -> None:
        # Switching to WAL takes a lock no busy handler waits for: retry for busy_timeout.
        deadline = time.monotonic() + self.busy_timeout
        while True:
            try:
                mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
                break
            except sqlite3.OperationalError as exc:
                if not _locked(exc) or time.monotonic() >= deadline:
                    raise
                time.sleep(0.01)
        if str(mode).lower() != "wal":
            raise StoreError(f"cannot use the job store {self.path}: SQLite cannot put it in "
                             f"WAL mode (it stays in {mode!r} mode)")

    def _migrate(self, conn: sqlite3.Connection) -> None:
        # BEGIN IMMEDIATE takes the write lock, so two processes opening a new file
        # create the schema once; it also finds a read-only file at once.
        conn.execute("BEGIN IMMEDIATE")
        try:
            version = self._version(conn)
            if version > SCHEMA_VERSION:
                raise StoreError(
                    f"cannot use the job store {self.path}: its schema is version {version}, "
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

    def _version(self, conn: sqlite3.Connection) -> int:
        tables = {row[0] for row in conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table'")}
        if not tables:
            return 0
        meta = dict(conn.execute("SELECT key, value FROM meta").fetchall()) \
            if "meta" in tables else {}
        if meta.get("application") != "mashroom-jobs":
            raise StoreError(
                f"cannot use the job store {self.path}: it is a SQLite database of something "
                f"else (tables {', '.join(sorted(tables))}), not a mashroom-jobs store"
            )
        try:
            return int(meta.get("schema_version", "0"))
        except ValueError:
            raise StoreError(f"cannot use the job store {self.path}: its schema version "
                             f"{meta.get('schema_version')!r} is not a number") from None

    def _reason(self, exc: sqlite3.Error, existed: bool) -> str:
        """A sqlite3 error at opening, as "cannot use the job store PATH: why"."""
        text = str(exc)
        folder = os.path.dirname(self.path)
        if "file is not a database" in text:
            why = "the file is not a SQLite database"
        elif "readonly" in text or "read-only" in text:
            if existed and not os.access(self.path, os.W_OK):
                why = "the file is read-only"
            elif not os.access(folder, os.W_OK):
                why = (f"its folder {folder} is read-only (SQLite must create the "
                       f"{os.path.basename(self.path)}-wal and -shm files next to it)")
            else:
                why = f"it cannot be written ({text})"
        elif "unable to open" in text:
            if not existed and not os.access(folder, os.W_OK):
                return (f"cannot create the job store {self.path}: its folder {folder} is "
                        f"not writable")
            why = f"it cannot be opened ({text})"
        elif _locked(exc):
            why = (f"another process holds it locked (waited {self.busy_timeout:g} s): "
                   f"{text}")
        else:
            why = text
        return f"cannot use the job store {self.path}: {why}"

    # -- claims (pool workers) ------------------------------------------------------------

    def claim(self, job: str, scheduled_for: datetime) -> str | None:
        """Claim the fire ``scheduled_for`` of ``job``: None when this process won it,
        else the winner's origin.

        Raises
        ------
        StoreUnavailableError
            When the store cannot tell within about ``busy_timeout`` seconds (locked by
            another process's long write) or is closed.
        """
        return self.claim_many([(job, scheduled_for)])[0]

    def claim_many(self, fires: Sequence[tuple[str, datetime]]) -> list[str | None]:
        """Claim several fires ``(job, scheduled_for)`` in one transaction (the runner
        claims all the exclusive fires due together so): for each, None when this
        process won it, else the winner's origin.

        Raises
        ------
        StoreUnavailableError
            As :meth:`claim`; then none of them was claimed.
        """
        if not self._claim_lock.acquire(timeout=self.busy_timeout):
            raise StoreUnavailableError(
                f"could not claim {len(fires)} fire{'s' if len(fires) != 1 else ''} in "
                f"{self.path} within {self.busy_timeout:g} s: the claims before them are "
                f"still waiting")
        try:
            conn = self._claim_conn
            if conn is None:
                raise StoreUnavailableError(f"the job store {self.path} is closed")
            now = _micros(self.clock.now())
            winners: list[str | None] = []
            try:
                conn.execute("BEGIN IMMEDIATE")
                try:
                    for job, scheduled_for in fires:
                        key = _micros(scheduled_for)
                        cursor = conn.execute("INSERT OR IGNORE INTO claims VALUES (?, ?, ?, ?)",
                                              (job, key, self.origin, now))
                        if cursor.rowcount == 1:
                            winners.append(None)
                            continue
                        row = conn.execute(
                            "SELECT origin FROM claims WHERE job = ? AND scheduled_for_us = ?",
                            (job, key)).fetchone()
                        winners.append(str(row[0]) if row is not None else "another process")
                    conn.execute("COMMIT")  # won only once committed
                except BaseException:
                    if conn.in_transaction:
                        conn.execute("ROLLBACK")
                    raise
            except sqlite3.Error as exc:
                what = repr(fires[0][0]) if len(fires) == 1 else f"{len(fires)} fires"
                raise StoreUnavailableError(
                    f"could not claim {what} in {self.path} within {self.busy_timeout:g} s: "
                    f"{exc}") from None
            return winners
        finally:
            self._claim_lock.release()

    # -- runs (any thread; quick) ---------------------------------------------------------

    def record(self, job: str, invocation: JobInvocation) -> None:
        """Queue a finished run for the writer thread; returns at once."""
        queue = self._queue
        if len(queue) >= MAX_PENDING:  # the store has been unwritable for a long time
            try:
                queue.popleft()
            except IndexError:
                pass
            self.dropped += 1
            self._warn("mashroom-jobs: %d runs are waiting for the job store %s; the oldest "
                       "are dropped to bound memory (%d so far)", len(queue), self.path,
                       self.dropped)
        queue.append((job, invocation))
        if not self._wake.is_set():
            self._wake.set()

    @property
    def pending(self) -> int:
        """Runs recorded and not yet written."""
        return len(self._queue) + len(self._writing)

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until every run recorded so far is written; False if ``timeout`` passed
        (or the store was closed with runs unwritten)."""
        if self._closed:
            return self.pending == 0
        self._hurry.set()
        self._wake.set()
        with self._drained:
            return self._drained.wait_for(lambda: not self._queue and not self._writing,
                                          timeout)

    def _write_loop(self) -> None:
        conn = self._writer_conn
        next_prune = time.monotonic() + min(60.0, self.prune_interval)
        try:
            while True:
                self._wake.wait(max(0.0, next_prune - time.monotonic()))
                if self._queue and not self._closing.is_set():
                    self._hurry.wait(self.batch_delay)  # let the rest of a batch of fires in
                self._wake.clear()
                self._hurry.clear()
                drained = self._drain(conn)
                if self._closing.is_set() and (drained or
                                               time.monotonic() >= self._close_deadline):
                    break
                if time.monotonic() >= next_prune:
                    next_prune = time.monotonic() + self.prune_interval
                    try:
                        self.prune()
                    except sqlite3.Error as exc:
                        log.warning("mashroom-jobs: could not prune the job store %s: %s",
                                    self.path, exc)
        except Exception:  # never expected; say so rather than die silently
            log.exception("mashroom-jobs: the job store's writer thread failed")
        finally:
            with self._write_lock:
                try:
                    conn.execute("PRAGMA wal_checkpoint(PASSIVE)")
                except sqlite3.Error:
                    pass
                conn.close()

    def _drain(self, conn: sqlite3.Connection) -> bool:
        """Write queued runs until none is left; False when closing cut it short."""
        delay = 0.05
        while True:
            with self._mark_lock:
                if not self._writing:
                    n = min(len(self._queue), MAX_BATCH)
                    if n == 0:
                        self._drained.notify_all()
                        return True
                    self._writing = [self._queue.popleft() for _ in range(n)]
                batch = self._writing
            try:
                self._insert(conn, batch)
                delay = 0.05
            except sqlite3.Error as exc:  # locked by another process, disk full...: retry
                self._warn("mashroom-jobs: cannot write %d runs to the job store %s yet (%s); "
                           "retrying", self.pending, self.path, exc)
                if self._closing.is_set() and time.monotonic() >= self._close_deadline:
                    return False
                time.sleep(min(delay, max(0.0, self._close_deadline - time.monotonic())))
                delay = min(delay * 2, 1.0)

    def _insert(self, conn: sqlite3.Connection, batch: list[tuple[str, JobInvocation]]) -> None:
        with self._write_lock:
            conn.execute("BEGIN IMMEDIATE")
            try:
                # rows made one at a time as SQLite takes them: no list of 1,000 tuples
                # alive at once, so no extra garbage collections in the jobs' process
                conn.executemany(_INSERT_RUN, self._rows(batch))
                with self._mark_lock:
                    conn.execute("COMMIT")
                    self._writing = []
                    self.written += len(batch)
                    self._drained.notify_all()
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
            if next(self._commits) % 32 == 0:
                self._checkpoint(conn)

    def _rows(self, batch: list[tuple[str, JobInvocation]]) -> Iterator[tuple[Any, ...]]:
        for job, inv in batch:
            try:
                row = self._row(job, inv)
            except Exception:  # a record we cannot convert is a bug: never retry it forever
                log.exception("mashroom-jobs: cannot store a run of job %r: %r", job, inv)
                continue
            yield row

    def _row(self, job: str, inv: JobInvocation) -> tuple[Any, ...]:
        scheduled = inv.scheduled_for
        return (
            job, _zone_text(inv.timestamp), _micros(inv.timestamp),
            None if scheduled is None else _micros(scheduled), inv.trigger, inv.attempt,
            float(inv.execution_time_ms), int(bool(inv.success)), inv.error_message,
            inv.traceback, inv.output or "", inv.worker, inv.origin or self.origin,
        )

    @staticmethod
    def _checkpoint(conn: sqlite3.Connection) -> None:
        # PASSIVE never waits for readers or writers: the WAL is copied back as far as it can
        try:
            conn.execute("PRAGMA wal_checkpoint(PASSIVE)")
        except sqlite3.Error:
            pass

    def _warn(self, message: str, *args: object) -> None:
        """Log a warning about the writer at most once a minute."""
        now = time.monotonic()
        if now - self._last_warning >= 60.0:
            self._last_warning = now
            log.warning(message, *args)

    # -- reading ---------------------------------------------------------------------------

    def runs(self, name: str | None = None, limit: int = 50,
             since: datetime | None = None) -> list[tuple[str, JobInvocation]]:
        """``(job, run)`` pairs, newest first: of job ``name`` or of every job, of every
        process sharing the store (this process's runs not yet written included)."""
        if limit <= 0:
            return []
        sql = _SELECT_RUNS
        params: list[object] = []
        where = []
        if name is not None:
            where.append("job = ?")
            params.append(name)
        if since is not None:
            where.append("started_us >= ?")
            params.append(_micros(since))
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY started_us DESC, id DESC LIMIT ?"
        params.append(limit)
        with self._mark_lock:  # the file and the queue at one moment
            queued = [*self._writing, *self._queue.copy()]
            rows = self._read(sql, params)
        found = [(str(row[0]), _invocation(row)) for row in rows]
        queued_runs = [(job, inv._replace(origin=inv.origin or self.origin))
                       for job, inv in queued
                       if (name is None or job == name)
                       and (since is None or inv.timestamp >= since)]
        if queued_runs:
            found.extend(queued_runs)
            found.sort(key=lambda pair: pair[1].timestamp, reverse=True)
            del found[limit:]
        return found

    def history(self, name: str | None = None, limit: int = 50,
                since: datetime | None = None) -> list[JobInvocation]:
        """Stored runs, newest first (see :meth:`runs`), with ``origin`` set."""
        return [inv for _, inv in self.runs(name, limit, since)]

    def _read(self, sql: str, params: Sequence[object]) -> list[Any]:
        with self._read_lock:
            conn = self._read_conn
            try:
                if conn is not None:
                    return conn.execute(sql, params).fetchall()
                conn = self._connect()  # closed: a connection for this read only
                try:
                    return conn.execute(sql, params).fetchall()
                finally:
                    conn.close()
            except sqlite3.Error as exc:
                raise StoreUnavailableError(
                    f"could not read the job store {self.path}: {exc}") from None

    def job_names(self) -> list[str]:
        """The jobs with stored runs, sorted."""
        return [str(row[0]) for row in self._read("SELECT DISTINCT job FROM runs ORDER BY job",
                                                  ())]

    def count(self, name: str | None = None) -> int:
        """How many runs are stored (of job ``name``, or of every job)."""
        if name is None:
            return int(self._read("SELECT count(*) FROM runs", ())[0][0])
        return int(self._read("SELECT count(*) FROM runs WHERE job = ?", (name,))[0][0])

    # -- maintenance -------------------------------------------------------------------------

    def prune(self) -> int:
        """Delete runs beyond ``retention_runs`` per job or older than ``retention_days``,
        and claims older than a day; returns how many runs were deleted.

        Deletes in small transactions, so claims of other processes wait little.
        """
        now = _micros(self.clock.now())
        oldest_run = now - int(self.retention_days * 86_400e6)
        oldest_claim = now - int(CLAIM_RETENTION_SECONDS * 1e6)
        with self._write_lock:
            conn = self._writer_conn
            deleted = self._delete_chunks(
                conn, "DELETE FROM runs WHERE id IN (SELECT id FROM runs WHERE started_us < ? "
                      "LIMIT 2000)", (oldest_run,))
            jobs = [row[0] for row in conn.execute("SELECT DISTINCT job FROM runs")]
            for job in jobs:
                edge = conn.execute(
                    "SELECT started_us, id FROM runs WHERE job = ? "
                    "ORDER BY started_us DESC, id DESC LIMIT 1 OFFSET ?",
                    (job, self.retention_runs),
                ).fetchone()
                if edge is not None:
                    deleted += self._delete_chunks(
                        conn, "DELETE FROM runs WHERE id IN (SELECT id FROM runs WHERE job = ? "
                              "AND (started_us < ? OR (started_us = ? AND id <= ?)) LIMIT 2000)",
                        (job, edge[0], edge[0], edge[1]))
            self._delete_chunks(
                conn, "DELETE FROM claims WHERE (job, scheduled_for_us) IN (SELECT job, "
                      "scheduled_for_us FROM claims WHERE claimed_at_us < ? LIMIT 2000)",
                (oldest_claim,))
            self._checkpoint(conn)
        return deleted

    @staticmethod
    def _delete_chunks(conn: sqlite3.Connection, sql: str, params: tuple[object, ...]) -> int:
        total = 0
        while True:
            count = conn.execute(sql, params).rowcount
            total += max(0, count)
            if count < 2000:
                return total

    def vacuum(self) -> None:
        """Rewrite the file to give the space of deleted runs back to the disk."""
        with self._write_lock:
            conn = self._writer_conn
            conn.execute("VACUUM")
            try:  # copy the rewritten pages into the file now, and empty the WAL
                conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            except sqlite3.Error:
                pass

    def size(self) -> int:
        """The database's size in bytes (its pages, wherever they are: file or WAL)."""
        page_count = self._read("PRAGMA page_count", ())[0][0]
        page_size = self._read("PRAGMA page_size", ())[0][0]
        return int(page_count) * int(page_size)

    # -- closing ----------------------------------------------------------------------------

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def thread(self) -> threading.Thread:
        """The writer thread."""
        return self._thread

    def close(self, timeout: float = 5.0) -> bool:
        """Write what is queued (for up to ``timeout`` seconds), then close; True when
        every run was written.  Closing twice is harmless."""
        if self._closed:
            return True
        self._closed = True
        self._close_deadline = time.monotonic() + max(0.0, timeout)
        self._closing.set()
        self._hurry.set()
        self._wake.set()
        if self._thread is not threading.current_thread():
            self._thread.join(max(0.0, self._close_deadline - time.monotonic()))
        left = self.pending
        if left:
            log.warning("mashroom-jobs: %d run%s could not be written to the job store %s "
                        "before it closed", left, "s" if left != 1 else "", self.path)
        for lock, name in ((self._claim_lock, "_claim_conn"), (self._read_lock, "_read_conn")):
            # (a claim or a read going on finishes first)
            if lock.acquire(timeout=max(0.1, self._close_deadline - time.monotonic())):
                try:
                    conn = getattr(self, name)
                    setattr(self, name, None)
                    if conn is not None:
                        conn.close()
                finally:
                    lock.release()
        return left == 0

    def __repr__(self) -> str:
        state = "closed" if self._closed else "open"
        return f"<SQLiteStore {self.path} {state}>"


def _locked(exc: BaseException) -> bool:
    text = str(exc)
    return "locked" in text or "busy" in text
