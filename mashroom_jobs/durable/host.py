"""The durable host of one service: definitions from the store become exclusive jobs here.

Every ``follow_interval`` seconds (1 s; on the service's timer, so an injected clock drives
it) the host asks the store whether any process committed anything at all (``PRAGMA
data_version``, answered from shared memory) and only then whether the control tables
moved; the work that follows (reading definitions, claiming, writing) runs on a pool
worker, never on the timer thread.  Every ``beat_every`` ticks it writes its heartbeat.

* **Reconcile.**  A definition not hosted yet, or of a new version, is scheduled here
  (a change of ``paused`` alone pauses or resumes in place); a definition gone is
  unscheduled; one whose target cannot be found (or read) is *parked*: listed with its
  error, kept in the store, tried again at the next change and at the next start.
* **Catch-up.**  At start, and when the wall clock moved much further than the
  monotonic one (a suspend, a jump), the fires each job missed since its last fire in the
  store (within its window) are claimed and handled by its policy
  (:func:`~.catchup.plan_catch_up`): exactly one host acts on each fire.
* **Commands.**  "run" is taken by exactly one of the hosts of the job; "stop" is obeyed
  by every host running the job.
"""

from __future__ import annotations

import functools
import importlib
import logging
import os
import socket
import threading
import uuid
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from ..core.clock import Clock
from ..core.errors import MashroomJobsError, StoreUnavailableError
from ..core.records import JobInvocation
from ..core.scheduler import TimerCall
from ..store.control import Command, StoreControl, Stored
from .catchup import fires_between, plan_catch_up
from .definitions import JobDefinition
from .watch import Claims

__all__ = ["MISSED_RECORDS", "STALE_AFTER", "DurableHost", "HostedJobs", "ParkedJob"]

log = logging.getLogger("mashroom_jobs.durable")

#: the most fires one catch-up records as missed, one record each (the newest); an older
#: rest is counted in the oldest record's message
MISSED_RECORDS = 20


@dataclass(frozen=True)
class ParkedJob:
    """A durable job this host cannot run now: its stored definition, and why."""

    name: str
    version: int
    error: str


@dataclass(frozen=True)
class HostedJobs:
    """What a :class:`DurableHost` asks of its service, as callables."""

    #: schedule a definition here as an exclusive durable job (replacing the one of its
    #: name); raises TargetUnavailableError (or another error) when it cannot
    host: Callable[[JobDefinition], object]
    #: pause (True) or resume (False) the hosted job in place
    set_paused: Callable[[str, bool], None]
    #: unschedule the hosted job
    unhost: Callable[[str], None]
    #: whether this host runs the job now
    is_hosted: Callable[[str], bool]
    #: start a run of the hosted job: (name, trigger, the fire it serves or None)
    run: Callable[[str, str, datetime | None], Future[JobInvocation]]
    #: stop the hosted job's runs here; how many were asked
    stop: Callable[[str], int]
    #: record a fire that no process ran: (name, fire time, why)
    record_missed: Callable[[str, datetime, str], None]


class DurableHost:
    """See the module docstring.

    Parameters
    ----------
    control : StoreControl
        The store's control tables.
    claims : Claims
        The store (its ``claim_many``).
    jobs : HostedJobs
        The service.
    clock : Clock
        The service's clock.
    call_later, dispatch : callable
        The service timer's ``call_later`` and its pool's ``dispatch``.
    kind, origin : str
        What this host is (``"kernel"``, ``"run"``, ``"server"``, ``"python"``) and its
        origin in the store.
    details : callable
        Extra fields for the heartbeat (the kernel or server id).
    """

    #: seconds between two looks at the store
    follow_interval: float = 1.0
    #: ticks between two heartbeats
    beat_every: int = 5
    #: ticks between two tries of the parked jobs (a module installed meanwhile)
    retry_every: int = 30

    def __init__(self, control: StoreControl, claims: Claims, jobs: HostedJobs, clock: Clock,
                 call_later: Callable[..., TimerCall], dispatch: Callable[..., object], *,
                 kind: str, origin: str,
                 details: Callable[[], dict[str, Any]] = dict) -> None:
        self._control = control
        self._claims = claims
        self._jobs = jobs
        self._clock = clock
        self._call_later = call_later
        self._dispatch = dispatch
        self.kind = kind
        self.origin = origin
        self._details = details
        self.id = uuid.uuid4().hex
        self.started = clock.now()
        self._lock = threading.RLock()  # one reconcile (or action) at a time
        self._hosted: dict[str, JobDefinition] = {}
        self._parked: dict[str, ParkedJob] = {}
        self._last_command = 0
        self._tick: TimerCall | None = None
        self._ticks = 0
        self._busy = False  # a follow-up is on a worker: the next tick does not add one
        self._closed = False
        self._last_wall = 0.0
        self._last_mono = 0.0
        #: ticks that found something to do (for the idle-cost measurement)
        self.followed = 0
        self._watchers: list[Callable[[], None]] = []

    # -- life ----------------------------------------------------------------------------

    def start(self) -> None:
        """Host the stored definitions now, catch up what they missed, start following."""
        with self._lock:
            self._last_command = self._safely(self._control.last_command, 0)
            self._control.changed()  # from now on, report changes
            self._reconcile()
            self._catch_up_all(until=self.started)  # what follows is the timer's
            self._beat()
        self._last_wall, self._last_mono = self._clock.now().timestamp(), self._clock.monotonic()
        self._arm()

    def close(self) -> None:
        """Stop following; remove this host's heartbeat."""
        with self._lock:
            self._closed = True
            if self._tick is not None:
                self._tick.cancel()
        self._safely(lambda: self._control.leave(self.id), None)

    def _arm(self) -> None:
        if self._closed:
            return
        try:
            self._tick = self._call_later(self.follow_interval, self._on_tick)
        except RuntimeError:  # the timer stopped: the service is shutting down
            pass

    def _on_tick(self) -> None:
        """On the timer thread: cheap; the work goes to a pool worker."""
        self._arm()
        if self._busy or self._closed:
            return
        self._busy = True
        try:
            self._dispatch(self._follow)
        except RuntimeError:  # the pool shut down
            self._busy = False

    def _follow(self) -> None:
        try:
            with self._lock:
                if self._closed:
                    return
                self._ticks += 1
                gap = self._gap()
                if self._safely(self._control.changed, False):
                    self.followed += 1
                    self._reconcile()
                    self._commands()
                    self._tell_watchers()
                elif self._parked and self._ticks % self.retry_every == 0:
                    self._reconcile()
                if gap:
                    self._catch_up_all()
                if self._ticks % self.beat_every == 0:
                    self._beat()
        except Exception:  # never expected; say so, and keep following
            log.exception("mashroom-jobs: the durable host failed to follow the store")
        finally:
            self._busy = False

    def _gap(self) -> bool:
        """Whether the wall clock moved much further than the monotonic one since the last
        tick (the machine slept, or the clock jumped forward)."""
        wall, mono = self._clock.now().timestamp(), self._clock.monotonic()
        gap = (wall - self._last_wall) - (mono - self._last_mono) > 2 * self.follow_interval
        self._last_wall, self._last_mono = wall, mono
        if gap:
            log.info("mashroom-jobs: the wall clock moved ahead of this process's time "
                     "(a suspend, or a clock change): catching up durable jobs")
        return gap

    @staticmethod
    def _safely(read: Callable[[], Any], default: Any) -> Any:
        try:
            return read()
        except StoreUnavailableError as exc:
            log.warning("mashroom-jobs: the durable host could not use the store now: %s", exc)
            return default

    # -- what is hosted ----------------------------------------------------------------------

    def watch(self, callback: Callable[[], None]) -> None:
        """Call ``callback()`` after each change of the store's control tables (on the
        worker that follows them)."""
        with self._lock:
            self._watchers.append(callback)

    def notify(self) -> None:
        """This process changed the control tables (its own changes are not seen as
        another's): tell the watchers now, on a pool worker."""
        try:
            self._dispatch(self._tell_watchers)
        except RuntimeError:  # shutting down
            pass

    def _tell_watchers(self) -> None:
        for callback in list(self._watchers):
            try:
                callback()
            except Exception:
                log.exception("mashroom-jobs: a watcher of the job store failed")

    def hosted(self) -> dict[str, JobDefinition]:
        with self._lock:
            return dict(self._hosted)

    def parked(self) -> dict[str, ParkedJob]:
        with self._lock:
            return dict(self._parked)

    def follow_now(self) -> None:
        """Look at the store now (this process changed it, or a test wants it)."""
        with self._lock:
            self._control.changed()
            self._reconcile()
            self._commands()

    def adopt(self, definition: JobDefinition) -> None:
        """This process stored ``definition``: host it now, not at the next tick (a change
        of ``paused`` alone pauses or resumes the hosted job in place)."""
        with self._lock:
            self._take(definition)

    def _reconcile(self) -> None:
        """Bring what is hosted here in line with the store, trying the parked jobs
        again too."""
        stored: list[Stored] = self._safely(self._control.definitions, None)
        if stored is None:
            return
        if self._parked:
            importlib.invalidate_caches()  # a module installed since is found
        names = {s.name for s in stored}
        for item in stored:
            have = self._hosted.get(item.name)
            if have is not None and have.version == item.version:
                continue
            try:
                definition = JobDefinition.from_stored(item)
            except (MashroomJobsError, ValueError, TypeError, KeyError) as exc:
                self._park(item.name, item.version, exc)
                continue
            self._take(definition)
        for name in [n for n in self._hosted if n not in names]:
            del self._hosted[name]
            self._jobs.unhost(name)
            log.info("mashroom-jobs: durable job %r was removed; no longer hosted here", name)
        for name in [n for n in self._parked if n not in names]:
            del self._parked[name]

    def _take(self, definition: JobDefinition) -> None:
        """Host ``definition`` here; a change of ``paused`` alone pauses or resumes the
        hosted job in place."""
        have = self._hosted.get(definition.name)
        if have is not None and have.same_but_paused(definition):
            self._jobs.set_paused(definition.name, definition.paused)
            self._hosted[definition.name] = definition
            return
        self._host(definition)

    def _host(self, definition: JobDefinition) -> None:
        try:
            self._jobs.host(definition)
        except Exception as exc:  # the target cannot be found, or the name is taken
            if definition.name in self._hosted:
                del self._hosted[definition.name]
                self._jobs.unhost(definition.name)
            self._park(definition.name, definition.version, exc)
            return
        self._hosted[definition.name] = definition
        if self._parked.pop(definition.name, None) is not None:
            log.warning("mashroom-jobs: durable job %r is hosted again (its target can be "
                        "found now)", definition.name)

    def _park(self, name: str, version: int, error: BaseException) -> None:
        text = f"{type(error).__name__}: {error}"
        old = self._parked.get(name)
        if old is None or old.error != text or old.version != version:
            log.warning("mashroom-jobs: durable job %r is parked on this host: %s (it stays "
                        "in the store and is tried again at the next change or start)",
                        name, text)
        self._parked[name] = ParkedJob(name, version, text)

    # -- commands ------------------------------------------------------------------------------

    def _commands(self) -> None:
        commands: list[Command] = self._safely(
            lambda: self._control.commands(self._last_command), [])
        for command in commands:
            self._last_command = max(self._last_command, command.id)
            if not self._jobs.is_hosted(command.job):
                continue
            if command.action == "stop":
                self._jobs.stop(command.job)
            elif command.action == "run" and self._safely(
                    functools.partial(self._control.take, command), False):
                self._jobs.run(command.job, "manual", None)

    # -- catch-up --------------------------------------------------------------------------------

    def coalesced(self, name: str) -> None:
        """The service's timer could not fire ``name`` on time (the process was blocked):
        catch it up by its policy, on a pool worker."""
        try:
            self._dispatch(self._catch_up_named, name)
        except RuntimeError:  # shutting down
            pass

    def _catch_up_named(self, name: str) -> None:
        with self._lock:
            definition = self._hosted.get(name)
            if definition is None or definition.paused or self._closed:
                return
            try:
                self._catch_up(definition, self._control.last_fire(name))
            except StoreUnavailableError as exc:
                log.warning("mashroom-jobs: cannot catch up durable job %r now: %s", name, exc)

    def _catch_up_all(self, until: datetime | None = None) -> None:
        due = [definition for definition in self._hosted.values() if not definition.paused]
        if not due:
            return
        try:  # (one query for every job, not one each)
            last_fires = self._control.last_fires([definition.name for definition in due])
        except StoreUnavailableError as exc:
            log.warning("mashroom-jobs: cannot catch up durable jobs now: %s", exc)
            return
        for definition in due:
            try:
                self._catch_up(definition, last_fires.get(definition.name), until)
            except StoreUnavailableError as exc:
                log.warning("mashroom-jobs: cannot catch up durable job %r now: %s",
                            definition.name, exc)

    def _catch_up(self, definition: JobDefinition, last_fire: datetime | None,
                  until: datetime | None = None) -> None:
        """Handle the fires ``definition`` missed since ``last_fire`` (its latest fire in
        the store, or None) up to ``until`` (now) by its policy."""
        name, policy = definition.name, definition.catchup
        now = self._clock.now() if until is None else until
        last = last_fire or definition.created or self.started
        start = max(last, now - timedelta(seconds=policy.window))
        missed, skipped = fires_between(definition.schedule(), start, now,
                                        MISSED_RECORDS + policy.limit)
        if not missed:
            return
        run, miss = plan_catch_up(missed, policy)
        fires = sorted(set(run) | set(miss))
        winners = self._claims.claim_many([(name, fire) for fire in fires])
        won = {fire for fire, winner in zip(fires, winners) if winner is None}
        for index, fire in enumerate(f for f in miss if f in won):
            reason = "no process ran this fire; caught up"
            if index == 0 and skipped:
                reason += f" (and {skipped} earlier fires since {start:%Y-%m-%d %H:%M %Z})"
            self._jobs.record_missed(name, fire, reason)
        self._run_in_turn(name, [fire for fire in run if fire in won])
        if won:
            log.info("mashroom-jobs: caught up durable job %r: %d fires missed, %d run",
                     name, len([f for f in miss if f in won]),
                     len([f for f in run if f in won]))

    def _run_in_turn(self, name: str, fires: list[datetime]) -> None:
        """Run the catch-up fires of a job one after the other."""
        if not fires or not self._jobs.is_hosted(name):
            return
        first, rest = fires[0], fires[1:]
        future = self._jobs.run(name, "catch-up", first)
        if rest:
            future.add_done_callback(lambda _: self._dispatch(self._run_in_turn, name, rest))

    # -- heartbeat --------------------------------------------------------------------------------

    def _beat(self) -> None:
        data = {
            "origin": self.origin, "jobs": sorted(self._hosted),
            "parked": {name: p.error for name, p in sorted(self._parked.items())},
            **self._details(),
        }
        self._safely(lambda: self._control.beat(self.id, self.kind, socket.gethostname(),
                                                os.getpid(), self.started, data), None)


#: how long after its last heartbeat a host counts as gone: three beats missed
STALE_AFTER = timedelta(seconds=3 * DurableHost.follow_interval * DurableHost.beat_every)
