"""The jobs panel in a real browser: JupyterLab and Notebook 7 in headless Chromium, driven
by Playwright.

Widget-model tests prove the panel's logic; this proves that a person sees it,
that it updates live (also while a cell blocks the kernel's main thread), and
that clicks on its buttons reach the kernel, in each front end (the same scenario,
parametrized: ``lab``, ``notebook7``). What differs between them (how the page shows
that the kernel is ready) is in :class:`FrontEnd`. Fixtures: ``conftest.py`` here.
"""

from __future__ import annotations

import os
import re
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

try:
    from playwright.sync_api import FloatRect, Locator, Page, expect
except ImportError:  # CI must run this test: there, a missing Playwright is an error
    if os.environ.get("CI"):
        raise
    pytest.skip(
        "Playwright for Python is not installed (pip install -e '.[e2e]')",
        allow_module_level=True,
    )

pytestmark = [pytest.mark.browser, pytest.mark.timeout(300)]

NOTEBOOK = "panel_e2e.ipynb"
FAST = "heartbeat"  # "* * * * * *"
SLOW = "weekday-report"  # "0 9 * * 1-5": never fires during a run, but once a day
LONG = "long-export"  # "0 3 * * *": runs until it is stopped, when the test runs it
KERNEL_IDLE = "Python 3 (ipykernel) | Idle"  # the kernelspec's display name, then the state
REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "test-artifacts"
DOCS = REPO / "docs"
RUNS = re.compile(r"^runs (\d+)")  # a row's counts label: "runs 3 · failed 0"

# Timeouts in ms: generous, and bounded. Measured values are far lower (see docs).
START = 60_000  # kernel start, first render
UPDATE = 15_000  # a click's round trip, a run of the seconds-level job


# The kernel as the page knows it (window.jupyterapp, exposed by the server's flags): a
# session with a kernel that is connected and idle.  The toolbar's execution indicator alone
# reads "idle" for a moment while the notebook still has "No Kernel", in both front ends.
KERNEL_READY_JS = """() => {
    const kernel = window.jupyterapp?.shell?.currentWidget?.sessionContext?.session?.kernel;
    return !!kernel && kernel.connectionStatus === "connected" && kernel.status === "idle";
}"""


@dataclass(frozen=True)
class FrontEnd:
    """What differs between JupyterLab and Notebook 7 in this test."""

    name: str

    def expect_kernel_idle(self, page: Page, timeout: float) -> None:
        """Wait until the notebook's kernel is up and idle, as the page shows it."""
        if self.name == "lab":
            # Lab's status bar names the kernel only once it exists: "Python 3 (ipykernel) | Idle"
            expect(page.locator("#jp-main-statusbar")).to_contain_text(KERNEL_IDLE,
                                                                        timeout=timeout)
            return
        # Notebook 7 has no status bar: its toolbar shows the kernel's name and a status
        # indicator; the indicator is trusted only once the page's session has a kernel.
        page.wait_for_function(KERNEL_READY_JS, timeout=timeout)
        expect(page.locator(".jp-Toolbar-kernelName")).to_have_text("Python 3 (ipykernel)")
        expect(page.locator(".jp-Notebook-ExecutionIndicator")).to_have_attribute(
            "data-status", "idle", timeout=timeout)

    def save_screenshot(self, page: Page, panel: Locator) -> None:
        """The panel (Lab: ``panel.png``) or the page around it (Notebook 7:
        ``notebook7.png``, with the front end's own header) in test-artifacts/, and in
        docs/ with ``MASHROOM_JOBS_UPDATE_SCREENSHOT=1``."""
        if self.name == "lab":
            save_screenshot(page, panel, "panel.png", clip=True)
        else:
            save_screenshot(page, panel, f"{self.name}.png", clip=False)


def run_cell(page: Page, cell: Locator) -> None:
    """Run ``cell`` in place, as a user does (Ctrl+Enter adds no new cell)."""
    cell.locator(".jp-InputArea-editor").click()
    page.keyboard.press("Control+Enter")


def job_row(panel: Locator, name: str) -> Locator:
    """The panel's row of the job ``name`` (found by the label with its name)."""
    # `has=` is matched relative to each row, so it starts from the page, not the panel.
    label = panel.page.locator(".widget-label", has_text=re.compile(rf"^{re.escape(name)}$"))
    return panel.locator(".mashroom-jobs-row").filter(has=label)


def run_count_label(row: Locator) -> Locator:
    """The label of ``row`` that shows its counts: ``runs 3 · failed 0``."""
    return row.locator(".widget-label").filter(has_text=RUNS)


def run_count(row: Locator) -> int:
    """The run count ``row`` shows now."""
    text = run_count_label(row).inner_text()
    match = RUNS.search(text)
    assert match, f"no run count in {text!r}"
    return int(match.group(1))


def wait_for_run_count_change(row: Locator, seen: int, timeout: float = UPDATE) -> int:
    """Wait until ``row`` shows a run count other than ``seen``; return it."""
    expect(run_count_label(row)).not_to_have_text(re.compile(rf"^runs {seen}\b"), timeout=timeout)
    return run_count(row)


def button(panel: Locator, tooltip: str) -> Locator:
    """The panel's button whose tooltip (the HTML ``title``) is ``tooltip``."""
    return panel.locator(f'button[title="{tooltip}"]')


def save_screenshot(page: Page, panel: Locator, name: str, *, clip: bool,
                    margin: float = 8) -> None:
    """A PNG of the panel (``clip``) or of the page with the panel in view, as
    test-artifacts/NAME, and docs/NAME when asked to update the docs' pictures."""
    # No hover or focus ring on the last clicked button in the picture.
    page.mouse.move(0, 0)
    page.evaluate("document.activeElement?.blur()")
    panel.scroll_into_view_if_needed()
    box = panel.bounding_box()
    assert box is not None, "the panel is not visible"
    area = None
    if clip:
        area = FloatRect(
            x=max(box["x"] - margin, 0),
            y=max(box["y"] - margin, 0),
            width=box["width"] + 2 * margin,
            height=box["height"] + 2 * margin,
        )
    path = ARTIFACTS / name
    path.parent.mkdir(exist_ok=True)
    page.screenshot(path=str(path), clip=area)
    if os.environ.get("MASHROOM_JOBS_UPDATE_SCREENSHOT") == "1":
        DOCS.mkdir(exist_ok=True)
        shutil.copy(path, DOCS / name)


def test_jobs_panel_renders_updates_live_and_its_buttons_reach_the_kernel(
    page: Page,
    front_end: str,
    fresh_notebook: Callable[[str], str],
    notebook_url: Callable[[str], str],
    kernel_eval: Callable[[str, str], str],
) -> None:
    ui = FrontEnd(front_end)
    notebook = fresh_notebook(NOTEBOOK)  # a kernel of its own for each front end

    def in_kernel(expression: str) -> str:
        return kernel_eval(notebook, f"(lambda service: {expression})(mashroom_jobs.get_service())")

    page.goto(notebook_url(notebook))
    ui.expect_kernel_idle(page, timeout=START)
    cells = page.locator(".jp-NotebookPanel .jp-Notebook .jp-Cell")
    expect(cells).to_have_count(3)
    setup, block = cells.nth(1), cells.nth(2)

    # The setup cell loads the extension, schedules three jobs and shows the panel.
    run_cell(page, setup)
    panel = setup.locator(".jp-OutputArea-output .mashroom-jobs-panel")
    expect(panel).to_be_visible(timeout=START)
    fast, slow, long = job_row(panel, FAST), job_row(panel, SLOW), job_row(panel, LONG)
    for row in (fast, slow, long):
        expect(row).to_be_visible(timeout=UPDATE)
    expect(panel.locator(".mashroom-jobs-row")).to_have_count(3)

    # Schedules are described in English (cron-descriptor).
    expect(fast).to_contain_text("Every second")
    expect(slow).to_contain_text("At 09:00, Monday through Friday")
    expect(long).to_contain_text("At 03:00")

    # The seconds-level job's run count grows, pushed to the browser from the kernel.
    first = run_count(fast)
    second = wait_for_run_count_change(fast, first)
    assert second > first

    # "Run <name> now" runs the weekday job at once: its run count and last run change.
    assert run_count(slow) == 0
    expect(slow).to_contain_text("never")  # its last run
    button(panel, f"Run {SLOW} now").click()
    assert wait_for_run_count_change(slow, 0) == 1
    expect(slow).not_to_contain_text("never")
    expect(slow).to_contain_text(re.compile(r"· \d+ ms · ok"))  # time · duration · outcome
    assert in_kernel(f"service.get_job({SLOW!r}).run_count") == "1"

    # While a cell blocks the kernel's main thread, jobs run and the panel keeps updating.
    run_cell(page, block)
    expect(block.locator(".jp-InputPrompt")).to_contain_text("[*]")
    block_output = block.locator(".jp-OutputArea-output")
    expect(block_output).to_contain_text("main thread blocked", timeout=UPDATE)
    started = time.monotonic()
    seen = [run_count(fast)]
    for _ in range(3):
        seen.append(wait_for_run_count_change(fast, seen[-1], timeout=5_000))
    elapsed = time.monotonic() - started
    print(f"run counts shown while the main thread was blocked: {seen}, in {elapsed:.1f} s")
    # Still inside time.sleep(6): the three updates came while the main thread was blocked.
    assert "main thread free" not in block_output.inner_text(), f"counts seen: {seen}"
    assert seen == sorted(set(seen)), f"run counts seen while blocked: {seen}"
    expect(block_output).to_contain_text("main thread free", timeout=UPDATE)
    ui.expect_kernel_idle(page, timeout=UPDATE)

    # "Pause <name>" pauses the job: the button turns into "Resume <name>".
    button(panel, f"Pause {SLOW}").click()
    expect(button(panel, f"Resume {SLOW}")).to_be_visible(timeout=UPDATE)
    expect(button(panel, f"Pause {SLOW}")).to_have_count(0)
    expect(slow).to_contain_text("paused")  # in place of its next run
    expect(panel).to_contain_text("1 paused")  # the header's totals
    assert in_kernel(f"service.get_job({SLOW!r}).paused") == "True"

    ui.save_screenshot(page, panel)

    # "Resume <name>" undoes it.
    button(panel, f"Resume {SLOW}").click()
    expect(button(panel, f"Pause {SLOW}")).to_be_visible(timeout=UPDATE)
    expect(panel).to_contain_text("0 paused")
    assert in_kernel(f"service.get_job({SLOW!r}).paused") == "False"

    # "Stop <name>" is shown only while the job runs, and stops the run.
    expect(button(panel, f"Stop {LONG}")).to_have_count(0)
    button(panel, f"Run {LONG} now").click()
    # a run still going 0.25 s after it started is published as running
    expect(button(panel, f"Stop {LONG}")).to_be_visible(timeout=UPDATE)
    expect(long).to_contain_text("running…")
    expect(panel).to_contain_text("1 running")  # the header's totals
    button(panel, f"Stop {LONG}").click()
    expect(button(panel, f"Stop {LONG}")).to_have_count(0, timeout=UPDATE)
    expect(long).to_contain_text("stopped", timeout=UPDATE)  # the run's outcome
    expect(long).not_to_contain_text("running…")
    assert in_kernel(f"service.get_job({LONG!r}).last_invocation.error_message") == "'stopped'"
    assert in_kernel(f"service.get_job({LONG!r}).running") == "False"

    # "Unschedule <name>" removes the job: its row leaves the DOM, the kernel keeps the others.
    button(panel, f"Unschedule {FAST}").click()
    # The panel reuses rows: wait for the final DOM (two rows), not a moment in between.
    expect(panel.locator(".mashroom-jobs-row")).to_have_count(2, timeout=UPDATE)
    expect(fast).to_have_count(0)
    expect(slow).to_be_visible()
    expect(long).to_be_visible()
    expect(panel).to_contain_text("2 jobs ·")
    assert in_kernel("[job.name for job in service.jobs]") == repr([SLOW, LONG])
