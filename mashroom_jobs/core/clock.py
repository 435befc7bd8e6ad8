"""Time, injected: the only place the scheduler reads real time.

The scheduler asks a :class:`Clock` for the wall time (to compute cron fire
times), for a monotonic time (to sleep without being fooled by clock jumps)
and to wait on its condition variable until a monotonic deadline.  Tests pass
:class:`mashroom_jobs.testing.ManualClock` instead of :class:`SystemClock` and
move time by hand.
"""

from __future__ import annotations

import threading
import time
from datetime import datetime, timezone
from typing import Protocol, runtime_checkable

__all__ = ["Clock", "SystemClock"]


@runtime_checkable
class Clock(Protocol):
    """What the scheduler needs of time."""

    def now(self) -> datetime:
        """The current wall-clock time, timezone-aware (UTC)."""
        ...

    def monotonic(self) -> float:
        """Seconds on a clock that never jumps; only differences are meaningful."""
        ...

    def wait(self, condition: threading.Condition, deadline: float | None) -> None:
        """Block on ``condition`` (held by the caller) until notified or until
        ``monotonic() >= deadline``; ``None`` waits for a notification only.
        Spurious early returns are allowed: the caller re-checks."""
        ...


class SystemClock:
    """The real clock: :func:`time.time`, :func:`time.monotonic`."""

    def now(self) -> datetime:
        return datetime.now(timezone.utc)

    def monotonic(self) -> float:
        return time.monotonic()

    def wait(self, condition: threading.Condition, deadline: float | None) -> None:
        if deadline is None:
            condition.wait()
        else:
            remaining = deadline - time.monotonic()
            if remaining > 0:
                condition.wait(remaining)

    #: :meth:`wait_precise` polls the last this many seconds instead of sleeping.
    spin_limit: float = 0.01

    def wait_precise(self, condition: threading.Condition, deadline: float) -> None:
        """:meth:`wait` for a deadline that is a fire time, to be called shortly before
        it (the Timer does, see ``Timer.warm_lead``): polls the clock, holding the GIL,
        until the deadline, so the thread is already running when the time comes.  A
        timed sleep overshoots by its wake-up latency (0.1-2 ms, more on a virtual
        machine whose idle CPU must be woken) plus, when another thread is busy in
        Python, up to a GIL switch interval (5 ms).  Further than :attr:`spin_limit`
        away, it sleeps until then first.
        """
        remaining = deadline - time.monotonic()
        if remaining > self.spin_limit and condition.wait(remaining - self.spin_limit):
            return  # notified: the caller looks again
        # Poll without letting go of the GIL: once given up, it may take a busy thread's
        # whole switch interval to come back.  The condition stays held.
        monotonic = time.monotonic
        while monotonic() < deadline:
            pass

    def __repr__(self) -> str:
        return "SystemClock()"
