"""``mashroom-jobs history``, ``mashroom-jobs store`` and ``run --store``, as real subprocesses."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from mashroom_jobs.store import SQLiteStore
from tests.test_cli import COMMAND, _config, _Process

WRITE_RUNS = r"""
import sys
from mashroom_jobs import BackgroundJobService
service = BackgroundJobService(store=sys.argv[1], kernel_id="3f2a9c1e-0000")
report = service.schedule_job("Nightly report", "0 2 * * *", lambda: print("12 rows"))
broken = service.schedule_job("broken", "0 3 * * *", lambda: 1 / 0)
for job in (report, report, broken):
    job.invoke_now().result(5)
service.shutdown()
"""


def _command(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*COMMAND, *args], capture_output=True, text=True, timeout=60)


def _default_store() -> str:
    return os.path.join(os.environ["JUPYTER_DATA_DIR"], "mashroom-jobs", "store.sqlite")


def _one_line_error(result: subprocess.CompletedProcess[str], code: int) -> str:
    assert result.returncode == code, (result.returncode, result.stderr)
    [line] = result.stderr.splitlines()
    assert "Traceback" not in result.stderr
    return line


@pytest.fixture
def written(tmp_path: Path) -> str:
    """A store that a process wrote three runs into, and exited."""
    path = str(tmp_path / "store.sqlite")
    subprocess.run([sys.executable, "-c", WRITE_RUNS, path], check=True, timeout=60,
                   capture_output=True)
    return path


def test_store_path_prints_the_default_store_the_kernels_use() -> None:
    result = _command("store", "path")
    assert result.returncode == 0 and result.stdout == _default_store() + "\n"
    assert _command("store", "path", "--store", "sqlite:////srv/x.sqlite").stdout == \
        "/srv/x.sqlite\n"


def test_history_lists_the_stored_runs_newest_first(written: str) -> None:
    result = _command("history", "--store", written)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == f"3 runs in {written}, newest first:"
    assert lines[1].split() == ["started", "job", "trigger", "duration", "result", "ran", "in"]
    assert "broken" in lines[2] and "FAILED ZeroDivisionError: division by zero" in lines[2]
    assert all("Nightly report  manual" in line and "  ok  " in line for line in lines[3:])
    assert all(line.endswith("kernel 3f2a9c1e-0000") for line in lines[2:])
    one = _command("history", "Nightly report", "--limit", "1", "--store", written)
    assert one.stdout.splitlines()[0] == f"1 run of 'Nightly report' in {written}, newest first:"
    none = _command("history", "nothing", "--store", written)
    assert none.stdout == f"No runs of 'nothing' in {written}\n"


def test_history_json_has_every_field(written: str) -> None:
    result = _command("history", "broken", "--json", "--store", written)
    [run] = json.loads(result.stdout)
    assert run["job"] == "broken" and run["trigger"] == "manual" and run["success"] is False
    assert run["error"] == "ZeroDivisionError: division by zero"
    assert run["traceback"].startswith("Traceback") and run["scheduled_for"] is None
    assert run["origin"].endswith("kernel 3f2a9c1e-0000") and run["attempt"] == 1
    [report, _] = json.loads(_command("history", "Nightly report", "--json", "--store",
                                      written).stdout)
    assert report["output"] == "12 rows\n"


def test_history_without_a_store_says_there_is_none(tmp_path: Path) -> None:
    line = _one_line_error(_command("history"), 1)
    assert line == (f"mashroom-jobs history: there is no job store at {_default_store()} "
                    f"(no run has been recorded there)")


@pytest.mark.parametrize(
    ("args", "message"),
    [(["history", "--limit", "0"], "argument --limit: expected a whole number from 1 to "
                                   "1,000,000, got '0'"),
     (["history", "--store", "postgresql://db"], "argument --store: unsupported store "
                                                 "'postgresql://db'"),
     (["history", "--store", "none"], "--store none: there is no job store to read"),
     (["store", "prune", "--keep-days", "0"], "argument --keep-days: expected a number of "
                                              "days above 0"),
     (["store", "shrink"], "argument action: invalid choice: 'shrink'"),
     (["history", "--limit", "5", "--limit", "6"], "argument --limit: given twice")],
    ids=["limit", "url", "none", "days", "action", "twice"],
)
def test_store_commands_with_bad_flags_fail_in_one_line(args: list[str], message: str) -> None:
    assert message in _one_line_error(_command(*args), 2)


def test_history_of_a_file_that_is_not_a_store_says_why(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_text("not a database\n" * 300)
    line = _one_line_error(_command("history", "--store", str(path)), 2)
    assert line == (f"mashroom-jobs history: cannot use the job store {path}: the file is "
                    f"not a SQLite database")


def test_store_prune_keeps_what_it_is_told_and_vacuum_reports_sizes(written: str) -> None:
    result = _command("store", "prune", "--keep-runs", "1", "--store", written)
    assert result.returncode == 0, result.stderr
    assert result.stdout == (f"Pruned 1 run from {written}, keeping the newest 1 of each job, "
                             f"of the last 30 days\n")
    store = SQLiteStore(written)
    try:
        assert store.count() == 2
    finally:
        store.close()
    vacuum = _command("store", "vacuum", "--store", written)
    assert vacuum.returncode == 0, vacuum.stderr
    assert vacuum.stdout.startswith(f"Vacuumed {written}: ") and vacuum.stdout.endswith(" MB\n")


def test_store_vacuum_while_another_process_writes_fails_saying_so(written: str) -> None:
    other = sqlite3.connect(written, isolation_level=None, timeout=0)
    try:
        other.execute("BEGIN IMMEDIATE")  # held for longer than the store waits (2 s)
        result = _command("store", "vacuum", "--store", written)
    finally:
        other.execute("ROLLBACK")
        other.close()
    line = _one_line_error(result, 1)
    assert line == (f"mashroom-jobs store: cannot use the job store {written}: another process "
                    f"holds it locked (waited 2 s): database is locked")


def test_run_writes_its_runs_to_the_store_the_kernels_use(plugin_dists: Any,
                                                          tmp_path: Path) -> None:
    config = _config(tmp_path, "c.BackgroundJobService.plugin_config = "
                               "{'Example heartbeat': {'invoke_immediately': True}}\n")
    process = _Process("run", "--config", config, env=plugin_dists.env(plugin_dists.example))
    try:
        process.wait_for_line(f"job store: {_default_store()}$")
        process.wait_for_line(r"job 'Example heartbeat' ran in")
        assert process.stop(signal.SIGTERM) == 0, process.text
    finally:
        process.kill()
    store = SQLiteStore(_default_store())
    try:
        [run] = store.history("Example heartbeat")
        assert run.trigger == "immediate" and run.origin.endswith(f"pid {process.proc.pid}")
    finally:
        store.close()


@pytest.mark.parametrize("where", ["flag", "config"])
def test_run_takes_its_store_from_the_flag_or_the_config(plugin_dists: Any, tmp_path: Path,
                                                         where: str) -> None:
    path = str(tmp_path / "elsewhere.sqlite")
    settings = "c.BackgroundJobService.plugin_config = {'Example heartbeat': {}}\n"
    if where == "config":
        settings += f"c.BackgroundJobService.store = {path!r}\n"
    args = ["--store", path] if where == "flag" else []
    process = _Process("run", "--config", _config(tmp_path, settings), *args,
                       env=plugin_dists.env(plugin_dists.example))
    try:
        process.wait_for_line(f"job store: {path}$")
        assert process.stop(signal.SIGTERM) == 0, process.text
    finally:
        process.kill()
    assert not os.path.exists(_default_store())


def test_run_with_store_none_keeps_runs_in_memory(plugin_dists: Any, tmp_path: Path) -> None:
    process = _Process("run", "--store", "none", env=plugin_dists.env(plugin_dists.example))
    try:
        process.wait_for_line(r"job store: none \(runs are kept in memory\)")
        assert process.stop(signal.SIGTERM) == 0, process.text
    finally:
        process.kill()
    assert not os.path.exists(_default_store())


def test_run_with_a_bad_store_fails_at_start_saying_why(plugin_dists: Any,
                                                        tmp_path: Path) -> None:
    path = tmp_path / "prices.csv"
    path.write_text("name,price\n" * 300)
    result = subprocess.run([*COMMAND, "run", "--store", str(path)], capture_output=True,
                            text=True, timeout=60, env=plugin_dists.env(plugin_dists.example))
    line = _one_line_error(result, 2)
    assert line == (f"mashroom-jobs run: cannot use the job store {path}: the file is not a "
                    f"SQLite database (--store none keeps runs in memory)")


def test_history_says_skipped_and_missed_fires_are_not_failures(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from datetime import datetime, timezone

    from mashroom_jobs import JobInvocation, Outcome
    from mashroom_jobs.cli import main

    path = str(tmp_path / "store.sqlite")
    store = SQLiteStore(path)
    fire = datetime(2026, 3, 1, 7, tzinfo=timezone.utc)
    for minute, outcome in enumerate((Outcome.MISSED, Outcome.SKIPPED, Outcome.OK)):
        at = fire.replace(minute=minute)
        store.record("report", JobInvocation(at, at, "schedule", 12.5, outcome, job="report"))
    store.close()
    assert main(["history", "--store", path]) == 0
    lines = capsys.readouterr().out.splitlines()[2:]
    results = [line.split("  schedule  ")[1].split()[:2] for line in lines]
    assert results == [["12.5", "ms"], ["-", "skipped"], ["-", "missed"]]
    assert "ok" in lines[0] and "FAILED" not in "".join(lines)
    assert main(["history", "--json", "--store", path]) == 0
    runs = json.loads(capsys.readouterr().out)
    assert [(r["outcome"], r["success"]) for r in runs] == [
        ("ok", True), ("skipped", False), ("missed", False)]
    # `jobs show --json` says a run in the same words (less its output and traceback)
    assert main(["jobs", "add", "report", "0 7 * * *", "--call", "json:dumps",
                 "--store", path]) == 0
    capsys.readouterr()
    assert main(["jobs", "show", "report", "--json", "--store", path]) == 0
    shown = json.loads(capsys.readouterr().out)["runs"]
    assert shown == [{k: v for k, v in run.items() if k not in ("output", "traceback")}
                     for run in runs]
