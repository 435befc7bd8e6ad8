"""From wall-clock fire times to instants, with Debian cron's (cronie's) DST rules.

* spring forward: every fire time inside the gap becomes one fire at the first instant
  after the gap;
* fall back: a job fires again in the repeated hour only if its seconds (six fields),
  minute or hour field is an interval (``*``, ``*/n``, ``a/n`` or ``H/n``); fixed-time
  jobs fire once, in the first pass.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta, timezone, tzinfo
from zoneinfo import ZoneInfo

__all__ = ["ambiguous", "exists", "next_instant", "transition"]

UTC = timezone.utc
_TICK = timedelta(microseconds=1)
_LAST_YEAR = datetime.max.year

#: the next matching wall time strictly after a wall time, or None
NextWall = Callable[[datetime], "datetime | None"]
#: zones that follow PEP 495: a wall time in a gap or a repeated hour has a different
#: offset with fold=1 than with fold=0, and any other wall time the same
_FOLD_AWARE = (ZoneInfo, timezone)


def exists(naive: datetime, zone: tzinfo) -> bool:
    """Whether a wall time happens in the zone (False inside a spring-forward gap)."""
    back = naive.replace(tzinfo=zone).astimezone(UTC).astimezone(zone)
    return back.replace(tzinfo=None) == naive


def ambiguous(naive: datetime, zone: tzinfo) -> bool:
    """Whether a wall time happens twice (inside a fall-back repeated hour)."""
    return naive.replace(tzinfo=zone, fold=0).utcoffset() != naive.replace(
        tzinfo=zone, fold=1
    ).utcoffset() and exists(naive, zone)


def transition(naive: datetime, zone: tzinfo) -> tuple[datetime, timedelta, timedelta]:
    """The offset transition around a wall time that is in a gap or repeated.

    Returns the transition instant (UTC) and the offsets before and after it.
    """
    a = naive.replace(tzinfo=zone, fold=0).astimezone(UTC)
    b = naive.replace(tzinfo=zone, fold=1).astimezone(UTC)
    lo_dt, hi_dt = min(a, b), max(a, b)
    before = lo_dt.astimezone(zone).utcoffset()
    after = hi_dt.astimezone(zone).utcoffset()
    assert before is not None and after is not None
    lo, hi = int(lo_dt.timestamp()), int(hi_dt.timestamp()) + 1
    while hi - lo > 1:  # smallest second whose offset is no longer `before`
        mid = (lo + hi) // 2
        if datetime.fromtimestamp(mid, UTC).astimezone(zone).utcoffset() == before:
            lo = mid
        else:
            hi = mid
    return datetime.fromtimestamp(hi, UTC), before, after


def _instant(naive: datetime | None, zone: tzinfo) -> datetime | None:
    """The instant a wall-clock fire time stands for (first pass, or after a gap)."""
    if naive is None:
        return None
    if not exists(naive, zone):
        instant, _, _ = transition(naive, zone)
        return instant.astimezone(zone)
    return naive.replace(tzinfo=zone, fold=0)


def next_instant(after: datetime, zone: tzinfo, next_wall: NextWall,
                 repeats_on_fall_back: bool) -> tuple[datetime | None, timedelta | None]:
    """The first fire time strictly after the instant ``after``, in ``zone``.

    Parameters
    ----------
    after : datetime
        An aware datetime.
    zone : tzinfo
        The zone whose wall clock the expression reads.
    next_wall : callable
        The expression's next wall time strictly after a wall time (or None).
    repeats_on_fall_back : bool
        Whether the expression fires again in a repeated hour (an interval job).

    Returns
    -------
    (datetime or None, timedelta or None)
        The fire time, and how long after ``after`` it is when it is known that no offset
        change lies between them (both wall times are plain, in no gap and not repeated,
        with the same offset); None says nothing.

    Raises
    ------
    OverflowError
        When the answer would lie after the last instant ``datetime`` holds.
    """
    local = after.astimezone(zone)
    naive = local.replace(tzinfo=None)
    if isinstance(zone, _FOLD_AWARE) and local.fold == 0:
        # The common case in two offset look-ups per end instead of round trips through UTC.
        offset = local.utcoffset()
        if offset == local.replace(fold=1).utcoffset():
            wall = next_wall(naive)
            if wall is None or wall.year == _LAST_YEAR:
                # in the last year the instant may lie past what UTC can hold: let the round
                # trip through UTC find out (OverflowError)
                return _instant(wall, zone), None
            fire = wall.replace(tzinfo=zone)
            fire_offset = fire.utcoffset()
            if fire_offset == fire.replace(fold=1).utcoffset():
                return fire, (wall - naive if fire_offset == offset else None)
            return _instant(wall, zone), None
    naive = naive.replace(fold=0)
    return _next_instant(local, naive, zone, next_wall, repeats_on_fall_back), None


def _next_instant(local: datetime, naive: datetime, zone: tzinfo, next_wall: NextWall,
                  repeats_on_fall_back: bool) -> datetime | None:
    if not ambiguous(naive, zone):
        return _instant(next_wall(naive), zone)
    # inside a repeated (fall-back) hour
    moment, before, after_offset = transition(naive, zone)
    start = (moment + after_offset).replace(tzinfo=None)
    end = (moment + before).replace(tzinfo=None)
    if local.fold == 0:  # first pass
        candidate = next_wall(naive)
        if candidate is not None and candidate < end:
            return candidate.replace(tzinfo=zone, fold=0)
        if repeats_on_fall_back:
            again = next_wall(start - _TICK)
            if again is not None and again < end:
                return again.replace(tzinfo=zone, fold=1)
        return _instant(candidate, zone)
    # second pass: only interval jobs fire again before the hour ends
    start_from = naive if repeats_on_fall_back else max(naive, end - _TICK)
    candidate = next_wall(start_from)
    if candidate is not None and candidate < end:
        return candidate.replace(tzinfo=zone, fold=1)
    return _instant(candidate, zone)
