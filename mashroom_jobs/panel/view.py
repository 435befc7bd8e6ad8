"""JobsPanel: a live ipywidgets view of a BackgroundJobService.

How it stays fast with thousands of jobs:

* **A fixed pool of rows** (:mod:`.rows`), reused for whichever jobs are on the
  visible page: widget models are bounded whatever the number of jobs.
* **Coalesced updates.** Observers (which run on the timer, worker and caller
  threads) only record which jobs changed, under a small lock (:mod:`.tracking`).
  A flush, at most every ``flush_interval`` seconds (a daemon thread per panel),
  pushes the visible rows (:mod:`.paging`) to the front end, and only the values
  that really changed.
  Jobs off the visible page cause no messages, except through the header's totals.
* **User actions flush at once**: a click, a page turn or the filter show
  their result without waiting for the next tick.

Threads: the flush runs on the flusher thread or on the thread of a user action
(the kernel's main thread), serialised by a lock; every widget the panel owns
is written only inside the flush or the form's handlers.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import weakref
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime, tzinfo
from typing import Any

import ipywidgets as widgets

from ..core.arguments import check_flag, check_seconds
from ..core.errors import MashroomJobsError
from ..core.records import JobInvocation, JobState
from ..service import BackgroundJobService
from . import format as fmt
from .control import Listed, StoredJob, StoreView, run_counts
from .executed import JupyterServer, find_server, notebook_link, render_notebook
from .form import AddJobForm
from .header import Header
from .paging import Pages
from .rows import Row, SharedStyles, column_headers
from .tracking import ChangeTracker

__all__ = ["JobsPanel", "close_panels", "display_panel"]

log = logging.getLogger("mashroom_jobs.panel")

_MAX_PAGE_SIZE = 30
#: runs the expanded row lists
DETAIL_RUNS = 20
#: seconds a failed run stays announced in the header (``notify_failures``)
FAILURE_NOTE_SECONDS = 60.0

# service -> its open panels (strong refs: an open panel holds comms and a thread anyway)
_panels: weakref.WeakKeyDictionary[BackgroundJobService, list[JobsPanel]] = (
    weakref.WeakKeyDictionary()
)
_display: weakref.WeakKeyDictionary[BackgroundJobService, JobsPanel] = (
    weakref.WeakKeyDictionary()
)
_registry_lock = threading.Lock()


def close_panels(service: BackgroundJobService) -> int:
    """Close every open panel on ``service``; returns how many were closed."""
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


class JobsPanel(widgets.VBox):
    """A live view of a :class:`~mashroom_jobs.BackgroundJobService`: see, run, stop, pause,
    unschedule, add.

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
        ``flush_interval`` seconds, while the service runs.  Tests pass False
        and call :meth:`flush`.
    flush_interval : float
        Seconds between flushes (0.1 to 3600).
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
        _check_arguments(callables, page_size, auto_flush, flush_interval)
        self._service = service
        self._interval = float(flush_interval)
        self._closed = True  # until fully built: close() then only closes the comm
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._events_shell: Any = None
        # written by observers (any thread), taken by the flush
        self._changes = ChangeTracker(service)
        # owned by the flush
        self._flush_lock = threading.RLock()
        self._flush_count = 0
        self._last_tick = float("-inf")
        self._pages = Pages(page_size)
        self._expanded: set[str] = set()
        # what each visible job published last, and the runs of each expanded one with the
        # history's version they were read at: a tick redraws them without reading again
        self._states: dict[Listed, JobState] = {}
        self._details: dict[str, tuple[object, list[JobInvocation], str]] = {}
        # executed notebooks: the Jupyter server links go to (looked up once), renderings
        self._server: JupyterServer | bool | None = False  # False: not looked up yet
        self._renderings: dict[str, tuple[float, str]] = {}

        #: the store's durable jobs hosted elsewhere, and its hosts (read on the flush)
        self._store_view = StoreView(service)
        self._styles = SharedStyles()
        actions = {"toggle": self._toggle_detail, "run": self._action(self._run),
                   "stop": self._action(self._stop_runs),
                   "pause": self._action(self._pause_or_resume),
                   "unschedule": self._action(self._unschedule)}
        self._rows = [Row(self._styles, actions) for _ in range(page_size)]
        self.header = Header(self._styles, self._on_filter,
                             lambda step: self.go_to_page(self._pages.page + step))
        #: the hosts sharing the job store, alive and gone (hidden without a store)
        self.hosts = widgets.HTML(layout=widgets.Layout(
            display="" if self._store_view.active else "none"))
        self.hosts.add_class("mashroom-jobs-hosts")
        #: the jobs table's column headers (shown while there are rows)
        self.columns = column_headers(self._styles)
        self._rows_box = widgets.VBox()
        self.form = AddJobForm(service, callables, self.flush)
        widgets.VBox.__init__(self, [self.header.box, self.hosts, self.columns, self._rows_box,
                                     self.form.box])
        self.add_class("mashroom-jobs-panel")

        self._changes.attach()
        shell = service.shell
        if callables is None and shell is not None and hasattr(shell, "events"):
            shell.events.register("post_run_cell", self._on_post_run_cell)
            self._events_shell = shell
        with _registry_lock:
            _panels.setdefault(service, []).append(self)

        self._closed = False
        self.flush()
        if auto_flush and not service.is_shut_down:
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
    def flushing(self) -> bool:
        """True while the panel's flusher thread runs."""
        return self._thread is not None and self._thread.is_alive()

    @property
    def flush_count(self) -> int:
        """How many flushes pushed something (for tests and measurements)."""
        return self._flush_count

    @property
    def page(self) -> int:
        """The visible page, from 0."""
        return self._pages.page

    @property
    def page_count(self) -> int:
        """Pages the filtered jobs fill (at least 1)."""
        return self._pages.count

    @property
    def visible_jobs(self) -> tuple[Listed, ...]:
        """The jobs on the visible page, in row order."""
        return tuple(r.job for r in self.rows if r.job is not None)

    @property
    def rows(self) -> list[Row]:
        """The rows on display."""
        return self._rows[: len(self._rows_box.children)]

    def go_to_page(self, page: int) -> None:
        """Show page ``page`` (from 0; clamped to the pages there are)."""
        with self._flush_lock:
            self._pages.go(page)
        self.flush()

    def button(self, tooltip: str) -> widgets.Button:
        """The visible button whose tooltip is exactly ``tooltip`` (tests, automation).

        Raises
        ------
        LookupError
            When no visible button has that tooltip.
        """
        for b in self._buttons():
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
            now_mono = self._service.clock.monotonic()
            dirty, structure, counts, notes = self._changes.take()
            tick = now_mono - self._last_tick >= 1.0
            if (tick or structure) and self._store_view.active:
                stored, changed = self._read_store()
                structure |= stored
                counts |= bool(changed) or stored
                for job in changed:
                    dirty.setdefault(job, None)
            notes = notes or (tick and self._changes.failure is not None)  # it may have expired
            pages = self._pages
            page, pages.moved = pages.moved, False
            if not (dirty or structure or counts or tick or page or notes):
                return False
            if tick:
                self._last_tick = now_mono
            try:
                if notes:
                    self._update_notes()
                self._render(dirty, structure, counts, tick)
            except Exception:  # a flush must never kill the flusher or a click handler
                log.exception("JobsPanel flush failed")
            self._flush_count += 1
            return True

    def close(self) -> None:
        """Detach every observer, stop the flusher and close every widget of the panel."""
        if getattr(self, "_closed", True):  # also guards a half-built panel at GC time
            widgets.VBox.close(self)
            return
        with self._flush_lock:
            self._closed = True
        self._stop.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(5)
        service = self._service
        self._changes.detach()
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
        widgets.VBox.close(self)
        layout.close()

    # -- the flusher -------------------------------------------------------------------

    def _flush_loop(self) -> None:
        while not self._stop.wait(self._interval):
            try:
                self.flush()
            except Exception:
                log.exception("JobsPanel flush failed")
            if self._service.is_shut_down:  # nothing will change any more: say so, and stop
                self._changes.mark(notes=True)
                self.flush()
                return

    def _render(self, dirty: dict[Listed, JobState | None], structure: bool,
                counts: bool, tick: bool) -> None:
        service, pages = self._service, self._pages
        entries: list[Listed] = [*service.jobs, *self._store_view.jobs()]
        if structure:
            pages.refilter(entries, self.header.filter_text)
        if counts or structure:
            self.header.show_counts(
                entries, len(pages.jobs) if self.header.filter_text else None)
        visible = pages.visible()
        states = self._states
        if len(states) > len(visible):  # keep the visible jobs' only
            shown = set(visible)
            for job in [j for j in states if j not in shown]:
                del states[job]
        now, zone = service.now(), service.zone
        version = service.history_version() if self._expanded else None
        for row, job in zip(self._rows, visible):
            changed = job in dirty
            if row.job is not job or changed or tick:
                # what it published last; on coming into view (or a change the panel made
                # itself), what it is now; on a tick, what it showed
                state = dirty.get(job)
                if state is None:
                    cached = states.get(job) if row.job is job and not changed else None
                    state = cached if cached is not None else job.state
                states[job] = state
                detail = None
                if job.name in self._expanded:
                    detail = self._detail(job, now, zone, version, changed)
                state, runs = self._with_store_runs(job, state)
                row.show(job, state, now, zone, detail, runs)
        for row in self._rows[len(visible):]:
            row.job = None
        if len(self._rows_box.children) != len(visible):
            self._rows_box.children = tuple(r.box for r in self._rows[: len(visible)])
        display = "" if visible else "none"
        if self.columns.layout.display != display:
            self.columns.layout.display = display
        self.header.show_pager(pages.page, pages.count)

    def _with_store_runs(self, job: Listed, state: JobState
                         ) -> tuple[JobState, Sequence[JobInvocation]]:
        """A durable job's row shows its runs in the store, whichever host ran them (this
        kernel's memory holds only its own, and starts anew when the job is hosted anew);
        its last run and counts are those of these runs.  Any other job: its own."""
        stored = self._store_view.runs_of(job.name) if job.durable else None
        if not stored or isinstance(job, StoredJob):
            return state, job.history
        last = state.last_invocation
        if last is None or last.timestamp <= stored[-1].timestamp:
            last = stored[-1]
        run_count, failure_count = run_counts(stored)
        return state._replace(last_invocation=last, run_count=run_count,
                              failure_count=failure_count), stored

    def _detail(self, job: Listed, now: datetime, zone: tzinfo, version: object,
                changed: bool) -> str:
        """The expanded part of a row: the job's runs, from the store when there is one
        (this kernel's and the others', marked), else from memory.  Read again only when
        the job published a change or the history's version moved (another process
        wrote to the store)."""
        service = self._service
        cached = self._details.get(job.name)
        if cached is not None and not changed and cached[0] == version:
            _, runs, source = cached
        else:
            source = ""
            try:
                runs = service.history(job.name, DETAIL_RUNS)
            except MashroomJobsError as exc:  # the store cannot be read now: memory will do
                runs = list(reversed(job.history))[:DETAIL_RUNS]
                source = f"Runs in this kernel's memory: {exc}"
            else:
                if service.store_path is not None:
                    source = "Runs from the job store: this kernel's and those of every " \
                             "process sharing it."
            self._details[job.name] = (version, runs, source)
        prefix = self._durable_detail(job, now, zone) if job.durable else ""
        if not any(run.artifact for run in runs):
            return prefix + fmt.detail_html(runs, now, zone, own_origin=service.origin,
                                            source=source)
        if self._server is False:
            self._server = find_server()
        server = self._server if isinstance(self._server, JupyterServer) else None

        def artifact(path: str) -> str:
            return fmt.artifact_html(path, notebook_link(path, server))

        newest = next(run for run in runs if run.artifact)
        preview = ""
        if newest.artifact and notebook_link(newest.artifact, server) is None:
            preview = fmt.preview_html(
                f"Executed notebook of the run at {fmt.when(newest.timestamp, now, zone)}",
                self._rendering(newest.artifact))
        return prefix + fmt.detail_html(runs, now, zone, own_origin=service.origin,
                                        source=source, artifact=artifact, preview=preview)

    def _rendering(self, path: str) -> str:
        """The executed notebook at ``path``, rendered (again only when it changed)."""
        try:
            modified = os.path.getmtime(path)
            cached = self._renderings.get(path)
            if cached is not None and cached[0] == modified:
                return cached[1]
            with open(path, encoding="utf-8") as file:
                text = render_notebook(json.load(file))
        except (OSError, ValueError) as exc:
            return fmt.error_span(f"cannot show {path}: {exc}")
        self._renderings = {path: (modified, text)}  # (the newest one only)
        return text

    def _durable_detail(self, job: Listed, now: datetime,
                        zone: tzinfo) -> str:
        """What the store says of a durable job: its target, who changed it last, and
        the hosts that parked it (with their errors)."""
        info = job.info if isinstance(job, StoredJob) else self._store_view.hosted.get(job.name)
        if info is None:
            return ""
        parts = []
        if info.definition is not None:
            definition = info.definition
            parts.append(f"Durable job: runs <code>{fmt.esc(definition.target.describe())}"
                         f"</code>; catch-up {fmt.esc(definition.catchup.policy)}; version "
                         f"{info.version}, changed {fmt.when(info.changed, now, zone)} by "
                         f"{fmt.esc(fmt.origin_text(info.changed_by))}.")
        if info.error:
            parts.append(fmt.error_span(f"Parked here: {info.error}"))
        for origin, why in info.parked_on.items():
            parts.append(fmt.error_span(f"Parked in {fmt.origin_text(origin)}: {why}"))
        return "".join(f"<div>{part}</div>" for part in parts)

    # -- header --------------------------------------------------------------------------

    def _update_notes(self) -> None:
        service = self._service
        lines = []
        failure = self._changes.failure
        if failure is not None:
            name, run, arrived = failure
            if service.clock.monotonic() - arrived > FAILURE_NOTE_SECONDS \
                    or not service.notify_failures:
                self._changes.failure = None
            else:
                when = fmt.when(run.timestamp, service.now(), service.zone)
                lines.append(fmt.error_span(
                    f"✗ {name} failed at {when}: {fmt.short(run.error_message or 'failed', 120)}"
                ))
        if service.is_shut_down:
            lines.append(fmt.error_span("The service was shut down: nothing runs any more."))
        lines.append(fmt.store_html(service.store_path))
        self.header.show_notes(service.plugins, lines)

    def _on_filter(self, _text: str) -> None:
        with self._flush_lock:
            self._pages.page = 0
        self._changes.mark(structure=True)
        self.flush()

    # -- row actions and the shell's events (the kernel's main thread) ------------------

    def _on_post_run_cell(self, *_args: Any) -> None:
        try:
            self.form.refresh_callables()
        except Exception:
            log.exception("JobsPanel could not refresh the callables")

    def _action(self, action: Callable[[Any], object]) -> Callable[[Any], None]:
        """A row button's handler: the action's error is shown in the panel, never raised
        into another cell."""
        def act(job: Listed | None) -> None:
            if job is None:
                return
            said = self.header.message.value
            try:
                action(job)
            except MashroomJobsError as exc:
                self.header.say(str(exc), error=True)
            except Exception as exc:
                self.header.say(f"{type(exc).__name__}: {exc}", error=True)
            else:
                if self.header.message.value == said:  # (the action said nothing)
                    self.header.say("")
            self._changes.mark(job, counts=True)
            self.flush()

        return act

    def _stored(self) -> Any:
        durable = self._service.durable
        if durable is None:  # (a stored job is only listed with a store)
            raise MashroomJobsError("this kernel has no job store")
        return durable

    def _run(self, job: Listed) -> None:
        if isinstance(job, StoredJob):
            self._stored().run(job.name)  # one of its hosts runs it, within about a second
            self.header.say(f"Asked the hosts of {job.name} to run it now.")
            return
        job.invoke_now()

    def _stop_runs(self, job: Listed) -> None:
        if isinstance(job, StoredJob):
            self._stored().stop(job.name)
            return
        job.stop()

    def _pause_or_resume(self, job: Listed) -> None:
        if isinstance(job, StoredJob):
            (self._stored().resume if job.paused else self._stored().pause)(job.name)
            self._refresh_store()
            return
        if job.paused:
            job.resume()
        else:
            job.pause()

    def _unschedule(self, job: Listed) -> None:
        if isinstance(job, StoredJob):
            self._stored().remove(job.name)
            self._refresh_store()
            return
        if self._service.get_job(job.name) is job:
            self._service.unschedule_job(job.name)

    # -- the store's half --------------------------------------------------------------------

    def _read_store(self) -> tuple[bool, set[Listed]]:
        """Read the store's durable jobs and hosts if due (on the flush): whether the list
        of stored jobs changed, and those to draw again; the hosts are shown."""
        view = self._store_view
        structure, changed = view.read()
        now = self._service.now()
        changed |= view.next_fires(now)
        summary = view.hosts_summary(now, self._service.origin)
        text = summary.html if view.problem is None else (
            fmt.error_span(view.problem) + "<br>" + summary.html)
        if self.hosts.value != text:
            self.hosts.value = text
        return structure, changed

    def _refresh_store(self) -> None:
        """After a click that changed the store: read it again at the next flush."""
        self._store_view.invalidate()
        self._changes.mark(structure=True, counts=True)

    def _toggle_detail(self, job: Listed | None) -> None:
        if job is None:
            return
        with self._flush_lock:
            self._expanded ^= {job.name}
            self._details.pop(job.name, None)
        self._changes.mark(job)
        self.flush()

    # -- bookkeeping ---------------------------------------------------------------------

    def _buttons(self) -> Iterable[widgets.Button]:
        for row in self.rows:
            yield from row.buttons()
        yield from (*self.header.buttons(), *self.form.buttons())

    def _owned_widgets(self) -> list[widgets.Widget]:
        """Every widget model the panel created, children before containers."""
        owned: list[widgets.Widget] = []
        for row in self._rows:
            owned.extend(row.models())
        stack: list[widgets.Widget] = [self.header.box, self.hosts, self.columns,
                                       self._rows_box, self.form.box]
        while stack:  # header and form: walk their trees, with layouts and styles
            w = stack.pop()
            if w not in owned:
                owned.append(w)
            stack.extend(getattr(w, "children", ()))
        extra = [sub for w in owned for attr in ("layout", "style")
                 if isinstance(sub := getattr(w, attr, None), widgets.Widget)]
        seen: set[int] = set()
        result = []
        for w in [*owned, *extra, *self._styles.models()]:
            if id(w) not in seen:
                seen.add(id(w))
                result.append(w)
        return result


def _check_arguments(callables: object, page_size: object, auto_flush: object,
                     flush_interval: object) -> None:
    """JobsPanel's arguments, each bad one an error naming it (before any widget exists)."""
    if callables is not None:
        if not isinstance(callables, Mapping):
            raise TypeError(f"callables must be a mapping of names to functions (such as "
                            f"{{'backup': backup}}) or None, got {type(callables).__name__}")
        for key, value in callables.items():
            if not isinstance(key, str) or not callable(value):
                raise TypeError(f"callables must map names (str) to functions, got "
                                f"{key!r}: {type(value).__name__}")
    if isinstance(page_size, bool) or not isinstance(page_size, int):
        raise TypeError(f"page_size must be a whole number of rows, got {page_size!r}")
    if not 1 <= page_size <= _MAX_PAGE_SIZE:
        raise ValueError(f"page_size must be between 1 and {_MAX_PAGE_SIZE}, got {page_size}")
    check_flag(auto_flush, "auto_flush")
    # NaN compares false with everything: it passed a plain `< 0.1` and spun the flusher
    interval = check_seconds(flush_interval, "flush_interval", low=0.1)
    if interval is not None and interval > 3600:  # (an Event's wait refuses huge ones)
        raise ValueError(f"flush_interval must be at most 3600 seconds, got {interval:g}")
