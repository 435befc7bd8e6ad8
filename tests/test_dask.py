"""Jobs on a Dask cluster (issue 11): a real LocalCluster with worker processes, no mocks.

One module-scoped cluster (two worker processes) serves most tests; the restart test
starts its own on a fixed port.  Scheduled behaviour is driven by the ManualClock;
only the cluster runs in real time.
"""

from __future__ import annotations

import json
import math
import os
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timezone
from importlib.metadata import EntryPoint
from pathlib import Path
from typing import Any

import pytest
from traitlets import TraitError

if os.environ.get("CI"):  # CI installs the dask extra: a missing one must fail, not skip
    import distributed
else:
    distributed = pytest.importorskip("distributed")

from mashroom_jobs import BackgroundJobService, PluginContext
from mashroom_jobs.dask_bridge import parse_dask_address
from mashroom_jobs.plugins import ENTRY_POINT_GROUP, background_job_plugin, load_plugins
from mashroom_jobs.testing import ManualClock, wait_for

UTC = timezone.utc
WAIT = 30.0


@pytest.fixture(scope="module")
def cluster() -> Iterator[Any]:
    """Two worker processes, shared by the module's tests (as the service's "local" cluster
    is configured: a worker lost mid-run fails the run instead of re-running it)."""
    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=2, processes=True, dashboard_address=":0",
        scheduler_kwargs={"allowed_failures": 0},
    ) as local_cluster:
        yield local_cluster


@pytest.fixture(scope="module")
def client(cluster: Any) -> Iterator[Any]:
    with distributed.Client(cluster, set_as_default=False) as dask_client:
        yield dask_client


def workers(client: Any) -> set[str]:
    return set(client.scheduler_info()["workers"])


def step(clock: ManualClock, service: BackgroundJobService, seconds: float) -> None:
    clock.advance(seconds)
    assert service.wait_until_idle(WAIT)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# --- jobs (module level: the workers import this module to run them) ------------------


def hello(context: PluginContext) -> None:
    print("hello from the worker")
    print(f"service={context.services.background_jobs} shell={context.shell}")
    context.logger_factory("mashroom_jobs_test.worker").warning("logged on the worker")


def fails() -> None:
    raise ValueError("no data for 2026-01-01")


def prints_its_dask_key() -> None:
    print(distributed.get_worker().get_current_task())


def exits_its_worker() -> None:
    os._exit(1)  # the worker process dies mid-run, as when the OOM killer takes it


def gated(name: str) -> Callable[[], None]:
    """A job that says it started, then waits for the test to open its gate."""
    def job() -> None:
        distributed.Event(f"{name}-started").set()
        distributed.Event(f"{name}-gate").wait(WAIT)
        print("gate opened")
    return job


class Gate:
    """The test's side of :func:`gated`."""

    def __init__(self, client: Any, name: str) -> None:
        self.name = name
        self.started = distributed.Event(f"{name}-started", client=client)
        self.gate = distributed.Event(f"{name}-gate", client=client)

    def wait_started(self) -> None:
        assert self.started.wait(WAIT), f"{self.name} did not start on a worker"
        self.started.clear()

    def open(self) -> None:
        self.gate.set()


# --- running on a worker ------------------------------------------------------------------


def test_a_job_runs_on_a_worker_and_what_it_prints_comes_back(
    service: BackgroundJobService, client: Any
) -> None:
    job = service.schedule_job("hello", "@daily", hello, executor=client)
    run = job.invoke_now().result(WAIT)
    assert run.success, run.error_message
    assert run.worker in workers(client)  # recorded: one of the cluster's workers
    # printed and logged there, captured there; the worker's context has no service, no shell
    assert run.output == (
        "hello from the worker\nservice=None shell=None\nlogged on the worker\n"
    )
    assert job.remote and job.executor is None


def test_a_scheduled_fire_runs_on_the_cluster_under_a_key_naming_the_job_and_fire_time(
    clock: ManualClock, service: BackgroundJobService, client: Any
) -> None:
    job = service.schedule_job("report", "* * * * *", prints_its_dask_key, executor=client)
    step(clock, service, 60)
    run = job.last_invocation
    assert run is not None and run.success, run
    assert run.scheduled_for == datetime(2026, 1, 1, 0, 1, tzinfo=UTC)
    key = run.output.strip()
    assert key.startswith("mashroom-job-report-20260101T000100+0000-schedule1-")
    assert len(key.rsplit("-", 1)[1]) == 8  # a suffix: two kernels' fires never merge


def test_a_failing_remote_job_records_its_error_and_traceback(
    service: BackgroundJobService, client: Any
) -> None:
    job = service.schedule_job("fails", "@daily", fails, executor=client)
    run = job.invoke_now().result(WAIT)
    assert not run.success
    assert run.error_message == "ValueError: no data for 2026-01-01"
    assert run.traceback is not None
    assert 'raise ValueError("no data for 2026-01-01")' in run.traceback
    assert "in fails" in run.traceback
    assert run.worker in workers(client)
    assert job.failure_count == 1 and job.active


def test_an_unpicklable_callback_is_a_failed_run_and_the_job_keeps_its_schedule(
    clock: ManualClock, service: BackgroundJobService, client: Any
) -> None:
    lock = threading.Lock()
    job = service.schedule_job("locked", "* * * * *", lambda: lock.locked(), executor=client)
    for minute in (1, 2):
        step(clock, service, 60)
        run = job.last_invocation
        assert run is not None and not run.success
        assert run.error_message == (
            "could not be sent to the Dask cluster: TypeError: cannot pickle '_thread.lock' object"
        )
        assert run.scheduled_for == datetime(2026, 1, 1, 0, minute, tzinfo=UTC)
        assert run.worker is None
    assert job.active and job.next_invocation == datetime(2026, 1, 1, 0, 3, tzinfo=UTC)
    assert job.run_count == job.failure_count == 2


def test_a_local_class_travels_by_value_and_runs(
    service: BackgroundJobService, client: Any
) -> None:
    class Greeter:  # defined in a function: cloudpickle sends the class itself
        def __init__(self, name: str) -> None:
            self.name = name

        def __call__(self) -> None:
            print(f"hello {self.name}")

    job = service.schedule_job("local class", "@daily", Greeter("Vienna"), executor=client)
    run = job.invoke_now().result(WAIT)
    assert run.success and run.output == "hello Vienna\n"


def test_a_job_from_a_module_the_workers_lack_fails_saying_so(
    service: BackgroundJobService, client: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "mj_only_in_this_kernel.py").write_text("def job():\n    print('never')\n")
    monkeypatch.syspath_prepend(str(tmp_path))  # here only: the workers started before
    import mj_only_in_this_kernel  # type: ignore[import-not-found]

    try:
        job = service.schedule_job("kernel only", "@daily", mj_only_in_this_kernel.job,
                                   executor=client)
        run = job.invoke_now().result(WAIT)
    finally:
        sys.modules.pop("mj_only_in_this_kernel", None)
    assert not run.success and run.error_message is not None
    assert run.error_message.startswith(
        "could not be loaded on the Dask worker: ModuleNotFoundError: "
        "No module named 'mj_only_in_this_kernel'"
    )
    assert run.worker in workers(client)


def test_a_notebook_job_runs_in_a_kernel_a_worker_starts(
    service: BackgroundJobService, client: Any, tmp_path: Path
) -> None:
    from mashroom_jobs import Notebook

    notebook = tmp_path / "report.ipynb"
    notebook.write_bytes((Path(__file__).parent / "notebooks" / "report.ipynb").read_bytes())
    job = service.schedule_job("report", "@daily",
                               Notebook(notebook, {"day": "friday"}),
                               executor=client)
    run = job.invoke_now().result(WAIT)
    assert run.success, run.error_message
    assert run.worker in workers(client)
    assert "friday: 42\n" in run.output
    assert "[mashroom-jobs] executed notebook: " in run.output


def test_a_notebook_job_whose_kernel_a_worker_lacks_fails_saying_so(
    service: BackgroundJobService, client: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mashroom_jobs import Notebook

    # a kernel installed for this process only (the workers started before)
    spec = tmp_path / "jupyter" / "kernels" / "mj-only-here"
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "only here", "language": "python"}))
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "jupyter"))
    notebook = tmp_path / "report.ipynb"
    notebook.write_bytes((Path(__file__).parent / "notebooks" / "report.ipynb").read_bytes())
    job = service.schedule_job("report", "@daily",
                               Notebook(notebook, kernel="mj-only-here"),
                               executor=client)
    run = job.invoke_now().result(WAIT)
    assert not run.success and run.error_message is not None
    assert run.error_message.startswith(
        f"TargetUnavailableError: unknown kernel 'mj-only-here' for notebook '{notebook}' "
        f"(kernels on the Dask worker at {run.worker}: ")


# --- the rules of local jobs hold -----------------------------------------------------------


def test_invoke_now_resolves_when_the_remote_run_ends(
    service: BackgroundJobService, client: Any
) -> None:
    gate = Gate(client, "invoke-now")
    job = service.schedule_job("gated", "@daily", gated(gate.name), executor=client)
    future = job.invoke_now()
    gate.wait_started()  # running on a worker now
    assert not future.done() and job.running
    gate.open()
    run = future.result(WAIT)
    assert run.success and run.output == "gate opened\n"
    assert run.worker in workers(client)


def test_overlap_misfires_pause_and_resume_behave_as_for_local_jobs(
    clock: ManualClock, service: BackgroundJobService, client: Any
) -> None:
    gate = Gate(client, "overlap")
    job = service.schedule_job("slow", "* * * * *", gated(gate.name), executor=client)
    clock.advance(60)
    gate.wait_started()
    clock.advance(60)  # fires while the remote run goes: skipped
    assert job.skip_count == 1 and job.run_count == 0
    gate.open()
    assert service.wait_until_idle(WAIT)
    assert job.run_count == 1

    step(clock, service, 600)  # asleep for ten fire times: one coalesced run
    assert job.run_count == 2 and job.misfire_count == 1

    job.pause()
    step(clock, service, 120)
    assert job.run_count == 2
    job.resume()
    step(clock, service, 60)
    assert job.run_count == 3 and job.failure_count == 0


def test_a_remote_run_that_times_out_is_recorded_and_its_task_cancelled(
    clock: ManualClock, service: BackgroundJobService, client: Any
) -> None:
    gate = Gate(client, "timeout")
    job = service.schedule_job("stuck", "* * * * *", gated(gate.name), executor=client,
                               timeout=5)
    clock.advance(60)
    gate.wait_started()
    step(clock, service, 5)
    run = job.last_invocation
    assert run is not None and run.error_message == "timed out after 5 s"
    assert not job.running

    def keys_of_stuck() -> list[str]:
        return client.run_on_scheduler(  # type: ignore[no-any-return]
            lambda dask_scheduler: [k for k in dask_scheduler.tasks
                                    if str(k).startswith("mashroom-job-stuck-")])

    assert wait_for(lambda: keys_of_stuck() == [], WAIT)  # the cluster let go of it
    gate.open()


def test_a_worker_lost_mid_run_is_a_failed_run_and_the_next_fire_runs(
    clock: ManualClock, service: BackgroundJobService, client: Any
) -> None:
    job = service.schedule_job("killer", "* * * * *", exits_its_worker, executor=client)
    step(clock, service, 60)
    run = job.last_invocation
    assert run is not None and not run.success and run.error_message is not None
    assert run.error_message.startswith("the Dask worker running it was lost: ")
    client.wait_for_workers(2, timeout=WAIT)  # the nanny restarts it

    service.schedule_job("killer", "* * * * *", hello, executor=client)  # replaced
    step(clock, service, 60)
    replaced = service.get_job("killer")
    assert replaced is not None and replaced.last_invocation is not None
    assert replaced.last_invocation.success


def test_200_every_second_jobs_for_5_seconds_lose_no_fire(client: Any) -> None:
    # overlap="allow": this is about fires reaching the cluster, all of them; whether a
    # shared 2-core machine's cluster finishes 200 runs within the second is its capacity
    # (Dask's own overhead is ~1 ms a task), and overlap="skip" would then skip by design
    service = BackgroundJobService(timezone="UTC")  # the real clock: the cluster needs it
    try:
        jobs = [service.schedule_job(f"tick {i}", "* * * * * *", prints_its_dask_key,
                                     executor=client, overlap="allow") for i in range(200)]
        first = math.ceil(time.time()) + 1
        window = [datetime.fromtimestamp(first + k, UTC) for k in range(5)]
        time.sleep(max(0.0, first + 5.5 - time.time()))
        for job in jobs:
            job.pause()
        assert service.wait_until_idle(WAIT)
    finally:
        service.shutdown(wait=True, timeout=10)
    for job in jobs:
        served = {run.scheduled_for for run in job.history if run.success}
        assert set(window) <= served, (job.name, job.history, job.skip_count)
        assert job.skip_count == 0 and job.misfire_count == 0 and job.failure_count == 0


# --- the exclusive claim ---------------------------------------------------------------


def test_an_exclusive_fire_runs_in_one_of_two_services_sharing_a_cluster(
    client: Any
) -> None:
    clocks = [ManualClock("2026-01-01T00:00:00+00:00") for _ in range(2)]
    services = [BackgroundJobService(clock=c, timezone="UTC") for c in clocks]
    try:
        # the job's name is unique to this test run: claims live on the scheduler
        name = f"nightly {time.time_ns()}"
        jobs = [s.schedule_job(name, "* * * * *", hello, executor=client, exclusive=True)
                for s in services]
        for _ in range(3):
            for clock, service in zip(clocks, services):  # the second kernel is late
                step(clock, service, 60)
        first, second = (list(job.history) for job in jobs)
    finally:
        for service in services:
            service.shutdown(wait=True, timeout=10)
    assert [r.success and not r.elsewhere for r in first] == [True] * 3
    assert all(r.elsewhere and r.origin == f"{socket.gethostname()} pid {os.getpid()}"
               for r in second)
    assert [r.scheduled_for for r in first] == [r.scheduled_for for r in second]
    assert jobs[1].elsewhere_count == 3 and jobs[1].run_count == 0


TWO_KERNELS = textwrap.dedent("""
    import json, sys, time
    from mashroom_jobs import BackgroundJobService

    def tick():
        print("tick")

    address, name, seconds, out = sys.argv[1], sys.argv[2], float(sys.argv[3]), sys.argv[4]
    service = BackgroundJobService(timezone="UTC", dask_address=address)
    job = service.schedule_job(name, "* * * * * *", tick, executor="dask", exclusive=True)
    time.sleep(seconds)
    job.pause()
    service.wait_until_idle(20)
    service.shutdown(wait=True, timeout=10)
    with open(out, "w") as f:
        json.dump([[r.scheduled_for.isoformat(), r.outcome.value, r.elsewhere, r.worker,
                    r.error_message or r.output] for r in job.history], f)
""")


def test_two_kernel_processes_sharing_a_cluster_run_each_exclusive_fire_once(
    cluster: Any, tmp_path: Path
) -> None:
    name = f"shared tick {time.time_ns()}"
    outs = [tmp_path / f"kernel{k}.json" for k in range(2)]
    procs = [subprocess.Popen([sys.executable, "-c", TWO_KERNELS, cluster.scheduler_address,
                               name, "5", str(out)], stderr=subprocess.PIPE, text=True)
             for out in outs]
    try:
        errors = [proc.communicate(timeout=60)[1] for proc in procs]
    finally:
        for proc in procs:
            proc.kill()
    assert [proc.returncode for proc in procs] == [0, 0], errors
    histories = [json.loads(out.read_text()) for out in outs]
    ran: dict[str, int] = {}
    skipped: set[str] = set()  # a fire that fell while this kernel's last run went on (a loaded VM)
    for history in histories:
        for fire, outcome, elsewhere, worker, error in history:
            if outcome == "skipped":
                skipped.add(fire)
            elif not elsewhere:
                assert outcome == "ok" and worker, (fire, error)
                ran[fire] = ran.get(fire, 0) + 1
            else:
                ran.setdefault(fire, 0)
    assert ran and all(count <= 1 for count in ran.values()), histories  # never twice
    assert all(count == 1 for fire, count in ran.items() if fire not in skipped), histories
    both = set.intersection(*({fire for fire, *_ in history} for history in histories))
    assert len(both) >= 3  # the kernels really competed for these


# --- the connection: lost, refused, rebuilt --------------------------------------------


def test_a_cluster_closed_mid_schedule_fails_runs_saying_so_and_they_resume_on_restart(
    clock: ManualClock, service: BackgroundJobService
) -> None:
    port = free_port()
    address = f"tcp://127.0.0.1:{port}"

    def start() -> Any:
        return distributed.LocalCluster(n_workers=1, threads_per_worker=2, processes=True,
                                        scheduler_port=port, dashboard_address=":0")

    service.dask_connect_timeout = 2.0
    service.dask_address = address
    first = start()
    try:
        job = service.schedule_job("survivor", "* * * * *", hello, executor="dask")
        step(clock, service, 60)
        assert job.last_invocation is not None and job.last_invocation.success
        assert job.last_invocation.worker in first.scheduler_info["workers"]
        in_flight = service.schedule_job("in flight", "@daily",
                                         lambda: time.sleep(10), executor="dask")
        future = in_flight.invoke_now()
        assert wait_for(lambda: bool(first.scheduler.tasks), WAIT)
    finally:
        first.close()
    run = future.result(WAIT)
    assert run.error_message == (
        f"lost the connection to the Dask scheduler at {address} while the job was running"
    )

    step(clock, service, 60)  # the scheduler is away
    failed = job.last_invocation
    assert failed is not None and not failed.success and failed.error_message is not None
    assert f"Dask scheduler at {address}" in failed.error_message, failed.error_message
    assert job.active

    second = start()
    try:
        deadline = time.monotonic() + WAIT
        while not (job.last_invocation and job.last_invocation.success):
            assert time.monotonic() < deadline, job.last_invocation
            step(clock, service, 60)  # the next fire reconnects
            time.sleep(0.2)
        assert job.last_invocation.worker in second.scheduler_info["workers"]
    finally:
        service.shutdown(wait=True, timeout=10)
        second.close()


def test_an_unreachable_scheduler_never_blocks_the_timer(
    clock: ManualClock, service: BackgroundJobService
) -> None:
    address = f"tcp://127.0.0.1:{free_port()}"  # nobody listens
    service.dask_connect_timeout = 2.0
    service.dask_address = address
    remote = service.schedule_job("remote", "* * * * *", hello, executor="dask")
    local_runs: list[int] = []
    service.schedule_job("local", "* * * * *", lambda: local_runs.append(1))
    started = time.monotonic()
    clock.advance(60)  # returns once the timer handled the fire: nothing waited on the network
    assert time.monotonic() - started < 1.0  # (connecting takes 2 s here)
    assert wait_for(lambda: local_runs == [1])
    assert service.wait_until_idle(WAIT)
    run = remote.last_invocation
    assert run is not None and run.error_message is not None
    assert run.error_message.startswith(f"the Dask scheduler at {address} is unreachable: ")


# --- peers that are no Dask scheduler (issue 25, item 1) ------------------------------------


class SilentPeer:
    """A TCP server that accepts connections and never speaks (or, with ``reply``, sends
    those bytes and waits): a web server, say, where the scheduler was expected."""

    def __init__(self, reply: bytes = b"") -> None:
        self.server = socket.create_server(("127.0.0.1", 0))
        self.address = f"tcp://127.0.0.1:{self.server.getsockname()[1]}"
        self.reply = reply
        self.connections: list[socket.socket] = []
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.server.accept()
            except OSError:  # closed
                return
            self.connections.append(conn)
            if self.reply:
                conn.sendall(self.reply)

    def close(self) -> None:
        self.server.close()
        for conn in self.connections:
            conn.close()


@pytest.mark.parametrize(
    ("reply", "message"),
    [(b"", "did not answer as a Dask scheduler within 1 s (dask_connect_timeout)"),
     (b"HTTP/1.0 400 Bad request\r\nServer: SimpleHTTP/0.6\r\n\r\n",
      "answered, but not as a Dask scheduler: distributed could not read its reply")],
    ids=["silent", "web-server"],
)
def test_a_peer_that_is_no_dask_scheduler_fails_the_run_within_the_connect_timeout(
    service: BackgroundJobService, reply: bytes, message: str,
) -> None:
    peer = SilentPeer(reply)
    try:
        service.dask_connect_timeout = 1.0
        service.dask_address = peer.address
        job = service.schedule_job("remote", "@daily", hello, executor="dask")
        run = job.invoke_now().result(WAIT)  # it hung for ever, running=True, no run
        assert not run.success and not job.running
        assert run.error_message is not None and run.error_message.startswith(peer.address)
        assert message in run.error_message
    finally:
        peer.close()


def test_a_workers_address_is_said_to_be_no_scheduler(
    service: BackgroundJobService, cluster: Any,
) -> None:
    worker = next(iter(cluster.scheduler_info["workers"]))
    service.dask_address = worker
    run = service.schedule_job("remote", "@daily", hello, executor="dask").invoke_now()
    assert run.result(WAIT).error_message == (
        f"{worker} is a Dask Worker, not a scheduler: set dask_address to the scheduler's "
        f"address")


def test_an_exclusive_claim_makes_the_scheduler_log_no_error(client: Any) -> None:
    # the first claim of a job read a distributed.Variable never set: the scheduler (in this
    # process: a LocalCluster's) logged "Exception while handling op variable_get"
    import logging

    errors: list[logging.LogRecord] = []
    handler = logging.Handler(logging.ERROR)
    handler.emit = errors.append  # type: ignore[method-assign]
    logger = logging.getLogger("distributed")
    logger.addHandler(handler)
    clock = ManualClock("2026-01-01T00:00:00+00:00")
    service = BackgroundJobService(clock=clock, timezone="UTC")
    try:
        job = service.schedule_job(f"first claim {time.time_ns()}", "* * * * *", hello,
                                   executor=client, exclusive=True)
        step(clock, service, 60)
        assert job.run_count == 1 and job.last_invocation.success  # claimed, and ran
    finally:
        service.shutdown(wait=True, timeout=10)
        logger.removeHandler(handler)
    assert [r.getMessage() for r in errors] == []


EXITS = textwrap.dedent("""
    import os, socket, sys, threading, time
    from mashroom_jobs import BackgroundJobService

    def slow(started=sys.argv[2]):
        open(started, "w").close()
        time.sleep(30)

    if __name__ == "__main__":
        server = socket.create_server(("127.0.0.1", 0))  # answers whatever with junk
        junk = f"tcp://127.0.0.1:{server.getsockname()[1]}"
        threading.Thread(target=lambda: server.accept()[0].sendall(
            b"HTTP/1.0 400 Bad request\\r\\n\\r\\n"), daemon=True).start()
        service = BackgroundJobService(timezone="UTC", dask_address=junk,
                                       dask_connect_timeout=5)
        job = service.schedule_job("j", "@daily", slow, executor="dask")
        print(job.invoke_now().result(30).error_message, flush=True)
        service.dask_address = sys.argv[1]  # now a real one: a run left on it at exit
        job.invoke_now()
        while not os.path.exists(sys.argv[2]):
            time.sleep(0.05)
        print("exiting", flush=True)
""")


def test_a_script_that_failed_on_a_bad_peer_and_ends_with_a_run_pending_exits_quietly(
    cluster: Any, tmp_path: Path,
) -> None:
    # after the junk peer: "Exception ignored in: Client.__del__ ... TimeoutError" and 6 s
    # more at exit; a run left on the cluster: tornado's "cannot schedule new futures
    # after interpreter shutdown" traceback
    result = subprocess.run([sys.executable, "-c", EXITS, cluster.scheduler_address,
                             str(tmp_path / "started")],
                            capture_output=True, text=True, timeout=90)
    assert result.returncode == 0, result.stderr
    assert "answered, but not as a Dask scheduler" in result.stdout
    assert "exiting" in result.stdout
    assert "Traceback" not in result.stderr and "Exception ignored" not in result.stderr, \
        result.stderr


def test_a_local_dask_address_starts_a_cluster_the_service_closes_at_shutdown(
    capfd: pytest.CaptureFixture[str],
) -> None:
    psutil = pytest.importorskip("psutil")

    def ended(pid: int) -> bool:  # gone, or a zombie its parent has not reaped yet
        try:
            return bool(psutil.Process(pid).status() == psutil.STATUS_ZOMBIE)
        except psutil.NoSuchProcess:
            return True

    before = {p.pid for p in psutil.Process().children(recursive=True)}
    service = BackgroundJobService(timezone="UTC", dask_address="local")
    try:
        job = service.schedule_job("on local", "@daily", hello, executor="dask")
        run = job.invoke_now().result(60)
        assert run.success, run.error_message
        assert run.worker is not None and run.worker.startswith("tcp://127.0.0.1:")
        # its worker processes (multiprocessing's resource tracker, made with the first
        # of them when this test runs alone, lives as long as this process)
        started = {p.pid for p in psutil.Process().children(recursive=True)
                   if "resource_tracker" not in " ".join(p.cmdline())} - before
        assert started
        # Ctrl-C in a terminal reaches the whole process group: the workers are the
        # service's to stop, they printed KeyboardInterrupt tracebacks (issue 25)
        for pid in started:
            os.kill(pid, signal.SIGINT)
        run = job.invoke_now().result(60)
        assert run.success, run.error_message
        # (a worker that SIGINT ended takes a moment to die: give it two seconds)
        assert not wait_for(lambda: any(ended(pid) for pid in started), timeout=2)
    finally:
        service.shutdown(wait=True, timeout=20)
    assert not [t for t in service.threads() if t.is_alive()]
    alive = [p for p in psutil.Process().children(recursive=True) if p.pid in started]
    assert wait_for(lambda: not [p for p in alive if p.is_running()], 20)
    # the workers share this process's stderr: none printed a KeyboardInterrupt traceback
    err = capfd.readouterr().err
    assert "KeyboardInterrupt" not in err, err


# --- bad input ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("address", "expected"),
    [
        ("", ""),
        ("local", "local"),
        ("tcp://10.0.0.5:8786", "tcp://10.0.0.5:8786"),
        ("scheduler:8786", "tcp://scheduler:8786"),
        ("tls://dask.example.org:8786", "tls://dask.example.org:8786"),
        ("tcp://[::1]:8786", "tcp://[::1]:8786"),
    ],
    ids=["empty", "local", "tcp", "bare", "tls", "ipv6"],
)
def test_a_dask_address_is_checked_and_completed(address: str, expected: str) -> None:
    assert parse_dask_address(address) == expected


@pytest.mark.parametrize(
    ("address", "message"),
    [
        ("tcp://host", "Invalid dask_address 'tcp://host': no port"),
        ("tcp://host:port", "Invalid dask_address 'tcp://host:port': port 'port' is not a number"),
        ("tcp://host:70000", "port '70000' is not a number in 1-65535"),
        ("spark://host:7077", "unknown protocol 'spark' (expected one of tcp, tls, ws, wss, ucx)"),
        ("tcp//host:8786", "Invalid dask_address 'tcp//host:8786': expected 'local' or a "
                           "scheduler address such as 'tcp://host:8786'"),
        ("two words", "Invalid dask_address 'two words'"),
    ],
    ids=["no-port", "port-word", "port-range", "scheme", "slashes", "spaces"],
)
def test_an_invalid_dask_address_is_refused_at_configuration_and_the_old_one_stays(
    service: BackgroundJobService, address: str, message: str
) -> None:
    service.dask_address = "local"
    with pytest.raises(TraitError) as raised:
        service.dask_address = address
    assert message in str(raised.value)
    assert service.dask_address == "local"
    with pytest.raises(TraitError, match="dask_address"):
        BackgroundJobService(dask_address=address)


def test_executor_dask_without_an_address_and_other_bad_executors_are_clear_errors(
    service: BackgroundJobService, client: Any
) -> None:
    with pytest.raises(ValueError, match=r"executor='dask' needs a cluster: set "
                                         r"c\.BackgroundJobService\.dask_address"):
        service.schedule_job("j", "@daily", hello, executor="dask")
    with pytest.raises(ValueError, match=r"executor must be an Executor, a distributed\.Client "
                                         r"or 'dask', got 'spark'"):
        service.schedule_job("j", "@daily", hello, executor="spark")
    with pytest.raises(TypeError, match=r"pass the distributed\.Client itself"):
        service.schedule_job("j", "@daily", hello, executor=client.get_executor())
    assert service.jobs == ()


def test_setting_a_dask_address_imports_nothing_of_distributed() -> None:
    code = (
        "import sys; from mashroom_jobs import BackgroundJobService;"
        "s = BackgroundJobService(dask_address='tcp://10.0.0.5:8786');"
        "s.schedule_job('x', '* * * * *', print); s.shutdown();"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('distributed', 'dask')))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=60, check=True)
    assert result.stdout.strip() == "[]"


# --- plugins, the panel, the command ---------------------------------------------------------


@background_job_plugin(default_config={"cron_schedule": "* * * * *", "executor": "dask"})
def remote_bootstrap(plugin_name: str, plugin_config: dict[str, Any], holder: Any) -> Any:
    return hello


@background_job_plugin(default_config={"cron_schedule": "* * * * *", "executor": "spark"})
def misconfigured_bootstrap(plugin_name: str, plugin_config: dict[str, Any], holder: Any) -> Any:
    return hello


def test_a_plugin_whose_config_says_dask_runs_on_the_cluster(
    clock: ManualClock, service: BackgroundJobService, cluster: Any
) -> None:
    service.dask_address = cluster.scheduler_address
    good, bad = load_plugins(service, [
        EntryPoint("remote", f"{__name__}:remote_bootstrap", ENTRY_POINT_GROUP),
        EntryPoint("misconfigured", f"{__name__}:misconfigured_bootstrap", ENTRY_POINT_GROUP),
    ])
    assert good.state == "loaded" and good.job is not None and good.job.remote
    assert bad.state == "failed"
    assert bad.error == ("invalid config: executor must be 'dask' (the cluster of "
                         "dask_address) or None (the kernel's threads), got 'spark'")
    step(clock, service, 60)
    run = good.job.last_invocation
    assert run is not None and run.success, run
    assert run.worker in cluster.scheduler_info["workers"]


def test_the_panel_shows_the_worker_in_the_last_run_and_the_history(
    service: BackgroundJobService, client: Any
) -> None:
    from ipywidgets import Widget

    from mashroom_jobs.panel import JobsPanel

    panel = JobsPanel(service, auto_flush=False, callables={})
    try:
        job = service.schedule_job("hello", "@daily", hello, executor=client)
        run = job.invoke_now().result(WAIT)
        assert service.wait_until_idle(WAIT)
        panel.flush()
        (row,) = panel.rows
        assert row.last.value.endswith(f">ok</span> <small>on {run.worker}</small>")
        panel.button("Show details of hello").click()
        assert f"on {run.worker}" in row.detail.value
    finally:
        panel.close()
        Widget.close_all()


def test_run_with_dask_runs_the_plugins_jobs_on_the_cluster(
    plugin_dists: Any, cluster: Any, tmp_path: Path
) -> None:
    config = tmp_path / "config.py"
    config.write_text("c.BackgroundJobService.plugin_config = "
                      "{'Example heartbeat': {'invoke_immediately': True}}\n")
    proc = subprocess.Popen(
        [sys.executable, "-m", "mashroom_jobs", "run", "--dask", cluster.scheduler_address,
         "--config", str(config)],
        stderr=subprocess.PIPE, text=True, env=plugin_dists.env(plugin_dists.example),
    )
    lines: list[str] = []
    try:
        assert proc.stderr is not None
        for line in proc.stderr:
            lines.append(line)
            if "output: Example heartbeat: still alive" in line:
                break
        proc.send_signal(signal.SIGTERM)
        _, rest = proc.communicate(timeout=30)
    finally:
        proc.kill()
    text = "".join(lines) + rest
    assert proc.returncode == 0, text
    assert f"running the jobs on the Dask cluster at {cluster.scheduler_address}" in text
    ran = [line for line in text.splitlines() if "job 'Example heartbeat' ran in" in line]
    assert ran and any(f" (immediate) on {w}" in ran[0] for w in cluster.scheduler_info["workers"])


def test_run_with_an_invalid_dask_address_exits_2_naming_it() -> None:
    result = subprocess.run([sys.executable, "-m", "mashroom_jobs", "run", "--dask", "tcp://x"],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert result.stderr.strip() == (
        "mashroom-jobs run: Invalid dask_address 'tcp://x': no port; expected 'local' or a "
        "scheduler address such as 'tcp://host:8786'"
    )


def test_run_with_dask_keeps_distributeds_info_records_out_of_its_log(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import logging

    from mashroom_jobs.cli.running import quiet_distributed

    logger = logging.getLogger("distributed")
    monkeypatch.setattr(logger, "level", logging.INFO)  # distributed's own default
    quiet_distributed()  # what `mashroom-jobs run --dask` does before it connects
    scheduler = logging.getLogger("distributed.scheduler")
    assert not scheduler.isEnabledFor(logging.INFO)  # "Register worker...", 34 in 12 s
    assert scheduler.isEnabledFor(logging.WARNING)
