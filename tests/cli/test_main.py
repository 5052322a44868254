"""The `activity-feed` console script, run for real as a subprocess."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import httpx
import pytest

from activity_feed.store.engine import create_reader_engine
from activity_feed.store.migrate import upgrade
from tests.support.server import free_port

SCRIPT = Path(sys.executable).with_name("activity-feed")
COMMAND_TIMEOUT_SECONDS = 30
START_TIMEOUT_SECONDS = 20
STOP_TIMEOUT_SECONDS = 10


def clean_env(**extra: str) -> dict[str, str]:
    """The current environment without any ACTIVITY_FEED_* setting, plus `extra`."""
    env = {name: value for name, value in os.environ.items() if not name.startswith("ACTIVITY_FEED_")}
    env.update(extra)
    return env


def run_cli(
    args: Sequence[str], cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(SCRIPT), *args],
        cwd=cwd,
        env=env if env is not None else clean_env(),
        capture_output=True,
        text=True,
        timeout=COMMAND_TIMEOUT_SECONDS,
        check=False,
    )


def tables(db: Path) -> dict[str, str]:
    with sqlite3.connect(db) as conn:
        rows = conn.execute("SELECT name, sql FROM sqlite_master WHERE type = 'table'").fetchall()
    return dict(rows)


def wait_until_healthy(url: str, process: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while True:
        assert process.poll() is None, f"serve exited early with {process.returncode}"
        assert time.monotonic() < deadline, f"serve did not answer /health within {START_TIMEOUT_SECONDS} s"
        try:
            if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.05)


def test_help_lists_the_commands(tmp_path: Path) -> None:
    result = run_cli(["--help"], tmp_path)

    assert result.returncode == 0
    assert "serve" in result.stdout
    assert "db" in result.stdout


def test_serve_help_documents_its_flags(tmp_path: Path) -> None:
    result = run_cli(["serve", "--help"], tmp_path)

    assert result.returncode == 0
    for flag in ("--host", "--port", "--database-url"):
        assert flag in result.stdout


def test_db_upgrade_creates_the_schema_and_is_safe_to_repeat(tmp_path: Path) -> None:
    db = tmp_path / "x.db"

    first = run_cli(["db", "upgrade", "--database-url", f"sqlite:///{db}"], tmp_path)
    schema = tables(db)
    second = run_cli(["db", "upgrade", "--database-url", f"sqlite:///{db}"], tmp_path)

    assert first.returncode == 0, first.stderr
    assert second.returncode == 0, second.stderr
    assert "activity_events" in schema
    assert tables(db) == schema
    with sqlite3.connect(db) as conn:
        assert len(conn.execute("SELECT * FROM alembic_version").fetchall()) == 1
        assert conn.execute("SELECT count(*) FROM activity_events").fetchone() == (0,)


async def _migrate_to(url: str, revision: str) -> None:
    engine = create_reader_engine(url)
    try:
        await upgrade(engine, revision)
    finally:
        await engine.dispose()


def test_db_upgrade_says_once_when_sqlite_copies_the_table(tmp_path: Path) -> None:
    db = tmp_path / "x.db"
    asyncio.run(_migrate_to(f"sqlite:///{db}", "0002"))
    with sqlite3.connect(db) as conn:
        conn.execute(
            "INSERT INTO activity_events (seq, id, timestamp, event_type, status, data, updated_at, "
            "change_seq) VALUES (1, '0f8fad5bd9cb469fa16570867728950e', '2026-12-01 09:00:00', "
            "'tool_call', 'success', '{}', '2026-12-01 09:00:00', 1)"
        )

    result = run_cli(["db", "upgrade", "--database-url", f"sqlite:///{db}"], tmp_path)

    assert result.returncode == 0, result.stderr
    # Revisions 0003 and 0004 each copy the table: one line says so for both.
    [copies] = [line for line in result.stderr.splitlines() if "SQLite copies" in line]
    assert copies == (
        "activity-feed: upgrading activity_events (two checks rewritten, session_id added): SQLite copies "
        "the table of 1 event twice, about half a minute per million events each time"
    )
    again = run_cli(["db", "upgrade", "--database-url", f"sqlite:///{db}"], tmp_path)
    assert "SQLite copies" not in again.stderr


def test_db_upgrade_of_a_new_database_copies_nothing_and_says_nothing_of_it(tmp_path: Path) -> None:
    result = run_cli(["db", "upgrade", "--database-url", f"sqlite:///{tmp_path / 'new.db'}"], tmp_path)

    assert result.returncode == 0, result.stderr
    assert "SQLite copies" not in result.stderr


@pytest.mark.parametrize(
    "args",
    [
        ["db", "upgrade", "--database-url", "postgresql://postgres@127.0.0.1:1/x"],
        ["db", "upgrade", "--database-url", "mysql://user@127.0.0.1/x"],
        ["serve", "--port", "1", "--database-url", "mysql://user@127.0.0.1/x"],
        ["serve", "--port", "70000"],
    ],
    ids=["unreachable-postgres", "unsupported-db", "serve-unsupported-db", "invalid-port"],
)
def test_errors_are_one_line_without_a_traceback(tmp_path: Path, args: list[str]) -> None:
    result = run_cli(args, tmp_path)

    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert result.stderr.startswith("activity-feed:")


def test_serve_on_a_port_in_use_says_so_in_one_line_and_exits_1(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]

        result = run_cli(["serve", "--port", str(port)], tmp_path)

    assert result.returncode == 1
    assert result.stderr == (
        f"activity-feed: cannot listen on 127.0.0.1:{port}: address already in use; "
        "choose another port with --port\n"
    )
    assert not (tmp_path / "activity_feed.db").exists()  # refused before the database was touched


def test_unsupported_database_error_says_what_to_use(tmp_path: Path) -> None:
    result = run_cli(["db", "upgrade", "--database-url", "mysql://user@127.0.0.1/x"], tmp_path)

    assert "mysql" in result.stderr
    assert "sqlite" in result.stderr
    assert "postgresql" in result.stderr


@pytest.mark.parametrize(
    ("variables", "setting", "token"),
    [
        ({"ACTIVITY_FEED_TOKEN": "tökén"}, "token", "tökén"),
        ({"ACTIVITY_FEED_TOKEN": "good", "ACTIVITY_FEED_READ_TOKEN": "r\x07ad"}, "read_token", "r\x07ad"),
        ({"ACTIVITY_FEED_TOKEN": "two words"}, "token", "two words"),
    ],
    ids=["non-ascii", "control-character", "space"],
)
def test_serve_refuses_a_token_that_cannot_go_in_a_header(
    tmp_path: Path, variables: dict[str, str], setting: str, token: str
) -> None:
    result = run_cli(["serve", "--port", str(free_port())], tmp_path, clean_env(**variables))

    assert result.returncode == 2, result.stderr
    assert result.stderr.startswith(f"activity-feed: invalid setting {setting}: ")
    assert "cannot be sent in an HTTP header" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert token not in result.stderr
    assert not (tmp_path / "activity_feed.db").exists()  # refused before touching the database


@pytest.mark.parametrize(
    ("variables", "line"),
    [
        (
            {"ACTIVITY_FEED_READ_TOKEN": "abc"},
            "activity-feed: invalid setting read_token: ACTIVITY_FEED_READ_TOKEN is set without "
            "ACTIVITY_FEED_TOKEN (the write token), which would leave writes open: set "
            "ACTIVITY_FEED_TOKEN too",
        ),
        (
            {"ACTIVITY_FEED_ALLOWED_HOSTS": "[bad json"},
            "activity-feed: invalid setting allowed_hosts: not a valid JSON list (Expecting value: line 1 "
            "column 2 (char 1)): write it comma-separated (feed.example,*.lan.example) or as a JSON list of "
            'strings (["feed.example", "*.lan.example"])',
        ),
        (
            {"ACTIVITY_FEED_ALLOWED_ORIGINS": '["https://a.example", 1]'},
            "activity-feed: invalid setting allowed_origins: not a JSON list of strings: write it "
            "comma-separated (https://a.example,https://b.example) or as a JSON list of strings "
            '(["https://a.example", "https://b.example"])',
        ),
    ],
    ids=["read-token-alone", "hosts-bad-json", "origins-not-strings"],
)
def test_serve_names_the_setting_and_says_what_it_takes(
    tmp_path: Path, variables: dict[str, str], line: str
) -> None:
    result = run_cli(["serve", "--port", str(free_port())], tmp_path, clean_env(**variables))

    assert result.returncode == 2, result.stderr
    assert result.stderr == line + "\n"
    assert not (tmp_path / "activity_feed.db").exists()  # refused before touching the database


def test_database_url_comes_from_the_environment(tmp_path: Path) -> None:
    env_db = tmp_path / "env.db"

    result = run_cli(["db", "upgrade"], tmp_path, clean_env(ACTIVITY_FEED_DATABASE_URL=f"sqlite:///{env_db}"))

    assert result.returncode == 0, result.stderr
    assert "activity_events" in tables(env_db)
    assert not (tmp_path / "activity_feed.db").exists()


def test_database_url_flag_overrides_the_environment(tmp_path: Path) -> None:
    env_db, flag_db = tmp_path / "env.db", tmp_path / "flag.db"
    env = clean_env(ACTIVITY_FEED_DATABASE_URL=f"sqlite:///{env_db}")

    result = run_cli(["db", "upgrade", "--database-url", f"sqlite:///{flag_db}"], tmp_path, env)

    assert result.returncode == 0, result.stderr
    assert "activity_events" in tables(flag_db)
    assert not env_db.exists()


def test_default_database_is_a_file_in_the_working_directory(tmp_path: Path) -> None:
    result = run_cli(["db", "upgrade"], tmp_path)

    assert result.returncode == 0, result.stderr
    assert "activity_events" in tables(tmp_path / "activity_feed.db")


@pytest.mark.parametrize(
    ("stop_signal", "clean_codes"),
    [(signal.SIGINT, {0, 130}), (signal.SIGTERM, {0, -signal.SIGTERM})],
    ids=["SIGINT", "SIGTERM"],
)
def test_serve_answers_then_stops_cleanly_on_a_signal(
    tmp_path: Path, stop_signal: signal.Signals, clean_codes: set[int]
) -> None:
    db = tmp_path / "y.db"
    port = free_port()
    with (tmp_path / "stderr.txt").open("w+") as stderr:
        process = subprocess.Popen(
            [str(SCRIPT), "serve", "--port", str(port), "--database-url", f"sqlite:///{db}"],
            cwd=tmp_path,
            env=clean_env(),
            stdout=subprocess.DEVNULL,
            stderr=stderr,
            text=True,
        )
        try:
            url = f"http://127.0.0.1:{port}"
            wait_until_healthy(url, process)
            created = httpx.post(
                f"{url}/activities/log", json={"event_type": "system_event", "tool_name": "cli"}, timeout=5
            )
            assert created.status_code == 201, created.text

            process.send_signal(stop_signal)
            returncode = process.wait(timeout=STOP_TIMEOUT_SECONDS)
        finally:
            if process.poll() is None:
                process.kill()
                process.wait(timeout=STOP_TIMEOUT_SECONDS)
        stderr.seek(0)
        log = stderr.read()

    assert returncode in clean_codes, log
    assert "Traceback" not in log
    # SQLite removes the write-ahead log when the last connection closes: the store was closed.
    assert not db.with_name("y.db-wal").exists()
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT tool_name FROM activity_events").fetchall() == [("cli",)]
