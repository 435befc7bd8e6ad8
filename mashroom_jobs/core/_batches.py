"""Fires due together, handed over by the timer and fired in one pass: :class:`Batch`.

Every fire takes this path, whatever the clock.  The timer hands each batch of
due fires to the runner (:attr:`.scheduler.Timer.handoff`): on the real clock a
little before their fire time (``Clock.handoff_lead``), so that the hand-off is
off the fire's critical path; on an injected clock at the time itself.  A pool
worker takes the batch, waits for its time if it is early, and fires it
(:meth:`Batch.fire`): it applies each fire's rules and starts each run, plain
callbacks on its own thread, one after the other: no thread hand-off, no GIL
hand-off per run.

A callback that blocks must not hold up the rest, so a *standby* helper waits
beside the batch: when the batch makes no progress for :data:`STALL` seconds (a
callback blocks, or holds the GIL), the standby joins it, taking the next fires,
and a new standby is dispatched.  Plain callbacks run on the firing thread only
while a standby is in place: without a free worker for it, they are dispatched
to the pool instead.

A batch due now (an injected clock, or a late wake-up) is decided before the
timer goes on: the handing thread waits until each fire was taken (its run
started or queued), so that a test reads the outcome right after
``ManualClock.advance()``.

While a batch is being decided, the garbage collector is paused
(:func:`pause_collector`): every run's objects live until the batch's records are
written, so a collection in the start window would walk them all for nothing (a
full one took 16 ms with 10,000 jobs, every 2-3 s).  It runs again as soon as the
last fire is taken, on whatever was allocated meanwhile.
"""

from __future__ import annotations

import gc
import itertools
import logging
import threading
from collections.abc import Callable
from contextlib import AbstractContextManager
from datetime import datetime
from typing import Any

from .runtime import JobRuntime, Run
from .scheduler import Due, TimerEntry

__all__ = ["STALL", "Batch"]

log = logging.getLogger("mashroom_jobs")

#: seconds without progress after which the standby helper joins a batch
STALL = 0.002

#: take(runtime, fire time, coalesced): the fire's run, or None (its rules say no)
Take = Callable[[Any, datetime, bool], "Run | None"]
#: go(run, here): start a run; ``here``: a plain callback may run on this thread
Go = Callable[[Run, bool], None]
#: dispatch(fn, *args): run on a pool worker; False when it waits behind busy workers
Dispatch = Callable[..., bool]
#: hold(): entered around firing (the pool's run bookkeeping waits meanwhile)
Hold = Callable[[], AbstractContextManager[object]]


_gc_lock = threading.Lock()
_gc_pauses = 0  # batches being decided now
_gc_was_enabled = False


def pause_collector() -> None:
    """Pause the garbage collector while a batch is decided (see the module docstring);
    a collector the program had disabled stays disabled."""
    global _gc_pauses, _gc_was_enabled
    with _gc_lock:
        if not _gc_pauses:
            _gc_was_enabled = gc.isenabled()
            gc.disable()
        _gc_pauses += 1


def resume_collector() -> None:
    global _gc_pauses
    with _gc_lock:
        _gc_pauses -= 1
        if not _gc_pauses and _gc_was_enabled:
            gc.enable()


class Batch:
    """Fires handed over together: its groups' entries in one list, taken in order by
    the threads that fire them (the first worker, then standbys that join)."""

    __slots__ = ("_decided", "_fired", "_next", "_owners", "bounds", "decided", "done",
                 "entries",
                 "on_done", "progress", "start", "total")

    def __init__(self, start: float, due: list[Due], on_done: Callable[[], None]) -> None:
        #: the monotonic time the fires are due
        self.start = start
        self.entries: list[TimerEntry] = []
        # per group: (index after its last entry, fire time, coalesced)
        self.bounds: list[tuple[int, datetime, bool]] = []
        for entries, scheduled, _following, coalesced in due:
            self.entries.extend(entries)
            self.bounds.append((len(self.entries), scheduled, coalesced))
        self.total = len(self.entries)
        self._next = itertools.count()  # next(): atomic under the GIL
        self._owners = itertools.count()  # the first thread to fire it owns it
        self._decided = itertools.count(1)
        self._fired = itertools.count(1)
        #: the index last taken (read by the standby to see progress)
        self.progress = -1
        #: set once every fire was taken (its run started or queued)
        self.decided = threading.Event()
        #: set once every fire's start returned
        self.done = threading.Event()
        #: called once, when the batch is done
        self.on_done = on_done

    def warm(self) -> None:
        """Touch the due jobs (after a second asleep the caches are cold)."""
        for entry in self.entries[:4096]:
            target = entry.target
            if isinstance(target, JobRuntime):
                target.warm()

    def fire(self, take: Take, go: Go, dispatch: Dispatch, hold: Hold,
             here: bool) -> None:
        """Fire on this thread: with ``here``, a standby is dispatched (when a worker is
        free for it) and plain callbacks run on this thread; else each run goes to the
        pool.  ``hold()`` is entered around the firing (run records wait)."""
        if next(self._owners):
            return  # fired already by another thread (the pool was busy: see the runner)
        if here and self.total > 1:  # (a lone fire holds up no other: no standby)
            here = _try(dispatch, self._standby, take, go, dispatch, hold)
        pause_collector()  # resumed once every fire is taken (see _join)
        try:
            self._join(take, go, hold, here)
        except BaseException:
            if not self.decided.is_set():  # a failure left fires untaken: never stay paused
                self.decided.set()
                resume_collector()
            raise

    def _join(self, take: Take, go: Go, hold: Hold, here: bool) -> None:
        """Take the batch's fires one by one until none is left."""
        entries, bounds, total = self.entries, self.bounds, self.total
        group = 0
        with hold():  # records wait until every run started
            for index in self._next:
                if index >= total:
                    return
                self.progress = index
                while bounds[group][0] <= index:
                    group += 1
                _, scheduled, coalesced = bounds[group]
                entry = entries[index]
                run = None
                try:
                    if entry.active:
                        run = take(entry.target, scheduled, coalesced)
                except Exception:  # one target must not stop the batch
                    log.exception("error while firing %r", entry.target)
                if next(self._decided) == total:
                    self.decided.set()
                    resume_collector()
                try:
                    if run is not None:
                        go(run, here)
                except Exception:
                    log.exception("error while starting %r", run)
                finally:
                    if next(self._fired) == total:
                        self.done.set()
                        self.on_done()

    def _standby(self, take: Take, go: Go, dispatch: Dispatch,
                 hold: Hold) -> None:
        """Wait beside the batch; join it (and put a new standby in place) when it
        stalls.  Returns when the batch is done."""
        seen = self.progress
        done, last = self.done, self.total - 1
        while not done.wait(STALL):
            now = self.progress
            if now >= last:
                return  # every fire was taken: nothing left to help with
            if now != seen:
                seen = now
                continue
            # no progress for STALL seconds: a callback blocks (or holds the GIL)
            here = _try(dispatch, self._standby, take, go, dispatch, hold)
            self._join(take, go, hold, here)
            return


def _try(dispatch: Dispatch, *args: object) -> bool:
    """``dispatch(*args)``: False when it waits, or the pool shut down."""
    try:
        return dispatch(*args)
    except RuntimeError:  # shut down meanwhile: this thread fires alone
        return False
