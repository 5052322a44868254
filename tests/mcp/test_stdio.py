"""The conversation of a server run over stdio as a subprocess, under the SDK's client, as the feed
stores it: transport `stdio`, one session per process, cancellations with the client's reason."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import pytest
from mcp import Client, StdioServerParameters
from mcp.shared.exceptions import MCPError
from mcp_types import Implementation

from tests.mcp.conftest import CLIENT_INFO, wait_for_events
from tests.support.server import LiveServer

ROOT = Path(__file__).resolve().parents[2]
CALL_TIMEOUT_SECONDS = 10.0


def stdio_client(feed_url: str, *args: str, mode: str = "legacy", name: str = CLIENT_INFO["name"]) -> Client:
    parameters = StdioServerParameters(
        command=sys.executable,
        args=["-m", "tests.mcp.stdio_server", *args],
        env={
            "ACTIVITY_FEED_URL": feed_url,
            "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(ROOT)]),
        },
        cwd=str(ROOT),
    )
    info = Implementation(name=name, version=CLIENT_INFO["version"])
    return Client(parameters, mode=mode, client_info=info, read_timeout_seconds=CALL_TIMEOUT_SECONDS)  # type: ignore[arg-type]


def settled(names: list[str]) -> Any:
    def check(found: list[dict[str, Any]]) -> bool:
        done = [e["tool_name"] for e in found if e["status"] != "pending"]
        return all(name in done for name in names)

    return check


@pytest.mark.parametrize("mode", ["legacy", "auto"])
async def test_a_stdio_session_is_recorded(sqlite_feed: LiveServer, mode: str) -> None:
    async with stdio_client(sqlite_feed.url, mode=mode) as client:
        await client.call_tool("search_properties", {"city": "Leeds"})
        await client.read_resource("props://portfolio")
        await client.get_prompt("summarise", {"city": "York"})
        result = await client.call_tool("get_property", {"property_id": 9})
        assert result.is_error is True
        expected = ["search_properties", "resources/read", "prompts/get summarise", "get_property"]
        found = await wait_for_events(sqlite_feed.url, settled(expected))
    first = "initialize" if mode == "legacy" else "server/discover"
    assert [e["tool_name"] for e in found][:2] == [first, "search_properties"]
    assert {e["data"]["mcp"]["transport"] for e in found} == {"stdio"}
    assert {e["session_id"] for e in found} == {found[0]["session_id"]}
    assert {e["user_source"] for e in found} == {"Claude Desktop 0.9.2"}
    named = {e["tool_name"]: e for e in found}
    assert named["resources/read"]["data"]["mcp"]["result"] == "101 Park Row; 102 Mill Lane"
    assert (
        named["get_property"]["error_message"]
        == "Error executing tool get_property: LookupError: no property 9"
    )


async def test_two_stdio_processes_are_two_sessions(sqlite_feed: LiveServer) -> None:
    for name in ("first", "second"):
        async with stdio_client(sqlite_feed.url, name=name) as client:
            await client.call_tool("search_properties", {"city": name})
            await wait_for_events(
                sqlite_feed.url, settled(["search_properties"]), user_source=f"{name} 0.9.2"
            )
    found = await wait_for_events(sqlite_feed.url, lambda found: len(found) >= 4)
    sessions: dict[str, set[str]] = {}
    for event in found:
        sessions.setdefault(event["user_source"], set()).add(event["session_id"])
    assert sessions.keys() == {"first 0.9.2", "second 0.9.2"}
    assert all(len(ids) == 1 for ids in sessions.values())
    assert sessions["first 0.9.2"] != sessions["second 0.9.2"]


async def test_a_client_timeout_over_stdio_is_recorded_with_its_reason(sqlite_feed: LiveServer) -> None:
    async with stdio_client(sqlite_feed.url, "lowlevel") as client:
        with pytest.raises(MCPError, match="timed out"):
            await client.call_tool("wait", {}, read_timeout_seconds=0.5)
        found = await wait_for_events(sqlite_feed.url, settled(["wait", "notifications/cancelled"]))
    named = {e["tool_name"]: e for e in found}
    assert (named["wait"]["status"], named["wait"]["error_message"]) == (
        "error",
        "cancelled: timed out after 0.5s",
    )
    assert named["notifications/cancelled"]["event_type"] == "mcp_notification"  # record="all"
    assert named["notifications/initialized"]["session_id"] == named["wait"]["session_id"]
