"""Parsing a whole expression: fields, macros, the day rule, and whether it can ever fire.

A parse depends only on the text (and, for ``H``, the hash of the job's name), so it is
cached: 10,000 jobs on 10,000 expressions parse each field text once (``5``, ``*``,
``30``...), and a schedule made again from the same text costs a dictionary look-up.
"""

from __future__ import annotations

import calendar
import functools
import re
import zlib

from ..errors import InvalidCronExpressionError
from .days import ALL_DAYS, ALL_WEEKDAYS, DayRule, longest_month
from .fields import FIVE, SIX, FieldError, FieldValues, character, parse_field
from .walls import WallTimes

__all__ = ["BLANKS", "MACROS", "Parsed", "may_hash", "name_hash", "parse_expression"]

MACROS = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
#: the blanks that separate fields, as in cron; str.split() also splits on U+3000, U+00A0...
BLANKS = " \t\r\n\f\v"

#: a blank that is not one of BLANKS (\S is every non-blank of Unicode)
_ODD_BLANK = re.compile(r"[^\S \t\r\n\f\v]")
#: an H item: at the start of a field or after a comma, then the end, '(', '/' or ','
_H_ITEM = re.compile(r"(?:^|[ \t\r\n\f\v,])[Hh](?:$|[ \t\r\n\f\v(/,])")
_EVERY_DAY = FieldValues(ALL_DAYS, resolved="*")
_EVERY_WEEKDAY = FieldValues(ALL_WEEKDAYS, resolved="*")
_SECOND_ZERO = FieldValues(frozenset({0}), resolved="0")
_SIXTY = frozenset(range(60))


def name_hash(name: str) -> int:
    """The hash ``H`` resolves from: CRC-32 of the name's UTF-8, the same in every process
    and Python version (``hash()`` is salted per process), and croniter's ``hash_id`` hash."""
    return zlib.crc32(name.encode("utf-8", "surrogatepass"))


def may_hash(expression: str) -> bool:
    """Whether an expression has an ``H`` item, so that its job's name matters."""
    return ("H" in expression or "h" in expression) and _H_ITEM.search(expression) is not None


def _render(field: FieldValues, full: frozenset[int]) -> str:
    if field.values == full:
        return "*"
    items = [str(v) for v in sorted(field.values)]
    items += ["L"] if field.last_day else []
    items += [f"{day}W" for day in sorted(field.nearest)]
    items += [f"{day}#{nth}" for day, nth in sorted(field.nth)]
    items += [f"L{day}" for day in sorted(field.last_weekdays)]  # croniter's spelling of 5L
    return ",".join(items)


class Parsed:
    """A valid expression: what each field matches and the rules between them."""

    __slots__ = ("_normalized", "day_or", "fields", "has_seconds", "repeats_on_fall_back",
                 "resolved", "walls")

    def __init__(self, has_seconds: bool, fields: tuple[FieldValues, ...], day_or: bool,
                 repeats_on_fall_back: bool, walls: WallTimes, resolved: str) -> None:
        self.has_seconds = has_seconds
        #: second (``{0}`` for five fields), minute, hour, day-of-month, month, day-of-week
        self.fields = fields
        #: Vixie cron: both day fields are restricted, so a day matching either fires
        self.day_or = day_or
        self.repeats_on_fall_back = repeats_on_fall_back
        self.walls = walls
        #: the fields with H resolved (the expression's own text when it has no H)
        self.resolved = resolved
        self._normalized = ""

    @property
    def normalized(self) -> str:
        """One spelling per schedule: sorted values, ``*`` for a full field (croniter's
        syntax, except ``#`` and plain weekdays mixed, or ``W`` in a list)."""
        if not self._normalized:
            second, minute, hour, dom, month, dow = self.fields
            text = " ".join([
                _render(minute, _SIXTY), _render(hour, frozenset(range(24))),
                _render(dom, ALL_DAYS), _render(month, frozenset(range(1, 13))),
                _render(dow, ALL_WEEKDAYS),
            ])
            self._normalized = f"{_render(second, _SIXTY)} {text}" if self.has_seconds else text
        return self._normalized

    @property
    def hashed(self) -> bool:
        """Whether any field has an H item."""
        return any(field.hashed for field in self.fields)


@functools.lru_cache(maxsize=4096)
def parse_expression(expression: str, crc: int | None) -> Parsed:
    """Parse and validate an expression.

    Parameters
    ----------
    expression : str
        The expression as given.
    crc : int or None
        :func:`name_hash` of the job's name, for ``H``; None without a name.

    Raises
    ------
    InvalidCronExpressionError
        Saying what is wrong and what would be right.
    """
    text = expression.strip(BLANKS)
    odd = _ODD_BLANK.search(text)
    if odd is not None:
        raise InvalidCronExpressionError(
            expression,
            f"fields are separated by spaces or tabs, found {character(odd.group())} "
            f"at position {expression.index(odd.group())}",
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
    has_seconds = len(parts) == 6
    try:
        fields = [parse_field(p, f, crc) for p, f in zip(parts, SIX if has_seconds else FIVE)]
    except FieldError as exc:
        raise InvalidCronExpressionError(expression, str(exc)) from None
    if not has_seconds:
        fields.insert(0, _SECOND_ZERO)
    second, minute, hour, dom, month, dow = fields
    dom_text, dow_text = parts[-3], parts[-1]
    # Vixie cron: the day fields are OR-ed unless one of them starts with '*' (or '?')
    day_or = dom_text[0] not in "*?" and dow_text[0] not in "*?"
    if day_or and (dom.values == ALL_DAYS or dow.values == ALL_WEEKDAYS):
        # OR with a field that matches every day ('0 0 15 * 0-6') is every day
        fields[3] = dom = _EVERY_DAY
        fields[5] = dow = _EVERY_WEEKDAY
        day_or = False
    days = DayRule(dom, dow, day_or)
    _check_can_fire(expression, days, month.values, dom_text, dow_text)
    walls = WallTimes(second.ordered, minute.ordered, hour.ordered, month.ordered, days,
                      has_seconds)
    repeats = minute.interval or hour.interval or (has_seconds and second.interval)
    resolved = expression
    if any(field.hashed for field in fields):
        resolved = " ".join(f.resolved for f in fields[0 if has_seconds else 1:])
    return Parsed(has_seconds, tuple(fields), day_or, repeats, walls, resolved)


def _check_can_fire(expression: str, days: DayRule, months: frozenset[int],
                    dom_text: str, dow_text: str) -> None:
    dom, dow = days.dom, days.dow
    if not (dom.extended or dow.extended):
        if days.day_or:
            return  # any matching weekday fires
        longest = longest_month(months)
        if min(dom.values) > longest:
            names = ", ".join(calendar.month_abbr[m] for m in sorted(months))
            raise InvalidCronExpressionError(
                expression,
                f"it can never fire: day-of-month {min(dom.values)} does not exist in {names}",
            )
        return
    if not days.can_fire(months):
        names = ", ".join(calendar.month_abbr[m] for m in sorted(months))
        raise InvalidCronExpressionError(
            expression,
            f"it can never fire: no day of {names} matches both day-of-month {dom_text!r} "
            f"and day-of-week {dow_text!r}",
        )
