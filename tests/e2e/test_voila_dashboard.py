"""The jobs dashboard in a real browser: ``mashroom-jobs dashboard`` (Voila) in headless
Chromium, driven by Playwright.

The command is started as a user starts it (fixture ``dashboard`` in ``conftest.py``);
Voila runs a kernel of its own for the page, which loads the installed example plugin,
configured by the IPython profile to fire every second.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
from typing import TYPE_CHECKING

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

# the panel's page helpers (this folder is on sys.path: pytest's default "prepend" import mode)
from test_browser import (
    ARTIFACTS,
    DOCS,
    START,
    UPDATE,
    button,
    job_row,
    run_count,
    wait_for_run_count_change,
)

if TYPE_CHECKING:
    from conftest import Dashboard

pytestmark = [pytest.mark.browser, pytest.mark.timeout(300)]

JOB = "Example heartbeat"  # the example plugin, made to fire every second
SCREENSHOT = "dashboard.png"
# the example plugin counts its runs (out of band: the dashboard notebook does not import it)
BEATS = "__import__('mashroom_jobs_example').BEATS"


def test_dashboard_serves_a_live_panel_and_recent_runs_and_unschedule_works(
    page: Page, dashboard: Dashboard
) -> None:
    # The command says where it serves, token included.
    assert f"serving {dashboard.url} (Ctrl-C stops it)" in dashboard.log()

    # Without the token, Voila asks for it: the page's buttons steer the jobs.
    page.goto(dashboard.url.split("?")[0])
    expect(page).to_have_url(re.compile(r"/login\b"))
    expect(page.locator(".mashroom-jobs-panel")).to_have_count(0)

    page.goto(dashboard.url)
    panel = page.locator(".mashroom-jobs-panel")
    expect(panel).to_be_visible(timeout=START)  # Voila ran the notebook in a new kernel
    # Voila shows outputs and Markdown, never code (strip_sources).
    expect(page.locator("h1", has_text="Background jobs")).to_be_visible()
    expect(page.get_by_text("load_extension")).to_have_count(0)
    # Only the plugin's job, described in English; the dashboard offers no "Add a job".
    row = job_row(panel, JOB)
    expect(row).to_be_visible(timeout=UPDATE)
    expect(panel.locator(".mashroom-jobs-row")).to_have_count(1)
    expect(row).to_contain_text("Every second")
    expect(panel.get_by_text("Add a job")).to_be_hidden()

    # The run count rises, pushed from the page's kernel.
    first = run_count(row)
    assert wait_for_run_count_change(row, first) > first

    # The recent runs, newest first, name the job and keep coming (a refresh every 2 s).
    runs = page.locator(".mashroom-jobs-runs")
    expect(runs).to_contain_text("Recent runs")
    table_rows = runs.locator("table tr")
    # (a row's text is its cells' text, run together)
    expect(table_rows.nth(1)).to_contain_text(re.compile(rf"^\d\d:\d\d:\d\d{JOB}schedule"),
                                             timeout=UPDATE)
    newest = table_rows.nth(1).text_content() or ""
    expect(table_rows.nth(1)).not_to_have_text(newest, timeout=UPDATE)
    expect(table_rows.nth(3)).to_be_visible(timeout=UPDATE)  # three runs listed, or more

    save_screenshot(page, runs)

    # Unschedule, found by its tooltip: the row goes, the kernel has no job left...
    button(panel, f"Unschedule {JOB}").click()
    expect(panel.locator(".mashroom-jobs-row")).to_have_count(0, timeout=UPDATE)
    expect(panel).to_contain_text("0 jobs ·")
    assert dashboard.evaluate("[j.name for j in mashroom_jobs.get_service().jobs]") == "[]"
    beats = dashboard.evaluate(BEATS)
    # ...and it stays removed. The recent runs come from the job store (the dashboard's
    # kernel uses the kernels' default store), so the job's past runs stay listed; what
    # must not happen is a new one. Once a refresh of the table (every 2 s) has listed the
    # last run, two more refreshes later the newest run listed is still the same, the job
    # has not run again, and its row has not come back. (A negative check: fixed waits.)
    page.wait_for_timeout(2_500)
    last_listed = table_rows.nth(1).text_content() or ""
    page.wait_for_timeout(4_500)
    expect(table_rows.nth(1)).to_have_text(last_listed)
    assert dashboard.evaluate(BEATS) == beats
    expect(panel.locator(".mashroom-jobs-row")).to_have_count(0)

    # Ctrl-C stops the command, which shuts the page's kernel down and exits with 0.
    dashboard.process.send_signal(signal.SIGINT)
    try:
        code = dashboard.process.wait(30)
    except subprocess.TimeoutExpired:
        pytest.fail(f"mashroom-jobs dashboard did not stop on Ctrl-C:\n{dashboard.log()}")
    assert code == 0, dashboard.log()
    assert "Kernel shutdown" in dashboard.log()


def save_screenshot(page: Page, last: Locator, margin: float = 16) -> None:
    """The dashboard page down to ``last`` (the recent runs) as
    test-artifacts/dashboard.png, and in docs/ with MASHROOM_JOBS_UPDATE_SCREENSHOT=1."""
    page.mouse.move(0, 0)
    box = last.bounding_box()
    assert box is not None, "the recent runs are not visible"
    viewport = page.viewport_size
    assert viewport is not None
    path = ARTIFACTS / SCREENSHOT
    path.parent.mkdir(exist_ok=True)
    page.screenshot(path=str(path), full_page=True, clip=FloatRect(
        x=0, y=0, width=viewport["width"], height=box["y"] + box["height"] + margin))
    if os.environ.get("MASHROOM_JOBS_UPDATE_SCREENSHOT") == "1":
        DOCS.mkdir(exist_ok=True)
        shutil.copy(path, DOCS / SCREENSHOT)
