"""Plugins as a plain-text table: ``%jobs --plugins`` and ``mashroom-jobs plugins``."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from ..core.cron import CronSchedule
from .declaring import ENTRY_POINT_GROUP, PluginRecord, PluginSpec

__all__ = ["format_plugins_table"]


def format_plugins_table(
    records: Iterable[PluginRecord | PluginSpec],
    now: datetime | None = None,
    *,
    fire_times: int = 0,
) -> str:
    """A plain-text table of plugins: name, state, schedule, and the error of a failed one.

    With ``fire_times`` and ``now``, also the next fire times of each schedule.
    """
    records = list(records)
    if not records:
        return f"No background-job plugins installed (entry-point group {ENTRY_POINT_GROUP!r})."
    lines = [f"Background-job plugins: {len(records)}"]
    width = max(len(r.name) for r in records)
    for record in records:
        state: str
        if isinstance(record, PluginRecord):
            state = record.state
        else:
            state = "error" if record.error else "found"
        cron = record.cron_schedule
        disabled = isinstance(record, PluginRecord) and record.state == "disabled"
        known = (record.bootstrap is not None if isinstance(record, PluginSpec)
                 else record.defaults_known)
        if disabled:
            schedule = "-"  # not loaded: it has no schedule
        elif cron is not None:
            schedule = cron  # the user's override, or the default config
        else:
            schedule = "(once, at load)" if known else "(unknown)"
        lines.append(f"  {record.name.ljust(width)}  {state:<8}  {schedule}")
        if record.error:
            lines.append(f"      error: {record.error}")
            continue
        if cron is not None and not disabled:
            try:
                zone = record.config.get("timezone") or None
                parsed = CronSchedule(cron, zone, name=record.name)
            except Exception:  # shown as the record's error already
                continue
            lines.append(f"      {parsed.describe()}")
            if fire_times and now is not None:
                for when in parsed.fire_times(now, fire_times):
                    lines.append(f"      next: {when:%Y-%m-%d %H:%M:%S %Z}")
        if record.distribution:
            lines.append(f"      from: {record.distribution} ({record.entry_point})")
    return "\n".join(lines)
