"""Notebook jobs: a notebook file with parameters, run in a fresh kernel (issue 22).

The first tests need no kernel (the target as data, papermill's conventions, bad input,
the store's pruning of executed notebooks, the CLI's options).  The rest start real
kernels (ipykernel), a few seconds each, and check after each that no kernel process is
left (``no_kernel_left``).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import tempfile
import threading
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import nbformat
import psutil
import pytest
from peers import Peer

from mashroom_jobs import (
    BackgroundJobService,
    JobInvocation,
    Notebook,
    Outcome,
    TargetError,
    TargetUnavailableError,
)
from mashroom_jobs.cli import main as cli_main
from mashroom_jobs.store import SQLiteStore
from mashroom_jobs.store.artifacts import MARKER, notebooks_folder
from mashroom_jobs.targets import target_from_data
from mashroom_jobs.targets.notebook import INJECTED_TAG, inject_parameters, notebook_revision
from mashroom_jobs.testing import ManualClock, wait_for

HERE = Path(__file__).parent
NOTEBOOKS = HERE / "notebooks"
SCRIPT = str(HERE / "notebook_process.py")


@pytest.fixture
def notebooks(tmp_path: Path) -> Path:
    """A copy of the fixture notebooks (runs read them; some tests change them)."""
    folder = tmp_path / "notebooks"
    shutil.copytree(NOTEBOOKS, folder)
    return folder


def _kernels() -> list[psutil.Process]:
    """Kernel processes started by this process, not yet reaped (zombies count)."""
    found = []
    for child in psutil.Process().children(recursive=True):
        try:
            if child.status() == psutil.STATUS_ZOMBIE or \
                    "ipykernel_launcher" in " ".join(child.cmdline()):
                found.append(child)
        except psutil.Error:
            continue
    return found


@pytest.fixture
def no_kernel_left() -> Iterator[None]:
    """After the test, no kernel (nor a zombie) of this process is left behind."""
    before = {p.pid for p in _kernels()}
    yield
    left = [p for p in _kernels() if p.pid not in before]
    assert not left, f"kernel processes left behind: {left}"


def _run(service: BackgroundJobService, target: Notebook, name: str = "report",
         **options: Any) -> JobInvocation:
    """Schedule ``target`` to run once now, wait for the run, return its record."""
    job = service.schedule_job(name, None, target, **options)
    assert service.wait_until_idle(90), f"the run of {target} did not end"
    last = job.last_invocation
    assert last is not None
    return last


def _executed(record: JobInvocation) -> Any:
    assert record.artifact is not None and os.path.isfile(record.artifact), record
    return nbformat.read(record.artifact, as_version=4)


# -- the target as data ------------------------------------------------------------------


def test_a_notebook_target_is_data_that_reads_back_equal_and_describes_itself(
        notebooks: Path) -> None:
    target = Notebook(notebooks / "report.ipynb", {"day": "friday", "count": 3},
                      kernel="python3", cwd=notebooks, output_dir=notebooks / "out")
    data = target.to_data()
    assert json.loads(json.dumps(data)) == data
    assert data["kind"] == "notebook" and data["path"] == str(notebooks / "report.ipynb")
    again = target_from_data(data)
    assert again == target and isinstance(again, Notebook)
    assert target.describe().endswith('report.ipynb -p day="friday" -p count=3')
    assert repr(target).startswith(f"Notebook({str(notebooks / 'report.ipynb')!r}, ")


def test_a_snapshot_pins_the_notebook_as_it_was_when_the_job_was_defined(
        notebooks: Path) -> None:
    path = notebooks / "report.ipynb"
    pinned = Notebook(path, snapshot=True)
    before = pinned.revision
    original = nbformat.read(path, as_version=4)
    assert before == notebook_revision(original)
    # outputs and execution counts do not make a new revision; an edited cell does
    original.cells[2].outputs = [nbformat.v4.new_output("stream", text="old output\n")]
    original.cells[2].execution_count = 7
    assert notebook_revision(original) == before
    original.cells[2].source += "\nprint('edited')"
    nbformat.write(original, path)
    assert notebook_revision(nbformat.read(path, as_version=4)) != before
    # the pinned target still runs what it read, also after a round trip through JSON
    again = target_from_data(json.loads(json.dumps(pinned.to_data())))
    assert isinstance(again, Notebook) and again.revision == before
    assert "edited" not in again.load().cells[2].source
    assert "edited" in Notebook(path).load().cells[2].source
    assert f"(snapshot {before})" in pinned.describe()


def test_parameters_are_injected_as_papermill_injects_them(notebooks: Path) -> None:
    from papermill.iorw import load_notebook_node
    from papermill.parameterize import parameterize_notebook

    parameters = {"day": "friday", "count": 3, "ratio": 0.5, "flags": [True, None],
                  "extra": {"a": "b"}}
    ours = nbformat.read(notebooks / "report.ipynb", as_version=4)
    unknown, tagged = inject_parameters(ours, parameters, "python", "python3")
    theirs = parameterize_notebook(load_notebook_node(str(notebooks / "report.ipynb")),
                                   parameters)
    assert tagged and unknown == ["ratio", "flags", "extra"]
    assert [c.source for c in ours.cells] == [c.source for c in theirs.cells]
    assert [c.metadata.get("tags", []) for c in ours.cells] == \
        [c.metadata.get("tags", []) for c in theirs.cells]
    assert ours.cells[2].metadata.tags == [INJECTED_TAG]
    # a second injection replaces the first; without a parameters cell, they go on top
    inject_parameters(ours, {"day": "sunday"}, "python", "python3")
    assert [c.source for c in ours.cells].count('# Parameters\nday = "sunday"\n') == 1
    assert sum(INJECTED_TAG in c.metadata.get("tags", []) for c in ours.cells) == 1
    plain = nbformat.read(notebooks / "failing.ipynb", as_version=4)
    unknown, tagged = inject_parameters(plain, {"x": 5}, "python", "python3")
    assert not tagged and unknown == ["x"] and plain.cells[0].source == "# Parameters\nx = 5\n"


def test_jobs_add_stores_a_notebook_job_with_its_parameters_and_snapshot(
        notebooks: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    store = str(tmp_path / "jobs.sqlite")
    path = str(notebooks / "report.ipynb")
    assert cli_main(["jobs", "add", "daily report", "0 7 * * *", "--notebook", path,
                     "-p", "day=today", "-p", "count=3", "-p", 'tags=["a", "b"]', "--snapshot",
                     "--output-dir", str(tmp_path / "runs"), "--store", store]) == 0
    capsys.readouterr()
    reader = SQLiteStore(store)
    try:
        [stored] = reader.control.definitions()
    finally:
        reader.close()
    target = target_from_data(stored.data["target"])
    assert isinstance(target, Notebook), stored
    assert target.parameters == {"day": "today", "count": 3, "tags": ["a", "b"]}
    assert target.revision == notebook_revision(nbformat.read(path, as_version=4))
    assert target.output_dir == str(tmp_path / "runs")
    # notebook options without a notebook, and a bad parameter, are usage errors
    for argv, words in ((["--command", "true", "--snapshot"], "--snapshot goes with --notebook"),
                        (["--notebook", path, "-p", "day"], "-p 'day' must be KEY=VALUE"),
                        (["--notebook", path, "--env", "A=1"], "--env goes with --command")):
        assert cli_main(["jobs", "add", "x", "0 7 * * *", *argv, "--store", store]) == 2
        assert words in capsys.readouterr().err


def test_the_schedule_magic_schedules_a_notebook_and_names_a_bad_one(
        ip: Any, service: BackgroundJobService, notebooks: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    from IPython.core.error import UsageError

    from mashroom_jobs.magics import JobMagics

    ip.register_magics(JobMagics(ip, service=service))
    path = notebooks / "report.ipynb"
    ip.run_line_magic("schedule", f'report "0 7 * * *" --notebook "{path}" -p day=friday '
                                  f'-p count=3')
    assert capsys.readouterr().out == \
        "Scheduled 'report': At 07:00, next run 2026-01-01 07:00:00 UTC\n"
    job = service.get_job("report")
    assert job is not None and job.target == Notebook(path, {"day": "friday", "count": 3})
    with pytest.raises(UsageError, match=re.escape(
            f"%schedule 'report': notebook not found: '{notebooks}/missing.ipynb'")):
        ip.run_line_magic("schedule", f'report "0 7 * * *" --notebook '
                                      f'"{notebooks}/missing.ipynb"')
    assert service.get_job("report") is job


# -- bad input: a clear error naming it, at scheduling time ---------------------------------


@pytest.mark.parametrize(("make", "error", "words"), [
    (lambda d: Notebook(d / "missing.ipynb"), TargetUnavailableError,
     "notebook not found: '{d}/missing.ipynb'"),
    (lambda d: Notebook(d / "report.txt"), TargetUnavailableError,
     "'{d}/report.txt' is not a notebook"),
    (lambda d: Notebook(d / "report.ipynb", kernel="no-such-kernel"), TargetUnavailableError,
     "unknown kernel 'no-such-kernel' for notebook '{d}/report.ipynb' (kernels here: "),
    (lambda d: Notebook(d / "report.ipynb", {"my-day": 1}), TargetError,
     "parameter 'my-day' is not a valid Python name"),
    (lambda d: Notebook(d / "report.ipynb", {"day": datetime(2026, 1, 1)}), TargetError,
     "parameters['day'] is a datetime"),
    (lambda d: Notebook(d / "report.txt", snapshot=True), TargetUnavailableError,
     "cannot read '{d}/report.txt' as a notebook"),
], ids=["missing file", "not a notebook", "unknown kernel", "bad name", "not JSON",
        "snapshot of a non-notebook"])
def test_bad_input_is_an_error_naming_it_and_the_job_of_that_name_is_kept(
        notebooks: Path, service: BackgroundJobService, make: Any, error: type[Exception],
        words: str) -> None:
    (notebooks / "report.txt").write_text("day = 'monday'\n")
    kept = service.schedule_job("report", "0 7 * * *", Notebook(notebooks / "report.ipynb"))
    with pytest.raises(error) as raised:
        service.schedule_job("report", "0 7 * * *", make(notebooks))
    assert words.format(d=notebooks) in str(raised.value)
    assert service.get_job("report") is kept and kept.active


def test_a_notebook_gone_at_fire_time_fails_the_run_naming_it(
        notebooks: Path, service: BackgroundJobService, clock: ManualClock) -> None:
    job = service.schedule_job("report", "0 7 * * *",
                               Notebook(notebooks / "report.ipynb"))
    (notebooks / "report.ipynb").unlink()
    clock.advance_to("2026-01-01T07:00:00+00:00")
    assert service.wait_until_idle(10)
    last = job.last_invocation
    assert last is not None and last.outcome is Outcome.FAILED
    assert last.error_message == (f"TargetUnavailableError: notebook not found: "
                                  f"'{notebooks}/report.ipynb'")


# -- the store keeps executed notebooks as long as their runs --------------------------------


def test_the_store_prunes_executed_notebooks_with_their_runs_and_nothing_else(
        tmp_path: Path) -> None:
    path = str(tmp_path / "store.sqlite")
    folder = Path(notebooks_folder(path))
    assert folder == tmp_path / "store-notebooks"
    (folder / "report").mkdir(parents=True)
    (folder / MARKER).write_text("")
    elsewhere = tmp_path / "mine.ipynb"  # a file a job reported by hand: never deleted
    elsewhere.write_text("{}")
    start = datetime(2026, 1, 1, tzinfo=timezone.utc)
    store = SQLiteStore(path, retention_runs=2, clock=ManualClock("2026-01-02T00:00:00Z"))
    try:
        files = []
        for i in range(4):
            file = folder / "report" / f"report-{i}.ipynb"
            file.write_text("{}")
            files.append(file)
            when = start + timedelta(minutes=i)
            store.record("report", JobInvocation(
                timestamp=when, scheduled_for=when, trigger="schedule", execution_time_ms=1.0,
                outcome=Outcome.OK, job="report", artifact=str(file)))
        store.record("mine", JobInvocation(
            timestamp=start, scheduled_for=start, trigger="schedule", execution_time_ms=1.0,
            outcome=Outcome.OK, job="mine", artifact=str(elsewhere)))
        store.record("mine", JobInvocation(
            timestamp=start + timedelta(hours=1), scheduled_for=None, trigger="manual",
            execution_time_ms=1.0, outcome=Outcome.OK, job="mine"))
        store.record("mine", JobInvocation(
            timestamp=start + timedelta(hours=2), scheduled_for=None, trigger="manual",
            execution_time_ms=1.0, outcome=Outcome.OK, job="mine"))
        assert wait_for(lambda: store.count() == 7)
        assert store.prune() == 3
    finally:
        store.close()
    assert [f.exists() for f in files] == [False, False, True, True]
    assert elsewhere.exists()


def test_history_prints_the_executed_notebooks_and_revisions(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = str(tmp_path / "store.sqlite")
    when = datetime(2026, 1, 1, 7, tzinfo=timezone.utc)
    store = SQLiteStore(path)
    store.record("report", JobInvocation(
        timestamp=when, scheduled_for=when, trigger="schedule", execution_time_ms=1500.0,
        outcome=Outcome.OK, job="report", artifact="/data/report-07-00.ipynb",
        revision="0123456789ab"))
    store.close()
    assert cli_main(["history", "report", "--store", path]) == 0
    out = capsys.readouterr().out
    assert "0123456789ab" in out and "/data/report-07-00.ipynb" in out
    assert cli_main(["history", "report", "--store", path, "--json"]) == 0
    [run] = json.loads(capsys.readouterr().out)
    assert run["artifact"] == "/data/report-07-00.ipynb" and run["revision"] == "0123456789ab"


# -- the panel: progress, and each run's executed notebook ---------------------------------


def _row(panel: Any, name: str) -> Any:
    [row] = [r for r in panel.rows if r.name.value == name]
    return row


def test_the_panel_says_which_cell_runs_and_shows_its_first_line_on_hover(
        service: BackgroundJobService, panel: Any) -> None:
    from mashroom_jobs import report_progress

    release = threading.Event()

    def job() -> None:
        report_progress("cell 7 of 20", "df = load(day)")
        release.wait(10)

    service.schedule_job("report", None, job)
    try:
        assert wait_for(lambda: service.get_job("report").state.progress == "cell 7 of 20")
        panel.flush()
        row = _row(panel, "report")
        assert row.last.value.startswith("<b>running: cell 7 of 20</b>")
        assert row.last.tooltip == "cell 7 of 20: df = load(day)"
    finally:
        release.set()
    assert service.wait_until_idle(5)
    panel.flush()
    assert "running" not in row.last.value


def test_an_executed_notebook_links_under_the_servers_root_and_else_is_shown(
        tmp_path: Path) -> None:
    from mashroom_jobs.panel.executed import find_server, notebook_link, render_notebook

    runtime = tmp_path / "runtime"
    runtime.mkdir()
    (runtime / "jpserver-4242.json").write_text(json.dumps(
        {"pid": 4242, "root_dir": str(tmp_path / "home"), "base_url": "/user/ann/"}))
    (runtime / "jpserver-99.json").write_text(json.dumps(
        {"pid": 99, "root_dir": "/", "base_url": "/"}))
    server = find_server({"JPY_PARENT_PID": "4242"}, str(runtime))
    assert server is not None and server.base_url == "/user/ann/"
    assert find_server({}, str(runtime)) is None  # a kernel no server started
    inside = str(tmp_path / "home" / "jobs" / "daily report" / "report 07.ipynb")
    assert notebook_link(inside, server) == \
        "/user/ann/lab/tree/jobs/daily%20report/report%2007.ipynb"
    assert notebook_link(str(tmp_path / "elsewhere.ipynb"), server) is None
    executed = {"cells": [
        {"cell_type": "markdown", "source": "# <Title>"},
        {"cell_type": "code", "execution_count": 1, "source": ["print(1)\n", "x"], "outputs": [
            {"output_type": "stream", "name": "stdout", "text": "1 < 2\n"},
            {"output_type": "execute_result", "data": {
                "text/html": "<script>alert(1)</script>", "text/plain": "'x'"}},
            {"output_type": "display_data", "data": {"image/png": "aGVsbG8=\n"}},
            {"output_type": "error", "ename": "E", "evalue": "v",
             "traceback": ["\x1b[0;31mE\x1b[0m: v"]}]}]}
    rendered = render_notebook(executed)
    assert "# &lt;Title&gt;" in rendered and "print(1)\nx" in rendered
    assert "1 &lt; 2" in rendered and "&#x27;x&#x27;" in rendered
    assert "<script>" not in rendered and "\x1b" not in rendered and "E: v" in rendered
    assert "src='data:image/png;base64,aGVsbG8='" in rendered


def test_the_expanded_row_lists_each_runs_notebook_and_shows_the_newest(
        service: BackgroundJobService, panel: Any, tmp_path: Path) -> None:
    from mashroom_jobs.context import report_artifact

    path = tmp_path / "report-07.ipynb"
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(
        "print('hello')", execution_count=1, outputs=[
            nbformat.v4.new_output("stream", text="hello from the report\n")])])
    nbformat.write(notebook, path)
    job = service.schedule_job("report", "@daily", lambda: report_artifact(str(path), "abc"))
    job.invoke_now().result(5)
    assert service.wait_until_idle(5)
    panel.flush()
    panel.button("Show details of report").click()
    detail = _row(panel, "report").detail.value
    assert "<th align=left>notebook</th>" in detail
    assert f'<span title="{path}">report-07.ipynb</span>' in detail  # no server: no link
    assert "<summary><b>Executed notebook of the run at " in detail
    assert "hello from the report" in detail


def test_the_forms_notebook_choice_schedules_a_notebook_with_its_parameters(
        service: BackgroundJobService, panel: Any, notebooks: Path) -> None:
    form = panel.form
    form.name.value = "report"
    form.cron.value = "0 7 * * *"
    form.runs.value = "notebook"
    assert form.notebook.box.layout.display is None and form.callable.layout.display == "none"
    form.notebook.path.value = str(notebooks / "missing.ipynb")
    panel.button("Schedule the job").click()
    assert f"notebook not found: '{notebooks}/missing.ipynb'" in form.message.value
    assert service.get_job("report") is None
    form.notebook.path.value = str(notebooks / "report.ipynb")
    form.notebook.parameters.value = 'day=friday count=3 title="Daily report"'
    panel.button("Schedule the job").click()
    assert form.message.value == "Scheduled report."
    job = service.get_job("report")
    assert job is not None and job.target == Notebook(
        notebooks / "report.ipynb", {"day": "friday", "count": 3, "title": "Daily report"})
    form.runs.value = "function"
    assert form.notebook.box.layout.display == "none" and form.callable.layout.display is None


def test_the_forms_parameters_are_pairs_or_a_json_object() -> None:
    from mashroom_jobs.panel.notebook_fields import parse_parameters

    assert parse_parameters('day=today n=3 on=true names=\'["a", "b"]\' t="a b"') == {
        "day": "today", "n": 3, "on": True, "names": ["a", "b"], "t": "a b"}
    assert parse_parameters('{"day": "today", "n": [1, 2]}') == {"day": "today", "n": [1, 2]}
    assert parse_parameters("  ") == {}
    for text, words in (("day", "the parameter 'day' must be KEY=VALUE"),
                        ('{"day": }', "the parameters are not a JSON object"),
                        ('t="open', "cannot read the parameters: No closing quotation")):
        with pytest.raises(TargetError, match=re.escape(words)):
            parse_parameters(text)


# -- real kernels --------------------------------------------------------------------------


@pytest.mark.usefixtures("no_kernel_left")
def test_a_parameterised_notebook_runs_at_a_fire_and_its_executed_copy_is_kept(
        notebooks: Path, tmp_path: Path, clock: ManualClock) -> None:
    store = str(tmp_path / "jobs.sqlite")
    service = BackgroundJobService(clock=clock, timezone="UTC", store=store)
    try:
        target = Notebook(notebooks / "report.ipynb", {"day": "friday", "count": 3,
                                                        "owner": "ann"})
        job = service.schedule_job("daily report", "0 7 * * *", target)
        clock.advance_to("2026-01-01T07:00:00+00:00")
        assert service.wait_until_idle(90)
        run = job.last_invocation
        assert run is not None and run.outcome is Outcome.OK, run
        assert run.scheduled_for == datetime(2026, 1, 1, 7, tzinfo=timezone.utc)
        # kept beside the store, a folder per job, named after the notebook and the fire
        assert run.artifact == str(tmp_path / "jobs-notebooks" / "daily report"
                                   / "report-2026-01-01T07-00-00-schedule.ipynb")
        assert run.revision == notebook_revision(nbformat.read(target.path, as_version=4))
        assert "friday: 63\n" in run.output and "folder: notebooks\n" in run.output
        # a parameter the parameters cell does not assign: papermill's warning
        assert "[mashroom-jobs] warning: Passed unknown parameter: owner (the cell tagged " \
               "'parameters' does not assign it)\n" in run.output
        executed = _executed(run)
        injected = executed.cells[2]
        assert injected.metadata.tags == [INJECTED_TAG]
        assert injected.source == \
            '# Parameters\nday = "friday"\ncount = 3\nowner = "ann"\n'
        assert executed.cells[3].outputs[0].text == "friday: 63\nfolder: notebooks\n"
        assert executed.cells[4].outputs[0].data["text/plain"] == \
            "{'day': 'friday', 'total': 63}"
        assert executed.metadata.mashroom_jobs["status"] == "ok"
        assert executed.metadata.mashroom_jobs["parameters"] == target.parameters
        assert service.history("daily report")[0].artifact == run.artifact
    finally:
        service.shutdown(timeout=10)


@pytest.mark.usefixtures("no_kernel_left")
def test_a_durable_notebook_job_is_data_another_service_runs_and_a_snapshot_outlives_its_file(
        notebooks: Path, tmp_path: Path) -> None:
    store = str(tmp_path / "jobs.sqlite")
    definer = BackgroundJobService(clock=ManualClock(), timezone="UTC", store=store)
    try:
        definer.schedule_job("pinned", "0 7 * * *", Notebook(
            notebooks / "report.ipynb", {"day": "pinned"}, snapshot=True), durable=True)
        definer.schedule_job("live", "0 7 * * *", Notebook(
            notebooks / "report.ipynb", {"day": "live"}), durable=True)
        stored = definer.durable.get("pinned").definition
        assert stored is not None and stored.target.to_data()["snapshot"]["cells"]
    finally:
        definer.shutdown(timeout=10)
    (notebooks / "report.ipynb").unlink()
    clock = ManualClock()
    host = BackgroundJobService(clock=clock, timezone="UTC", store=store)
    try:
        # the file is gone: the job that reads it at each run is parked, with the reason
        assert wait_for(lambda: host.durable.get("live").error is not None)
        assert f"notebook not found: '{notebooks}/report.ipynb'" in \
            str(host.durable.get("live").error)
        pinned = host.get_job("pinned")
        assert pinned is not None and pinned.durable
        clock.advance_to("2026-01-01T07:00:00+00:00")
        assert host.wait_until_idle(90)
        run = pinned.last_invocation
        assert run is not None and run.outcome is Outcome.OK, run
        assert "pinned: 42\n" in run.output
        assert run.artifact is not None and run.artifact.startswith(
            str(tmp_path / "jobs-notebooks" / "pinned") + os.sep)
    finally:
        host.shutdown(timeout=10)


@pytest.mark.usefixtures("no_kernel_left")
def test_without_a_store_a_job_keeps_the_notebooks_of_its_last_history_size_runs(
        notebooks: Path, tmp_path: Path) -> None:
    from mashroom_jobs.targets.notebook import output_folder

    target = Notebook(notebooks / "asks.ipynb")  # (fails at once: the quickest run)
    assert output_folder(target, "a/b", None) == os.path.join(
        tempfile.gettempdir(), f"mashroom-jobs-{os.getuid()}", "notebooks",
        f"a_b-{hashlib.sha256(b'a/b').hexdigest()[:8]}")
    target = Notebook(notebooks / "asks.ipynb", output_dir=tmp_path / "runs")
    service = BackgroundJobService(clock=ManualClock(), timezone="UTC", history_size=2)
    try:
        job = service.schedule_job("asks", "@daily", target)
        runs = [job.invoke_now().result(60) for _ in range(3)]
    finally:
        service.shutdown(timeout=10)
    assert [r.outcome for r in runs] == [Outcome.FAILED] * 3
    kept = sorted(p.name for p in (tmp_path / "runs" / "asks").iterdir())
    assert kept == sorted(os.path.basename(r.artifact or "") for r in runs[1:])


@pytest.mark.realtime
@pytest.mark.usefixtures("no_kernel_left")
def test_a_notebook_job_runs_for_real_on_its_schedule(notebooks: Path) -> None:
    service = BackgroundJobService(timezone="UTC")
    try:
        job = service.schedule_job("report", "* * * * * *",
                                   Notebook(notebooks / "report.ipynb"))
        assert wait_for(lambda: job.run_count >= 1, 60)
        service.unschedule_job("report")
        assert service.wait_until_idle(60)
        # a run takes about a second, so the fires that fall during it are recorded skips
        ran = [r for r in job.history if r.outcome is not Outcome.SKIPPED]
        assert ran and all(r.outcome is Outcome.OK and r.trigger == "schedule" for r in ran), ran
        assert all("monday: 42\n" in r.output for r in ran)
    finally:
        service.shutdown(timeout=10)


@pytest.mark.usefixtures("no_kernel_left")
def test_a_failing_cell_fails_the_run_with_its_number_line_and_the_kernels_traceback(
        notebooks: Path, service: BackgroundJobService,
        capfd: pytest.CaptureFixture[str]) -> None:
    run = _run(service, Notebook(notebooks / "failing.ipynb"))
    # what the kernel process writes itself (its logs) never reaches this process's
    # streams: in a kernel, ipykernel would show it in whatever cell is running
    assert "IPKernelApp" not in "".join(capfd.readouterr())
    assert run.outcome is Outcome.FAILED
    assert run.error_message == ("NotebookCellError: cell 2 of 3 ('y = x / 0  # fails') "
                                 "raised ZeroDivisionError: division by zero")
    assert run.traceback is not None and "\x1b[" not in run.traceback
    assert "----> 1 y = x / 0  # fails" in run.traceback
    assert run.traceback.rstrip().endswith("ZeroDivisionError: division by zero")
    executed = _executed(run)  # the partial notebook is kept
    assert executed.cells[0].execution_count == 1
    assert executed.cells[1].outputs[0].ename == "ZeroDivisionError"
    assert executed.cells[2].execution_count is None
    assert executed.metadata.mashroom_jobs["status"] == "failed"


@pytest.mark.usefixtures("no_kernel_left")
def test_a_cell_asking_for_input_fails_at_once_saying_so(
        notebooks: Path, service: BackgroundJobService) -> None:
    run = _run(service, Notebook(notebooks / "asks.ipynb"))
    assert run.outcome is Outcome.FAILED
    assert run.error_message == (
        "NotebookInputError: cell 1 of 2 (\"name = input('your name? ')\") asked for input: "
        "a notebook job has no one to answer (no standard input); give the value as a "
        "parameter instead")
    assert run.traceback is not None and "StdinNotImplementedError" in run.traceback


@pytest.mark.usefixtures("no_kernel_left")
def test_a_kernel_that_exits_mid_run_fails_the_run_and_leaves_nothing(
        notebooks: Path, service: BackgroundJobService) -> None:
    run = _run(service, Notebook(notebooks / "exits.ipynb"))
    assert run.outcome is Outcome.FAILED
    assert run.error_message == ("KernelDiedError: the kernel died during cell 2 of 3 "
                                 "('os._exit(1)'): it exited with status 1")
    assert run.traceback is not None and "os._exit(1)" in run.traceback
    assert "about to exit\n" in run.output


@pytest.mark.realtime
@pytest.mark.usefixtures("no_kernel_left")
def test_a_timeout_covers_the_whole_notebook_and_ends_its_kernel(notebooks: Path) -> None:
    service = BackgroundJobService(timezone="UTC")
    try:
        run = _run(service, Notebook(notebooks / "sleeping.ipynb"), timeout=2)
        assert run.outcome is Outcome.TIMED_OUT and run.error_message == "timed out after 2 s"
        assert 2000 <= run.execution_time_ms < 2000 + 0.8 * service.stop_grace * 1000 + 1000
        assert service.abandoned_runs == 0
        assert _executed(run).metadata.mashroom_jobs["status"] == "timed out"
    finally:
        service.shutdown(timeout=10)


@pytest.mark.realtime
@pytest.mark.usefixtures("no_kernel_left")
def test_progress_shows_the_cell_running_and_a_stop_interrupts_then_ends_the_kernel(
        notebooks: Path) -> None:
    service = BackgroundJobService(timezone="UTC")
    seen: list[tuple[str | None, str | None]] = []
    try:
        job = service.schedule_job("sleeper", None,
                                   Notebook(notebooks / "sleeping.ipynb"))
        job.observe(lambda change: seen.append((change.new.progress,
                                                change.new.progress_detail)), names="state")
        assert wait_for(lambda: ("cell 2 of 3", "time.sleep(60)") in seen, 60), seen
        assert job.state.running
        assert job.stop() == 1
        assert service.wait_until_idle(service.stop_grace + 5)
        run = job.last_invocation
        assert run is not None and run.outcome is Outcome.STOPPED, run
        assert "sleeping\n[mashroom-jobs] stopped during cell 2 of 3 ('time.sleep(60)'): the " \
               "kernel was interrupted, then shut down\n" in run.output
        assert job.state.progress is None
        # (publications are coalesced: a quick cell may pass unseen) in order, never back
        order = ["starting kernel python3", "cell 1 of 3", "cell 2 of 3"]
        progress = [order.index(text) for text, _ in seen if text is not None]
        assert progress == sorted(progress) and progress[-1] == 2, seen
        executed = _executed(run)
        assert executed.cells[0].outputs[0].text == "sleeping\n"
        assert executed.cells[1].outputs[0].ename == "KeyboardInterrupt"
    finally:
        service.shutdown(timeout=10)


@pytest.mark.realtime
@pytest.mark.usefixtures("no_kernel_left")
def test_a_service_shutting_down_mid_run_ends_the_kernel_and_records_why(
        notebooks: Path) -> None:
    service = BackgroundJobService(timezone="UTC")
    job = service.schedule_job("sleeper", None, Notebook(notebooks / "sleeping.ipynb"))
    job.observe(lambda change: None, names="state")  # (progress is published to observers)
    assert wait_for(lambda: job.state.progress == "cell 2 of 3", 60), job.state
    assert service.shutdown(wait=True, timeout=service.stop_grace + 5) == ()
    run = job.last_invocation
    assert run is not None and run.outcome is Outcome.FAILED, run
    assert run.error_message == (
        "ServiceShutdownError: the service shut down during cell 2 of 3 ('time.sleep(60)'): "
        "the notebook's kernel was interrupted, then shut down")


def _gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


@pytest.mark.realtime
def test_two_processes_sharing_a_store_run_each_fire_of_a_notebook_job_once(
        notebooks: Path, tmp_path: Path) -> None:
    store = str(tmp_path / "shared.sqlite")
    peers = [Peer(SCRIPT, "share", store, name, str(notebooks / "report.ipynb"))
             for name in ("a", "b")]
    try:
        origins = [peer.read()["ready"] for peer in peers]

        def runs() -> list[JobInvocation]:
            reader = SQLiteStore(store)
            try:
                return reader.history("report", 1000)
            finally:
                reader.close()

        assert wait_for(lambda: sum(r.outcome is Outcome.OK for r in runs()) >= 3, 90)
        for peer in peers:
            peer.say("stop")
        reports = [peer.read() for peer in peers]
    finally:
        for peer in peers:
            peer.end()
    ran = [r for r in runs() if r.outcome.ran]
    fires = [r.scheduled_for for r in ran]
    assert len(fires) == len(set(fires)) >= 3, ran
    assert all(r.outcome is Outcome.OK for r in ran), ran
    assert {r.origin for r in ran} <= set(origins)
    # each run kept its own executed notebook, with the parameters of the process that ran it
    for run in ran:
        executed = _executed(run)
        name = run.origin.rsplit(" kernel ", 1)[1] if run.origin else "?"
        assert f"{name}: 42\n" in executed.cells[3].outputs[0].text
    kernels = [pid for report in reports for pid in report["kernels"]]
    assert kernels and all(_gone(pid) for pid in kernels)


@pytest.mark.realtime
@pytest.mark.parametrize("how", ["exit", "kill"])
def test_a_host_that_ends_mid_run_leaves_no_kernel_behind(notebooks: Path, how: str) -> None:
    peer = Peer(SCRIPT, "host", str(notebooks / "sleeping.ipynb"))
    try:
        kernel = peer.read()["kernel"]
        assert not _gone(kernel)
        if how == "exit":
            peer.say("exit")  # a normal exit: the atexit handler kills the kernel
            assert peer.proc.wait(30) == 0
            assert _gone(kernel)
        else:
            peer.proc.kill()  # no handler runs: ipykernel notices its parent is gone
            peer.proc.wait(10)
            assert wait_for(lambda: _gone(kernel), 10)
    finally:
        peer.end()

