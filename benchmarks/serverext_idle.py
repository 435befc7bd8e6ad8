"""What the Jupyter Server extension costs an idle server: CPU, wake-ups, memory.

``python -m benchmarks.serverext_idle [--seconds 60] [--json PATH]`` starts ``jupyter
server`` twice in temporary Jupyter folders, with the extension disabled (the baseline)
and enabled (hosting one durable job that does not fire during the measurement: a store
that is followed, a heartbeat written every 5 s), lets each settle, then reads the server
process over ``--seconds``: CPU time (user + system), context switches (voluntary ones are
the wake-ups of its threads), resident memory and threads.  Needs psutil (the bench
extra).  Numbers are for the whole server process; the extension's cost is the difference.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

SETTLE = 10.0


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def switches(pid: int) -> tuple[int, int]:
    """(voluntary, involuntary) context switches of every thread of ``pid`` (psutil's
    process figures count the main thread only)."""
    voluntary = involuntary = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            text = (task / "status").read_text()
        except OSError:  # the thread ended meanwhile
            continue
        for line in text.splitlines():
            if line.startswith("voluntary_ctxt_switches:"):
                voluntary += int(line.split()[1])
            elif line.startswith("nonvoluntary_ctxt_switches:"):
                involuntary += int(line.split()[1])
    return voluntary, involuntary


def measure(enabled: bool, seconds: float) -> dict[str, Any]:
    import psutil

    with tempfile.TemporaryDirectory(prefix="mashroom-jobs-idle-") as tmp:
        home = Path(tmp)
        dirs = {name: home / name.lower() for name in
                ("JUPYTER_CONFIG_DIR", "JUPYTER_DATA_DIR", "JUPYTER_RUNTIME_DIR", "IPYTHONDIR")}
        for path in dirs.values():
            path.mkdir()
        (home / "root").mkdir()
        store = home / "store.sqlite"
        config = {"BackgroundJobService": {"store": str(store)}}
        if not enabled:
            config["ServerApp"] = {"jpserver_extensions": {"mashroom_jobs.serverext": False}}
        (dirs["JUPYTER_CONFIG_DIR"] / "jupyter_server_config.json").write_text(
            json.dumps(config))
        if enabled:
            from mashroom_jobs import BackgroundJobService, Command
            from mashroom_jobs.durable import JobDefinition

            definer = BackgroundJobService(store=str(store), durable_jobs=False)
            assert definer.durable is not None
            definer.durable.define(JobDefinition.make("nightly", "0 3 * * *", Command(["true"]),
                                                      timezone="UTC"))
            definer.shutdown()
        env = {**os.environ, **{k: str(v) for k, v in dirs.items()}}
        port, token = _free_port(), os.urandom(8).hex()
        process = subprocess.Popen(
            [sys.executable, "-m", "jupyter_server", "--no-browser", "--allow-root",
             "--ip=127.0.0.1", f"--port={port}", f"--IdentityProvider.token={token}",
             f"--ServerApp.root_dir={home / 'root'}"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
        try:
            deadline = time.monotonic() + 60
            while True:
                try:
                    urllib.request.urlopen(urllib.request.Request(
                        f"http://127.0.0.1:{port}/api/status",
                        headers={"Authorization": f"token {token}"}), timeout=2)
                    break
                except OSError:
                    if time.monotonic() > deadline or process.poll() is not None:
                        raise RuntimeError("the server did not start") from None
                    time.sleep(0.2)
            time.sleep(SETTLE)
            proc = psutil.Process(process.pid)
            cpu0, ctx0 = proc.cpu_times(), switches(process.pid)
            time.sleep(seconds)
            cpu1, ctx1 = proc.cpu_times(), switches(process.pid)
            memory = proc.memory_info().rss
            threads = proc.num_threads()
        finally:
            process.terminate()
            process.wait(20)
    cpu = (cpu1.user + cpu1.system) - (cpu0.user + cpu0.system)
    return {
        "extension": enabled, "seconds": seconds,
        "cpu_ms_per_minute": round(cpu * 1000 * 60 / seconds, 1),
        "voluntary_switches_per_s": round((ctx1[0] - ctx0[0]) / seconds, 2),
        "involuntary_switches_per_s": round((ctx1[1] - ctx0[1]) / seconds, 2),
        "rss_mb": round(memory / 1e6, 1), "threads": threads,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    results = [measure(False, args.seconds), measure(True, args.seconds)]
    for result in results:
        print(json.dumps(result))
    base, ext = results
    cost = {key: ext[key] - base[key] for key in
            ("cpu_ms_per_minute", "voluntary_switches_per_s", "rss_mb", "threads")}
    print(f"extension's cost when idle: {cost['cpu_ms_per_minute']:.1f} ms CPU per minute, "
          f"{cost['voluntary_switches_per_s']:.2f} wake-ups/s, {cost['rss_mb']:.1f} MB, "
          f"{cost['threads']} threads")
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
