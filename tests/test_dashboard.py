"""The jobs dashboard without a browser: the recent-runs table, the shipped notebook and the
``mashroom-jobs dashboard`` command (Voila itself replaced where it would start a server).

The browser test (tests/e2e/test_voila_dashboard.py) runs the real command in Voila.
"""

from __future__ import annotations

import ast
import os
import socket
import sys
import threading
import zipfile
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import nbformat
import pytest
from ipywidgets import Widget

import mashroom_jobs
from mashroom_jobs import BackgroundJobService, JobInvocation, Outcome
from mashroom_jobs.cli import main
from mashroom_jobs.dashboards import JOBS_DASHBOARD
from mashroom_jobs.panel import RecentRuns
from mashroom_jobs.panel.runs import recent_runs_html
from mashroom_jobs.testing import ManualClock, wait_for

REPO = Path(__file__).parents[1]


def noop() -> None:
    pass


@pytest.fixture
def table(service: BackgroundJobService) -> Iterator[RecentRuns]:
    """A RecentRuns without its refresher thread: tests call ``refresh()``."""
    runs = RecentRuns(service, limit=5, auto_refresh=False)
    yield runs
    runs.close()
    Widget.close_all()


def cells(table: RecentRuns) -> list[list[str]]:
    """The table's rows (header first) as lists of cell HTML."""
    import re

    rows = re.findall(r"<tr>(.*?)</tr>", table.table.value)
    return [re.findall(r"<t[hd][^>]*>(.*?)</t[hd]>", row) for row in rows]


# --- the recent-runs table ---------------------------------------------------------------------


def test_recent_runs_lists_every_jobs_runs_newest_first_with_the_jobs_name(
    service: BackgroundJobService, clock: ManualClock, table: RecentRuns
) -> None:
    assert table.table.value == "<i>No runs yet.</i>"
    first = service.schedule_job("first", "0 9 * * *", noop)
    second = service.schedule_job("second", "0 9 * * *", lambda: 1 / 0)
    first.invoke_now().result()
    clock.advance(seconds=1)
    second.invoke_now().result()
    clock.advance(seconds=1)
    first.invoke_now().result()
    assert table.refresh() is True
    header, *rows = cells(table)
    assert header == ["time", "job", "trigger", "duration", "result"]
    assert [(r[0], r[1], r[2]) for r in rows] == [
        ("00:00:02", "first", "manual"), ("00:00:01", "second", "manual"),
        ("00:00:00", "first", "manual"),
    ]
    assert "ZeroDivisionError: division by zero" in rows[1][4]
    assert "ok" in rows[0][4]


def test_recent_runs_shows_at_most_its_limit(
    service: BackgroundJobService, clock: ManualClock, table: RecentRuns
) -> None:
    job = service.schedule_job("often", "0 9 * * *", noop)
    for _ in range(7):
        job.invoke_now().result()
        clock.advance(seconds=1)
    table.refresh()
    _header, *rows = cells(table)
    assert [r[0] for r in rows] == ["00:00:06", "00:00:05", "00:00:04", "00:00:03", "00:00:02"]


def test_a_refresh_that_finds_nothing_new_sends_nothing(
    service: BackgroundJobService, clock: ManualClock, table: RecentRuns,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    service.schedule_job("job", "0 9 * * *", noop).invoke_now().result()
    assert table.refresh() is True
    sent: list[Any] = []
    original = Widget._send
    monkeypatch.setattr(Widget, "_send", lambda self, msg, buffers=None: (
        sent.append(msg), original(self, msg, buffers)))
    clock.advance(seconds=30)  # clock times, not "30 s ago": nothing to update
    assert table.refresh() is False
    assert sent == []


def test_the_title_says_where_the_runs_come_from(
    service: BackgroundJobService, table: RecentRuns, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert "of this kernel (kept in memory: no job store is configured)" in table.heading.value
    # the job store gives the service its file's path (`store_path`)
    monkeypatch.setattr(BackgroundJobService, "store_path", "/srv/jobs/store.sqlite",
                        raising=False)
    table.refresh()
    assert "from the job store <code>/srv/jobs/store.sqlite</code>" in table.heading.value


def test_runs_of_other_processes_say_where_they_ran() -> None:
    now = datetime(2026, 1, 1, 12, 0, tzinfo=timezone.utc)
    mine = JobInvocation(timestamp=now, scheduled_for=now, trigger="schedule",
                         execution_time_ms=3.0, outcome=Outcome.OK)
    theirs = JobInvocation(timestamp=now - timedelta(seconds=5), scheduled_for=None,
                           trigger="manual", execution_time_ms=4.0, outcome=Outcome.FAILED,
                           error_message="ValueError: no", origin="host pid 7 kernel abcdef12")
    html = recent_runs_html([("a", mine), (None, theirs)], now, timezone.utc,
                            own_origin="host pid 1")
    assert "<th align=left" in html and ">ran in</th>" in html
    assert ">this kernel</td>" in html
    assert ">kernel abcdef12</td>" in html
    assert ">—</td>" in html  # a run whose job this kernel cannot name
    assert "ValueError: no" in html
    # without other processes' runs, no "ran in" column
    assert "ran in" not in recent_runs_html([("a", mine)], now, timezone.utc)


def test_the_refresher_thread_updates_the_table_and_ends_with_the_service(
    clock: ManualClock,
) -> None:
    service = BackgroundJobService(clock=clock, timezone="UTC")
    table = RecentRuns(service, refresh_interval=0.5)
    try:
        assert table.refreshing
        service.schedule_job("job", "0 9 * * *", noop).invoke_now().result()
        assert wait_for(lambda: "manual" in table.table.value, timeout=10)
        service.shutdown()
        assert wait_for(lambda: not table.refreshing, timeout=10)
        assert "The service was shut down" in table.heading.value
    finally:
        table.close()
        service.shutdown()
        Widget.close_all()


def test_closing_the_table_stops_its_thread(service: BackgroundJobService) -> None:
    table = RecentRuns(service, refresh_interval=0.5)
    assert table.refreshing
    table.close()
    assert not table.refreshing
    assert table.comm is None and table.table.comm is None and table.heading.comm is None


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [({"limit": 0}, "limit must be a whole number from 1 to 500, got 0"),
     ({"limit": True}, "limit must be"),
     ({"refresh_interval": 0.1}, "refresh_interval must be at least 0.5 s, got 0.1")],
    ids=["limit-0", "limit-bool", "interval-too-short"],
)
def test_bad_arguments_are_refused_naming_them(
    service: BackgroundJobService, kwargs: dict[str, Any], error: str
) -> None:
    with pytest.raises(ValueError, match=error):
        RecentRuns(service, auto_refresh=False, **kwargs)


# --- the dashboard notebook -------------------------------------------------------------------


def test_the_dashboard_notebook_ships_in_the_wheel(tmp_path: Path) -> None:
    from hatchling.builders.wheel import WheelBuilder

    wheel = next(iter(WheelBuilder(str(REPO)).build(directory=str(tmp_path),
                                                    versions=["standard"])))
    with zipfile.ZipFile(wheel) as archive:
        assert "mashroom_jobs/dashboards/jobs.ipynb" in archive.namelist()
        shipped = archive.read("mashroom_jobs/dashboards/jobs.ipynb")
    assert shipped == JOBS_DASHBOARD.read_bytes()


def test_the_dashboard_notebook_is_saved_without_outputs_and_its_code_parses() -> None:
    from IPython.core.inputtransformer2 import TransformerManager

    notebook = nbformat.read(JOBS_DASHBOARD, as_version=4)
    nbformat.validate(notebook)
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert code
    for cell in code:
        assert cell.outputs == [] and cell.execution_count is None
        ast.parse(TransformerManager().transform_cell(cell.source))


def test_the_dashboard_notebook_shows_the_control_room_and_runs_no_job_itself(
    ip: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from traitlets.config import Config

    from mashroom_jobs import Command
    from mashroom_jobs.durable import JobDefinition

    monkeypatch.chdir(REPO)  # restored after the notebook moves to the command's folder
    monkeypatch.setenv("MASHROOM_JOBS_DASHBOARD_CWD", str(tmp_path))
    # the profile's store, given relative: read from the command's folder
    ip.config = Config({"BackgroundJobService": {"store": "jobs.sqlite"}})
    definer = mashroom_jobs.BackgroundJobService(store=str(tmp_path / "jobs.sqlite"),
                                                 durable_jobs=False)
    assert definer.durable is not None
    definer.durable.define(JobDefinition.make("nightly", "0 3 * * *", Command(["true"]),
                                              timezone="UTC"))
    notebook = nbformat.read(JOBS_DASHBOARD, as_version=4)
    results = []
    try:
        for cell in notebook.cells:
            if cell.cell_type == "code":
                result = ip.run_cell(cell.source)
                result.raise_error()
                results.append(result.result)
        panel, runs = results
        try:
            assert Path.cwd() == tmp_path
            assert isinstance(panel, mashroom_jobs.JobsPanel)
            service = panel.service
            assert service.store_path == str(tmp_path / "jobs.sqlite")
            # a view and a remote control: it hosts nothing, loads no plugin, beats no heart
            assert service.durable is not None and service.durable.host is None
            assert service.jobs == () and service.plugins == ()
            assert [r.name.value for r in panel.rows] == ["nightly"]
            assert panel.form.box.layout.display == "none"
            assert isinstance(runs, RecentRuns) and runs.service is service
            assert service.durable.hosts() == []
        finally:
            runs.close()
            panel.close()
            panel.service.shutdown()
    finally:
        definer.shutdown()


# --- the command --------------------------------------------------------------------------------


@pytest.fixture
def voila_launches(monkeypatch: pytest.MonkeyPatch) -> list[list[str]]:
    """The argv of each Voila start, instead of starting a server."""
    pytest.importorskip("voila")
    from voila.app import Voila

    launched: list[list[str]] = []
    monkeypatch.setattr(Voila, "launch_instance",
                        classmethod(lambda cls, argv=None, **kw: launched.append(list(argv))))
    monkeypatch.delenv("MASHROOM_JOBS_DASHBOARD_CWD", raising=False)
    return launched


def _one_line_error(capsys: pytest.CaptureFixture[str], code: int, start: str) -> str:
    _out, err = capsys.readouterr()
    assert code == 2, err
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith(start), err
    return lines[0]


def test_dashboard_serves_the_shipped_notebook_with_voila_on_the_given_port_and_token(
    voila_launches: list[list[str]], capsys: pytest.CaptureFixture[str], tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["dashboard", "--port", "0", "--token", "my-team-token",
                 "--no-browser"]) == 0
    [argv] = voila_launches
    assert argv[0] == str(JOBS_DASHBOARD) and JOBS_DASHBOARD.is_file()
    assert JOBS_DASHBOARD.parent.parent == Path(sys.modules["mashroom_jobs"].__file__).parent
    port = int(next(a for a in argv if a.startswith("--Voila.port=")).split("=")[1])
    assert port > 0  # 0: a free port, found before Voila starts
    assert "--Voila.ip=127.0.0.1" in argv and "--Voila.token=my-team-token" in argv
    assert "--Voila.port_retries=0" in argv and "--Voila.open_browser=False" in argv
    _, err = capsys.readouterr()
    assert err == (f"mashroom-jobs dashboard: serving http://127.0.0.1:{port}/"
                   f"?token=my-team-token (Ctrl-C stops it)\n")
    assert os.environ["MASHROOM_JOBS_DASHBOARD_CWD"] == str(tmp_path)


def test_dashboard_makes_a_new_token_each_start(voila_launches: list[list[str]]) -> None:
    main(["dashboard", "--port", "0", "--no-browser"])
    main(["dashboard", "--port", "0", "--no-browser"])
    tokens = [next(a for a in argv if a.startswith("--Voila.token=")) for argv in voila_launches]
    assert len(set(tokens)) == 2 and all(len(t) > len("--Voila.token=") + 40 for t in tokens)


def test_dashboard_opens_the_page_with_its_token_once_the_server_listens(
    voila_launches: list[list[str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    import webbrowser

    opened: list[str] = []
    monkeypatch.setattr(webbrowser, "open", lambda url, *a, **kw: opened.append(url))
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        port = server.getsockname()[1]
        server.close()
        listening = socket.socket()

        def launch(cls: Any, argv: Any = None, **kw: Any) -> None:
            # the server listens only after Voila started: the browser waits for it
            listening.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            listening.bind(("127.0.0.1", port))
            listening.listen()

        from voila.app import Voila

        monkeypatch.setattr(Voila, "launch_instance", classmethod(launch))
        try:
            main(["dashboard", "--port", str(port), "--token", "open-me-please"])
            assert wait_for(lambda: opened, timeout=10)
        finally:
            listening.close()
    assert opened == [f"http://127.0.0.1:{port}/?token=open-me-please"]


def test_dashboard_without_voila_names_the_pip_command(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(sys.modules, "voila.app", None)  # import voila.app fails
    line = _one_line_error(capsys, main(["dashboard", "--no-browser"]),
                           "mashroom-jobs dashboard: ")
    assert line.endswith("needs Voila: pip install 'mashroom-jobs[dashboard]'")


def test_dashboard_on_a_port_in_use_fails_before_voila_starts(
    voila_launches: list[list[str]], capsys: pytest.CaptureFixture[str]
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        line = _one_line_error(capsys, main(["dashboard", "--port", str(port), "--no-browser"]),
                               f"mashroom-jobs dashboard: cannot serve the dashboard on "
                               f"127.0.0.1:{port}: ")
    assert "in use" in line
    assert voila_launches == []


@pytest.mark.parametrize(
    ("args", "message"),
    [(["--port", "http"], "argument --port: expected a port number from 1 to 65535"),
     (["--port", "70000"], "got '70000'"),
     (["--port", "1", "--port", "2"], "argument --port: given twice ('1', then '2')"),
     (["--token", "short"], "argument --token: expected 8 to 256 letters"),
     (["--token", "with space in it"], "got 'with space in it'"),
     (["--ip", "no-such-host.invalid"], "cannot serve the dashboard on no-such-host.invalid")],
    ids=["port-word", "port-too-big", "port-twice", "token-short", "token-space", "ip-unknown"],
)
def test_dashboard_with_a_bad_flag_says_so_in_one_line_before_voila_starts(
    voila_launches: list[list[str]], capsys: pytest.CaptureFixture[str],
    args: list[str], message: str,
) -> None:
    with pytest.raises(SystemExit) as exit_info:  # argparse's errors exit; ours return 2
        code = main(["dashboard", "--no-browser", *args])
        raise SystemExit(code)
    line = _one_line_error(capsys, int(exit_info.value.code or 0), "mashroom-jobs ")
    assert message in line
    assert voila_launches == []


def test_dashboard_needs_no_thread_left_behind(voila_launches: list[list[str]]) -> None:
    before = set(threading.enumerate())
    main(["dashboard", "--port", "0", "--no-browser"])
    assert set(threading.enumerate()) <= before


def test_dashboard_started_with_sigint_ignored_can_be_stopped_with_sigint(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # issue 25: backgrounded from a non-interactive shell, SIGINT is ignored by inheritance;
    # `run` handles it, and so must the dashboard (Voila handles only SIGTERM itself)
    pytest.importorskip("voila")
    import signal

    from voila.app import Voila

    seen: list[Any] = []
    monkeypatch.setattr(Voila, "launch_instance", classmethod(
        lambda cls, argv=None, **kw: seen.append(signal.getsignal(signal.SIGINT))))
    monkeypatch.delenv("MASHROOM_JOBS_DASHBOARD_CWD", raising=False)
    before = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        assert main(["dashboard", "--port", "0", "--no-browser"]) == 0
        assert seen == [signal.default_int_handler]  # Ctrl-C: KeyboardInterrupt, Voila stops
        assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN  # given back afterwards
    finally:
        signal.signal(signal.SIGINT, before)
