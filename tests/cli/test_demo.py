"""`activity-feed demo`, run for real: the service, the example MCP server over stdio, the example API."""

from __future__ import annotations

import json
import os
import queue
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine import make_url

from activity_feed.cli.demo_session import SECRET_API_KEY, SECRET_PASSWORD
from activity_feed.cli.main import main
from tests.support.server import free_port

SCRIPT = Path(sys.executable).with_name("activity-feed")
DEMO_TIMEOUT_SECONDS = 60
STOP_TIMEOUT_SECONDS = 15
TOOL_CALLS = 13  # the eleven of the story, the portfolio report, and the report cancelled midway
API_REQUESTS = 5
PROGRESS_NOTIFICATIONS = 6


def demo_env(**extra: str) -> dict[str, str]:
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("ACTIVITY_FEED_", "PROPERTY_"))
    }
    env.update(extra)
    return env


def stored_events(db: Path) -> list[dict[str, Any]]:
    with sqlite3.connect(db) as conn:
        conn.row_factory = sqlite3.Row
        rows = [dict(row) for row in conn.execute("SELECT * FROM activity_events")]
    conn.close()
    for row in rows:
        row["data"] = json.loads(row["data"])
    return rows


def demo_run(tmp_path: Path, *options: str) -> subprocess.CompletedProcess[str]:
    """`activity-feed demo --no-wait --pace 0 OPTIONS` to its end, in `tmp_path`."""
    return subprocess.run(
        [str(SCRIPT), "demo", "--no-wait", "--pace", "0", *options],
        cwd=tmp_path,
        env=demo_env(),
        capture_output=True,
        text=True,
        timeout=DEMO_TIMEOUT_SECONDS,
    )


def test_demo_plays_the_whole_session_into_the_feed(tmp_path: Path) -> None:
    db = tmp_path / "feed.db"
    done = demo_run(tmp_path, "--port", "0", "--database-url", f"sqlite:///{db}")
    assert done.returncode == 0, done.stderr
    assert "/activities/ws" in done.stdout
    assert "/docs" in done.stdout
    assert f"{TOOL_CALLS} tool calls (1 failed on purpose, 1 cancelled)" in done.stdout
    assert f"{PROGRESS_NOTIFICATIONS} progress notifications" in done.stdout

    events = stored_events(db)
    assert f"The feed holds {len(events)} events in 1 MCP session" in done.stdout
    # It stops at once, so it points at the database that keeps the events, not at a feed that is gone.
    assert "See them at" not in done.stdout
    assert f"its events stay in sqlite:///{db}" in done.stdout
    tool_calls = [event for event in events if event["event_type"] == "tool_call"]
    api_requests = [event for event in events if event["event_type"] == "api_request"]
    assert (len(tool_calls), len(api_requests)) == (TOOL_CALLS, API_REQUESTS)
    assert all(event["status"] in ("success", "error") for event in events)
    mcp_events = [event for event in events if event["event_type"] != "api_request"]
    asked = [event for event in mcp_events if event["event_type"] in ("tool_call", "mcp_request")]
    assert all(event["user_source"].startswith("activity-feed-demo ") for event in asked)
    assert len({event["session_id"] for event in mcp_events}) == 1
    assert mcp_events[0]["session_id"] is not None

    reads = [event for event in events if event["tool_name"] == "resources/read"]
    assert [(e["data"]["mcp"]["target"], e["status"]) for e in reads] == [
        ("property://102", "success"),
        ("property://999", "error"),
    ]
    assert reads[1]["data"]["mcp"]["error"]["code"] == -32602
    prompts = [event for event in events if event["tool_name"] == "prompts/get viewing_follow_up"]
    assert [event["status"] for event in prompts] == ["success"]
    reports = [event for event in tool_calls if event["tool_name"] == "portfolio_report"]
    assert [event["status"] for event in reports] == ["success", "error"]
    assert reports[1]["error_message"].startswith("cancelled")
    progress = [event for event in events if event["tool_name"] == "notifications/progress"]
    assert len(progress) >= PROGRESS_NOTIFICATIONS
    assert {event["data"]["mcp"]["direction"] for event in progress} == {"server_to_client"}

    failed = [event for event in tool_calls if event["status"] == "error"]
    assert [(event["tool_name"], event["data"]["arguments"]) for event in failed] == [
        ("get_property", {"property_id": 999}),
        ("portfolio_report", {}),  # cancelled midway
    ]
    assert "no property with id 999" in failed[0]["error_message"]
    slow = next(event for event in tool_calls if event["tool_name"] == "check_availability")
    assert slow["duration_ms"] >= 1000
    assert any(
        event["tool_name"] == "schedule_viewing" and event["status"] == "success" for event in tool_calls
    )
    secret = next(event for event in tool_calls if event["tool_name"] == "create_maintenance_request")
    assert "arguments.description" in secret["data"]["redacted"]
    stored = repr(events)
    assert SECRET_PASSWORD not in stored
    assert SECRET_API_KEY not in stored
    assert "GET /properties/{property_id}" in {event["tool_name"] for event in api_requests}


def test_demo_serves_until_interrupted(tmp_path: Path) -> None:
    process = subprocess.Popen(
        [str(SCRIPT), "demo", "--pace", "0", "--port", "0"],
        cwd=tmp_path,
        env=demo_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    lines: queue.Queue[str | None] = queue.Queue()

    def read() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            lines.put(line)
        lines.put(None)

    threading.Thread(target=read, daemon=True).start()
    try:
        while True:
            line = lines.get(timeout=DEMO_TIMEOUT_SECONDS)
            assert line is not None, "the demo exited before serving"
            if "press Ctrl-C" in line:
                break
        assert process.poll() is None  # still serving
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=STOP_TIMEOUT_SECONDS) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=STOP_TIMEOUT_SECONDS)
        if process.stdout is not None:
            process.stdout.close()


def test_demo_help_names_its_options(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["demo", "--help"])
    assert exit_info.value.code == 0
    usage = capsys.readouterr().out
    for option in ("--port", "--database-url", "--no-wait", "--pace"):
        assert option in usage
    with pytest.raises(SystemExit):
        main(["--help"])
    assert "demo" in capsys.readouterr().out


@pytest.mark.parametrize("pace", ["-1", "-0.5", "nan", "inf", "soon"])
def test_demo_refuses_a_pace_that_is_not_0_or_more_seconds(
    capsys: pytest.CaptureFixture[str], pace: str
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["demo", "--no-wait", "--pace", pace])

    assert exit_info.value.code == 2
    error = capsys.readouterr().err.splitlines()[-1]
    assert error == (
        f"activity-feed demo: error: argument --pace: expected a number of seconds, 0 or more, got {pace!r}"
    )


def test_demo_on_a_database_that_does_not_exist_says_so_in_one_line(
    tmp_path: Path, postgres_database: str
) -> None:
    missing = make_url(postgres_database).set(database=f"{make_url(postgres_database).database}_missing")
    url = missing.render_as_string(hide_password=False)

    done = demo_run(tmp_path, "--port", str(free_port()), "--database-url", url)

    assert done.returncode == 1
    assert done.stderr.startswith("activity-feed: cannot use the database at postgresql+asyncpg://")
    assert done.stderr.endswith(f'database "{missing.database}" does not exist\n')
    assert done.stderr.count("\n") == 1, done.stderr  # no traceback, and no word of the port
    assert done.stdout == ""


def test_demo_on_a_port_in_use_says_so_in_one_line(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]

        done = demo_run(tmp_path, "--port", str(port))

    assert done.returncode == 1
    assert done.stderr == (
        f"activity-feed: cannot listen on 127.0.0.1:{port}: address already in use; "
        "choose another port with --port\n"
    )
