"""The Jupyter Server extension: a real ``jupyter server`` process hosts a durable job with
no kernel open, serves the JSON API behind Jupyter's authentication, and stops cleanly.

One server for the module (about 3 s to start); the API's answers are also checked in
process (:mod:`mashroom_jobs.serverext.api`), without a server.  The browser half (the
panel and the dashboard over that host) is in ``tests/e2e/test_server_host.py``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from mashroom_jobs import BackgroundJobService, Command
from mashroom_jobs.core.errors import JobNotScheduledError
from mashroom_jobs.durable import JobDefinition
from mashroom_jobs.testing import wait_for

pytest.importorskip("jupyter_server")

from mashroom_jobs.serverext import api

START_TIMEOUT = 60.0


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Server:
    base: str
    token: str
    store: str
    log_path: Path
    process: subprocess.Popen[bytes]

    def request(self, path: str, method: str = "GET", token: bool = True,
                data: bytes | None = None) -> tuple[int, Any]:
        headers = {"Authorization": f"token {self.token}"} if token else {}
        request = urllib.request.Request(f"{self.base}{path}", method=method, headers=headers,
                                         data=data)
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return response.status, json.loads(response.read() or b"null")
        except urllib.error.HTTPError as error:
            body = error.read()
            try:
                return error.code, json.loads(body)
            except ValueError:
                return error.code, body.decode(errors="replace")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


def _jupyter_env(home: Path) -> dict[str, str]:
    dirs = {name: home / name.lower() for name in
            ("JUPYTER_CONFIG_DIR", "JUPYTER_DATA_DIR", "JUPYTER_RUNTIME_DIR", "IPYTHONDIR")}
    for path in dirs.values():
        path.mkdir()
    return {**os.environ, **{name: str(path) for name, path in dirs.items()}}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """``jupyter server`` with the installed extension (its jupyter_server_config.d file),
    a token, temporary Jupyter folders and a store of the test's; stopped with SIGTERM."""
    home = tmp_path_factory.mktemp("server")
    env = _jupyter_env(home)
    store = str(home / "store.sqlite")
    (home / "jupyter_config_dir" / "jupyter_server_config.py").write_text(
        f"c.BackgroundJobService.store = {store!r}\n"
        "c.BackgroundJobService.timezone = 'UTC'\n")
    root = home / "root"
    root.mkdir()
    token = os.urandom(16).hex()
    port = _free_port()
    log_path = home / "server.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "jupyter_server", "--no-browser", "--allow-root",
             "--ip=127.0.0.1", f"--port={port}", "--ServerApp.port_retries=0",
             f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={root}"],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env, cwd=root)
    server = Server(f"http://127.0.0.1:{port}", token, store, log_path, process)
    try:
        ready = wait_for(lambda: process.poll() is not None
                         or _answers(server), timeout=START_TIMEOUT, interval=0.2)
        assert ready and process.poll() is None, server.log()
        yield server
    finally:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(5)


def _answers(server: Server) -> bool:
    try:
        return server.request("/api/status")[0] == 200
    except (urllib.error.URLError, OSError):
        return False


@pytest.mark.realtime
@pytest.mark.timeout(120)
def test_the_server_hosts_a_durable_job_serves_it_behind_the_token_and_stops_cleanly(
    server: Server,
) -> None:
    assert "mashroom_jobs.serverext | extension was successfully loaded" in server.log()
    # Defined by another process after the server started: followed within about a second.
    definer = BackgroundJobService(store=server.store, durable_jobs=False)
    try:
        assert definer.durable is not None
        definer.durable.define(JobDefinition.make("tick", "* * * * * *", Command(["true"]),
                                                  timezone="UTC"))
        # It runs in the server process (the server's origin in the store), no kernel open.
        hosts = definer.durable.hosts()
        assert [(h.kind, h.pid) for h in hosts] == [("server", server.process.pid)], hosts
        assert hosts[0].details["server_url"].startswith(server.base)
        assert wait_for(lambda: sum(r.origin == hosts[0].origin and r.success
                                    for r in definer.history("tick", 5)) >= 2, timeout=10)
        assert server.request("/api/sessions")[1] == []  # no kernel

        # The API: refused without a token, the job with one.
        for path in ("/mashroom-jobs/api/jobs", "/mashroom-jobs/api/hosts",
                     "/mashroom-jobs/api/runs"):
            assert server.request(path, token=False)[0] == 403, path
        assert server.request("/mashroom-jobs/api/jobs/tick/pause", "POST", token=False,
                              data=b"")[0] == 403
        status, body = server.request("/mashroom-jobs/api/jobs")
        assert status == 200
        (job,) = body["jobs"]
        assert job["name"] == "tick" and job["durable"] and job["hosted_here"]
        assert job["cron"] == "* * * * * *" and job["target"] == {
            "kind": "command", "argv": ["true"], "shell": False}
        assert job["here"]["paused"] is False and job["last_run"]["outcome"] == "ok"
        status, body = server.request("/mashroom-jobs/api/hosts")
        assert [h["kind"] for h in body["hosts"]] == ["server"] and body["hosts"][0]["alive"]
        status, body = server.request("/mashroom-jobs/api/runs?job=tick&limit=2")
        assert status == 200 and len(body["runs"]) == 2
        assert {r["outcome"] for r in body["runs"]} == {"ok"}
        assert server.request("/mashroom-jobs/api/runs?limit=x")[0] == 400
        assert server.request("/mashroom-jobs/api/jobs/nope")[0] == 404

        # Pause through the API: stored, so it holds in every host (the definer sees it).
        status, body = server.request("/mashroom-jobs/api/jobs/tick/pause", "POST", data=b"")
        assert status == 200 and body == {"job": "tick", "action": "pause", "durable": True}
        assert definer.durable.get("tick").paused
        assert server.request("/mashroom-jobs/api/jobs/tick")[1]["here"]["paused"] is True
        assert server.request("/mashroom-jobs/api/jobs/nope/run", "POST", data=b"")[0] == 404
        # Unschedule (DELETE): the definition leaves the store.
        assert server.request("/mashroom-jobs/api/jobs/tick", "DELETE")[0] == 200
        assert [info.name for info in definer.durable.jobs()] == []

        # SIGTERM: the server stops, and the host with it (its heartbeat removed).
        server.process.send_signal(signal.SIGTERM)
        assert server.process.wait(20) == 0, server.log()  # jupyter_server exits 0 on it
        assert "Traceback" not in server.log()
        assert "the server's jobs host stopped" in server.log()
        assert definer.durable.hosts() == []
    finally:
        definer.shutdown()


# --- the API's answers, in process ------------------------------------------------------


def _service(path: str, **kwargs: Any) -> BackgroundJobService:
    return BackgroundJobService(store=path, timezone="UTC", **kwargs)


def test_the_api_lists_durable_jobs_and_this_processs_own_and_acts_on_both(
    tmp_path: Path,
) -> None:
    path = str(tmp_path / "store.sqlite")
    viewer = _service(path, durable_jobs=False)
    host = _service(path)
    try:
        assert viewer.durable is not None and host.durable is not None
        viewer.durable.define(JobDefinition.make("nightly", "0 3 * * *",
                                                 Command(["true"]), timezone="UTC"))
        host.durable.host.follow_now()  # type: ignore[union-attr]
        viewer.schedule_job("local", "@daily", lambda: None)

        jobs = {job["name"]: job for job in api.jobs_data(viewer)}
        assert set(jobs) == {"nightly", "local"}
        assert jobs["nightly"]["durable"] and not jobs["nightly"]["hosted_here"]
        assert jobs["nightly"]["here"] is None  # the viewer does not host it
        assert jobs["nightly"]["next_fire"].endswith("T03:00:00+00:00")
        assert jobs["nightly"]["description"] == "At 03:00"
        assert not jobs["local"]["durable"] and jobs["local"]["here"]["paused"] is False
        json.dumps(jobs)  # every value is JSON

        assert api.act(viewer, "nightly", "pause")["durable"]
        host.durable.host.follow_now()  # type: ignore[union-attr]
        assert host.get_job("nightly").paused  # type: ignore[union-attr]
        api.act(viewer, "local", "pause")
        assert viewer.get_job("local").paused  # type: ignore[union-attr]
        with pytest.raises(JobNotScheduledError, match="no job named 'nope'"):
            api.act(viewer, "nope", "run")
        with pytest.raises(ValueError, match="unknown action 'explode'"):
            api.act(viewer, "local", "explode")
        api.act(viewer, "nightly", "unschedule")
        assert [job["name"] for job in api.jobs_data(viewer)] == ["local"]

        (data,) = [api.host_data(h) for h in viewer.durable.hosts()]
        assert data["kind"] == "python" and data["alive"] and data["jobs"] == []
    finally:
        host.shutdown()
        viewer.shutdown()


def test_one_job_is_read_alone_and_said_as_the_list_says_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mashroom_jobs.testing import ManualClock

    path = str(tmp_path / "store.sqlite")
    clock = ManualClock("2026-03-02T12:00:00+00:00")
    viewer = _service(path, durable_jobs=False, clock=clock)
    host = _service(path, clock=clock)
    try:
        assert viewer.durable is not None and host.durable is not None
        viewer.durable.define(JobDefinition.make("nightly", "0 3 * * *",
                                                 Command(["true"]), timezone="UTC"))
        host.durable.host.follow_now()  # type: ignore[union-attr]
        viewer.schedule_job("local", "@daily", lambda: None)
        listed = {(id(s), job["name"]): job for s in (viewer, host) for job in api.jobs_data(s)}
        assert len(listed) == 3 and listed[id(host), "nightly"]["here"] is not None
        for service in (viewer, host):  # one job: its definition, not every one
            monkeypatch.setattr(service.durable.control, "definitions",  # type: ignore[union-attr]
                                lambda: pytest.fail("read every durable job for one"))
        for (key, name), job in listed.items():
            service = viewer if key == id(viewer) else host
            assert api.job_data(service, name) == job
        for service in (viewer, host):
            with pytest.raises(JobNotScheduledError,
                               match="no job named 'nope' in the store or in this server"):
                api.job_data(service, "nope")
        with pytest.raises(JobNotScheduledError, match="no job named 'local'"):
            api.job_data(host, "local")
    finally:
        host.shutdown()
        viewer.shutdown()


def test_a_run_as_json_says_its_outcome_and_times(tmp_path: Path) -> None:
    service = _service(str(tmp_path / "store.sqlite"))
    try:
        service.schedule_job("once", None, lambda: 1 / 0)
        assert service.wait_until_idle(5)
        (run,) = api.runs_data(service, "once", 5)
        assert run["outcome"] == "failed" and run["trigger"] == "immediate"
        assert run["error"].startswith("ZeroDivisionError")
        assert run["started"].endswith("+00:00") and run["scheduled_for"] is None
    finally:
        service.shutdown()


def test_a_server_whose_store_cannot_be_opened_starts_without_the_host(tmp_path: Path) -> None:
    from traitlets.config import Config

    from mashroom_jobs.serverext.app import JobsServerExtension

    (tmp_path / "not-a-store").write_text("this is not SQLite")
    extension = JobsServerExtension(config=Config(
        {"BackgroundJobService": {"store": str(tmp_path / "not-a-store")}}))
    extension.serverapp = None
    try:
        extension.initialize_settings()
        assert extension.service is None
        assert extension.problem is not None and "not-a-store" in extension.problem
    finally:
        asyncio.run(extension.stop_extension())  # (the library's log goes back as it was)
    assert logging.getLogger("mashroom_jobs").handlers == []
