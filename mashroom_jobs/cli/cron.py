"""``mashroom-jobs cron``: check an expression, describe it, list its next fire times."""

from __future__ import annotations

import argparse
from datetime import datetime

from .options import UsageFailure


def cron_command(args: argparse.Namespace) -> int:
    from ..core.cron import EARLIEST_START, CronSchedule, resolve_zone, zone_name
    from ..core.cron.fields import H_NEEDS_NAME
    from ..core.errors import MashroomJobsError

    if len(args.expression) > 1:
        # unquoted, the shell split it, and may have replaced each * with file names
        raise UsageFailure(
            f"the expression is one argument, got {len(args.expression)} "
            f"({' '.join(args.expression)[:60]!r}): quote it, as in "
            f"mashroom-jobs cron \"0 9 * * 1\" (unquoted, the shell splits it and "
            f"expands each * into file names)")
    try:
        zone = resolve_zone(args.tz)
        schedule = CronSchedule(args.expression[0], zone, name=args.name)
    except MashroomJobsError as exc:
        text = str(exc)
        if text.endswith(H_NEEDS_NAME):  # the command's spelling of the name
            text = text[:-len(H_NEEDS_NAME)] + "H needs the job's name: give --name NAME"
        raise UsageFailure(text) from None
    if args.start is None:
        start = datetime.now(zone)
    else:
        try:
            start = datetime.fromisoformat(args.start)
        except ValueError:
            raise UsageFailure(
                f"invalid --from {args.start!r}: expected an ISO date-time "
                f"such as 2026-03-29T00:00 or 2026-03-29T00:00+01:00"
            ) from None
        if start.tzinfo is None:  # a wall-clock time in the expression's zone
            start = start.replace(tzinfo=zone)
        if start < EARLIEST_START:
            raise UsageFailure(
                f"invalid --from {args.start!r}: fire times are listed after "
                f"{EARLIEST_START.isoformat()} at the earliest"
            )
    times = schedule.fire_times(start, args.n)
    after = f"after {start.isoformat(timespec='seconds')} ({zone_name(zone)})"
    print(f"{schedule.expression}: {schedule.describe()}")
    # fewer times than asked for: the next one would be past 9999-12-31, where datetime ends
    if not times:
        print(f"No fire time {after}: dates end with the year 9999.")
        return 0
    print(f"Next {len(times)} fire time{'s' if len(times) != 1 else ''} {after}:")
    for when in times:
        print(f"  {when.isoformat()}  {when:%a}")
    if len(times) < args.n:
        print("No more fire times: dates end with the year 9999.")
    return 0
