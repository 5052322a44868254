"""What `instrument()` records of a whole MCP conversation, through the SDK's in-process client and a
real feed: every request the server handles, the record modes, JSON-RPC errors, the 2026 discovery
fallback, sessions and traces."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from mcp import Client
from mcp.shared.exceptions import MCPDeprecationWarning, MCPError
from mcp_types import METHOD_NOT_FOUND, Implementation, PromptReference, Request, ResourceTemplateReference
from pydantic import TypeAdapter

from activity_feed.client import FeedClient
from activity_feed.mcp import instrument
from tests.mcp.conftest import CLIENT_INFO, by_name, events
from tests.mcp.servers import SERVER_NAME, SERVER_VERSION, lowlevel_server, property_server
from tests.mcp.streams import StreamTransport
from tests.support.server import LiveServer

TRACE_ID = "0af7651916cd43dd8448eb211c80319c"
SPAN_ID = "b7ad6b7169203331"
TRACEPARENT = f"00-{TRACE_ID}-{SPAN_ID}-01"


def client_for(server: Any, mode: str = "legacy", name: str = CLIENT_INFO["name"]) -> Client:
    info = Implementation(name=name, version=CLIENT_INFO["version"])
    return Client(server, mode=mode, client_info=info)  # type: ignore[arg-type]


async def test_every_request_of_a_handshake_session_is_recorded(
    feed_server: LiveServer, make_client: Callable[..., FeedClient]
) -> None:
    feed_client = make_client(feed_server.url)
    server = property_server()
    instrument(server, feed_client)
    async with client_for(server) as client:
        await client.list_tools()
        await client.call_tool("search_properties", {"city": "Leeds"})
        await client.list_resources()
        await client.list_resource_templates()
        await client.read_resource("props://portfolio")
        await client.list_prompts()
        await client.get_prompt("summarise", {"city": "York"})
        await client.complete(
            PromptReference(type="ref/prompt", name="summarise"), {"name": "city", "value": "L"}
        )
        with pytest.warns(MCPDeprecationWarning):  # ping is gone from the 2026 protocol
            await client.send_ping()
    found = events(feed_client, feed_server)
    names = [e["tool_name"] for e in found]
    assert names == [
        "initialize",
        "tools/list",
        "search_properties",
        "resources/list",
        "resources/templates/list",
        "resources/read",
        "prompts/list",
        "prompts/get summarise",
        "completion/complete",
    ]  # ping is left out unless record="all"; notifications too
    assert all(e["status"] == "success" for e in found)
    assert {e["event_type"] for e in found if e["tool_name"] != "search_properties"} == {"mcp_request"}
    assert {e["session_id"] for e in found} == {found[0]["session_id"]}
    assert {e["user_source"] for e in found} == {"Claude Desktop 0.9.2"}
    assert all(e["duration_ms"] is not None for e in found)

    named = by_name(found)
    initialize = named["initialize"]["data"]["mcp"]
    assert initialize["client"] == CLIENT_INFO
    assert initialize["server"] == {"name": SERVER_NAME, "version": SERVER_VERSION}
    assert initialize["protocol_version"] == "2025-11-25"
    assert (initialize["transport"], initialize["direction"], initialize["source"]) == (
        "inproc",
        "client_to_server",
        "sdk",
    )
    read = named["resources/read"]["data"]["mcp"]
    assert (read["method"], read["target"]) == ("resources/read", "props://portfolio")
    assert read["arguments"] == {"uri": "props://portfolio"}
    assert read["result"] == "101 Park Row; 102 Mill Lane"
    prompt = named["prompts/get summarise"]["data"]["mcp"]
    assert (prompt["method"], prompt["target"], prompt["arguments"]) == (
        "prompts/get",
        "summarise",
        {"city": "York"},
    )
    assert "Summarise the lettings in York" in prompt["result"]
    assert named["tools/list"]["data"]["mcp"]["result"].startswith("8 tools: search_properties, get_property")
    assert named["resources/templates/list"]["data"]["mcp"]["result"] == "1 resource templates: property_page"
    assert named["completion/complete"]["data"]["mcp"]["target"] == "summarise"
    assert "London" in named["completion/complete"]["data"]["mcp"]["result"]
    tool = named["search_properties"]
    assert tool["event_type"] == "tool_call"
    assert tool["data"]["arguments"] == {"city": "Leeds"}


async def test_a_2026_session_is_recorded_from_discovery_with_the_client_of_each_request(
    sqlite_feed: LiveServer, feed_client: FeedClient
) -> None:
    server = property_server()
    instrument(server, feed_client)
    async with client_for(server, mode="auto") as client:
        await client.read_resource("props://property/7")
        await client.complete(
            ResourceTemplateReference(type="ref/resource", uri="props://property/{property_id}"),
            {"name": "property_id", "value": "1"},
        )
    found = events(feed_client, sqlite_feed)
    assert [e["tool_name"] for e in found] == ["server/discover", "resources/read", "completion/complete"]
    assert all(e["status"] == "success" for e in found)
    assert {e["user_source"] for e in found} == {"Claude Desktop 0.9.2"}  # no initialize: the envelope says
    assert {e["session_id"] for e in found} == {found[0]["session_id"]}
    assert {e["data"]["mcp"]["protocol_version"] for e in found} == {"2026-07-28"}
    assert found[1]["data"]["mcp"]["target"] == "props://property/7"
    assert found[2]["data"]["mcp"]["target"] == "props://property/{property_id}"


async def test_record_all_adds_notifications_and_pings(
    sqlite_feed: LiveServer, feed_client: FeedClient
) -> None:
    server = property_server()
    instrument(server, feed_client, record="all")
    async with client_for(server) as client:
        with pytest.warns(MCPDeprecationWarning):  # ping is gone from the 2026 protocol
            await client.send_ping()
        with pytest.warns(MCPDeprecationWarning):
            await client.send_roots_list_changed()
    found = events(feed_client, sqlite_feed)
    summary = [(e["tool_name"], e["event_type"], e["status"]) for e in found]
    assert summary == [
        ("initialize", "mcp_request", "success"),
        ("notifications/initialized", "mcp_notification", "success"),
        ("ping", "mcp_request", "success"),
        ("notifications/roots/list_changed", "mcp_notification", "success"),
    ]
    assert {e["session_id"] for e in found} == {found[0]["session_id"]}
    assert found[1]["data"]["mcp"]["direction"] == "client_to_server"
    assert "request_id" not in found[1]["data"]["mcp"]


async def test_json_rpc_errors_are_errors_with_their_code_and_message(
    feed_server: LiveServer, make_client: Callable[..., FeedClient]
) -> None:
    feed_client = make_client(feed_server.url)
    server = lowlevel_server()
    instrument(server, feed_client)
    async with client_for(server) as client:
        with pytest.warns(MCPDeprecationWarning):
            await client.set_logging_level("warning")
        with pytest.raises(MCPError, match="completions are switched off"):
            await client.complete(PromptReference(type="ref/prompt", name="x"), {"name": "a", "value": "b"})
        with pytest.raises(MCPError, match="Method not found"):
            await client.list_prompts()
        with pytest.raises(MCPError):
            # params the SDK refuses before any handler: a tool name that is not a string
            await client.session.send_request(RawRequest(method="tools/call", params={"name": 7}), ANY_RESULT)
    named = by_name(events(feed_client, feed_server))
    assert named["logging/setLevel"]["status"] == "success"
    assert named["logging/setLevel"]["data"]["mcp"]["arguments"] == {"level": "warning"}
    completion = named["completion/complete"]
    assert (completion["status"], completion["error_message"]) == ("error", "completions are switched off")
    assert completion["data"]["mcp"]["error"] == {"code": -32001, "message": "completions are switched off"}
    listing = named["prompts/list"]
    assert (listing["status"], listing["error_message"]) == ("error", "Method not found: prompts/list")
    assert listing["data"]["mcp"]["error"] == {"code": METHOD_NOT_FOUND, "message": "Method not found"}
    malformed = named["7"]
    assert malformed["status"] == "error"
    assert malformed["data"]["mcp"]["error"]["code"] == -32602


async def test_a_method_not_found_for_discovery_is_the_fallback_to_initialize_not_an_error(
    sqlite_feed: LiveServer, feed_client: FeedClient
) -> None:
    server = lowlevel_server()
    instrument(server, feed_client)

    async with client_for(StreamTransport(server, handshake_only=True), mode="auto") as client:
        await client.call_tool("square", {"n": 3})
    found = events(feed_client, sqlite_feed)
    assert [(e["tool_name"], e["status"]) for e in found][:3] == [
        ("server/discover", "success"),
        ("initialize", "success"),
        ("square", "success"),
    ]
    assert found[0]["error_message"] is None


async def test_each_connection_is_a_session_of_its_own(
    sqlite_feed: LiveServer, feed_client: FeedClient
) -> None:
    server = lowlevel_server()
    instrument(server, feed_client)
    connections = [
        ("legacy", server),
        ("auto", server),  # in process on the 2026 path: the SDK makes a Connection per request
        ("auto", StreamTransport(server)),  # 2026 over a stream, as on stdio
    ]
    for index, (mode, target) in enumerate(connections):
        for copy in ("a", "b"):
            async with client_for(target, mode=mode, name=f"{index}-{mode}-{copy}") as client:
                await client.call_tool("square", {"n": 2})
                await client.call_tool("square", {"n": 3})
    found = events(feed_client, sqlite_feed)
    sessions: dict[str, set[str]] = {}
    for event in found:
        sessions.setdefault(event["user_source"], set()).add(event["session_id"])
    assert len(sessions) == 6
    assert all(len(ids) == 1 for ids in sessions.values()), sessions  # one per connection
    assert len({next(iter(ids)) for ids in sessions.values()}) == 6  # and each its own
    one = next(iter(sessions["0-legacy-a 0.9.2"]))
    in_session = events(feed_client, sqlite_feed, session_id=one)
    assert [e["tool_name"] for e in in_session] == ["initialize", "square", "tools/list", "square"]


@pytest.mark.parametrize("mode", ["legacy", "auto"])
async def test_the_trace_in_the_request_meta_is_the_correlation_id(
    sqlite_feed: LiveServer, feed_client: FeedClient, mode: str
) -> None:
    server = property_server()
    instrument(server, feed_client)
    async with client_for(server, mode=mode) as client:
        await client.call_tool("search_properties", {"city": "Leeds"}, meta={"traceparent": TRACEPARENT})
        await client.read_resource("props://portfolio", meta={"traceparent": TRACEPARENT.upper()})
        await client.call_tool("search_properties", {"city": "York"}, meta={"traceparent": "00-abc-def-01"})
        zero = f"00-{'0' * 32}-{SPAN_ID}-01"
        await client.call_tool("search_properties", {"city": "Bath"}, meta={"traceparent": zero})
    found = [
        e
        for e in events(feed_client, sqlite_feed)
        if e["tool_name"] in ("search_properties", "resources/read")
    ]
    assert [e["correlation_id"] for e in found] == [TRACE_ID, TRACE_ID, None, None]
    assert (found[0]["data"]["mcp"]["trace_id"], found[0]["data"]["mcp"]["span_id"]) == (TRACE_ID, SPAN_ID)
    assert "trace_id" not in found[2]["data"]["mcp"]


@pytest.mark.usefixtures("tracer_provider")
async def test_without_a_trace_in_the_meta_the_current_opentelemetry_span_is_used(
    sqlite_feed: LiveServer, feed_client: FeedClient
) -> None:
    from opentelemetry import trace

    server = property_server()
    instrument(server, feed_client)
    context = trace.SpanContext(trace_id=int(TRACE_ID, 16), span_id=int(SPAN_ID, 16), is_remote=False)
    async with client_for(server, mode="auto") as client:
        # In process on the 2026 path the handler runs in the caller's context, so its span is current.
        with trace.use_span(trace.NonRecordingSpan(context)):
            await client.call_tool("search_properties", {"city": "Leeds"})
        await client.call_tool("search_properties", {"city": "York"})
    found = [e for e in events(feed_client, sqlite_feed) if e["tool_name"] == "search_properties"]
    assert [e["correlation_id"] for e in found] == [TRACE_ID, None]
    assert found[0]["data"]["mcp"]["span_id"] == SPAN_ID


class RawRequest(Request[dict[str, Any], str]):
    """A request with whatever params, as a client that gets them wrong would send."""

    method: str
    params: dict[str, Any]


ANY_RESULT = TypeAdapter(dict[str, Any])
