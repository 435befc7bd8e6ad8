"""A process running notebook jobs, driven by ``test_notebook_jobs.py`` over stdin/stdout.

``python tests/notebook_process.py share STORE NAME NOTEBOOK``: a service on STORE with an
exclusive notebook job firing every 2 seconds; prints ``{"ready": origin}``, then on the
line ``stop`` unschedules it, waits for its run and writes its last runs, and prints
``{"stopped": origin, "kernels": [pids of kernels it ever saw]}``.

``python tests/notebook_process.py host NOTEBOOK``: runs NOTEBOOK (whose second cell
sleeps) at once; when that cell runs, prints ``{"kernel": pid}``; then on the line
``exit`` ends the process normally (its atexit handlers run; the run is still going).
"""

from __future__ import annotations

import json
import sys

import psutil

from mashroom_jobs import BackgroundJobService, Notebook
from mashroom_jobs.testing import wait_for


def kernels() -> list[int]:
    """The ipykernel processes this process started (and that are not zombies)."""
    found = []
    for child in psutil.Process().children(recursive=True):
        try:
            if "ipykernel_launcher" in " ".join(child.cmdline()) \
                    and child.status() != psutil.STATUS_ZOMBIE:
                found.append(child.pid)
        except psutil.Error:
            continue
    return found


def share(path: str, name: str, notebook: str) -> None:
    service = BackgroundJobService(store=path, timezone="UTC", kernel_id=name)
    seen: set[int] = set()
    job = service.schedule_job("report", "*/2 * * * * *",
                               Notebook(notebook, {"day": name}), exclusive=True)
    # (a running run's progress changes its state: its kernel is there then)
    job.observe(lambda change: seen.update(kernels()), names="state")
    print(json.dumps({"ready": service.origin}), flush=True)
    sys.stdin.readline()
    service.unschedule_all()
    service.wait_until_idle(60)
    service.shutdown(timeout=30)
    print(json.dumps({"stopped": service.origin, "kernels": sorted(seen)}), flush=True)


def host(notebook: str) -> None:
    service = BackgroundJobService(timezone="UTC")
    job = service.schedule_job("sleeper", None, Notebook(notebook))
    job.observe(lambda change: None, names="state")  # (progress is published to observers)
    if not wait_for(lambda: job.state.progress == "cell 2 of 3" and kernels(), 60):
        print(json.dumps({"error": f"the sleeping cell did not start: {job.state}"}),
              flush=True)
        sys.exit(1)
    print(json.dumps({"kernel": kernels()[0]}), flush=True)
    sys.stdin.readline()
    sys.exit(0)  # with the run still going: atexit handlers end what it started


if __name__ == "__main__":
    if sys.argv[1] == "share":
        share(sys.argv[2], sys.argv[3], sys.argv[4])
    elif sys.argv[1] == "host":
        host(sys.argv[2])
    else:
        raise SystemExit(f"unknown mode {sys.argv[1]!r}")
