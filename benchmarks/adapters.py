"""The same small API over both schedulers, so every case is written once.

Expressions are six-field, seconds first (``"* * * * * *"``), evaluated in UTC.
mashroom-jobs: :class:`~mashroom_jobs.BackgroundJobService` with its defaults.
APScheduler: ``BackgroundScheduler`` with its defaults (memory job store,
``ThreadPoolExecutor`` of 10 threads, ``misfire_grace_time=1``, ``coalesce=True``,
``max_instances=1``) and a ``CronTrigger`` with a second field.
"""

from __future__ import annotations

import logging
import math
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any

UTC = timezone.utc


class Adapter:
    """What a case needs of a scheduler."""

    label = ""

    def add(self, name: str, expression: str, callback: Callable[[], Any]) -> None:
        raise NotImplementedError

    def remove(self, name: str) -> None:
        raise NotImplementedError

    def start(self) -> None:
        """Start the scheduler (jobs added before start are picked up)."""

    def run_now_and_wait(self, name: str) -> None:
        """Run the job ``name`` once, now, and return when it has finished."""
        raise NotImplementedError

    def fill_history(self, names: list[str], runs: int) -> bool:
        """Run each of the jobs ``names`` ``runs`` times, so that a history it keeps is
        full; False when the scheduler keeps no history (nothing is run)."""
        return False

    def wakeups(self) -> int:
        """Times the scheduler's thread woke up so far."""
        raise NotImplementedError

    def shutdown(self) -> None:
        raise NotImplementedError

    def extra_figures(self) -> dict[str, Any]:
        """Figures of this scheduler's own to add to a case's result (after shutdown)."""
        return {}

    def served_fire_times(self, runs: list[tuple[int, float]], prefix: str) -> list[float]:
        """The fire time (epoch seconds) each run served, given (job index, callback start)
        pairs in start order; called after :meth:`shutdown`.

        The default is the floor rule for ``* * * * * *``: the second the callback
        started in; when one job has two starts in the same second, the earlier one
        served the second before (it was more than a second late).
        """
        served = [float(math.floor(start)) for _, start in runs]
        later: dict[int, float] = {}
        for position in range(len(runs) - 1, -1, -1):
            index = runs[position][0]
            following = later.get(index)
            if following is not None and served[position] >= following:
                served[position] = following - 1.0
            later[index] = served[position]
        return served


def _fields(expression: str) -> dict[str, str]:
    second, minute, hour, day, month, dow = expression.split()
    return {"second": second, "minute": minute, "hour": hour, "day": day, "month": month,
            "day_of_week": dow}


class MashroomAdapter(Adapter):
    label = "mashroom-jobs"

    #: schedule jobs as exclusive (each fire claimed in the store)
    exclusive = False

    def __init__(self, **settings: Any) -> None:
        from mashroom_jobs import BackgroundJobService

        precise = os.environ.get("MASHROOM_JOBS_BENCH_PRECISE") == "1"
        self.service = BackgroundJobService(timezone="UTC", precise_wakeups=precise,
                                            **settings)

    def add(self, name: str, expression: str, callback: Callable[[], Any]) -> None:
        # (``exclusive`` only when set: the code of round 1, which had no store, runs this too)
        extra = {"exclusive": True} if self.exclusive else {}
        self.service.schedule_job(name, expression, callback, **extra)

    def remove(self, name: str) -> None:
        self.service.unschedule_job(name)

    def run_now_and_wait(self, name: str) -> None:
        job = self.service.get_job(name)
        assert job is not None
        job.invoke_now().result()

    def fill_history(self, names: list[str], runs: int) -> bool:
        jobs = [self.service.get_job(name) for name in names]
        for _ in range(runs):  # every job once, then again: no run overlaps its job's last
            for start in range(0, len(jobs), 100):  # 100 at a time: few futures alive
                futures = [job.invoke_now() for job in jobs[start:start + 100]
                           if job is not None]
                for future in futures:
                    future.result()
        self.service.wait_until_idle(60)  # the runs' records written
        return True

    def wakeups(self) -> int:
        return self.service._runner.timer.wakeups

    def shutdown(self) -> None:
        self.service.wait_until_idle(5)
        self.service.shutdown(wait=False)

    def served_fire_times(self, runs: list[tuple[int, float]], prefix: str) -> list[float]:
        """Exact: the ``scheduled_for`` of each run's JobInvocation (the job's history,
        newest last, matched to the job's callback starts from the end)."""
        starts: dict[int, list[int]] = {}
        for position, (index, _) in enumerate(runs):
            starts.setdefault(index, []).append(position)
        served = super().served_fire_times(runs, prefix)  # replaced below where recorded
        for index, positions in starts.items():
            job = self.service.get_job(f"{prefix}{index}")
            assert job is not None
            records = [i.scheduled_for for i in job.history if i.trigger == "schedule"]
            for position, scheduled in zip(reversed(positions), reversed(records)):
                assert scheduled is not None
                served[position] = scheduled.timestamp()
        return served


class MashroomStoreAdapter(MashroomAdapter):
    """mashroom-jobs writing every run to a job store (a fresh SQLite file)."""

    label = "mashroom-jobs, store"

    def __init__(self) -> None:
        self.folder = tempfile.mkdtemp(prefix="mashroom-jobs-bench-")
        self.path = os.path.join(self.folder, "store.sqlite")
        super().__init__(store=self.path)

    def shutdown(self) -> None:
        self.service.wait_until_idle(5)
        self.service.shutdown(wait=False, timeout=30)  # the store writes its last runs

    def extra_figures(self) -> dict[str, Any]:
        """Runs recorded in memory and in the store: none may be missing from the store."""
        from mashroom_jobs.store import SQLiteStore

        runs = sum(job.run_count for job in self.service.jobs)
        store = SQLiteStore(self.path)
        try:
            stored = store.count()
        finally:
            store.close()
        shutil.rmtree(self.folder, ignore_errors=True)
        return {"runs": runs, "stored": stored, "lost_from_store": runs - stored}


class MashroomExclusiveAdapter(MashroomStoreAdapter):
    """The same, each job exclusive: every fire is also claimed in the store."""

    label = "mashroom-jobs, store, exclusive"
    exclusive = True


class APSchedulerAdapter(Adapter):
    label = "APScheduler"

    def __init__(self) -> None:
        from apscheduler.events import EVENT_JOB_ERROR, EVENT_JOB_EXECUTED
        from apscheduler.schedulers.background import BackgroundScheduler

        # Its "Run time of job ... was missed" warnings would otherwise go to stderr
        # (logging's last-resort handler), which costs it time the comparison is not about.
        logging.getLogger("apscheduler").setLevel(logging.ERROR)
        self.scheduler = BackgroundScheduler(timezone=UTC)
        self._wakeups = 0
        self._done = threading.Event()
        self.scheduler.add_listener(lambda event: self._done.set(),
                                    EVENT_JOB_EXECUTED | EVENT_JOB_ERROR)
        process = self.scheduler._process_jobs

        def counting() -> Any:  # one call per wake-up of its main loop
            self._wakeups += 1
            return process()

        self.scheduler._process_jobs = counting  # type: ignore[method-assign]

    def add(self, name: str, expression: str, callback: Callable[[], Any]) -> None:
        from apscheduler.triggers.cron import CronTrigger

        self.scheduler.add_job(callback, CronTrigger(**_fields(expression), timezone=UTC),
                               id=name, name=name)

    def remove(self, name: str) -> None:
        self.scheduler.remove_job(name)

    def start(self) -> None:
        self.scheduler.start()

    def run_now_and_wait(self, name: str) -> None:
        self._done.clear()
        self.scheduler.modify_job(name, next_run_time=datetime.now(UTC))
        if not self._done.wait(10):
            raise TimeoutError(f"APScheduler did not run {name!r} within 10 s")

    def wakeups(self) -> int:
        return self._wakeups

    def shutdown(self) -> None:
        self.scheduler.shutdown(wait=False)

    # served_fire_times: the floor rule, exact here: APScheduler drops a run more than
    # misfire_grace_time (1 s) late instead of starting it.


class FloorAdapter(Adapter):
    """The floor: what one interpreter does at best for every-second jobs, with no scheduler.

    One thread sleeps until each whole second and calls every job's callback inline, in one
    loop (the jobs share one expression, so they form one group): no hand-off to another
    thread, no bookkeeping, no cron evaluation. A scheduler's lateness above this is its own
    cost; this much is the sleep's overshoot and the calls themselves.
    """

    label = "floor"

    def __init__(self) -> None:
        self.callbacks: dict[str, Callable[[], Any]] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._wakeups = 0

    def add(self, name: str, expression: str, callback: Callable[[], Any]) -> None:
        if expression.split() != ["*"] * 6:
            raise ValueError(f"the floor runs every-second jobs only, not {expression!r}")
        self.callbacks[name] = callback

    def remove(self, name: str) -> None:
        del self.callbacks[name]

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="floor", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.is_set():
            due = math.floor(time.time()) + 1.0
            while (remaining := due - time.time()) > 0:
                time.sleep(remaining)
            self._wakeups += 1
            for callback in list(self.callbacks.values()):
                callback()

    def run_now_and_wait(self, name: str) -> None:
        self.callbacks[name]()

    def wakeups(self) -> int:
        return self._wakeups

    def shutdown(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)

    # served_fire_times: the floor rule of the base class, exact while a second's calls end
    # within the second


ADAPTERS: dict[str, type[Adapter]] = {
    "mashroom": MashroomAdapter,
    "mashroom+store": MashroomStoreAdapter,
    "mashroom+exclusive": MashroomExclusiveAdapter,
    "apscheduler": APSchedulerAdapter,
    "floor": FloorAdapter,
}
