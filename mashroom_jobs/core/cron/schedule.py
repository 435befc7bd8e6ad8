"""CronSchedule: one expression in one zone, and its fire times; shared_schedule."""

from __future__ import annotations

import functools
from collections.abc import Iterator
from datetime import date, datetime, timedelta, timezone, tzinfo

from ..errors import InvalidCronExpressionError
from .describing import describe_parsed
from .dst import ambiguous, next_instant
from .fields import DOM, DOW, FieldValues
from .parsing import BLANKS, Parsed, may_hash, name_hash, parse_expression
from .zones import resolve_zone, zone_name

__all__ = ["EARLIEST_START", "CronSchedule", "shared_schedule"]

UTC = timezone.utc

#: the earliest ``after`` that :meth:`CronSchedule.next_fire_time` accepts: a day into year 1,
#: so that a local time in any zone (UTC offsets are below 24 h) is a date ``datetime`` holds
EARLIEST_START = datetime(1, 1, 2, tzinfo=UTC)

# The memo and the span are keyed by ``when - _EPOCH``, a timedelta, exact to the
# microsecond. A float timestamp has about 16 significant digits: from the year 3000 on it
# cannot tell 00:59:59.999999 from 01:00, and a memo keyed by it answered one for the other.
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_ONE_DAY = timedelta(days=1)
_EARLIEST_KEY = EARLIEST_START - _EPOCH
_FIELD_NAMES = ("second", "minute", "hour", DOM.name, "month", DOW.name)


class CronSchedule:
    """One cron expression in one time zone: validation, fire times, description.

    Parameters
    ----------
    expression : str
        Five fields (``minute hour day-of-month month day-of-week``), six with
        the seconds first, or a macro (``@hourly``, ``@daily``...).
    timezone : str or tzinfo, optional
        IANA name or tzinfo in which the expression is evaluated; None is the
        machine's local zone.
    name : str, optional
        The job's name, which ``H`` items are hashed from (ignored without ``H``).

    Raises
    ------
    InvalidCronExpressionError
        When the expression is malformed, out of range, can never fire, or has ``H``
        but no name.
    InvalidTimezoneError
        When the zone is unknown.
    TypeError
        When ``name`` is neither a string nor None.

    Examples
    --------
    >>> s = CronSchedule("30 3 * * *", "Europe/Riga")
    >>> s.next_fire_time(datetime(2021, 3, 28, 0, 0, tzinfo=UTC)).isoformat()
    '2021-03-28T04:00:00+03:00'
    >>> CronSchedule("H 3 * * *", "UTC", name="backup").normalized
    '24 3 * * *'
    """

    __slots__ = ("_memo", "_parsed", "_span", "expression", "name", "zone")

    def __init__(self, expression: str, timezone: str | tzinfo | None = None, *,
                 name: str | None = None) -> None:
        if not isinstance(expression, str):
            raise InvalidCronExpressionError(
                expression, f"expected a string, got {type(expression).__name__}"
            )
        if name is not None and not isinstance(name, str):
            raise TypeError(f"name must be a string or None, got {type(name).__name__}")
        self.expression = expression.strip(BLANKS)
        self.name = name
        self.zone = resolve_zone(timezone)
        crc = name_hash(name) if name and may_hash(expression) else None
        self._parsed: Parsed = parse_expression(expression, crc)
        self._memo: dict[timedelta, datetime | None] = {}
        # (from, to, result): next_fire_time(t) is result for every t in [from, to)
        self._span: tuple[timedelta, timedelta, datetime] | None = None

    # -- what the expression says --

    @property
    def timezone(self) -> str:
        """The name of the zone the expression is evaluated in."""
        return zone_name(self.zone)

    @property
    def has_seconds(self) -> bool:
        """Whether the expression has six fields, the seconds first."""
        return self._parsed.has_seconds

    @property
    def hashed(self) -> bool:
        """Whether the expression has ``H`` items, resolved from :attr:`name`."""
        return self._parsed.hashed

    @property
    def normalized(self) -> str:
        """The expression in one canonical spelling: ``H`` resolved, values sorted."""
        return self._parsed.normalized

    @property
    def fields(self) -> dict[str, frozenset[int]]:
        """The plain values of each field (day fields without their L, W and # items)."""
        fields: tuple[FieldValues, ...] = self._parsed.fields
        names = _FIELD_NAMES if self.has_seconds else _FIELD_NAMES[1:]
        return dict(zip(names, (f.values for f in fields[-len(names):])))

    def describe(self) -> str:
        """Plain English, e.g. ``Every 5 minutes`` (cron-descriptor, where it is right)."""
        return describe_parsed(self.expression, self._parsed)

    # -- fire times --

    def _next_naive(self, naive: datetime) -> datetime | None:
        """The next wall time the expression names after ``naive`` (DST is not its concern)."""
        return self._parsed.walls.next_after(naive)

    def next_fire_time(self, after: datetime) -> datetime | None:
        """The first fire time strictly after ``after`` (an aware datetime).

        Returns an aware datetime in the schedule's zone, or None when the
        expression has no further fire time. Fire times end where ``datetime``
        does: the last is at most 9999-12-31 23:59:59 UTC and in the zone, so
        ``0 0 29 2 *`` has none after 29 February 9996.

        Raises
        ------
        TypeError
            When ``after`` is not a datetime (a ``date`` or a string, say).
        ValueError
            When ``after`` is naive, or earlier than :data:`EARLIEST_START`
            (0001-01-02 00:00 UTC).
        """
        if not isinstance(after, datetime):
            raise _not_a_datetime("after", after)
        if after.tzinfo is None or after.utcoffset() is None:
            raise ValueError(f"after must be timezone-aware, got {after!r}")
        key = after - _EPOCH
        if key < _EARLIEST_KEY:
            raise ValueError(
                f"after must be at or after {EARLIEST_START.isoformat()} (fire times in the "
                f"first day of year 1 are not computed), got {after.isoformat()}"
            )
        span = self._span
        if span is not None and span[0] <= key < span[1]:
            return span[2]
        memo = self._memo
        try:
            return memo[key]
        except KeyError:
            pass
        try:
            result, until = next_instant(after, self.zone, self._next_naive,
                                         self._parsed.repeats_on_fall_back)
        except OverflowError:
            # the next fire time, or the UTC instant of one, would be after 9999-12-31 23:59:59
            # (after >= EARLIEST_START, so the start of the calendar never overflows)
            result, until = None, None
        if len(memo) > 512:
            memo.clear()
        memo[key] = result
        if result is not None:
            if until is None:
                self._remember_span(after, key, result)
            elif until <= _ONE_DAY:  # no offset change in between: the span holds
                self._span = (key, key + until, result)
        return result

    def _remember_span(self, after: datetime, key: timedelta, result: datetime) -> None:
        """Remember that nothing fires in [after, result), so every caller asking for
        the next time after "now" in that span (10,000 jobs being scheduled) gets it free.

        Only for spans of at most a day with the same UTC offset at both ends and no
        repeated (fall-back) wall time at either end: no offset change lies inside, so
        wall-clock time is a plain shift of real time there and the answer is the same
        for every point of the span.
        """
        end = result - _EPOCH
        if end - key > _ONE_DAY:
            return
        zone = self.zone
        local = after.astimezone(zone)
        if local.utcoffset() != result.utcoffset():
            return
        if ambiguous(local.replace(tzinfo=None, fold=0), zone) or ambiguous(
            result.replace(tzinfo=None, fold=0), zone
        ):
            return
        self._span = (key, end, result)

    def fire_times(self, start: datetime, n: int) -> list[datetime]:
        """The next ``n`` fire times strictly after ``start`` (fewer if it stops).

        Raises
        ------
        TypeError
            When ``start`` is not a datetime or ``n`` not a whole number.
        ValueError
            As :meth:`next_fire_time`; or when ``n`` is negative.
        """
        if not isinstance(start, datetime):
            raise _not_a_datetime("start", start)
        if isinstance(n, bool) or not isinstance(n, int):
            raise TypeError(f"n must be a whole number of fire times, got {n!r}")
        if n < 0:
            raise ValueError(f"n must be a whole number >= 0, got {n}")
        return list(self._iter_fire_times(start, n))

    def _iter_fire_times(self, start: datetime, n: int) -> Iterator[datetime]:
        current: datetime | None = start
        for _ in range(n):
            assert current is not None
            current = self.next_fire_time(current)
            if current is None:
                return
            yield current

    # -- identity --

    def __repr__(self) -> str:
        name = f", name={self.name!r}" if self.hashed else ""
        return f"CronSchedule({self.expression!r}, timezone={self.timezone!r}{name})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, CronSchedule):
            return NotImplemented
        return (self.normalized, self._parsed.day_or, self.zone) == (
            other.normalized, other._parsed.day_or, other.zone,
        )

    def __hash__(self) -> int:
        return hash((self.normalized, self._parsed.day_or, zone_name(self.zone)))


def _not_a_datetime(what: str, value: object) -> TypeError:
    hint = (" (a date has no time of day: use datetime(y, m, d, tzinfo=...))"
            if isinstance(value, date) else "")
    return TypeError(f"{what} must be a timezone-aware datetime, got "
                     f"{type(value).__name__} {value!r:.80}{hint}")


@functools.lru_cache(maxsize=4096)
def _shared(expression: str, zone: tzinfo, name: str | None) -> CronSchedule:
    return CronSchedule(expression, zone, name=name)


def shared_schedule(expression: str, zone: str | tzinfo | None = None,
                    name: str | None = None) -> CronSchedule:
    """A CronSchedule shared by every caller with the same expression and zone.

    Jobs on the same schedule then share the parse and the memo of next fire
    times, so 10,000 jobs on ``* * * * * *`` compute one next time per second.
    The job's name is part of the key only when the expression has ``H`` items:
    then each name has its own schedule.
    """
    if name is not None and not isinstance(name, str):
        raise TypeError(f"name must be a string or None, got {type(name).__name__}")
    resolved = resolve_zone(zone)
    if not isinstance(expression, str):
        return CronSchedule(expression, resolved, name=name)
    key = expression.strip(BLANKS)
    try:
        return _shared(key, resolved, name if name and may_hash(key) else None)
    except TypeError:  # an unhashable tzinfo: no sharing
        return CronSchedule(expression, resolved, name=name)
