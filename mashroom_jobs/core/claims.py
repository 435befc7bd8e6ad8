"""Claiming the fires of exclusive jobs: which process runs each one.

An ``exclusive`` job's scheduled fire runs in one process of those sharing a
store (or a cluster): before it starts, the runner claims it through its
:class:`~.runs.Claimer`.  A fire won starts here; a fire lost is recorded at
once as run ``elsewhere``, by the winner; when the claimer cannot tell in time,
the fire runs anyway, its output saying so (better a duplicate than a lost run).

The store's fires are claimed in bulk (:class:`FireClaims`: the fires queued by
the time a pool worker gets to them, in one transaction); a cluster's one at a
time.  Kept apart from :mod:`.runner` because only exclusive fires pass here.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

from .errors import StoreUnavailableError
from .records import JobInvocation, error_text
from .runs import Run

if TYPE_CHECKING:
    from .runner import Runner

__all__ = ["FireClaims", "unclaimed_note"]


class FireClaims:
    """The exclusive fires of a runner waiting to be claimed, and their claiming."""

    def __init__(self, runner: Runner) -> None:
        self.runner = runner
        # exclusive fires waiting to be claimed, all in one call (see claim_queued)
        self._lock = threading.Lock()
        self._queued: list[Run] = []
        self._dispatched = False

    def queue(self, run: Run) -> None:
        """Queue an exclusive fire for claiming; a pool worker claims all queued at once.

        When 1,000 exclusive jobs are due together, one worker claims the fires queued
        by then in one transaction (then the next ones), instead of 1,000 commits
        queueing up on the store, one per worker.
        """
        with self._lock:
            self._queued.append(run)
            if self._dispatched:
                return
            self._dispatched = True
        runner = self.runner
        try:
            runner.pool.dispatch(FireClaims.claim_queued, self)
        except Exception as exc:  # the pool refused (shut down): every queued run ends here
            with self._lock:
                runs, self._queued = self._queued, []
                self._dispatched = False
            for queued in runs:
                runner.finish(queued, runner.failed(queued, f"could not start: {error_text(exc)}"))

    def claim_queued(self) -> None:
        """On a pool worker: claim the queued fires; start the won, record the lost."""
        with self._lock:
            runs, self._queued = self._queued, []
            self._dispatched = False  # fires queued from now on: another worker
        if not runs:
            return
        runner = self.runner
        claimer = runner.claimer
        assert claimer is not None
        note = ""
        fires = []
        for run in runs:
            assert run.scheduled_for is not None  # only scheduled fires are claimed
            fires.append((run.runtime.spec.name, run.scheduled_for))
        try:
            winners = claimer.claim_many(fires)
        except StoreUnavailableError as exc:  # better a duplicate than a lost run
            note = unclaimed_note("store", exc)
            winners = [None] * len(runs)
        for run, winner in zip(runs, winners):
            run.note = note
            self.settle(run, winner)

    def claim_then_start(self, run: Run) -> None:
        """On a pool worker: claim one fire through a cluster; the loser records who won."""
        runner = self.runner
        spec = run.runtime.spec
        claimer = runner.claimer_of(spec)
        assert claimer is not None and run.scheduled_for is not None
        try:
            winner = claimer.claim(spec.name, run.scheduled_for)
        except StoreUnavailableError as exc:  # better a duplicate than a lost run
            run.note = unclaimed_note("cluster", exc)
            winner = None
        self.settle(run, winner)

    def settle(self, run: Run, winner: str | None) -> None:
        """A claimed fire: start it here when ``winner`` is None (won, or not claimed),
        else record that ``winner`` ran it."""
        runner = self.runner
        if winner is not None:
            runner.finish(run, self.elsewhere(run, winner))
            return
        try:
            runner.start(run)
        except Exception as exc:
            runner.finish(run, runner.failed(run, f"could not start: {error_text(exc)}"))

    def elsewhere(self, run: Run, winner: str) -> JobInvocation:
        """The record of a fire another process claimed (and ran)."""
        spec = run.runtime.spec
        return JobInvocation(
            self.runner.clock.now().astimezone(spec.zone), run.scheduled_for, run.trigger, 0.0,
            True, attempt=run.attempt, origin=winner, elsewhere=True, job=spec.name,
        )


def unclaimed_note(claimer: str, error: BaseException) -> str:
    """What the output of a fire run without a claim starts with (the policy: better a
    duplicate than a lost run)."""
    return f"[mashroom-jobs] {claimer} unavailable, ran without claim: {error}\n"
