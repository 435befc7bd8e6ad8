"""The next wall-clock time an expression names, computed over its field sets.

Wall-clock (naive) time only: which instant a wall time stands for, in a gap or in a
repeated hour, is :mod:`.dst`'s business. The search goes month by month and day by day
through the matching values, never second by second, so one answer costs a few
microseconds however far away it is.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from datetime import datetime, timedelta

from .days import DayRule

__all__ = ["WallTimes"]

_LAST_YEAR = datetime.max.year
_SECOND = timedelta(seconds=1)
_MINUTE = timedelta(minutes=1)


class WallTimes:
    """The wall-clock times an expression fires at.

    Parameters
    ----------
    seconds, minutes, hours, months : tuple of int
        The matching values of each field, sorted (``(0,)`` seconds for five fields).
    days : DayRule
        The matching days of each month.
    has_seconds : bool
        Whether the expression has a seconds field: then fire times are whole seconds
        after the given time, else whole minutes.
    """

    __slots__ = ("days", "has_seconds", "hours", "minutes", "months", "seconds")

    def __init__(self, seconds: tuple[int, ...], minutes: tuple[int, ...],
                 hours: tuple[int, ...], months: tuple[int, ...], days: DayRule,
                 has_seconds: bool) -> None:
        self.seconds, self.minutes, self.hours = seconds, minutes, hours
        self.months, self.days = months, days
        self.has_seconds = has_seconds

    def next_after(self, naive: datetime) -> datetime | None:
        """The first matching wall time strictly after ``naive``, or None after the year 9999.

        Raises
        ------
        OverflowError
            When ``naive`` is in the last second (or minute) that ``datetime`` holds.
        """
        if self.has_seconds:
            start = naive.replace(microsecond=0) + _SECOND
        else:
            start = naive.replace(second=0, microsecond=0) + _MINUTE
        year, month, day = start.year, start.month, start.day
        months = self.months
        while year <= _LAST_YEAR:
            if month in months:
                days = self.days.month_days(year, month)
                at = bisect_left(days, day)
                if at < len(days) and days[at] == day:
                    time = self._time_from(start.hour, start.minute, start.second)
                    if time is not None:
                        return datetime(year, month, day, *time)
                    at += 1
                if at < len(days):
                    return datetime(year, month, days[at], self.hours[0], self.minutes[0],
                                    self.seconds[0])
            later = bisect_right(months, month)
            if later < len(months):
                month = months[later]
            else:
                month, year = months[0], year + 1
            day = 0  # a later month: its first matching day, at the first time
        return None

    def _time_from(self, hour: int, minute: int, second: int) -> tuple[int, int, int] | None:
        """The first matching time of day at or after this one, or None (the next day)."""
        hours, minutes, seconds = self.hours, self.minutes, self.seconds
        h = bisect_left(hours, hour)
        if h == len(hours):
            return None
        if hours[h] == hour:
            m = bisect_left(minutes, minute)
            if m < len(minutes):
                if minutes[m] == minute:
                    s = bisect_left(seconds, second)
                    if s < len(seconds):
                        return hour, minute, seconds[s]
                    m += 1
                if m < len(minutes):
                    return hour, minutes[m], seconds[0]
            h += 1
            if h == len(hours):
                return None
        return hours[h], minutes[0], seconds[0]
