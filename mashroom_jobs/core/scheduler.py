"""The timer: one thread, a heap of due times, misfire and clock-jump handling.

The timer knows nothing about what a job does.  It holds *entries*, each a
:class:`~mashroom_jobs.core.cron.CronSchedule` and a target (any object; the
runner's are its jobs), and hands the entries due together to its
:attr:`Timer.handoff` ``lead`` seconds before their fire time (the clock's
``handoff_lead``: a little on the real clock, none on an injected one).  The
receiver must return quickly.

* Sleeping is on the clock's monotonic time, until the earliest entry or at most
  :attr:`Timer.max_sleep` seconds, so a wall-clock jump or a laptop suspend is
  noticed within that time.  With nothing due, the thread does not wake.
* Each next fire time is computed from the previous *scheduled* time, so
  schedules never drift.  When the timer wakes past several fire times of an
  entry (the process was blocked, suspended, or the clock jumped forward), the
  entry fires once (coalesced) and continues from the first fire time after now.
* A wall-clock jump backwards (detected by comparing wall and monotonic
  progress) recomputes every entry's next fire time from the new now.
* Entries of one schedule due at one time form one *group*: one heap item and
  one next-time computation per fire, however many jobs share the expression
  (``shared_schedule`` gives them one CronSchedule).
* It also runs one-shot timed calls (:meth:`Timer.call_later`: a timeout, a
  stop's grace, a retry, a loop check), on the same thread.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import threading
from collections.abc import Callable
from datetime import datetime

from .clock import Clock, handoff_lead
from .cron import CronSchedule

__all__ = ["Due", "Handoff", "Timer", "TimerCall", "TimerEntry"]

log = logging.getLogger("mashroom_jobs")


#: One group's fire: its entries, the fire time served, the next one, and whether
#: several missed fires were coalesced into this one.
Due = tuple[list["TimerEntry"], datetime, "datetime | None", bool]
#: Receives due fires to start at a monotonic time (see :attr:`Timer.handoff`).
Handoff = Callable[[float, list[Due]], None]
#: Told of entries whose next fire time changed without a fire (the clock went back).
Rescheduled = Callable[[list["TimerEntry"]], None]


class TimerEntry:
    """One scheduled target. Cancelled entries leave their group at once."""

    __slots__ = ("_group", "active", "next_fire", "next_ts", "schedule", "target")

    def __init__(self, schedule: CronSchedule, target: object, next_fire: datetime | None):
        self.schedule = schedule
        self.target = target
        self.next_fire = next_fire
        self.next_ts = next_fire.timestamp() if next_fire is not None else None
        self.active = True
        self._group: _Group | None = None


class TimerCall:
    """A one-shot call (:meth:`Timer.call_later`): a timeout, a stop's grace, a retry."""

    __slots__ = ("args", "cancelled", "deadline", "fn")

    def __init__(self, deadline: float, fn: Callable[..., object], args: tuple[object, ...]):
        self.deadline = deadline
        self.fn = fn
        self.args = args
        self.cancelled = False

    def cancel(self) -> None:
        """It will not be called (if it has not been already). Harmless twice."""
        self.cancelled = True


class _Group:
    """The entries of one schedule due at one time: one heap item, one next-time computation.

    10,000 jobs on one expression are one group, so a fire costs one heap operation
    and one cron computation, and then one call per job.
    """

    __slots__ = ("dead", "entries", "key", "next_fire", "next_ts", "schedule")

    def __init__(self, schedule: CronSchedule, next_fire: datetime, next_ts: float) -> None:
        self.schedule = schedule
        self.next_fire = next_fire
        self.next_ts = next_ts
        self.key = (id(schedule), next_ts)
        # an insertion-ordered set: fires go out in scheduling order, removal is O(1)
        self.entries: dict[TimerEntry, None] = {}
        self.dead = False


class Timer:
    """A single timer thread serving every entry, started on the first :meth:`add`."""

    #: Longest uninterrupted sleep, in seconds: bounds how late a wall-clock jump
    #: or a suspend is noticed.  Idle processes wake once per this period at most.
    max_sleep: float = 60.0
    #: A wall-clock step backwards larger than this (seconds) reschedules everything.
    jump_tolerance: float = 1.0
    def __init__(self, clock: Clock, handoff: Handoff, name: str = "mashroom-jobs-timer", *,
                 rescheduled: Rescheduled | None = None, lead: float | None = None) -> None:
        #: receives each batch of due groups: ``handoff(start, due)`` fires them at
        #: ``start`` (monotonic) on another thread (or on this one, when due now)
        self.handoff = handoff
        #: seconds before a fire time the timer wakes to hand it over: the clock's
        #: ``handoff_lead`` unless given (0: at the time)
        self.lead = handoff_lead(clock) if lead is None else lead
        self._clock = clock
        self._name = name
        self._rescheduled = rescheduled
        self._cond = threading.Condition(threading.RLock())
        self._heap: list[tuple[float, int, _Group]] = []
        self._calls: list[tuple[float, int, TimerCall]] = []  # by monotonic deadline
        self._groups: dict[tuple[int, float], _Group] = {}
        self._seq = itertools.count()
        self._count = 0
        self._thread: threading.Thread | None = None
        self._stopping = False
        self._ready = threading.Event()
        #: times the thread woke up (for benchmarks and idle tests)
        self.wakeups = 0

    @property
    def thread(self) -> threading.Thread | None:
        return self._thread

    def add(self, schedule: CronSchedule, target: object,
            after: datetime | None = None) -> TimerEntry:
        """Schedule ``target`` at the fire times of ``schedule`` after ``after`` (now)."""
        start = after if after is not None else self._clock.now()
        entry = TimerEntry(schedule, target, schedule.next_fire_time(start))
        started = False
        with self._cond:
            if self._stopping:
                raise RuntimeError("the timer was stopped")
            if entry.next_ts is not None:
                wake = self._join(entry)
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

    def call_later(self, delay: float, fn: Callable[..., object], *args: object) -> TimerCall:
        """Call ``fn(*args)`` on the timer thread ``delay`` seconds from now (monotonic).

        For short bookkeeping only (a timeout, a stop's grace, a retry): it runs on the
        thread that fires jobs.  Exceptions are logged.  Returns a handle to cancel it.
        """
        with self._cond:
            if self._stopping:
                raise RuntimeError("the timer was stopped")
            call = TimerCall(self._clock.monotonic() + max(0.0, delay), fn, args)
            heapq.heappush(self._calls, (call.deadline, next(self._seq), call))
            started = self._thread is None
            if started:
                self._start()
            elif self._calls[0][2] is call:
                self._cond.notify()
        if started:
            self._ready.wait(10)
            with self._cond:
                pass
        return call

    def _join(self, entry: TimerEntry) -> bool:
        """Put an entry into the group of its schedule and time; True if it is the earliest."""
        assert entry.next_fire is not None and entry.next_ts is not None
        group = self._groups.get((id(entry.schedule), entry.next_ts))
        wake = False
        if group is None:
            heap = self._heap
            wake = not heap or entry.next_ts < heap[0][0]
            group = _Group(entry.schedule, entry.next_fire, entry.next_ts)
            self._groups[group.key] = group
            heapq.heappush(heap, (entry.next_ts, next(self._seq), group))
        group.entries[entry] = None
        entry._group = group
        self._count += 1
        return wake

    def cancel(self, entry: TimerEntry) -> None:
        """Remove an entry; it will not fire again. Cancelling twice is harmless."""
        with self._cond:
            if not entry.active:
                return
            entry.active = False
            group = entry._group
            if group is None:
                return
            entry._group = None
            self._count -= 1
            del group.entries[entry]
            if not group.entries:  # its heap item is dropped when it comes up
                group.dead = True
                del self._groups[group.key]
            # no wake-up: a cancelled head costs one early wake at most

    def __len__(self) -> int:
        with self._cond:
            return self._count

    def groups(self) -> tuple[int, int]:
        """(the live groups, the items on the heap, dead ones included): for tests and
        benchmarks of the grouping."""
        with self._cond:
            return len(self._groups), len(self._heap)

    def _start(self) -> None:
        self._thread = threading.Thread(target=self._serve, name=self._name, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        try:
            self._run()
        finally:  # stopped before it ever waited: whoever started it must not wait for that
            self._ready.set()

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
                lead = self.lead
                due = self._pop_due(now, now_ts, now_ts + lead)
                calls = self._pop_calls(mono)
            # Receivers are called without the lock: they take their own locks and
            # may add or cancel entries (a job may unschedule itself).
            if moved and self._rescheduled is not None:
                try:
                    self._rescheduled(moved)
                except Exception:
                    log.exception("error while rescheduling %d entries", len(moved))
            if due:
                self._hand_over(due, now_ts, mono)
            for call in calls:
                if call.cancelled:  # by a fire handed over just before (a fire drops a retry)
                    continue
                try:
                    call.fn(*call.args)
                except Exception:
                    log.exception("error in a timed call %r", call.fn)
            del due, moved, calls
            with cond:
                if self._stopping:
                    return
                self._sleep(cond, lead)

    def _hand_over(self, due: list[Due], now_ts: float, mono: float) -> None:
        """Give the due groups to the hand-off: those overdue to start now, those due
        within the lead at their fire time (on the monotonic clock)."""
        overdue = [item for item in due if item[1].timestamp() <= now_ts]
        upcoming = [item for item in due if item[1].timestamp() > now_ts]
        for batch in (overdue, upcoming):
            if not batch:
                continue
            start = mono + max(0.0, batch[0][1].timestamp() - now_ts)
            try:
                self.handoff(start, batch)
            except Exception:  # the timer must survive any receiver
                log.exception("error while handing over fires due at %s", batch[0][1])

    def _sleep(self, cond: threading.Condition, lead: float) -> None:
        """Wait (holding ``cond``) until the next fire time (less ``lead``), the next
        timed call, a change, or :attr:`max_sleep`."""
        clock = self._clock
        heap = self._heap
        while heap and heap[0][2].dead:
            heapq.heappop(heap)
        now_ts, mono = clock.now().timestamp(), clock.monotonic()
        deadline = mono + self.max_sleep
        if heap and heap[0][0] - lead - now_ts < self.max_sleep:
            deadline = mono + max(0.0, heap[0][0] - lead - now_ts)
        calls_heap = self._calls
        while calls_heap and calls_heap[0][2].cancelled:
            heapq.heappop(calls_heap)
        if calls_heap and calls_heap[0][0] < deadline:
            deadline = calls_heap[0][0]
        self._ready.set()
        clock.wait(cond, deadline)
        self.wakeups += 1

    def _pop_calls(self, mono: float) -> list[TimerCall]:
        calls, due = self._calls, []
        while calls and calls[0][0] <= mono:
            call = heapq.heappop(calls)[2]
            if not call.cancelled:
                due.append(call)
        return due

    def _pop_due(self, now: datetime, now_ts: float, horizon: float) -> list[Due]:
        """Take the groups due by ``horizon`` off the heap and push each back at its
        next time."""
        heap = self._heap
        due: list[Due] = []
        while heap and heap[0][0] <= horizon:
            group = heapq.heappop(heap)[2]
            if group.dead:
                continue
            del self._groups[group.key]
            schedule, scheduled = group.schedule, group.next_fire
            following = schedule.next_fire_time(scheduled)
            coalesced = False
            if following is not None and following.timestamp() <= now_ts:
                coalesced = True  # asleep past more fire times: run once, resume from now
                following = schedule.next_fire_time(now)
            entries = list(group.entries)
            if following is not None:
                self._regroup(group, entries, following)
            else:
                group.dead = True
                self._count -= len(entries)
                for entry in entries:
                    entry.next_fire = entry.next_ts = entry._group = None
                    entry.active = False
            due.append((entries, scheduled, following, coalesced))
        return due

    def _regroup(self, group: _Group, entries: list[TimerEntry], following: datetime) -> None:
        """Move a fired group to its next time, merging with a group already there."""
        next_ts = following.timestamp()
        for entry in entries:
            entry.next_fire = following
            entry.next_ts = next_ts
        key = (id(group.schedule), next_ts)
        other = self._groups.get(key)
        if other is None:
            group.next_fire, group.next_ts, group.key = following, next_ts, key
            self._groups[key] = group
            heapq.heappush(self._heap, (next_ts, next(self._seq), group))
        else:  # jobs scheduled since the last fire already wait there
            group.dead = True
            merged = dict.fromkeys(entries)
            merged.update(other.entries)
            other.entries = merged
            for entry in entries:
                entry._group = other

    def _reschedule_all(self, now: datetime) -> list[TimerEntry]:
        """Recompute every entry from ``now``; the caller tells the targets."""
        log.warning("mashroom-jobs: the wall clock went backwards; rescheduling every job")
        entries = [entry for _, _, group in self._heap if not group.dead
                   for entry in group.entries]
        for _, _, group in self._heap:
            group.dead = True
        self._heap = []
        self._groups = {}
        self._count = 0
        for entry in entries:
            entry.next_fire = entry.schedule.next_fire_time(now)
            entry.next_ts = entry.next_fire.timestamp() if entry.next_fire else None
            entry._group = None
            if entry.next_ts is not None:
                self._join(entry)
            else:
                entry.active = False
        return entries
