"""Test helpers, public so plugin authors can test their jobs without sleeping.

>>> from mashroom_jobs import BackgroundJobService
>>> from mashroom_jobs.testing import ManualClock
>>> clock = ManualClock("2026-01-01T00:00:00+00:00")
>>> service = BackgroundJobService(clock=clock, timezone="UTC")
>>> runs = []
>>> job = service.schedule_job("tick", "*/5 * * * *", lambda: runs.append(1))
>>> for _ in range(3):
...     clock.advance(minutes=5)      # returns when the timer has handled it
...     service.wait_until_idle(timeout=5)
True
True
True
>>> len(runs)
3
>>> service.shutdown()
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import datetime, timedelta, timezone

__all__ = ["ManualClock", "wait_for"]


def wait_for(condition: Callable[[], object], timeout: float = 5.0,
             interval: float = 0.005) -> bool:
    """Poll ``condition()`` until it is true or ``timeout`` real seconds pass.

    For what only a real thread can make true (a run started on a worker); returns
    whether it became true, so a test asserts it: ``assert wait_for(lambda: job.running)``.
    """
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() >= deadline:
            return bool(condition())
        time.sleep(interval)
    return True


class ManualClock:
    """A clock that moves only when told to.

    :meth:`advance` moves wall and monotonic time together, wakes every timer
    waiting on this clock, and returns once each has handled the new time and
    is waiting again, so a test can assert right after it: fires due are then
    decided (each run started or queued, each skip counted).  :meth:`jump`
    moves only the wall clock (like NTP or a manual change) and wakes nobody,
    as a real jump would not.

    ``handoff_lead`` (seconds, default 0) makes the service's timer hand fires over
    that long before their time, as it does on the real clock: a pool worker then
    waits (:meth:`wait_until`) and fires them at their time.  :meth:`advance` wakes
    such a worker but does not wait for it: follow it with
    ``service.wait_until_idle()``.
    """

    def __init__(self, start: datetime | str = "2026-01-01T00:00:00+00:00",
                 *, settle_timeout: float = 10.0, handoff_lead: float = 0.0) -> None:
        if isinstance(start, str):
            start = datetime.fromisoformat(start)
        if start.tzinfo is None:
            raise ValueError("ManualClock needs a timezone-aware start time")
        self._wall = start.astimezone(timezone.utc)
        self._mono = 1000.0
        self._epoch = 0
        self._state = threading.Condition()
        # condition -> epoch when its timer began waiting; condition -> timer thread
        self._waiting: dict[threading.Condition, int] = {}
        self._threads: dict[threading.Condition, threading.Thread] = {}
        self._settle_timeout = settle_timeout
        #: seconds before a fire time the timer hands it over (see the class docstring)
        self.handoff_lead = handoff_lead

    def now(self) -> datetime:
        with self._state:
            return self._wall

    def monotonic(self) -> float:
        with self._state:
            return self._mono

    def wait(self, condition: threading.Condition, deadline: float | None) -> None:
        with self._state:
            if deadline is not None and self._mono >= deadline:
                return
            self._threads[condition] = threading.current_thread()
            self._waiting[condition] = self._epoch
            self._state.notify_all()
        try:
            condition.wait(self._settle_timeout * 10)
        finally:
            with self._state:
                self._waiting.pop(condition, None)
                self._state.notify_all()

    def wait_until(self, deadline: float) -> None:
        """Block until :meth:`advance` reaches ``deadline`` (monotonic); not waited for
        by :meth:`advance` (a one-time wait: a batch's worker)."""
        with self._state:
            while self._mono < deadline - 1e-6:  # (times summed from parts differ in ulps)
                self._state.wait()

    def advance(self, seconds: float = 0.0, *, minutes: float = 0.0, hours: float = 0.0,
                days: float = 0.0) -> None:
        """Move time forward and return once every timer has caught up."""
        delta = seconds + 60 * minutes + 3600 * hours + 86400 * days
        if delta < 0:
            raise ValueError("advance() moves forward; use jump() for a wall clock going back")
        with self._state:
            self._mono += delta
            self._wall += timedelta(seconds=delta)
        self._wake_and_settle()

    def advance_to(self, when: datetime | str) -> None:
        """Advance to an absolute wall time (must not be in the past)."""
        if isinstance(when, str):
            when = datetime.fromisoformat(when)
        self.advance((when - self.now()).total_seconds())

    def jump(self, seconds: float) -> None:
        """Step the wall clock only (either direction); monotonic time stays."""
        with self._state:
            self._wall += timedelta(seconds=seconds)

    def settle(self) -> None:
        """Wake every timer and wait until each is waiting again."""
        self._wake_and_settle()

    def _wake_and_settle(self) -> None:
        with self._state:
            self._epoch += 1
            epoch = self._epoch
            self._state.notify_all()  # wait_until()s
            conditions = list(self._threads)
        for condition in conditions:
            with condition:
                condition.notify_all()
        deadline = time.monotonic() + self._settle_timeout
        with self._state:
            while not all(self._settled(c, epoch) for c in conditions):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError("a timer did not settle after ManualClock.advance()")
                self._state.wait(min(remaining, 0.05))

    def _settled(self, condition: threading.Condition, epoch: int) -> bool:
        """Waiting again since ``epoch`` began, or its thread has ended."""
        seen = self._waiting.get(condition)
        if seen is not None:
            return seen >= epoch
        return not self._threads[condition].is_alive()

    def __repr__(self) -> str:
        return f"ManualClock({self.now().isoformat()!r})"
