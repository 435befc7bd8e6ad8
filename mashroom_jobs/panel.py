"""JobsPanel: a live ipywidgets view of a BackgroundJobService.

Stock ipywidgets 8 only, so it renders wherever widgets do (JupyterLab,
Notebook 7, VS Code, Voila, Colab).

How it stays fast with thousands of jobs:

* **A fixed pool of rows.** The panel creates ``page_size`` rows once and
  reuses them for whichever jobs are on the visible page; widget models are
  bounded whatever the number of jobs.  Rows share their Layout and Style
  models, so a row costs about a dozen models, not three per widget.
* **Coalesced updates.** Observers (which run on the timer, worker and
  caller threads) only record what changed, under a small lock.  A flush,
  at most every ``flush_interval`` seconds (a daemon thread per panel), pushes
  the visible rows to the front end, each widget in one ``hold_sync`` message,
  and only when a value really changed.  Jobs off the visible page cause no
  messages, except through the header's totals (running, paused, failing).
* **User actions flush at once**: a click, a page turn or the filter show
  their result without waiting for the next tick.

Threads: the flush runs on the flusher thread or on the thread of a user
action (the kernel's main thread), serialised by a lock; every widget the
panel owns is written only inside the flush or the form handlers.
"""

from __future__ import annotations

import functools
import html
import inspect
import logging
import threading
import weakref
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime, tzinfo
from typing import Any

import ipywidgets as widgets
from ipywidgets.widgets.widget_string import HTMLStyle, LabelStyle

from .core.cron import CronSchedule, resolve_zone, zone_name
from .core.errors import MashroomJobsError
from .job import BackgroundJob, JobInvocation
from .service import BackgroundJobService, status_mark

__all__ = ["JobsPanel", "close_panels", "display_panel"]

log = logging.getLogger(__name__)

#: Traits of a job the rows show; a change to any of them marks the job dirty.
_ROW_TRAITS = [
    "running", "paused", "active", "next_invocation", "last_invocation",
    "run_count", "failure_count", "history",
]
#: Traits that change the header's totals.
_COUNT_TRAITS = frozenset({"running", "paused", "active", "last_invocation"})
_MAX_PAGE_SIZE = 30
_STATE_WORDS = {
    "▶": "running", "‖": "paused", "✗": "failed last time", "○": "never run", "✓": "scheduled",
}

# service -> its open panels (strong refs: an open panel holds comms and a thread anyway)
_panels: weakref.WeakKeyDictionary[BackgroundJobService, list[JobsPanel]] = (
    weakref.WeakKeyDictionary()
)
_display: weakref.WeakKeyDictionary[BackgroundJobService, JobsPanel] = (
    weakref.WeakKeyDictionary()
)
_registry_lock = threading.Lock()


def close_panels(service: BackgroundJobService) -> int:
    """Close every open panel on ``service``.

    Parameters
    ----------
    service : BackgroundJobService

    Returns
    -------
    int
        How many panels were closed.
    """
    with _registry_lock:
        panels = list(_panels.get(service, ()))
    for panel in panels:
        panel.close()
    return len(panels)


def display_panel(service: BackgroundJobService) -> JobsPanel:
    """The panel shown when ``service`` itself is displayed; one per service.

    Displaying the service twice shows two views of the same panel, so
    repeated displays do not pile up panels and flusher threads.
    """
    with _registry_lock:
        panel = _display.get(service)
        if panel is not None and not panel.closed:
            return panel
    panel = JobsPanel(service)
    with _registry_lock:
        _display[service] = panel
    return panel


# -- text helpers ------------------------------------------------------------------


def _relative(seconds: float) -> str:
    """``in 4 min`` / ``12 s ago``: coarse, so it changes rarely."""
    future = seconds >= 0
    s = abs(seconds)
    if s < 1:
        return "now"
    if s < 60:
        text = f"{int(s)} s"
    elif s < 3600:
        text = f"{int(s // 60)} min"
    elif s < 86400:
        text = f"{int(s // 3600)} h"
    else:
        text = f"{int(s // 86400)} d"
    return f"in {text}" if future else f"{text} ago"


def _when(moment: datetime, now: datetime, zone: tzinfo) -> str:
    local = moment.astimezone(zone)
    if local.date() == now.astimezone(zone).date():
        return f"{local:%H:%M:%S}"
    return f"{local:%Y-%m-%d %H:%M}"


def _duration(ms: float) -> str:
    return f"{ms:.0f} ms" if ms < 10_000 else f"{ms / 1000:.1f} s"


def _short(text: str, limit: int = 80) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _esc(text: object) -> str:
    return html.escape(str(text), quote=False)


def _outcome_html(inv: JobInvocation, limit: int = 80) -> str:
    if inv.success:
        return '<span style="color:var(--jp-success-color1, green)">ok</span>'
    return (
        '<span style="color:var(--jp-error-color1, #c62828)">'
        f"{_esc(_short(inv.error_message or 'failed', limit))}</span>"
    )


def _user_callables(namespace: Mapping[str, Any], hidden: Iterable[str]) -> dict[str, Any]:
    """Functions the user defined in the namespace (no private names, no IPython builtins)."""
    skip = set(hidden)
    found: dict[str, Any] = {}
    for name, value in list(namespace.items()):
        if name.startswith("_") or name in skip:
            continue
        if inspect.isfunction(value) or inspect.ismethod(value) or isinstance(
            value, functools.partial
        ):
            found[name] = value
    return dict(sorted(found.items()))


# -- the row -------------------------------------------------------------------------


class _Shared:
    """Layout and style models shared by every row of a panel (bounded model count)."""

    def __init__(self) -> None:
        L = widgets.Layout
        self.row = L(border_bottom="1px solid var(--jp-border-color2, #ddd)", padding="2px 0")
        self.line = L(align_items="center", overflow="hidden")
        self.mark = L(width="1.6em", min_width="1.6em")
        self.name = L(width="12em", min_width="8em")
        self.schedule = L(width="20em")
        self.next = L(width="13em")
        self.last = L(width="20em")
        self.counts = L(width="10em", min_width="10em")
        self.button = L(width="32px", min_width="32px", padding="0")
        self.detail = L(padding="0 0 4px 2em")
        self.label_style = LabelStyle()
        self.html_style = HTMLStyle()
        self.button_style = widgets.ButtonStyle()

    def models(self) -> list[widgets.Widget]:
        return [v for v in vars(self).values() if isinstance(v, widgets.Widget)]


class _Row:
    """One reusable row: shows whichever job the flush assigns to it."""

    def __init__(self, panel: JobsPanel, shared: _Shared) -> None:
        self.job: BackgroundJob | None = None
        s = shared

        def button(icon: str, handler: Callable[[BackgroundJob], None]) -> widgets.Button:
            b = widgets.Button(icon=icon, layout=s.button, style=s.button_style)
            b.on_click(lambda _b: panel._act(self.job, handler))
            return b

        self.expand = widgets.Button(icon="chevron-right", layout=s.button, style=s.button_style)
        self.expand.on_click(lambda _b: panel._toggle_detail(self.job))
        self.mark = widgets.Label(layout=s.mark, style=s.label_style)
        self.name = widgets.Label(layout=s.name, style=s.label_style)
        self.schedule = widgets.HTML(layout=s.schedule, style=s.html_style)
        self.next = widgets.HTML(layout=s.next, style=s.html_style)
        self.last = widgets.HTML(layout=s.last, style=s.html_style)
        self.counts = widgets.Label(layout=s.counts, style=s.label_style)
        self.run = button("play", panel._run_now)
        self.pause = button("pause", panel._pause_or_resume)
        self.unschedule = button("trash", panel._unschedule)
        self.line = widgets.HBox(
            [self.expand, self.mark, self.name, self.schedule, self.next, self.last,
             self.counts, self.run, self.pause, self.unschedule],
            layout=s.line,
        )
        self.detail = widgets.HTML(layout=s.detail, style=s.html_style)
        self.box = widgets.VBox([self.line], layout=s.row)
        self.box.add_class("mashroom-jobs-row")

    def models(self) -> list[widgets.Widget]:
        return [self.expand, self.mark, self.name, self.schedule, self.next, self.last,
                self.counts, self.run, self.pause, self.unschedule, self.line, self.detail,
                self.box]

    def show(self, job: BackgroundJob, now: datetime, zone: tzinfo, expanded: bool) -> None:
        """Write ``job``'s state into the row's widgets (unchanged values send nothing)."""
        self.job = job
        name = job.name
        mark = status_mark(job)
        self._set(self.mark, value=mark, tooltip=_STATE_WORDS.get(mark, ""))
        self._set(self.name, value=name, tooltip=name)

        if job.cron_schedule is None:
            schedule = "<i>runs once</i>"
        else:
            schedule = f"<code>{_esc(job.cron_schedule)}</code> {_esc(job.description)}"
            if job.timezone != zone_name(zone):
                schedule += f" <small>({_esc(job.timezone)})</small>"
        self._set(self.schedule, value=schedule)

        nxt = job.next_invocation
        if nxt is None:
            next_text = "paused" if job.paused else "—"
        else:
            rel = _relative((nxt - now).total_seconds())
            next_text = f"{_when(nxt, now, zone)} <small>({rel})</small>"
        self._set(self.next, value=next_text)

        last = job.last_invocation
        if last is None:
            last_html, last_tip = "<i>never</i>", "never run"
        else:
            last_html = (
                f"{_when(last.timestamp, now, zone)} · {_duration(last.execution_time_ms)} · "
                + _outcome_html(last, 40)
            )
            last_tip = "ok" if last.success else (last.error_message or "failed")
        if job.running:
            last_html = "<b>running…</b> " + last_html
        self._set(self.last, value=last_html, tooltip=last_tip)
        self._set(self.counts, value=f"runs {job.run_count} · failed {job.failure_count}")

        self._set(self.run, tooltip=f"Run {name} now", disabled=not job.active)
        if job.paused:
            self._set(self.pause, icon="play-circle", tooltip=f"Resume {name}",
                      disabled=not job.active)
        else:
            self._set(self.pause, icon="pause", tooltip=f"Pause {name}", disabled=not job.active)
        self._set(self.unschedule, tooltip=f"Unschedule {name}")
        if expanded:
            self._set(self.expand, icon="chevron-down", tooltip=f"Hide details of {name}")
            self._set(self.detail, value=_detail_html(job, now, zone))
            if len(self.box.children) != 2:
                self.box.children = (self.line, self.detail)
        else:
            self._set(self.expand, icon="chevron-right", tooltip=f"Show details of {name}")
            if len(self.box.children) != 1:
                self.box.children = (self.line,)

    @staticmethod
    def _set(widget: widgets.Widget, **values: Any) -> None:
        changed = {k: v for k, v in values.items() if getattr(widget, k) != v}
        if not changed:
            return
        with widget.hold_sync():  # one message per widget, not one per trait
            for key, value in changed.items():
                setattr(widget, key, value)


def _detail_html(job: BackgroundJob, now: datetime, zone: tzinfo) -> str:
    history: tuple[JobInvocation, ...] = job.history
    if not history:
        return "<i>No runs yet.</i>"
    rows = "".join(
        "<tr>"
        f"<td>{_when(inv.timestamp, now, zone)}</td><td>{_esc(inv.trigger)}</td>"
        f"<td>{_duration(inv.execution_time_ms)}</td><td>{_outcome_html(inv, 120)}</td>"
        "</tr>"
        for inv in reversed(history)
    )
    parts = [
        "<table><tr><th align=left>time</th><th align=left>trigger</th>"
        f"<th align=left>duration</th><th align=left>result</th></tr>{rows}</table>"
    ]
    with_output = next((inv for inv in reversed(history) if inv.output), None)
    if with_output is not None:
        text = with_output.output[-5000:]
        parts.append(
            f"<div><b>Output</b> of the run at {_when(with_output.timestamp, now, zone)}:</div>"
            f"<pre style='margin:0;max-height:12em;overflow:auto'>{_esc(text)}</pre>"
        )
    failed = next((inv for inv in reversed(history) if inv.traceback), None)
    if failed is not None:
        parts.append(
            f"<div><b>Traceback</b> of the run at {_when(failed.timestamp, now, zone)}:</div>"
            f"<pre style='margin:0;max-height:16em;overflow:auto'>{_esc(failed.traceback)}</pre>"
        )
    return "".join(parts)


# -- the panel -----------------------------------------------------------------------


class JobsPanel(widgets.VBox):  # type: ignore[misc]  # ipywidgets is untyped
    """A live view of a :class:`BackgroundJobService`: see, run, pause, unschedule, add jobs.

    Parameters
    ----------
    service : BackgroundJobService
        The service to show.
    callables : mapping of str to callable, optional
        The callables the add-job form offers.  Default: the functions defined
        in the user's namespace (``service.shell.user_ns``), refreshed after
        each cell.
    page_size : int
        Rows per page (1-30); the rows are created once and reused.
    auto_flush : bool
        Push changes to the front end from a background thread, at most every
        ``flush_interval`` seconds.  Tests pass False and call :meth:`flush`.
    flush_interval : float
        Seconds between flushes (at least 0.1).

    Examples
    --------
    >>> panel = JobsPanel(service)          # doctest: +SKIP
    >>> panel                               # doctest: +SKIP
    """

    def __init__(
        self,
        service: BackgroundJobService,
        *,
        callables: Mapping[str, Callable[..., Any]] | None = None,
        page_size: int = 20,
        auto_flush: bool = True,
        flush_interval: float = 0.25,
    ) -> None:
        if not isinstance(service, BackgroundJobService):
            raise TypeError(f"service must be a BackgroundJobService, got {type(service).__name__}")
        if not 1 <= page_size <= _MAX_PAGE_SIZE:
            raise ValueError(f"page_size must be between 1 and {_MAX_PAGE_SIZE}, got {page_size}")
        if flush_interval < 0.1:
            raise ValueError(f"flush_interval must be at least 0.1 s, got {flush_interval}")
        self._service = service
        self._page_size = page_size
        self._interval = float(flush_interval)
        self._explicit_callables = dict(callables) if callables is not None else None
        self._closed = True  # until fully built: close() then only closes the comm
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._events_shell: Any = None

        # state written by observers (any thread), read by the flush
        self._state_lock = threading.Lock()
        self._dirty: set[BackgroundJob] = set()
        self._structure_dirty = True
        self._counts_dirty = True
        self._plugins_dirty = True
        self._wake = threading.Event()
        # state owned by the flush
        self._flush_lock = threading.RLock()
        self._flush_count = 0
        self._last_tick = float("-inf")
        self._filtered: list[BackgroundJob] = []
        self._page = 0
        self._page_dirty = True  # the page turned: re-render rows (flush lock)
        self._expanded: set[str] = set()

        self._shared = _Shared()
        self._rows = [_Row(self, self._shared) for _ in range(page_size)]
        self._build_header()
        self._build_form()
        super().__init__([self._header, self._rows_box, self._form])
        self.add_class("mashroom-jobs-panel")

        # observe, then read: under the service lock no schedule/unschedule slips between
        self._observed: set[BackgroundJob] = set()
        with service._lock:
            service.observe(self._on_jobs, names="jobs")
            service.observe(self._on_plugins, names="plugins")
            for job in service.jobs:
                job.observe(self._on_job, names=_ROW_TRAITS)
                self._observed.add(job)
        shell = service.shell
        if self._explicit_callables is None and shell is not None and hasattr(shell, "events"):
            shell.events.register("post_run_cell", self._on_post_run_cell)
            self._events_shell = shell
        self._refresh_callables()
        with _registry_lock:
            _panels.setdefault(service, []).append(self)

        self._closed = False
        self.flush()
        if auto_flush:
            self._thread = threading.Thread(
                target=self._flush_loop, name="mashroom-jobs-panel-flush", daemon=True
            )
            self._thread.start()

    # -- public ------------------------------------------------------------------------

    @property
    def service(self) -> BackgroundJobService:
        """The service this panel shows."""
        return self._service

    @property
    def closed(self) -> bool:
        """True after :meth:`close`."""
        return self._closed

    @property
    def flush_count(self) -> int:
        """How many flushes pushed something (for tests and measurements)."""
        return self._flush_count

    @property
    def page(self) -> int:
        """The visible page, from 0."""
        return self._page

    @property
    def page_count(self) -> int:
        """Pages the filtered jobs fill (at least 1)."""
        return max(1, -(-len(self._filtered) // self._page_size))

    @property
    def visible_jobs(self) -> tuple[BackgroundJob, ...]:
        """The jobs on the visible page, in row order."""
        return tuple(r.job for r in self._rows[: len(self._rows_box.children)]
                     if r.job is not None)

    def go_to_page(self, page: int) -> None:
        """Show page ``page`` (from 0; clamped to the pages there are)."""
        with self._flush_lock:
            self._page = max(0, min(page, self.page_count - 1))
            self._page_dirty = True
        self.flush()

    def button(self, tooltip: str) -> widgets.Button:
        """The visible button whose tooltip is exactly ``tooltip`` (tests, automation).

        Raises
        ------
        LookupError
            When no visible button has that tooltip.
        """
        for b in self._all_buttons():
            if b.tooltip == tooltip:
                return b
        raise LookupError(f"no visible button with tooltip {tooltip!r}")

    def flush(self) -> bool:
        """Push pending changes of the visible page to the widgets now.

        Returns
        -------
        bool
            True when something was pending (a job changed, the jobs changed,
            or the relative times were due to tick).
        """
        with self._flush_lock:
            if self._closed:
                return False
            now_mono = self._service._clock.monotonic()
            with self._state_lock:
                dirty, self._dirty = self._dirty, set()
                structure, self._structure_dirty = self._structure_dirty, False
                counts, self._counts_dirty = self._counts_dirty, False
                plugins, self._plugins_dirty = self._plugins_dirty, False
            tick = now_mono - self._last_tick >= 1.0
            page, self._page_dirty = self._page_dirty, False
            if not (dirty or structure or counts or tick or page or plugins):
                return False
            if tick:
                self._last_tick = now_mono
            try:
                if plugins:
                    self._update_plugins()
                self._render(dirty, structure, counts, tick)
            except Exception:  # a flush must never kill the flusher or a click handler
                log.exception("JobsPanel flush failed")
            self._flush_count += 1
            return True

    def close(self) -> None:
        """Detach every observer, stop the flusher and close every widget of the panel."""
        if getattr(self, "_closed", True):  # also guards a half-built panel at GC time
            super().close()
            return
        with self._flush_lock:
            self._closed = True
        self._stop.set()
        self._wake.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(5)
        service = self._service
        with service._lock:
            service.unobserve(self._on_jobs, names="jobs")
            service.unobserve(self._on_plugins, names="plugins")
            for job in self._observed:
                job.unobserve(self._on_job, names=_ROW_TRAITS)
            self._observed.clear()
        if self._events_shell is not None:
            try:
                self._events_shell.events.unregister("post_run_cell", self._on_post_run_cell)
            except ValueError:
                pass
            self._events_shell = None
        with _registry_lock:
            panels = _panels.get(service)
            if panels is not None and self in panels:
                panels.remove(self)
            if _display.get(service) is self:
                del _display[service]
        for w in self._owned_widgets():
            w.close()
        layout = self.layout
        super().close()
        layout.close()

    # -- observers (any thread; quick; never raise) -------------------------------------

    def _on_jobs(self, change: Any) -> None:
        old: tuple[BackgroundJob, ...] = change["old"] or ()
        new: tuple[BackgroundJob, ...] = change["new"]
        observed = self._observed
        # fast paths for one schedule / one unschedule: no O(n) set building per change
        if len(new) == len(old) + 1 and new[:-1] == old:
            added, removed = [new[-1]], []
        else:
            new_set = set(new)
            added = [j for j in new if j not in observed]
            removed = [j for j in observed if j not in new_set]
        for job in removed:
            job.unobserve(self._on_job, names=_ROW_TRAITS)
            observed.discard(job)
        for job in added:
            if job not in observed:
                job.observe(self._on_job, names=_ROW_TRAITS)
                observed.add(job)
        with self._state_lock:
            self._structure_dirty = True
            self._counts_dirty = True

    def _on_job(self, change: Any) -> None:
        with self._state_lock:
            self._dirty.add(change["owner"])
            if change["name"] in _COUNT_TRAITS:
                self._counts_dirty = True

    def _on_plugins(self, _change: Any) -> None:
        with self._state_lock:
            self._plugins_dirty = True

    def _on_post_run_cell(self, *_args: Any) -> None:
        try:
            self._refresh_callables()
        except Exception:
            log.exception("JobsPanel could not refresh the callables")

    # -- the flusher -------------------------------------------------------------------

    def _flush_loop(self) -> None:
        while not self._stop.wait(self._interval):
            try:
                self.flush()
            except Exception:
                log.exception("JobsPanel flush failed")

    def _render(self, dirty: set[BackgroundJob], structure: bool, counts: bool,
                tick: bool) -> None:
        service = self._service
        if structure:
            self._filtered = self._apply_filter(service.jobs)
            self._page = max(0, min(self._page, self.page_count - 1))
        if counts or structure:
            self._update_header_counts(service.jobs)
        start = self._page * self._page_size
        visible = self._filtered[start : start + self._page_size]
        now = service._clock.now()
        zone = service.zone
        for row, job in zip(self._rows, visible):
            if row.job is not job or job in dirty or tick:
                row.show(job, now, zone, job.name in self._expanded)
        for row in self._rows[len(visible):]:
            row.job = None
        if len(self._rows_box.children) != len(visible):
            self._rows_box.children = tuple(r.box for r in self._rows[: len(visible)])
        self._update_pager()

    def _apply_filter(self, jobs: tuple[BackgroundJob, ...]) -> list[BackgroundJob]:
        text = self._filter.value.strip().lower()
        if not text:
            return list(jobs)
        return [
            j for j in jobs
            if text in j.name.lower() or text in (j.cron_schedule or "").lower()
            or text in j.description.lower()
        ]

    # -- header --------------------------------------------------------------------------

    def _build_header(self) -> None:
        self._counts = widgets.HTML()
        self._filter = widgets.Text(
            placeholder="filter by name or schedule", continuous_update=True,
            layout=widgets.Layout(width="18em"),
        )
        self._filter.observe(self._on_filter, names="value")
        self._prev = widgets.Button(icon="chevron-left", tooltip="Previous page",
                                    layout=self._shared.button, style=self._shared.button_style)
        self._next = widgets.Button(icon="chevron-right", tooltip="Next page",
                                    layout=self._shared.button, style=self._shared.button_style)
        self._prev.on_click(lambda _b: self.go_to_page(self._page - 1))
        self._next.on_click(lambda _b: self.go_to_page(self._page + 1))
        self._page_label = widgets.Label()
        self._message = widgets.HTML()
        self._plugins = widgets.HTML()
        top = widgets.HBox([self._counts, self._filter, self._prev, self._page_label, self._next],
                           layout=widgets.Layout(align_items="center", flex_flow="row wrap"))
        self._header = widgets.VBox([top, self._plugins, self._message])
        self._rows_box = widgets.VBox()

    def _update_header_counts(self, jobs: tuple[BackgroundJob, ...]) -> None:
        running = paused = failing = 0
        for job in jobs:
            running += job.running
            paused += job.paused
            last = job.last_invocation
            failing += last is not None and not last.success
        n = len(jobs)
        text = (f"<b>{n:,} job{'s' if n != 1 else ''}</b> · {running:,} running · "
                f"{paused:,} paused · {failing:,} failing")
        if self._filter.value.strip():
            text += f" · {len(self._filtered):,} match"
        self._counts.value = text

    def _update_plugins(self) -> None:
        """One line on the background-job plugins; each failed one with its error."""
        records = self._service.plugins
        if not records:
            _Row._set(self._plugins, value="")
            return
        states = [r.state for r in records]
        parts = [f"{states.count(s)} {s}" for s in ("loaded", "disabled", "failed")
                 if states.count(s)]
        text = "Plugins: " + " · ".join(parts)
        failed = [r for r in records if r.state == "failed"]
        if failed:
            items = "".join(
                f"<li><b>{_esc(r.name)}</b>: {_esc(_short(r.error or 'failed', 160))}</li>"
                for r in failed
            )
            text += (
                '<ul style="margin:0;color:var(--jp-error-color1, #c62828)">'
                f"{items}</ul>"
            )
        _Row._set(self._plugins, value=text)

    def _update_pager(self) -> None:
        pages = self.page_count
        _Row._set(self._page_label, value=f"Page {self._page + 1} of {pages:,}")
        _Row._set(self._prev, disabled=self._page == 0)
        _Row._set(self._next, disabled=self._page >= pages - 1)

    def _on_filter(self, _change: Any) -> None:
        with self._flush_lock:
            self._page = 0
        with self._state_lock:
            self._structure_dirty = True
        self.flush()

    def _say(self, text: str, error: bool = False) -> None:
        color = "var(--jp-error-color1, #c62828)" if error else "inherit"
        self._message.value = f'<span style="color:{color}">{_esc(text)}</span>' if text else ""

    # -- row actions (the kernel's main thread) -----------------------------------------

    def _act(self, job: BackgroundJob | None, action: Callable[[BackgroundJob], None]) -> None:
        if job is None:
            return
        try:
            action(job)
        except MashroomJobsError as exc:
            self._say(str(exc), error=True)
        except Exception as exc:  # shown in the panel, never raised into another cell
            self._say(f"{type(exc).__name__}: {exc}", error=True)
        else:
            self._say("")
        self.flush()

    def _run_now(self, job: BackgroundJob) -> None:
        job.invoke_now()

    def _pause_or_resume(self, job: BackgroundJob) -> None:
        if job.paused:
            job.resume()
        else:
            job.pause()

    def _unschedule(self, job: BackgroundJob) -> None:
        if self._service.get_job(job.name) is job:
            self._service.unschedule_job(job.name)

    def _toggle_detail(self, job: BackgroundJob | None) -> None:
        if job is None:
            return
        with self._flush_lock:
            self._expanded ^= {job.name}
        with self._state_lock:
            self._dirty.add(job)
        self.flush()

    # -- the add-job form ----------------------------------------------------------------

    def _build_form(self) -> None:
        zone_default = zone_name(self._service.zone)
        self._f_name = widgets.Text(description="Name", placeholder="nightly-report")
        self._f_cron = widgets.Text(description="Cron", placeholder="*/5 * * * *",
                                    continuous_update=True)
        self._f_zone = widgets.Combobox(
            description="Time zone", placeholder=f"{zone_default} (default)",
            options=_zone_options(), ensure_option=False,
        )
        self._f_callable = widgets.Dropdown(description="Callable", options=[])
        self._f_schedule = widgets.Button(description="Schedule", icon="plus",
                                          tooltip="Schedule the job", button_style="primary")
        self._f_feedback = widgets.HTML()
        self._f_message = widgets.HTML()
        self._f_cron.observe(self._on_form_change, names="value")
        self._f_zone.observe(self._on_form_change, names="value")
        self._f_schedule.on_click(lambda _b: self._schedule_from_form())
        fields = widgets.HBox([self._f_name, self._f_cron],
                              layout=widgets.Layout(flex_flow="row wrap"))
        fields2 = widgets.HBox([self._f_zone, self._f_callable, self._f_schedule],
                               layout=widgets.Layout(flex_flow="row wrap"))
        self._form = widgets.VBox(
            [widgets.HTML("<b>Add a job</b>"), fields, fields2, self._f_feedback,
             self._f_message],
            layout=widgets.Layout(margin="8px 0 0 0"),
        )
        self._on_form_change(None)

    def _form_schedule(self) -> tuple[CronSchedule | None, tzinfo]:
        """The form's schedule and zone; raises MashroomJobsError with a user message."""
        zone_text = self._f_zone.value.strip()
        zone = resolve_zone(zone_text) if zone_text else self._service.zone
        expr = self._f_cron.value.strip()
        return (CronSchedule(expr, zone) if expr else None), zone

    def _on_form_change(self, _change: Any) -> None:
        try:
            schedule, zone = self._form_schedule()
        except MashroomJobsError as exc:
            self._f_feedback.value = (
                f'<span style="color:var(--jp-error-color1, #c62828)">{_esc(exc)}</span>'
            )
            return
        if schedule is None:
            self._f_feedback.value = "<i>No expression: the job runs once, right away.</i>"
            return
        now = self._service._clock.now()
        times = ", ".join(f"{t:%Y-%m-%d %H:%M:%S}" for t in schedule.fire_times(now, 3))
        self._f_feedback.value = (
            f"{_esc(schedule.describe())} — next: {_esc(times or 'never')}"
            f" <small>({_esc(zone_name(zone))})</small>"
        )

    def _refresh_callables(self) -> None:
        if self._explicit_callables is not None:
            found = self._explicit_callables
        else:
            shell = self._service.shell
            ns = getattr(shell, "user_ns", None)
            hidden = getattr(shell, "user_ns_hidden", {})
            found = _user_callables(ns, hidden) if isinstance(ns, Mapping) else {}
        options = list(found.items())
        current = self._f_callable.label
        old = [(label, id(value)) for label, value in self._f_callable.options]
        if old == [(label, id(value)) for label, value in options]:
            return
        self._f_callable.options = options
        if current in found:
            self._f_callable.label = current
        elif options:  # like a fresh Dropdown: the first one is selected
            self._f_callable.index = 0

    def _schedule_from_form(self) -> None:
        name = self._f_name.value.strip()
        fn = self._f_callable.value
        try:
            if not name:
                raise ValueError("Give the job a name.")
            if self._service.get_job(name) is not None:
                raise ValueError(
                    f"A job named {name!r} already exists: choose another name, "
                    "or unschedule it first."
                )
            if fn is None:
                raise ValueError(
                    "Choose a callable: define a function in the notebook, "
                    "or pass callables={...} to JobsPanel."
                )
            schedule, zone = self._form_schedule()
            self._service.schedule_job(
                name, schedule.expression if schedule else None, fn, timezone=zone
            )
        except Exception as exc:  # every error lands in the form
            text = str(exc) if isinstance(exc, (MashroomJobsError, ValueError)) else (
                f"{type(exc).__name__}: {exc}"
            )
            self._f_message.value = (
                f'<span style="color:var(--jp-error-color1, #c62828)">{_esc(text)}</span>'
            )
            return
        self._f_message.value = f"Scheduled {_esc(name)}."
        self._f_name.value = ""
        self.flush()

    # -- bookkeeping ---------------------------------------------------------------------

    def _all_buttons(self) -> Iterable[widgets.Button]:
        for row in self._rows[: len(self._rows_box.children)]:
            yield from (row.expand, row.run, row.pause, row.unschedule)
        yield from (self._prev, self._next, self._f_schedule)

    def _owned_widgets(self) -> list[widgets.Widget]:
        """Every widget model the panel created, children before containers."""
        owned: list[widgets.Widget] = []
        for row in self._rows:
            owned.extend(row.models())
        containers = [self._header, self._rows_box, self._form]
        stack = list(containers)
        while stack:  # header and form: walk their trees, with layouts and styles
            w = stack.pop()
            if w not in owned:
                owned.append(w)
            stack.extend(getattr(w, "children", ()))
        extra: list[widgets.Widget] = []
        for w in owned:
            for attr in ("layout", "style"):
                sub = getattr(w, attr, None)
                if isinstance(sub, widgets.Widget):
                    extra.append(sub)
        seen: set[int] = set()
        result = []
        for w in [*owned, *extra, *self._shared.models()]:
            if id(w) not in seen:
                seen.add(id(w))
                result.append(w)
        return result


@functools.lru_cache(maxsize=1)
def _zone_options() -> tuple[str, ...]:
    import zoneinfo

    return tuple(sorted(zoneinfo.available_timezones()))
