"""`/health` reports whether the database takes writes, through a real server: 503 with the reason while
another process holds SQLite's write lock, while PostgreSQL is read-only, while the disk is full; 200
again once writes work, without a write having to come first."""

from __future__ import annotations

import errno
import secrets
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from activity_feed.settings import Settings
from tests.conftest import POSTGRES_URL
from tests.support.server import LiveServer
from tests.support.unwritable import held_write_lock, own_postgres_database

# A probe waits for a lock as long as a write would (SQLite's busy timeout, 5 s): /health changes its
# answer within that and its own freshness (1 s), and this leaves room for a loaded machine.
CHANGE_SECONDS = 20.0
# /health never waits for a probe stuck on a lock; this bound is far above what it does wait.
QUICK_SECONDS = 2.0
HTTP_TIMEOUT_SECONDS = 30.0


def event(**fields: Any) -> dict[str, Any]:
    return {"event_type": "tool_call", "tool_name": "write-health", **fields}


def wait_for_health(
    http: httpx.Client, ready: Callable[[httpx.Response], bool], what: str
) -> tuple[httpx.Response, float]:
    """Poll /health until `ready`; also return the slowest answer's time."""
    deadline = time.monotonic() + CHANGE_SECONDS
    slowest = 0.0
    while True:
        started = time.monotonic()
        response = http.get("/health")
        slowest = max(slowest, time.monotonic() - started)
        if ready(response):
            return response, slowest
        assert time.monotonic() < deadline, f"/health never {what}: {response.status_code} {response.text}"
        time.sleep(0.05)


def writes_failing(reason: str) -> Callable[[httpx.Response], bool]:
    return lambda response: response.status_code == 503 and reason in response.json().get("writes", "")


def healthy(response: httpx.Response) -> bool:
    return response.status_code == 200


def test_health_reports_a_write_lock_another_process_holds(
    live_server: Callable[..., LiveServer], tmp_path: Path
) -> None:
    database = tmp_path / "feed.db"
    server = live_server(Settings(database_url=f"sqlite:///{database}", broadcast_url="memory://"))
    with httpx.Client(base_url=server.url, timeout=HTTP_TIMEOUT_SECONDS) as http:
        before = http.get("/health")
        assert before.status_code == 200
        assert before.json()["writes"] == "ok"

        with held_write_lock(database):
            # No write is needed: the probe finds the lock.
            failing, slowest = wait_for_health(http, writes_failing("database is locked"), "said locked")
            write = http.post("/activities/log", json=event())

        assert failing.json() == {
            "status": "unavailable",
            "database": "ok",
            "writes": "failing: database is locked",
            "bus": "ok",
            "stream_clients": 0,
        }
        assert failing.headers["retry-after"] == "1"
        assert slowest < QUICK_SECONDS, f"/health took {slowest:.2f} s while a probe waited for the lock"
        assert write.status_code == 503, write.text
        assert "database is locked" in write.json()["detail"]

        # The lock is gone: 200 again, with no write to tell it first.
        recovered, _ = wait_for_health(http, healthy, "recovered")
        assert recovered.json()["writes"] == "ok"
        assert http.post("/activities/log", json=event()).status_code == 201


@pytest.mark.usefixtures("postgres_database")  # skips, or fails under CI, without PostgreSQL
def test_health_reports_a_read_only_postgresql_database(live_server: Callable[..., LiveServer]) -> None:
    with own_postgres_database(POSTGRES_URL) as database:
        server = live_server(Settings(database_url=database.url, broadcast_url="memory://"))
        with httpx.Client(base_url=server.url, timeout=HTTP_TIMEOUT_SECONDS) as http:
            assert http.post("/activities/log", json=event()).status_code == 201

            database.set_read_only(True)
            failing, _ = wait_for_health(http, writes_failing("read-only transaction"), "said read-only")
            write = http.post("/activities/log", json=event())

            assert failing.json()["database"] == "ok"
            assert failing.json()["writes"] == "failing: cannot execute UPDATE in a read-only transaction"
            # A write the database refuses is a 503 to retry, not a 500.
            assert write.status_code == 503, write.text
            assert "read-only transaction" in write.json()["detail"]

            database.set_read_only(False)
            wait_for_health(http, healthy, "recovered")
            assert http.post("/activities/log", json=event()).status_code == 201
        server.stop()


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A directory on a filesystem of its own, 4 MB (tmpfs), which a test can fill."""
    mount_point = tmp_path / "disk"
    mount_point.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mount_point)],
        capture_output=True,
        text=True,
        timeout=10,
        check=False,
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a small filesystem here: {mounted.stderr.strip()}")
    try:
        yield mount_point
    finally:
        # Lazily: a file the server left open must not keep the mount.
        subprocess.run(["umount", "-l", str(mount_point)], capture_output=True, timeout=10, check=True)


def fill(directory: Path) -> Path:
    """Write a file in `directory` until its filesystem has no room left."""
    filler = directory / "filler"
    chunk = b"\0" * 4096
    with filler.open("wb", buffering=0) as out:
        try:
            while out.write(chunk):
                pass
        except OSError as exc:
            if exc.errno != errno.ENOSPC:
                raise
    return filler


def test_health_reports_a_full_disk_until_there_is_room_again(
    small_disk: Path, live_server: Callable[..., LiveServer]
) -> None:
    server = live_server(
        Settings(database_url=f"sqlite:///{small_disk / 'feed.db'}", broadcast_url="memory://")
    )
    # Each batch about 900 KB: larger than whatever room the write-ahead log already has.
    batch = {"events": [event(data={"blob": secrets.token_hex(30_000)}) for _ in range(15)]}
    with httpx.Client(base_url=server.url, timeout=HTTP_TIMEOUT_SECONDS) as http:
        filler = fill(small_disk)

        # Only a real write meets a full disk: /health reports what the writer met.
        deadline = time.monotonic() + CHANGE_SECONDS
        while True:
            write = http.post("/activities/batch", json=batch)
            health = http.get("/health")
            if write.status_code == 503 and writes_failing("database or disk is full")(health):
                break
            assert time.monotonic() < deadline, f"write {write.status_code}, /health {health.text}"
        assert "database or disk is full" in write.json()["detail"]
        assert health.json()["database"] == "ok"

        filler.unlink()
        # Room again: a probe commits a write of its own, so /health recovers with no client writing.
        wait_for_health(http, healthy, "recovered")
        assert http.post("/activities/batch", json=batch).status_code == 200
    server.stop()
