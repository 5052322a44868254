"""Each tool through the SDK's in-process client, reading a real feed over HTTP: structured content equal
to what the REST API stores, a text line per item, and a clear tool error for whatever cannot be answered."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
from mcp import Client
from mcp_types import CallToolResult, TextContent

from activity_feed.client.reader import FeedReader
from activity_feed.feed_mcp.server import build_server
from tests.feed_mcp.conftest import READ_TOKEN
from tests.support.server import LiveServer, free_port

TOOLS = ["recent_activity", "get_activity", "tool_stats", "list_sessions", "session_activity"]


@asynccontextmanager
async def _client(url: str, token: str | None = None) -> AsyncIterator[Client]:
    reader = FeedReader(url, token if token is not None else "")
    async with reader, Client(build_server(reader)) as client:
        yield client


@pytest.fixture
async def tools(seeded_feed: LiveServer) -> AsyncIterator[Client]:
    async with _client(seeded_feed.url) as client:
        yield client


def text_of(result: CallToolResult) -> str:
    [block] = result.content
    assert isinstance(block, TextContent)
    return block.text


async def call(client: Client, name: str, **arguments: Any) -> tuple[Any, str]:
    result = await client.call_tool(name, arguments)
    assert not result.is_error, text_of(result)
    return result.structured_content, text_of(result)


async def error(client: Client, name: str, **arguments: Any) -> str:
    result = await client.call_tool(name, arguments)
    assert result.is_error
    assert result.structured_content is None
    message = text_of(result)
    assert "Traceback" not in message
    return message


def stored(events: list[dict[str, Any]], **match: Any) -> list[dict[str, Any]]:
    return [event for event in events if all(event.get(key) == value for key, value in match.items())]


async def test_every_tool_is_read_only_with_typed_inputs_and_an_output_schema(tools: Client) -> None:
    listed = {tool.name: tool for tool in (await tools.list_tools()).tools}
    assert sorted(listed) == sorted(TOOLS)
    for tool in listed.values():
        assert tool.annotations is not None
        assert tool.annotations.read_only_hint is True
        assert tool.output_schema is not None
        assert tool.output_schema["type"] == "object"
        assert tool.description
        assert "\n " not in tool.description
        for name, schema in tool.input_schema["properties"].items():
            assert schema.get("description"), f"{tool.name}.{name}"
    recent = listed["recent_activity"].input_schema["properties"]
    assert set(recent) == {"limit", "event_type", "status", "tool_name", "session_id", "since"}
    assert (recent["limit"]["minimum"], recent["limit"]["maximum"]) == (1, 200)
    assert listed["get_activity"].input_schema["required"] == ["id"]
    assert set(listed["tool_stats"].input_schema["properties"]) == {"since", "session_id"}


async def test_recent_activity_answers_the_stored_events(tools: Client, seeded_feed: LiveServer) -> None:
    events = await _stored(seeded_feed)
    answer, text = await call(tools, "recent_activity")
    assert answer == {"events": events, "more": False}
    assert text.splitlines()[0] == "5 events, newest first"

    # "Which of my tools failed in the last hour, and why?"
    answer, text = await call(tools, "recent_activity", status="error", since="1h")
    assert answer["events"] == stored(events, tool_name="search_properties", status="error")
    [line] = text.splitlines()[1:]
    assert " error tool_call search_properties 5000 ms: timeout after 5 s [id " in line

    answer, text = await call(tools, "recent_activity", limit=2, event_type="tool_call")
    assert answer == {"events": stored(events, event_type="tool_call")[:2], "more": True}
    assert "(more match: raise limit to see them)" in text
    answer, _ = await call(tools, "recent_activity", tool_name="get_property", session_id="sess-b")
    assert answer["events"] == stored(events, tool_name="get_property")
    answer, text = await call(tools, "recent_activity", tool_name="no_such_tool")
    assert (answer, text) == ({"events": [], "more": False}, "no events")


async def test_get_activity_answers_one_event_in_full(tools: Client, seeded_feed: LiveServer) -> None:
    [failed] = stored(await _stored(seeded_feed), error_message="timeout after 5 s")
    answer, text = await call(tools, "get_activity", id=failed["id"])
    assert answer == failed
    assert "session_id: sess-a" in text.splitlines()
    assert 'data: {"arguments": {"city": "Leeds"}}' in text.splitlines()


async def test_tool_stats_count_each_tool_of_the_window(tools: Client) -> None:
    answer, text = await call(tools, "tool_stats", since="1h")
    assert answer["events_counted"] == 3
    assert answer["truncated"] is False
    assert answer["since"] is not None
    by_tool = {tool["tool_name"]: tool for tool in answer["tools"]}
    assert by_tool == {
        "search_properties": {
            "tool_name": "search_properties",
            "count": 2,
            "errors": 1,
            "error_rate": 0.5,
            "p50_duration_ms": 40.0,
            "p95_duration_ms": 5000.0,
        },
        "get_property": {
            "tool_name": "get_property",
            "count": 1,
            "errors": 0,
            "error_rate": 0.0,
            "p50_duration_ms": 12.5,
            "p95_duration_ms": 12.5,
        },
    }
    assert "search_properties: 2 calls, 1 error (50.0%), p50 40 ms, p95 5000 ms" in text.splitlines()
    answer, _ = await call(tools, "tool_stats", session_id="sess-b")
    assert {tool["tool_name"]: tool["errors"] for tool in answer["tools"]} == {
        "get_property": 0,
        "book_viewing": 1,
    }
    answer, text = await call(tools, "tool_stats", since="1s", session_id="no-such-session")
    assert (answer["tools"], answer["events_counted"], text) == ([], 0, "no events in that window")


async def test_sessions_and_their_activity(tools: Client, seeded_feed: LiveServer) -> None:
    events = await _stored(seeded_feed)
    answer, text = await call(tools, "list_sessions")
    async with FeedReader(seeded_feed.url, "") as reader:
        assert answer == {"sessions": await reader.sessions()}
    assert [session["session_id"] for session in answer["sessions"]] == ["sess-b", "sess-a"]
    assert text.splitlines()[2].startswith("sess-a (Claude Desktop 0.9.2): 2 events, 1 error, 0 pending, ")
    answer, _ = await call(tools, "list_sessions", limit=1)
    assert [session["session_id"] for session in answer["sessions"]] == ["sess-b"]

    answer, text = await call(tools, "session_activity", session_id="sess-a")
    assert answer == {"session_id": "sess-a", "events": stored(events, session_id="sess-a"), "more": False}
    assert text.splitlines()[0] == "2 events in session sess-a, newest first"
    answer, _ = await call(tools, "session_activity", session_id="sess-b", limit=1)
    assert answer == {"session_id": "sess-b", "events": stored(events, session_id="sess-b")[:1], "more": True}


async def test_what_cannot_be_answered_is_a_tool_error_that_says_why(tools: Client) -> None:
    unknown = "01936f4c-8a3e-7c2b-9a41-1f2e3d4c5b6a"
    assert (await error(tools, "get_activity", id=unknown)).endswith(f"no event with id {unknown}")
    assert "not an event id: '../health' (ids are UUIDs" in await error(tools, "get_activity", id="../health")
    for name in ("recent_activity", "tool_stats"):
        message = await error(tools, name, since="yesterday")
        assert "since: not a time or a duration: 'yesterday' (use an ISO 8601 time" in message
    assert "no events in a session 'gone'" in await error(tools, "session_activity", session_id="gone")
    assert "Input should be 'pending', 'success' or 'error'" in await error(
        tools, "recent_activity", status="failed"
    )
    assert "less than or equal to 200" in await error(tools, "recent_activity", limit=1000)


async def test_an_absent_feed_and_a_refused_token_are_tool_errors(guarded_feed: LiveServer) -> None:
    async with _client(f"http://127.0.0.1:{free_port()}") as client:
        assert "cannot reach the feed at http://127.0.0.1:" in await error(client, "recent_activity")
    async with _client(guarded_feed.url, "wrong") as client:
        message = await error(client, "tool_stats")
        assert "answered 401: the token was refused (pass --token or set ACTIVITY_FEED_TOKEN)" in message
    async with _client(guarded_feed.url) as client:
        assert "answered 401: no token was given" in await error(client, "list_sessions")
    async with _client(guarded_feed.url, READ_TOKEN) as client:
        answer, _ = await call(client, "list_sessions")
        assert len(answer["sessions"]) == 2


async def _stored(feed: LiveServer) -> list[dict[str, Any]]:
    async with FeedReader(feed.url, "") as reader:
        return await reader.recent(limit=50)
