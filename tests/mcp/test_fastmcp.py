"""`ActivityFeedMiddleware` for the fastmcp package, with fastmcp's in-process client and a real feed."""

from __future__ import annotations

from typing import Any

import pytest
from fastmcp import Client, FastMCP
from fastmcp.exceptions import ToolError

from activity_feed.client import FeedClient
from activity_feed.mcp import instrument
from activity_feed.mcp.fastmcp import ActivityFeedMiddleware
from tests.mcp.conftest import events, only_event
from tests.support.server import LiveServer


def fastmcp_server() -> FastMCP:
    server = FastMCP("fast-props")

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
    found = events(feed_client, sqlite_feed)
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
    assert success["data"]["mcp"]["server_name"] == "fast-props"
    assert success["data"]["mcp"]["protocol_version"]
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
    event = only_event(feed_client, sqlite_feed)
    assert (event["status"], event["user_source"]) == ("success", "ops-bot")
    assert "result" not in event["data"]


async def test_a_failing_feed_client_never_breaks_a_fastmcp_tool(caplog: pytest.LogCaptureFixture) -> None:
    class Broken:
        def log(self, **fields: Any) -> str:
            raise RuntimeError("feed exploded")

        def update(self, id: Any, **fields: Any) -> None:
            raise RuntimeError("feed exploded")

    server = fastmcp_server()
    server.add_middleware(ActivityFeedMiddleware(Broken()))
    async with Client(server) as client:
        assert (await client.call_tool("search_properties", {"city": "York"})).data == ["1 Park Row, York"]
        with pytest.raises(ToolError, match="already let"):
            await client.call_tool("reserve", {"property_id": 1})
    assert len([r for r in caplog.records if r.name == "activity_feed.mcp"]) == 1
