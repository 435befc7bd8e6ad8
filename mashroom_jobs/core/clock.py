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

    def __repr__(self) -> str:
        return "SystemClock()"
