"""The service recipes of docs/unattended.md, run as written: the systemd user unit's
``ExecStart`` and the JupyterHub service's ``command`` start ``mashroom-jobs run`` as a host
of the store, ``mashroom-jobs status`` says so, and the stop signal each supervisor sends
ends it with status 0 in time, its heartbeat gone from the store.

Real processes (about 2 s each, most of it the interpreter's start-up): the recipes are
what users copy, so a recipe that drifts from the command fails here."""

from __future__ import annotations

import configparser
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from traitlets.config import Config

from mashroom_jobs.cli import main
from mashroom_jobs.testing import wait_for

DOCS = Path(__file__).resolve().parents[1] / "docs" / "unattended.md"
#: where the recipes say mashroom-jobs is installed; the test's environment stands in
SYSTEMD_VENV = "%h/.venvs/jobs"
HUB_VENV = "/opt/jobs"


def _block(language: str, containing: str) -> str:
    """The docs' fenced ``language`` block that contains ``containing``."""
    blocks = re.findall(rf"```{language}\n(.*?)```", DOCS.read_text(), flags=re.S)
    found = [block for block in blocks if containing in block]
    assert len(found) == 1, f"expected one {language} block with {containing!r} in {DOCS}"
    return found[0]


def _status(store: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    code = main(["status", "--kind", "run", "--store", str(store)])
    out, err = capsys.readouterr()
    return code, out + err


def _run_until_stopped(argv: list[str], env: dict[str, str], store: Path, stop: int,
                       grace: float, capsys: pytest.CaptureFixture[str]) -> str:
    """Start ``argv``; once ``status`` sees it as a live run host, send ``stop``; it must
    exit with status 0 within ``grace`` seconds and leave no heartbeat.  Its log."""
    process = subprocess.Popen(argv, env=env, stdin=subprocess.DEVNULL,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        assert wait_for(lambda: store.exists() and _status(store, capsys)[0] == 0,
                        timeout=60, interval=0.1), process.stdout.read1().decode()  # type: ignore[union-attr]
        code, said = _status(store, capsys)
        assert said.startswith("mashroom-jobs status: ok: 1 live run host (run on ")
        process.send_signal(stop)
        output, _ = process.communicate(timeout=grace)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(10)
    log = output.decode(errors="replace")
    assert process.returncode == 0, log
    assert "stopping (waiting up to" in log
    code, said = _status(store, capsys)
    assert code == 1 and "no run host has written a heartbeat" in said  # it left cleanly
    return log


def _environment(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {**os.environ, "JUPYTER_DATA_DIR": str(tmp_path / "data"), **extra}
    env.pop("IPYTHONDIR", None)
    return env


@pytest.mark.realtime
@pytest.mark.timeout(120)
def test_the_systemd_user_unit_runs_a_host_and_stops_cleanly_on_its_kill_signal(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = _block("ini", "[Service]")
    unit = configparser.ConfigParser(strict=False, interpolation=None)
    unit.optionxform = str  # type: ignore[assignment,method-assign]
    unit.read_string(text)
    service = unit["Service"]
    assert service["ExecStart"].startswith(f"{SYSTEMD_VENV}/bin/mashroom-jobs run")
    exec_start = service["ExecStart"].replace(SYSTEMD_VENV, sys.prefix)
    if shutil.which("systemd-analyze"):  # the unit as systemd reads it
        path = tmp_path / "mashroom-jobs.service"
        path.write_text(text.replace(SYSTEMD_VENV, sys.prefix))
        checked = subprocess.run(["systemd-analyze", "verify", str(path)],
                                 capture_output=True, text=True, timeout=60)
        assert checked.returncode == 0, checked.stderr
    stop = getattr(signal, service.get("KillSignal", "SIGTERM"))
    grace = float(service.get("TimeoutStopSec", "90"))
    # the default store: the kernels' one, in the (test's) Jupyter data folder
    store = tmp_path / "data" / "mashroom-jobs" / "store.sqlite"
    log = _run_until_stopped(shlex.split(exec_start), _environment(tmp_path), store, stop,
                             grace, capsys)
    assert f"job store: {store}" in log


@pytest.mark.realtime
@pytest.mark.timeout(120)
def test_the_jupyterhub_service_runs_a_host_as_the_hub_starts_and_stops_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = Config()
    namespace: dict[str, Any] = {"c": config}
    exec(_block("python", "c.JupyterHub.services"), namespace)  # the recipe, as the hub reads it
    (hub_service,) = config.JupyterHub.services
    command = [part.replace(HUB_VENV, sys.prefix) for part in hub_service["command"]]
    assert command[1:3] == ["run", "--store"]
    store = tmp_path / "team.sqlite"
    command[3] = str(store)
    # what JupyterHub gives a service it manages (run needs none of it)
    env = _environment(tmp_path, JUPYTERHUB_SERVICE_NAME=hub_service["name"],
                       JUPYTERHUB_API_TOKEN="secret", JUPYTERHUB_API_URL="http://127.0.0.1:1/",
                       JUPYTERHUB_SERVICE_PREFIX=f"/services/{hub_service['name']}/")
    _run_until_stopped(command, env, store, signal.SIGTERM, 30, capsys)
