"""`instrument()` on the official SDK's `MCPServer` and low-level `Server`, through the in-process
`mcp.Client` and a real feed service."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from mcp import Client
from mcp.server.mcpserver import MCPServer
from mcp.shared.exceptions import MCPError
from mcp_types import (
    INVALID_PARAMS,
    CallToolResult,
    Implementation,
    TextContent,
)

from activity_feed.client import FeedClient
from activity_feed.mcp import ActivityFeedServerMiddleware, instrument
from tests.mcp.conftest import CLIENT_INFO, events, only_event
from tests.mcp.servers import SERVER_NAME, SERVER_VERSION, lowlevel_server, property_server
from tests.support.server import LiveServer

ROOT = Path(__file__).resolve().parents[2]
SECRET = "sk-live-abcdefghijklmnopqrstuvwxyz0123"


def client_for(server: Any) -> Client:
    return Client(server, client_info=Implementation(**CLIENT_INFO))


@pytest.mark.parametrize("mode", ["auto", "legacy"])
async def test_a_successful_call_is_recorded_pending_then_success(
    feed_server: LiveServer, make_client: Callable[..., FeedClient], mode: str
) -> None:
    feed_client = make_client(feed_server.url)
    server = property_server()
    instrument(server, feed_client)
    async with Client(server, mode=mode, client_info=Implementation(**CLIENT_INFO)) as client:  # type: ignore[arg-type]
        result = await client.call_tool("search_properties", {"city": "Leeds", "max_rent": 900})
    assert result.is_error is False
    event = only_event(feed_client, feed_server, tool_name="search_properties")
    assert event["event_type"] == "tool_call"
    assert event["status"] == "success"
    assert event["duration_ms"] > 0
    assert event["error_message"] is None
    assert event["user_source"] == "Claude Desktop 0.9.2"
    data = event["data"]
    assert data["arguments"] == {"city": "Leeds", "max_rent": 900}
    assert data["result"] == "2 properties in Leeds under 900"
    assert event["session_id"]
    mcp = data["mcp"]
    assert mcp["method"] == "tools/call"
    assert mcp["request_id"] is not None
    assert mcp["direction"] == "client_to_server"
    assert mcp["protocol_version"] == ("2026-07-28" if mode == "auto" else "2025-11-25")
    assert mcp["transport"] == "inproc"
    assert mcp["client"] == CLIENT_INFO
    assert mcp["server"] == {"name": SERVER_NAME, "version": SERVER_VERSION}
    assert mcp["target"] == "search_properties"
    assert mcp["source"] == "sdk"
    assert "arguments" not in mcp  # a tool call's are `data.arguments`, as they always were


async def test_with_record_tools_other_methods_pass_through_unrecorded(
    sqlite_feed: LiveServer, feed_client: FeedClient
) -> None:
    server = property_server()
    instrument(server, feed_client, record="tools")
    async with client_for(server) as client:
        tools = await client.list_tools()
        await client.read_resource("props://portfolio")
        await client.call_tool("search_properties", {"city": "York"})
    assert {tool.name for tool in tools.tools} >= {"search_properties", "get_property"}
    assert [e["tool_name"] for e in events(feed_client, sqlite_feed)] == ["search_properties"]


@pytest.mark.parametrize("record", ["request", "", None, "ALL"])
def test_an_unknown_record_mode_is_refused_with_the_choices(feed_client: FeedClient, record: Any) -> None:
    with pytest.raises(ValueError, match="'tools', 'requests', 'all'"):
        instrument(property_server(), feed_client, record=record)


async def test_a_raised_exception_is_an_error_with_the_real_reason(
    sqlite_feed: LiveServer, feed_client: FeedClient
) -> None:
    server = property_server()
    instrument(server, feed_client)
    async with client_for(server) as client:
        result = await client.call_tool("get_property", {"property_id": 7})
    # The client gets the SDK's sanitised text, unchanged by the instrumentation.
    assert result.is_error is True
    assert result.content == [TextContent(type="text", text="Error executing tool get_property")]
    event = only_event(feed_client, sqlite_feed, tool_name="get_property")
    assert event["status"] == "error"
    assert event["duration_ms"] > 0
    assert event["error_message"] == "Error executing tool get_property: LookupError: no property 7"
    assert event["data"]["result"] == "Error executing tool get_property"


async def test_an_is_error_result_is_an_error(sqlite_feed: LiveServer, feed_client: FeedClient) -> None:
    server = property_server()

    @server.tool()
    def reserve(property_id: int) -> CallToolResult:
        return CallToolResult(content=[TextContent(type="text", text="already let")], is_error=True)

    instrument(server, feed_client)
    async with client_for(server) as client:
        result = await client.call_tool("reserve", {"property_id": 1})
    assert result.is_error is True
    event = only_event(feed_client, sqlite_feed, tool_name="reserve")
    assert (event["status"], event["error_message"]) == ("error", "already let")
    assert event["data"]["mcp"]["is_error"] is True
    assert "error" not in event["data"]["mcp"]  # a result, not a JSON-RPC error


async def test_an_unknown_tool_is_an_error(sqlite_feed: LiveServer, feed_client: FeedClient) -> None:
    server = property_server()
    instrument(server, feed_client)
    async with client_for(server) as client:
        result = await client.call_tool("demolish", {"property_id": 1})
    assert result.is_error is True
    event = only_event(feed_client, sqlite_feed, tool_name="demolish")
    assert (event["status"], event["error_message"]) == ("error", "Unknown tool: demolish")


async def test_invalid_arguments_are_an_error_that_names_the_problem(
    sqlite_feed: LiveServer, feed_client: FeedClient
) -> None:
    server = property_server()
    instrument(server, feed_client)
    async with client_for(server) as client:
        result = await client.call_tool("get_property", {"property_id": "seven", "token": SECRET})
    assert result.is_error is True
    event = only_event(feed_client, sqlite_feed, tool_name="get_property")
    assert event["status"] == "error"
    message = event["error_message"]
    assert "validation error" in message
    assert "property_id" in message
    assert "valid integer" in message
    assert "seven" not in message  # pydantic's echo of the input is left out: it may hold secrets


async def test_a_secret_in_the_arguments_never_reaches_the_database(
    feed_server: LiveServer, make_client: Callable[..., FeedClient]
) -> None:
    feed_client = make_client(feed_server.url)
    server = property_server()
    instrument(server, feed_client)
    async with client_for(server) as client:
        await client.call_tool("login", {"user": "ann", "password": "hunter2"})
        await client.call_tool("search_properties", {"city": f"Leeds {SECRET}"})
        await client.call_tool("get_property", {"property_id": SECRET})
    found = events(feed_client, feed_server)
    assert len([e for e in found if e["event_type"] == "tool_call"]) == 3
    stored = str(found)  # every event of the session, the tools/list the client made included
    assert "hunter2" not in stored
    assert SECRET not in stored
    login = next(e for e in found if e["tool_name"] == "login")
    assert login["data"]["arguments"] == {"user": "ann", "password": "[REDACTED]"}
    assert login["data"]["redacted"] == ["arguments.password"]
    # Identity fields are never redacted.
    assert login["user_source"] == "Claude Desktop 0.9.2"


async def test_capture_flags_leave_arguments_and_results_out(
    sqlite_feed: LiveServer, feed_client: FeedClient
) -> None:
    server = property_server()
    instrument(server, feed_client, capture_arguments=False, capture_results=False, user_source="ops-bot")
    async with client_for(server) as client:
        await client.call_tool("search_properties", {"city": "York"})
    event = only_event(feed_client, sqlite_feed, tool_name="search_properties")
    assert event["status"] == "success"
    assert event["user_source"] == "ops-bot"
    assert set(event["data"]) == {"mcp"}


async def test_a_long_result_is_previewed_in_at_most_one_kib(
    sqlite_feed: LiveServer, feed_client: FeedClient
) -> None:
    server = property_server()
    instrument(server, feed_client)
    async with client_for(server) as client:
        result = await client.call_tool("long_report", {})
    assert result.content == [TextContent(type="text", text="x" * 5000)]
    preview = only_event(feed_client, sqlite_feed, tool_name="long_report")["data"]["result"]
    assert len(preview.encode()) <= 1024
    assert preview.startswith("xxx")
    assert preview.endswith("[truncated]")


async def test_instrumenting_twice_records_each_call_once(
    sqlite_feed: LiveServer, feed_client: FeedClient
) -> None:
    server = property_server()
    instrument(server, feed_client)
    instrument(server, feed_client)
    assert sum(isinstance(m, ActivityFeedServerMiddleware) for m in server.middleware) == 1
    async with client_for(server) as client:
        await client.call_tool("search_properties", {"city": "York"})
    assert len(events(feed_client, sqlite_feed, event_type="tool_call")) == 1


async def test_the_low_level_server_is_instrumented_through_the_same_middleware(
    sqlite_feed: LiveServer, feed_client: FeedClient
) -> None:
    server = lowlevel_server()
    instrument(server, feed_client)
    async with client_for(server) as client:
        assert (await client.call_tool("square", {"n": 4})).content == [TextContent(type="text", text="16")]
        assert (await client.call_tool("square", {"n": "x"})).is_error is True
        with pytest.raises(MCPError, match="Unknown tool: cube"):
            await client.call_tool("cube", {"n": 2})
        with pytest.raises(MCPError):
            await client.call_tool("square", {"n": 13})
    found = events(feed_client, sqlite_feed, event_type="tool_call")
    summary = [(e["tool_name"], e["status"], e["error_message"]) for e in found]
    assert summary == [
        ("square", "success", None),
        ("square", "error", "n must be an integer"),
        ("cube", "error", "Unknown tool: cube"),
        ("square", "error", "RuntimeError: unlucky number"),
    ]
    assert all(e["duration_ms"] > 0 for e in found)
    assert found[0]["data"]["mcp"]["server"] == {"name": "lowlevel-calc", "version": "0.1"}
    assert found[0]["data"]["result"] == "16"
    assert found[0]["user_source"] == "Claude Desktop 0.9.2"
    # An MCPError reaches the client as a JSON-RPC error: its code and message are recorded.
    assert found[2]["data"]["mcp"]["error"] == {"code": INVALID_PARAMS, "message": "Unknown tool: cube"}
    assert "error" not in found[3]["data"]["mcp"]  # the code depends on the transport


class BrokenClient:
    """A client whose every method raises: the instrumentation must not let that reach the tool."""

    def __init__(self) -> None:
        self.calls = 0

    def log(self, **fields: Any) -> str:
        self.calls += 1
        raise RuntimeError("feed exploded")

    def update(self, id: Any, **fields: Any) -> None:
        raise RuntimeError("feed exploded")


class BreaksOnUpdate(BrokenClient):
    def log(self, **fields: Any) -> str:
        self.calls += 1
        return "0193a3f0-0000-7000-8000-000000000000"


@pytest.mark.parametrize("broken", [BrokenClient, BreaksOnUpdate])
async def test_instrumentation_errors_never_break_the_tool(
    broken: type[BrokenClient], caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]
) -> None:
    server = property_server()
    bad = broken()
    instrument(server, bad, record="tools")
    async with client_for(server) as client:
        for _ in range(3):
            ok = await client.call_tool("search_properties", {"city": "Leeds"})
            assert ok.content == [TextContent(type="text", text="2 properties in Leeds under None")]
            failed = await client.call_tool("get_property", {"property_id": 2})
            assert failed.content == [TextContent(type="text", text="Error executing tool get_property")]
    assert bad.calls == 6
    warnings = [r for r in caplog.records if r.name == "activity_feed.mcp"]
    assert len(warnings) == 1  # once per kind, not once per call
    assert "could not record" in warnings[0].getMessage()
    assert capfd.readouterr().out == ""


async def test_nothing_is_written_to_stdout(
    sqlite_feed: LiveServer, feed_client: FeedClient, capfd: pytest.CaptureFixture[str]
) -> None:
    server = property_server()
    instrument(server, feed_client)
    async with client_for(server) as client:
        await client.call_tool("search_properties", {"city": "Leeds"})
        await client.call_tool("get_property", {"property_id": 9})
        await client.call_tool("nope", {})
    assert len(events(feed_client, sqlite_feed, event_type="tool_call")) == 3
    assert capfd.readouterr().out == ""


def test_instrument_rejects_what_is_not_an_mcp_server(feed_client: FeedClient) -> None:
    with pytest.raises(TypeError, match="track_tool"):
        instrument(object(), feed_client)


def test_without_a_client_or_url_instrument_does_nothing_and_says_so_once_on_stderr() -> None:
    code = (
        "import logging, anyio\n"
        "logging.basicConfig(format='%(levelname)s %(name)s: %(message)s')  # before MCPServer()\n"
        "from mcp import Client\n"
        "from mcp.server.mcpserver import MCPServer\n"
        "from activity_feed.mcp import instrument\n"
        "servers = [MCPServer('a'), MCPServer('b')]\n"
        "for s in servers:\n"
        "    s.add_tool(lambda: 'hi', name='hello')\n"
        "    instrument(s)\n"
        "    assert len(s.middleware) == 2, s.middleware  # the SDK's own two, nothing added\n"
        "async def main():\n"
        "    async with Client(servers[0]) as client:\n"
        "        assert (await client.call_tool('hello', {})).is_error is False\n"
        "anyio.run(main)\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("ACTIVITY_FEED_")}
    result = subprocess.run(
        [sys.executable, "-c", code],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    assert result.stdout == ""
    assert result.stderr.count("ACTIVITY_FEED_URL is not set") == 1, result.stderr
    assert "MCP tool calls and requests are not recorded" in result.stderr


class SpyClient:
    """Records the calls the instrumentation makes, in order."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def log(self, **fields: Any) -> str:
        self.calls.append(("log", fields))
        return "0193a3f0-0000-7000-8000-000000000001"

    def update(self, id: Any, **fields: Any) -> None:
        self.calls.append(("update", {"id": id, **fields}))


async def test_the_event_is_logged_pending_before_the_tool_runs() -> None:
    spy = SpyClient()
    server = MCPServer("spy")
    seen_during_the_call: list[list[str]] = []

    @server.tool()
    def probe() -> str:
        seen_during_the_call.append([f"{kind}:{fields.get('status')}" for kind, fields in spy.calls])
        return "ok"

    instrument(server, spy, record="tools")
    async with client_for(server) as client:
        await client.call_tool("probe", {})
    assert seen_during_the_call == [["log:pending"]]
    assert [(kind, fields["status"]) for kind, fields in spy.calls] == [
        ("log", "pending"),
        ("update", "success"),
    ]
    assert spy.calls[1][1]["id"] == "0193a3f0-0000-7000-8000-000000000001"
