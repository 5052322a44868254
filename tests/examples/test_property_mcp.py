"""The example MCP server as Claude Desktop runs it: a stdio subprocess, under the real MCP client,
reporting to a real feed service (or to one that is down, or hangs)."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio
import anyio.to_thread
import httpx
import pytest
from mcp import Client
from mcp.types import CallToolResult, TextContent

from activity_feed.settings import Settings
from tests.examples.conftest import (
    CLIENT_NAME,
    CLIENT_VERSION,
    PROMPT_SECONDS,
    settled,
    stdio_session,
    wait_for_events,
)
from tests.support.server import LiveServer, free_port

SECRET_PASSWORD = "Tulip-Lantern-88"
SECRET_KEY = "sk-live-9a8b7c6d5e4f3a2b1c0d9e8f"
SECRET_DESCRIPTION = f"No hot water. Lockbox password={SECRET_PASSWORD}; boiler portal api key {SECRET_KEY}"

# (tool, arguments, expected status): one of every tool, and a failure the assistant can read.
CALLS: list[tuple[str, dict[str, Any], str]] = [
    ("search_properties", {"city": "Leeds", "max_rent": 1000}, "success"),
    ("search_properties", {"min_bedrooms": 3}, "success"),
    ("get_property", {"property_id": 104}, "success"),
    ("get_property", {"property_id": 999}, "error"),
    ("list_tenants", {"property_id": 101}, "success"),
    ("list_maintenance_requests", {"status": "open"}, "success"),
    (
        "create_maintenance_request",
        {"property_id": 101, "description": "Tap drips", "priority": "low"},
        "success",
    ),
    ("create_maintenance_request", {"property_id": 101, "description": "x", "priority": "whenever"}, "error"),
    ("check_availability", {"property_id": 102, "day": "2031-06-02"}, "success"),
    (
        "schedule_viewing",
        {"property_id": 102, "visitor_name": "Ada", "when": "2031-06-02T10:00:00Z"},
        "success",
    ),
    (
        "schedule_viewing",
        {"property_id": 102, "visitor_name": "Ada", "when": "2001-01-01T10:00:00Z"},
        "error",
    ),
]


def text(result: CallToolResult) -> str:
    return " ".join(block.text for block in result.content if isinstance(block, TextContent))


async def timed_call(client: Client, name: str, arguments: dict[str, Any]) -> tuple[CallToolResult, float]:
    started = time.perf_counter()
    result = await client.call_tool(name, arguments)
    return result, time.perf_counter() - started


async def test_every_tool_call_is_recorded_with_status_duration_source_and_arguments(
    live_server: Callable[..., LiveServer], settings: Settings, db_path: Path
) -> None:
    feed = live_server(settings)
    async with stdio_session(feed.url, db_path) as client:
        results = [await client.call_tool(name, arguments) for name, arguments, _ in CALLS]
        events = await wait_for_events(feed.url, settled(len(CALLS)), event_type="tool_call")

    assert [result.is_error for result in results] == [status == "error" for _, _, status in CALLS]
    assert "no property with id 999" in text(results[3])
    assert len(events) == len(CALLS)
    in_call_order = sorted(events, key=lambda event: event["timestamp"])
    for event, (name, arguments, status) in zip(in_call_order, CALLS, strict=True):
        assert (event["tool_name"], event["status"], event["event_type"]) == (name, status, "tool_call")
        assert event["data"]["arguments"] == arguments
        assert event["user_source"] == f"{CLIENT_NAME} {CLIENT_VERSION}"
        assert event["duration_ms"] >= 0
        assert event["data"]["mcp"]["transport"] == "stdio"
        assert (event["error_message"] is not None) == (status == "error")
    unknown = next(event for event in events if event["data"]["arguments"] == {"property_id": 999})
    assert "no property with id 999" in unknown["error_message"]
    bad_priority = next(event for event in events if event["data"]["arguments"].get("priority") == "whenever")
    assert "priority" in bad_priority["error_message"]


def assert_no_secrets_stored(feed_url: str, tmp_path: Path) -> None:
    recent = httpx.get(f"{feed_url}/activities/recent", params={"limit": 500}).text
    assert "[REDACTED]" in recent
    event = httpx.get(
        f"{feed_url}/activities/recent", params={"tool_name": "create_maintenance_request"}
    ).json()[0]
    assert "arguments.description" in event["data"]["redacted"]
    assert event["data"]["arguments"]["description"].startswith("No hot water. Lockbox password=")

    with sqlite3.connect(tmp_path / "feed.db") as conn:
        rows = repr(conn.execute("SELECT * FROM activity_events").fetchall())
    conn.close()
    assert "Lockbox password=" in rows  # the events are there...
    raw = b"".join(path.read_bytes() for path in tmp_path.glob("feed.db*"))
    for secret in (SECRET_PASSWORD, SECRET_KEY):
        assert secret not in recent
        assert secret not in rows  # ...without the secrets, in the rows
        assert secret.encode() not in raw  # or anywhere in the file and its WAL


async def test_secrets_in_arguments_never_reach_the_database(
    live_server: Callable[..., LiveServer], settings: Settings, db_path: Path, tmp_path: Path
) -> None:
    feed = live_server(settings)
    async with stdio_session(feed.url, db_path) as client:
        created = await client.call_tool(
            "create_maintenance_request",
            {"property_id": 104, "description": SECRET_DESCRIPTION, "priority": "urgent"},
        )
        # The result echoes the description, so the preview must be redacted too.
        listed = await client.call_tool("list_maintenance_requests", {"property_id": 104})
        await wait_for_events(feed.url, settled(2))

    assert not created.is_error
    assert SECRET_KEY in text(created)  # the tool itself got the real text
    assert SECRET_KEY in text(listed)
    # Sync I/O from here on, off the event loop: the session is over.
    await anyio.to_thread.run_sync(assert_no_secrets_stored, feed.url, tmp_path)


async def test_tool_calls_stay_prompt_while_the_feed_is_down_and_events_arrive_when_it_is_back(
    start_on_port: Callable[[int], LiveServer], db_path: Path
) -> None:
    port = free_port()  # nothing listens here yet: every send is refused
    url = f"http://127.0.0.1:{port}"
    async with stdio_session(url, db_path) as client:
        for name, arguments, status in CALLS:
            result, elapsed = await timed_call(client, name, arguments)
            assert result.is_error == (status == "error")
            assert elapsed < PROMPT_SECONDS, f"{name} took {elapsed:.2f} s with the feed down"

        start_on_port(port)  # the feed comes back while the server process is still running
        events = await wait_for_events(url, settled(len(CALLS)), event_type="tool_call")
        result, elapsed = await timed_call(client, "get_property", {"property_id": 101})
        assert not result.is_error
        assert elapsed < PROMPT_SECONDS

    assert sorted(event["tool_name"] for event in events) == sorted(name for name, _, _ in CALLS)
    assert len({event["id"] for event in events}) == len(CALLS)  # retried batches created nothing twice


async def test_tool_calls_stay_prompt_while_the_feed_hangs(hanging_feed: str, db_path: Path) -> None:
    async with stdio_session(hanging_feed, db_path) as client:
        for name, arguments, status in CALLS:
            result, elapsed = await timed_call(client, name, arguments)
            assert result.is_error == (status == "error")
            assert elapsed < PROMPT_SECONDS, f"{name} took {elapsed:.2f} s with the feed hanging"


async def test_the_server_offers_resources_a_prompt_and_a_report_with_progress(db_path: Path) -> None:
    from mcp.shared.exceptions import MCPError

    from activity_feed.examples.property_data import PropertyData
    from activity_feed.examples.property_mcp.server import REPORT_CITIES, build_server

    server = build_server(PropertyData(db_path))
    progress: list[tuple[float, float | None, str | None]] = []

    async def on_progress(done: float, total: float | None, message: str | None) -> None:
        progress.append((done, total, message))

    async with Client(server) as client:
        home = await client.read_resource("property://102")
        assert '"address": "7 Cardigan Lane"' in getattr(home.contents[0], "text", "")
        summary = await client.read_resource("portfolio://summary")
        assert "Leeds: 3 properties" in getattr(summary.contents[0], "text", "")
        with pytest.raises(MCPError) as refused:
            await client.read_resource("property://999")
        assert refused.value.error.code == -32602
        assert refused.value.error.message.startswith("no property 999")
        prompt = await client.get_prompt("viewing_follow_up", {"property_id": "102", "visitor_name": "Ada"})
        assert "Ada" in getattr(prompt.messages[0].content, "text", "")
        report = await client.call_tool("portfolio_report", {}, progress_callback=on_progress)
    assert [city["city"] for city in (report.structured_content or {})["cities"]] == list(REPORT_CITIES)
    total = len(REPORT_CITIES)
    assert progress == [(float(n), float(total), f"counting {c}") for n, c in enumerate(REPORT_CITIES)] + [
        (float(total), float(total), "done")
    ]


async def test_a_slow_report_can_be_cancelled_midway(db_path: Path) -> None:
    from activity_feed.examples.property_data import PropertyData
    from activity_feed.examples.property_mcp.server import build_server

    server = build_server(PropertyData(db_path), report_step_delay=5.0)
    progress: list[float] = []

    async def on_progress(done: float, total: float | None, message: str | None) -> None:
        progress.append(done)

    async with Client(server) as client:
        with anyio.move_on_after(PROMPT_SECONDS) as scope:
            await client.call_tool("portfolio_report", {}, progress_callback=on_progress)
        assert scope.cancelled_caught
        # The connection is still usable after the cancellation.
        assert (await client.call_tool("get_property", {"property_id": 101})).is_error is False
    assert progress == [0.0]
