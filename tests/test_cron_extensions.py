"""The dialect's extensions: L, W, LW, #, 5L and Jenkins' H, pinned with exact fire times,
across daylight-saving changes, with Vixie's day rule, their errors and descriptions."""

from __future__ import annotations

import subprocess
import sys
import zlib
from datetime import datetime, timezone
from typing import Any

import pytest

from mashroom_jobs import BackgroundJobService, CronSchedule, InvalidCronExpressionError
from mashroom_jobs.cli import main
from mashroom_jobs.core.cron import describe, shared_schedule

UTC = timezone.utc


def fires(expression: str, zone: str, start: str, n: int, name: str | None = None) -> list[str]:
    """Fire times as ISO text; ``[fold]`` marks the second pass of a repeated hour."""
    schedule = CronSchedule(expression, zone, name=name)
    return [t.isoformat() + (" [fold]" if t.fold else "")
            for t in schedule.fire_times(datetime.fromisoformat(start), n)]


def days(expression: str, start: str, n: int) -> list[str]:
    return [t[:10] for t in fires(expression, "UTC", start, n)]


# --- L, W, LW ---------------------------------------------------------------------------------


def test_l_is_the_last_day_of_each_month_leap_years_included() -> None:
    assert days("0 0 L * *", "2027-12-01T00:00:00+00:00", 4) == [
        "2027-12-31", "2028-01-31", "2028-02-29", "2028-03-31"]
    assert days("0 0 L 2 *", "2027-01-01T00:00:00+00:00", 3) == [
        "2027-02-28", "2028-02-29", "2029-02-28"]


def test_l_in_a_list_and_at_the_end_of_a_range() -> None:
    assert days("0 0 1,L * *", "2026-01-15T00:00:00+00:00", 3) == [
        "2026-01-31", "2026-02-01", "2026-02-28"]
    # 28-L: the 28th to the last day, whatever the month's length
    assert days("0 0 28-L 2 *", "2026-01-01T00:00:00+00:00", 2) == ["2026-02-28", "2027-02-28"]


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        # 2026: 15 Feb, 15 Nov are Sundays -> Monday 16; 15 Aug is a Saturday -> Friday 14
        ("0 0 15W * *", ["2026-01-15", "2026-02-16", "2026-03-16", "2026-04-15", "2026-05-15",
                         "2026-06-15", "2026-07-15", "2026-08-14", "2026-09-15", "2026-10-15",
                         "2026-11-16", "2026-12-15"]),
        # 1 Aug 2026 is a Saturday: Monday the 3rd, never Friday 31 July; 1 Feb is a Sunday
        ("0 0 1W * *", ["2026-01-01", "2026-02-02", "2026-03-02", "2026-04-01", "2026-05-01",
                        "2026-06-01", "2026-07-01", "2026-08-03", "2026-09-01", "2026-10-01",
                        "2026-11-02", "2026-12-01"]),
        # the last weekday: 31 Jan and 28 Feb are Saturdays, 31 May a Sunday (back to Friday)
        ("0 0 LW * *", ["2026-01-30", "2026-02-27", "2026-03-31", "2026-04-30", "2026-05-29",
                        "2026-06-30", "2026-07-31", "2026-08-31", "2026-09-30", "2026-10-30",
                        "2026-11-30", "2026-12-31"]),
    ],
    ids=["15W", "1W", "LW"],
)
def test_w_is_the_weekday_nearest_the_day_within_its_month(
    expression: str, expected: list[str]
) -> None:
    assert days(expression, "2025-12-31T12:00:00+00:00", 12) == expected


def test_a_w_day_past_the_end_of_a_short_month_is_its_last_weekday() -> None:
    # 31W in April 2026 is the weekday nearest the 30th (a Thursday); in February 2026
    # the 28th is a Saturday: Friday the 27th
    assert days("0 0 31W 2,4 *", "2026-01-01T00:00:00+00:00", 2) == ["2026-02-27", "2026-04-30"]
    assert CronSchedule("0 0 31W * *", "UTC") == CronSchedule("0 0 LW * *", "UTC")


# --- #, 5L ------------------------------------------------------------------------------------


def test_hash_is_the_nth_weekday_of_the_month_in_names_or_numbers() -> None:
    assert days("0 0 * * MON#2", "2026-01-01T00:00:00+00:00", 3) == [
        "2026-01-12", "2026-02-09", "2026-03-09"]
    assert days("0 0 * * 1#2", "2026-01-01T00:00:00+00:00", 3) == days(
        "0 0 * * mon#2", "2026-01-01T00:00:00+00:00", 3)
    assert days("0 0 * * 7#1", "2026-01-01T00:00:00+00:00", 2) == ["2026-01-04", "2026-02-01"]


def test_a_fifth_weekday_skips_the_months_that_have_none() -> None:
    assert days("0 0 * * 5#5", "2026-01-01T00:00:00+00:00", 4) == [
        "2026-01-30", "2026-05-29", "2026-07-31", "2026-10-30"]


def test_several_hash_items_and_plain_weekdays_in_one_list() -> None:
    # the first Monday and the third Wednesday; Saturdays and the first Monday
    assert days("0 0 * * MON#1,WED#3", "2026-01-01T00:00:00+00:00", 3) == [
        "2026-01-05", "2026-01-21", "2026-02-02"]
    assert days("0 0 * * SAT,MON#1", "2026-01-01T00:00:00+00:00", 3) == [
        "2026-01-03", "2026-01-05", "2026-01-10"]


@pytest.mark.parametrize("spelling", ["5L", "FRIL", "friL", "L5", "LFRI"])
def test_a_weekday_with_l_is_its_last_one_in_the_month(spelling: str) -> None:
    assert days(f"0 0 * * {spelling}", "2026-01-01T00:00:00+00:00", 3) == [
        "2026-01-30", "2026-02-27", "2026-03-27"]


# --- Vixie's day rule with L, W and # ---------------------------------------------------------


def test_l_ored_with_a_weekday_fires_on_the_last_day_and_on_each_such_weekday() -> None:
    # neither field starts with '*': a day matching either fires (Wednesday 30 Sep is L)
    assert days("0 0 L * MON", "2026-09-20T00:00:00+00:00", 4) == [
        "2026-09-21", "2026-09-28", "2026-09-30", "2026-10-05"]


def test_a_day_ored_with_a_hash_weekday_fires_on_either() -> None:
    assert days("0 0 1 * MON#2", "2026-01-01T00:00:00+00:00", 4) == [
        "2026-01-12", "2026-02-01", "2026-02-09", "2026-03-01"]
    assert days("0 0 15W * 5L", "2026-01-01T00:00:00+00:00", 4) == [
        "2026-01-15", "2026-01-30", "2026-02-16", "2026-02-27"]


def test_a_star_step_weekday_makes_l_require_both() -> None:
    # '*/7' starts with '*': the last day of the month, when it is a Sunday
    assert days("0 0 L * */7", "2026-01-01T00:00:00+00:00", 3) == [
        "2026-05-31", "2027-01-31", "2027-02-28"]


# --- across daylight-saving changes -----------------------------------------------------------


def test_l_at_a_fixed_time_is_plain_on_an_ordinary_last_day() -> None:
    # 31 March 2027 is a Wednesday: Berlin sprang forward on Sunday the 28th
    assert fires("30 2 L * *", "Europe/Berlin", "2027-03-01T00:00:00+00:00", 2) == [
        "2027-03-31T02:30:00+02:00", "2027-04-30T02:30:00+02:00"]


def test_l_on_a_spring_forward_day_fires_once_right_after_the_gap() -> None:
    # 31 March 2030 is a Sunday, Berlin's spring-forward day: 02:30 does not exist
    assert fires("30 2 L * *", "Europe/Berlin", "2030-03-01T00:00:00+00:00", 2) == [
        "2030-03-31T03:00:00+02:00", "2030-04-30T02:30:00+02:00"]


def test_l_on_a_fall_back_day_fires_once_in_the_first_pass() -> None:
    # 31 October 2027 is a Sunday, Berlin's fall-back day: 02:30 happens twice
    assert fires("30 2 L * *", "Europe/Berlin", "2027-10-01T00:00:00+00:00", 2) == [
        "2027-10-31T02:30:00+02:00", "2027-11-30T02:30:00+01:00"]


def test_the_last_sunday_is_europes_transition_day_both_ways() -> None:
    assert fires("30 2 * * 0L", "Europe/Berlin", "2027-03-01T00:00:00+00:00", 2) == [
        "2027-03-28T03:00:00+02:00", "2027-04-25T02:30:00+02:00"]
    assert fires("30 2 * * SUNL", "Europe/Berlin", "2027-10-01T00:00:00+00:00", 2) == [
        "2027-10-31T02:30:00+02:00", "2027-11-28T02:30:00+01:00"]
    # an interval minute field fires in both passes of the repeated hour
    assert fires("*/30 2 * * 7L", "Europe/Berlin", "2027-10-30T00:00:00+00:00", 5) == [
        "2027-10-31T02:00:00+02:00", "2027-10-31T02:30:00+02:00",
        "2027-10-31T02:00:00+01:00 [fold]", "2027-10-31T02:30:00+01:00 [fold]",
        "2027-11-28T02:00:00+01:00"]


def test_hash_sundays_are_americas_transition_days() -> None:
    # the second Sunday of March: 02:30 is in the gap; the first of November: 01:30 twice
    assert fires("30 2 * 3 0#2", "America/New_York", "2027-01-01T00:00:00+00:00", 2) == [
        "2027-03-14T03:00:00-04:00", "2028-03-12T03:00:00-04:00"]
    assert fires("30 1 * 11 SUN#1", "America/New_York", "2027-10-01T00:00:00+00:00", 2) == [
        "2027-11-07T01:30:00-04:00", "2028-11-05T01:30:00-04:00"]


# --- H ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "crc", "daily", "quarterly", "ranged"),
    [
        # crc32 of the UTF-8 name; minute = crc % 60, hour = (crc >> 1) % 24, day-of-month
        # = (crc >> 2) % 28 + 1, weekday = (crc >> 4) % 7: the same in every process
        ("backup", 1072746924, "24 6 * * *", "9,24,39,54 * * * *", "24 12 16 * 3"),
        ("report", 3291445124, "44 10 * * *", "14,29,44,59 * * * *", "14 13 26 * 6"),
        ("Привет", 2833953177, "57 4 * * *", "12,27,42,57 * * * *", "27 10 11 * 2"),
    ],
)
def test_h_resolves_to_values_hashed_from_the_name(
    name: str, crc: int, daily: str, quarterly: str, ranged: str
) -> None:
    assert zlib.crc32(name.encode()) == crc
    assert CronSchedule("H H * * *", "UTC", name=name).normalized == daily
    assert CronSchedule("H/15 * * * *", "UTC", name=name).normalized == quarterly
    assert CronSchedule("H(0-29) H(9-17) H * H", "UTC", name=name).normalized == ranged


def test_h_in_a_process_started_afresh_takes_the_same_values() -> None:
    code = ("from mashroom_jobs import CronSchedule;"
            "print(CronSchedule('H H * * *', 'UTC', name='backup').normalized)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=60, check=True, env={"PYTHONHASHSEED": "12345"})
    assert out.stdout.strip() == "24 6 * * *"


def test_h_spreads_jobs_out_and_keeps_each_in_its_range() -> None:
    minutes = {CronSchedule("H(0-29) * * * *", "UTC", name=f"job-{i}").fields["minute"]
               for i in range(200)}
    values = set().union(*minutes)
    assert values <= set(range(30)) and len(values) >= 25
    steps = CronSchedule("H(30-59)/10 * * * *", "UTC", name="job-1").fields["minute"]
    assert min(steps) < 40 and sorted(steps) == list(range(min(steps), 60, 10))


def test_h_fires_like_the_values_it_resolved_to() -> None:
    assert fires("H 3 * * *", "Europe/Berlin", "2026-10-24T12:00:00+00:00", 2, name="backup") \
        == fires("24 3 * * *", "Europe/Berlin", "2026-10-24T12:00:00+00:00", 2)


def test_h_without_a_name_says_how_to_give_one() -> None:
    with pytest.raises(InvalidCronExpressionError) as info:
        CronSchedule("H * * * *", "UTC")
    assert str(info.value) == ("Invalid cron expression 'H * * * *': H needs the job's name: "
                               "CronSchedule(expr, zone, name=...)")
    with pytest.raises(InvalidCronExpressionError, match="H needs the job's name"):
        CronSchedule("0 H/2 * * *", "UTC", name="")


def test_a_name_that_is_not_a_string_is_a_type_error() -> None:
    with pytest.raises(TypeError, match="name must be a string or None, got int"):
        CronSchedule("H * * * *", "UTC", name=5)  # type: ignore[arg-type]


def test_the_name_matters_only_with_h() -> None:
    assert CronSchedule("0 6 * * *", "UTC", name="a") == CronSchedule("0 6 * * *", "UTC")
    assert repr(CronSchedule("0 6 * * *", "UTC", name="a")) == (
        "CronSchedule('0 6 * * *', timezone='UTC')")
    assert repr(CronSchedule("H 6 * * *", "UTC", name="a")) == (
        "CronSchedule('H 6 * * *', timezone='UTC', name='a')")


def test_shared_schedules_are_keyed_by_name_only_when_the_expression_has_h() -> None:
    assert shared_schedule("0 6 * * *", "UTC", name="a") is shared_schedule(
        "0 6 * * *", "UTC", name="b")
    assert shared_schedule("0 6 * * THU", "UTC", name="a") is shared_schedule(
        "0 6 * * THU", "UTC", name="b")  # the h of THU is no H
    a, b = shared_schedule("H 6 * * *", "UTC", name="a"), shared_schedule("H 6 * * *", "UTC",
                                                                          name="b")
    assert a is not b and a is shared_schedule("H 6 * * *", "UTC", name="a")
    assert (a.name, b.name) == ("a", "b")


def test_the_service_hashes_h_from_each_jobs_name(service: BackgroundJobService) -> None:
    first = service.schedule_job("backup", "H H * * *", lambda: None)
    second = service.schedule_job("report", "H H * * *", lambda: None)
    assert first.schedule is not None and second.schedule is not None
    assert (first.schedule.normalized, second.schedule.normalized) == (
        "24 6 * * *", "44 10 * * *")
    assert first.next_invocation == datetime(2026, 1, 1, 6, 24, tzinfo=UTC)
    assert first.description == "At 06:24 (H: hashed from the job's name)"


def test_the_panel_form_hashes_h_from_the_name_typed(panel: Any) -> None:
    panel.form.cron.value = "H 6 * * *"
    assert "H needs the job's name" in panel.form.feedback.value
    panel.form.name.value = "backup"
    assert panel.form.feedback.value.startswith(
        "At 06:24 (H: hashed from the job's name) — next: 2026-01-01 06:24:00")


def test_the_cron_command_hashes_h_from_name(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["cron", "H H * * *", "--tz", "UTC", "--name", "backup", "-n", "1",
                 "--from", "2026-01-01T00:00"]) == 0
    assert capsys.readouterr().out.splitlines() == [
        "H H * * *: At 06:24 (H: hashed from the job's name)",
        "Next 1 fire time after 2026-01-01T00:00:00+00:00 (UTC):",
        "  2026-01-01T06:24:00+00:00  Thu",
    ]
    assert main(["cron", "H H * * *", "--tz", "UTC"]) == 2
    assert "H needs the job's name" in capsys.readouterr().err


# --- errors -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ("0 0 W15 * *", "day-of-month item 'W15': write the day before W, as in '15W'"),
        ("0 0 32W * *", "day-of-month 32 is out of range 1-31"),
        ("0 0 L-3 * *", "day-of-month value 'L' is not a number (L stands alone or ends a range"),
        ("0 0 * * L", "day-of-week item 'L': L alone belongs in day-of-month"),
        ("0 0 * * MON#6", "the number after # is the occurrence in the month, 1-5, not '6'"),
        ("0 0 * * MON#0", "1-5, not '0'"),
        ("0 0 * * 1-3#2", "day-of-week item '1-3#2': # takes one weekday, as in 'MON#2'"),
        ("0 0 * * 1-5L", "day-of-week item '1-5L': L takes one weekday, as in '5L'"),
        ("0 0 * * 8#1", "day-of-week 8 is out of range 0-7"),
        ("L * * * *", "minute value 'L' is not a number (L and W belong in day-of-month"),
        ("0 15W * * *", "hour value '15W' is not a number (L and W belong in day-of-month"),
        ("0 0 1#2 * *", "(# belongs in day-of-week: MON#2 is the second Monday)"),
        ("H(30-10) * * * *", "minute range 'H(30-10)' runs backwards (30 > 10)"),
        ("H(0-99) * * * *", "minute 99 is out of range 0-59"),
        ("0 0 * * H(0-7)", "day-of-week range 'H(0-7)' must lie within 0-6"),
        ("H/0 * * * *", "minute step '0' in 'H/0' must be a positive whole number"),
        ("0 0 15W * */7", "it can never fire: no day of Jan, Feb, Mar, Apr, May, Jun, Jul, Aug, "
                          "Sep, Oct, Nov, Dec matches both day-of-month '15W' and day-of-week "
                          "'*/7'"),
        ("0 0 */31 2 5L", "it can never fire: no day of Feb matches both"),
    ],
    ids=lambda v: v if " " in v and len(v) < 20 else None,
)
def test_a_misused_extension_says_what_to_write(expression: str, message: str) -> None:
    with pytest.raises(InvalidCronExpressionError) as info:
        CronSchedule(expression, "UTC", name="job")
    assert message in str(info.value)
    assert repr(expression) in str(info.value)


def test_reboot_is_still_refused_with_a_hint() -> None:
    with pytest.raises(InvalidCronExpressionError, match="cron_schedule=None"):
        CronSchedule("@reboot", "UTC", name="job")


# --- descriptions -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("expression", "text"),
    [
        ("30 2 L * *", "At 02:30, on the last day of the month"),
        ("0 0 15W * *", "At 00:00, on the weekday nearest day 15 of the month"),
        ("0 0 lw * *", "At 00:00, on the last weekday of the month"),
        ("0 0 * * MON#2", "At 00:00, on the second Monday of the month"),
        ("0 0 * * 5L", "At 00:00, on the last Friday of the month"),
        ("0 0 * * l5", "At 00:00, on the last Friday of the month"),
        ("0 0 L * MON", "At 00:00, on the last day of the month, or on Monday"),
        # cron-descriptor says "on day 1 and L", "between day 15 and L", "on the Monday and
        # Wednesday", and drops Vixie's OR with a # weekday: these are ours
        ("0 0 1,L * *", "At 00:00, on day 1 or the last day of the month"),
        ("0 0 15-L * *", "At 00:00, on days 15 to the last of the month"),
        ("0 0 * * 1#2,3#1", "At 00:00, on the second Monday or the first Wednesday of the month"),
        ("0 0 * * SAT,MON#1", "At 00:00, on Saturday or the first Monday of the month"),
        ("0 0 1 * MON#2", "At 00:00, on day 1 of the month, or on the second Monday of the month"),
        ("0 0 L,*/10 * *", "0 0 L,*/10 * *"),  # a step among them: the expression says it
    ],
)
def test_describe_says_something_true_about_l_w_and_hash(expression: str, text: str) -> None:
    assert CronSchedule(expression, "UTC").describe() == text


def test_describe_shows_h_resolved_and_says_it_was_hashed() -> None:
    assert CronSchedule("H/15 * * * *", "UTC", name="backup").describe() == (
        "Every 15 minutes, minutes 9 through 59 past the hour (H: hashed from the job's name)")
    assert describe("H * * * *") == "H * * * * (H: hashed from the job's name)"
