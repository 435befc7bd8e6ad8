"""Expressions in plain English: cron-descriptor where it is right, our words where not.

cron-descriptor describes a lone ``L``, ``15W``, ``LW``, ``MON#2`` or ``5L`` well, but not
lists or ranges holding them (``1,L`` comes out as "on day 1 and L of the month"), nor
Vixie's OR between a day of the month and a ``#`` or ``L`` weekday; for those the day
part is ours. ``H`` is described by the values it resolved to, and says it was hashed.
"""

from __future__ import annotations

import calendar
import functools

from ..errors import InvalidCronExpressionError
from .fields import DOW, FIVE, H_NEEDS_NAME, SIX, narrow_long_steps
from .parsing import BLANKS, MACROS, Parsed, parse_expression

__all__ = ["describe", "describe_parsed"]

_ORDINALS = ("first", "second", "third", "fourth", "fifth")
_BOTH = " (only on days matching both the day-of-month and the day-of-week)"
_HASHED = " (H: hashed from the job's name)"


@functools.lru_cache(maxsize=1024)
def describe(expression: str) -> str:
    """Plain-English description of an expression; the expression itself when it is not
    valid, and with ``H`` (whose values need the job's name) it says so."""
    try:
        parsed = parse_expression(expression, None)
    except InvalidCronExpressionError as exc:
        return f"{expression}{_HASHED}" if str(exc).endswith(H_NEEDS_NAME) else expression
    return describe_parsed(expression, parsed)


def describe_parsed(expression: str, parsed: Parsed) -> str:
    """Plain-English description of a parsed expression (``H`` as resolved)."""
    dom, dow = parsed.fields[3], parsed.fields[5]
    text = parsed.resolved if parsed.hashed else expression
    described = _describe(text, parsed.day_or, dom.extended, dow.extended)
    return f"{described}{_HASHED}" if parsed.hashed else described


@functools.lru_cache(maxsize=1024)
def _describe(expression: str, day_or: bool, dom_extended: bool, dow_extended: bool) -> str:
    text = expression.strip(BLANKS)
    text = MACROS.get(text.lower(), text).replace("?", "*")
    parts = text.split()
    notes: list[str] = []
    for i, field in enumerate(SIX if len(parts) == 6 else FIVE):
        parts[i], found = narrow_long_steps(parts[i], field)
        notes += found
    described = _described(parts, day_or, dom_extended, dow_extended, expression)
    return f"{described} ({'; '.join(notes)})" if notes else described


def _described(parts: list[str], day_or: bool, dom_extended: bool, dow_extended: bool,
               expression: str) -> str:
    from cron_descriptor import Options, get_description

    dom, dow = parts[-3].upper(), parts[-1].upper()  # cron-descriptor reads 'l' as a day
    ours = None
    # (both day fields restricted yet AND-ed: only where a long step was narrowed away
    # from a leading '*'; cron-descriptor would join them with "or")
    both = not day_or and dom != "*" and dow != "*"
    if (dom_extended and "," in dom) or "-L" in dom or (dow_extended and ("," in dow or day_or)) \
            or (both and "*" not in dom + dow and "/" not in dom + dow):
        ours = _days(dom, dow, day_or)
        if ours is None:
            return expression  # a step among L, W or # items: the expression says it best
        dom = dow = "*"
    try:
        options = Options()
        options.use_24hour_time_format = True
        options.verbose = False
        description: str = get_description(" ".join([*parts[:-3], dom, parts[-2], dow]),
                                           options)
    except Exception:  # cron-descriptor rejects some valid forms; the expression still speaks
        return expression
    if ours is not None:
        return f"{description}, {ours}"
    if dom != "*" and dow != "*" and not day_or:
        # cron-descriptor does not know the Vixie rule: here both day fields must match
        description += _BOTH
    return description


def _days(dom: str, dow: str, day_or: bool) -> str | None:
    """Our words for the day fields, or None when an item is beyond them (a step)."""
    phrases = []
    if dom != "*":
        items = [_dom_item(item) for item in dom.split(",")]
        if None in items:
            return None
        phrases.append(f"on {' or '.join(filter(None, items))} of the month")
    if dow != "*":
        items = [_dow_item(item) for item in dow.split(",")]
        if None in items:
            return None
        monthly = "#" in dow or "L" in dow
        phrases.append(f"on {' or '.join(filter(None, items))}"
                       + (" of the month" if monthly else ""))
    if len(phrases) == 2:
        joined = ", or ".join(phrases) if day_or else ", ".join(phrases)
        return joined if day_or else joined + _BOTH
    return phrases[0]


def _dom_item(item: str) -> str | None:
    if item == "L":
        return "the last day"
    if item == "LW":
        return "the last weekday"
    if item.endswith("W"):
        return f"the weekday nearest day {int(item[:-1])}"
    if "/" in item or "*" in item:
        return None
    first, _, last = item.partition("-")
    if not last:
        return f"day {int(first)}"
    return f"days {int(first)} to {'the last' if last == 'L' else int(last)}"


def _dow_item(item: str) -> str | None:
    if "/" in item or "*" in item:
        return None
    if "#" in item:
        day, _, nth = item.partition("#")
        return f"the {_ORDINALS[int(nth) - 1]} {_weekday(day)}"
    if len(item) > 1 and "L" in (item[0], item[-1]):
        return f"the last {_weekday(item[:-1] if item[-1] == 'L' else item[1:])}"
    first, _, last = item.partition("-")
    return f"{_weekday(first)} to {_weekday(last)}" if last else _weekday(first)


def _weekday(text: str) -> str:
    value = DOW.names[text.lower()] if DOW.names and text.lower() in DOW.names else int(text)
    return calendar.day_name[(value - 1) % 7]  # calendar counts from Monday, cron from Sunday
