"""`activity-feed export`, the real console script in a subprocess, against a real server (`live_server`)
or straight from a database: every event once, in order, in bounded memory; filters; refusals."""

from __future__ import annotations

import asyncio
import csv
import os
import sqlite3
import stat
import subprocess
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from activity_feed.cli.main import main
from activity_feed.schemas import ActivityCreate, EventStatus, EventType
from activity_feed.settings import Settings
from activity_feed.store import ActivityStore
from activity_feed.store.engine import create_reader_engine
from activity_feed.store.migrate import known_revisions, upgrade
from tests.cli.test_main import COMMAND_TIMEOUT_SECONDS, SCRIPT, clean_env, run_cli
from tests.support.events import TOOLS, fill_sqlite, migrate
from tests.support.server import LiveServer, free_port

LARGE = 100_000
# What the export of LARGE events may add to the command's peak RSS over an export of a few thousand:
# their JSON lines alone are over 30 MB, as Python objects several times that.
BOUNDED_GROWTH_MB = 15
# The command's peak RSS target, whatever the export (bench/export.py measures it on 1,000,000 events).
TARGET_RSS_MB = 150


@dataclass(frozen=True)
class Run:
    returncode: int
    stdout: str
    stderr: str
    peak_rss_mb: float


def peak_rss_mb(pid: int) -> float | None:
    """The process's peak RSS so far (VmHWM), or None once it has exited."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    found = [line.split()[1] for line in status.splitlines() if line.startswith("VmHWM:")]
    return int(found[0]) / 1024 if found else None


def run_measured(args: Sequence[str], cwd: Path, env: dict[str, str] | None = None) -> Run:
    """Run the command to its end, reading its peak RSS as it runs. Read from /proc: the kernel's
    `ru_maxrss` of a child also counts the memory of this process, which the child held until its exec."""
    out, err = cwd / "command.out", cwd / "command.err"
    peak = 0.0
    with out.open("wb") as stdout, err.open("wb") as stderr:
        process = subprocess.Popen(
            [str(SCRIPT), *args], cwd=cwd, env=env or clean_env(), stdout=stdout, stderr=stderr
        )
        try:
            deadline = time.monotonic() + COMMAND_TIMEOUT_SECONDS
            while process.poll() is None:
                peak = max(peak, peak_rss_mb(process.pid) or 0.0)
                assert time.monotonic() < deadline, (
                    f"{args} did not finish within {COMMAND_TIMEOUT_SECONDS} s"
                )
                time.sleep(0.01)
        finally:
            process.kill()
            process.wait()
    return Run(process.returncode, out.read_text(), err.read_text(), peak)


def lines(path: Path) -> list[dict[str, Any]]:
    return [orjson.loads(line) for line in path.read_bytes().splitlines()]


def sqlite_settings(path: Path, **fields: Any) -> Settings:
    return Settings(database_url=f"sqlite:///{path}", broadcast_url="memory://", **fields)


def test_export_of_100000_events_writes_each_once_in_order_in_bounded_memory(
    live_server: Callable[..., LiveServer], tmp_path: Path
) -> None:
    database = tmp_path / "feed.db"
    fill_sqlite(database, LARGE)
    server = live_server(sqlite_settings(database))
    with sqlite3.connect(database) as conn:
        stored = {uuid_hex for (uuid_hex,) in conn.execute("SELECT id FROM activity_events")}
    conn.close()

    jsonl = tmp_path / "all.jsonl"
    whole = run_measured(["export", "--feed-url", server.url, "-o", str(jsonl)], tmp_path)

    assert whole.returncode == 0, whole.stderr
    assert whole.stderr.startswith(f"activity-feed: exported {LARGE} events to {jsonl} (")
    events = lines(jsonl)
    assert len(events) == LARGE
    assert {event["id"].replace("-", "") for event in events} == stored
    assert [event["data"]["n"] for event in events] == list(range(LARGE))  # oldest first
    # Each line is the event as the API shows it, field for field.
    newest = httpx.get(f"{server.url}/activities/recent", params={"limit": 500}, timeout=10).json()
    assert events[-500:] == newest[::-1]

    table = tmp_path / "all.csv"
    as_csv = run_measured(["export", "--feed-url", server.url, "--format", "csv", "-o", str(table)], tmp_path)

    assert as_csv.returncode == 0, as_csv.stderr
    with table.open(newline="", encoding="utf-8") as readable:
        rows = list(csv.DictReader(readable))
    assert len(rows) == LARGE
    assert [row["id"] for row in rows] == [event["id"] for event in events]
    assert orjson.loads(rows[7]["data"]) == events[7]["data"] == {"n": 7, "note": 'quote " and \\ and é'}
    assert rows[1]["error_message"] == ""
    assert rows[0]["error_message"] == "failed"
    assert rows[1]["duration_ms"] == "1.0"

    # A few thousand of them, through the same path: the baseline of the command's own memory.
    few = tmp_path / "few.jsonl"
    filtered = run_measured(
        [
            "export",
            "--feed-url",
            server.url,
            "--tool",
            "search_properties",
            "--status",
            "error",
            "-o",
            str(few),
        ],
        tmp_path,
    )

    assert filtered.returncode == 0, filtered.stderr
    chosen = lines(few)
    assert [event["data"]["n"] for event in chosen] == list(range(0, LARGE, 20))  # n % 4 == 0, n % 10 == 0
    for run in (whole, as_csv):
        assert run.peak_rss_mb < filtered.peak_rss_mb + BOUNDED_GROWTH_MB, (run, filtered)


def test_large_events_make_smaller_pages_not_more_memory(tmp_path: Path) -> None:
    database = tmp_path / "large.db"
    fill_sqlite(database, 3000, padding=60_000)  # 180 MB: a page of 2,000 such events would be 120 MB

    result = run_measured(
        ["export", "--database-url", f"sqlite:///{database}", "-o", "large.jsonl"], tmp_path
    )

    assert result.returncode == 0, result.stderr
    assert result.stderr.startswith("activity-feed: exported 3000 events to large.jsonl (")
    assert result.peak_rss_mb < TARGET_RSS_MB, result


def test_filters_and_since_choose_the_events(live_server: Callable[..., LiveServer], tmp_path: Path) -> None:
    server = live_server(sqlite_settings(tmp_path / "feed.db"))
    now = datetime.now(UTC)
    items = [
        {
            "tool_name": "old",
            "event_type": "tool_call",
            "status": "success",
            "timestamp": now - timedelta(hours=3),
        },
        {
            "tool_name": "a",
            "event_type": "tool_call",
            "status": "error",
            "user_source": "ann",
            "session_id": "s1",
        },
        {"tool_name": "a", "event_type": "api_request", "status": "success", "user_source": "bob"},
        {
            "tool_name": "b",
            "event_type": "tool_call",
            "status": "pending",
            "user_source": "ann",
            "session_id": "s1",
        },
    ]
    body = {"events": [{**item, "timestamp": (item.get("timestamp") or now).isoformat()} for item in items]}
    assert httpx.post(f"{server.url}/activities/batch", json=body, timeout=10).is_success

    def tools(*flags: str) -> list[str]:
        result = run_cli(["export", "--feed-url", server.url, *flags], tmp_path)
        assert result.returncode == 0, result.stderr
        return [orjson.loads(line)["tool_name"] for line in result.stdout.splitlines()]

    every_flag = ["--since", "1h", "--source", "ann", "--type", "tool_call", "--session", "s1", "--tool", "a"]
    assert tools(*every_flag, "--status", "error") == ["a"]
    assert tools("--since", (now - timedelta(hours=4)).isoformat(), "--status", "success") == ["old", "a"]


async def _store_events(url: str, count: int) -> None:
    """`count` events, ten at each timestamp, so that pages end between equal timestamps."""
    store = ActivityStore(url)
    await store.start()
    try:
        start = datetime.now(UTC) - timedelta(hours=1)
        events = [
            ActivityCreate(
                event_type=EventType.TOOL_CALL,
                status=EventStatus.ERROR if n % 3 == 0 else EventStatus.SUCCESS,
                tool_name=TOOLS[n % len(TOOLS)],
                timestamp=start + timedelta(seconds=n // 10),
                data={"n": n, "nested": {"list": [1, 2.5, None, "x"]}},
                duration_ms=n * 1.5 if n % 2 else None,
            )
            for n in range(count)
        ]
        for first in range(0, count, 1000):
            await store.apply_batch(creates=events[first : first + 1000], updates=[])
    finally:
        await store.close()


def test_database_url_exports_what_the_api_exports(
    live_server: Callable[..., LiveServer], database_url: str, tmp_path: Path
) -> None:
    asyncio.run(_store_events(database_url, 2500))  # more than a page
    server = live_server(Settings(database_url=database_url, broadcast_url="memory://"))

    direct = run_cli(["export", "--database-url", database_url], tmp_path)
    served = run_cli(["export", "--feed-url", server.url], tmp_path)

    assert direct.returncode == 0, direct.stderr
    assert direct.stderr.startswith("activity-feed: exported 2500 events to standard output (")
    events = [orjson.loads(line) for line in direct.stdout.splitlines()]
    assert events == [orjson.loads(line) for line in served.stdout.splitlines()]
    assert sorted(event["data"]["n"] for event in events) == list(range(2500))
    assert [event["timestamp"] for event in events] == sorted(event["timestamp"] for event in events)
    # The same command in this process, for a filter on the database's path.
    table = tmp_path / "errors.csv"
    assert main(["export", "--database-url", database_url, "--status", "error", "-o", str(table)]) == 0
    assert len(lines(table)) == len(range(0, 2500, 3))


def _revision(database: Path) -> str:
    with sqlite3.connect(database) as conn:
        (version,) = conn.execute("SELECT version_num FROM alembic_version").fetchone()
    conn.close()
    return str(version)


def test_database_url_refuses_a_database_at_another_schema_and_changes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    older = tmp_path / "older.db"

    async def upgrade_to_0003() -> None:
        engine = create_reader_engine(f"sqlite:///{older}")
        try:
            await upgrade(engine, "0003")
        finally:
            await engine.dispose()

    asyncio.run(upgrade_to_0003())
    newer = tmp_path / "newer.db"
    migrate(f"sqlite:///{newer}")
    with sqlite3.connect(newer) as conn:
        conn.execute("UPDATE alembic_version SET version_num = '9999'")
    conn.close()
    empty = tmp_path / "empty.db"
    sqlite3.connect(empty).close()

    older_url = f"sqlite:///{older}"
    result = run_cli(["export", "--database-url", older_url, "-o", "out.jsonl"], tmp_path)

    assert result.returncode == 1, result.stderr
    assert result.stderr == (
        f"activity-feed: cannot export the database at sqlite+aiosqlite:///{older}: its schema is at "
        f"revision 0003, older than this activity-feed reads ({known_revisions()[0]}): upgrade it first with "
        "`activity-feed db upgrade`, or let the service that uses it do so\n"
    )
    for database, says in (
        (newer, "its schema is at revision 9999, which this activity-feed does not know"),
        (empty, "it holds no Activity Feed schema"),
        (tmp_path / "missing.db", f"no database at sqlite+aiosqlite:///{tmp_path / 'missing.db'}"),
    ):
        assert main(["export", "--database-url", f"sqlite:///{database}", "-o", str(tmp_path / "out")]) == 1
        error = capsys.readouterr().err
        assert says in error
        assert error.count("\n") == 1
    assert not (tmp_path / "out.jsonl").exists()
    assert not (tmp_path / "out").exists()
    assert _revision(older) == "0003"
    assert _revision(newer) == "9999"
    assert not (tmp_path / "missing.db").exists()


def test_a_refused_token_or_an_absent_feed_exits_1_and_leaves_no_file(
    live_server: Callable[..., LiveServer], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    database = tmp_path / "feed.db"
    fill_sqlite(database, 10)
    server = live_server(sqlite_settings(database, token="write-token", read_token="read-token"))
    earlier = tmp_path / "earlier.jsonl"
    earlier.write_text("an earlier export\n")
    absent = f"http://127.0.0.1:{free_port()}"

    refused = run_cli(["export", "--feed-url", server.url, "--token", "wrong", "-o", str(earlier)], tmp_path)

    assert refused.returncode == 1
    assert refused.stderr.startswith(
        f"activity-feed: the feed at {server.url} answered 401: the token was refused"
    )
    assert refused.stderr.count("\n") == 1
    assert earlier.read_text() == "an earlier export\n"
    # An absent feed, in this process (the same function decides).
    assert main(["export", "--feed-url", absent, "-o", str(earlier)]) == 1
    assert capsys.readouterr().err.startswith(f"activity-feed: cannot reach the feed at {absent}")
    assert earlier.read_text() == "an earlier export\n"
    assert [path.name for path in tmp_path.iterdir() if path.name.startswith(".")] == []

    # The read token may export; and a pipe given as the output is written, not replaced by a file.
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    received: list[bytes] = []
    reader = threading.Thread(target=lambda: received.append(fifo.read_bytes()), daemon=True)
    reader.start()
    env = clean_env(ACTIVITY_FEED_URL=server.url, ACTIVITY_FEED_TOKEN="read-token")
    allowed = run_cli(["export", "-o", str(fifo)], tmp_path, env)
    reader.join(timeout=COMMAND_TIMEOUT_SECONDS)

    assert allowed.returncode == 0, allowed.stderr
    assert len(received[0].splitlines()) == 10
    assert stat.S_ISFIFO(fifo.stat().st_mode)


def test_bad_arguments_exit_2_with_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    result = run_cli(["export", "--since", "yesterday"], tmp_path)

    assert result.returncode == 2
    assert result.stderr.startswith("activity-feed: --since: not a time or a duration: 'yesterday'")
    assert result.stderr.count("\n") == 1
    assert result.stdout == ""
    # The others in this process: the same function decides.
    for flags, says in (
        (["--type", "bogus"], "argument --type: invalid choice: 'bogus'"),
        (["--format", "xml"], "argument --format: invalid choice: 'xml'"),
        (["--tool", "x" * 201], "activity-feed: --tool: at most 200 characters"),
        (
            ["--database-url", "sqlite:///f.db", "--token", "t"],
            "activity-feed: --database-url reads the database",
        ),
        (
            ["--database-url", "mysql://db/feed"],
            "activity-feed: --database-url: unsupported database 'mysql'",
        ),
    ):
        try:
            status = main(["export", *flags])
        except SystemExit as exc:  # argparse's own refusals
            status = exc.code
        assert status == 2, flags
        assert says in capsys.readouterr().err


def test_an_output_that_fails_or_closes_ends_the_export_in_one_line(
    live_server: Callable[..., LiveServer], tmp_path: Path
) -> None:
    database = tmp_path / "feed.db"
    fill_sqlite(database, 20_000)
    server = live_server(sqlite_settings(database))
    export = [str(SCRIPT), "export", "--feed-url", server.url]

    # A reader that stops after one line (`| head -1`): exit 0, nothing on stderr.
    with subprocess.Popen(
        [*export], cwd=tmp_path, env=clean_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE
    ) as process:
        assert process.stdout is not None
        assert process.stdout.readline().startswith(b'{"id":')
        process.stdout.close()
        _, stderr = process.communicate(timeout=COMMAND_TIMEOUT_SECONDS)
    assert process.returncode == 0, stderr
    assert stderr == b""

    # A file that cannot grow past 4 KiB (RLIMIT_FSIZE, as `ulimit -f 4` sets it): one line, exit 1,
    # and neither the file nor its temporary twin left behind.
    (tmp_path / "out").mkdir()
    full = subprocess.run(
        ["bash", "-c", 'ulimit -f 4 && exec "$@"', "bash", *export, "-o", "out/events.jsonl"],
        cwd=tmp_path,
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=COMMAND_TIMEOUT_SECONDS,
        check=False,
    )
    assert full.returncode == 1, full.stderr
    assert full.stderr == "activity-feed: cannot write to out/events.jsonl: File too large\n"
    assert list((tmp_path / "out").iterdir()) == []
