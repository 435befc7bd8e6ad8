"""The benchmark cases. Each takes an adapter and parameters and returns a dict of numbers.

Every case runs in a fresh subprocess (see :mod:`benchmarks.worker`), so the
process-wide figures (CPU time, RSS, threads) belong to one scheduler only.
"""

from __future__ import annotations

import gc
import math
import os
import statistics
import threading
import time
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any

from .adapters import Adapter

EVERY_SECOND = "* * * * * *"


# -- measuring helpers ---------------------------------------------------------


def rss_bytes() -> int:
    """Resident set size of this process."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def voluntary_switches() -> int:
    """Voluntary context switches of every thread of this process so far."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("voluntary_ctxt_switches"):
                return int(line.split()[1])
    return 0


def sleep_until(ts: float) -> None:
    """Sleep until the epoch time ``ts``, in one sleep where possible: a main thread
    waking now and then would compete with the schedulers' threads."""
    while True:
        remaining = ts - time.time()
        if remaining <= 0:
            return
        time.sleep(remaining)


def percentile(sorted_values: list[float], q: float) -> float:
    """Nearest-rank percentile of an ascending list (q in 0..100)."""
    if not sorted_values:
        return math.nan
    rank = max(1, math.ceil(q / 100 * len(sorted_values)))
    return sorted_values[rank - 1]


def far_minute() -> int:
    """A minute of the hour about half an hour away, so hourly jobs at it stay idle."""
    return (datetime.now(timezone.utc).minute + 30) % 60


def busy_work(stop: float) -> int:
    """Pure-Python arithmetic until ``stop`` (the GIL held most of the time); returns rounds."""
    rounds = 0
    while time.time() < stop:
        total = 0
        for i in range(2000):
            total += i * i % 7
        rounds += 1
    return rounds


# -- case 1 and 2: fire lateness -----------------------------------------------


def lateness(adapter: Adapter, n: int, window: int, busy: bool = False,
             grace: float = 2.0) -> dict[str, Any]:
    """N jobs on ``* * * * * *``; lateness of the runs serving ``window`` consecutive fires.

    Lateness is the callback's start (``time.time()``, its only statement besides
    appending to a list) minus the fire time the run serves: for mashroom-jobs the
    ``scheduled_for`` of the run's JobInvocation; for APScheduler the floor of the
    start second (exact, as it never starts a run more than 1 s late: it drops it).
    """
    runs: list[tuple[int, float]] = []
    record = runs.append

    def make(index: int) -> Callable[[], None]:
        def callback() -> None:
            record((index, time.time()))
        return callback

    t0 = time.perf_counter()
    for i in range(n):
        adapter.add(f"job-{i}", EVERY_SECOND, make(i))
    adapter.start()
    setup_s = time.perf_counter() - t0
    # the first fire served: at least one whole second after the set-up
    first = math.ceil(time.time()) + 2
    fires = [first + k for k in range(window)]
    sleep_until(first - 0.5)
    cpu0, wall0, wake0 = time.process_time(), time.time(), adapter.wakeups()
    main_rounds = 0
    if busy:
        main_rounds = busy_work(first + window - 0.5)
    sleep_until(first + window - 0.5)
    cpu1, wall1, wake1 = time.process_time(), time.time(), adapter.wakeups()
    threads = threading.active_count()
    if busy:
        busy_work(fires[-1] + grace)
    sleep_until(fires[-1] + grace)
    adapter.shutdown()
    snapshot = list(runs)
    served_times = adapter.served_fire_times(snapshot, "job-")

    wanted = set(fires)
    seen: set[tuple[int, float]] = set()
    late_ms: list[float] = []
    for (index, start), served in zip(snapshot, served_times):
        if served in wanted and (index, served) not in seen:
            seen.add((index, served))
            late_ms.append((start - served) * 1000.0)
    late_ms.sort()
    expected = n * window
    return {
        "n": n,
        "window_s": window,
        "expected": expected,
        "observed": len(seen),
        "missed": expected - len(seen),
        "p50_ms": percentile(late_ms, 50),
        "p99_ms": percentile(late_ms, 99),
        "max_ms": late_ms[-1] if late_ms else math.nan,
        "cpu_per_wall": (cpu1 - cpu0) / (wall1 - wall0),
        "wakeups_per_s": (wake1 - wake0) / (wall1 - wall0),
        "setup_s": setup_s,
        "threads": threads,
        "main_rounds_per_s": main_rounds / (wall1 - wall0) if busy else None,
        **adapter.extra_figures(),
    }


def main_thread_baseline(window: float) -> dict[str, Any]:
    """Rounds per second of :func:`busy_work` with no scheduler at all."""
    start = time.time()
    rounds = busy_work(start + window)
    return {"main_rounds_per_s": rounds / (time.time() - start)}


# -- case 3: set-up ------------------------------------------------------------


def setup_cost(adapter: Adapter, n: int, shared: bool) -> dict[str, Any]:
    """Microseconds per add of ``n`` jobs (one shared or ``n`` distinct expressions),
    then per remove, on a started scheduler.  No job fires during the measurement."""
    minute = far_minute()
    if shared:
        expressions = [f"0 {minute} * * * *"] * n
    else:  # n distinct daily times, none in the next few minutes
        expressions = [f"{i % 60} {(minute + (i // 60) % 20) % 60} {(i // 1200) % 24} * * *"
                       for i in range(n)]
        assert len(set(expressions)) == n
    adapter.start()
    adapter.add("warm-up", expressions[0], _noop)  # imports, lazy threads
    adapter.remove("warm-up")
    gc.collect()
    t0 = time.perf_counter()
    for i in range(n):
        adapter.add(f"job-{i}", expressions[i], _noop)
    t1 = time.perf_counter()
    for i in range(n):
        adapter.remove(f"job-{i}")
    t2 = time.perf_counter()
    adapter.shutdown()
    return {
        "n": n,
        "shared": shared,
        "add_us": (t1 - t0) / n * 1e6,
        "remove_us": (t2 - t1) / n * 1e6,
    }


def _noop() -> None:
    pass


# -- case 4: idle --------------------------------------------------------------


def idle(adapter: Adapter, n: int, window: float) -> dict[str, Any]:
    """``n`` hourly jobs, none due for about half an hour: what ``window`` seconds cost."""
    minute = far_minute()
    for i in range(n):
        adapter.add(f"job-{i}", f"0 {minute} * * * *", _noop)
    adapter.start()
    time.sleep(1.0)  # let the set-up settle
    gc.collect()
    cpu0, wall0, wake0, sw0 = (time.process_time(), time.time(), adapter.wakeups(),
                               voluntary_switches())
    time.sleep(window)
    cpu1, wall1, wake1, sw1 = (time.process_time(), time.time(), adapter.wakeups(),
                               voluntary_switches())
    adapter.shutdown()
    return {
        "n": n,
        "window_s": round(wall1 - wall0, 3),
        "cpu_s": cpu1 - cpu0,
        "wakeups": wake1 - wake0,
        # the main thread's own sleep accounts for one
        "voluntary_switches": sw1 - sw0,
    }


# -- case 5: memory ------------------------------------------------------------


def _full_gc_ms(rounds: int = 5) -> float:
    """The median time of a full garbage collection, ms."""
    times = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        gc.collect()
        times.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(times)


def memory(adapter: Adapter, n: int, invocations: int, history_runs: int = 20
           ) -> dict[str, Any]:
    """RSS per scheduled job at ``n`` jobs, then with ``history_runs`` runs of each (a full
    history), the objects and time of a full collection then; RSS growth over
    ``invocations`` runs of one job."""
    minute = far_minute()
    expression = f"0 {minute} * * * *"
    adapter.start()
    adapter.add("warm-up", expression, _noop)
    for _ in range(50):
        adapter.run_now_and_wait("warm-up")
    adapter.remove("warm-up")
    gc.collect()
    base = rss_bytes()
    base_tracked = len(gc.get_objects())
    for i in range(n):
        adapter.add(f"job-{i}", expression, _noop)
    gc.collect()
    per_job = (rss_bytes() - base) / n
    # The same jobs, each with a full history (where the scheduler keeps one): the memory
    # a long-running kernel holds, and what a full garbage collection has to walk.
    names = [f"job-{i}" for i in range(n)]
    filled = adapter.fill_history(names, history_runs)
    gc.collect()
    full = {
        "rss_per_job_full_history_bytes": (rss_bytes() - base) / n if filled else None,
        "gc_tracked_per_job": (len(gc.get_objects()) - base_tracked) / n,
        "full_gc_ms": _full_gc_ms(),
    }
    for i in range(n):
        adapter.remove(f"job-{i}")
    gc.collect()

    adapter.add("runner", expression, _noop)
    warm = max(1, invocations // 10)
    checkpoints: list[tuple[int, int]] = []
    t0 = time.perf_counter()
    for k in range(1, invocations + 1):
        adapter.run_now_and_wait("runner")
        if k == warm or k % max(1, invocations // 5) == 0:
            gc.collect()
            checkpoints.append((k, rss_bytes()))
    elapsed = time.perf_counter() - t0
    adapter.shutdown()
    warm_rss = checkpoints[0][1]
    return {
        "n": n,
        "rss_per_job_bytes": per_job,
        **full,
        "invocations": invocations,
        "rss_growth_after_warmup_kib": (checkpoints[-1][1] - warm_rss) / 1024,
        "rss_checkpoints_mib": [(k, round(r / 2**20, 2)) for k, r in checkpoints],
        "run_now_round_trip_us": elapsed / invocations * 1e6,
    }
