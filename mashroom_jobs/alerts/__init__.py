"""Alerts: failures, fires that did not run, parked durable jobs, and their recovery,
sent through apprise URLs (an optional extra: ``pip install 'mashroom-jobs[alerts]'``).

Configured per service (``c.BackgroundJobService.alert_urls``) and per job name
(``c.BackgroundJobService.job_alert_urls = {"nightly-*": [...]}``): in config, not in
the job store, because an alert URL holds secrets (a mail password, a webhook token)
that everyone who can read the store would see.

:class:`~.policy.AlertPolicy` decides (one alert, then summaries, then a recovery),
:class:`~.sending.JobAlerts` subscribes, claims and sends, :mod:`.channels` is apprise
behind one method.  :func:`start_alerts` wires them for a service.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any

from ..core.clock import Clock
from ..core.events import RunFinished
from ..core.records import JobInvocation, Outcome
from .channels import AppriseChannel, Channel, check_alert_urls, private_url
from .policy import Alert, AlertPolicy
from .sending import JobAlerts

__all__ = ["Alert", "AlertPolicy", "AppriseChannel", "Channel", "JobAlerts",
           "check_alert_urls", "private_url", "start_alerts"]


def start_alerts(*, urls: Sequence[str], per_job: Mapping[str, Sequence[str]],
                 summary_interval: float, clock: Clock, where: str,
                 subscribe: Callable[..., Any], store: Any = None,
                 durable: Callable[[], Any] = lambda: None,
                 channel: Channel | None = None) -> JobAlerts | None:
    """A service's alerts, started and subscribed; None when no URL is configured.

    ``store`` (a :class:`~mashroom_jobs.store.SQLiteStore`) claims the alerts and keeps
    the fires no host ran; ``durable()`` (the service's
    :class:`~mashroom_jobs.durable.facade.DurableJobs`, asked when needed: the alerts
    subscribe before the host's first catch-up) says which jobs this host parked (and
    hosts: a parked job removed from the store is no recovery) and lets
    the alerts look for fires no live host hosted.
    """
    if not urls and not any(per_job.values()):
        return None

    def parked() -> dict[str, str]:
        facade = durable()
        host = facade.host if facade is not None else None
        return {name: p.error for name, p in host.parked().items()} if host else {}

    def hosted() -> set[str]:
        facade = durable()
        host = facade.host if facade is not None else None
        return set(host.hosted()) if host else set()

    watch = None
    record_missed = None
    if store is not None:
        watch = _LazyWatch(store, clock, durable)

        def record_missed(job: str, fire: datetime, reason: str) -> None:
            record = JobInvocation(
                timestamp=clock.now().astimezone(fire.tzinfo), scheduled_for=fire,
                trigger="schedule", execution_time_ms=0.0, outcome=Outcome.MISSED,
                error_message=reason, job=job)
            store.record(job, record)
            # no host hosts it: nobody else publishes this record
            alerts.on_run(RunFinished(job, record, False, False, None))

    alerts = JobAlerts(urls=urls, per_job=per_job, summary_interval=summary_interval,
                       clock=clock, where=where, claims=store, channel=channel,
                       parked=parked, hosted=hosted, watch=watch, record_missed=record_missed)
    subscribe(alerts.on_run, RunFinished)
    alerts.start()
    return alerts


class _LazyWatch:
    """The unclaimed-fires watch, made on first use (the service's durable jobs exist
    by then)."""

    def __init__(self, store: Any, clock: Clock, durable: Callable[[], Any]) -> None:
        self._store = store
        self._clock = clock
        self._durable = durable
        self._started = clock.now()
        self._watch: Any = None

    def check(self, now: datetime) -> list[tuple[Any, datetime]]:
        if self._watch is None:
            facade = self._durable()
            if facade is None:
                return []
            from ..durable.host import STALE_AFTER
            from ..durable.watch import UnclaimedFires

            self._watch = UnclaimedFires(facade.control, self._store, self._started,
                                         lambda row, at: at - row.seen <= STALE_AFTER)
        found: list[tuple[Any, datetime]] = self._watch.check(now)
        return found
