"""RecentRuns: the latest runs of every job, newest first, as a table that keeps itself
current (the dashboard's second half, under the jobs panel).

It reads :meth:`BackgroundJobService.history` only, so with a job store it shows what the
store holds (the runs of every process sharing it) and without one this kernel's runs.
A refresher thread (one per table, a daemon) reads the history every ``refresh_interval``
seconds and sends the table to the front end only when its text changed: times are shown
as clock times, not "5 s ago", so a quiet service sends nothing.  The thread ends when the
table is closed, when the service shuts down (``%unload_ext``), or with the kernel
(Voila shuts a page's kernel down when the page is closed).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from datetime import datetime, tzinfo

import ipywidgets as widgets

from ..core.records import JobInvocation
from ..service import BackgroundJobService
from . import format as fmt

__all__ = ["RecentRuns", "recent_runs_html"]

log = logging.getLogger("mashroom_jobs.panel")

#: the most runs a table lists
MAX_LIMIT = 500


def recent_runs_html(runs: Sequence[tuple[str | None, JobInvocation]], now: datetime,
                     zone: tzinfo, own_origin: str | None = None) -> str:
    """A table of ``(job name, run)`` pairs, in the order given: time, job, trigger,
    duration and result, and which process ran it when some other process did."""
    if not runs:
        return "<i>No runs yet.</i>"
    elsewhere = any(run.origin and run.origin != own_origin for _, run in runs)
    header = ["time", "job", "trigger", "duration", "result"] + (["ran in"] if elsewhere
                                                                 else [])
    pad = ' style="padding:0 1.2em 0 0"'
    head = "".join(f"<th align=left{pad}>{fmt.esc(h)}</th>" for h in header)
    body = []
    for name, run in runs:
        trigger = run.trigger + (f" {run.attempt}" if run.attempt > 1 else "")
        cells = [fmt.when(run.timestamp, now, zone), fmt.esc(name or "—"), fmt.esc(trigger),
                 "—" if run.elsewhere else fmt.duration(run.execution_time_ms),
                 fmt.outcome_html(run, 120)]
        if elsewhere:
            cells.append("this kernel" if not run.origin or run.origin == own_origin
                         else fmt.esc(fmt.origin_text(run.origin)))
        body.append("<tr>" + "".join(f"<td{pad}>{c}</td>" for c in cells) + "</tr>")
    return (f'<table class="mashroom-jobs-runs-table"><tr>{head}</tr>{"".join(body)}'
            f"</table>")


class RecentRuns(widgets.VBox):
    """The latest runs of every job of ``service``, newest first, kept current.

    Parameters
    ----------
    service : BackgroundJobService
        Whose :meth:`~mashroom_jobs.BackgroundJobService.history` to show.
    limit : int
        How many runs to list (1-500).
    auto_refresh : bool
        Read the history again every ``refresh_interval`` seconds on a daemon thread,
        while the service runs.  Tests pass False and call :meth:`refresh`.
    refresh_interval : float
        Seconds between reads (at least 0.5).
    """

    def __init__(self, service: BackgroundJobService, *, limit: int = 20,
                 auto_refresh: bool = True, refresh_interval: float = 2.0) -> None:
        if not isinstance(service, BackgroundJobService):
            raise TypeError(f"service must be a BackgroundJobService, got {type(service).__name__}")
        if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_LIMIT:
            raise ValueError(f"limit must be a whole number from 1 to {MAX_LIMIT}, got {limit!r}")
        if refresh_interval < 0.5:
            raise ValueError(f"refresh_interval must be at least 0.5 s, got {refresh_interval}")
        self._service = service
        self._limit = limit
        self._interval = float(refresh_interval)
        self._stop = threading.Event()
        self._lock = threading.Lock()  # one refresh at a time (the thread, or a caller)
        self.heading = widgets.HTML()
        self.table = widgets.HTML()
        widgets.VBox.__init__(self, [self.heading, self.table])
        self.add_class("mashroom-jobs-runs")
        self.refresh()
        self._thread: threading.Thread | None = None
        if auto_refresh and not service.is_shut_down:
            self._thread = threading.Thread(target=self._refresh_loop,
                                            name="mashroom-jobs-runs-refresh", daemon=True)
            self._thread.start()

    @property
    def service(self) -> BackgroundJobService:
        """The service whose runs are shown."""
        return self._service

    @property
    def refreshing(self) -> bool:
        """True while the refresher thread runs."""
        return self._thread is not None and self._thread.is_alive()

    def runs(self) -> list[tuple[str | None, JobInvocation]]:
        """The runs to show now, newest first, each with its job's name."""
        return [(run.job or None, run) for run in self._service.history(limit=self._limit)]

    def refresh(self) -> bool:
        """Read the history and show it now; True when the table changed."""
        with self._lock:
            service = self._service
            try:
                title, table = self._title(), recent_runs_html(
                    self.runs(), service.now(), service.zone, getattr(service, "origin", None))
            except Exception as exc:  # a store that does not answer: say so, keep going
                log.warning("RecentRuns could not read the history: %s", exc)
                title, table = self._title(), fmt.error_span(
                    f"Could not read the history: {type(exc).__name__}: {exc}")
            if service.is_shut_down:
                title += fmt.error_span(" The service was shut down: nothing runs any more.")
            changed = (title, table) != (self.heading.value, self.table.value)
            if self.heading.value != title:
                self.heading.value = title
            if self.table.value != table:
                self.table.value = table
            return changed

    def close(self) -> None:
        """Stop the refresher thread and close the table's widgets."""
        stop = getattr(self, "_stop", None)  # None: a half-built table, closed at GC time
        if stop is not None:
            stop.set()
        thread = getattr(self, "_thread", None)
        if thread is not None and thread is not threading.current_thread():
            thread.join(5)
        for w in (getattr(self, "heading", None), getattr(self, "table", None)):
            if w is not None:
                w.close()
        widgets.VBox.close(self)

    def _title(self) -> str:
        service = self._service
        # The one place that says where the runs come from: the job store's file (the
        # `store_path` the store adds to the service) or this kernel's memory.
        store_path = getattr(service, "store_path", None)
        if store_path:
            source = f"from the job store <code>{fmt.esc(store_path)}</code> (every process " \
                     f"sharing it)"
        else:
            source = "of this kernel (kept in memory: no job store is configured)"
        return f"<b>Recent runs</b> <small>{source}, newest first</small>"

    def _refresh_loop(self) -> None:
        while not self._stop.wait(self._interval):
            if self.comm is None:  # closed without close() (Widget.close_all())
                return
            try:
                self.refresh()
            except Exception:
                log.exception("RecentRuns refresh failed")
            if self._service.is_shut_down:  # nothing will change any more
                return
