"""Which days of a month a schedule fires on: the two day fields and Vixie cron's rule.

A day matches day-of-month when it is one of its days, the last day (``L``) or the weekday
nearest one of its ``W`` days; it matches day-of-week when it is one of its weekdays, the
n-th such weekday of the month (``#``) or the last one (``5L``). When both fields are
restricted (neither starts with ``*`` or ``?``) a day matching **either** fires (Vixie
cron); otherwise a day must match **both**.
"""

from __future__ import annotations

import functools
from bisect import bisect_right
from datetime import date

from .fields import FieldValues

__all__ = [
    "ALL_DAYS", "ALL_WEEKDAYS", "DayRule", "days_in_month", "longest_month", "nearest_weekday",
]

ALL_DAYS = frozenset(range(1, 32))
ALL_WEEKDAYS = frozenset(range(7))
_LENGTHS = (0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)


def days_in_month(year: int, month: int) -> int:
    """28 to 31 (the Gregorian leap rule)."""
    if month == 2 and year % 4 == 0 and (year % 100 != 0 or year % 400 == 0):
        return 29
    return _LENGTHS[month]


@functools.lru_cache(maxsize=256)
def longest_month(months: frozenset[int]) -> int:
    """The most days any of these months has (29 for February)."""
    return max(29 if m == 2 else _LENGTHS[m] for m in months)


def nearest_weekday(day: int, first: int, length: int) -> int:
    """The weekday (Monday to Friday) nearest ``day`` within its month, as ``15W`` means.

    ``first`` is the weekday of the 1st (cron's numbering: Sunday 0 ... Saturday 6) and
    ``length`` the number of days. A day past the month's end is its last day (``31W`` and
    ``LW`` are the last weekday); a Saturday 1st moves on to Monday the 3rd and a Sunday
    last day back to Friday, never into another month (Quartz's and croniter's rule).
    """
    day = min(day, length)
    weekday = (first + day - 1) % 7
    if weekday == 6:  # Saturday
        return day - 1 if day > 1 else day + 2
    if weekday == 0:  # Sunday
        return day + 1 if day < length else day - 2
    return day


class DayRule:
    """The days of each month on which an expression fires.

    Parameters
    ----------
    dom, dow : FieldValues
        The day-of-month and day-of-week fields.
    day_or : bool
        Vixie cron's rule: True when both fields are restricted, so either one fires.
    """

    __slots__ = ("_months", "_simple", "day_or", "dom", "dow")

    def __init__(self, dom: FieldValues, dow: FieldValues, day_or: bool) -> None:
        self.dom, self.dow, self.day_or = dom, dow, day_or
        # the common case: plain days of the month on every weekday, the same in every month
        simple = not day_or and not dom.extended and not dow.extended and dow.values == ALL_WEEKDAYS
        self._simple = dom.ordered if simple else None
        #: the days of the months asked for lately: a daily job asks ~30 times a month, and a
        #: search often looks at this month and the next
        self._months: dict[tuple[int, int], tuple[int, ...]] = {}

    @property
    def plain(self) -> bool:
        """True when the days are the plain days of the month, whatever the weekday."""
        return self._simple is not None

    def month_days(self, year: int, month: int) -> tuple[int, ...]:
        """The days of this month that fire, in order."""
        length = days_in_month(year, month)
        simple = self._simple
        if simple is not None:
            return simple if simple[-1] <= length else simple[: bisect_right(simple, length)]
        months = self._months
        days = months.get((year, month))
        if days is None:
            days = self.days_for(date(year, month, 1).isoweekday() % 7, length)
            if len(months) >= 64:
                months.clear()
            months[year, month] = days
        return days

    def days_for(self, first: int, length: int) -> tuple[int, ...]:
        """The days that fire in a month of ``length`` days whose 1st is weekday ``first``."""
        dom, dow = self.dom, self.dow
        by_date = {d for d in dom.values if d <= length}
        if dom.last_day:
            by_date.add(length)
        by_date.update(nearest_weekday(day, first, length) for day in dom.nearest)
        by_weekday: set[int] = set()
        for weekday in dow.values:
            by_weekday.update(range((weekday - first) % 7 + 1, length + 1, 7))
        for weekday, nth in dow.nth:
            day = (weekday - first) % 7 + 1 + 7 * (nth - 1)
            if day <= length:
                by_weekday.add(day)
        for weekday in dow.last_weekdays:
            day = (weekday - first) % 7 + 1
            by_weekday.add(day + 7 * ((length - day) // 7))
        return tuple(sorted(by_date | by_weekday if self.day_or else by_date & by_weekday))

    def can_fire(self, months: frozenset[int]) -> bool:
        """Whether any day of these months ever fires.

        Every month starts on every weekday somewhere in the 400-year Gregorian cycle, and
        February has 28 or 29 days: a rule that fires in none of those month shapes never
        fires at all.
        """
        lengths = {_LENGTHS[m] for m in months} | ({29} if 2 in months else set())
        return any(self.days_for(first, length) for length in lengths for first in range(7))
