"""The jobs dashboard in a real browser: ``mashroom-jobs dashboard`` (Voila) in headless
Chromium, driven by Playwright.

The command is started as a user starts it (fixture ``dashboard`` in ``conftest.py``), its
IPython profile naming the job store of the session's JupyterLab server, whose server
extension hosts a durable job.  The page is the control room over that host: its kernel
runs no job (not even the installed example plugin's, which the profile makes fire every
second), and its buttons act through the store.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import urllib.parse
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
from test_browser import ARTIFACTS, DOCS, START, UPDATE, button, job_row
from test_server_host import API, api_job, wait_until

if TYPE_CHECKING:
    from collections.abc import Callable

    from conftest import Dashboard, LabServer

pytestmark = [pytest.mark.browser, pytest.mark.timeout(300)]

SCREENSHOT = "dashboard.png"


def test_dashboard_is_a_control_room_over_the_hosts_and_runs_no_job_itself(
    page: Page, dashboard: Dashboard, jupyter_lab: LabServer,
    durable_job: Callable[[str], str],
) -> None:
    name = durable_job("dashboard-tick")  # hosted by the JupyterLab server's extension
    # The command says where it serves, token included.
    assert f"serving {dashboard.url} (Ctrl-C stops it)" in dashboard.log()

    # Without the token, Voila asks for it: the page's buttons steer the jobs.
    page.goto(dashboard.url.split("?")[0])
    expect(page).to_have_url(re.compile(r"/login\b"))
    expect(page.locator(".mashroom-jobs-panel")).to_have_count(0)

    page.goto(dashboard.url)
    panel = page.locator(".mashroom-jobs-panel")
    expect(panel).to_be_visible(timeout=START)  # Voila ran the notebook in a new kernel
    # Voila shows outputs and Markdown, never code.
    expect(page.locator("h1", has_text="Background jobs")).to_be_visible()
    expect(page.get_by_text("control_room_service")).to_have_count(0)

    # The hosts: the JupyterLab server, alive (the page's kernel hosts nothing).
    hosts = panel.locator(".mashroom-jobs-hosts")
    expect(hosts).to_contain_text(re.compile(r"● server .* alive"), timeout=UPDATE)
    expect(hosts).not_to_contain_text("this process")
    # The durable job, from the store, with its runs as a strip; no other row: the page's
    # kernel runs no plugin's job, and offers no "Add a job".
    row = job_row(panel, name)
    expect(row).to_be_visible(timeout=UPDATE)
    expect(row).to_contain_text("durable")
    expect(row.locator(".mashroom-jobs-cell").nth(2)).to_be_attached(timeout=UPDATE)
    expect(panel.locator(".mashroom-jobs-row")).to_have_count(1)
    expect(panel.get_by_text("Add a job")).to_be_hidden()
    assert dashboard.evaluate("len(service.jobs), service.durable.host") == "(0, None)"
    assert dashboard.evaluate("'mashroom_jobs_example' in __import__('sys').modules") == "False"

    # The recent runs, newest first: the server's runs of the job, kept coming.
    runs = page.locator(".mashroom-jobs-runs")
    expect(runs).to_contain_text("Recent runs")
    table_rows = runs.locator("table tr")
    expect(table_rows.nth(1)).to_contain_text(re.compile(rf"^\d\d:\d\d:\d\d{name}schedule"),
                                             timeout=UPDATE)
    newest = table_rows.nth(1).text_content() or ""
    expect(table_rows.nth(1)).not_to_have_text(newest, timeout=UPDATE)

    save_screenshot(page, runs)

    # Pause from the page: the server's host obeys (through the store); Resume undoes it.
    button(panel, f"Pause {name}").click()
    waited = wait_until(lambda: api_job(jupyter_lab, name)["here"]["paused"] is True, 10)
    print(f"the server's host obeyed the dashboard's Pause in {waited:.2f} s")
    expect(button(panel, f"Resume {name}")).to_be_visible(timeout=UPDATE)
    expect(row).to_contain_text("paused")
    button(panel, f"Resume {name}").click()
    wait_until(lambda: api_job(jupyter_lab, name)["here"]["paused"] is False, 10)
    # Run now: one of its hosts runs it, as a manual run, within about a second.
    button(panel, f"Run {name} now").click()
    wait_until(lambda: any(r["trigger"] == "manual" for r in jupyter_lab.api(
        f"runs?job={urllib.parse.quote(name)}&limit=5", prefix=API)["runs"]), 10)

    # Ctrl-C stops the command, which shuts the page's kernel down and exits with 0.
    dashboard.process.send_signal(signal.SIGINT)
    try:
        code = dashboard.process.wait(30)
    except subprocess.TimeoutExpired:
        pytest.fail(f"mashroom-jobs dashboard did not stop on Ctrl-C:\n{dashboard.log()}")
    assert code == 0, dashboard.log()
    assert "Kernel shutdown" in dashboard.log()
    assert "mashroom_jobs.serverext" not in dashboard.log()  # Voila hosts no jobs either


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
