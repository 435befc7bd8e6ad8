"""Fires the timer hands over ahead of their time, fired from the runner's pool.

On the real clock the timer gives each batch of due fires to the runner a little
before their fire time (:attr:`~.scheduler.Timer.handoff`, :meth:`.Runner.handoff`).
A pool worker takes the batch (:func:`fire_batch`): it warms up, waits for the
fire time, then recruits helpers (:func:`join_batch`) so that a callback that
blocks does not hold up the others, and each worker starts the plain runs it
takes on its own thread.  Kept apart from :mod:`.runner` because it is only the
hand-off: how a fire then becomes a run is the runner's business
(:meth:`.Runner.go`).
"""

from __future__ import annotations

import itertools
import logging
from datetime import datetime
from typing import TYPE_CHECKING

from .runs import Run
from .runtime import JobRuntime
from .scheduler import Due, TimerEntry

if TYPE_CHECKING:
    from .runner import Runner

__all__ = ["Batch", "fire_batch", "join_batch"]

log = logging.getLogger("mashroom_jobs")


class Batch:
    """Fires handed over by the timer: its groups' entries in one list, claimed in order
    by the workers that fire them."""

    __slots__ = ("bounds", "claims", "entries", "fired", "start")

    def __init__(self, start: float, due: list[Due]) -> None:
        self.start = start
        self.entries: list[TimerEntry] = []
        # per group: (index after its last entry, fire time, next fire time, coalesced)
        self.bounds: list[tuple[int, datetime, datetime | None, bool]] = []
        for entries, scheduled, following, coalesced in due:
            self.entries.extend(entries)
            self.bounds.append((len(self.entries), scheduled, following, coalesced))
        self.claims = itertools.count()  # next(): atomic under the GIL
        self.fired = itertools.count()


def fire_batch(runner: Runner, batch: Batch) -> None:
    """The batch's first worker: warm up, wait for the fire time, then fire, with
    helpers joining so that a callback that blocks does not hold up the others."""
    for entry in batch.entries[:4096]:  # after a second asleep the caches are cold
        warm = getattr(entry.target, "warm", None)
        if warm is not None:
            warm()
    clock = runner.clock
    precise = getattr(clock, "wait_precise", None) if runner.precise else None
    condition = runner.batch_wait
    with condition:
        while clock.monotonic() < batch.start:
            if precise is not None:
                precise(condition, batch.start)
            else:
                clock.wait(condition, batch.start)
    helpers = min(runner.max_workers, len(batch.entries)) - 1
    try:
        for _ in range(helpers):
            runner.pool.dispatch(join_batch, runner, batch)
    except RuntimeError:  # shut down meanwhile: this worker fires alone
        pass
    join_batch(runner, batch)


def join_batch(runner: Runner, batch: Batch) -> None:
    """Take the batch's fires one by one, starting plain runs on this thread."""
    entries, bounds, total = batch.entries, batch.bounds, len(batch.entries)
    group = 0
    with runner.pool.hold_deferred():  # records wait until the whole batch has started
        for index in batch.claims:
            if index >= total:
                return
            while bounds[group][0] <= index:
                group += 1
            _, scheduled, following, coalesced = bounds[group]
            entry = entries[index]
            try:
                if not entry.active:
                    pass
                elif isinstance(entry.target, JobRuntime):
                    if entry.target.take_fire(coalesced):
                        runner.go(Run(entry.target, "schedule", scheduled, 1, None), here=True)
                else:
                    entry.target.fire(scheduled, following, coalesced)
            except Exception:  # one target must not stop the batch
                log.exception("error while firing %r", entry.target)
            finally:
                if next(batch.fired) == total - 1:
                    runner.batch_done()
