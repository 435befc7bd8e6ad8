"""The job store's writer: the queue of finished runs and the thread that inserts them in
batches (one transaction each), retrying while another process holds the database.

Apart from the store class because it is the one part with a thread of its own: the
store's ``record`` only appends here, so the timer never waits on SQLite.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from ..core.records import JobInvocation
from .schema import INSERT_RUN, run_row

log = logging.getLogger("mashroom_jobs.store")

#: runs queued for the writer, at most; beyond it the oldest are dropped (with a warning)
MAX_PENDING = 100_000
#: characters of text (output, traceback, error) queued for the writer, at most; beyond it
#: runs are queued without their output and traceback (with a warning; their records in
#: memory keep them) until the writer catches up: 40 jobs printing 90 KB as fast as they
#: could queued 4 GB in 4 s
MAX_PENDING_CHARS = 64_000_000
#: runs inserted in one transaction, at most
MAX_BATCH = 5_000
#: characters of text inserted in one transaction, at most (but one run): 5,000 runs of
#: 90 KB made one 450 MB transaction, and the first run was written after 2.9 s
MAX_BATCH_CHARS = 8_000_000
#: a run with less text than this is not counted against MAX_PENDING_CHARS: the runs of
#: 10,000 quiet jobs are queued without taking a lock
_COUNTED = 1_000
#: what a run queued while the writer is behind stores instead of its output (and traceback)
_SHED_NOTE = ("[not stored: the job store fell behind the runs' output; the run's record in "
              "the memory of the process that ran it keeps it]")


def _text_size(invocation: JobInvocation) -> int:
    return (len(invocation.output) + len(invocation.traceback or "")
            + len(invocation.error_message or ""))

T = TypeVar("T")


def checkpoint(conn: sqlite3.Connection) -> None:
    """Copy the WAL back into the file as far as can be done without waiting."""
    # PASSIVE never waits for readers or writers: the WAL is copied back as far as it can
    try:
        conn.execute("PRAGMA wal_checkpoint(PASSIVE)")
    except sqlite3.Error:
        pass


class RunWriter:
    """The queue of runs recorded and not yet written, and the thread writing them.

    Parameters
    ----------
    conn : sqlite3.Connection
        The writer's connection (its own; closed when the thread ends).
    path, origin : str
        The store's file (for messages) and who this process is (for runs naming none).
    batch_delay : float
        Seconds the writer waits after a run arrives, to write what follows with it.
    prune_interval : float
        Seconds between calls of ``prune`` (the first comes a minute after :meth:`start`).
    prune : callable
        The store's prune, called in the writer thread; it takes :meth:`connection`.
    check : callable, optional
        Called in the writer thread, outside the writer's lock, before each batch and at
        least every ``check_interval`` seconds: the store's check that its file is still
        the one at its path (see :meth:`SQLiteStore.check_file`).
    check_interval : float
        Seconds between two calls of ``check`` while no run comes.
    """

    def __init__(self, conn: sqlite3.Connection, path: str, origin: str, *,
                 batch_delay: float, prune_interval: float,
                 prune: Callable[[], object], check: Callable[[], object] | None = None,
                 check_interval: float = 1.0) -> None:
        self.path = path
        self.origin = origin
        self.batch_delay = batch_delay
        self.prune_interval = prune_interval
        self.check_interval = check_interval
        self._prune = prune
        self._check = check
        self._conn = conn
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
        self.recorded = 0  # runs queued by this process (written or not)
        self.dropped = 0  # runs dropped because the queue was full
        self.shed = 0  # runs stored without their output: the queue held too much text
        self.commits = 0  # transactions written
        self.max_pending_chars = MAX_PENDING_CHARS
        self._size_lock = threading.Lock()
        # text of the runs queued or being written, of those with at least _COUNTED
        self._queued_chars = 0
        self._last_warning = 0.0
        self._thread = threading.Thread(target=self._write_loop, name="mashroom-jobs-store",
                                        daemon=True)

    def start(self) -> None:
        """Start the writer thread."""
        self._thread.start()

    # -- runs (any thread; quick) ---------------------------------------------------------

    def record(self, job: str, invocation: JobInvocation) -> None:
        """Queue a finished run for the writer thread; returns at once."""
        queue = self._queue
        if len(queue) >= MAX_PENDING:  # the store has been unwritable for a long time
            with self._mark_lock:
                try:
                    self._uncount([queue.popleft()[1]])
                except IndexError:
                    pass
            self.dropped += 1
            self._warn("mashroom-jobs: %d runs are waiting for the job store %s; the oldest "
                       "are dropped to bound memory (%d so far)", len(queue), self.path,
                       self.dropped)
        size = _text_size(invocation)
        if size >= _COUNTED:  # counted before it is queued: the writer uncounts it after
            with self._size_lock:
                room = self._queued_chars + size <= self.max_pending_chars
                if room:
                    self._queued_chars += size
            if not room:
                invocation = self._shed(invocation)
        queue.append((job, invocation))
        self.recorded += 1
        if not self._wake.is_set():
            self._wake.set()

    def _uncount(self, invocations: Iterable[JobInvocation]) -> None:
        """The text of ``invocations`` left the queue (written, or dropped): it no longer
        counts against :attr:`max_pending_chars`."""
        counted = sum(size for size in map(_text_size, invocations) if size >= _COUNTED)
        if counted:
            with self._size_lock:
                self._queued_chars -= counted

    def _shed(self, invocation: JobInvocation) -> JobInvocation:
        """The run to queue instead of ``invocation`` while the queue holds
        :attr:`max_pending_chars` of text: without its output and traceback (its record in
        memory keeps them), so that memory stays bounded however far the writer falls
        behind, and a crash loses at most that much."""
        self.shed += 1
        self._warn("mashroom-jobs: the job store %s fell %.0f MB behind the runs' output; "
                   "runs are stored without their output until it catches up (%d so far; "
                   "their records in this process's memory keep it)", self.path,
                   self.max_pending_chars / 1e6, self.shed)
        return invocation._replace(
            output=_SHED_NOTE, traceback=None if invocation.traceback is None else _SHED_NOTE,
            error_message=None if invocation.error_message is None
            else invocation.error_message[:_COUNTED // 2])

    @property
    def pending(self) -> int:
        """Runs recorded and not yet written."""
        return len(self._queue) + len(self._writing)

    @property
    def pending_chars(self) -> int:
        """Characters of text of the runs recorded and not yet written (counted: runs of
        at least 1,000)."""
        return self._queued_chars

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until every run recorded so far is written; False if ``timeout`` passed
        (or the writer was closed with runs unwritten)."""
        if self._closed:
            return self.pending == 0
        self._hurry.set()
        self._wake.set()
        with self._drained:
            return self._drained.wait_for(lambda: not self._queue and not self._writing,
                                          timeout)

    def queued_and(self, read: Callable[[], T]) -> tuple[list[tuple[str, JobInvocation]], T]:
        """The runs queued or being written, and what ``read()`` returns, at one moment: no
        run is written in between, so each is either read or queued, and only once."""
        with self._mark_lock:
            queued = [*self._writing, *self._queue.copy()]
            return queued, read()

    @contextmanager
    def connection(self) -> Iterator[sqlite3.Connection]:
        """The writer's connection, for the store's maintenance; the writer waits meanwhile."""
        with self._write_lock:
            yield self._conn

    def replace_connection(self, conn: sqlite3.Connection) -> None:
        """Write from now on through ``conn`` (the store reopened its file); the old
        connection is closed."""
        with self._write_lock:
            old, self._conn = self._conn, conn
        try:
            old.close()
        except sqlite3.Error:
            pass

    # -- the thread --------------------------------------------------------------------------

    def _write_loop(self) -> None:
        next_prune = time.monotonic() + min(60.0, self.prune_interval)
        next_check = time.monotonic() + self.check_interval
        try:
            while True:
                wake_at = next_prune if self._check is None else min(next_prune, next_check)
                self._wake.wait(max(0.0, wake_at - time.monotonic()))
                if self._queue and not self._closing.is_set():
                    self._hurry.wait(self.batch_delay)  # let the rest of a batch of fires in
                self._wake.clear()
                self._hurry.clear()
                if self._check is not None and (self._queue or
                                                time.monotonic() >= next_check):
                    next_check = time.monotonic() + self.check_interval
                    self._checked()
                drained = self._drain()
                if self._closing.is_set() and (drained or
                                               time.monotonic() >= self._close_deadline):
                    break
                if time.monotonic() >= next_prune:
                    next_prune = time.monotonic() + self.prune_interval
                    try:
                        self._prune()
                    except sqlite3.Error as exc:
                        log.warning("mashroom-jobs: could not prune the job store %s: %s",
                                    self.path, exc)
        except Exception:  # never expected; say so rather than die silently
            log.exception("mashroom-jobs: the job store's writer thread failed")
        finally:
            with self._write_lock:
                conn = self._conn
                try:
                    conn.execute("PRAGMA wal_checkpoint(PASSIVE)")
                except sqlite3.Error:
                    pass
                conn.close()

    def _checked(self) -> None:
        assert self._check is not None
        try:
            self._check()
        except Exception:  # a check must never stop the writing
            log.exception("mashroom-jobs: checking the job store file %s failed", self.path)

    def _drain(self) -> bool:
        """Write queued runs until none is left; False when closing cut it short."""
        delay = 0.05
        while True:
            with self._mark_lock:
                if not self._writing:
                    if not self._queue:
                        self._drained.notify_all()
                        return True
                    self._writing = self._take_batch()
                batch = self._writing
            try:
                self._insert(batch)
                delay = 0.05
            except sqlite3.Error as exc:  # locked by another process, disk full...: retry
                pending = self.pending
                self._warn("mashroom-jobs: cannot write %d run%s to the job store %s yet (%s); "
                           "retrying", pending, "s" if pending != 1 else "", self.path, exc)
                if self._closing.is_set() and time.monotonic() >= self._close_deadline:
                    return False
                time.sleep(min(delay, max(0.0, self._close_deadline - time.monotonic())))
                delay = min(delay * 2, 1.0)

    def _take_batch(self) -> list[tuple[str, JobInvocation]]:
        """(Under the mark lock.)  The next runs to write: at most MAX_BATCH runs and
        MAX_BATCH_CHARS characters of text (but at least one run), so that the first
        commit comes soon and a crash loses little even with big outputs."""
        queue, chars = self._queue, 0
        batch: list[tuple[str, JobInvocation]] = []
        while queue and len(batch) < MAX_BATCH and chars < MAX_BATCH_CHARS:
            item = queue.popleft()
            chars += _text_size(item[1])
            batch.append(item)
        return batch

    def _insert(self, batch: list[tuple[str, JobInvocation]]) -> None:
        with self._write_lock:
            conn = self._conn
            conn.execute("BEGIN IMMEDIATE")
            try:
                # rows made one at a time as SQLite takes them: no list of 1,000 tuples
                # alive at once, so no extra garbage collections in the jobs' process
                conn.executemany(INSERT_RUN, self._rows(batch))
                with self._mark_lock:
                    conn.execute("COMMIT")
                    self._writing = []
                    self.written += len(batch)
                    self.commits += 1
                    # the batch's text leaves memory only now: a batch that cannot be
                    # written (the store is locked) still counts against the bound
                    self._uncount(invocation for _, invocation in batch)
                    self._drained.notify_all()
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
            if self.commits % 32 == 0:  # (only this thread counts them)
                checkpoint(conn)

    def _rows(self, batch: list[tuple[str, JobInvocation]]) -> Iterator[tuple[Any, ...]]:
        for job, inv in batch:
            try:
                row = run_row(job, inv, self.origin)
            except Exception:  # a record we cannot convert is a bug: never retry it forever
                log.exception("mashroom-jobs: cannot store a run of job %r: %r", job, inv)
                continue
            yield row

    def _warn(self, message: str, *args: object) -> None:
        """Log a warning about the writer at most once a minute."""
        now = time.monotonic()
        if now - self._last_warning >= 60.0:
            self._last_warning = now
            log.warning(message, *args)

    # -- closing ----------------------------------------------------------------------------

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def thread(self) -> threading.Thread:
        """The writer thread."""
        return self._thread

    def close(self, deadline: float) -> int:
        """Write what is queued until ``deadline`` (a :func:`time.monotonic` time), then
        end the thread; returns how many runs are left unwritten (with a warning)."""
        self._closed = True
        self._close_deadline = deadline
        self._closing.set()
        self._hurry.set()
        self._wake.set()
        if self._thread is not threading.current_thread():
            self._thread.join(max(0.0, self._close_deadline - time.monotonic()))
        left = self.pending
        if left:
            log.warning("mashroom-jobs: %d run%s could not be written to the job store %s "
                        "before it closed", left, "s" if left != 1 else "", self.path)
        return left
