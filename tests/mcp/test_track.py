"""`track_tool` on sync and async functions, against a real feed."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import pytest
from mcp import Client
from mcp.server.mcpserver import MCPServer
from mcp_types import TextContent

from activity_feed import track_tool
from activity_feed.client import FeedClient, set_default_client
from tests.mcp.conftest import events, only_event
from tests.support.server import LiveServer


async def test_an_async_function_is_recorded(sqlite_feed: LiveServer, feed_client: FeedClient) -> None:
    @track_tool(feed_client, user_source="voice assistant")
    async def schedule_viewing(property_id: int, visitor_name: str, when: str = "tomorrow") -> str:
        """Book a viewing."""
        return f"viewing of {property_id} for {visitor_name} {when}"

    assert await schedule_viewing(3, visitor_name="Ann") == "viewing of 3 for Ann tomorrow"
    assert schedule_viewing.__name__ == "schedule_viewing"
    assert schedule_viewing.__doc__ == "Book a viewing."
    assert inspect.iscoroutinefunction(schedule_viewing)
    event = only_event(feed_client, sqlite_feed)
    assert (event["tool_name"], event["status"], event["user_source"]) == (
        "schedule_viewing",
        "success",
        "voice assistant",
    )
    assert event["duration_ms"] > 0
    assert event["data"] == {
        "arguments": {"property_id": 3, "visitor_name": "Ann"},
        "result": "viewing of 3 for Ann tomorrow",
    }


def test_a_sync_function_is_recorded_under_its_given_name(
    sqlite_feed: LiveServer, feed_client: FeedClient
) -> None:
    @track_tool(feed_client, name="maintenance.create")
    def create_request(property_id: int, description: str, token: str) -> dict[str, Any]:
        return {"id": 41, "property_id": property_id}

    assert create_request(2, "leaking tap", token="t0k3n") == {"id": 41, "property_id": 2}
    event = only_event(feed_client, sqlite_feed)
    assert (event["tool_name"], event["status"]) == ("maintenance.create", "success")
    assert event["data"]["arguments"] == {
        "property_id": 2,
        "description": "leaking tap",
        "token": "[REDACTED]",
    }
    assert event["data"]["result"] == '{"id":41,"property_id":2}'


@pytest.mark.parametrize("is_async", [False, True])
async def test_an_exception_is_recorded_and_re_raised_unchanged(
    sqlite_feed: LiveServer, feed_client: FeedClient, is_async: bool
) -> None:
    error = LookupError("no property 9")

    def get_property(property_id: int) -> None:
        raise error

    async def get_property_async(property_id: int) -> None:
        raise error

    if is_async:
        with pytest.raises(LookupError) as caught:
            await track_tool(feed_client)(get_property_async)(9)
    else:
        with pytest.raises(LookupError) as caught:
            track_tool(feed_client)(get_property)(9)
    assert caught.value is error
    event = only_event(feed_client, sqlite_feed)
    assert event["status"] == "error"
    assert event["error_message"] == "LookupError: no property 9"
    assert event["duration_ms"] > 0
    assert "result" not in event["data"]


def test_the_signature_is_preserved_for_frameworks_that_introspect_it(feed_client: FeedClient) -> None:
    def search(city: str, max_rent: int | None = None, *, limit: int = 10) -> list[str]:
        return []

    tracked = track_tool(feed_client)(search)
    assert inspect.signature(tracked) == inspect.signature(search)
    assert tracked.__wrapped__ is search  # type: ignore[attr-defined]


async def test_a_tracked_function_registers_as_an_mcp_server_tool(
    sqlite_feed: LiveServer, feed_client: FeedClient
) -> None:
    server = MCPServer("tracked")
    server.add_tool(track_tool(feed_client, capture_results=False)(_add))
    async with Client(server) as client:
        tools = (await client.list_tools()).tools
        assert tools[0].input_schema["required"] == ["a", "b"]
        result = await client.call_tool("_add", {"a": 2, "b": 3})
    assert result.content == [TextContent(type="text", text="5")]
    event = only_event(feed_client, sqlite_feed)
    assert event["data"] == {"arguments": {"a": 2, "b": 3}}


def _add(a: int, b: int) -> int:
    return a + b


def test_bare_decorator_uses_the_default_client(
    sqlite_feed: LiveServer, make_client: Callable[..., FeedClient]
) -> None:
    client = make_client(sqlite_feed.url)
    set_default_client(client)
    try:

        @track_tool
        def ping() -> str:
            return "pong"

        assert ping() == "pong"
        assert [e["tool_name"] for e in events(client, sqlite_feed)] == ["ping"]
    finally:
        set_default_client(None)


def test_a_failing_client_never_breaks_the_function(caplog: pytest.LogCaptureFixture) -> None:
    class Broken:
        def log(self, **fields: Any) -> str:
            raise RuntimeError("feed exploded")

        def update(self, id: Any, **fields: Any) -> None:
            raise RuntimeError("feed exploded")

    @track_tool(Broken())
    def double(n: int) -> int:
        return n * 2

    assert [double(n) for n in range(3)] == [0, 2, 4]
    assert len([r for r in caplog.records if r.name == "activity_feed.mcp"]) == 1
