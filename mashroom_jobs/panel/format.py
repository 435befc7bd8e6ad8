"""What the panel says about a job, as strings: pure functions, testable without widgets.

Each takes the values it shows (a job's published state, a run, "now" and the panel's
zone) and returns text or a small HTML snippet.  Every repeated snippet has one helper.
"""

from __future__ import annotations

import html
import math
import os
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime, tzinfo
from typing import TYPE_CHECKING

from ..core.cron import zone_name
from ..core.records import JobInvocation, JobState, Outcome

if TYPE_CHECKING:
    from ..job import BackgroundJob

__all__ = [
    "artifact_html", "detail_html", "durable_badge", "duration", "error_span", "esc",
    "host_line", "last_run_html", "last_run_tooltip", "next_run_html", "origin_text",
    "outcome_html", "preview_html", "relative", "schedule_html", "short", "store_html",
    "strip_html", "strip_legend", "when",
]

ERROR_COLOR = "var(--jp-error-color1, #c62828)"
SUCCESS_COLOR = "var(--jp-success-color1, green)"
MUTED_COLOR = "var(--jp-ui-font-color2, #666)"


def esc(text: object) -> str:
    """HTML-escape any value's text."""
    return html.escape(str(text), quote=False)


def colored(text: str, color: str) -> str:
    """``text`` (already HTML) in a colour."""
    return f'<span style="color:{color}">{text}</span>'


def error_span(text: object) -> str:
    """An error message, escaped, in the theme's error colour."""
    return colored(esc(text), ERROR_COLOR)


def relative(seconds: float) -> str:
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


def when(moment: datetime, now: datetime, zone: tzinfo) -> str:
    """A time of today as ``HH:MM:SS``, of another day with its date."""
    local = moment.astimezone(zone)
    if local.date() == now.astimezone(zone).date():
        return f"{local:%H:%M:%S}"
    return f"{local:%Y-%m-%d %H:%M}"


def duration(ms: float) -> str:
    return f"{ms:.0f} ms" if ms < 10_000 else f"{ms / 1000:.1f} s"


def short(text: str, limit: int = 80) -> str:
    """One line of at most ``limit`` characters."""
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def origin_text(origin: str | None) -> str:
    """Who ran a fire, briefly: ``kernel 3f2a…`` when a kernel id is known."""
    if not origin:
        return "another process"
    if " kernel " in origin:
        return "kernel " + short(origin.rsplit(" kernel ", 1)[1], 9)
    return origin


def store_html(path: str | None) -> str:
    """The header's note on where runs are kept."""
    if path is None:
        return colored("Store: in memory (runs are kept in this kernel only)", MUTED_COLOR)
    return colored(f"Store: <code>{esc(path)}</code>", MUTED_COLOR)


def outcome_html(run: JobInvocation, limit: int = 80) -> str:
    """``ok``, the error, who ran it instead, or why it did not run; with the Dask worker
    when there was one."""
    outcome = run.outcome
    if outcome is Outcome.ELSEWHERE:
        text = colored(esc(f"ran in {origin_text(run.origin)}"), MUTED_COLOR)
    elif outcome is Outcome.OK:
        text = colored("ok", SUCCESS_COLOR)
    elif outcome.failed:
        text = error_span(short(run.error_message or "failed", limit))
    else:  # skipped, missed
        text = colored(esc(short(run.error_message or outcome.value, limit)), MUTED_COLOR)
    if run.worker:
        text += f" <small>on {esc(run.worker)}</small>"
    return text


def schedule_html(job: BackgroundJob, zone: tzinfo) -> str:
    """The expression and its plain English, with the job's zone when not the panel's."""
    if job.cron_schedule is None:
        return "<i>runs once</i>"
    text = f"<code>{esc(job.cron_schedule)}</code> {esc(job.description)}"
    if job.timezone != zone_name(zone):
        text += f" <small>({esc(job.timezone)})</small>"
    return text


def next_run_html(state: JobState, now: datetime, zone: tzinfo) -> str:
    nxt = state.next_invocation
    if nxt is None:
        return "paused" if state.paused else "—"
    return f"{when(nxt, now, zone)} <small>({relative((nxt - now).total_seconds())})</small>"


def last_run_html(state: JobState, now: datetime, zone: tzinfo) -> str:
    last = state.last_invocation
    if last is None:
        text = "<i>never</i>"
    elif not last.outcome.ran:
        text = f"{when(last.timestamp, now, zone)} · {outcome_html(last, 40)}"
    else:
        text = (f"{when(last.timestamp, now, zone)} · {duration(last.execution_time_ms)} · "
                + outcome_html(last, 40))
    if state.running:
        # a notebook job says which cell it is in (its first line is the tooltip's)
        word = f"running: {esc(state.progress)}" if state.progress else "running…"
        return f"<b>{word}</b> " + text
    if state.waiting:
        return "<b>waiting for a thread…</b> " + text
    return text


def last_run_tooltip(state: JobState) -> str:
    if state.running and state.progress:
        return f"{state.progress}: {state.progress_detail}" if state.progress_detail \
            else state.progress
    last = state.last_invocation
    if last is None:
        return "never run"
    if last.outcome is Outcome.ELSEWHERE:
        return f"ran in {last.origin or 'another process'}"
    if last.outcome is Outcome.OK:
        return "ok"
    return last.error_message or last.outcome.value


def _table(header: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    head = "".join(f"<th align=left>{esc(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{cell}</td>" for cell in row) + "</tr>"
                   for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _pre_block(title: str, text: str, height: str) -> str:
    return (f"<div><b>{esc(title)}</b></div>"
            f"<pre style='margin:0;max-height:{height};overflow:auto'>{esc(text)}</pre>")


def artifact_html(path: str, link: str | None) -> str:
    """A file a run kept (a notebook job's executed notebook), by name: a link that opens
    it when there is one, with its whole path as the tooltip."""
    name, title = esc(os.path.basename(path)), html.escape(path, quote=True)
    if link is None:
        return f'<span title="{title}">{name}</span>'
    return (f'<a href="{html.escape(link, quote=True)}" target="_blank" title="{title}" '
            f'style="text-decoration:underline">{name}</a>')


def detail_html(runs: Sequence[JobInvocation], now: datetime, zone: tzinfo,
                own_origin: str | None = None, *, source: str = "",
                artifact: Callable[[str], str] | None = None, preview: str = "") -> str:
    """A job's recent runs, newest first (time, trigger, duration, result, who ran it
    when not this process, and the file it kept: ``artifact(path)`` makes its cell), what
    the last run printed and the last failure's traceback; then ``preview`` (HTML: the
    newest executed notebook, when it cannot be linked to)."""
    if not runs:
        return "<i>No runs yet.</i>"
    marked = any(r.origin and r.origin != own_origin for r in runs)
    kept = any(r.artifact for r in runs)
    header = ["time", "trigger", "duration", "result"] + (["ran in"] if marked else []) \
        + (["notebook"] if kept else [])
    rows = []
    for run in runs:
        trigger = run.trigger + (f" {run.attempt}" if run.attempt > 1 else "")
        row = [when(run.timestamp, now, zone), esc(trigger),
               duration(run.execution_time_ms) if run.outcome.ran else "—",
               outcome_html(run, 120)]
        if marked:
            row.append("this kernel" if not run.origin or run.origin == own_origin
                       else esc(origin_text(run.origin)))
        if kept:
            row.append("—" if not run.artifact else artifact(run.artifact) if artifact
                       else artifact_html(run.artifact, None))
        rows.append(row)
    parts = [_table(header, rows)]
    if source:
        parts.append(f"<div><small>{esc(source)}</small></div>")
    printed = next((r for r in runs if r.output), None)
    if printed is not None:
        parts.append(_pre_block(f"Output of the run at {when(printed.timestamp, now, zone)}:",
                                printed.output[-5000:], "12em"))
    failed = next((r for r in runs if r.traceback), None)
    if failed is not None:
        parts.append(_pre_block(f"Traceback of the run at {when(failed.timestamp, now, zone)}:",
                                failed.traceback or "", "16em"))
    return "".join(parts) + preview


def preview_html(title: str, body: str) -> str:
    """A rendering (HTML) under a title, folded until clicked."""
    return (f"<details><summary><b>{esc(title)}</b></summary>"
            f"<div style='max-height:30em;overflow:auto'>{body}</div></details>")


# --- the control room: recent runs as a strip, durable jobs, hosts -----------------------

#: each outcome's colour in a strip (the theme's where it has one) and its word in the legend
STRIP_COLORS: dict[Outcome, str] = {
    Outcome.OK: "var(--jp-success-color1, #388e3c)",
    Outcome.FAILED: "var(--jp-error-color1, #d32f2f)",
    Outcome.STOPPED: "var(--jp-warn-color1, #f57c00)",
    Outcome.TIMED_OUT: "#8e24aa",
    Outcome.SKIPPED: "var(--jp-layout-color4, #9e9e9e)",
    Outcome.MISSED: "transparent",
    Outcome.ELSEWHERE: "var(--jp-brand-color3, #90caf9)",
}
#: the most runs a strip shows (a job's in-memory history keeps 20 by default)
STRIP_RUNS = 20
_STRIP_HEIGHT = 18  # px


def strip_cell(run: JobInvocation, longest_ms: float, now: datetime, zone: tzinfo) -> str:
    """One run as a cell: its outcome's colour, a height that grows with its duration
    (against the longest of the strip, on a log scale), its time and outcome on hover."""
    outcome = run.outcome
    if outcome.ran and longest_ms > 0:
        share = math.log1p(max(run.execution_time_ms, 0.0)) / math.log1p(longest_ms)
        height = round(_STRIP_HEIGHT * (0.3 + 0.7 * min(1.0, share)))
    else:
        height = round(_STRIP_HEIGHT * 0.45)
    title = f"{when(run.timestamp, now, zone)} · {outcome.value}"
    if outcome.ran:
        title += f" · {duration(run.execution_time_ms)}"
    if outcome is Outcome.ELSEWHERE:
        title += f" in {origin_text(run.origin)}"
    elif outcome is not Outcome.OK and run.error_message:
        title += f": {short(run.error_message, 120)}"
    elif run.origin:
        title += f" · {origin_text(run.origin)}"
    border = ("border:1px dashed var(--jp-error-color1, #d32f2f);box-sizing:border-box;"
              if outcome is Outcome.MISSED else "")
    return (f'<span class="mashroom-jobs-cell" data-outcome="{outcome.name.lower()}" '
            f'title="{html.escape(title)}" style="display:inline-block;width:7px;'
            f'height:{height}px;margin-right:1px;background:{STRIP_COLORS[outcome]};{border}'
            f'vertical-align:bottom"></span>')


def strip_html(runs: Sequence[JobInvocation], now: datetime, zone: tzinfo) -> str:
    """A job's recent runs, oldest first, as a strip of cells (at most
    :data:`STRIP_RUNS`, the newest); empty when it has none."""
    shown = list(runs)[-STRIP_RUNS:]
    if not shown:
        return '<span style="color:var(--jp-ui-font-color2, #666)"><i>no runs</i></span>'
    longest = max((r.execution_time_ms for r in shown if r.outcome.ran), default=0.0)
    cells = "".join(strip_cell(run, longest, now, zone) for run in shown)
    return (f'<div class="mashroom-jobs-strip" style="display:flex;align-items:flex-end;'
            f'height:{_STRIP_HEIGHT}px;line-height:0">{cells}</div>')


def strip_legend() -> str:
    """What the strip's colours mean (the column header's tooltip)."""
    words = {Outcome.OK: "green: ok", Outcome.FAILED: "red: failed",
             Outcome.STOPPED: "orange: stopped", Outcome.TIMED_OUT: "purple: timed out",
             Outcome.SKIPPED: "grey: skipped (the previous run was still going)",
             Outcome.MISSED: "dashed red outline: missed (no process ran it)",
             Outcome.ELSEWHERE: "light blue: ran in another process"}
    return ("The latest runs, oldest to newest; a taller cell took longer. "
            + "; ".join(words.values()) + ". Hover a cell for its time and outcome.")


def host_line(kind: str, origin: str, alive: bool, started: datetime, seen: datetime,
              jobs: int, parked: int, now: datetime, zone: tzinfo, here: bool,
              extra: str = "") -> str:
    """One host of the store: alive (●, with when it started) or gone (○, with its last
    heartbeat).  Nothing in it changes while the host stays alive: a quiet panel sends
    nothing."""
    mark = colored("●", SUCCESS_COLOR) if alive else colored("○", MUTED_COLOR)
    state = (f"alive, started {when(started, now, zone)}" if alive
             else f"gone, last seen {when(seen, now, zone)}")
    text = (f"{mark} <b>{esc(kind)}</b> {esc(origin_text(origin))}"
            f"{' <i>(this process)</i>' if here else ''} · {state} · {jobs} durable "
            f"job{'s' if jobs != 1 else ''}")
    if parked:
        text += " · " + error_span(f"{parked} parked")
    if extra:
        text += f" · {extra}"
    return text if alive else colored(text, MUTED_COLOR)


def durable_badge(hosted_here: bool) -> str:
    """The mark of a durable job in its schedule cell."""
    where = "hosted here too" if hosted_here else "run by the hosts of the store"
    return (f' <small title="Durable: kept in the job store, {where}; its buttons act '
            f'through the store" style="border:1px solid var(--jp-border-color1, #999);'
            f'border-radius:3px;padding:0 3px">durable</small>')
