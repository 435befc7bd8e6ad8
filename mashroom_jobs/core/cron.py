"""Cron expressions: parsing with precise errors, next fire times, DST rules.

The dialect is the one of the Mashroom background-jobs plugin (node-schedule):
five fields ``minute hour day-of-month month day-of-week``, or six with the
*seconds first*.  Parsing and validation are ours, so that an error names the
field and the value; croniter computes the next *wall-clock* (naive) time; this
module maps wall-clock times to instants with Debian cron's (cronie's)
daylight-saving rules:

* spring forward: every fire time inside the gap becomes one fire at the first
  instant after the gap;
* fall back: a job fires again in the repeated hour only if its seconds (six
  fields), minute or hour field is an interval (``*``, ``*/n`` or ``a/n``);
  fixed-time jobs fire once, in the first pass.
"""

from __future__ import annotations

import calendar
import functools
import os
import re
import threading
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone, tzinfo
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import CroniterBadDateError, croniter

from .errors import InvalidCronExpressionError, InvalidTimezoneError

__all__ = ["EARLIEST_START", "CronSchedule", "local_zone", "resolve_zone", "zone_name"]

UTC = timezone.utc

#: the earliest ``after`` that :meth:`CronSchedule.next_fire_time` accepts: a day into year 1,
#: so that a local time in any zone (UTC offsets are below 24 h) is a date ``datetime`` holds
EARLIEST_START = datetime(1, 1, 2, tzinfo=UTC)
#: croniter looks this many years ahead at most (its max_years_between_matches is 50); a date
#: error of croniter's from closer to the year 9999 means it ran past the end of the calendar
_END_MARGIN_YEARS = 100

MACROS = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}

_MONTHS = {m.lower(): i for i, m in enumerate(calendar.month_abbr) if m}
_DAYS = {"sun": 0, "mon": 1, "tue": 2, "wed": 3, "thu": 4, "fri": 5, "sat": 6}


@dataclass(frozen=True)
class _Field:
    name: str
    low: int
    high: int
    names: dict[str, int] | None = None
    #: how many distinct values the field has (7 weekdays, although 7 is Sunday again)
    size: int = 0

    @property
    def max_step(self) -> int:
        """The largest step that is still true to its word.

        A step as long as the field (``*/60`` minutes) fires once per cycle, i.e. every 60
        minutes, as cron does; a longer one (``*/61``) would fire just as often while saying
        it fires less often, so the parser refuses it.
        """
        return self.size or self.high - self.low + 1


_SECOND = _Field("second", 0, 59)
_MINUTE = _Field("minute", 0, 59)
_HOUR = _Field("hour", 0, 23)
_DOM = _Field("day-of-month", 1, 31)
_MONTH = _Field("month", 1, 12, _MONTHS)
_DOW = _Field("day-of-week", 0, 7, _DAYS, size=7)
_FIVE = (_MINUTE, _HOUR, _DOM, _MONTH, _DOW)
_SIX = (_SECOND, *_FIVE)

_ITEM = re.compile(r"^(?P<base>\*|[^-/]+(?:-[^-/]+)?)(?:/(?P<step>.*))?$")
_OPEN_STEP = re.compile(r"^[0-9]+/[0-9]+$")
# Only ASCII 0-9 are cron digits: str.isdigit() also accepts '¹' (which int() refuses) and
# '٣' or '３' (which int() reads as 3); [0-9] in a str pattern is ASCII only, unlike \d.
_DIGITS = re.compile(r"[0-9]+")
#: the blanks that separate fields, as in cron; str.split() also splits on U+3000, U+00A0...
_BLANKS = " \t\r\n\f\v"
#: more digits than this is out of range of every field (and would reach int()'s digit limit)
_MAX_DIGITS = 9


def _number(text: str) -> int | None:
    """The value of a run of ASCII digits, or None when ``text`` is not one."""
    if _DIGITS.fullmatch(text) is None:
        return None
    digits = text.lstrip("0") or "0"
    return int(digits) if len(digits) <= _MAX_DIGITS else 10**_MAX_DIGITS


def _shown(text: str) -> str:
    """A number as an error message shows it: a long one shortened."""
    return text if len(text) <= 24 else f"{text[:20]}... ({len(text)} digits)"


def _character(c: str) -> str:
    """``U+3000 IDEOGRAPHIC SPACE``: a character an error message cannot just print."""
    name = unicodedata.name(c, "")
    return f"U+{ord(c):04X} {name}" if name else f"U+{ord(c):04X}"


def _not_a_number_hint(text: str) -> str:
    if any(c.isdigit() or c.isnumeric() for c in text) and not text.isascii():
        return " (only the ASCII digits 0-9 are cron digits)"
    return ""


def _value(text: str, field: _Field, expression: str) -> int:
    value = _number(text)
    if value is None:
        if field.names is not None and text.isascii() and text.lower() in field.names:
            return field.names[text.lower()]
        hint = _not_a_number_hint(text)
        if field.names is not None and not hint:
            hint = f" (use {field.low}-{field.high} or names like {next(iter(field.names))!r})"
        raise InvalidCronExpressionError(
            expression, f"{field.name} value {text!r} is not a number{hint}"
        )
    if not field.low <= value <= field.high:
        shown = value if value < 10**_MAX_DIGITS else _shown(text)
        raise InvalidCronExpressionError(
            expression, f"{field.name} {shown} is out of range {field.low}-{field.high}"
        )
    return value


def _parse_field(text: str, field: _Field, expression: str) -> frozenset[int]:
    """Expand one field into the set of values it matches, or raise."""
    if field in (_DOM, _DOW) and text == "?":
        text = "*"
    values: set[int] = set()
    for item in text.split(","):
        match = _ITEM.match(item)
        if not item or match is None:
            raise InvalidCronExpressionError(
                expression, f"{field.name} field {text!r} has an empty or malformed item {item!r}"
            )
        base, step_text = match.group("base"), match.group("step")
        step = 1
        if step_text is not None:
            number = _number(step_text)
            if number is None:
                raise InvalidCronExpressionError(
                    expression,
                    f"{field.name} step {step_text!r} in {item!r} is not a number"
                    f"{_not_a_number_hint(step_text)}",
                )
            if number == 0:
                raise InvalidCronExpressionError(
                    expression,
                    f"{field.name} step {step_text!r} in {item!r} must be a positive whole number",
                )
            if number > field.max_step:
                shown = number if number < 10**_MAX_DIGITS else _shown(step_text)
                raise InvalidCronExpressionError(
                    expression,
                    f"{field.name} step {shown} is larger than the field's range "
                    f"{field.low}-{field.low + field.max_step - 1} "
                    f"(a step is at most {field.max_step})",
                )
            step = number
        if base == "*":
            low, high = field.low, field.high
        elif "-" in base:
            first, last = base.split("-", 1)
            low, high = _value(first, field, expression), _value(last, field, expression)
            if low > high:
                raise InvalidCronExpressionError(
                    expression, f"{field.name} range {base!r} runs backwards ({low} > {high})"
                )
        else:
            low = _value(base, field, expression)
            # 'a/n' (node-schedule, Quartz) means from a to the end in steps of n
            high = field.high if step_text is not None else low
        values.update(range(low, high + 1, step))
    if field is _DOW and 7 in values:
        values.discard(7)
        values.add(0)
    return frozenset(values)


def _is_interval(text: str) -> bool:
    """True for fields that repeat at a regular interval: ``*``, ``*/n``, ``a/n``."""
    return text.startswith("*") or bool(_OPEN_STEP.match(text))


def _render(values: frozenset[int], field: _Field) -> str:
    if len(values) == field.high - field.low + 1 or (
        field is _DOW and values == frozenset(range(7))
    ):
        return "*"
    return ",".join(str(v) for v in sorted(values))


# --- time zones ---------------------------------------------------------------


@functools.lru_cache(maxsize=1)
def local_zone() -> tzinfo:
    """The machine's local time zone, as an IANA zone when it can be found.

    Looks at ``TZ``, ``/etc/timezone`` and the ``/etc/localtime`` link; falls
    back to ``/etc/localtime`` itself, then to the current fixed UTC offset.
    """
    candidates: list[str] = []
    if os.environ.get("TZ"):
        candidates.append(os.environ["TZ"].lstrip(":"))
    try:
        candidates.append(Path("/etc/timezone").read_text().strip())
    except OSError:
        pass
    try:
        target = os.path.realpath("/etc/localtime")
        if "zoneinfo/" in target:
            candidates.append(target.split("zoneinfo/", 1)[1])
    except OSError:
        pass
    for key in candidates:
        try:
            return ZoneInfo(key)
        except (ZoneInfoNotFoundError, ValueError, OSError):
            continue
    try:
        with open("/etc/localtime", "rb") as f:
            return ZoneInfo.from_file(f, key="localtime")
    except OSError:
        pass
    return datetime.now().astimezone().tzinfo or UTC


def resolve_zone(zone: str | tzinfo | None) -> tzinfo:
    """Turn an IANA name, a tzinfo or None (the local zone) into a tzinfo."""
    if zone is None or zone == "":
        return local_zone()
    if isinstance(zone, tzinfo):
        return zone
    if not isinstance(zone, str):
        raise InvalidTimezoneError(
            zone, f"expected an IANA name or tzinfo, got {type(zone).__name__}"
        )
    if zone.upper() == "UTC":
        return ZoneInfo("UTC")
    try:
        return ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise InvalidTimezoneError(zone) from None


def zone_name(zone: tzinfo) -> str:
    """A readable name of a zone: its IANA key when it has one."""
    key = getattr(zone, "key", None)
    if isinstance(key, str):
        return key
    return str(zone)


# The memo and the span are keyed by ``when - _EPOCH``, a timedelta, exact to the
# microsecond. A float timestamp has about 16 significant digits: from the year 3000 on it
# cannot tell 00:59:59.999999 from 01:00, and a memo keyed by it answered one for the other.
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_ONE_DAY = timedelta(days=1)


# --- DST helpers ----------------------------------------------------------------


def _exists(naive: datetime, zone: tzinfo) -> bool:
    back = naive.replace(tzinfo=zone).astimezone(UTC).astimezone(zone)
    return back.replace(tzinfo=None) == naive


def _ambiguous(naive: datetime, zone: tzinfo) -> bool:
    return naive.replace(tzinfo=zone, fold=0).utcoffset() != naive.replace(
        tzinfo=zone, fold=1
    ).utcoffset() and _exists(naive, zone)


def _transition(naive: datetime, zone: tzinfo) -> tuple[datetime, timedelta, timedelta]:
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


# --- the schedule -----------------------------------------------------------------


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

    Raises
    ------
    InvalidCronExpressionError
        When the expression is malformed, out of range, or can never fire.
    InvalidTimezoneError
        When the zone is unknown.

    Examples
    --------
    >>> s = CronSchedule("30 3 * * *", "Europe/Riga")
    >>> s.next_fire_time(datetime(2021, 3, 28, 0, 0, tzinfo=UTC)).isoformat()
    '2021-03-28T04:00:00+03:00'
    """

    __slots__ = (
        "_day_or",
        "_iter",
        "_lock",
        "_memo",
        "_repeats_on_fall_back",
        "_span",
        "_step",
        "_wall_sets",
        "expression",
        "fields",
        "has_seconds",
        "normalized",
        "zone",
    )

    def __init__(self, expression: str, timezone: str | tzinfo | None = None) -> None:
        if not isinstance(expression, str):
            raise InvalidCronExpressionError(
                expression, f"expected a string, got {type(expression).__name__}"
            )
        self.expression = expression.strip(_BLANKS)
        self.zone = resolve_zone(timezone)
        text = self.expression
        odd_blank = next((c for c in text if c.isspace() and c not in _BLANKS), None)
        if odd_blank is not None:
            raise InvalidCronExpressionError(
                expression,
                f"fields are separated by spaces or tabs, found {_character(odd_blank)} "
                f"at position {expression.index(odd_blank)}",
            )
        if text.startswith("@"):
            # isascii: 'K' (U+212A KELVIN SIGN).lower() is 'k'
            if not text.isascii() or text.lower() not in MACROS:
                raise InvalidCronExpressionError(
                    expression,
                    f"unknown macro {text!r}; known: {', '.join(MACROS)}"
                    + (" (to run once at start, schedule with cron_schedule=None)"
                       if text.lower() == "@reboot" else ""),
                )
            text = MACROS[text.lower()]
        parts = text.split()
        if len(parts) not in (5, 6):
            raise InvalidCronExpressionError(
                expression,
                f"expected 5 fields (minute hour day-of-month month day-of-week) "
                f"or 6 with seconds first, got {len(parts)}",
            )
        self.has_seconds = len(parts) == 6
        specs = _SIX if self.has_seconds else _FIVE
        values = [_parse_field(p, f, expression) for p, f in zip(parts, specs)]
        self.fields = dict(zip((f.name for f in specs), values))
        dom_text, dow_text = parts[-3], parts[-1]
        # Vixie cron: the day fields are OR-ed unless one of them starts with '*'
        self._day_or = not (dom_text.startswith(("*", "?")) or dow_text.startswith(("*", "?")))
        if self._day_or and (
            values[-3] == frozenset(range(1, 32)) or values[-1] == frozenset(range(7))
        ):
            # OR with a field that matches every day ('0 0 15 * 0-6') is every day: say so,
            # so croniter (which reads a full field as '*' and then ANDs) and _matches agree
            values[-3], values[-1] = frozenset(range(1, 32)), frozenset(range(7))
            self.fields = dict(zip((f.name for f in specs), values))
            self._day_or = False
        self._check_can_fire(expression)
        time_fields = parts[:3] if self.has_seconds else parts[:2]
        self._repeats_on_fall_back = any(_is_interval(p) for p in time_fields)
        self.normalized = " ".join(_render(v, f) for v, f in zip(values, specs))
        try:
            self._iter = croniter(
                self.normalized,
                datetime(2000, 1, 1),
                day_or=self._day_or,
                second_at_beginning=self.has_seconds,
            )
        except Exception as exc:  # our parser should have caught it; never leak croniter's types
            raise InvalidCronExpressionError(expression, str(exc)) from None
        self._lock = threading.Lock()
        self._memo: dict[timedelta, datetime | None] = {}
        # (from, to, result): next_fire_time(t) is result for every t in [from, to)
        self._span: tuple[timedelta, timedelta, datetime] | None = None
        # the fast path of _next_naive: the smallest unit, and the sets to match
        self._step = timedelta(seconds=1) if self.has_seconds else timedelta(minutes=1)
        fields = self.fields
        self._wall_sets = (
            fields.get("second"), fields["minute"], fields["hour"],
            fields["day-of-month"], fields["month"], fields["day-of-week"],
            self._day_or,
        )

    def _check_can_fire(self, expression: str) -> None:
        days, months = self.fields["day-of-month"], self.fields["month"]
        dow_restricted = self.fields["day-of-week"] != frozenset(range(7))
        if self._day_or and dow_restricted:
            return  # any matching weekday fires
        longest = max(29 if m == 2 else calendar.monthrange(2001, m)[1] for m in months)
        if min(days) > longest:
            names = ", ".join(calendar.month_abbr[m] for m in sorted(months))
            raise InvalidCronExpressionError(
                expression,
                f"it can never fire: day-of-month {min(days)} does not exist in {names}",
            )

    # -- wall-clock arithmetic (croniter) --

    def _next_naive(self, naive: datetime) -> datetime | None:
        # Fast path: the very next second (or minute) matches, as it always does for
        # "* * * * * *" or "* * * * *"; checking that costs ~1 µs, croniter ~15-300 µs.
        if self.has_seconds:
            candidate = naive.replace(microsecond=0) + self._step
        else:
            candidate = naive.replace(second=0, microsecond=0) + self._step
        if self._matches(candidate):
            return candidate
        with self._lock:
            self._iter.set_current(naive, force=True)
            try:
                result: datetime = self._iter.get_next(datetime)
            except CroniterBadDateError:
                return None
            except (OverflowError, ValueError):
                # searching past 9999-12-31 raises assorted errors ("year 10000 is out of
                # range", then "'*' is not in list"); anywhere else it is a real bug
                if naive.year < datetime.max.year - _END_MARGIN_YEARS:
                    raise
                raise OverflowError(f"no wall-clock time after {naive} within year 9999") from None
        return result

    def _matches(self, wall: datetime) -> bool:
        """Whether the expression fires at this wall-clock time (Vixie day rule)."""
        seconds, minutes, hours, days, months, weekdays, day_or = self._wall_sets
        if (seconds is not None and wall.second not in seconds) or wall.minute not in minutes \
                or wall.hour not in hours or wall.month not in months:
            return False
        day_ok = wall.day in days
        weekday_ok = wall.isoweekday() % 7 in weekdays
        if day_or:  # both day fields restricted: either one (Vixie cron)
            return day_ok or weekday_ok
        return day_ok and weekday_ok

    def _instant(self, naive: datetime | None) -> datetime | None:
        """The instant a wall-clock fire time stands for (first pass, or after a gap)."""
        if naive is None:
            return None
        zone = self.zone
        if not _exists(naive, zone):
            instant, _, _ = _transition(naive, zone)
            return instant.astimezone(zone)
        return naive.replace(tzinfo=zone, fold=0)

    # -- public --

    @property
    def timezone(self) -> str:
        """The name of the zone the expression is evaluated in."""
        return zone_name(self.zone)

    def next_fire_time(self, after: datetime) -> datetime | None:
        """The first fire time strictly after ``after`` (an aware datetime).

        Returns an aware datetime in the schedule's zone, or None when the
        expression has no further fire time. Fire times end where ``datetime``
        does: the last is at most 9999-12-31 23:59:59 UTC and in the zone, so
        ``0 0 29 2 *`` has none after 29 February 9996.

        Raises
        ------
        ValueError
            When ``after`` is naive, or earlier than :data:`EARLIEST_START`
            (0001-01-02 00:00 UTC).
        """
        if after.tzinfo is None or after.utcoffset() is None:
            raise ValueError(f"after must be timezone-aware, got {after!r}")
        if after < EARLIEST_START:
            raise ValueError(
                f"after must be at or after {EARLIEST_START.isoformat()} (fire times in the "
                f"first day of year 1 are not computed), got {after.isoformat()}"
            )
        key = after - _EPOCH
        span = self._span
        if span is not None and span[0] <= key < span[1]:
            return span[2]
        memo = self._memo
        try:
            return memo[key]
        except KeyError:
            pass
        try:
            result = self._compute_next(after)
        except OverflowError:
            # the next fire time, or the UTC instant of one, would be after 9999-12-31 23:59:59
            # (after >= EARLIEST_START, so the start of the calendar never overflows)
            result = None
        if len(memo) > 512:
            memo.clear()
        memo[key] = result
        if result is not None:
            self._remember_span(after, key, result)
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
        if _ambiguous(local.replace(tzinfo=None, fold=0), zone) or _ambiguous(
            result.replace(tzinfo=None, fold=0), zone
        ):
            return
        self._span = (key, end, result)

    def _compute_next(self, after: datetime) -> datetime | None:
        zone = self.zone
        local = after.astimezone(zone)
        naive = local.replace(tzinfo=None, fold=0)
        if not _ambiguous(naive, zone):
            return self._instant(self._next_naive(naive))
        # inside a repeated (fall-back) hour
        transition, before, after_offset = _transition(naive, zone)
        start = (transition + after_offset).replace(tzinfo=None)
        end = (transition + before).replace(tzinfo=None)
        tick = timedelta(microseconds=1)
        if local.fold == 0:  # first pass
            candidate = self._next_naive(naive)
            if candidate is not None and candidate < end:
                return candidate.replace(tzinfo=zone, fold=0)
            if self._repeats_on_fall_back:
                again = self._next_naive(start - tick)
                if again is not None and again < end:
                    return again.replace(tzinfo=zone, fold=1)
            return self._instant(candidate)
        # second pass: only interval jobs fire again before the hour ends
        start_from = naive if self._repeats_on_fall_back else max(naive, end - tick)
        candidate = self._next_naive(start_from)
        if candidate is not None and candidate < end:
            return candidate.replace(tzinfo=zone, fold=1)
        return self._instant(candidate)

    def fire_times(self, start: datetime, n: int) -> list[datetime]:
        """The next ``n`` fire times strictly after ``start`` (fewer if it stops)."""
        return list(self._iter_fire_times(start, n))

    def _iter_fire_times(self, start: datetime, n: int) -> Iterator[datetime]:
        current: datetime | None = start
        for _ in range(n):
            assert current is not None
            current = self.next_fire_time(current)
            if current is None:
                return
            yield current

    def describe(self) -> str:
        """Plain English, e.g. ``Every 5 minutes`` (cron-descriptor)."""
        return describe(self.expression)

    def __repr__(self) -> str:
        return f"CronSchedule({self.expression!r}, timezone={self.timezone!r})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, CronSchedule):
            return NotImplemented
        return (self.normalized, self._day_or, self.zone) == (
            other.normalized,
            other._day_or,
            other.zone,
        )

    def __hash__(self) -> int:
        return hash((self.normalized, self._day_or, zone_name(self.zone)))


@functools.lru_cache(maxsize=1024)
def describe(expression: str) -> str:
    """Plain-English description of a valid expression."""
    from cron_descriptor import Options, get_description

    text = MACROS.get(expression.lower(), expression).replace("?", "*")
    parts = text.split()
    try:
        options = Options()
        options.use_24hour_time_format = True
        options.verbose = False
        description: str = get_description(text, options)
    except Exception:  # cron-descriptor rejects some valid forms; the expression still speaks
        return expression
    dom, dow = parts[-3], parts[-1]
    if dom != "*" and dow != "*" and (dom.startswith("*") or dow.startswith("*")):
        # cron-descriptor does not know the Vixie rule: here both day fields must match
        description += " (only on days matching both the day-of-month and the day-of-week)"
    return description


@functools.lru_cache(maxsize=4096)
def _shared(expression: str, zone: tzinfo) -> CronSchedule:
    return CronSchedule(expression, zone)


def shared_schedule(expression: str, zone: str | tzinfo | None = None) -> CronSchedule:
    """A CronSchedule shared by every caller with the same expression and zone.

    Jobs on the same schedule then share the parse and the memo of next fire
    times, so 10,000 jobs on ``* * * * * *`` compute one next time per second.
    """
    resolved = resolve_zone(zone)
    try:
        key = expression.strip(_BLANKS) if isinstance(expression, str) else expression
        return _shared(key, resolved)
    except TypeError:  # an unhashable tzinfo: no sharing
        return CronSchedule(expression, resolved)
