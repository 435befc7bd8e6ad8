"""The cron dialect, its errors, and the daylight-saving rules (cronie's)."""

from __future__ import annotations

import itertools
import time
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from hypothesis import assume, event, given, settings
from hypothesis import strategies as st

from mashroom_jobs import CronSchedule, InvalidCronExpressionError, InvalidTimezoneError
from mashroom_jobs.core.cron import EARLIEST_START

UTC = timezone.utc


def fires(expression: str, zone: str, start: str, n: int) -> list[str]:
    schedule = CronSchedule(expression, zone)
    return [t.isoformat() for t in schedule.fire_times(datetime.fromisoformat(start), n)]


# --- dialect -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("*/20 * * * *", ["00:20", "00:40", "01:00"]),
        ("0/20 * * * *", ["00:20", "00:40", "01:00"]),
        ("5,35 * * * *", ["00:05", "00:35", "01:05"]),
        ("0 9-10 * * *", ["09:00", "10:00", "09:00"]),
        ("0 0-12/6 * * *", ["06:00", "12:00", "00:00"]),
        ("@hourly", ["01:00", "02:00", "03:00"]),
        ("@daily", ["00:00", "00:00", "00:00"]),
        ("@midnight", ["00:00", "00:00", "00:00"]),
    ],
    ids=lambda v: v if isinstance(v, str) else None,
)
def test_five_field_expressions_fire_at_the_expected_times(
    expression: str, expected: list[str]
) -> None:
    times = fires(expression, "UTC", "2026-01-01T00:00:00+00:00", 3)
    assert [t[11:16] for t in times] == expected


def test_six_fields_put_the_seconds_first() -> None:
    assert fires("*/20 * * * * *", "UTC", "2026-01-01T00:00:00+00:00", 4) == [
        "2026-01-01T00:00:20+00:00",
        "2026-01-01T00:00:40+00:00",
        "2026-01-01T00:01:00+00:00",
        "2026-01-01T00:01:20+00:00",
    ]


def test_every_second_in_node_schedule_notation() -> None:
    times = fires("0/1 * * * * *", "UTC", "2026-01-01T00:00:00.500000+00:00", 2)
    assert times == ["2026-01-01T00:00:01+00:00", "2026-01-01T00:00:02+00:00"]


def test_month_and_weekday_names_are_case_insensitive() -> None:
    # 2026-01-01 is a Thursday
    assert fires("0 12 * JAN,feb Mon-Wed", "UTC", "2026-01-01T00:00:00+00:00", 3) == [
        "2026-01-05T12:00:00+00:00",
        "2026-01-06T12:00:00+00:00",
        "2026-01-07T12:00:00+00:00",
    ]


def test_weekday_seven_is_sunday() -> None:
    assert fires("0 0 * * 7", "UTC", "2026-01-01T00:00:00+00:00", 1) == [
        "2026-01-04T00:00:00+00:00"
    ]


def test_restricted_day_fields_are_ored_as_in_vixie_cron() -> None:
    # day 15 OR Monday
    times = fires("0 0 15 * 1", "UTC", "2026-01-01T00:00:00+00:00", 4)
    assert [t[:10] for t in times] == ["2026-01-05", "2026-01-12", "2026-01-15", "2026-01-19"]


def test_a_star_day_field_makes_both_day_fields_required() -> None:
    # '*/7' in day-of-week starts with '*': the first Sunday of each month
    times = fires("0 9 1-7 * */7", "UTC", "2026-01-01T00:00:00+00:00", 3)
    assert [t[:10] for t in times] == ["2026-01-04", "2026-02-01", "2026-03-01"]


def test_february_29_fires_in_leap_years_only() -> None:
    times = fires("0 0 29 2 *", "UTC", "2026-01-01T00:00:00+00:00", 2)
    assert [t[:10] for t in times] == ["2028-02-29", "2032-02-29"]


def test_next_fire_time_is_strictly_after_the_given_time() -> None:
    schedule = CronSchedule("0 * * * *", "UTC")
    at = datetime(2026, 1, 1, 5, 0, tzinfo=UTC)
    assert schedule.next_fire_time(at) == datetime(2026, 1, 1, 6, 0, tzinfo=UTC)


def test_next_fire_time_requires_an_aware_datetime() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        CronSchedule("* * * * *", "UTC").next_fire_time(datetime(2026, 1, 1))


def test_fire_times_are_returned_in_the_schedules_zone() -> None:
    schedule = CronSchedule("0 9 * * *", "America/New_York")
    first = schedule.next_fire_time(datetime(2026, 1, 1, tzinfo=UTC))
    assert first is not None
    assert first.isoformat() == "2026-01-01T09:00:00-05:00"
    assert schedule.timezone == "America/New_York"


def test_a_tzinfo_is_accepted_as_the_zone() -> None:
    schedule = CronSchedule("0 9 * * *", timezone(timedelta(hours=2)))
    first = schedule.next_fire_time(datetime(2026, 1, 1, tzinfo=UTC))
    assert first is not None and first.isoformat() == "2026-01-01T09:00:00+02:00"


# --- errors --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ("61 * * * *", "minute 61 is out of range 0-59"),
        ("* 24 * * *", "hour 24 is out of range 0-23"),
        ("* * 0 * *", "day-of-month 0 is out of range 1-31"),
        ("* * * 13 *", "month 13 is out of range 1-12"),
        ("* * * * 8", "day-of-week 8 is out of range 0-7"),
        ("60 * * * * *", "second 60 is out of range 0-59"),
        ("* * *", "expected 5 fields"),
        ("* * * * * * *", "got 7"),
        ("", "got 0"),
        ("x * * * *", "minute value 'x' is not a number"),
        ("* * * foo *", "month value 'foo' is not a number"),
        ("5-1 * * * *", "range '5-1' runs backwards"),
        ("*/0 * * * *", "step '0'"),
        ("*/x * * * *", "step 'x'"),
        ("1,,2 * * * *", "empty or malformed item"),
        ("@reboot", "cron_schedule=None"),
        ("@often", "unknown macro"),
        ("@wee\u212aly", "unknown macro"),  # KELVIN SIGN, which str.lower() turns into 'k'
        ("0 0 30 2 *", "can never fire: day-of-month 30 does not exist in Feb"),
        ("0 0 31 4,6 *", "can never fire"),
    ],
    ids=lambda v: v if isinstance(v, str) else None,
)
def test_invalid_expressions_say_what_is_wrong(expression: str, message: str) -> None:
    with pytest.raises(InvalidCronExpressionError) as info:
        CronSchedule(expression, "UTC")
    assert message in str(info.value)
    assert repr(expression) in str(info.value)
    assert isinstance(info.value, ValueError)


@pytest.mark.parametrize(
    "expression",
    [
        "¹ * * * *",  # superscript one: str.isdigit() says yes, int() says no
        "٣ * * * *",  # Arabic-Indic three: int() reads it as 3
        "３ * * * *",  # full-width three
        "1-٣ * * * *",
        "0 0 ٣ * *",
        "0 0 * ² *",
        "0 0 * * ５",
        "٣ * * * * *",
        "0 Ⅻ * * *",  # Roman numeral twelve: numeric, not a digit
    ],
    ids=["superscript", "arabic-indic", "full-width", "in-a-range", "day-of-month", "month",
         "day-of-week", "seconds", "roman-numeral"],
)
def test_digits_other_than_ascii_0_to_9_are_not_numbers(expression: str) -> None:
    with pytest.raises(InvalidCronExpressionError) as info:
        CronSchedule(expression, "UTC")
    assert "is not a number" in str(info.value)
    assert repr(expression) in str(info.value)


@pytest.mark.parametrize("step", ["٣", "３", "¹", "½"], ids=["arabic-indic", "full-width",
                                                           "superscript", "vulgar-fraction"])
def test_a_step_in_digits_other_than_ascii_is_not_a_number(step: str) -> None:
    with pytest.raises(InvalidCronExpressionError,
                       match=f"minute step '{step}' in '\\*/{step}' is not a number"):
        CronSchedule(f"*/{step} * * * *", "UTC")


def test_a_number_too_long_for_int_is_out_of_range() -> None:
    # int() refuses more than 4300 digits with a plain ValueError
    with pytest.raises(InvalidCronExpressionError) as info:
        CronSchedule("1" * 5000 + " * * * *", "UTC")
    reason = "minute 11111111111111111111... (5000 digits) is out of range 0-59"
    assert str(info.value).endswith(f": {reason}")


@pytest.mark.parametrize(
    ("expression", "character"),
    [
        ("1\u30001 * * * *", "U+3000 IDEOGRAPHIC SPACE"),
        ("1\xa01 * * * *", "U+00A0 NO-BREAK SPACE"),
        ("* * * * *\u2003", "U+2003 EM SPACE"),
        ("*\x1f* * * * *", "U+001F"),  # str.split() splits on the ASCII unit separator too
    ],
    ids=["ideographic", "no-break", "em-space-at-the-end", "unit-separator"],
)
def test_fields_must_be_separated_by_ascii_blanks(expression: str, character: str) -> None:
    with pytest.raises(InvalidCronExpressionError) as info:
        CronSchedule(expression, "UTC")
    assert "fields are separated by spaces or tabs" in str(info.value)
    assert character in str(info.value)


def test_tabs_and_surrounding_newlines_still_separate_fields() -> None:
    assert CronSchedule("\n*/5\t*  * * *\n", "UTC") == CronSchedule("*/5 * * * *", "UTC")


_LONGER = "is longer than the field: it holds only"


@pytest.mark.parametrize(
    ("expression", "note", "first"),
    [
        ("*/100000 * * * *", f"minute step 100000 {_LONGER} 0", "2026-01-01T01:00"),
        ("*/61 * * * *", f"minute step 61 {_LONGER} 0", "2026-01-01T01:00"),
        ("0-30/61 * * * *", f"minute step 61 {_LONGER} 0", "2026-01-01T01:00"),
        ("5/61 * * * *", f"minute step 61 {_LONGER} 5", "2026-01-01T00:05"),
        ("*/61 * * * * *", f"second step 61 {_LONGER} 0", "2026-01-01T00:01"),
        ("0 */25 * * *", f"hour step 25 {_LONGER} 0", "2026-01-02T00:00"),
        ("0 0 */32 * *", f"day-of-month step 32 {_LONGER} 1", "2026-02-01T00:00"),
        ("0 0 1 */13 *", f"month step 13 {_LONGER} 1", "2027-01-01T00:00"),
        ("0 0 * * */8", f"day-of-week step 8 {_LONGER} 0", "2026-01-04T00:00"),
        ("*/" + "1" * 5000 + " * * * *",
         f"minute step 11111111111111111111... (5000 digits) {_LONGER} 0", "2026-01-01T01:00"),
    ],
    ids=["huge", "61", "range", "start-and-step", "seconds", "hour", "day-of-month", "month",
         "day-of-week", "5000-digits"],
)
def test_a_step_longer_than_its_field_holds_its_first_value_as_in_cron(
    expression: str, note: str, first: str
) -> None:
    # issue 25: Vixie and Debian cron accept these (crontabs use '*/100,1-7' in the first-
    # weekday idiom); the description says what the step does instead of "every 61 minutes"
    schedule = CronSchedule(expression, "UTC")
    start = datetime(2026, 1, 1, 0, 0, 0, tzinfo=timezone.utc)
    assert f"{schedule.next_fire_time(start):%Y-%m-%dT%H:%M}" == first
    assert note in schedule.describe()


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        # a step as long as the field's cycle fires once per cycle: every 60 minutes is hourly
        ("*/60 * * * *", ["01:00", "02:00", "03:00"]),
        ("0 */24 * * *", ["00:00", "00:00", "00:00"]),
        ("*/060 * * * *", ["01:00", "02:00", "03:00"]),
    ],
    ids=["every-60-minutes", "every-24-hours", "leading-zero"],
)
def test_a_step_as_long_as_its_fields_cycle_fires_once_per_cycle(
    expression: str, expected: list[str]
) -> None:
    times = fires(expression, "UTC", "2026-01-01T00:00:00+00:00", 3)
    assert [t[11:16] for t in times] == expected


def test_a_weekday_step_of_seven_fires_every_sunday() -> None:
    times = fires("0 0 * * */7", "UTC", "2026-01-01T00:00:00+00:00", 2)
    assert times == ["2026-01-04T00:00:00+00:00", "2026-01-11T00:00:00+00:00"]


def test_a_non_string_expression_is_an_invalid_expression() -> None:
    with pytest.raises(InvalidCronExpressionError, match="expected a string"):
        CronSchedule(5, "UTC")  # type: ignore[arg-type]


def test_an_impossible_date_is_rejected_quickly() -> None:
    started = time.perf_counter()
    for _ in range(100):
        with pytest.raises(InvalidCronExpressionError):
            CronSchedule("0 0 30 2 *", "UTC")
    assert time.perf_counter() - started < 2.0  # generous: about 1 ms each here


def test_an_impossible_day_of_month_with_a_weekday_still_fires_on_that_weekday() -> None:
    # Vixie OR: day 30 never exists in February, but Mondays of February do
    times = fires("0 0 30 2 1", "UTC", "2026-01-01T00:00:00+00:00", 1)
    assert times == ["2026-02-02T00:00:00+00:00"]


def test_an_unknown_zone_is_rejected_with_its_name() -> None:
    with pytest.raises(InvalidTimezoneError, match="'Mars/Olympus'"):
        CronSchedule("* * * * *", "Mars/Olympus")


@settings(max_examples=400, deadline=None)
@given(st.text(max_size=40))
def test_random_strings_only_ever_raise_invalid_cron_expression_error(text: str) -> None:
    try:
        schedule = CronSchedule(text, "UTC")
    except InvalidCronExpressionError:
        return
    schedule.next_fire_time(datetime(2026, 1, 1, tzinfo=UTC))


_FIELD = st.one_of(
    st.just("*"),
    st.integers(0, 70).map(str),
    st.tuples(st.integers(0, 70), st.integers(0, 70)).map(lambda t: f"{t[0]}-{t[1]}"),
    st.tuples(st.sampled_from(["*", "1", "0-30", "7"]), st.integers(0, 70)).map(
        lambda t: f"{t[0]}/{t[1]}"
    ),
    st.sampled_from(["jan", "MON", "?", ",", "L", "1#2", "-", "/", "*/", "sun-sat"]),
    # the extensions, well and badly formed: L, W, #, H
    st.sampled_from(["L", "l", "LW", "15W", "W15", "31w", "1,L", "15-L", "L-3", "L/2", "5L",
                     "L5", "FRIL", "sunL", "L-FRI", "MON#2", "5#5", "1#0", "1#6", "1-3#2", "#",
                     "1#", "H", "h", "H/15", "H(0-29)", "H(0-29)/10", "H(30-10)", "H(0-99)",
                     "H()", "H/0", "H/99", "H,H", "H-5", "H(MON-FRI)", "7L", "0#1", "LW,L"]),
)


@settings(max_examples=400, deadline=None)
@given(st.lists(_FIELD, min_size=4, max_size=7).map(" ".join), st.one_of(st.none(), st.text()))
def test_cron_shaped_strings_only_ever_raise_invalid_cron_expression_error(
    text: str, name: str | None
) -> None:
    try:
        schedule = CronSchedule(text, "Europe/Berlin", name=name)
    except InvalidCronExpressionError:
        return
    event("parsed, with H" if schedule.hashed else "parsed")
    nxt = schedule.next_fire_time(datetime(2026, 10, 25, 0, 30, tzinfo=UTC))
    assert nxt is None or nxt > datetime(2026, 10, 25, 0, 30, tzinfo=UTC)


#: characters a cron field is made of, mixed with any character at all (st.characters() draws
#: from the whole of Unicode) and with ones that look like digits or blanks but are not ASCII
_ANY_CRON_CHARACTER = st.one_of(
    st.sampled_from("0123456789*/-,?"),
    st.characters(),
    st.characters(categories=("Nd", "No", "Nl", "Zs", "Zl", "Zp", "Cc")),
)
#: valid in every field (1-7 is a day, a month and a weekday; H with a name)
_VALID_FIELD = st.one_of(
    st.just("*"),
    st.sampled_from(["H", "H/3", "H(1-5)", "H(2-6)/2"]),
    st.integers(1, 7).map(str),
    st.integers(1, 7).map(lambda n: f"*/{n}"),
    st.tuples(st.integers(1, 3), st.integers(4, 7)).map(lambda t: f"{t[0]}-{t[1]}"),
)
_BLANK = st.sampled_from([" ", " ", " ", "  ", "\t", "\u3000", "\xa0", "\u2003", "\x1c"])


@st.composite
def _unicode_cron_shaped(draw: st.DrawFn) -> str:
    """Four to seven fields, many of them valid, with a few characters swapped for anything."""
    size = draw(st.sampled_from([4, 5, 5, 5, 6, 6, 7]))
    field = st.one_of(_VALID_FIELD, _VALID_FIELD, _VALID_FIELD, _FIELD,
                      st.text(_ANY_CRON_CHARACTER, min_size=1, max_size=6))
    fields = draw(st.lists(field, min_size=size, max_size=size))
    for _ in range(draw(st.integers(0, 2))):
        index = draw(st.integers(0, len(fields) - 1))
        field = fields[index]
        at = draw(st.integers(0, len(field)))
        keep = draw(st.booleans())  # insert the character, or replace the one there
        fields[index] = field[:at] + draw(_ANY_CRON_CHARACTER) + field[at + (not keep):]
    text = fields[0]
    for field in fields[1:]:
        text += draw(_BLANK) + field
    return text


#: a job's name, for H: anything at all (st.text() draws from the whole of Unicode)
_NAME = st.one_of(st.none(), st.just(""), st.text(max_size=12),
                  st.text(st.characters(categories=("Cs", "Co", "Cn", "So", "Mn")),
                          min_size=1, max_size=6))


@settings(max_examples=600, deadline=None)
@given(st.one_of(st.text(max_size=40), _unicode_cron_shaped()), _NAME)
def test_unicode_cron_shaped_strings_only_ever_raise_invalid_cron_expression_error(
    text: str, name: str | None,
) -> None:
    start = datetime(2026, 10, 25, 0, 30, tzinfo=UTC)
    try:
        schedule = CronSchedule(text, "Europe/Berlin", name=name)
    except InvalidCronExpressionError:
        return
    # only ASCII is cron: whatever parses is ASCII, and it fires
    assert text.strip(" \t\n\r").isascii(), schedule.normalized
    event("parsed, with H" if schedule.hashed else "parsed")
    times = schedule.fire_times(start, 3)
    assert len(times) == 3
    # timestamps: within one zone, < compares wall times and ignores fold
    stamps = [t.timestamp() for t in times]
    assert start.timestamp() < stamps[0] < stamps[1] < stamps[2]
    assert schedule.describe()


_TIME_ITEM = st.sampled_from(["*", "0", "5", "*/7", "10-20/5", "H", "h", "H/15", "H(0-23)",
                              "H(10-20)/4"])
_EXTENDED_FIELDS = (
    _TIME_ITEM,
    st.sampled_from(["*", "3", "H", "H/6", "H(9-17)", "H(9-17)/4"]),
    st.sampled_from(["*", "?", "1", "L", "l", "15W", "31w", "LW", "1,L", "15-L", "L,15W", "H",
                     "H(1-31)", "*/3"]),
    st.sampled_from(["*", "2", "feb", "H", "*/5"]),
    st.sampled_from(["*", "?", "1", "MON#2", "mon#5", "5L", "L5", "FRIL", "0L", "7#1",
                     "SAT,MON#1", "H", "H/2", "*/2"]),
)


@st.composite
def _extended_expressions(draw: st.DrawFn) -> str:
    fields = [draw(field) for field in _EXTENDED_FIELDS]
    if draw(st.booleans()):
        fields.insert(0, draw(_TIME_ITEM))
    return " ".join(fields)


@settings(max_examples=400, deadline=None)
@given(_extended_expressions(), st.one_of(
    st.text(min_size=1, max_size=20),
    st.text(st.characters(categories=("Cs", "Co", "Cn", "So", "Zs")), min_size=1, max_size=5)))
def test_every_valid_extended_expression_fires_and_describes_itself_for_any_name(
    text: str, name: str,
) -> None:
    """L, W, # and H with names from the whole of Unicode (lone surrogates too): only
    InvalidCronExpressionError escapes (an expression that can never fire), and whatever
    parses has fire times and a description."""
    start = datetime(2026, 10, 25, 0, 30, tzinfo=UTC)
    try:
        schedule = CronSchedule(text, "Europe/Berlin", name=name)
    except InvalidCronExpressionError as exc:
        assert "can never fire" in str(exc)
        return
    event("hashed" if schedule.hashed else "not hashed")
    stamps = [t.timestamp() for t in schedule.fire_times(start, 3)]
    assert len(stamps) == 3 and start.timestamp() < stamps[0] < stamps[1] < stamps[2]
    assert schedule.describe()
    assert CronSchedule(text, "Europe/Berlin", name=name) == schedule  # the hash is stable


# --- daylight saving (cronie's rules) ----------------------------------------------------


def test_a_fire_time_in_the_spring_gap_fires_once_right_after_it() -> None:
    assert fires("30 3 * * *", "Europe/Riga", "2021-03-27T12:00:00+00:00", 2) == [
        "2021-03-28T04:00:00+03:00",
        "2021-03-29T03:30:00+03:00",
    ]


def test_an_every_minute_job_jumps_the_spring_gap_with_one_fire() -> None:
    assert fires("* * * * *", "Europe/Riga", "2021-03-28T00:58:00+00:00", 3) == [
        "2021-03-28T02:59:00+02:00",
        "2021-03-28T04:00:00+03:00",
        "2021-03-28T04:01:00+03:00",
    ]


def test_several_fire_times_in_the_gap_become_one_fire() -> None:
    assert fires("0,30 3,4 * * *", "Europe/Riga", "2021-03-28T00:00:00+00:00", 3) == [
        "2021-03-28T04:00:00+03:00",
        "2021-03-28T04:30:00+03:00",
        "2021-03-29T03:00:00+03:00",
    ]


def test_a_fixed_time_job_fires_once_on_the_fall_back_day() -> None:
    # croniter alone fires this twice on 2026-10-25 in Berlin
    assert fires("30 2 * * *", "Europe/Berlin", "2026-10-24T12:00:00+00:00", 2) == [
        "2026-10-25T02:30:00+02:00",
        "2026-10-26T02:30:00+01:00",
    ]


def test_a_fixed_hour_range_fires_once_per_hour_on_the_fall_back_day() -> None:
    assert fires("0 1-3 * * *", "Europe/Berlin", "2026-10-24T22:00:00+00:00", 3) == [
        "2026-10-25T01:00:00+02:00",
        "2026-10-25T02:00:00+02:00",
        "2026-10-25T03:00:00+01:00",
    ]


def test_an_hourly_job_fires_in_both_copies_of_the_repeated_hour() -> None:
    assert fires("0 * * * *", "Europe/Berlin", "2026-10-24T23:00:00+00:00", 3) == [
        "2026-10-25T02:00:00+02:00",
        "2026-10-25T02:00:00+01:00",
        "2026-10-25T03:00:00+01:00",
    ]


def test_an_interval_job_keeps_its_real_interval_through_the_repeated_hour() -> None:
    times = fires("*/15 * * * *", "Europe/Berlin", "2026-10-25T00:40:00+00:00", 6)
    instants = [datetime.fromisoformat(t) for t in times]
    assert times[0] == "2026-10-25T02:45:00+02:00"
    assert times[1] == "2026-10-25T02:00:00+01:00"
    assert all(b - a == timedelta(minutes=15) for a, b in itertools.pairwise(instants))


def test_a_seconds_interval_job_fires_in_both_copies_of_the_hour() -> None:
    # '*/30' seconds at a fixed minute and hour: the seconds field is an interval
    times = fires("*/30 30 2 * * *", "Europe/Berlin", "2026-10-24T12:00:00+00:00", 4)
    assert times == [
        "2026-10-25T02:30:00+02:00",
        "2026-10-25T02:30:30+02:00",
        "2026-10-25T02:30:00+01:00",
        "2026-10-25T02:30:30+01:00",
    ]


def test_a_fixed_time_job_started_in_the_second_pass_waits_for_the_next_day() -> None:
    # the 02:30 of the first pass already happened
    assert fires("30 2 * * *", "Europe/Berlin", "2026-10-25T01:10:00+00:00", 1) == [
        "2026-10-26T02:30:00+01:00"
    ]


def test_southern_hemisphere_gap_is_handled_too() -> None:
    # Australia/Sydney springs forward 2026-10-04 02:00 -> 03:00
    assert fires("30 2 * * *", "Australia/Sydney", "2026-10-03T00:00:00+00:00", 2) == [
        "2026-10-04T03:00:00+11:00",
        "2026-10-05T02:30:00+11:00",
    ]


# --- the ends of the calendar (datetime holds years 1 to 9999) ---------------------------


def test_the_last_minute_of_year_9999_has_no_next_fire_time() -> None:
    schedule = CronSchedule("* * * * *", "UTC")
    assert schedule.next_fire_time(datetime(9999, 12, 31, 23, 59, tzinfo=UTC)) is None
    assert schedule.next_fire_time(datetime.max.replace(tzinfo=UTC)) is None


def test_fire_times_near_year_9999_list_those_that_exist_and_stop() -> None:
    assert fires("* * * * *", "UTC", "9999-12-31T23:57:00+00:00", 5) == [
        "9999-12-31T23:58:00+00:00",
        "9999-12-31T23:59:00+00:00",
    ]
    assert fires("*/20 * * * * *", "UTC", "9999-12-31T23:59:00+00:00", 5) == [
        "9999-12-31T23:59:20+00:00",
        "9999-12-31T23:59:40+00:00",
    ]


def test_a_leap_day_after_the_last_one_before_year_10000_does_not_exist() -> None:
    # 9996 is the last leap year datetime can hold: the next 29 February would be in 10000
    schedule = CronSchedule("0 0 29 2 *", "UTC")
    assert schedule.fire_times(datetime(9996, 3, 1, tzinfo=UTC), 3) == []
    assert fires("0 0 29 2 *", "UTC", "9990-01-01T00:00:00+00:00", 5) == [
        "9992-02-29T00:00:00+00:00",
        "9996-02-29T00:00:00+00:00",
    ]


@pytest.mark.parametrize(
    ("zone", "expected"),
    [
        # 23:59 in New York is 04:59 on 1 January 10000 in UTC: not a time datetime can hold
        ("America/New_York", ["9999-12-31T18:58:00-05:00", "9999-12-31T18:59:00-05:00"]),
        ("Pacific/Kiritimati", []),  # UTC+14: local time is already in the year 10000
        ("Asia/Tokyo", []),
    ],
    ids=["west-of-utc", "far-east-of-utc", "east-of-utc"],
)
def test_fire_times_stop_at_the_last_instant_utc_can_hold_in_every_zone(
    zone: str, expected: list[str]
) -> None:
    assert fires("* * * * *", zone, "9999-12-31T23:57:00+00:00", 5) == expected


def test_an_aware_time_past_the_last_utc_instant_has_no_next_fire_time() -> None:
    after = datetime(9999, 12, 31, 23, 0, tzinfo=ZoneInfo("America/New_York"))
    assert CronSchedule("* * * * *", "America/New_York").next_fire_time(after) is None
    assert CronSchedule("0 0 * * *", "UTC").next_fire_time(after) is None


def test_fire_times_a_microsecond_apart_are_told_apart_in_any_year() -> None:
    # a float timestamp of the year 3000 cannot tell 00:59:59.999999 from 01:00
    assert fires("0 * * * *", "UTC", "3000-01-01T00:59:59.999999+00:00", 3) == [
        "3000-01-01T01:00:00+00:00",
        "3000-01-01T02:00:00+00:00",
        "3000-01-01T03:00:00+00:00",
    ]
    schedule = CronSchedule("0 * * * *", "UTC")
    assert schedule.next_fire_time(datetime(9999, 1, 1, 1, 0, tzinfo=UTC)) == datetime(
        9999, 1, 1, 2, 0, tzinfo=UTC
    )
    just_before = datetime(9999, 1, 1, 0, 59, 59, 999999, tzinfo=UTC)
    assert schedule.next_fire_time(just_before) == datetime(9999, 1, 1, 1, 0, tzinfo=UTC)


@pytest.mark.parametrize("zone", ["UTC", "America/New_York", "Asia/Tokyo", "Pacific/Kiritimati"])
def test_fire_times_from_the_second_day_of_year_1_exist_in_every_zone(zone: str) -> None:
    times = CronSchedule("* * * * *", zone).fire_times(EARLIEST_START, 2)
    assert len(times) == 2 and EARLIEST_START < times[0] < times[1]


def test_fire_times_before_the_second_day_of_year_1_are_refused_naming_the_argument() -> None:
    with pytest.raises(ValueError, match=r"after must be at or after 0001-01-02T00:00:00\+00:00"):
        CronSchedule("* * * * *", "America/New_York").next_fire_time(
            datetime(1, 1, 1, 12, 0, tzinfo=UTC)
        )


_EDGE_EXPRESSIONS = st.sampled_from(
    ["* * * * *", "*/7 * * * * *", "0 0 29 2 *", "30 2 * * *", "0 0 1 1 *", "0 9 1-7 * */7"]
)
_EDGE_ZONES = st.sampled_from(["UTC", "America/New_York", "Pacific/Kiritimati",
                               "Pacific/Pago_Pago", "Europe/Berlin", "Australia/Lord_Howe"])
_OFFSETS = st.sampled_from([UTC, timezone(timedelta(hours=-12)), timezone(timedelta(hours=14))])


@settings(max_examples=300, deadline=None)
@given(_EDGE_EXPRESSIONS, _EDGE_ZONES,
       st.datetimes(min_value=datetime(9899, 1, 1), max_value=datetime.max, timezones=_OFFSETS))
def test_next_fire_time_near_year_9999_is_a_later_time_or_none(
    expression: str, zone: str, after: datetime
) -> None:
    result = CronSchedule(expression, zone).next_fire_time(after)
    assert result is None or result > after


@settings(max_examples=300, deadline=None)
@given(_EDGE_EXPRESSIONS, _EDGE_ZONES,
       st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(101, 1, 1), timezones=_OFFSETS))
def test_next_fire_time_near_year_1_is_a_later_time(
    expression: str, zone: str, after: datetime
) -> None:
    assume(after >= EARLIEST_START)
    result = CronSchedule(expression, zone).next_fire_time(after)
    assert result is not None and result > after


# --- description -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("expression", "text"),
    [
        ("*/5 * * * *", "Every 5 minutes"),
        ("*/15 * * * * *", "Every 15 seconds"),
        ("@hourly", "Every hour"),
        ("0 9 1-7 * */7", "only on days matching both"),
    ],
)
def test_describe_says_it_in_plain_english(expression: str, text: str) -> None:
    assert text in CronSchedule(expression, "UTC").describe()


def test_schedules_with_the_same_expression_and_zone_are_equal() -> None:
    assert CronSchedule("*/5 * * * *", "UTC") == CronSchedule("0/5 * * * *", "UTC")
    assert CronSchedule("*/5 * * * *", "UTC") != CronSchedule("*/5 * * * *", "Europe/Berlin")
    assert repr(CronSchedule("@daily", "UTC")) == "CronSchedule('@daily', timezone='UTC')"


@pytest.mark.parametrize("expression", ["0 0 15 * 0-6", "0 0 15 * sun-sat", "0 0 1-31 * 1"])
def test_or_with_a_day_field_matching_every_day_fires_every_day(expression: str) -> None:
    # Vixie: neither field starts with '*', so a day matching either fires: every day.
    # Asked from midday or just before midnight, the answer is the same (it once was not).
    for start in ("2026-01-01T12:00:00+00:00", "2026-01-01T23:59:00+00:00"):
        assert fires(expression, "UTC", start, 2) == [
            "2026-01-02T00:00:00+00:00",
            "2026-01-03T00:00:00+00:00",
        ]


def test_an_impossible_day_of_month_ored_with_every_weekday_is_not_rejected() -> None:
    assert fires("0 0 31 2 0-6", "UTC", "2026-02-10T12:00:00+00:00", 1) == [
        "2026-02-11T00:00:00+00:00"
    ]
