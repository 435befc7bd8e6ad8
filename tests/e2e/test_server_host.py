"""The control room in a real browser: the JupyterLab server of the session (with the
mashroom-jobs server extension, installed and enabled as a user's is) hosts a durable job
with no kernel open; its JSON API refuses a request without the token; a notebook's panel
shows the job with its strip and the hosts, and its Pause is obeyed by the server's host.

Fixtures: ``conftest.py`` here (``jupyter_lab``, ``durable_job``, ``page``).
"""

from __future__ import annotations

import os
import re
import time
import urllib.error
import urllib.parse
import urllib.request
from datetime import datetime
from typing import TYPE_CHECKING, Any

import pytest

try:
    from playwright.sync_api import Page, expect
except ImportError:  # CI must run this test: there, a missing Playwright is an error
    if os.environ.get("CI"):
        raise
    pytest.skip("Playwright for Python is not installed (pip install -e '.[e2e]')",
                allow_module_level=True)

from test_browser import START, UPDATE, button, job_row, run_cell, save_screenshot

if TYPE_CHECKING:
    from collections.abc import Callable

    from conftest import LabServer

pytestmark = [pytest.mark.browser, pytest.mark.timeout(300)]

NOTEBOOK = "control_room_e2e.ipynb"
API = "mashroom-jobs/api"
CELL_TITLE = re.compile(r"^\d\d:\d\d:\d\d · (ok · \d+ ms|ran elsewhere in kernel .+)")


def api_job(server: LabServer, name: str) -> Any:
    return server.api(f"jobs/{urllib.parse.quote(name)}", prefix=API)


def wait_until(condition: Callable[[], bool], timeout: float) -> float:
    """Seconds until ``condition()`` held (polled every 50 ms); fails after ``timeout``."""
    started = time.monotonic()
    while not condition():
        if time.monotonic() - started > timeout:
            pytest.fail(f"not within {timeout} s")
        time.sleep(0.05)  # polling interval of a loop with a deadline
    return time.monotonic() - started


def test_the_servers_host_runs_a_durable_job_and_a_notebooks_panel_pauses_it(
    page: Page, jupyter_lab: LabServer, durable_job: Callable[[str], str]
) -> None:
    # No kernel: the server itself runs the job (the fixture waited for its runs).
    name = durable_job("server-tick")
    assert not [s for s in jupyter_lab.api("sessions") if s.get("path") == NOTEBOOK]

    # The API: refused without a token, the job with one.
    request = urllib.request.Request(f"{jupyter_lab.base_url}/{API}/jobs")
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=10)
    assert refused.value.code == 403
    (job,) = [j for j in jupyter_lab.api("jobs", prefix=API)["jobs"] if j["name"] == name]
    assert job["durable"] and job["hosted_here"] and job["here"]["paused"] is False
    assert job["last_run"]["outcome"] == "ok"

    try:
        # (reset: no tab of an earlier test's notebook restored beside this one)
        page.goto(jupyter_lab.url(NOTEBOOK) + "&reset")
        expect(page.locator("#jp-main-statusbar")).to_contain_text(
            "Python 3 (ipykernel) | Idle", timeout=START)
        setup = page.locator(".jp-NotebookPanel:visible .jp-Notebook .jp-Cell").nth(1)
        run_cell(page, setup)
        panel = setup.locator(".jp-OutputArea-output .e2e-control-room")
        expect(panel).to_be_visible(timeout=START)

        # The job's row, marked durable, with its recent runs as a strip of cells; the
        # table's headers; the hosts: the server and this kernel, alive.
        row = job_row(panel, name)
        expect(row).to_be_visible(timeout=UPDATE)
        expect(row).to_contain_text("durable")
        expect(row).to_contain_text("Every second")
        cells = row.locator(".mashroom-jobs-cell")
        expect(cells.nth(2)).to_be_attached(timeout=UPDATE)  # three runs shown, or more
        title = cells.last.get_attribute("title") or ""
        assert CELL_TITLE.match(title), title
        expect(panel.locator(".mashroom-jobs-columns")).to_contain_text("recent runs")
        # the kernel's own jobs: a failure is a red cell, a run outlasting its schedule is
        # followed by a skipped fire
        failed = job_row(panel, "flaky").locator('.mashroom-jobs-cell[data-outcome="failed"]')
        expect(failed.first).to_be_attached(timeout=UPDATE)
        assert "RuntimeError: the upstream API answered 503" in (
            failed.first.get_attribute("title") or "")
        skipped = job_row(panel, "slow").locator('.mashroom-jobs-cell[data-outcome="skipped"]')
        expect(skipped.first).to_be_attached(timeout=UPDATE)
        hosts = panel.locator(".mashroom-jobs-hosts")
        expect(hosts).to_contain_text(re.compile(r"● server .* alive"), timeout=UPDATE)
        expect(hosts).to_contain_text(re.compile(r"● kernel .*\(this process\)"),
                                      timeout=UPDATE)

        # Pause here: stored, and the server's host obeys (it follows the store each second).
        button(panel, f"Pause {name}").click()
        paused_at = time.time()
        waited = wait_until(lambda: api_job(jupyter_lab, name)["here"]["paused"] is True, 10)
        print(f"the server's host obeyed the panel's Pause in {waited:.2f} s")
        assert waited < 3
        expect(button(panel, f"Resume {name}")).to_be_visible(timeout=UPDATE)
        # ...and no host runs it any more
        time.sleep(2.5)  # a negative check: fires that would have come
        runs = jupyter_lab.api(f"runs?job={urllib.parse.quote(name)}&limit=1", prefix=API)
        newest = datetime.fromisoformat(runs["runs"][0]["scheduled_for"])  # with its offset
        assert newest.tzinfo is not None, newest
        assert newest.timestamp() <= paused_at + 1.5, (newest, paused_at)
        save_screenshot(page, panel, "strip.png", clip=True)
    finally:
        jupyter_lab.close_sessions(NOTEBOOK)
