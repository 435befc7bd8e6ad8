"""The panel's "Add a job" form: a name, a checked cron expression, a zone, what the job runs
(a function of the notebook, a ``"module:function"`` reference, a command line, or a
notebook file with parameters), and whether it is durable (kept in the job store and run
by whichever host claims each fire)."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Iterable, Mapping
from datetime import tzinfo
from typing import TYPE_CHECKING, Any

import ipywidgets as widgets

from ..core.cron import CronSchedule, resolve_zone, zone_name
from ..core.errors import MashroomJobsError, TargetError
from ..targets import Command, FunctionRef
from . import format as fmt
from .notebook_fields import NotebookFields

if TYPE_CHECKING:
    from ..service import BackgroundJobService

__all__ = ["CHOOSE", "KINDS", "AddJobForm", "user_callables"]

#: the callable menu's first entry, selected until the user picks a function
CHOOSE = "(choose a function)"
#: what a job can run, as the form offers it: (label, kind)
KINDS = (("a function", "function"),
         ("a module:function reference", "reference"),
         ("a command", "command"),
         ("a notebook", "notebook"))


def user_callables(namespace: Mapping[str, Any], hidden: Iterable[str]) -> dict[str, Any]:
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


@functools.lru_cache(maxsize=1)
def _zone_options() -> tuple[str, ...]:
    import zoneinfo

    return tuple(sorted(zoneinfo.available_timezones()))


class AddJobForm:
    """The form's widgets and handlers; ``box`` is what the panel shows.

    Parameters
    ----------
    service : BackgroundJobService
        Where the job is scheduled.
    callables : mapping, optional
        What the callable menu offers; default: the functions of the shell's namespace.
    on_scheduled : callable
        Called after a job was scheduled (the panel flushes).
    """

    def __init__(self, service: BackgroundJobService,
                 callables: Mapping[str, Callable[..., Any]] | None,
                 on_scheduled: Callable[[], object]) -> None:
        self._service = service
        self._explicit = dict(callables) if callables is not None else None
        self._on_scheduled = on_scheduled
        zone_default = zone_name(service.zone)
        self.name = widgets.Text(description="Name", placeholder="nightly-report")
        self.cron = widgets.Text(description="Cron", placeholder="*/5 * * * *",
                                 continuous_update=True)
        self.zone = widgets.Combobox(
            description="Time zone", placeholder=f"{zone_default} (default)",
            options=_zone_options(), ensure_option=False,
        )
        # what the job runs, and the input of each kind (only the chosen one shown; hidden
        # widgets stay in the tree, so closing the panel closes them too)
        self.runs = widgets.Dropdown(description="Runs", options=KINDS, value="function")
        self.callable = widgets.Dropdown(description="Callable", options=[])
        self.reference = widgets.Text(description="Function",
                                      placeholder="package.module:function")
        self.command = widgets.Text(description="Command", placeholder="rsync -a src/ dst/")
        self.notebook = NotebookFields()
        has_store = service.durable is not None
        self.durable = widgets.Checkbox(
            value=False, indent=False, disabled=not has_store,
            description="durable: kept in the job store, run by any host",
            tooltip=("Kept in the job store: it outlives this kernel, runs in whichever host "
                     "(kernel, Jupyter server, mashroom-jobs run) claims each fire") if has_store
            else "Durable jobs need a job store (c.BackgroundJobService.store)")
        self.schedule = widgets.Button(description="Schedule", icon="plus",
                                       tooltip="Schedule the job", button_style="primary")
        self.feedback = widgets.HTML()
        self.message = widgets.HTML()
        self.cron.observe(self._on_change, names="value")
        self.zone.observe(self._on_change, names="value")
        self.name.observe(self._on_change, names="value")  # H is hashed from the name
        self.runs.observe(self._on_kind, names="value")
        self.schedule.on_click(lambda _b: self.submit())
        wrap = widgets.Layout(flex_flow="row wrap")
        self._inputs: dict[str, widgets.DOMWidget] = {
            "function": self.callable, "reference": self.reference, "command": self.command,
            "notebook": self.notebook.box}
        self.box = widgets.VBox(
            [widgets.HTML("<b>Add a job</b>"),
             widgets.HBox([self.name, self.cron], layout=wrap),
             widgets.HBox([self.zone, self.runs], layout=widgets.Layout(flex_flow="row wrap")),
             widgets.HBox([*self._inputs.values(), self.durable, self.schedule],
                          layout=widgets.Layout(flex_flow="row wrap", align_items="center")),
             self.feedback, self.message],
            layout=widgets.Layout(margin="8px 0 0 0"),
        )
        self._on_change(None)
        self._on_kind(None)
        self.refresh_callables()

    def _on_kind(self, _change: Any) -> None:
        """Show the input of the chosen kind only."""
        for kind, widget in self._inputs.items():
            display = None if kind == self.runs.value else "none"
            if widget.layout.display != display:
                widget.layout.display = display

    def _target(self) -> Any:
        """What the job runs, from the form (the targets check what is typed); raises
        ValueError saying what is missing or wrong."""
        kind = self.runs.value
        if kind == "function":
            fn = self.callable.value
            if fn is None:
                raise ValueError(
                    "Choose the function the job runs"
                    + ("." if len(self.callable.options) > 1 else
                       ": define one in the notebook, or pass callables={...} to JobsPanel."))
            return fn
        if kind == "reference":
            text = self.reference.value.strip()
            try:
                return FunctionRef(text)
            except TargetError:
                raise ValueError("Give the function as 'package.module:function' (a function "
                                 f"of an importable module), got {text!r}.") from None
        if kind == "command":
            text = self.command.value.strip()
            if not text:
                raise ValueError("Give the command line to run (e.g. 'rsync -a src/ dst/').")
            try:
                return Command(text)
            except TargetError as exc:
                raise ValueError(f"Cannot read the command: {exc}") from None
        return self.notebook.target()

    def _parsed(self) -> tuple[CronSchedule | None, tzinfo]:
        """The form's schedule and zone; raises MashroomJobsError with a user message."""
        zone_text = self.zone.value.strip()
        zone = resolve_zone(zone_text) if zone_text else self._service.zone
        expr = self.cron.value.strip()
        # H is hashed from the job's name: the same value the service will resolve
        return (CronSchedule(expr, zone, name=self.name.value.strip() or None) if expr
                else None), zone

    def _on_change(self, _change: Any) -> None:
        """Check the expression as it is typed: its description and next fire times."""
        try:
            schedule, zone = self._parsed()
        except MashroomJobsError as exc:
            self.feedback.value = fmt.error_span(exc)
            return
        if schedule is None:
            self.feedback.value = "<i>No expression: the job runs once, right away.</i>"
            return
        times = ", ".join(f"{t:%Y-%m-%d %H:%M:%S}"
                          for t in schedule.fire_times(self._service.now(), 3))
        self.feedback.value = (
            f"{fmt.esc(schedule.describe())} — next: {fmt.esc(times or 'never')}"
            f" <small>({fmt.esc(zone_name(zone))})</small>"
        )

    def refresh_callables(self) -> None:
        """Offer the callables there are now (the user defines functions as they go)."""
        if self._explicit is not None:
            found = self._explicit
        else:
            shell = self._service.shell
            ns = getattr(shell, "user_ns", None)
            hidden = getattr(shell, "user_ns_hidden", {})
            found = user_callables(ns, hidden) if isinstance(ns, Mapping) else {}
        # first an empty choice: a click on Schedule must not pick a function for the user
        options: list[tuple[str, Any]] = [(CHOOSE, None), *found.items()]
        current = self.callable.label
        old = [(label, id(value)) for label, value in self.callable.options]
        if old == [(label, id(value)) for label, value in options]:
            return
        self.callable.options = options
        if current in found:
            self.callable.label = current
        else:
            self.callable.index = 0

    def submit(self) -> None:
        """Schedule the job the form describes; every error lands in the form."""
        name = self.name.value.strip()
        durable = bool(self.durable.value)
        try:
            if not name:
                raise ValueError("Give the job a name.")
            if self._service.get_job(name) is not None or self._stored(name):
                raise ValueError(
                    f"A job named {name!r} already exists: choose another name, "
                    "or unschedule it first."
                )
            target = self._target()
            schedule, zone = self._parsed()
            if durable and schedule is None:
                raise ValueError("A durable job runs on a schedule: give a cron expression.")
            self._service.schedule_job(name, schedule, target,
                                       timezone=None if schedule else zone, durable=durable)
        except Exception as exc:
            text = str(exc) if isinstance(exc, (MashroomJobsError, ValueError)) else (
                f"{type(exc).__name__}: {exc}"
            )
            self.message.value = fmt.error_span(text)
            return
        self.message.value = (f"Scheduled {fmt.esc(name)}"
                              + (" as a durable job (in the job store)." if durable else "."))
        self.name.value = ""
        self._on_scheduled()

    def _stored(self, name: str) -> bool:
        """Whether ``name`` is a durable job (False when the store cannot be read: the
        scheduling that follows says why)."""
        try:
            return self._service.is_durable(name)
        except MashroomJobsError:
            return False

    def buttons(self) -> tuple[widgets.Button, ...]:
        return (self.schedule,)
