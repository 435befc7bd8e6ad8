"""The timer and the runner of one service, wired together and stopped together.

:class:`JobEngine` makes a service's :class:`~.scheduler.Timer` and
:class:`~.runner.Runner` and decides how fires pass from one to the other: on
the real clock the timer hands each batch of fires to a pool worker ahead of its
time (see :attr:`Timer.handoff <.scheduler.Timer.handoff>`), early enough to
get the GIL twice (timer, then worker) when the kernel's main thread is busy, so
neither hand-off delays the fire itself.  An injected clock is moved by hand and
a test reads the outcome right after: there the timer decides each fire itself,
before ``advance()`` returns.  :meth:`JobEngine.stop` takes both down in order.
Apart from the service, which adds the traits, the jobs' table, the store and the
rest around them: this part needs no Jupyter.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager

from .clock import Clock, SystemClock
from .runner import Runner
from .runs import Claimer, Run, RunListener
from .runtime import JobRuntime
from .scheduler import Timer

__all__ = ["JobEngine"]


class JobEngine:
    """A service's timer and runner (see the module docstring); the arguments are the
    :class:`~.runner.Runner`'s, with ``precise`` the service's ``precise_wakeups``,
    ``remote_context`` the context remote runs get and ``claimer`` the shared store."""

    def __init__(self, clock: Clock, listener: RunListener, *, max_workers: int,
                 history_size: int, capture_output: bool, stop_grace: float, precise: bool,
                 get_context: Callable[[], object], remote_context: object,
                 claimer: Claimer | None) -> None:
        self.timer = Timer(clock, around_fires=self.firing, precise=precise)
        self.runner = runner = Runner(
            clock, self.timer, listener, max_workers=max_workers, history_size=history_size,
            capture_output=capture_output, stop_grace=stop_grace, get_context=get_context,
        )
        runner.remote_context = remote_context
        runner.precise = precise
        if isinstance(clock, SystemClock):
            self.timer.lead = 2 * sys.getswitchinterval() + 0.002
            self.timer.handoff = runner.handoff
        if claimer is not None:
            runner.claimer = claimer

    def firing(self) -> AbstractContextManager[None]:
        """Around each batch of fires: run bookkeeping waits until all have been handed
        to the pool (see DaemonThreadPool.hold_deferred)."""
        return self.runner.pool.hold_deferred()

    def threads(self) -> list[threading.Thread | None]:
        """The timer's thread (None until started), the pool's and the loop's."""
        return [self.timer.thread, *self.runner.threads()]

    def stop(self, runtimes: Sequence[JobRuntime], wait: bool, deadline: float,
             exclude: Run | None) -> list[JobRuntime]:
        """Stop the timer, deactivate ``runtimes``, with ``wait`` wait for the runs (but
        ``exclude``) until ``deadline`` (monotonic), then stop the pool and the loop.
        Returns the jobs still running then (their threads are abandoned)."""
        self.timer.stop(max(0.0, deadline - time.monotonic()))
        for runtime in runtimes:
            runtime.deactivate()
        if wait:
            self.runner.wait_idle(max(0.0, deadline - time.monotonic()), exclude=exclude)
        left = self.runner.running(exclude=exclude)
        self.runner.shutdown(wait, max(0.0, deadline - time.monotonic()))
        return left
