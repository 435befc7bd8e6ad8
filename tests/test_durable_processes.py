"""Durable jobs across real processes: a real store file, real clocks, real `mashroom-jobs
run` hosts, a real kill -9.  One scenario, in the issue's order, so the processes start
once: A defines, A exits, host B runs the jobs, C pauses one, B obeys, B is killed, three
hosts start racing and catch up the fires missed meanwhile exactly once, the pause holds.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from mashroom_jobs import BackgroundJobService
from mashroom_jobs.testing import wait_for

pytestmark = pytest.mark.realtime

COMMAND = [sys.executable, "-m", "mashroom_jobs"]


def _rows(path: str, sql: str, *params: object) -> list[Any]:
    with sqlite3.connect(path, timeout=10) as conn:
        return conn.execute(sql, params).fetchall()


def _runs(path: str, job: str) -> list[tuple[int | None, str, str]]:
    """(fire time, trigger, outcome) of the stored runs of ``job``."""
    return [(r[0], r[1], r[2]) for r in _rows(
        path, "SELECT scheduled_for_us, trigger, outcome FROM runs WHERE job = ?", job)]


class Host:
    """A `mashroom-jobs run` process hosting the store's durable jobs (no plugin)."""

    def __init__(self, store: str, config: Path, env: dict[str, str]) -> None:
        self.proc = subprocess.Popen(
            [*COMMAND, "run", "--store", store, "--config", str(config)],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env)

    def hosting(self) -> bool:
        return self.proc.poll() is None

    def end(self, sig: int = signal.SIGTERM) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        code = self.proc.wait(20)
        assert self.proc.stderr is not None
        if not self.proc.stderr.closed:  # (ending it twice is harmless)
            self.stderr = self.proc.stderr.read()
            self.proc.stderr.close()
        return code


def test_durable_jobs_outlive_their_process_obey_any_process_and_catch_up_once(
    tmp_path: Path,
) -> None:
    store = str(tmp_path / "store.sqlite")
    modules = tmp_path / "modules"
    modules.mkdir()
    (modules / "tick_tasks.py").write_text("def tick():\n    print('tick')\n")
    config = tmp_path / "host_config.py"
    config.write_text(  # no plugin: the hosts run the durable jobs only
        "from mashroom_jobs.plugins import discover\n"
        "c.BackgroundJobService.disabled_plugins = [ep.name for ep in discover()]\n"
        "c.BackgroundJobService.timezone = 'UTC'\n")
    env = {**os.environ, "PYTHONPATH": str(modules)}

    # A defines a command job and a module:function job, then exits
    definer = subprocess.run([sys.executable, "-c", (
        "from mashroom_jobs import BackgroundJobService, Command\n"
        f"s = BackgroundJobService(store={store!r}, timezone='UTC')\n"
        "s.schedule_job('echo', '* * * * * *', Command(['echo', 'hello']), durable=True)\n"
        "s.schedule_job('tick', '* * * * * *', 'tick_tasks:tick', durable=True)\n"
        "s.shutdown()\n")], env=env, capture_output=True, text=True, timeout=60)
    assert definer.returncode == 0, definer.stderr

    b = Host(store, config, env)
    try:
        assert wait_for(lambda: len(_runs(store, "echo")) >= 2 and len(_runs(store, "tick")) >= 2,
                        timeout=20)
        assert {outcome for _, _, outcome in _runs(store, "echo")} == {"ok"}

        # C pauses the command job: B obeys within about a second
        controller = BackgroundJobService(store=store, durable_jobs=False)
        try:
            controller.pause_job("echo")
            paused_at = time.time()
        finally:
            controller.shutdown()
        time.sleep(2.5)  # (the condition is an absence: give B time to run it if it would)
        late = [fire for fire, _, _ in _runs(store, "echo") if fire / 1e6 > paused_at + 1.5]
        assert late == [], "the paused job still ran in B more than 1.5 s after the pause"

        # kill -9 B; fires pass with no host
        assert b.end(signal.SIGKILL) == -signal.SIGKILL
        killed_at = time.time()
        ticks_before = len(_runs(store, "tick"))
        time.sleep(3.2)
    finally:
        if b.hosting():
            b.end(signal.SIGKILL)

    # three hosts start racing: the fires missed are caught up once (the latest run, the
    # others recorded as missed), and the pause survived the restart
    racers = [Host(store, config, env) for _ in range(3)]
    try:
        assert wait_for(lambda: any(t == "catch-up" for _, t, _ in _runs(store, "tick")),
                        timeout=20)
        assert wait_for(lambda: len(_runs(store, "tick")) >= ticks_before + 5, timeout=20)
        # SIGTERM: each racer writes the runs it queued before it exits, so every run any
        # of them made (a duplicate too) is in the store when it is read
        codes = [racer.end() for racer in racers]
        runs = _runs(store, "tick")
        fired = Counter(fire for fire, _, outcome in runs if outcome in ("ok", "missed"))
        assert all(count == 1 for count in fired.values()), fired  # each fire handled once
        # (B caught up once too, at its start, the fires between A's definition and it)
        after_kill = [r for r in runs if r[0] / 1e6 > killed_at]
        catch_ups = [r for r in after_kill if r[1] == "catch-up"]
        missed = [r for r in after_kill if r[2] == "missed"]
        assert len(catch_ups) == 1, runs
        assert len(missed) >= 2  # at least 3 fires passed while no host ran
        assert max(fire for fire, _, _ in missed) < catch_ups[0][0]  # the latest ran
        echo_after = [fire for fire, _, _ in _runs(store, "echo") if fire / 1e6 > paused_at + 1.5]
        assert echo_after == []  # still paused
    finally:
        for racer in racers:
            racer.end()
    assert codes == [0, 0, 0], [racer.stderr[-2000:] for racer in racers]
    assert all("hosting 2 durable jobs: 'echo', 'tick'" in racer.stderr for racer in racers)
