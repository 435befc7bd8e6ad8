"""Our next-time layer against two references, on random expressions and instants.

* croniter, with our DST rules on top: the schedule as it ran before it had its own
  next-time layer (croniter computed every wall-clock time). Fire times must be identical,
  instant, offset and fold, for the plain dialect, for L, W and # where croniter reads
  them as we document, and for H (croniter's ``hash_id`` hash is ours).
* a brute-force oracle that walks day by day and checks each day against the documented
  rules: for every shape, including those croniter reads differently from us (Vixie's OR
  with ``#``, ``W`` or ``5L``; plain weekdays mixed with ``#``; ``W`` in lists).
"""

from __future__ import annotations

import calendar
import itertools
import re
from datetime import date, datetime, timedelta, timezone
from typing import Any

import pytest
from croniter import CroniterBadDateError, croniter
from hypothesis import HealthCheck, assume, event, example, given, settings
from hypothesis import strategies as st

from mashroom_jobs import InvalidCronExpressionError
from mashroom_jobs.core.cron import CronSchedule

UTC = timezone.utc


class CroniterReference(CronSchedule):
    """croniter computes each wall-clock time; our DST layer maps it to an instant."""

    __slots__ = ()

    def _next_naive(self, naive: datetime) -> datetime | None:
        parsed = self._parsed
        iterator = croniter(self.normalized, datetime(2000, 1, 1), day_or=parsed.day_or,
                            second_at_beginning=parsed.has_seconds)
        iterator.set_current(naive, force=True)
        try:
            result: datetime = iterator.get_next(datetime)
        except CroniterBadDateError:
            return None
        except (OverflowError, ValueError):
            # searching past 9999-12-31 raises assorted errors; anywhere else it is a bug
            if naive.year < 9899:
                raise
            raise OverflowError(f"no wall-clock time after {naive}") from None
        return result


# --- strategies -----------------------------------------------------------------------------


def _item(low: int, high: int) -> st.SearchStrategy[str]:
    value = st.integers(low, high)
    return st.one_of(
        st.just("*"),
        st.integers(1, max(1, (high - low) // 2)).map(lambda n: f"*/{n}"),
        value.map(str),
        st.tuples(value, value).map(lambda p: f"{min(p)}-{max(p)}"),
        st.tuples(value, st.integers(1, 20)).map(lambda p: f"{p[0]}/{p[1]}"),
        st.tuples(value, value, st.integers(1, 9)).map(
            lambda p: f"{min(p[:2])}-{max(p[:2])}/{p[2]}"),
        st.lists(value, min_size=2, max_size=4).map(lambda v: ",".join(map(str, v))),
    )


_DAY = st.integers(1, 31)
_WEEKDAY = st.one_of(st.integers(0, 7).map(str),
                     st.sampled_from(["SUN", "mon", "Tue", "WED", "thu", "Fri", "sat"]))
#: day-of-month items croniter reads as we do
_DOM_EXTENDED = st.one_of(
    st.sampled_from(["L", "l", "LW", "lw"]),
    _DAY.map(lambda d: f"{d}W"),
    _DAY.map(lambda d: f"{d},L"),
    _DAY.map(lambda d: f"{d}-L"),
)
#: day-of-week items croniter reads as we do: # and last weekdays, never mixed with plain days
_DOW_EXTENDED = st.one_of(
    st.tuples(_WEEKDAY, st.integers(1, 5)).map(lambda p: f"{p[0]}#{p[1]}"),
    st.lists(st.tuples(st.integers(0, 6), st.integers(1, 5)), min_size=2, max_size=3).map(
        lambda items: ",".join(f"{d}#{n}" for d, n in items)),
    st.integers(0, 7).map(lambda d: f"{d}L"),
    st.integers(0, 7).map(lambda d: f"L{d}"),
    st.sampled_from(["FRIL", "monL"]),
)
#: what croniter does not read as we do, for the oracle only
_DOM_OURS = st.one_of(
    _DOM_EXTENDED,
    st.lists(st.one_of(_DAY.map(str), _DAY.map(lambda d: f"{d}W"), st.just("L"),
                       st.just("LW")), min_size=2, max_size=4).map(",".join),
)
_DOW_OURS = st.one_of(
    _DOW_EXTENDED,
    st.lists(st.one_of(_WEEKDAY, st.tuples(_WEEKDAY, st.integers(1, 5)).map(
        lambda p: f"{p[0]}#{p[1]}"), st.integers(0, 7).map(lambda d: f"{d}L")),
        min_size=2, max_size=4).map(",".join),
)
_NAMES = st.text(min_size=1, max_size=30)


def _hash_item(low: int, high: int) -> st.SearchStrategy[str]:
    bounds = st.integers(low, high - 1).flatmap(
        lambda a: st.tuples(st.just(a), st.integers(a + 1, high)))
    return st.one_of(
        st.just("H"),
        st.integers(1, high - low + 1).map(lambda n: f"H/{n}"),
        bounds.map(lambda p: f"H({p[0]}-{p[1]})"),
        st.tuples(bounds, st.integers(1, high - low + 1)).map(
            lambda p: f"H({p[0][0]}-{p[0][1]})/{p[1]}"),
    )


@st.composite
def expressions(draw: st.DrawFn, dom: Any = None, dow: Any = None, hashed: bool = False
                ) -> str:
    """Five or six fields; ``dom``/``dow`` replace the day fields' items, ``hashed`` adds
    H items to every field."""
    def field(low: int, high: int, instead: Any = None) -> str:
        items = _item(low, high) if instead is None else instead
        if hashed:
            items = st.one_of(items, _hash_item(low, 6 if high == 7 else high))
        return draw(items)

    fields = [field(0, 59), field(0, 23), field(1, 31, dom), field(1, 12), field(0, 7, dow)]
    if draw(st.booleans()):
        fields.insert(0, field(0, 59))
    return " ".join(fields)


#: the other day field: often unrestricted (then both must match), else ORed
_DOM_OTHER = st.one_of(st.sampled_from(["*", "?"]), st.integers(1, 15).map(lambda n: f"*/{n}"),
                       _item(1, 31))
_DOW_OTHER = st.one_of(st.sampled_from(["*", "?"]), st.integers(1, 7).map(lambda n: f"*/{n}"),
                       _item(0, 7))


def extended(dom: Any, dow: Any) -> st.SearchStrategy[str]:
    """Expressions with L, W or # in day-of-month, day-of-week, or both."""
    return st.one_of(expressions(dom=dom, dow=_DOW_OTHER), expressions(dom=_DOM_OTHER, dow=dow),
                     expressions(dom=dom, dow=dow))


ZONES = ["UTC", "Europe/Berlin", "Australia/Sydney", "America/New_York"]
# 2026 transitions (UTC): Berlin Mar 29 01:00 / Oct 25 01:00, New York Mar 8 07:00 /
# Nov 1 06:00, Sydney Apr 4 16:00 (back) / Oct 3 16:00 (forward); and ordinary days
ANCHORS = [
    datetime(2026, 3, 29, 1, tzinfo=UTC), datetime(2026, 10, 25, 1, tzinfo=UTC),
    datetime(2026, 3, 8, 7, tzinfo=UTC), datetime(2026, 11, 1, 6, tzinfo=UTC),
    datetime(2026, 4, 4, 16, tzinfo=UTC), datetime(2026, 10, 3, 16, tzinfo=UTC),
    datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 2, 28, 23, 59, 59, tzinfo=UTC),
    datetime(2026, 6, 30, 12, 34, 56, tzinfo=UTC), datetime(2026, 12, 31, 23, 59, tzinfo=UTC),
    datetime(2028, 2, 28, 22, tzinfo=UTC), datetime(2100, 2, 28, 22, tzinfo=UTC),
]


@st.composite
def instants(draw: st.DrawFn) -> datetime:
    anchor = draw(st.sampled_from(ANCHORS))
    offset = draw(st.integers(-3 * 3600, 3 * 3600))
    micro = draw(st.sampled_from([0, 0, 1, 500_000, 999_999]))
    return anchor + timedelta(seconds=offset, microseconds=micro)


def instant(when: datetime | None) -> tuple[float, Any, Any] | None:
    """What a fire time means: the instant, its offset and its zone (``==`` between two
    datetimes of one zone ignores ``fold``, so it cannot tell the two passes apart)."""
    if when is None:
        return None
    return when.timestamp(), when.utcoffset(), when.tzinfo


def build(cls: type[CronSchedule], expression: str, zone: str, name: str | None = None
          ) -> CronSchedule:
    try:
        return cls(expression, zone, name=name)
    except InvalidCronExpressionError:
        assume(False)
        raise


def shapes(schedule: CronSchedule) -> None:
    """Label the example with the shapes it exercises (``--hypothesis-show-statistics``)."""
    parsed = schedule._parsed
    dom, dow = parsed.fields[3], parsed.fields[5]
    labels = [("L", dom.last_day), ("W", dom.nearest), ("#", dow.nth),
              ("5L", dow.last_weekdays), ("H", parsed.hashed), ("seconds", parsed.has_seconds),
              ("day-OR", parsed.day_or), ("repeats on fall-back", parsed.repeats_on_fall_back)]
    for label, present in labels:
        if present:
            event(label)


def croniter_reads_it_as_we_do(schedule: CronSchedule) -> bool:
    """croniter ANDs the day fields whenever W, # or a last weekday is in play, even where
    Vixie's rule says OR; and it refuses # mixed with plain weekdays."""
    parsed = schedule._parsed
    dom, dow = parsed.fields[3], parsed.fields[5]
    if parsed.day_or and (dom.nearest or dow.nth or dow.last_weekdays):
        return False
    return not ((dow.nth or dow.last_weekdays) and dow.values)


SETTINGS = settings(max_examples=250, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])


# --- against croniter ------------------------------------------------------------------------


def _agree(expression: str, zone: str, after: datetime, in_zone: bool, lead: int,
           name: str | None = None) -> None:
    ours = build(CronSchedule, expression, zone, name)
    assume(croniter_reads_it_as_we_do(ours))
    shapes(ours)
    reference = build(CroniterReference, expression, zone, name)
    if lead:
        # just before a fire time (within one second or one minute)
        fire = CroniterReference(expression, zone, name=name).next_fire_time(after)
        assume(fire is not None)
        assert fire is not None
        unit = 1_000_000 if ours.has_seconds else 60_000_000
        before = fire.timestamp() - (1 + (lead - 1) % unit) / 1e6
        after = datetime.fromtimestamp(before, UTC)
    if in_zone:
        after = after.astimezone(ours.zone)
    expected = reference.next_fire_time(after)
    got = ours.next_fire_time(after)
    assert instant(got) == instant(expected), f"{expression!r} in {zone} after {after}"
    if got is not None:
        assert got.timestamp() > after.timestamp()


@SETTINGS
@given(expression=expressions(), zone=st.sampled_from(ZONES), after=instants(),
       in_zone=st.booleans(), lead=st.integers(0, 60_000_000))
@example(expression="* * * * * *", zone="Europe/Berlin",
         after=datetime(2026, 3, 29, 0, 59, 59, tzinfo=UTC), in_zone=True, lead=0)
@example(expression="*/15 * * * *", zone="America/New_York",
         after=datetime(2026, 11, 1, 5, 59, 30, tzinfo=UTC), in_zone=True, lead=0)
@example(expression="30 2 * * *", zone="Europe/Berlin",
         after=datetime(2026, 3, 29, 0, 29, tzinfo=UTC), in_zone=False, lead=0)
def test_plain_expressions_fire_when_croniter_with_our_dst_rules_says(
    expression: str, zone: str, after: datetime, in_zone: bool, lead: int
) -> None:
    _agree(expression, zone, after, in_zone, lead)


@settings(SETTINGS, max_examples=500)
@given(expression=extended(_DOM_EXTENDED, _DOW_EXTENDED), zone=st.sampled_from(ZONES),
       after=instants(), in_zone=st.booleans(), lead=st.integers(0, 60_000_000))
@example(expression="30 2 L * *", zone="Europe/Berlin",
         after=datetime(2027, 3, 30, 12, tzinfo=UTC), in_zone=True, lead=0)
@example(expression="0 0 L * MON", zone="UTC",
         after=datetime(2026, 8, 30, 12, tzinfo=UTC), in_zone=False, lead=0)
def test_l_w_and_hash_fire_when_croniter_with_our_dst_rules_says(
    expression: str, zone: str, after: datetime, in_zone: bool, lead: int
) -> None:
    _agree(expression, zone, after, in_zone, lead)


@settings(SETTINGS, max_examples=150)
@given(expression=expressions(hashed=True), name=_NAMES, zone=st.sampled_from(ZONES),
       after=instants(), in_zone=st.booleans())
def test_h_fires_when_croniter_with_our_dst_rules_says(
    expression: str, name: str, zone: str, after: datetime, in_zone: bool
) -> None:
    _agree(expression, zone, after, in_zone, 0, name)


@settings(SETTINGS, max_examples=150)
@given(expression=expressions(hashed=True), name=_NAMES, after=instants())
def test_h_takes_the_values_croniter_hashes_from_the_same_name(
    expression: str, name: str, after: datetime
) -> None:
    """croniter's own ``hash_id`` (CRC-32 of the UTF-8 name, shifted by the field's index)
    gives the same values, but for a bare ``H`` in day-of-month: ours is H(1-28)."""
    fields = expression.split()
    # croniter hashes only a whole field; bare H in day-of-month is ours to keep in 1-28
    assume(all("H" not in f or re.fullmatch(r"H(\(\d+-\d+\))?(/\d+)?", f) for f in fields))
    day_or = not (fields[-3].startswith(("*", "?")) or fields[-1].startswith(("*", "?")))
    ours = build(CronSchedule, expression, "UTC", name)
    assume(croniter_reads_it_as_we_do(ours))
    shapes(ours)
    # the other fields as we read them (croniter reads '1-1' as the whole field)
    normalized = ours.normalized.split()
    fields = [f if "H" in f else plain for f, plain in zip(fields, normalized)]
    fields[-3] = "H(1-28)" if fields[-3] == "H" else fields[-3]
    if normalized[-3] == normalized[-1] == "*":  # ORed with a full field: every day
        fields[-3], fields[-1], day_or = "*", "*", False
    try:
        iterator = croniter(" ".join(fields), after.replace(tzinfo=None), hash_id=name,
                            day_or=day_or, second_at_beginning=ours.has_seconds)
        expected = iterator.get_next(datetime)
    except CroniterBadDateError:
        expected = None
    got = ours.next_fire_time(after)
    assert (got.replace(tzinfo=None) if got else None) == expected


@settings(max_examples=60, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
@given(expression=st.one_of(expressions(), extended(_DOM_EXTENDED, _DOW_EXTENDED)),
       zone=st.sampled_from(ZONES), start=instants())
def test_a_reused_schedule_lists_the_same_fire_times_as_croniter_step_by_step(
    expression: str, zone: str, start: datetime
) -> None:
    # one instance across calls: its memo and remembered span are in play
    ours = build(CronSchedule, expression, zone)
    assume(croniter_reads_it_as_we_do(ours))
    reference = build(CroniterReference, expression, zone)
    times = ours.fire_times(start, 12)
    expected: list[datetime] = []
    current: datetime | None = start
    for _ in range(12):
        assert current is not None
        current = CroniterReference(expression, zone).next_fire_time(current)
        if current is None:
            break
        expected.append(current)
    assert [instant(t) for t in times] == [instant(t) for t in expected]
    stamps = [t.timestamp() for t in times]
    assert stamps == sorted(set(stamps))
    # asking again from points inside the remembered spans gives the same answers
    for earlier, later in itertools.pairwise([start, *times]):
        middle = datetime.fromtimestamp((earlier.timestamp() + later.timestamp()) / 2, UTC)
        assert instant(ours.next_fire_time(middle)) == instant(later)
        assert instant(reference.next_fire_time(middle)) == instant(later)


@pytest.mark.parametrize(
    "expression", ["0 0 15 * 0-6", "0 0 15 * 1-7", "0 0 15 * sun-sat", "0 0 1-31 * 1"]
)
def test_next_fire_time_does_not_depend_on_where_the_search_starts(expression: str) -> None:
    """A day field spelled as a full range (not ``*``) ORed with the other: every day,
    whether asked from midday or from the last minute of the day."""
    schedule = CronSchedule(expression, "UTC")
    from_midday = schedule.next_fire_time(datetime(2026, 1, 1, 12, tzinfo=UTC))
    from_last_minute = CronSchedule(expression, "UTC").next_fire_time(
        datetime(2026, 1, 1, 23, 59, tzinfo=UTC))
    assert from_midday == from_last_minute == datetime(2026, 1, 2, tzinfo=UTC)


# --- against the brute-force oracle -----------------------------------------------------------


def _nearest_weekday(year: int, month: int, day: int) -> int:
    """The documented W rule, spelled out with date arithmetic."""
    length = calendar.monthrange(year, month)[1]
    target = date(year, month, min(day, length))
    if target.weekday() < 5:
        return target.day
    before = target - timedelta(days=1 if target.weekday() == 5 else 2)
    after = target + timedelta(days=2 if target.weekday() == 5 else 1)
    # the nearer of Friday before and Monday after, staying in the month
    nearer, other = (before, after) if target.weekday() == 5 else (after, before)
    return (nearer if nearer.month == month else other).day


def _day_matches(schedule: CronSchedule, day: date) -> bool:
    parsed = schedule._parsed
    dom, dow = parsed.fields[3], parsed.fields[5]
    length = calendar.monthrange(day.year, day.month)[1]
    weekday = day.isoweekday() % 7
    by_date = (day.day in dom.values or (dom.last_day and day.day == length)
               or any(_nearest_weekday(day.year, day.month, n) == day.day for n in dom.nearest))
    by_weekday = (weekday in dow.values or (weekday, (day.day - 1) // 7 + 1) in dow.nth
                  or (weekday in dow.last_weekdays and day.day + 7 > length))
    return (by_date or by_weekday) if parsed.day_or else (by_date and by_weekday)


_HORIZON = timedelta(days=3 * 366)


def _oracle(schedule: CronSchedule, naive: datetime) -> datetime | None:
    """The next matching wall time after ``naive``, day by day; None past the horizon."""
    fields = schedule.fields
    step = timedelta(seconds=1) if schedule.has_seconds else timedelta(minutes=1)
    start = naive.replace(microsecond=0) if schedule.has_seconds else naive.replace(
        second=0, microsecond=0)
    start += step
    times = sorted(itertools.product(sorted(fields["hour"]), sorted(fields["minute"]),
                                     sorted(fields.get("second", {0}))))
    day = start.date()
    while day - start.date() <= _HORIZON:
        if day.month in fields["month"] and _day_matches(schedule, day):
            for hour, minute, second in times:
                candidate = datetime(day.year, day.month, day.day, hour, minute, second)
                if candidate >= start:
                    return candidate
        day += timedelta(days=1)
    return None


@settings(SETTINGS, max_examples=500)
@given(expression=extended(_DOM_OURS, _DOW_OURS),
       after=instants())
@example(expression="0 0 1 * MON#2", after=datetime(2026, 6, 1, 12, tzinfo=UTC))
@example(expression="0 0 L * 5L", after=datetime(2026, 1, 1, tzinfo=UTC))
@example(expression="0 0 15W,L * *", after=datetime(2026, 8, 14, 12, tzinfo=UTC))
@example(expression="0 0 * * SAT,MON#1", after=datetime(2026, 1, 1, tzinfo=UTC))
@example(expression="0 0 1W * *", after=datetime(2026, 7, 31, 12, tzinfo=UTC))
def test_every_day_rule_fires_on_the_days_the_brute_force_oracle_finds(
    expression: str, after: datetime
) -> None:
    schedule = build(CronSchedule, expression, "UTC")
    shapes(schedule)
    naive = after.replace(tzinfo=None)
    expected = _oracle(schedule, naive)
    got = schedule._next_naive(naive)
    if expected is None:  # beyond the oracle's horizon
        assert got is None or got - naive > _HORIZON
    else:
        assert got == expected, expression
