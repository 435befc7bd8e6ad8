"""Time, injected: the only place the scheduler reads real time.

The scheduler asks a :class:`Clock` for the wall time (to compute cron fire
times), for a monotonic time (to sleep without being fooled by clock jumps)
and to wait on its condition variable until a monotonic deadline.  Tests pass
:class:`mashroom_jobs.testing.ManualClock` instead of :class:`SystemClock` and
move time by hand.

Three optional attributes tune the one fire path to the clock (read with
:func:`handoff_lead` and ``getattr``): ``handoff_lead``, how many seconds before a
fire time the timer hands the fire to the worker that will start it (0, the
default: at the time itself, and the timer waits until the fires are decided, so
that a test reads the outcome right after moving the clock); ``wait_until``, how
that worker waits for the fire time (default: on a condition of its own, with
:meth:`Clock.wait`); and ``wait_precise``, a way to wait for a fire time without
oversleeping.
"""

from __future__ import annotations

import sys
import threading
import time
from datetime import datetime, timezone
from typing import Protocol, runtime_checkable

__all__ = ["Clock", "SystemClock", "handoff_lead"]


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


def handoff_lead(clock: Clock) -> float:
    """Seconds before a fire time the timer hands the fire over (see the module)."""
    return float(getattr(clock, "handoff_lead", 0.0))


class SystemClock:
    """The real clock: :func:`time.time`, :func:`time.monotonic`."""

    @property
    def handoff_lead(self) -> float:
        """Early enough to get the GIL twice (timer, then worker) when the kernel's main
        thread is busy: neither hand-off then delays the fire itself."""
        return 2 * sys.getswitchinterval() + 0.002

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

    def wait_until(self, deadline: float) -> None:
        """Sleep until ``monotonic() >= deadline``."""
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return
            time.sleep(remaining)

    #: :meth:`wait_precise` polls the last this many seconds instead of sleeping.
    spin_limit: float = 0.01

    def wait_precise(self, condition: threading.Condition, deadline: float) -> None:
        """:meth:`wait` for a deadline that is a fire time, to be called shortly before
        it (a batch's worker does, once the timer handed the batch over ``handoff_lead``
        early, when the runner is ``precise``): polls the clock, holding the GIL,
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
