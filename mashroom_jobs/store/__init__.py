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

The modules: :mod:`.location` (where the store is, and who this process is in it),
:mod:`.schema` (the file's schema, its migrations, opening, runs as rows),
:mod:`.writer` (the queue and the writer thread) and :mod:`.sqlite_store` (the
:class:`SQLiteStore` class: claims, reads, prune and vacuum, closing).
"""

from __future__ import annotations

from .location import (
    NETWORK_FILESYSTEMS,
    default_store_path,
    local_store_path,
    make_origin,
    network_filesystem,
    store_location,
)
from .location import URL_PREFIX as URL_PREFIX
from .schema import MIGRATIONS as MIGRATIONS
from .schema import SCHEMA_VERSION
from .sqlite_store import CLAIM_RETENTION_SECONDS as CLAIM_RETENTION_SECONDS
from .sqlite_store import DEFAULT_BUSY_TIMEOUT as DEFAULT_BUSY_TIMEOUT
from .sqlite_store import SQLiteStore
from .writer import MAX_BATCH as MAX_BATCH
from .writer import MAX_BATCH_CHARS as MAX_BATCH_CHARS
from .writer import MAX_PENDING as MAX_PENDING
from .writer import MAX_PENDING_CHARS as MAX_PENDING_CHARS

__all__ = [
    "NETWORK_FILESYSTEMS", "SCHEMA_VERSION", "SQLiteStore", "default_store_path",
    "local_store_path", "make_origin", "network_filesystem", "store_location",
]
