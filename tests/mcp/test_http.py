"""Over streamable HTTP the session is the transport's own: the `Mcp-Session-Id` the server gave."""

from __future__ import annotations

from collections.abc import Callable

from mcp import Client
from mcp_types import Implementation

from activity_feed.client import FeedClient
from activity_feed.mcp import instrument
from tests.mcp.conftest import CLIENT_INFO, events
from tests.mcp.servers import property_server
from tests.support.server import LiveServer


async def test_a_streamable_http_session_is_the_mcp_session_id(
    sqlite_feed: LiveServer, feed_client: FeedClient, live_server: Callable[..., LiveServer]
) -> None:
    server = property_server()
    instrument(server, feed_client)
    mcp_http = live_server(app=server.streamable_http_app())
    for name in ("first", "second"):
        info = Implementation(name=name, version=CLIENT_INFO["version"])
        async with Client(f"{mcp_http.url}/mcp", mode="legacy", client_info=info) as client:
            await client.call_tool("search_properties", {"city": "Leeds"})
            await client.read_resource("props://portfolio")
    found = events(feed_client, sqlite_feed)
    assert {e["data"]["mcp"]["transport"] for e in found} == {"http"}
    sessions: dict[str, set[str]] = {}
    for event in found:
        sessions.setdefault(event["user_source"], set()).add(event["session_id"])
    assert all(len(ids) == 1 for ids in sessions.values()), sessions
    first, second = (next(iter(sessions[f"{name} 0.9.2"])) for name in ("first", "second"))
    assert first != second
    assert len(first) == 32  # the SDK's session ids: 32 hex digits


async def test_a_2026_request_over_http_is_no_session_of_its_own(
    sqlite_feed: LiveServer, feed_client: FeedClient, live_server: Callable[..., LiveServer]
) -> None:
    server = property_server()
    instrument(server, feed_client)
    mcp_http = live_server(app=server.streamable_http_app())
    async with Client(f"{mcp_http.url}/mcp", client_info=Implementation(**CLIENT_INFO)) as client:
        await client.call_tool("search_properties", {"city": "Leeds"})
    found = events(feed_client, sqlite_feed)
    tool = next(e for e in found if e["tool_name"] == "search_properties")
    assert (tool["status"], tool["user_source"]) == ("success", "Claude Desktop 0.9.2")
    assert tool["data"]["mcp"]["protocol_version"] == "2026-07-28"
    assert tool["data"]["mcp"]["transport"] == "http"
    # Each 2026 request stands alone over HTTP: without an Mcp-Session-Id there is no session to name.
    assert tool["session_id"] is None
