"""Fixtures for the real-browser tests: one Jupyter server on a free port that serves both
JupyterLab and Notebook 7, the ``mashroom-jobs dashboard`` command (Voila), and headless
Debian Chromium.

The server and the browser are session-scoped, the dashboard and the pages per test; all
are torn down whatever happens. Where a piece is *missing*
(no Chromium, no Playwright, no JupyterLab), a developer's run skips, but a run
with the ``CI`` environment variable set fails: CI never skips the browser test
silently. A piece that is installed but does not start fails everywhere.

The notebooks in this folder are fixtures for the browser, not nbval tests.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import pytest

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

# nbval (`pytest --nbval tests`) must not run the browser's fixture notebooks.
collect_ignore_glob = ["*.ipynb"]

HERE = Path(__file__).parent
REPO = HERE.parents[1]
ARTIFACTS = REPO / "test-artifacts"
CHROMIUM = os.environ.get("MASHROOM_JOBS_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    # Debian's wrapper script fails to add this one on machines with two /dev/shm mounts.
    "--disable-dev-shm-usage",
]
#: the front ends the panel is tested in: test id -> the URL path a notebook opens at
FRONT_ENDS = {"lab": "lab/tree", "notebook7": "notebooks"}
SERVER_START_TIMEOUT = 60.0
SERVER_STOP_TIMEOUT = 15.0
PLAYWRIGHT_TIMEOUT_MS = 30_000


def in_ci() -> bool:
    """True when the ``CI`` environment variable is set (to anything non-empty)."""
    return bool(os.environ.get("CI"))


def missing(what: str) -> NoReturn:
    """Skip on a developer's machine; fail in CI, where the browser test must run."""
    if in_ci():
        pytest.fail(f"{what} (CI is set, so the browser test fails instead of skipping)")
    pytest.skip(f"{what}; install it or deselect with -m 'not browser'")


@dataclass(frozen=True)
class LabServer:
    """A running Jupyter server with JupyterLab and, when installed, Notebook 7."""

    base_url: str
    token: str
    root: Path
    runtime_dir: Path
    log_path: Path
    process: subprocess.Popen[bytes]
    #: the server's Jupyter data folder: the job store the server extension and the
    #: server's kernels share is mashroom-jobs/store.sqlite in it
    data_dir: Path

    @property
    def store(self) -> Path:
        """The job store of the server's extension and kernels (their default one)."""
        return self.data_dir / "mashroom-jobs" / "store.sqlite"

    def url(self, path: str, front_end: str = "lab") -> str:
        """The browser URL of ``path`` (relative to the root dir) in ``front_end`` (a key of
        :data:`FRONT_ENDS`), token included."""
        return f"{self.base_url}/{FRONT_ENDS[front_end]}/{path}?token={self.token}"

    def api(self, endpoint: str, method: str = "GET", prefix: str = "api") -> Any:
        """Call ``/<prefix>/<endpoint>`` and decode the JSON answer (None when there is
        none); ``prefix="mashroom-jobs/api"`` for the server extension's API."""
        request = urllib.request.Request(
            f"{self.base_url}/{prefix}/{endpoint}",
            headers={"Authorization": f"token {self.token}"},
            method=method, data=b"" if method == "POST" else None,
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            body = response.read()
        return json.loads(body) if body else None

    def close_sessions(self, notebook: str) -> None:
        """Shut down the kernels of ``notebook``'s sessions (a closed page leaves them on)."""
        for session in self.api("sessions"):
            if session.get("path") == notebook:
                self.api(f"sessions/{session['id']}", method="DELETE")

    def log(self) -> str:
        """The server's stdout and stderr so far."""
        return self.log_path.read_text(errors="replace")

    def kernel_id(self, notebook: str) -> str:
        """The id of the kernel of the session that has ``notebook`` open."""
        sessions = self.api("sessions")
        for session in sessions:
            if session.get("path") == notebook and session.get("kernel"):
                return str(session["kernel"]["id"])
        raise LookupError(f"no kernel session for {notebook!r}; sessions: {sessions}")

    def evaluate(self, notebook: str, expression: str, timeout: float = 30.0) -> str:
        """Evaluate ``expression`` in the notebook's kernel, out of band; its ``text/plain``."""
        connection_file = self.runtime_dir / f"kernel-{self.kernel_id(notebook)}.json"
        return evaluate_in_kernel(connection_file, expression, timeout)


def evaluate_in_kernel(connection_file: Path, expression: str, timeout: float = 30.0) -> str:
    """Evaluate ``expression`` in the kernel of ``connection_file``; its ``text/plain``.

    A silent ``user_expressions`` request through the kernel's own connection
    file: it neither changes the notebook nor adds output to it.
    """
    from jupyter_client import BlockingKernelClient

    client = BlockingKernelClient(connection_file=str(connection_file))
    client.load_connection_file()
    client.start_channels()
    try:
        client.wait_for_ready(timeout=timeout)
        reply = client.execute_interactive(
            "",
            silent=True,
            store_history=False,
            user_expressions={"x": expression},
            timeout=timeout,
        )
    finally:
        client.stop_channels()
    result = reply["content"]["user_expressions"]["x"]
    if result.get("status") != "ok":
        raise AssertionError(f"{expression!r} failed in the kernel: {result}")
    return str(result["data"]["text/plain"])


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _write_lab_settings(settings_dir: Path) -> None:
    settings = {
        # No "get notified about Jupyter news?" toast over the page.
        "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {
            "fetchNews": "false",
            "checkForUpdates": False,
        },
        # Every cell stays in the DOM (no virtualised, off-screen cells).
        "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {"windowingMode": "none"},
    }
    for relative, values in settings.items():
        path = settings_dir / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(values))


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is not None:
        return
    process.terminate()  # the server shuts its kernels down on SIGTERM
    try:
        process.wait(SERVER_STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(SERVER_STOP_TIMEOUT)


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    """Headless Debian Chromium driven by Playwright (a fresh profile per launch)."""
    if shutil.which(CHROMIUM) is None:
        missing(f"Chromium not found at {CHROMIUM} (apt-get install chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        missing("Playwright for Python is not installed (pip install -e '.[e2e]')")
    playwright = sync_playwright().start()
    try:
        try:
            chromium = playwright.chromium.launch(
                executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
            )
        except Exception as error:
            pytest.fail(f"Chromium at {CHROMIUM} did not start: {error}")
        try:
            yield chromium
        finally:
            chromium.close()
    finally:
        playwright.stop()


def _jupyter_dirs(home: Path) -> dict[str, Path]:
    """Jupyter's and IPython's folders under ``home``, made: no user state leaks in."""
    dirs = {
        "JUPYTER_CONFIG_DIR": home / "config",
        "JUPYTER_DATA_DIR": home / "data",
        "JUPYTER_RUNTIME_DIR": home / "runtime",
        "JUPYTERLAB_SETTINGS_DIR": home / "lab-settings",
        "JUPYTERLAB_WORKSPACES_DIR": home / "lab-workspaces",
        "IPYTHONDIR": home / "ipython",
    }
    for path in dirs.values():
        path.mkdir()
    return dirs


@pytest.fixture(scope="session")
def jupyter_lab(browser: Browser) -> Iterator[LabServer]:
    """One Jupyter server on 127.0.0.1 with a token, a temporary root dir and its own Jupyter
    dirs, serving JupyterLab (``/lab``) and Notebook 7 (``/notebooks``, when installed).

    Depends on ``browser`` so that a missing browser skips before a server starts.
    """
    try:
        import jupyterlab  # noqa: F401
    except ImportError:
        missing("JupyterLab is not installed (pip install -e '.[e2e]')")
    with tempfile.TemporaryDirectory(prefix="mashroom-jobs-e2e-") as tmp:
        home = Path(tmp)
        root = home / "root"
        root.mkdir()
        # Copies: Lab writes checkpoints and may save; the repo's notebooks stay untouched.
        for notebook in HERE.glob("*.ipynb"):
            shutil.copy(notebook, root / notebook.name)
        dirs = _jupyter_dirs(home)
        # Notebook 7 reads the same settings folder (it is built on JupyterLab's components)
        _write_lab_settings(dirs["JUPYTERLAB_SETTINGS_DIR"])
        env = {**os.environ, **{name: str(path) for name, path in dirs.items()}}
        token = os.urandom(24).hex()
        port = _free_port()
        log_path = home / "jupyterlab.log"
        command = [
            sys.executable,
            "-m",
            "jupyterlab",
            "--no-browser",
            "--allow-root",  # CI runs as root; without it the server exits at once
            "--ip=127.0.0.1",
            f"--port={port}",
            "--ServerApp.port_retries=0",
            f"--IdentityProvider.token={token}",
            f"--ServerApp.root_dir={root}",
            "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
            # window.jupyterapp: the kernel's state as the page knows it (see test_browser.py)
            "--LabApp.expose_app_in_browser=True",
            "--JupyterNotebookApp.expose_app_in_browser=True",
        ]
        with log_path.open("wb") as log:
            process = subprocess.Popen(
                command,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=env,
                cwd=root,
            )
        server = LabServer(
            base_url=f"http://127.0.0.1:{port}",
            token=token,
            root=root,
            runtime_dir=dirs["JUPYTER_RUNTIME_DIR"],
            log_path=log_path,
            process=process,
            data_dir=dirs["JUPYTER_DATA_DIR"],
        )
        try:
            _wait_until_ready(server)
            yield server
        finally:
            _stop(process)
            ARTIFACTS.mkdir(exist_ok=True)
            shutil.copy(log_path, ARTIFACTS / "jupyterlab.log")


def _wait_until_ready(server: LabServer) -> None:
    deadline = time.monotonic() + SERVER_START_TIMEOUT
    while True:
        if server.process.poll() is not None:
            pytest.fail(
                f"JupyterLab exited with code {server.process.returncode} before it was ready:\n"
                f"{server.log()}"
            )
        try:
            server.api("status")
            return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        if time.monotonic() > deadline:
            pytest.fail(
                f"JupyterLab did not answer /api/status within {SERVER_START_TIMEOUT:.0f} s:\n"
                f"{server.log()}"
            )
        time.sleep(0.25)  # polling interval of a loop with a deadline


@dataclass(frozen=True)
class Dashboard:
    """A running ``mashroom-jobs dashboard`` command (Voila, in the command's process)."""

    url: str
    connections: Path
    log_path: Path
    process: subprocess.Popen[bytes]

    def log(self) -> str:
        """The command's stdout and stderr so far."""
        return self.log_path.read_text(errors="replace")

    def evaluate(self, expression: str, timeout: float = 30.0) -> str:
        """Evaluate ``expression`` in the kernel of the (one) open dashboard page."""
        files = sorted(self.connections.glob("voila_*/kernel-*.json"))
        if len(files) != 1:
            raise LookupError(f"expected one dashboard kernel, found {files}")
        return evaluate_in_kernel(files[0], expression, timeout)


#: the IPython profile of the dashboard's kernels: the store of the JupyterLab server (the
#: example plugin is made to fire every second: a page's kernel must not run it)
DASHBOARD_KERNEL_CONFIG = """\
c = get_config()  # noqa
c.BackgroundJobService.store = {store!r}
c.BackgroundJobService.plugin_config = {{"Example heartbeat": {{"cron_schedule": "* * * * * *"}}}}
"""


@pytest.fixture
def dashboard(browser: Browser, jupyter_lab: LabServer) -> Iterator[Dashboard]:
    """``mashroom-jobs dashboard`` itself, started as a user would (a subprocess, a free port,
    a token, temporary Jupyter and IPython folders), its profile naming the job store of the
    JupyterLab server (whose extension hosts its durable jobs).  Stopped (SIGTERM, then
    kill) after the test whatever happened."""
    try:
        import voila  # noqa: F401
    except ImportError:
        missing("Voila is not installed (pip install -e '.[e2e]')")
    try:
        import mashroom_jobs_example  # noqa: F401
    except ImportError:
        missing("the example plugin is not installed (pip install "
                "./plugins_examples/mashroom-jobs-example)")
    with tempfile.TemporaryDirectory(prefix="mashroom-jobs-dashboard-") as tmp:
        home = Path(tmp)
        dirs = _jupyter_dirs(home)
        profile = dirs["IPYTHONDIR"] / "profile_default"
        profile.mkdir()
        (profile / "ipython_kernel_config.py").write_text(
            DASHBOARD_KERNEL_CONFIG.format(store=str(jupyter_lab.store)))
        # Voila keeps its kernels' connection files under this folder: the test reads the
        # page's kernel through them
        connections = home / "connections"
        connections.mkdir()
        (dirs["JUPYTER_CONFIG_DIR"] / "voila.json").write_text(
            json.dumps({"Voila": {"connection_dir_root": str(connections)}}))
        env = {**os.environ, **{name: str(path) for name, path in dirs.items()}}
        token = os.urandom(24).hex()
        port = _free_port()
        log_path = home / "dashboard.log"
        command = [sys.executable, "-m", "mashroom_jobs", "dashboard", "--port", str(port),
                   "--token", token, "--no-browser"]
        with log_path.open("wb") as log:
            process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT,
                                       stdin=subprocess.DEVNULL, env=env, cwd=home)
        server = Dashboard(url=f"http://127.0.0.1:{port}/?token={token}",
                           connections=connections, log_path=log_path, process=process)
        try:
            # Voila has no /api/status (and GET / runs the notebook): wait for the port
            _wait_for_port(port, process, server.log)
            yield server
        finally:
            _stop(process)
            ARTIFACTS.mkdir(exist_ok=True)
            shutil.copy(log_path, ARTIFACTS / "dashboard.log")


def _wait_for_port(port: int, process: subprocess.Popen[bytes], log: Callable[[], str]) -> None:
    deadline = time.monotonic() + SERVER_START_TIMEOUT
    while True:
        if process.poll() is not None:
            pytest.fail(f"mashroom-jobs dashboard exited with code {process.returncode} "
                        f"before it served:\n{log()}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            pass
        if time.monotonic() > deadline:
            pytest.fail(f"mashroom-jobs dashboard did not listen on port {port} within "
                        f"{SERVER_START_TIMEOUT:.0f} s:\n{log()}")
        time.sleep(0.25)  # polling interval of a loop with a deadline


@pytest.fixture
def page(browser: Browser, request: pytest.FixtureRequest) -> Iterator[Page]:
    """A fresh browser context and page; a failing test leaves a full-page screenshot."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.set_default_timeout(PLAYWRIGHT_TIMEOUT_MS)
    try:
        yield page
    finally:
        report = getattr(request.node, "rep_call", None)
        if report is not None and report.failed:
            ARTIFACTS.mkdir(exist_ok=True)
            try:
                page.screenshot(path=str(ARTIFACTS / f"failure-{request.node.name}.png"))
            except Exception as error:  # a screenshot must not hide the real failure
                print(f"could not save the failure screenshot: {error}", file=sys.stderr)
        context.close()


@pytest.fixture(params=list(FRONT_ENDS))
def front_end(request: pytest.FixtureRequest, jupyter_lab: LabServer) -> str:
    """Each front end the panel is tested in: ``lab`` (JupyterLab), ``notebook7``."""
    if request.param == "notebook7":
        try:
            import notebook  # noqa: F401
        except ImportError:
            missing("Notebook 7 is not installed (pip install -e '.[e2e]')")
    return str(request.param)


@pytest.fixture
def fresh_notebook(
    jupyter_lab: LabServer, front_end: str
) -> Iterator[Callable[[str], str]]:
    """``fresh_notebook("x.ipynb")``: a copy of a notebook of this folder under a name of its
    own for this front end, so that its kernel is new (a kernel outlives the page that
    started it); the kernel is shut down after the test."""
    copies: list[str] = []

    def copy(notebook: str) -> str:
        name = f"{Path(notebook).stem}-{front_end}.ipynb"
        shutil.copy(HERE / notebook, jupyter_lab.root / name)
        copies.append(name)
        return name

    try:
        yield copy
    finally:
        for name in copies:
            try:
                jupyter_lab.close_sessions(name)
            except (urllib.error.URLError, OSError) as error:
                print(f"could not shut down the kernel of {name}: {error}", file=sys.stderr)


@pytest.fixture
def notebook_url(jupyter_lab: LabServer, front_end: str) -> Callable[[str], str]:
    """``notebook_url("x.ipynb")``: the URL of a notebook of the root dir in this front end."""
    return lambda path: jupyter_lab.url(path, front_end)


@pytest.fixture
def kernel_eval(jupyter_lab: LabServer) -> Callable[[str, str], str]:
    """``kernel_eval(notebook, expression)``: evaluated in that notebook's kernel, out of band."""
    return jupyter_lab.evaluate


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    # Keep each phase's report on the item, so fixtures can tell whether the test failed.
    report = yield
    setattr(item, f"rep_{report.when}", report)
    return report


@pytest.fixture
def durable_job(jupyter_lab: LabServer) -> Iterator[Callable[[str], str]]:
    """``durable_job(name)``: define a durable job firing every second (a command, ``true``)
    in the JupyterLab server's store, and wait until the server's host runs it (no kernel
    is needed for that); removed from the store after the test."""
    from mashroom_jobs import BackgroundJobService, Command
    from mashroom_jobs.durable import JobDefinition
    from mashroom_jobs.testing import wait_for

    definer = BackgroundJobService(store=str(jupyter_lab.store), durable_jobs=False)
    names: list[str] = []

    def define(name: str) -> str:
        assert definer.durable is not None
        definer.durable.define(JobDefinition.make(name, "* * * * * *", Command(["true"]),
                                                  timezone="UTC"))
        names.append(name)
        servers = [h.origin for h in definer.durable.hosts() if h.kind == "server" and h.alive]
        assert servers, f"no live server host in the store:\n{jupyter_lab.log()}"
        assert wait_for(lambda: any(r.origin in servers for r in definer.history(name, 5)),
                        timeout=15), f"the server did not run {name!r}:\n{jupyter_lab.log()}"
        return name

    try:
        yield define
    finally:
        try:
            for name in names:
                assert definer.durable is not None
                definer.durable.remove(name)
        finally:
            definer.shutdown()
