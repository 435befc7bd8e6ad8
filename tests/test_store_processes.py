"""Several real processes on one job store: real SQLite, real clocks, a real kill -9."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest
from peers import Peer

from mashroom_jobs import BackgroundJobService
from mashroom_jobs.store import SQLiteStore

SCRIPT = str(Path(__file__).with_name("store_process.py"))


def _stored(path: str, sql: str, *params: object) -> list[Any]:
    with sqlite3.connect(path, timeout=10) as conn:
        return conn.execute(sql, params).fetchall()


def _sleep_until_mid_second() -> None:
    """Until the middle of a second: between the every-second fires and their records."""
    time.sleep((1.5 - time.time() % 1.0) % 1.0)


@pytest.mark.realtime
def test_three_processes_run_each_exclusive_fire_once_even_when_the_winner_is_killed(
    tmp_path: Path,
) -> None:
    path = str(tmp_path / "store.sqlite")
    peers = [Peer(SCRIPT, "share", path, name) for name in ("k1", "k2", "k3")]
    try:
        origins = [peer.read()["ready"] for peer in peers]
        ready = time.time()
        time.sleep(2.2)
        _sleep_until_mid_second()
        # the process that ran the latest fire is the one to kill
        [(winner,)] = _stored(path, "SELECT origin FROM runs WHERE job = 'exclusive' AND "
                                    "trigger = 'schedule' ORDER BY scheduled_for_us DESC LIMIT 1")
        victim = peers[origins.index(winner)]
        os.kill(victim.proc.pid, signal.SIGKILL)
        killed = time.time()
        victim.proc.wait(10)
        time.sleep(3.2)
        _sleep_until_mid_second()
        survivors = [p for p in peers if p is not victim]
        for peer in survivors:
            peer.say("stop")
        stopped = time.time()
        assert [peer.read() for peer in survivors] == [
            {"stopped": origins[peers.index(p)]} for p in survivors]
        for peer in survivors:
            peer.say("report")
        reports = [peer.read() for peer in survivors]
    finally:
        for peer in peers:
            peer.end()

    runs = _stored(path, "SELECT scheduled_for_us, origin FROM runs WHERE job = 'exclusive' "
                         "AND trigger = 'schedule' ORDER BY scheduled_for_us")
    fires = [us / 1e6 for us, _ in runs]
    assert [t for t, n in Counter(fires).items() if n > 1] == []  # no fire ran twice
    # every fire from when all three ran until the survivors stopped ran once, but at most
    # the one the killed winner had claimed (and no claim stayed stuck after it)
    window = [t for t in fires if ready < t < stopped - 1]
    expected = {float(s) for s in range(int(ready) + 1, int(stopped - 1) + 1)}
    missing = sorted(expected - set(window))
    assert len(missing) <= 1 and all(killed - 1 < t < killed + 1 for t in missing), (
        missing, killed)
    assert max(b - a for a, b in pairwise(fires)) <= 2.0  # no gap longer than one fire
    after_kill = [origin for us, origin in runs if us / 1e6 > killed + 1]
    assert after_kill and winner not in after_kill
    # manual runs are never claimed: each process ran its own
    manual = _stored(path, "SELECT origin FROM runs WHERE job = 'exclusive' AND "
                           "trigger = 'manual'")
    assert sorted(o for (o,) in manual) == sorted(origins)

    for report in reports:
        # each survivor's history shows every stored run of the exclusive job, its own
        # and the others', the killed one's included
        stored = [(r["scheduled_for"], r["origin"]) for r in report["stored"]["exclusive"]
                  if r["trigger"] == "schedule"]
        assert sorted(stored) == [(us / 1e6, origin) for us, origin in runs]
        assert all(not r["elsewhere"] for r in report["stored"]["exclusive"])
        # in memory, the fires it lost are "ran elsewhere", naming who ran them
        lost = [r for r in report["memory"] if r["elsewhere"]]
        assert lost and all(r["origin"] in origins and r["origin"] != report["origin"]
                            for r in lost)
        # the non-exclusive job ran here at every fire while it lived
        mine = sorted(r["scheduled_for"] for r in report["stored"]["everywhere"]
                      if r["origin"] == report["origin"])
        assert set(expected) <= set(mine)
        assert len(mine) == report["everywhere_runs"]


@pytest.mark.realtime
def test_eight_threads_in_each_of_two_processes_lose_no_run_and_win_each_claim_once(
    tmp_path: Path,
) -> None:
    path = str(tmp_path / "store.sqlite")
    SQLiteStore(path).close()  # one schema, before both start
    threads, runs = 8, 500
    peers = [Peer(SCRIPT, "write", path, str(threads), str(runs)) for _ in range(2)]
    try:
        assert [peer.read() for peer in peers] == ["ready", "ready"]
        for peer in peers:
            peer.say("go")
        results = [peer.read() for peer in peers]
    finally:
        for peer in peers:
            peer.end()
    assert all(r["closed"] and r["written"] == threads * runs for r in results)
    assert sum(r["won"] for r in results) == threads * runs  # each fire claimed once
    per_origin = dict(_stored(path, "SELECT origin, count(*) FROM runs GROUP BY origin"))
    assert per_origin == {r["origin"]: threads * runs for r in results}
    [(claims,)] = _stored(path, "SELECT count(*) FROM claims")
    assert claims == threads * runs


WRITE_AND_EXIT = r"""
import sys
from mashroom_jobs import BackgroundJobService
service = BackgroundJobService(store=sys.argv[1], kernel_id="before-restart")
job = service.schedule_job("report", "0 2 * * *", lambda: print("42 rows"))
job.invoke_now().result(5)
service.schedule_job("broken", "0 3 * * *", lambda: 1 / 0).invoke_now().result(5)
"""  # and exits without shutdown(): the service's atexit hook writes the last runs


def test_a_restarted_process_shows_the_runs_of_the_last_one_in_history_panel_and_cli(
    tmp_path: Path,
) -> None:
    from ipywidgets import Widget

    from mashroom_jobs.panel import JobsPanel

    path = str(tmp_path / "store.sqlite")
    subprocess.run([sys.executable, "-c", WRITE_AND_EXIT, path], check=True, timeout=60,
                   capture_output=True)
    service = BackgroundJobService(store=path, timezone="UTC", kernel_id="after-restart")
    panel = JobsPanel(service, auto_flush=False, callables={})
    try:
        [report] = service.history("report")
        assert report.output == "42 rows\n" and report.origin.endswith("kernel before-restart")
        assert [r.error_message for r in service.history("broken")] == [
            "ZeroDivisionError: division by zero"]
        assert len(service.history()) == 2
        service.schedule_job("report", "0 2 * * *", lambda: None)
        panel.flush()
        panel.button("Show details of report").click()
        detail = panel.rows[0].detail.value
        assert "42 rows" in detail and "kernel before-r…" in detail
    finally:
        panel.close()
        service.shutdown()
        Widget.close_all()
    cli = subprocess.run([sys.executable, "-m", "mashroom_jobs", "history", "--store", path],
                         capture_output=True, text=True, timeout=60)
    assert cli.returncode == 0 and cli.stdout.startswith(f"2 runs in {path}, newest first:")
    assert "42 rows" in cli.stdout or "report" in cli.stdout


@pytest.mark.realtime
def test_a_store_deleted_under_a_running_process_is_reopened_and_claims_are_shared_again(
    tmp_path: Path,
) -> None:
    # issue 25: `rm store.sqlite*` under process A, then B opened a new file at the path:
    # every fire ran in both, A wrote to the deleted file, and nobody said a word
    from mashroom_jobs.testing import wait_for

    path = str(tmp_path / "store.sqlite")
    first = Peer(SCRIPT, "share", path, "a")
    second = None
    try:
        first.read()
        for suffix in ("", "-wal", "-shm"):
            Path(path + suffix).unlink(missing_ok=True)
        second = Peer(SCRIPT, "share", path, "b")
        second.read()
        both = time.time() + 1.0  # A notices at its next claim or within its writer's second

        def fires_since() -> int:
            return len(_stored(path, "SELECT DISTINCT scheduled_for_us FROM runs WHERE job = "
                                     "'exclusive' AND trigger = 'schedule' AND "
                                     "scheduled_for_us > ?", int(both * 1e6)))

        assert wait_for(lambda: fires_since() >= 3, timeout=20)
        reports = []
        for peer in (first, second):
            peer.say("stop")
            peer.read()
            peer.say("report")
            reports.append(peer.read())
        first.proc.stdin.close()  # type: ignore[union-attr]
        first.proc.wait(10)
        warnings = first.stderr()
    finally:
        first.end()
        if second is not None:
            second.end()

    assert "was deleted or replaced while this process used it" in warnings
    assert warnings.count("was deleted or replaced") == 1
    origins = [report["origin"] for report in reports]

    def fires(report: Any, elsewhere: bool) -> dict[float, str]:
        return {r["scheduled_for"]: r["origin"] for r in report["memory"]
                if r["trigger"] == "schedule" and r["elsewhere"] == elsewhere
                and r["scheduled_for"] > both}

    ran, lost = [fires(r, False) for r in reports], [fires(r, True) for r in reports]
    assert not ran[0].keys() & ran[1].keys()  # no fire ran in both
    # who wins a claim is a race, so either may run every fire; what shows the claims are
    # shared is that the one that lost a fire names the other as its runner
    for me, other in ((0, 1), (1, 0)):
        assert set(lost[me].values()) <= {origins[other]}
        assert lost[me].keys() <= ran[other].keys()
    assert lost[0] or lost[1]
    # every run since, A's included, is in the file at the path, which both share
    stored = {r["scheduled_for"]: r["origin"] for r in reports[1]["stored"]["exclusive"]
              if r["scheduled_for"] and r["scheduled_for"] > both}
    assert len(stored) >= 3
    assert stored == {t: origins[i] for i in (0, 1) for t in ran[i] if t in stored}
    assert all(t in stored for i in (0, 1) for t in ran[i] if t < max(stored))
