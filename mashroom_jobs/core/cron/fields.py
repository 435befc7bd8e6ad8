"""One cron field: its items, and the values they stand for.

Items are separated by commas; a value matches the field when it matches any item.
Every field takes numbers, ``*``, ranges (``9-17``) and steps (``*/5``, ``0-30/10``,
``a/n``), and ``H``: a value hashed from the job's name (``H``, ``H/15``, ``H(0-29)``,
``H(0-29)/10``). The day fields take more: ``L`` (the last day), ``15W`` (the weekday
nearest the 15th) and ``LW`` in day-of-month; ``MON#2`` (the second Monday) and ``5L``
(the last Friday) in day-of-week. Errors are :class:`FieldError` with the reason only;
the parser adds the expression.
"""

from __future__ import annotations

import calendar
import functools
import re
import unicodedata
from dataclasses import dataclass

__all__ = [
    "DOM", "DOW", "FIVE", "HOUR", "H_NEEDS_NAME", "MINUTE", "MONTH", "SECOND", "SIX",
    "Field", "FieldError", "FieldValues", "character", "narrow_long_steps", "number",
    "parse_field",
]

H_NEEDS_NAME = "H needs the job's name: CronSchedule(expr, zone, name=...)"


class FieldError(ValueError):
    """What is wrong with one field (the parser names the expression)."""


@dataclass(frozen=True, eq=False)
class Field:
    """One of the six fields: its name, range and names of values."""

    name: str
    low: int
    high: int
    names: dict[str, int] | None = None
    #: how many distinct values the field has (7 weekdays, although 7 is Sunday again)
    size: int = 0
    #: croniter's index of the field: its hash of a name is shifted right by this, and so is
    #: ours, so that ``H`` resolves to the values croniter gives with ``hash_id=name``
    hash_shift: int = 0
    #: the largest value a bare ``H`` draws (28 in day-of-month: a day every month has)
    hash_high: int = 0

    @property
    def top(self) -> int:
        """The last distinct value (6 for weekdays: 7 is Sunday again)."""
        return self.low + self.max_step - 1

    @property
    def max_step(self) -> int:
        """The largest step that is still true to its word.

        A step as long as the field (``*/60`` minutes) fires once per cycle, i.e. every 60
        minutes, as cron does; a longer one (``*/61``) holds only its first value, as in
        cron, and descriptions say so instead of "every 61 minutes".
        """
        return self.size or self.high - self.low + 1


_MONTHS = {m.lower(): i for i, m in enumerate(calendar.month_abbr) if m}
_DAYS = {"sun": 0, "mon": 1, "tue": 2, "wed": 3, "thu": 4, "fri": 5, "sat": 6}

SECOND = Field("second", 0, 59, hash_shift=5, hash_high=59)
MINUTE = Field("minute", 0, 59, hash_shift=0, hash_high=59)
HOUR = Field("hour", 0, 23, hash_shift=1, hash_high=23)
DOM = Field("day-of-month", 1, 31, hash_shift=2, hash_high=28)
MONTH = Field("month", 1, 12, _MONTHS, hash_shift=3, hash_high=12)
DOW = Field("day-of-week", 0, 7, _DAYS, size=7, hash_shift=4, hash_high=6)
FIVE = (MINUTE, HOUR, DOM, MONTH, DOW)
SIX = (SECOND, *FIVE)


@dataclass(frozen=True)
class FieldValues:
    """What one field matches: plain values, and the day fields' extensions."""

    #: plain values (weekdays 0-6, Sunday 0)
    values: frozenset[int]
    #: day-of-month ``L``: the last day of the month
    last_day: bool = False
    #: day-of-month ``nW``: the weekday nearest day n (``LW`` is ``31W``: n is capped at the
    #: month's last day)
    nearest: frozenset[int] = frozenset()
    #: day-of-week ``d#n``: (weekday, n), the n-th such weekday of the month
    nth: frozenset[tuple[int, int]] = frozenset()
    #: day-of-week ``dL``: the last such weekday of the month
    last_weekdays: frozenset[int] = frozenset()
    #: the field's text with each ``H`` item replaced by what it stands for
    resolved: str = ""
    hashed: bool = False
    #: the field repeats at a regular interval (``*``, ``*/n``, ``a/n``, ``H/n``): such a
    #: seconds, minute or hour field fires again in a repeated (fall-back) hour
    interval: bool = False

    @functools.cached_property
    def ordered(self) -> tuple[int, ...]:
        """The plain values, sorted."""
        return tuple(sorted(self.values))

    @functools.cached_property
    def extended(self) -> bool:
        """Whether the field uses L, W or #: days that depend on the month's calendar."""
        return bool(self.last_day or self.nearest or self.nth or self.last_weekdays)


_ITEM = re.compile(r"^(?P<base>\*|[^-/]+(?:-[^-/]+)?)(?:/(?P<step>.*))?$")
_HASH = re.compile(r"[Hh](?:\((?P<low>[^-)]*)-(?P<high>[^)]*)\))?(?:/(?P<step>.*))?")
_NEAREST = re.compile(r"(?P<day>[0-9]+)[Ww]")
_OPEN_STEP = re.compile(r"(?:[0-9]+|[Hh])/[0-9]+")
# Only ASCII 0-9 are cron digits: str.isdigit() also accepts '¹' (which int() refuses) and
# '٣' or '３' (which int() reads as 3); [0-9] in a str pattern is ASCII only, unlike \d.
_DIGITS = re.compile(r"[0-9]+")
#: more digits than this is out of range of every field (and would reach int()'s digit limit)
_MAX_DIGITS = 9


def number(text: str) -> int | None:
    """The value of a run of ASCII digits, or None when ``text`` is not one."""
    if _DIGITS.fullmatch(text) is None:
        return None
    digits = text.lstrip("0") or "0"
    return int(digits) if len(digits) <= _MAX_DIGITS else 10**_MAX_DIGITS


def _shown(text: str) -> str:
    """A number as an error message shows it: a long one shortened."""
    return text if len(text) <= 24 else f"{text[:20]}... ({len(text)} digits)"


def character(c: str) -> str:
    """``U+3000 IDEOGRAPHIC SPACE``: a character an error message cannot just print."""
    name = unicodedata.name(c, "")
    return f"U+{ord(c):04X} {name}" if name else f"U+{ord(c):04X}"


def _upper(text: str) -> str:
    # only ASCII is upper-cased: 'ſ'.upper() is 'S', and 'ſun' is no weekday
    return text.upper() if text.isascii() else text


def _digit_hint(text: str) -> str:
    if any(c.isdigit() or c.isnumeric() for c in text) and not text.isascii():
        return " (only the ASCII digits 0-9 are cron digits)"
    return ""


def _hint(text: str, field: Field) -> str:
    """Why a word that is not a number may have been meant, and what to write instead."""
    hint = _digit_hint(text)
    if hint:
        return hint
    word = _upper(text)
    if field is not DOM and (word in ("L", "LW") or _NEAREST.fullmatch(text)):
        return " (L and W belong in day-of-month: L, 15W, LW)"
    if field is DOM and word.startswith("L"):
        return " (L stands alone or ends a range: L, 1,L, 15-L)"
    if field is not DOW and "#" in text:
        return " (# belongs in day-of-week: MON#2 is the second Monday)"
    if field.names is not None:
        return f" (use {field.low}-{field.high} or names like {next(iter(field.names))!r})"
    return ""


def _value(text: str, field: Field) -> int:
    value = number(text)
    if value is None:
        if field.names is not None and text.isascii() and text.lower() in field.names:
            return field.names[text.lower()]
        raise FieldError(f"{field.name} value {text!r} is not a number{_hint(text, field)}")
    if not field.low <= value <= field.high:
        shown = value if value < 10**_MAX_DIGITS else _shown(text)
        raise FieldError(f"{field.name} {shown} is out of range {field.low}-{field.high}")
    return value


def _step(text: str, item: str, field: Field) -> int:
    step = number(text)
    if step is None:
        raise FieldError(
            f"{field.name} step {text!r} in {item!r} is not a number{_digit_hint(text)}"
        )
    if step == 0:
        raise FieldError(f"{field.name} step {text!r} in {item!r} must be a positive whole number")
    # A step longer than the field is accepted, as Vixie and Debian cron do: the item then
    # holds its first value (crontabs use '*/100,1-7' for the day-of-month part of "the
    # first Monday"); describe() says so (see narrow_long_steps).
    return step


def narrow_long_steps(text: str, field: Field) -> tuple[str, list[str]]:
    """``text`` (a field, valid) with each item whose step is longer than the field
    written as the one value it holds, and a note for each (``describe()`` uses them: a
    describer would read ``*/100`` as "every 100 days")."""
    items = text.split(",")
    notes: list[str] = []
    for i, item in enumerate(items):
        match = _ITEM.match(item)
        if match is None or match.group("step") is None:
            continue
        step = number(match.group("step"))
        if step is None or step <= field.max_step:
            continue
        try:
            values = _plain(item, text, field)
        except FieldError:  # not a plain item (the parser took it as something else)
            continue
        items[i] = str(values[0])
        shown = step if step < 10**_MAX_DIGITS else _shown(match.group("step"))
        notes.append(f"{field.name} step {shown} is longer than the field: it holds only "
                     f"{values[0]}")
    return ",".join(items), notes


def _hashed(match: re.Match[str], item: str, field: Field, crc: int) -> tuple[range, str]:
    """The values of an ``H`` item, and the plain text that says the same (croniter's way:
    the hash picks one value, or the start of a step within its first period)."""
    has_range = match.group("low") is not None
    low, high = field.low, field.top
    if has_range:
        low, high = _value(match.group("low"), field), _value(match.group("high"), field)
        if low > high:
            raise FieldError(f"{field.name} range {item!r} runs backwards ({low} > {high})")
        if high > field.top:
            raise FieldError(f"{field.name} range {item!r} must lie within {field.low}-{field.top}")
    step_text = match.group("step")
    if step_text is None:
        if not has_range:
            high = field.hash_high
        value = (crc >> field.hash_shift) % (high - low + 1) + low
        return range(value, value + 1), str(value)
    step = _step(step_text, item, field)
    start = (crc >> field.hash_shift) % (min(low + step - 1, high) - low + 1) + low
    one = start == high or step > field.max_step  # (a step longer than the field: one value)
    text = str(start) if one else f"{start}-{high}/{step}"
    return range(start, high + 1, step), text


class _Extensions:
    """The L, W and # items of a day field, as they are found."""

    __slots__ = ("last_day", "last_weekdays", "nearest", "nth")

    def __init__(self) -> None:
        self.last_day = False
        self.nearest: set[int] = set()
        self.nth: set[tuple[int, int]] = set()
        self.last_weekdays: set[int] = set()


def _day_item(item: str, field: Field, found: _Extensions) -> bool:
    """Take an L, W or # item of a day field into ``found``; False if it is none of them."""
    word = _upper(item)
    if field is DOM:
        if word == "L":
            found.last_day = True
        elif word == "LW":
            found.nearest.add(31)
        elif (match := _NEAREST.fullmatch(item)) is not None:
            found.nearest.add(_value(match.group("day"), DOM))
        elif word[:1] == "W" and number(item[1:]) is not None:
            raise FieldError(f"day-of-month item {item!r}: write the day before W, as in "
                             f"'{item[1:]}W' (the weekday nearest that day)")
        else:
            return False
        return True
    if field is not DOW:
        return False
    if "#" in item:
        day, _, nth_text = item.partition("#")
        if not day or any(c in day for c in "*-/"):
            raise FieldError(f"day-of-week item {item!r}: # takes one weekday, as in 'MON#2'")
        nth = number(nth_text)
        if nth is None or not 1 <= nth <= 5:
            raise FieldError(f"day-of-week item {item!r}: the number after # is the "
                             f"occurrence in the month, 1-5, not {nth_text!r}")
        found.nth.add((_value(day, DOW) % 7, nth))
        return True
    if word == "L":
        raise FieldError("day-of-week item 'L': L alone belongs in day-of-month; in "
                         "day-of-week put the weekday before it (5L is the last Friday)")
    if len(word) > 1 and "L" in (word[0], word[-1]):
        # 5L or FRIL (Quartz), and L5 (croniter's spelling): the last such weekday
        day = item[:-1] if word[-1] == "L" else item[1:]
        if any(c in day for c in "*-/"):
            raise FieldError(f"day-of-week item {item!r}: L takes one weekday, as in '5L'")
        found.last_weekdays.add(_value(day, DOW) % 7)
        return True
    return False


def _plain(item: str, text: str, field: Field) -> range:
    match = _ITEM.match(item)
    if match is None:
        raise FieldError(f"{field.name} field {text!r} has an empty or malformed item {item!r}")
    base, step_text = match.group("base"), match.group("step")
    step = 1 if step_text is None else _step(step_text, item, field)
    if base == "*":
        low, high = field.low, field.high
    elif "-" in base:
        first, last = base.split("-", 1)
        low = _value(first, field)
        # 'a-L' in day-of-month: from a to the last day of the month (31: no month is longer)
        high = DOM.high if field is DOM and _upper(last) == "L" else _value(last, field)
        if low > high:
            raise FieldError(f"{field.name} range {base!r} runs backwards ({low} > {high})")
    else:
        low = _value(base, field)
        # 'a/n' (node-schedule, Quartz) means from a to the end in steps of n
        high = field.high if step_text is not None else low
    return range(low, high + 1, step)


@functools.lru_cache(maxsize=4096)
def parse_field(text: str, field: Field, crc: int | None) -> FieldValues:
    """Expand one field into what it matches.

    Parameters
    ----------
    text : str
        The field as written (``?`` in a day field is ``*``).
    field : Field
        Which field it is.
    crc : int or None
        The hash of the job's name (CRC-32 of its UTF-8), for ``H``; None without a name.

    Raises
    ------
    FieldError
        Naming the item that is wrong, and how to write it.
    """
    if field in (DOM, DOW) and text == "?":
        text = "*"
    values: set[int] = set()
    found = _Extensions()
    resolved: list[str] = []
    hashed = False
    for item in text.split(","):
        if not item:
            raise FieldError(
                f"{field.name} field {text!r} has an empty or malformed item {item!r}")
        resolved.append(item)
        if (match := _HASH.fullmatch(item)) is not None:
            if crc is None:
                raise FieldError(H_NEEDS_NAME)
            expanded, resolved[-1] = _hashed(match, item, field, crc)
            values.update(expanded)
            hashed = True
        elif not _day_item(item, field, found):
            values.update(_plain(item, text, field))
    if field is DOW and 7 in values:
        values.discard(7)
        values.add(0)
    return FieldValues(
        frozenset(values),
        last_day=found.last_day,
        nearest=frozenset(found.nearest),
        nth=frozenset(found.nth),
        last_weekdays=frozenset(found.last_weekdays),
        resolved=",".join(resolved) if hashed else text,
        hashed=hashed,
        interval=text.startswith("*") or _OPEN_STEP.fullmatch(text) is not None,
    )
