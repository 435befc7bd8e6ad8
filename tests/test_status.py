"""``mashroom-jobs status``: exit 0 with a live host, 1 with a stale one, with none, or with
no store at all; one line says why."""

from __future__ import annotations

import json
import os
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from mashroom_jobs.cli import main
from mashroom_jobs.store import SQLiteStore
from mashroom_jobs.testing import ManualClock


def _beat(path: Path, kind: str, seen: datetime, host: str = "h1") -> None:
    """A heartbeat of a host of ``kind`` last seen at ``seen``."""
    store = SQLiteStore(str(path), clock=ManualClock(seen))
    try:
        store.control.beat(host, kind, "box", 4242, seen - timedelta(minutes=5),
                           {"origin": "box pid 4242", "jobs": ["nightly", "hourly"],
                            "parked": {}})
    finally:
        store.close()


def _status(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["status", *args])
    out, err = capsys.readouterr()
    return code, out, err


def test_status_is_0_with_a_live_host_and_says_which(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "store.sqlite"
    _beat(path, "run", datetime.now(timezone.utc))
    code, out, err = _status(capsys, "--store", str(path))
    assert code == 0, err
    assert out.startswith("mashroom-jobs status: ok: 1 live host (run on box pid 4242; "
                          "newest heartbeat ")
    assert out.rstrip().endswith("2 durable jobs hosted") and len(out.splitlines()) == 1
    # --kind: only hosts of that kind count
    code, out, err = _status(capsys, "--store", str(path), "--kind", "server")
    assert code == 1 and out == ""
    assert err == (f"mashroom-jobs status: no server host has written a heartbeat to the job "
                   f"store {path}\n")


def test_status_is_1_with_a_stale_host_and_says_how_old(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "store.sqlite"
    _beat(path, "server", datetime.now(timezone.utc) - timedelta(seconds=90))
    code, out, err = _status(capsys, "--store", str(path))
    assert code == 1 and out == ""
    assert err.startswith("mashroom-jobs status: no live host: the newest heartbeat (server on "
                          "box pid 4242) is 9")
    assert err.endswith(" s old, more than 15 s\n")
    # a longer --max-age accepts it
    assert _status(capsys, "--store", str(path), "--max-age", "120")[0] == 0


def test_status_is_1_without_any_host_or_without_a_store(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "store.sqlite"
    SQLiteStore(str(path)).close()  # a store nobody hosts
    code, out, err = _status(capsys, "--store", str(path))
    assert (code, out) == (1, "")
    assert err == f"mashroom-jobs status: no host has written a heartbeat to the job store {path}\n"

    missing = tmp_path / "none.sqlite"
    code, out, err = _status(capsys, "--store", str(missing))
    assert code == 1 and not missing.exists()  # a health check never makes a store
    assert err == (f"mashroom-jobs status: there is no job store at {missing} (no run has "
                   f"been recorded there)\n")


def test_status_json_lists_the_hosts_with_their_age(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "store.sqlite"
    now = datetime.now(timezone.utc)
    _beat(path, "kernel", now - timedelta(seconds=100), host="old")
    _beat(path, "run", now, host="new")
    code, out, _ = _status(capsys, "--store", str(path), "--json")
    data = json.loads(out)
    assert code == 0 and data["healthy"] and data["store"] == str(path)
    assert [(h["id"], h["kind"]) for h in data["hosts"]] == [("new", "run"), ("old", "kernel")]
    assert data["hosts"][1]["age"] > 99 and data["hosts"][0]["jobs"] == ["nightly", "hourly"]


def test_status_uses_the_default_store_of_the_kernels(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("JUPYTER_DATA_DIR", str(tmp_path))
    from mashroom_jobs.store import default_store_path

    path = Path(default_store_path())
    assert path.is_relative_to(tmp_path)
    os.makedirs(path.parent, exist_ok=True)
    _beat(path, "server", datetime.now(timezone.utc))
    assert _status(capsys)[0] == 0
