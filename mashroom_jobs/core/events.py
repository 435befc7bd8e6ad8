"""Past-tense facts about runs and jobs, and the one way to hear them: :class:`EventBus`.

As APScheduler 4's ``subscribe(callback, event_types)``: the runner publishes frozen
records (:class:`RunFinished`, :class:`StateChanged`, ...), and whoever wants them
subscribes to the types it wants.  The service's ``state`` and ``jobs`` traits, its
``on_failure`` callbacks, its metrics and the job store's writer are all thin
subscribers; so may a user be (``service.subscribe``).

Callbacks run on the thread that published (a pool worker, the timer, the caller's
thread for pause and resume), in the order they subscribed; they must be quick and
hand longer work to a thread of their own.  A callback that raises is logged and
never reaches the runner.  Publishing an event type nobody subscribed to costs one
dict look-up, and :meth:`EventBus.wants` lets a publisher skip building it at all.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any, NamedTuple, TypeVar

from .records import JobInvocation, JobState

__all__ = ["Event", "EventBus", "FireMissed", "FiresCoalesced", "RunFinished", "StateChanged",
           "Subscription"]

log = logging.getLogger("mashroom_jobs")


class RunFinished(NamedTuple):
    """A run ended and was recorded (or a fire was recorded without running here:
    ``record.outcome`` says which)."""

    job: str
    record: JobInvocation
    #: a retry of this run is scheduled: it is not the fire's last word yet
    retrying: bool
    #: the user stopped it (``job.stop()``, the Stop button): a failure nobody needs told of
    stopped_by_user: bool
    #: the job's owner in the service (its ``BackgroundJob``), or None
    source: object = None


class StateChanged(NamedTuple):
    """A watched job's visible state changed (published coalesced; see ``publishing``)."""

    job: str
    state: JobState
    source: object = None


class FireMissed(NamedTuple):
    """A fire of a job passed with no run: ``reason`` says why (no host ran it, ...)."""

    job: str
    scheduled_for: datetime
    reason: str
    source: object = None


class FiresCoalesced(NamedTuple):
    """A job's fires from ``first`` on passed while this process could not fire them (it
    was blocked or asleep), and the job catches up by a policy of its own (a durable job):
    nothing ran for them here."""

    job: str
    first: datetime
    source: object = None


Event = RunFinished | StateChanged | FireMissed | FiresCoalesced
E = TypeVar("E")


class Subscription:
    """What :meth:`EventBus.subscribe` returns: :meth:`unsubscribe` ends it."""

    __slots__ = ("_bus", "callback", "event_types")

    def __init__(self, bus: EventBus, callback: Callable[[Any], object],
                 event_types: tuple[type, ...]) -> None:
        self._bus = bus
        self.callback = callback
        self.event_types = event_types

    def unsubscribe(self) -> None:
        """Stop hearing events.  Harmless twice."""
        self._bus.unsubscribe(self)

    def __call__(self) -> None:
        self.unsubscribe()

    def __repr__(self) -> str:
        names = ", ".join(t.__name__ for t in self.event_types)
        callback = getattr(self.callback, "__qualname__", self.callback)
        return f"<Subscription {callback!r} to {names}>"


EVENT_TYPES: tuple[type, ...] = (RunFinished, StateChanged, FireMissed, FiresCoalesced)


class EventBus:
    """Subscribers by event type; see the module docstring."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._subscriptions: tuple[Subscription, ...] = ()
        # event type -> the callbacks, rebuilt on each (rare) subscribe: publishing reads it
        self._by_type: dict[type, tuple[Callable[[Any], object], ...]] = {}

    def subscribe(self, callback: Callable[[E], object],
                  event_types: type[E] | Iterable[type] | None = None) -> Subscription:
        """Call ``callback(event)`` for each event of ``event_types`` (a type or several;
        default: every type) published from now on.

        Raises
        ------
        TypeError
            When ``callback`` is not callable or a type is not an event type.
        """
        if not callable(callback):
            raise TypeError(f"callback must be callable, got {type(callback).__name__}")
        if event_types is None:
            types = EVENT_TYPES
        elif isinstance(event_types, type):
            types = (event_types,)
        else:
            types = tuple(event_types)
        unknown = [t for t in types if t not in EVENT_TYPES]
        if unknown or not types:
            names = ", ".join(t.__name__ for t in EVENT_TYPES)
            raise TypeError(f"event_types must be among {names}, got {unknown or types!r}")
        subscription = Subscription(self, callback, types)
        with self._lock:
            self._subscriptions = (*self._subscriptions, subscription)
            self._rebuild()
        return subscription

    def unsubscribe(self, subscription: Subscription) -> None:
        """End ``subscription`` (as ``subscription.unsubscribe()``).  Harmless twice."""
        with self._lock:
            self._subscriptions = tuple(s for s in self._subscriptions if s is not subscription)
            self._rebuild()

    def _rebuild(self) -> None:
        self._by_type = {
            event_type: tuple(s.callback for s in self._subscriptions
                              if event_type in s.event_types)
            for event_type in EVENT_TYPES
        }

    def wants(self, event_type: type) -> bool:
        """Whether anyone hears events of ``event_type`` (else don't build them)."""
        return bool(self._by_type.get(event_type))

    def publish(self, event: Event) -> None:
        """Call the subscribers of ``event``'s type, in order, on this thread."""
        for callback in self._by_type.get(type(event), ()):
            try:
                callback(event)
            except Exception:
                log.exception("a subscriber to %s raised: %r", type(event).__name__, callback)
