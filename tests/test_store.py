"""The job store: real SQLite files, real connections; time moves through ManualClocks.

(The tests with several real processes are in ``test_store_processes.py``.)
"""

from __future__ import annotations

import json
import logging
import os
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from traitlets import TraitError

from mashroom_jobs import (
    BackgroundJobService,
    JobInvocation,
    Outcome,
    StoreError,
    StoreUnavailableError,
)
from mashroom_jobs.store import (
    SCHEMA_VERSION,
    SQLiteStore,
    default_store_path,
    make_origin,
    network_filesystem,
    store_location,
)
from mashroom_jobs.store import schema as store_schema
from mashroom_jobs.store import writer as store_writer
from mashroom_jobs.testing import ManualClock, wait_for

UTC = timezone.utc
T0 = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.fixture
def path(tmp_path: Path) -> str:
    return str(tmp_path / "store.sqlite")


@pytest.fixture
def store(path: str) -> Iterator[SQLiteStore]:
    s = SQLiteStore(path, origin="here pid 1", clock=ManualClock(T0))
    yield s
    s.close()


def _run(when: datetime, **fields: Any) -> JobInvocation:
    values: dict[str, Any] = {"timestamp": when, "scheduled_for": None, "trigger": "manual",
                              "execution_time_ms": 1.0, "outcome": Outcome.OK}
    values.update(fields)
    return JobInvocation(**values)


def _services(path: str, *kernels: str, **settings: Any) -> list[BackgroundJobService]:
    """Services sharing the store ``path`` (told apart by a kernel id), each on its clock."""
    return [BackgroundJobService(clock=ManualClock(T0), timezone="UTC", store=path,
                                 kernel_id=kernel, **settings) for kernel in kernels]


# --- where the store is -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [("jobs.sqlite", "{cwd}/jobs.sqlite"), ("sqlite:///jobs.sqlite", "{cwd}/jobs.sqlite"),
     ("sqlite:////srv/jobs.sqlite", "/srv/jobs.sqlite"), ("/srv/a b.sqlite", "/srv/a b.sqlite"),
     ("~/jobs.sqlite", "{home}/jobs.sqlite")],
    ids=["relative", "url-relative", "url-absolute", "space", "home"],
)
def test_a_store_setting_is_a_path_or_a_sqlite_url(value: str, expected: str) -> None:
    assert store_location(value) == expected.format(cwd=os.getcwd(),
                                                    home=os.path.expanduser("~"))


@pytest.mark.parametrize(
    ("value", "message"),
    [("", "names no file"), ("postgresql://db/jobs", "the job store is a SQLite file"),
     ("sqlite://host/jobs.sqlite", "a SQLite URL has no host"),
     (":memory:", "no other process can share"), ("sqlite:///", "names no file"),
     (42, "expected a unicode string")],
    ids=["empty", "postgres", "host", "memory", "empty-url", "number"],
)
def test_a_bad_store_setting_is_a_trait_error_and_the_old_value_stays(
    value: Any, message: str
) -> None:
    with pytest.raises(TraitError, match=message):
        BackgroundJobService(store=value)
    service = BackgroundJobService()
    try:
        with pytest.raises(TraitError, match=message):
            service.store = value
        assert service.store is None and service.store_path is None
    finally:
        service.shutdown()


def test_a_pathlib_path_is_a_store_setting_too(tmp_path: Path) -> None:
    service = BackgroundJobService(store=tmp_path / "jobs.sqlite")
    try:
        assert service.store == service.store_path == str(tmp_path / "jobs.sqlite")
    finally:
        service.shutdown()


def test_a_network_file_system_is_found_by_the_longest_mount_point(tmp_path: Path) -> None:
    mounts = tmp_path / "mounts"
    mounts.write_text(
        "/dev/vda / ext4 rw 0 0\n"
        "server:/home /home nfs4 rw,vers=4.2 0 0\n"
        "/dev/vdb /home/alice/scratch ext4 rw 0 0\n"
        "//nas/share /mnt/my\\040share cifs rw 0 0\n"
        "sshfs#me@host: /mnt/remote fuse.sshfs rw 0 0\n"
    )
    m = str(mounts)
    assert network_filesystem("/home/bob/.local/share/jupyter/x.sqlite", m) == "nfs4"
    assert network_filesystem("/home/alice/scratch/x.sqlite", m) is None
    assert network_filesystem("/home/alice/scratchy/x.sqlite", m) == "nfs4"
    assert network_filesystem("/mnt/my share/jobs/x.sqlite", m) == "cifs"
    assert network_filesystem("/mnt/remote/x.sqlite", m) == "fuse.sshfs"
    assert network_filesystem("/var/x.sqlite", m) is None
    assert network_filesystem("/var/x.sqlite", str(tmp_path / "no-such-table")) is None


def _fake_network_mount(tmp_path: Path, folder: Path) -> str:
    mounts = tmp_path / "mounts"
    mounts.write_text(f"/dev/vda / ext4 rw 0 0\nserver:/export {folder} nfs rw 0 0\n")
    return str(mounts)


def test_the_default_store_moves_off_a_network_file_system_with_one_warning(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    data, runtime = tmp_path / "nfs-home" / "data", tmp_path / "local" / "runtime"
    monkeypatch.setenv("JUPYTER_DATA_DIR", str(data))
    monkeypatch.setenv("JUPYTER_RUNTIME_DIR", str(runtime))
    mounts = _fake_network_mount(tmp_path, tmp_path / "nfs-home")
    with caplog.at_level(logging.WARNING, logger="mashroom_jobs"):
        chosen = default_store_path(mounts)
    assert chosen == str(runtime / "mashroom-jobs-store.sqlite")
    [record] = caplog.records
    assert str(data / "mashroom-jobs") in record.getMessage()
    assert chosen in record.getMessage() and "network file system (nfs)" in record.getMessage()
    caplog.clear()
    assert default_store_path(str(tmp_path / "no-mounts")) == str(
        data / "mashroom-jobs" / "store.sqlite")
    assert caplog.records == []


def test_with_the_runtime_folder_remote_too_the_default_store_is_in_a_private_temp_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("JUPYTER_DATA_DIR", str(tmp_path / "nfs" / "data"))
    monkeypatch.setenv("JUPYTER_RUNTIME_DIR", str(tmp_path / "nfs" / "runtime"))
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    with caplog.at_level(logging.WARNING, logger="mashroom_jobs"):
        chosen = default_store_path(_fake_network_mount(tmp_path, tmp_path / "nfs"))
    folder = tmp_path / "tmp" / f"mashroom-jobs-{os.getuid()}"
    assert chosen == str(folder / "store.sqlite")
    assert folder.stat().st_mode & 0o777 == 0o700
    assert len(caplog.records) == 1


def test_a_store_set_on_a_network_file_system_is_used_with_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "nfs" / "jobs.sqlite"
    with caplog.at_level(logging.WARNING, logger="mashroom_jobs"):
        s = SQLiteStore(str(path), mounts=_fake_network_mount(tmp_path, tmp_path / "nfs"))
    s.close()
    [record] = caplog.records
    message = record.getMessage()
    assert str(path) in message and "used as configured" in message
    assert "mashroom-jobs-" in message  # the local path it suggests


def test_the_origin_names_the_host_the_process_and_the_kernel() -> None:
    assert make_origin() == f"{socket.gethostname()} pid {os.getpid()}"
    assert make_origin("3f2a9c").endswith(f"pid {os.getpid()} kernel 3f2a9c")


# --- claims -------------------------------------------------------------------------------


def test_the_first_claim_of_a_fire_wins_and_the_others_learn_who_won(path: str) -> None:
    a = SQLiteStore(path, origin="host pid 1 kernel aaa")
    b = SQLiteStore(path, origin="host pid 2 kernel bbb")
    try:
        assert a.claim("nightly", T0) is None
        assert b.claim("nightly", T0) == "host pid 1 kernel aaa"
        assert a.claim("nightly", T0) == "host pid 1 kernel aaa"  # never twice, not even here
        assert b.claim("nightly", T0 + timedelta(seconds=1)) is None
        assert b.claim("other", T0) is None
        # the same instant in another zone is the same fire
        assert a.claim("other", T0.astimezone(ZoneInfo("Asia/Tokyo"))) == \
            "host pid 2 kernel bbb"
    finally:
        a.close()
        b.close()


def test_a_claim_blocked_by_another_process_raises_store_unavailable_in_bounded_time(
    path: str
) -> None:
    import time

    s = SQLiteStore(path, busy_timeout=0.2)
    other = sqlite3.connect(path, isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")  # another process in a long write
        started = time.monotonic()
        with pytest.raises(StoreUnavailableError, match="could not claim 'job'"):
            s.claim("job", T0)
        assert time.monotonic() - started < 1.5
        other.execute("ROLLBACK")
        assert s.claim("job", T0) is None
    finally:
        other.close()
        s.close()


# --- runs -------------------------------------------------------------------------------


def test_a_run_comes_back_from_the_store_as_it_was_with_its_origin(store: SQLiteStore) -> None:
    vienna = ZoneInfo("Europe/Vienna")
    started = datetime(2026, 1, 1, 1, 0, 0, 123457, tzinfo=vienna)
    failed = _run(started, scheduled_for=datetime(2026, 1, 1, 1, 0, tzinfo=vienna),
                  trigger="retry", execution_time_ms=12.5, outcome=Outcome.FAILED,
                  error_message="ValueError: bad", traceback="Traceback...\nValueError: bad\n",
                  output="a\nb\n", attempt=2, worker="tcp://10.0.0.1:40000")
    fixed = timezone(timedelta(hours=-3, minutes=-30))
    plain = _run(datetime(2026, 1, 1, 2, 0, tzinfo=fixed))
    store.record("nightly", failed)
    store.record("other", plain)
    assert store.flush(5) and store.pending == 0
    got = store.history("nightly")
    assert got == [failed._replace(origin="here pid 1", job="nightly")]
    assert got[0].timestamp.tzinfo == vienna and got[0].elsewhere is False
    [back] = store.history("other")
    assert back == plain._replace(origin="here pid 1", job="other")
    assert back.timestamp.utcoffset() == timedelta(hours=-3, minutes=-30)


def test_history_is_newest_first_by_job_since_and_limit(store: SQLiteStore) -> None:
    for i in range(10):
        store.record("a" if i % 2 else "b", _run(T0 + timedelta(minutes=i), attempt=i + 1))
    store.flush(5)
    assert [r.attempt for r in store.history()] == list(range(10, 0, -1))
    assert [r.attempt for r in store.history("a", limit=3)] == [10, 8, 6]
    since = T0 + timedelta(minutes=5)
    assert [r.attempt for r in store.history(since=since)] == [10, 9, 8, 7, 6]
    assert store.history(limit=0) == [] and store.history("none") == []
    assert [name for name, _ in store.runs(limit=2)] == ["a", "b"]
    assert store.job_names() == ["a", "b"] and store.count() == 10 and store.count("a") == 5


def test_runs_not_yet_written_are_in_the_history_exactly_once(store: SQLiteStore) -> None:
    """While the writer works, each run is either in the file or in the queue: a reader
    sees every run once."""
    total = 3000
    seen_counts: list[int] = []
    twice: list[list[int]] = []
    done = threading.Event()

    def read() -> None:
        # (a pause between reads, as any reader makes: the lock readers and the writer
        # share is not fair, and a reader in a tight loop could starve the writer)
        while not done.wait(0.001):
            runs = store.history("job", limit=total)
            attempts = [r.attempt for r in runs]
            if len(attempts) != len(set(attempts)):
                twice.append(attempts)
            seen_counts.append(len(runs))

    reader = threading.Thread(target=read)
    reader.start()
    try:
        for i in range(total):
            store.record("job", _run(T0 + timedelta(milliseconds=i), attempt=i + 1))
        assert store.flush(10)
    finally:
        done.set()
        reader.join(10)
    assert twice == []
    assert seen_counts == sorted(seen_counts)  # never one less than before
    assert store.count("job") == total
    assert len(store.history("job", limit=total)) == total


def test_a_busy_store_delays_writes_and_loses_no_run(path: str) -> None:
    s = SQLiteStore(path, busy_timeout=0.05, batch_delay=0.01)
    other = sqlite3.connect(path, isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")
        for i in range(20):
            s.record("job", _run(T0 + timedelta(seconds=i)))
        assert not s.flush(0.5)  # cannot write yet...
        assert len(s.history("job", limit=100)) == 20  # ...but the runs are there
        other.execute("ROLLBACK")
        assert s.flush(5)
        assert s.count("job") == 20 and s.written == 20
    finally:
        other.close()
        s.close()


def test_the_queue_is_bounded_and_says_so_when_it_drops(
    path: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(store_writer, "MAX_PENDING", 10)
    s = SQLiteStore(path, busy_timeout=0.05, batch_delay=0.01)
    other = sqlite3.connect(path, isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")
        with caplog.at_level(logging.WARNING, logger="mashroom_jobs"):
            for i in range(25):
                s.record("job", _run(T0 + timedelta(seconds=i), attempt=i + 1))
        assert s.dropped >= 5 and s.pending == 25 - s.dropped
        assert any("dropped to bound memory" in r.getMessage() for r in caplog.records)
        other.execute("ROLLBACK")
        assert s.flush(5)
        kept = [r.attempt for r in s.history("job", limit=100)]
        assert kept[0] == 25 and len(kept) == 25 - s.dropped  # the newest are kept
    finally:
        other.close()
        s.close()


def test_close_writes_what_is_queued(path: str) -> None:
    s = SQLiteStore(path, batch_delay=30)  # the writer would wait long for more
    for i in range(5):
        s.record("job", _run(T0 + timedelta(seconds=i)))
    assert s.close(5) and not s.thread.is_alive()
    assert s.flush() and s.close()  # both harmless once closed
    assert len(s.history("job")) == 5  # a closed store can still be read
    with pytest.raises(StoreUnavailableError, match="closed"):
        s.claim("job", T0)


def test_prune_keeps_the_newest_runs_per_job_and_the_recent_days(path: str) -> None:
    clock = ManualClock(T0 + timedelta(days=40))
    s = SQLiteStore(path, retention_runs=5, retention_days=30, clock=clock)
    try:
        for i in range(8):  # 8 recent runs of "busy"
            s.record("busy", _run(T0 + timedelta(days=39, minutes=i), attempt=i + 1))
        s.record("old", _run(T0 + timedelta(days=5)))      # older than 30 days
        s.record("recent", _run(T0 + timedelta(days=20)))  # 20 days old: kept
        s.claim("busy", T0 + timedelta(days=38))           # a claim older than a day
        s.claim("busy", T0 + timedelta(days=40))
        s.flush(5)
        with sqlite3.connect(path) as raw:  # claimed_at is the clock's now: age the first
            raw.execute("UPDATE claims SET claimed_at_us = claimed_at_us - 2 * 86400000000 "
                        "WHERE scheduled_for_us < ?",
                        (int((T0 + timedelta(days=39)).timestamp() * 1e6),))
        assert s.prune() == 3 + 1
        assert [r.attempt for r in s.history("busy")] == [8, 7, 6, 5, 4]
        assert s.job_names() == ["busy", "recent"]
        with sqlite3.connect(path) as raw:
            assert raw.execute("SELECT count(*) FROM claims").fetchone()[0] == 1
        s.vacuum()
        assert s.count() == 6
    finally:
        s.close()


# --- opening: versions and bad files -------------------------------------------------------


def test_a_new_store_gets_the_schema_and_its_version(path: str) -> None:
    SQLiteStore(path).close()
    with sqlite3.connect(path) as raw:
        meta = dict(raw.execute("SELECT key, value FROM meta"))
        assert raw.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert meta == {"application": "mashroom-jobs", "schema_version": str(SCHEMA_VERSION),
                    "control_version": "0"}


def test_a_store_of_an_older_version_is_migrated_step_by_step_keeping_its_runs(
    path: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    s = SQLiteStore(path)
    s.record("job", _run(T0))
    s.close()
    step = ("ALTER TABLE runs ADD COLUMN host TEXT",)
    monkeypatch.setattr(store_schema, "MIGRATIONS", (*store_schema.MIGRATIONS, step))
    monkeypatch.setattr(store_schema, "SCHEMA_VERSION", SCHEMA_VERSION + 1)
    s = SQLiteStore(path)
    try:
        assert len(s.history("job")) == 1
    finally:
        s.close()
    with sqlite3.connect(path) as raw:
        assert raw.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone() \
            == (str(SCHEMA_VERSION + 1),)
        assert "host" in [row[1] for row in raw.execute("PRAGMA table_info(runs)")]


def _expect_store_error(path: str, message: str) -> None:
    with pytest.raises(StoreError) as info:
        SQLiteStore(path)
    assert str(info.value) == message
    with pytest.raises(StoreError) as info:  # the service says the same, from its constructor
        BackgroundJobService(store=path)
    assert str(info.value) == message


def test_a_store_of_a_newer_version_is_refused_naming_both_versions(path: str) -> None:
    SQLiteStore(path).close()
    with sqlite3.connect(path) as raw:
        raw.execute("UPDATE meta SET value = '7' WHERE key = 'schema_version'")
    _expect_store_error(
        path, f"cannot use the job store {path}: its schema is version 7, newer than the "
              f"version {SCHEMA_VERSION} this mashroom-jobs knows; upgrade mashroom-jobs, or "
              f"use another store")


def test_a_file_that_is_not_a_database_is_refused(path: str) -> None:
    Path(path).write_text("name,price\nwidget,3\n" * 200)
    _expect_store_error(path, f"cannot use the job store {path}: the file is not a SQLite "
                              f"database")
    assert Path(path).read_text().startswith("name,price")  # untouched


def test_a_database_of_something_else_is_refused(path: str) -> None:
    with sqlite3.connect(path) as raw:
        raw.execute("CREATE TABLE prices (name TEXT, price REAL)")
    _expect_store_error(path, f"cannot use the job store {path}: it is a SQLite database of "
                              f"something else (tables prices), not a mashroom-jobs store")


def test_a_folder_is_refused(tmp_path: Path) -> None:
    _expect_store_error(str(tmp_path), f"cannot use the job store {tmp_path}: it is a folder, "
                                       f"not a file")


def test_a_store_whose_folder_cannot_be_made_is_refused(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    path = str(tmp_path / "file" / "sub" / "store.sqlite")
    _expect_store_error(path, f"cannot create the job store {path}: cannot make its folder "
                              f"{tmp_path / 'file' / 'sub'}: Not a directory")


_AS_ANOTHER_USER = r"""
import json, sys
from mashroom_jobs import StoreError
from mashroom_jobs.store import SQLiteStore
messages = []
for path in sys.argv[1:]:
    try:
        SQLiteStore(path).close()
        messages.append("opened")
    except StoreError as exc:
        messages.append(str(exc))
print(json.dumps(messages))
"""


def _without_root_powers() -> None:
    """(In the child, before exec.) Drop root's power to ignore file modes
    (CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH, CAP_FOWNER) from the capability bounding set."""
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    for capability in (1, 2, 3):
        if libc.prctl(24, capability, 0, 0, 0) != 0:  # PR_CAPBSET_DROP
            raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP) failed")


def test_read_only_files_and_folders_are_refused_naming_the_reason(tmp_path: Path) -> None:
    """Opened in a child process that file modes bind (root may write anything otherwise)."""
    ro_dir = tmp_path / "ro-dir"            # no file yet, the folder read-only
    ro_dir_file = tmp_path / "ro-dir-file"  # a writable file in a read-only folder
    rw_dir = tmp_path / "rw-dir"            # a read-only file in a writable folder
    for folder in (ro_dir, ro_dir_file, rw_dir):
        folder.mkdir()
    for folder in (ro_dir_file, rw_dir):
        SQLiteStore(str(folder / "store.sqlite")).close()
        for leftover in folder.glob("store.sqlite-*"):
            leftover.unlink()
    (ro_dir_file / "store.sqlite").chmod(0o666)
    (rw_dir / "store.sqlite").chmod(0o444)
    ro_dir.chmod(0o555)
    ro_dir_file.chmod(0o555)
    paths = [str(ro_dir / "store.sqlite"), str(ro_dir_file / "store.sqlite"),
             str(rw_dir / "store.sqlite")]
    try:
        result = subprocess.run(
            [sys.executable, "-c", _AS_ANOTHER_USER, *paths], capture_output=True, text=True,
            timeout=60, preexec_fn=_without_root_powers if os.geteuid() == 0 else None,
        )
    finally:
        ro_dir.chmod(0o755)
        ro_dir_file.chmod(0o755)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == [
        f"cannot create the job store {paths[0]}: its folder {ro_dir} is not writable",
        f"cannot use the job store {paths[1]}: its folder {ro_dir_file} is read-only "
        f"(SQLite must create the store.sqlite-wal and -shm files next to it)",
        f"cannot use the job store {paths[2]}: the file is read-only",
    ]


# --- the service on a store ----------------------------------------------------------------


def test_a_service_without_a_store_keeps_runs_in_memory(service: BackgroundJobService) -> None:
    assert service.store is None and service.store_path is None
    job = service.schedule_job("job", "@daily", lambda: None, exclusive=True)
    job.invoke_now().result(5)
    assert service.history("job") == list(job.history)


def test_an_exclusive_fire_runs_in_one_service_and_the_other_records_who_ran_it(
    path: str
) -> None:
    a, b = _services(path, "aaa", "bbb")
    try:
        ran: list[str] = []
        jobs = [s.schedule_job("nightly", "0 2 * * *", lambda k=k: ran.append(k),
                               exclusive=True) for s, k in ((a, "a"), (b, "b"))]
        for s in (a, b):
            s.clock.advance(hours=2)
            assert s.wait_until_idle(5)
        assert len(ran) == 1
        winner, loser = (jobs[0], jobs[1]) if ran == ["a"] else (jobs[1], jobs[0])
        winning_service = a if ran == ["a"] else b
        assert winner.run_count == 1 and winner.elsewhere_count == 0
        assert loser.run_count == 0 and loser.elsewhere_count == 1
        assert loser.failure_count == 0 and loser.skip_count == 0
        elsewhere = loser.last_invocation
        assert elsewhere is not None and elsewhere.elsewhere
        assert elsewhere.origin == winning_service.origin
        assert elsewhere.scheduled_for == datetime(2026, 1, 1, 2, tzinfo=UTC)
        for s in (a, b):  # the stored history has the fire once: the winner's run
            assert wait_for(lambda s=s: len(s.history("nightly")) > 0)  # once written
            [stored] = s.history("nightly")
            assert not stored.elsewhere and stored.origin == winning_service.origin
            assert stored.scheduled_for == elsewhere.scheduled_for
    finally:
        for s in (a, b):
            s.shutdown()


def test_non_exclusive_and_manual_runs_run_in_every_service(path: str) -> None:
    a, b = _services(path, "aaa", "bbb")
    try:
        ran: list[str] = []
        for s, k in ((a, "a"), (b, "b")):
            s.schedule_job("everywhere", "0 2 * * *", lambda k=k: ran.append(k))
            s.schedule_job("once", "0 2 * * *", lambda k=k: ran.append(k.upper()),
                           exclusive=True)
        for s in (a, b):
            s.clock.advance(hours=2)
            s.wait_until_idle(5)
        assert sorted(k for k in ran if k.islower()) == ["a", "b"]
        assert sum(k.isupper() for k in ran) == 1
        ran.clear()
        for s in (a, b):  # a click always runs here
            for name in ("everywhere", "once"):
                job = s.get_job(name)
                assert job is not None
                assert job.invoke_now().result(5).elsewhere is False
        assert sorted(ran) == ["A", "B", "a", "b"]
        def origins() -> set[str | None]:
            return {r.origin for r in a.history("once") if r.trigger == "manual"}

        assert wait_for(lambda: origins() == {a.origin, b.origin})  # b's, once written
    finally:
        for s in (a, b):
            s.shutdown()


def test_when_the_store_is_locked_the_fire_runs_here_without_a_claim_and_says_so(
    path: str
) -> None:
    [service] = _services(path, "aaa", store_timeout=0.1)
    other = sqlite3.connect(path, isolation_level=None)
    try:
        job = service.schedule_job("nightly", "0 2 * * *", lambda: print("ran"),
                                   exclusive=True)
        other.execute("BEGIN IMMEDIATE")  # another process in a long write
        service.clock.advance(hours=2)
        assert service.wait_until_idle(5)
        run = job.last_invocation
        assert run is not None and run.success and not run.elsewhere
        assert run.output.startswith("[mashroom-jobs] store unavailable, ran without claim: ")
        assert run.output.endswith("ran\n")
        assert service.history("nightly") == [run._replace(origin=service.origin)]
        other.execute("ROLLBACK")
    finally:
        other.close()
        service.shutdown()
    reopened = SQLiteStore(path)
    assert reopened.history("nightly")[0].output == run.output
    reopened.close()


def test_a_new_service_on_the_store_shows_the_runs_of_the_last_one(path: str) -> None:
    [first] = _services(path, "aaa")
    job = first.schedule_job("report", "@daily", lambda: 1 / 0)
    job.invoke_now().result(5)
    first.shutdown()
    [second] = _services(path, "bbb")
    try:
        [run] = second.history("report")
        assert run.error_message == "ZeroDivisionError: division by zero"
        assert run.origin == first.origin != second.origin
        assert second.history("report", since=T0 + timedelta(seconds=1)) == []
    finally:
        second.shutdown()


def test_the_service_closes_its_store_at_shutdown_and_lists_its_thread(path: str) -> None:
    [service] = _services(path, "aaa", store_retention_runs=7, store_retention_days=2.5)
    assert service.store_path == path
    assert service.origin == make_origin("aaa")
    thread = next(t for t in service.threads() if t.name == "mashroom-jobs-store")
    service.store_retention_runs = 9
    service.shutdown()
    assert not thread.is_alive()


def test_bad_retention_and_timeout_settings_are_trait_errors() -> None:
    with pytest.raises(TraitError, match="store_retention_runs must be at least 1"):
        BackgroundJobService(store_retention_runs=0)
    with pytest.raises(TraitError, match="store_retention_days must be a number of days > 0"):
        BackgroundJobService(store_retention_days=0)
    with pytest.raises(TraitError, match="store_timeout must be a number of seconds"):
        BackgroundJobService(store_timeout=-1)
