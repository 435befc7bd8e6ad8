"""Claiming the fires of exclusive jobs: which process runs each one.

An ``exclusive`` job's scheduled fire runs in one process of those sharing a store
(or a cluster): before it starts, it is claimed through a :class:`Claimer`.  A
fire won starts here; a fire lost is recorded at once as run elsewhere, by the
winner; when the claimer cannot tell in time, the fire runs anyway, its output
saying so (better a duplicate than a lost run).

The store's fires are claimed in bulk by a :class:`ClaimQueue`: the fires queued by
the time a worker gets to them, in one transaction.  A cluster's are claimed one at
a time (:func:`claim_one`).  Neither knows what a run is: they take keys and hand
back winners.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Generic, Protocol, TypeVar

from .errors import StoreUnavailableError

__all__ = ["ClaimQueue", "Claimer", "claim_one", "unclaimed_note"]

T = TypeVar("T")
#: a fire: (job name, fire time)
Fire = tuple[str, datetime]


class Claimer(Protocol):
    """Decides which process runs an exclusive job's fire (the shared store, a cluster)."""

    def claim(self, job: str, scheduled_for: datetime) -> str | None:
        """None when this process won the fire; else who did.  Raises
        :class:`StoreUnavailableError` when it cannot tell in a bounded time."""

    def claim_many(self, fires: Sequence[Fire]) -> list[str | None]:
        """:meth:`claim` for several ``(job, scheduled_for)`` fires at once (one answer
        each, in order); raises :class:`StoreUnavailableError` for all of them."""


def unclaimed_note(claimer: str, error: BaseException) -> str:
    """What the output of a fire run without a claim starts with (the policy: better a
    duplicate than a lost run)."""
    return f"[mashroom-jobs] {claimer} unavailable, ran without claim: {error}\n"


def claim_one(claimer: Claimer, fire: Fire, what: str) -> tuple[str | None, str]:
    """Claim one fire: (the winner or None, the note for the run's output)."""
    try:
        return claimer.claim(*fire), ""
    except StoreUnavailableError as exc:  # better a duplicate than a lost run
        return None, unclaimed_note(what, exc)


class ClaimQueue(Generic[T]):
    """Fires waiting to be claimed together, and their claiming on a worker.

    When 1,000 exclusive jobs are due together, one worker claims the fires queued by
    then in one transaction (then the next ones), instead of 1,000 commits queueing
    up on the store, one per worker.

    Parameters
    ----------
    claim_many : callable
        The claimer's ``claim_many``.
    dispatch : callable
        Runs ``fn(*args)`` on a worker; raises ``RuntimeError`` once shut down.
    settle : callable
        ``settle(item, winner, note)``: a claimed fire (``winner`` None: won here).
    refuse : callable
        ``refuse(item, error)``: a fire that could not be claimed because ``dispatch``
        refused.
    """

    def __init__(self, claim_many: Callable[[Sequence[Fire]], list[str | None]],
                 dispatch: Callable[..., object], settle: Callable[[T, str | None, str], None],
                 refuse: Callable[[T, BaseException], None]) -> None:
        self._claim_many = claim_many
        self._dispatch = dispatch
        self._settle = settle
        self._refuse = refuse
        self._lock = threading.Lock()
        self._queued: list[tuple[T, Fire]] = []
        self._dispatched = False

    def queue(self, item: T, fire: Fire) -> None:
        """Queue a fire for claiming; a worker claims all queued by then at once."""
        with self._lock:
            self._queued.append((item, fire))
            if self._dispatched:
                return
            self._dispatched = True
        try:
            self._dispatch(self.claim_queued)
        except Exception as exc:  # the pool refused (shut down): every queued fire ends here
            with self._lock:
                queued, self._queued = self._queued, []
                self._dispatched = False
            for item, _ in queued:
                self._refuse(item, exc)

    def claim_queued(self) -> None:
        """On a worker: claim the queued fires; settle each."""
        with self._lock:
            queued, self._queued = self._queued, []
            self._dispatched = False  # fires queued from now on: another worker
        if not queued:
            return
        note = ""
        try:
            winners = self._claim_many([fire for _, fire in queued])
        except StoreUnavailableError as exc:  # better a duplicate than a lost run
            note = unclaimed_note("store", exc)
            winners = [None] * len(queued)
        for (item, _), winner in zip(queued, winners):
            self._settle(item, winner, note)
