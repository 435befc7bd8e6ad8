"""Checks of the arguments users give: each bad one is an error naming it and its value.

Shared by ``schedule_job``, the plugin loader (a plugin's config) and the magics,
so the same value is refused with the same words wherever it comes from.
"""

from __future__ import annotations

import math
import unicodedata
from collections.abc import Collection

__all__ = ["MAX_NAME_LENGTH", "check_choice", "check_count", "check_flag", "check_name",
           "check_seconds"]

#: Longest job name, in characters: names are keys in tables, logs and the store.
MAX_NAME_LENGTH = 200


def check_name(name: object) -> str:
    """``name`` if it is a valid job name: one line of printable text, 1-200 characters."""
    if not isinstance(name, str):
        raise TypeError(f"name must be a string, got {type(name).__name__}")
    if not name.strip():
        raise ValueError("name must be a non-empty string")
    if len(name) > MAX_NAME_LENGTH:
        raise ValueError(
            f"name is {len(name):,} characters long; the limit is {MAX_NAME_LENGTH}: {name[:40]!r}…"
        )
    if not name.isprintable():  # control characters, line breaks, unassigned code points
        bad = next(c for c in name if not c.isprintable())
        raise ValueError(
            f"name {name!r} contains the non-printable character {bad!r} "
            f"(U+{ord(bad):04X} {unicodedata.name(bad, 'unnamed')}): names are one line of "
            "printable text"
        )
    return name


def check_seconds(value: object, what: str, *, low: float = 0.0,
                  allow_none: bool = False) -> float | None:
    """A finite number of seconds >= ``low`` (not a bool), or None when allowed."""
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) \
            or not math.isfinite(value):
        raise TypeError(f"{what} must be a number of seconds, got {value!r}")
    if value < low:
        raise ValueError(f"{what} must be at least {low:g} seconds, got {value!r}")
    return float(value)


def check_flag(value: object, what: str) -> bool:
    """True or False, nothing else (1, "yes" and None are refused)."""
    if not isinstance(value, bool):
        raise TypeError(f"{what} must be True or False, got {value!r}")
    return value


def check_count(value: object, what: str) -> int:
    """A whole number >= 0 (not a bool)."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{what} must be a whole number >= 0, got {value!r}")
    return value


def check_choice(value: object, what: str, choices: Collection[str]) -> str:
    """One of ``choices``."""
    if not isinstance(value, str) or value not in choices:
        raise ValueError(f"{what} must be one of {tuple(choices)}, got {value!r}")
    return value
