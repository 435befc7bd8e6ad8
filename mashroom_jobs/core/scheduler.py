"""The timer: one thread, a heap of due times, misfire and clock-jump handling.

The timer knows nothing about what a job does.  It holds *entries*, each a
:class:`~mashroom_jobs.core.cron.CronSchedule` and a :class:`TimerTarget`, and
calls ``target.fire(...)`` when an entry is due.  Targets must return quickly:
they hand the work to an executor.

* Sleeping is on the clock's monotonic time, until the earliest entry or at most
  :attr:`Timer.max_sleep` seconds, so a wall-clock jump or a laptop suspend is
  noticed within that time.  With nothing due, the thread does not wake.
* Each next fire time is computed from the previous *scheduled* time, so
  schedules never drift.  When the timer wakes past several fire times of an
  entry (the process was blocked, suspended, or the clock jumped forward), the
  entry fires once (coalesced) and continues from the first fire time after now.
* A wall-clock jump backwards (detected by comparing wall and monotonic
  progress) recomputes every entry's next fire time from the new now.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import threading
from datetime import datetime
from typing import Protocol

from .clock import Clock
from .cron import CronSchedule

__all__ = ["Timer", "TimerEntry", "TimerTarget"]

log = logging.getLogger("mashroom_jobs")


class TimerTarget(Protocol):
    """What the timer calls; both methods run on the timer thread and must be quick."""

    def fire(self, scheduled_for: datetime, next_fire: datetime | None, coalesced: bool) -> None:
        """An entry is due: ``scheduled_for`` is the fire time served."""

    def rescheduled(self, next_fire: datetime | None) -> None:
        """The next fire time changed without a fire (the wall clock went backwards)."""


class TimerEntry:
    """One scheduled target in the heap. Cancelled entries are dropped lazily."""

    __slots__ = ("active", "next_fire", "next_ts", "schedule", "target")

    def __init__(self, schedule: CronSchedule, target: TimerTarget, next_fire: datetime | None):
        self.schedule = schedule
        self.target = target
        self.next_fire = next_fire
        self.next_ts = next_fire.timestamp() if next_fire is not None else None
        self.active = True


class Timer:
    """A single timer thread serving every entry, started on the first :meth:`add`."""

    #: Longest uninterrupted sleep, in seconds: bounds how late a wall-clock jump
    #: or a suspend is noticed.  Idle processes wake once per this period at most.
    max_sleep: float = 60.0
    #: A wall-clock step backwards larger than this (seconds) reschedules everything.
    jump_tolerance: float = 1.0

    def __init__(self, clock: Clock, name: str = "mashroom-jobs-timer") -> None:
        self._clock = clock
        self._name = name
        self._cond = threading.Condition(threading.RLock())
        self._heap: list[tuple[float, int, TimerEntry]] = []
        self._seq = itertools.count()
        self._stale = 0
        self._thread: threading.Thread | None = None
        self._stopping = False
        self._ready = threading.Event()
        #: times the thread woke up (for benchmarks and idle tests)
        self.wakeups = 0

    @property
    def thread(self) -> threading.Thread | None:
        return self._thread

    def add(self, schedule: CronSchedule, target: TimerTarget,
            after: datetime | None = None) -> TimerEntry:
        """Schedule ``target`` at the fire times of ``schedule`` after ``after`` (now)."""
        start = after if after is not None else self._clock.now()
        entry = TimerEntry(schedule, target, schedule.next_fire_time(start))
        started = False
        with self._cond:
            if self._stopping:
                raise RuntimeError("the timer was stopped")
            if entry.next_ts is not None:
                wake = not self._heap or entry.next_ts < self._heap[0][0]
                heapq.heappush(self._heap, (entry.next_ts, next(self._seq), entry))
                if self._thread is None:
                    self._start()
                    started = True
                elif wake:
                    self._cond.notify()
        if started:
            # Return only once the new thread waits on the clock (it holds the
            # condition until then), so an injected clock knows it from the start.
            self._ready.wait(10)
            with self._cond:
                pass
        return entry

    def cancel(self, entry: TimerEntry) -> None:
        """Remove an entry; it will not fire again. Cancelling twice is harmless."""
        with self._cond:
            if not entry.active:
                return
            entry.active = False
            if entry.next_ts is None:
                return
            self._stale += 1
            if self._stale > 1024 and self._stale * 2 > len(self._heap):
                self._heap = [item for item in self._heap if item[2].active]
                heapq.heapify(self._heap)
                self._stale = 0
            # no wake-up: a cancelled head costs one early wake at most

    def __len__(self) -> int:
        with self._cond:
            return len(self._heap) - self._stale

    def _start(self) -> None:
        self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
        self._thread.start()

    def stop(self, timeout: float | None = None) -> None:
        """Stop the thread; entries stay cancelled-in-place and never fire."""
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
            thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)

    # -- the thread --

    def _run(self) -> None:
        clock, cond = self._clock, self._cond
        last_wall, last_mono = clock.now().timestamp(), clock.monotonic()
        while True:
            with cond:
                if self._stopping:
                    return
                now = clock.now()
                now_ts, mono = now.timestamp(), clock.monotonic()
                moved: list[TimerEntry] = []
                if (now_ts - last_wall) - (mono - last_mono) < -self.jump_tolerance:
                    moved = self._reschedule_all(now)
                last_wall, last_mono = now_ts, mono
                due = self._pop_due(now, now_ts)
            # Targets are called without the lock: they take their own locks and
            # may add or cancel entries (a job may unschedule itself).
            for entry in moved:
                try:
                    entry.target.rescheduled(entry.next_fire)
                except Exception:
                    log.exception("mashroom-jobs: error while rescheduling %r", entry.target)
            for entry, scheduled, following, coalesced in due:
                try:
                    entry.target.fire(scheduled, following, coalesced)
                except Exception:  # the timer must survive any target
                    log.exception("mashroom-jobs: error while firing %r", entry.target)
            del due, moved
            with cond:
                if self._stopping:
                    return
                heap = self._heap
                while heap and not heap[0][2].active:
                    heapq.heappop(heap)
                    self._stale -= 1
                now_ts, mono = clock.now().timestamp(), clock.monotonic()
                deadline = mono + self.max_sleep
                if heap:
                    deadline = min(deadline, mono + max(0.0, heap[0][0] - now_ts))
                self._ready.set()
                clock.wait(cond, deadline)
                self.wakeups += 1

    def _pop_due(
        self, now: datetime, now_ts: float
    ) -> list[tuple[TimerEntry, datetime, datetime | None, bool]]:
        """Take the due entries off the heap and push each back at its next time."""
        heap = self._heap
        due: list[tuple[TimerEntry, datetime, datetime | None, bool]] = []
        while heap and heap[0][0] <= now_ts:
            entry = heapq.heappop(heap)[2]
            if not entry.active:
                self._stale -= 1
                continue
            scheduled = entry.next_fire
            assert scheduled is not None
            following = entry.schedule.next_fire_time(scheduled)
            coalesced = False
            if following is not None and following.timestamp() <= now_ts:
                coalesced = True  # asleep past more fire times: run once, resume from now
                following = entry.schedule.next_fire_time(now)
            entry.next_fire = following
            if following is not None:
                entry.next_ts = following.timestamp()
                heapq.heappush(heap, (entry.next_ts, next(self._seq), entry))
            else:
                entry.next_ts = None
                entry.active = False
            due.append((entry, scheduled, following, coalesced))
        return due

    def _reschedule_all(self, now: datetime) -> list[TimerEntry]:
        """Recompute every entry from ``now``; the caller tells the targets."""
        log.warning("mashroom-jobs: the wall clock went backwards; rescheduling every job")
        entries = [item[2] for item in self._heap if item[2].active]
        self._heap = []
        self._stale = 0
        for entry in entries:
            entry.next_fire = entry.schedule.next_fire_time(now)
            entry.next_ts = entry.next_fire.timestamp() if entry.next_fire else None
            if entry.next_ts is not None:
                heapq.heappush(self._heap, (entry.next_ts, next(self._seq), entry))
        return entries
