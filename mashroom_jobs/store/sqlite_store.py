"""The :class:`SQLiteStore` class: opening the store, claims of exclusive fires, reading
the history, pruning and vacuuming, closing.

The file's layout is in :mod:`.schema`, the writer thread in :mod:`.writer`; this module
ties them together behind the interface the service uses.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
import time
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from ..core.clock import Clock, SystemClock
from ..core.errors import StoreError, StoreUnavailableError
from ..core.records import JobInvocation
from .artifacts import remove_artifacts
from .control import StoreControl
from .location import (
    file_identity,
    make_origin,
    network_filesystem,
    store_location,
    temp_store_path,
)
from .schema import SELECT_RUNS, connect, invocation, micros, open_failure, open_store
from .writer import MAX_PENDING_CHARS, RunWriter, checkpoint

log = logging.getLogger("mashroom_jobs.store")

#: seconds a claim waits for another process's write before the fire runs unclaimed
DEFAULT_BUSY_TIMEOUT = 2.0
#: claims are kept this long: a process whose clock lags less than this never runs a
#: fire that another one already ran
CLAIM_RETENTION_SECONDS = 86_400.0
#: a host's heartbeat row is deleted this long after it was last seen (the host was
#: killed, or its machine went away: a host that stops cleanly deletes its own)
HOST_RETENTION_SECONDS = 86_400.0


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
    check_interval : float
        Seconds between the writer's checks that the file at ``path`` is still the one
        opened (also checked before each write and each claim): when it was deleted or
        replaced (``rm store.sqlite`` while processes use it), the store warns once and
        reopens the path, so that claims are shared again with the processes that opened
        the new file.  What was written to the old file in between is lost with it.
    max_pending_chars : int
        Characters of text (outputs, tracebacks) the writer's queue holds at most; while
        it is full, runs are stored without their output (see :attr:`shed`).

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
                 mounts: str = "/proc/mounts", check_interval: float = 1.0,
                 max_pending_chars: int = MAX_PENDING_CHARS) -> None:
        try:
            self.path = store_location(path)
        except ValueError as exc:
            raise StoreError(str(exc)) from None
        self.origin = origin or make_origin()
        self.retention_runs = retention_runs
        self.retention_days = retention_days
        self.busy_timeout = busy_timeout
        self.clock: Clock = clock if clock is not None else SystemClock()
        fstype = network_filesystem(self.path, mounts)
        if fstype is not None:
            log.warning("mashroom-jobs: the job store %s is on a network file system (%s), "
                        "where SQLite's locks are unreliable; it is used as configured, but a "
                        "local path such as %s is safer", self.path, fstype, temp_store_path())
        writer_conn = open_store(self.path, self.busy_timeout)
        #: (device, inode) of the file opened: another file at the path is noticed
        self._file_id = file_identity(self.path)
        try:
            self._claim_conn: sqlite3.Connection | None = self._connect()
            self._read_conn: sqlite3.Connection | None = self._connect()
        except sqlite3.Error as exc:
            writer_conn.close()
            raise StoreError(open_failure(exc, self.path, True, self.busy_timeout)) from None
        # (a claim re-enters it when it finds the file replaced and reopens it)
        self._claim_lock = threading.RLock()
        self._read_lock = threading.Lock()
        # (data_version when last read, (the newest run's id, control_version)): version()
        self._content_version: tuple[int, tuple[int, int]] = (-1, (0, 0))
        self._replaced_warned = False
        #: times this process reopened the file after it was deleted or replaced
        self.reopened = 0
        self._writer = RunWriter(writer_conn, self.path, self.origin, batch_delay=batch_delay,
                                 prune_interval=prune_interval, prune=self.prune,
                                 check=self.check_file, check_interval=check_interval)
        self._writer.max_pending_chars = max_pending_chars
        #: the control tables: durable jobs' definitions, overrides, commands, hosts
        self.control = StoreControl(self._connect, self.origin, self.clock, self.path)
        self._writer.start()

    def _connect(self) -> sqlite3.Connection:
        return connect(self.path, self.busy_timeout)

    @property
    def batch_delay(self) -> float:
        """Seconds the writer waits after a run arrives, to write what follows with it."""
        return self._writer.batch_delay

    @batch_delay.setter
    def batch_delay(self, value: float) -> None:
        self._writer.batch_delay = value

    @property
    def prune_interval(self) -> float:
        """Seconds between background prunes."""
        return self._writer.prune_interval

    @prune_interval.setter
    def prune_interval(self, value: float) -> None:
        self._writer.prune_interval = value

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
            self.check_file()  # a claim in a deleted file would be a claim nobody sees
            conn = self._claim_conn
            if conn is None:
                raise StoreUnavailableError(f"the job store {self.path} is closed")
            now = micros(self.clock.now())
            winners: list[str | None] = []
            try:
                conn.execute("BEGIN IMMEDIATE")
                try:
                    for job, scheduled_for in fires:
                        key = micros(scheduled_for)
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

    # -- the file at the path (any thread; a stat, ~2 µs) ------------------------------------

    def check_file(self) -> bool:
        """Whether the file at :attr:`path` is still the one this store opened; when it
        was deleted or replaced, reopen the path (made anew if missing), with one warning
        per store.  Returns True when it reopened.  Called by the writer before each batch
        and every ``check_interval`` seconds, and before each claim."""
        if file_identity(self.path) == self._file_id or self.closed:
            return False
        # the claims' lock first, as a claim holds it when it checks: one order, no deadlock
        with self._claim_lock:
            if file_identity(self.path) == self._file_id or self.closed:
                return False  # another thread reopened it meanwhile
            return self._reopen()

    def _reopen(self) -> bool:
        """(Under the claims' lock.)  Then the reads', then the writer's."""
        try:
            writer_conn = open_store(self.path, self.busy_timeout)
            claim_conn, read_conn = self._connect(), self._connect()
        except (StoreError, sqlite3.Error) as exc:
            if not self._replaced_warned:
                self._replaced_warned = True
                log.warning("mashroom-jobs: the job store %s was deleted or replaced while "
                            "this process used it, and cannot be opened again (%s): runs "
                            "go to the old file, whose runs are lost when this process ends",
                            self.path, exc)
            return False
        new_id = file_identity(self.path)
        with self._read_lock:
            old = [self._claim_conn, self._read_conn]
            self._claim_conn, self._read_conn = claim_conn, read_conn
            self._content_version = (-1, (0, 0))  # (a new connection counts anew)
            self._writer.replace_connection(writer_conn)
            self._file_id = new_id
        for conn in old:
            if conn is not None:
                conn.close()
        self.control.reset_connection()
        self.reopened += 1
        if not self._replaced_warned:
            self._replaced_warned = True
            log.warning("mashroom-jobs: the job store %s was deleted or replaced while this "
                        "process used it: it is opened again, so that this process shares "
                        "its claims with the others again (the runs it wrote in the last "
                        "moments went to the old file)", self.path)
        return True

    # -- runs (any thread; quick): the writer's ------------------------------------------------

    def record(self, job: str, invocation: JobInvocation) -> None:
        """Queue a finished run for the writer thread; returns at once."""
        self._writer.record(job, invocation)

    @property
    def pending(self) -> int:
        """Runs recorded and not yet written."""
        return self._writer.pending

    @property
    def written(self) -> int:
        """Runs written by this process."""
        return self._writer.written

    @property
    def dropped(self) -> int:
        """Runs dropped because the queue was full."""
        return self._writer.dropped

    @property
    def pending_chars(self) -> int:
        """Characters of text (outputs, tracebacks) of the runs waiting to be written (only
        runs with 1,000 or more are counted)."""
        return self._writer.pending_chars

    @property
    def shed(self) -> int:
        """Runs stored without their output and traceback because the queue held
        ``max_pending_chars`` of text when they came (their records in memory keep them)."""
        return self._writer.shed

    @property
    def commits(self) -> int:
        """Transactions the writer committed (a batch: at most 5,000 runs and 8 million
        characters of text, so that big outputs are written soon)."""
        return self._writer.commits

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until every run recorded so far is written; False if ``timeout`` passed
        (or the store was closed with runs unwritten)."""
        return self._writer.flush(timeout)

    # -- reading ---------------------------------------------------------------------------

    def runs(self, name: str | None = None, limit: int = 50,
             since: datetime | None = None) -> list[tuple[str, JobInvocation]]:
        """``(job, run)`` pairs, newest first: of job ``name`` or of every job, of every
        process sharing the store (this process's runs not yet written included)."""
        if limit <= 0:
            return []
        sql = SELECT_RUNS
        params: list[object] = []
        where = []
        if name is not None:
            where.append("job = ?")
            params.append(name)
        if since is not None:
            where.append("started_us >= ?")
            params.append(micros(since))
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY started_us DESC, id DESC LIMIT ?"
        params.append(limit)
        # the file and the queue at one moment
        queued, rows = self._writer.queued_and(lambda: self._read(sql, params))
        found = [(str(row[0]), invocation(row)) for row in rows]
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

    def version(self) -> tuple[int, int, int]:
        """Changes whenever :meth:`runs` may return something new (a run was written, or
        this process queued one) or a durable job's definition changed.  The heartbeats
        and claims other processes write every few seconds leave it as it is, so that a
        panel comparing it reads the runs again only when there are new ones.  Costs
        SQLite's ``PRAGMA data_version`` (one page read) while nothing was committed.

        Raises
        ------
        StoreUnavailableError
            When the store cannot be read.
        """
        data_version = int(self._read("PRAGMA data_version", ())[0][0])
        seen, content = self._content_version
        if data_version != seen:  # something was committed: was it runs or definitions?
            [(last_run, control)] = self._read(
                "SELECT (SELECT max(id) FROM runs), "
                "(SELECT value FROM meta WHERE key = 'control_version')", ())
            content = (int(last_run or 0), int(control or 0))
            self._content_version = (data_version, content)
        return (*content, self._writer.recorded)

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
        claims older than a day, and the heartbeats of hosts not seen for a day; returns
        how many runs were deleted.  The files the deleted runs kept (a notebook job's
        executed notebooks) go with them (see :mod:`.artifacts`).

        Deletes in small transactions, so claims of other processes wait little.
        """
        current = self.clock.now()
        now = micros(current)
        oldest_run = now - int(self.retention_days * 86_400e6)
        oldest_claim = now - int(CLAIM_RETENTION_SECONDS * 1e6)
        artifacts: list[str] = []
        with self._writer.connection() as conn:
            # (the files of the runs about to go; the same conditions as the deletes)
            artifacts += self._artifacts(conn, "started_us < ?", (oldest_run,))
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
                    artifacts += self._artifacts(
                        conn, "job = ? AND (started_us < ? OR (started_us = ? AND id <= ?))",
                        (job, edge[0], edge[0], edge[1]))
                    deleted += self._delete_chunks(
                        conn, "DELETE FROM runs WHERE id IN (SELECT id FROM runs WHERE job = ? "
                              "AND (started_us < ? OR (started_us = ? AND id <= ?)) LIMIT 2000)",
                        (job, edge[0], edge[0], edge[1]))
            self._delete_chunks(
                conn, "DELETE FROM claims WHERE (job, scheduled_for_us) IN (SELECT job, "
                      "scheduled_for_us FROM claims WHERE claimed_at_us < ? LIMIT 2000)",
                (oldest_claim,))
            checkpoint(conn)
        remove_artifacts(artifacts)  # (files, not rows: outside the writer's lock)
        try:  # (through the control tables' own connection: outside the writer's lock too)
            self.control.forget_hosts(current - timedelta(seconds=HOST_RETENTION_SECONDS))
        except StoreUnavailableError as exc:
            log.warning("mashroom-jobs: could not forget the hosts gone from the job store "
                        "%s: %s", self.path, exc)
        return deleted

    @staticmethod
    def _artifacts(conn: sqlite3.Connection, where: str,
                   params: tuple[object, ...]) -> list[str]:
        """The files kept by the runs that match ``where``."""
        return [str(row[0]) for row in conn.execute(
            f"SELECT artifact FROM runs WHERE artifact IS NOT NULL AND {where}", params)]

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
        with self._writer.connection() as conn:
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
        return self._writer.closed

    @property
    def thread(self) -> threading.Thread:
        """The writer thread."""
        return self._writer.thread

    def close(self, timeout: float = 5.0) -> bool:
        """Write what is queued (for up to ``timeout`` seconds), then close; True when
        every run was written.  Closing twice is harmless."""
        if self._writer.closed:
            return True
        deadline = time.monotonic() + max(0.0, timeout)
        left = self._writer.close(deadline)
        for lock, name in ((self._claim_lock, "_claim_conn"), (self._read_lock, "_read_conn")):
            # (a claim or a read going on finishes first)
            if lock.acquire(timeout=max(0.1, deadline - time.monotonic())):
                try:
                    conn = getattr(self, name)
                    setattr(self, name, None)
                    if conn is not None:
                        conn.close()
                finally:
                    lock.release()
        self.control.close()
        return left == 0

    def __repr__(self) -> str:
        state = "closed" if self.closed else "open"
        return f"<SQLiteStore {self.path} {state}>"
