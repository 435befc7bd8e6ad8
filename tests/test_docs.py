"""What the README says about errors is what the code does."""

from __future__ import annotations

import builtins
import re
from pathlib import Path

import pytest

import mashroom_jobs
from mashroom_jobs import CronSchedule, InvalidCronExpressionError, MashroomJobsError

README = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")


def _section(heading: str) -> str:
    """The text under a heading, up to the next heading of any level."""
    start = README.index(f"\n{heading}\n") + len(heading) + 2
    end = re.compile(r"^#{2,4} ", re.MULTILINE).search(README, start)
    return README[start:end.start() if end else None]


def _error_class(name: str) -> type[BaseException]:
    import traitlets

    cls = getattr(mashroom_jobs, name, None) or getattr(builtins, name, None) \
        or getattr(traitlets, name)
    assert isinstance(cls, type) and issubclass(cls, BaseException), name
    return cls


def test_the_errors_section_says_which_errors_derive_from_mashroom_jobs_error() -> None:
    section = _section("### Errors")
    intro, _, table = section.partition("\n| error | when |")
    rows = [line for line in table.splitlines() if line.startswith("| `")]
    assert len(rows) >= 5, table
    for row in rows:
        named, _, claimed = row.split("|")[1].partition("(")  # "`X` (a `ValueError`)"
        bases = [_error_class(base) for base in re.findall(r"`(\w+)`", claimed)]
        for name in re.findall(r"`(\w+)`", named):
            cls = _error_class(name)
            if issubclass(cls, MashroomJobsError):
                assert all(issubclass(cls, base) for base in bases), row
            else:  # the sentence above the table must not claim that it derives from the base
                assert f"`{name}`" in intro, f"the errors section's intro omits {name}: {intro}"


_QUOTED_CRON_ERRORS = re.findall(r"`(Invalid cron expression '[^`]*)`", README)


@pytest.mark.parametrize(
    "message",
    sorted({" ".join(m.split()) for m in _QUOTED_CRON_ERRORS}),  # may wrap over two lines
)
def test_every_cron_error_the_readme_quotes_is_the_one_the_parser_gives(message: str) -> None:
    expression = re.match(r"Invalid cron expression '(.*?)': ", message)
    assert expression is not None
    with pytest.raises(InvalidCronExpressionError) as info:
        CronSchedule(expression[1], "UTC")
    assert str(info.value) == message
