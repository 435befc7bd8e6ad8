"""The panel's reusable rows: a fixed pool of widgets, shown with whichever job is on the page.

Rows share their Layout and Style models (a row costs about a dozen models, not
three per widget) and write a widget only when a value really changed, in one
message per widget.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime, tzinfo
from typing import TYPE_CHECKING, Any

import ipywidgets as widgets
from ipywidgets import Layout
from ipywidgets.widgets.widget_string import HTMLStyle, LabelStyle

from ..core.records import JobInvocation, JobState
from ..text import STATE_WORDS, status_mark
from . import format as fmt

if TYPE_CHECKING:
    from .control import Listed

__all__ = ["COLUMNS", "Row", "SharedStyles", "column_headers", "set_values"]
#: what the row buttons do, by name; the panel supplies the actions
RowAction = Callable[["Listed | None"], None]


def set_values(widget: widgets.Widget, **values: Any) -> None:
    """Set the traits that changed, in one front-end message (none if nothing changed)."""
    changed = {k: v for k, v in values.items() if getattr(widget, k) != v}
    if not changed:
        return
    with widget.hold_sync():
        for key, value in changed.items():
            setattr(widget, key, value)


class SharedStyles:
    """Layout and style models shared by every row of a panel (bounded model count)."""

    def __init__(self) -> None:
        self.row = Layout(border_bottom="1px solid var(--jp-border-color2, #ddd)", padding="2px 0")
        self.line = Layout(align_items="center", overflow="hidden")
        self.mark = Layout(width="1.6em", min_width="1.6em")
        # The text columns may shrink below their content (a fixed min_width, not the
        # content's; the text wraps): they then shrink in proportion to their widths in
        # every row alike, so the columns stay aligned with the headers however narrow the
        # notebook is
        self.name = Layout(width="12em", min_width="9em")
        self.schedule = Layout(width="18em", min_width="0")
        self.next = Layout(width="11em", min_width="0")
        self.last = Layout(width="18em", min_width="0")
        self.strip = Layout(width="10.5em", min_width="10.5em")
        self.counts = Layout(width="8.5em", min_width="8.5em")
        self.button = Layout(width="32px", min_width="32px", padding="0")
        # four buttons' room whatever a row shows (Stop comes and goes): every row's other
        # columns then have the same room
        self.actions = Layout(width="148px", min_width="148px")
        self.detail = Layout(padding="0 0 4px 2em")
        self.label_style = LabelStyle()
        self.html_style = HTMLStyle()
        self.button_style = widgets.ButtonStyle()

    def models(self) -> list[widgets.Widget]:
        return [v for v in vars(self).values() if isinstance(v, widgets.Widget)]


#: the column headers: (title, the SharedStyles layout of its cells, tooltip)
COLUMNS = (
    ("", "button", ""), ("", "mark", ""), ("job", "name", "The job's name"),
    ("schedule", "schedule", "Its cron expression, in plain English; durable jobs are marked"),
    ("next run", "next", "When it fires next (paused jobs: never)"),
    ("last run", "last", "Its last run (or fire): when, how long, how it ended"),
    ("recent runs", "strip", fmt.strip_legend()),
    ("runs", "counts", "Runs and failures in this process (a durable job: among its recent "
                       "runs in the store, whichever host ran them)"),
    ("actions", "actions", "Run now, stop, pause or resume, unschedule"),
)


def column_headers(s: SharedStyles) -> widgets.HBox:
    """The jobs table's header row, aligned with the rows (the same layouts)."""
    cells = []
    for title, layout, tooltip in COLUMNS:
        label = widgets.HTML(f"<b>{fmt.esc(title)}</b>" if title else "",
                             layout=getattr(s, layout), style=s.html_style)
        if tooltip:
            label.tooltip = tooltip
        cells.append(label)
    box = widgets.HBox(cells, layout=s.line)
    box.add_class("mashroom-jobs-columns")
    return box


class Row:
    """One reusable row: shows whichever job the flush assigns to it."""

    def __init__(self, s: SharedStyles, actions: dict[str, RowAction]) -> None:
        self.job: Listed | None = None
        self._strip_key: object = None

        def button(icon: str, action: str) -> widgets.Button:
            b = widgets.Button(icon=icon, layout=s.button, style=s.button_style)
            b.on_click(lambda _b: actions[action](self.job))
            return b

        self.expand = button("chevron-right", "toggle")
        self.mark = widgets.Label(layout=s.mark, style=s.label_style)
        self.name = widgets.Label(layout=s.name, style=s.label_style)
        self.schedule = widgets.HTML(layout=s.schedule, style=s.html_style)
        self.next = widgets.HTML(layout=s.next, style=s.html_style)
        self.last = widgets.HTML(layout=s.last, style=s.html_style)
        self.strip = widgets.HTML(layout=s.strip, style=s.html_style)
        self.counts = widgets.Label(layout=s.counts, style=s.label_style)
        self.run = button("play", "run")
        self.stop = button("stop", "stop")
        self.pause = button("pause", "pause")
        self.unschedule = button("trash", "unschedule")
        self._cells = (self.expand, self.mark, self.name, self.schedule, self.next, self.last,
                       self.strip, self.counts)
        #: the buttons at the end of the row (run now, stop while running, pause, unschedule)
        self.actions = widgets.HBox([self.run, self.pause, self.unschedule], layout=s.actions)
        self.line = widgets.HBox([*self._cells, self.actions], layout=s.line)
        self.detail = widgets.HTML(layout=s.detail, style=s.html_style)
        self.box = widgets.VBox([self.line], layout=s.row)
        self.box.add_class("mashroom-jobs-row")

    def models(self) -> list[widgets.Widget]:
        return [*self._cells, self.run, self.stop, self.pause, self.unschedule, self.actions,
                self.line, self.detail, self.box]

    def buttons(self) -> tuple[widgets.Button, ...]:
        """The buttons the row shows now."""
        shown = (*self.line.children, *self.actions.children)
        return tuple(b for b in (self.expand, self.run, self.stop, self.pause, self.unschedule)
                     if b in shown)

    def show(self, job: Listed, state: JobState, now: datetime, zone: tzinfo,
             detail: str | None, runs: Sequence[JobInvocation] | None = None) -> None:
        """Write ``job`` into the row as ``state`` (the state it last published) says;
        ``detail`` is the expanded part, or None; ``runs`` its strip's (default: its
        history)."""
        self.job = job
        name = job.name
        durable = job.durable
        error = getattr(job, "error", None)  # a stored durable job parked here
        mark = status_mark(state)
        set_values(self.mark, value="⚠" if error else mark,
                   tooltip="parked here" if error else STATE_WORDS.get(mark, ""))
        set_values(self.name, value=name, tooltip=name if not durable else
                   f"{name} (durable: kept in the job store)")
        schedule = fmt.schedule_html(job, zone)  # type: ignore[arg-type]
        if durable:
            schedule += fmt.durable_badge(getattr(job, "hosted_here", True))
        set_values(self.schedule, value=schedule)
        if error:
            set_values(self.next, value=fmt.error_span(f"parked: {fmt.short(error, 60)}"),
                       tooltip=f"Parked here: {error}")
        else:
            set_values(self.next, value=fmt.next_run_html(state, now, zone), tooltip=None)
        set_values(self.last, value=fmt.last_run_html(state, now, zone),
                   tooltip=fmt.last_run_tooltip(state))
        # the strip changes with its runs only: a new record is a new last one
        if runs is None:
            runs = job.history
        key = (job, runs[-1] if runs else None, len(runs), now.astimezone(zone).date())
        if key != self._strip_key:
            self._strip_key = key
            set_values(self.strip, value=fmt.strip_html(runs, now, zone))
        set_values(self.counts, value=f"runs {state.run_count} · failed {state.failure_count}")
        inactive = not state.active
        set_values(self.run, tooltip=f"Run {name} now", disabled=inactive)
        set_values(self.stop, tooltip=f"Stop {name}")
        if state.paused:
            set_values(self.pause, icon="play-circle", tooltip=f"Resume {name}",
                       disabled=inactive)
        else:
            set_values(self.pause, icon="pause", tooltip=f"Pause {name}", disabled=inactive)
        set_values(self.unschedule, tooltip=f"Unschedule {name}")
        # the Stop button is there while the job runs here; for a durable job always, since
        # another host may be running it (Stop asks every host, through the store)
        stoppable = state.running or durable
        buttons = (self.run, self.stop, self.pause, self.unschedule) if stoppable \
            else (self.run, self.pause, self.unschedule)
        if self.actions.children != buttons:
            self.actions.children = buttons
        if detail is not None:
            set_values(self.expand, icon="chevron-down", tooltip=f"Hide details of {name}")
            set_values(self.detail, value=detail)
            if len(self.box.children) != 2:
                self.box.children = (self.line, self.detail)
        else:
            set_values(self.expand, icon="chevron-right", tooltip=f"Show details of {name}")
            if len(self.box.children) != 1:
                self.box.children = (self.line,)
