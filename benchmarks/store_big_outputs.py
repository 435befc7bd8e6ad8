"""The job store's writer with big outputs: how fast it writes, how soon, how much it queues.

    python benchmarks/store_big_outputs.py [--seconds S] [--kb K]

Three cases, one JSON line each:

- the writer alone, 3,000 runs of K KB recorded at once: runs/s, MB/s, first commit;
- the writer alone, 20,000 runs of 100 bytes: runs/s (the batches of small runs);
- 40 jobs printing K KB, each run again as soon as it ended (as fast as the service
  runs them) for S seconds: the first commit, the most text queued, the runs stored
  with and without their output (``shed``: queued while the writer was 64 MB behind),
  the MB/s of output stored, and how long shutdown took to write the rest.

The peak resident memory is the process's (``/usr/bin/time -v`` prints it).
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import sys
import tempfile
import threading
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mashroom_jobs import BackgroundJobService, JobInvocation, Outcome
from mashroom_jobs.store import SQLiteStore


def writer_alone(path: str, runs: int, size: int) -> dict[str, Any]:
    store = SQLiteStore(path)
    records = [JobInvocation(timestamp=datetime(2026, 1, 1, tzinfo=timezone.utc),
                             scheduled_for=None, trigger="manual", execution_time_ms=1.0,
                             outcome=Outcome.OK, output=f"{i}" + "x" * size, job="j")
               for i in range(runs)]
    started, first = time.perf_counter(), None
    for record in records:
        store.record("j", record)
    while store.pending:
        if first is None and store.written:
            first = time.perf_counter() - started
        time.sleep(0.0005)
    elapsed = time.perf_counter() - started
    store.close()
    return {"case": "writer alone", "runs": runs, "bytes_each": size,
            "runs_per_s": round(runs / elapsed), "MB_per_s": round(runs * size / elapsed / 1e6),
            "first_commit_s": round(first or elapsed, 3)}


def jobs_in_a_loop(path: str, jobs: int, size: int, seconds: float) -> dict[str, Any]:
    service = BackgroundJobService(store=path, timezone="UTC")
    text = "y" * size
    scheduled = [service.schedule_job(f"big {i}", "0 0 1 1 *",
                                      lambda: print(text + "!", end=""))  # a new string
                 for i in range(jobs)]
    stop = threading.Event()

    def drive(job: Any) -> None:
        while not stop.is_set():
            job.invoke_now().result(30)

    drivers = [threading.Thread(target=drive, args=(job,)) for job in scheduled]
    store = service._store  # (a benchmark looks inside: the service's own store)
    assert store is not None
    started, first, most = time.perf_counter(), None, 0
    for driver in drivers:
        driver.start()
    while time.perf_counter() - started < seconds:
        if first is None and store.written:
            first = time.perf_counter() - started
        most = max(most, store.pending_chars)
        time.sleep(0.005)
    stop.set()
    for driver in drivers:
        driver.join()
    elapsed = time.perf_counter() - started
    runs = sum(job.run_count for job in scheduled)
    shed = store.shed
    closing = time.perf_counter()
    service.shutdown(timeout=120)
    closed = time.perf_counter() - closing
    with sqlite3.connect(path) as conn:
        full, stored = conn.execute(
            "SELECT sum(length(output) > 1000), coalesce(sum(length(output)), 0) FROM runs"
        ).fetchone()
    return {"case": f"{jobs} jobs printing {size // 1000} KB in a loop", "seconds": seconds,
            "runs": runs, "first_commit_s": None if first is None else round(first, 3),
            "most_queued_MB": round(most / 1e6, 1), "stored_with_output": full,
            "shed": shed, "stored_MB_per_s": round(stored / elapsed / 1e6),
            "shutdown_s": round(closed, 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--kb", type=int, default=90)
    args = parser.parse_args()
    folder = tempfile.mkdtemp()
    size = args.kb * 1000
    print(json.dumps(writer_alone(os.path.join(folder, "a.sqlite"), 3_000, size)))
    print(json.dumps(writer_alone(os.path.join(folder, "b.sqlite"), 20_000, 100)))
    print(json.dumps(jobs_in_a_loop(os.path.join(folder, "c.sqlite"), 40, size,
                                    args.seconds)))


if __name__ == "__main__":
    main()
