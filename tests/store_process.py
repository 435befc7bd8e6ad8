"""A process on a shared job store, driven by ``test_store_processes.py`` over stdin/stdout.

``python tests/store_process.py share STORE NAME``: a service on STORE with an exclusive and
a plain every-second job; runs the exclusive one by hand once, prints ``{"ready": origin}``,
then on the line ``stop`` unschedules everything and writes its last runs (prints
``{"stopped": origin}``), and on the line ``report`` prints what it sees: the stored
history of both jobs and its own in-memory records.

``python tests/store_process.py write STORE THREADS RUNS``: prints ``ready``, waits for a
line, then records RUNS runs and claims RUNS fires from each of THREADS threads at once,
closes the store and prints how many it wrote.
"""

from __future__ import annotations

import json
import sys
import threading
from datetime import datetime, timedelta, timezone
from typing import Any

from mashroom_jobs import BackgroundJobService, JobInvocation, Outcome
from mashroom_jobs.store import SQLiteStore


def _run(inv: JobInvocation) -> dict[str, Any]:
    return {"scheduled_for": inv.scheduled_for.timestamp() if inv.scheduled_for else None,
            "trigger": inv.trigger, "origin": inv.origin, "elsewhere": inv.elsewhere,
            "success": inv.success}


def share(path: str, name: str) -> None:
    service = BackgroundJobService(store=path, timezone="UTC", kernel_id=name, history_size=100)
    exclusive = service.schedule_job("exclusive", "* * * * * *", lambda: None, exclusive=True)
    everywhere = service.schedule_job("everywhere", "* * * * * *", lambda: None)
    exclusive.invoke_now().result(10)  # a manual run: never claimed
    print(json.dumps({"ready": service.origin}), flush=True)
    sys.stdin.readline()
    service.unschedule_all()
    service.shutdown(timeout=10)
    print(json.dumps({"stopped": service.origin}), flush=True)
    sys.stdin.readline()
    print(json.dumps({
        "origin": service.origin,
        "stored": {job: [_run(r) for r in service.history(job, limit=10_000)]
                   for job in ("exclusive", "everywhere")},
        "memory": [_run(r) for r in exclusive.history],
        "elsewhere_count": exclusive.elsewhere_count,
        "everywhere_runs": everywhere.run_count,
    }), flush=True)


def write(path: str, threads: int, runs: int) -> None:
    store = SQLiteStore(path)
    start = datetime(2026, 1, 1, tzinfo=timezone.utc)
    won = [0] * threads
    print("ready", flush=True)
    sys.stdin.readline()

    def work(index: int) -> None:
        for i in range(runs):
            when = start + timedelta(seconds=i)
            store.record(f"job {index}", JobInvocation(
                timestamp=when, scheduled_for=when, trigger="schedule", execution_time_ms=1.0,
                outcome=Outcome.OK, attempt=i + 1))
            if store.claim(f"job {index}", when) is None:
                won[index] += 1

    workers = [threading.Thread(target=work, args=(i,)) for i in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    closed = store.close(60)
    print(json.dumps({"origin": store.origin, "written": store.written, "closed": closed,
                      "won": sum(won)}), flush=True)


if __name__ == "__main__":
    if sys.argv[1] == "share":
        share(sys.argv[2], sys.argv[3])
    else:
        write(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
