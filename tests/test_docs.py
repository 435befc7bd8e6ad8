"""What the documentation says is what the code does: the errors page, every cron error a
page quotes, and the examples of the README and of getting started."""

from __future__ import annotations

import builtins
import re
from pathlib import Path

import pytest

import mashroom_jobs
from mashroom_jobs import CronSchedule, InvalidCronExpressionError, MashroomJobsError

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
PAGES = {p.name: p.read_text(encoding="utf-8") for p in sorted(DOCS.glob("*.md"))}
README = (ROOT / "README.md").read_text(encoding="utf-8")


def _section(page: str, heading: str) -> str:
    """The text under a heading of a page, up to the next heading of any level."""
    text = PAGES[page]
    start = text.index(f"{heading}\n") + len(heading) + 1
    end = re.compile(r"^#{1,4} ", re.MULTILINE).search(text, start)
    return text[start:end.start() if end else None]


def _error_class(name: str) -> type[BaseException]:
    import traitlets

    cls = getattr(mashroom_jobs, name, None) or getattr(builtins, name, None) \
        or getattr(traitlets, name)
    assert isinstance(cls, type) and issubclass(cls, BaseException), name
    return cls


def test_the_errors_page_says_which_errors_derive_from_mashroom_jobs_error() -> None:
    section = _section("errors.md", "# Errors")
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


_QUOTED_CRON_ERRORS = [m for text in [README, *PAGES.values()]
                       for m in re.findall(r"`(Invalid cron expression '[^`]*)`", text)]


def test_the_pages_quote_cron_errors() -> None:
    assert len(_QUOTED_CRON_ERRORS) >= 5, _QUOTED_CRON_ERRORS


@pytest.mark.parametrize(
    "message",
    sorted({" ".join(m.split()) for m in _QUOTED_CRON_ERRORS}),  # may wrap over two lines
)
def test_every_cron_error_a_page_quotes_is_the_one_the_parser_gives(message: str) -> None:
    expression = re.match(r"Invalid cron expression '(.*?)': ", message)
    assert expression is not None
    with pytest.raises(InvalidCronExpressionError) as info:
        CronSchedule(expression[1], "UTC")
    assert str(info.value) == message


def _python_block(text: str, after: str) -> str:
    """The first ```python block after the line ``after``."""
    block = re.search(r"```python\n(.*?)\n```", text[text.index(after):], re.DOTALL)
    assert block is not None, after
    return block[1]


@pytest.mark.parametrize("text, after", [(README, "## In ten lines"),
                                         (PAGES["getting-started.md"], "## A first job")],
                         ids=["readme", "getting-started"])
def test_the_first_example_runs_and_prints_what_its_job_printed(
        text: str, after: str, capsys: pytest.CaptureFixture[str]) -> None:
    code = _python_block(text, after)
    assert "schedule_job" in code and "service.shutdown()" in code
    namespace: dict[str, object] = {}
    exec(compile(code, after, "exec"), namespace)
    job = namespace["job"]
    assert isinstance(job, mashroom_jobs.BackgroundJob)
    assert job.run_count == 1 and job.last_invocation is not None
    assert job.last_invocation.output == "refreshed\n"
