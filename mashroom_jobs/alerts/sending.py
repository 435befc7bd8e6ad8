""":class:`JobAlerts`: a service's alerts, from its run events to the alert URLs.

A subscriber to :class:`~mashroom_jobs.core.events.RunFinished` (a run that failed and
will not be retried, a fire recorded as missed, a success after either) that only queues
the event: a thread of its own (``mashroom-jobs-alerts``) decides with the
:class:`~.policy.AlertPolicy`, claims each alert in the job store and sends it, so that a
slow or unreachable alert URL never delays a run or a host.  The same thread looks, every
``poll_interval`` seconds, at the durable jobs this host parked (and unparked), at the
summaries due, and every ``watch_interval`` seconds for fires no live host hosted
(:class:`~mashroom_jobs.durable.watch.UnclaimedFires`).

**Once across hosts.** Before sending, the thread claims the alert in the store as a fire
is claimed: the key ``alert:<kind>:<job>`` at the start of the current
``summary_interval`` window.  Of the hosts that would tell the same thing about a job in
one window, exactly one does.

**Failures of the channel** are logged (the URL in apprise's privacy form, with the
reason) and change nothing else: the alert is not retried, the run and the host go on.
"""

from __future__ import annotations

import fnmatch
import logging
import queue
import threading
from collections.abc import Callable, Collection, Mapping, Sequence
from datetime import datetime, timezone
from typing import Any, Protocol

from ..core.clock import Clock
from ..core.errors import StoreUnavailableError
from ..core.events import RunFinished
from ..core.records import Outcome
from .channels import AppriseChannel, Channel, private_url
from .policy import Alert, AlertPolicy

__all__ = ["JobAlerts"]

log = logging.getLogger("mashroom_jobs.alerts")

_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_STOP = object()


class Claims(Protocol):
    def claim_many(self, fires: Sequence[tuple[str, datetime]]) -> list[str | None]: ...


class Watch(Protocol):
    def check(self, now: datetime) -> list[tuple[Any, datetime]]: ...


class JobAlerts:
    """See the module docstring.

    Parameters
    ----------
    urls : sequence of str
        Apprise URLs every job's alerts go to.
    per_job : mapping of str to sequence of str
        More URLs by job name pattern (``fnmatch``: ``"nightly-*"``); a job's alerts go
        to ``urls`` and to those of every pattern its name matches.
    summary_interval : float
        Seconds between two messages about one job's problems (see the policy).
    clock : Clock
        The service's clock.
    where : str
        The process's origin, said in each alert.
    claims : Claims, optional
        The job store (its ``claim_many``): alerts are claimed there, once across hosts.
    channel : Channel, optional
        How an alert is sent (default: apprise).
    parked : callable, optional
        ``parked()``: this host's parked durable jobs, ``{name: error}``.
    hosted : callable, optional
        ``hosted()``: the names of the durable jobs this host hosts.  A job that leaves
        the parked set and is not hosted was removed: its episode is forgotten, with no
        recovery alert.  Without it, every job that leaves the parked set recovered.
    watch : optional
        The unclaimed-fires watch; its fires are recorded with ``record_missed``.
    record_missed : callable, optional
        ``record_missed(job, fire, reason)``: keep the record of a fire no host ran.
    poll_interval, watch_interval : float
        Seconds between two looks at the parked jobs and summaries; at unclaimed fires.
    """

    def __init__(self, *, urls: Sequence[str], per_job: Mapping[str, Sequence[str]],
                 summary_interval: float, clock: Clock, where: str,
                 claims: Claims | None = None, channel: Channel | None = None,
                 parked: Callable[[], Mapping[str, str]] | None = None,
                 hosted: Callable[[], Collection[str]] | None = None,
                 watch: Watch | None = None,
                 record_missed: Callable[[str, datetime, str], None] | None = None,
                 poll_interval: float = 5.0, watch_interval: float = 30.0) -> None:
        self.urls = list(urls)
        self.per_job = {pattern: list(u) for pattern, u in per_job.items()}
        self.policy = AlertPolicy(summary_interval, where)
        self._clock = clock
        self._claims = claims
        self._channel: Channel = channel if channel is not None else AppriseChannel()
        self._parked_source = parked
        self._hosted_source = hosted
        self._watch = watch
        self._record_missed = record_missed
        self.poll_interval = poll_interval
        self.watch_interval = watch_interval
        self._queue: queue.Queue[Any] = queue.Queue()
        self._parked: dict[str, str] = {}
        self._thread: threading.Thread | None = None
        self._last_watch = clock.monotonic()
        self._last_poll = clock.monotonic()
        #: alerts sent (each to each of its URLs that took it), for tests and figures
        self.sent: list[Alert] = []
        #: (alert, private URL, reason) of each send that failed
        self.failures: list[tuple[Alert, str, str]] = []

    # -- life ---------------------------------------------------------------------------

    def start(self) -> None:
        """Start the alerts' thread."""
        self._thread = threading.Thread(target=self._loop, name="mashroom-jobs-alerts",
                                        daemon=True)
        self._thread.start()

    def close(self, timeout: float = 5.0) -> None:
        """Send what is queued (within ``timeout``), then stop the thread."""
        self._queue.put(_STOP)
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout)

    def threads(self) -> tuple[threading.Thread, ...]:
        return (self._thread,) if self._thread is not None else ()

    def wait_idle(self, timeout: float | None = None) -> bool:
        """Wait until every event queued so far was handled (sent or dropped)."""
        done = threading.Event()
        self._queue.put(done)
        return done.wait(timeout)

    def urls_for(self, job: str) -> list[str]:
        """Where ``job``'s alerts go (each URL once)."""
        found = list(self.urls)
        for pattern, urls in self.per_job.items():
            if fnmatch.fnmatchcase(job, pattern):
                found += urls
        return list(dict.fromkeys(found))

    # -- the bus's callback (any thread: only queues) ---------------------------------------

    def on_run(self, event: RunFinished) -> None:
        record = event.record
        outcome = record.outcome
        if outcome.failed and (event.retrying or event.stopped_by_user):
            return
        if outcome.failed or outcome is Outcome.OK or outcome is Outcome.MISSED:
            self._queue.put(event)

    # -- the thread ---------------------------------------------------------------------------

    def _loop(self) -> None:
        while True:
            try:
                item = self._queue.get(timeout=self.poll_interval)
            except queue.Empty:
                item = None
            if item is _STOP:
                return
            try:
                if isinstance(item, threading.Event):
                    item.set()
                    continue
                if item is not None:
                    self.handle(item)
                self.tick()
            except Exception:  # never expected: say so, keep the thread
                log.exception("mashroom-jobs: the alerts thread failed")

    def handle(self, event: RunFinished) -> None:
        """Decide and send what ``event`` calls for (the thread's; tests call it)."""
        job, record = event.job, event.record
        if not self.urls_for(job):
            return
        moment = record.scheduled_for or record.timestamp
        if record.outcome is Outcome.OK:
            self._send(self.policy.ok(job, record.timestamp))
        elif record.outcome is Outcome.MISSED:
            self._send(self.policy.problem(job, "missed", moment,
                                           record.error_message or "no process ran it"))
        else:
            where = f" (ran in {record.origin})" if record.origin else ""
            text = f"{record.error_message or record.outcome.value}{where}"
            self._send(self.policy.problem(job, "failed", record.timestamp, text))

    def tick(self) -> None:
        """The periodic looks: parked jobs and summaries each ``poll_interval``, unclaimed
        fires each ``watch_interval`` (the thread's; tests call it)."""
        mono = self._clock.monotonic()
        if mono - self._last_poll < self.poll_interval * 0.9:
            return
        self._last_poll = mono
        now = self._clock.now()
        self._look_at_parked(now)
        if self._watch is not None and mono - self._last_watch >= self.watch_interval:
            self._last_watch = mono
            for definition, fire in self._watch.check(now):
                reason = ("no live host hosted the job when this fire passed (parked or not "
                          "hosted in every host)")
                if self._record_missed is not None:
                    self._record_missed(definition.name, fire, reason)
                else:  # (recorded, it comes back as a RunFinished; else tell it here)
                    if self.urls_for(definition.name):
                        self._send(self.policy.problem(definition.name, "missed", fire,
                                                       reason))
        for alert in self.policy.due(now):
            self._send(alert)

    def _look_at_parked(self, now: datetime) -> None:
        if self._parked_source is None:
            return
        try:
            parked = dict(self._parked_source())
        except Exception:
            log.exception("mashroom-jobs: could not read the parked durable jobs")
            return
        left = [name for name in self._parked if name not in parked]
        hosted: Collection[str] | None = None
        if left and self._hosted_source is not None:
            try:
                hosted = set(self._hosted_source())
            except Exception:
                log.exception("mashroom-jobs: could not read the hosted durable jobs")
                return
        for name, error in parked.items():
            if name not in self._parked and self.urls_for(name):
                self._send(self.policy.problem(name, "parked", now, error))
        for name in left:
            if hosted is not None and name not in hosted:  # removed: nothing recovered
                self.policy.forget(name)
            elif self.urls_for(name):
                self._send(self.policy.ok(name, now, "is hosted again"))
        self._parked = parked

    # -- sending ------------------------------------------------------------------------------

    def _claimed(self, alert: Alert) -> bool:
        """Whether this process may send ``alert`` (it won the alert's claim)."""
        if self._claims is None:
            return True
        interval = max(1.0, self.policy.summary_interval)
        seconds = (alert.moment - _EPOCH).total_seconds()
        window = datetime.fromtimestamp(seconds - seconds % interval, timezone.utc)
        try:
            winner = self._claims.claim_many([(f"alert:{alert.kind}:{alert.job}", window)])[0]
        except StoreUnavailableError as exc:  # better twice than never
            log.warning("mashroom-jobs: could not claim the alert %r in the store (%s): "
                        "sending it anyway", alert.title, exc)
            return True
        if winner is not None:
            log.info("mashroom-jobs: alert %r was sent by %s", alert.title, winner)
        return winner is None

    def _send(self, alert: Alert | None) -> None:
        if alert is None or not self._claimed(alert):
            return
        went = False
        for url in self.urls_for(alert.job):
            try:
                why = self._channel.send(url, alert.title, alert.body)
            except Exception as exc:  # a channel must never break the thread
                why = f"{type(exc).__name__}: {exc}"
            if why is None:
                went = True
                continue
            shown = private_url(url)
            self.failures.append((alert, shown, why))
            log.warning("mashroom-jobs: the alert %r could not be sent to %s: %s",
                        alert.title, shown, why)
        if went:
            self.sent.append(alert)
