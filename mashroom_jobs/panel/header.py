"""The panel's header: totals, the filter, the pager, notes and the last action's result."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import ipywidgets as widgets

from . import format as fmt
from .rows import SharedStyles, set_values

if TYPE_CHECKING:
    from .control import Listed

__all__ = ["Header"]


class Header:
    """The header's widgets; ``box`` is what the panel shows.

    Parameters
    ----------
    styles : SharedStyles
        The panel's shared layouts (the pager's buttons look like the rows').
    on_filter : callable
        Called with the filter's new text as it is typed.
    on_page : callable
        Called with -1 or +1 when a pager button is clicked.
    """

    def __init__(self, styles: SharedStyles, on_filter: Callable[[str], None],
                 on_page: Callable[[int], None]) -> None:
        self.counts = widgets.HTML()
        self.filter = widgets.Text(
            placeholder="filter by name or schedule", continuous_update=True,
            layout=widgets.Layout(width="18em"),
        )
        self.filter.observe(lambda change: on_filter(change["new"]), names="value")
        self.previous_page = widgets.Button(icon="chevron-left", tooltip="Previous page",
                                            layout=styles.button, style=styles.button_style)
        self.next_page = widgets.Button(icon="chevron-right", tooltip="Next page",
                                        layout=styles.button, style=styles.button_style)
        self.previous_page.on_click(lambda _b: on_page(-1))
        self.next_page.on_click(lambda _b: on_page(+1))
        self.page_label = widgets.Label()
        #: notes on the plugins, the store and the service
        self.notes = widgets.HTML()
        #: the result of the last click (an error in red)
        self.message = widgets.HTML()
        top = widgets.HBox(
            [self.counts, self.filter, self.previous_page, self.page_label, self.next_page],
            layout=widgets.Layout(align_items="center", flex_flow="row wrap"),
        )
        self.box = widgets.VBox([top, self.notes, self.message])

    @property
    def filter_text(self) -> str:
        return str(self.filter.value).strip().lower()

    def buttons(self) -> tuple[widgets.Button, ...]:
        return (self.previous_page, self.next_page)

    def show_counts(self, jobs: Sequence[Listed], matching: int | None) -> None:
        """Jobs, running, paused and failing; with a filter, how many match."""
        running = paused = failing = 0
        for job in jobs:
            running += job.running
            paused += job.paused
            failing += job.failing
        n = len(jobs)
        text = (f"<b>{n:,} job{'s' if n != 1 else ''}</b> · {running:,} running · "
                f"{paused:,} paused · {failing:,} failing")
        if matching is not None:
            text += f" · {matching:,} match"
        set_values(self.counts, value=text)

    def show_notes(self, plugins: Sequence[Any], lines: Sequence[str] = ()) -> None:
        """The plugins loaded, disabled and failed (each failed one with its error), then
        ``lines`` (HTML) about the service."""
        notes = []
        if plugins:
            states = [r.state for r in plugins]
            parts = [f"{states.count(s)} {s}" for s in ("loaded", "disabled", "failed")
                     if states.count(s)]
            failed = "".join(
                f"<li><b>{fmt.esc(r.name)}</b>: "
                f"{fmt.error_span(fmt.short(r.error or 'failed', 160))}</li>"
                for r in plugins if r.state == "failed"
            )
            notes.append("Plugins: " + " · ".join(parts)
                         + (f'<ul style="margin:0">{failed}</ul>' if failed else ""))
        notes.extend(lines)
        set_values(self.notes, value="<br>".join(notes))

    def show_pager(self, page: int, pages: int) -> None:
        set_values(self.page_label, value=f"Page {page + 1} of {pages:,}")
        set_values(self.previous_page, disabled=page == 0)
        set_values(self.next_page, disabled=page >= pages - 1)

    def say(self, text: str, error: bool = False) -> None:
        """Show the result of an action (an error in red); empty clears it."""
        self.message.value = (fmt.error_span(text) if error else fmt.esc(text)) if text else ""
