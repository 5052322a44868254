"""`ActivityFeedMiddleware` for the fastmcp package, with fastmcp's in-process client and a real feed."""

from __future__ import annotations

from typing import Any

import anyio
import pytest
from fastmcp import Client, FastMCP
from fastmcp.exceptions import ToolError
from mcp.shared.exceptions import MCPError as McpError

from activity_feed.client import FeedClient
from activity_feed.mcp import instrument
from activity_feed.mcp.fastmcp import ActivityFeedMiddleware
from tests.mcp.conftest import events, only_event, wait_for_events
from tests.mcp.servers import SLOW_TOOL_SECONDS
from tests.support.server import LiveServer


def fastmcp_server() -> FastMCP:
    server = FastMCP("fast-props", version="3.1")

    @server.tool
    def search_properties(city: str, api_key: str = "") -> list[str]:
        return [f"1 Park Row, {city}"]

    @server.tool
    def get_property(property_id: int) -> dict[str, Any]:
        raise LookupError(f"no property {property_id}")

    @server.tool
    def reserve(property_id: int) -> str:
        raise ToolError("already let")

    return server


async def test_fastmcp_tool_calls_are_recorded(sqlite_feed: LiveServer, feed_client: FeedClient) -> None:
    server = fastmcp_server()
    server.add_middleware(ActivityFeedMiddleware(feed_client))
    async with Client(server) as client:
        ok = await client.call_tool(
            "search_properties", {"city": "Leeds", "api_key": "sk-abcdefghijklmnop1234"}
        )
        assert ok.data == ["1 Park Row, Leeds"]
        failures = [
            await client.call_tool(name, arguments, raise_on_error=False)
            for name, arguments in [
                ("get_property", {"property_id": 7}),
                ("reserve", {"property_id": 1}),
                ("demolish", {}),
                ("get_property", {"property_id": "seven"}),
            ]
        ]
    assert all(result.is_error for result in failures)
    found = events(feed_client, sqlite_feed, event_type="tool_call")
    assert [(e["tool_name"], e["status"]) for e in found] == [
        ("search_properties", "success"),
        ("get_property", "error"),
        ("reserve", "error"),
        ("demolish", "error"),
        ("get_property", "error"),
    ]
    success = found[0]
    assert success["duration_ms"] > 0
    assert success["user_source"].startswith("fastmcp ")  # fastmcp's client names itself
    assert success["data"]["arguments"] == {"city": "Leeds", "api_key": "[REDACTED]"}
    assert success["data"]["result"] == '["1 Park Row, Leeds"]'
    mcp = success["data"]["mcp"]
    assert mcp["server"] == {"name": "fast-props", "version": "3.1"}
    assert mcp["protocol_version"]
    assert (mcp["source"], mcp["transport"], mcp["method"], mcp["target"]) == (
        "fastmcp",
        "inproc",
        "tools/call",
        "search_properties",
    )
    assert isinstance(mcp["request_id"], int)
    assert all(e["data"]["mcp"]["is_error"] for e in found[1:])  # the client got `isError` results
    assert all("error" not in e["data"]["mcp"] for e in found[1:])
    messages = [e["error_message"] for e in found[1:]]
    assert "no property 7" in messages[0]
    assert messages[1] == "ToolError: already let"
    assert "Unknown tool" in messages[2]
    assert "demolish" in messages[2]
    assert "property_id" in messages[3]
    assert "valid integer" in messages[3]
    assert "seven" not in messages[3]


async def test_instrument_adds_the_middleware_to_a_fastmcp_server(
    sqlite_feed: LiveServer, feed_client: FeedClient
) -> None:
    server = fastmcp_server()
    instrument(server, feed_client, user_source="ops-bot", capture_results=False)
    instrument(server, feed_client)
    assert sum(isinstance(m, ActivityFeedMiddleware) for m in server.middleware) == 1
    async with Client(server) as client:
        await client.call_tool("search_properties", {"city": "York"})
    event = only_event(feed_client, sqlite_feed, event_type="tool_call")
    assert (event["status"], event["user_source"]) == ("success", "ops-bot")
    assert "result" not in event["data"]


async def test_a_failing_feed_client_never_breaks_a_fastmcp_tool(caplog: pytest.LogCaptureFixture) -> None:
    class Broken:
        def log(self, **fields: Any) -> str:
            raise RuntimeError("feed exploded")

        def update(self, id: Any, **fields: Any) -> None:
            raise RuntimeError("feed exploded")

    server = fastmcp_server()
    server.add_middleware(ActivityFeedMiddleware(Broken(), record="tools"))
    async with Client(server) as client:
        assert (await client.call_tool("search_properties", {"city": "York"})).data == ["1 Park Row, York"]
        with pytest.raises(ToolError, match="already let"):
            await client.call_tool("reserve", {"property_id": 1})
    assert len([r for r in caplog.records if r.name == "activity_feed.mcp"]) == 1


async def test_every_fastmcp_request_is_recorded_in_one_session(
    sqlite_feed: LiveServer, feed_client: FeedClient
) -> None:
    server = fastmcp_server()

    @server.resource("props://portfolio")
    def portfolio() -> str:
        return "101 Park Row; 102 Mill Lane"

    @server.prompt
    def summarise(city: str) -> str:
        return f"Summarise the lettings in {city}"

    instrument(server, feed_client)
    async with Client(server) as client:
        await client.list_tools()
        await client.read_resource("props://portfolio")
        await client.get_prompt("summarise", {"city": "York"})
        with pytest.raises(McpError):
            await client.read_resource("props://nowhere")
    found = events(feed_client, sqlite_feed)
    assert [e["tool_name"] for e in found] == [
        "server/discover",
        "tools/list",
        "resources/read",
        "prompts/get summarise",
        "resources/read",
    ]
    assert {e["session_id"] for e in found} == {found[0]["session_id"]}
    assert {e["data"]["mcp"]["source"] for e in found} == {"fastmcp"}
    assert found[2]["data"]["mcp"]["target"] == "props://portfolio"
    assert found[2]["data"]["mcp"]["result"] == "101 Park Row; 102 Mill Lane"
    assert found[3]["data"]["mcp"]["arguments"] == {"city": "York"}
    missing = found[4]
    assert missing["status"] == "error"
    assert "props://nowhere" in missing["error_message"]


async def test_fastmcp_record_tools_records_only_tool_calls(
    sqlite_feed: LiveServer, feed_client: FeedClient
) -> None:
    server = fastmcp_server()
    server.add_middleware(ActivityFeedMiddleware(feed_client, record="tools"))
    async with Client(server) as client:
        await client.list_tools()
        await client.call_tool("search_properties", {"city": "York"})
    assert [e["tool_name"] for e in events(feed_client, sqlite_feed)] == ["search_properties"]


def test_fastmcp_refuses_an_unknown_record_mode(feed_client: FeedClient) -> None:
    with pytest.raises(ValueError, match="record must be one of"):
        ActivityFeedMiddleware(feed_client, record="everything")  # type: ignore[arg-type]


async def test_a_fastmcp_call_the_client_gives_up_on_is_recorded_cancelled(
    sqlite_feed: LiveServer, feed_client: FeedClient
) -> None:
    server = fastmcp_server()

    @server.tool
    async def check_calendar(day: str) -> str:
        await anyio.sleep(SLOW_TOOL_SECONDS)
        return f"{day}: free"

    instrument(server, feed_client)
    async with Client(server) as client:
        with pytest.raises(McpError, match=r"[Tt]imed out"):
            await client.call_tool("check_calendar", {"day": "monday"}, timeout=0.2)
    found = await wait_for_events(
        sqlite_feed.url,
        lambda f: any(e["tool_name"] == "check_calendar" and e["status"] != "pending" for e in f),
    )
    event = next(e for e in found if e["tool_name"] == "check_calendar")
    assert (event["status"], event["error_message"]) == ("error", "cancelled: timed out after 0.2s")
