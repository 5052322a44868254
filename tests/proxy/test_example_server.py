"""The example server, not instrumented itself, run through the proxy under the SDK's client over
stdio (as Claude Desktop would run it): the feed holds the whole conversation, recorded by the proxy."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest
from mcp import Client, StdioServerParameters
from mcp.shared.exceptions import MCPError
from mcp_types import Implementation

from tests.proxy.conftest import by_name, wait_until
from tests.proxy.processes import ROOT, environment
from tests.support.server import LiveServer

CALL_TIMEOUT_SECONDS = 10.0
SERVER_MODULE = "activity_feed.examples.property_mcp"


def through_proxy(feed_url: str, db_path: Path, *options: str, mode: str = "legacy") -> Client:
    parameters = StdioServerParameters(
        command=sys.executable,
        args=[
            "-m",
            "activity_feed.cli.main",
            "proxy",
            "--feed-url",
            feed_url,
            *options,
            "--",
            sys.executable,
            "-m",
            SERVER_MODULE,
        ],
        env=environment(PROPERTY_DB_PATH=str(db_path), PROPERTY_MCP_REPORT_STEP_DELAY="5"),
        cwd=str(ROOT),
    )
    info = Implementation(name="Claude Desktop", version="0.9.2")
    return Client(parameters, mode=mode, client_info=info, read_timeout_seconds=CALL_TIMEOUT_SECONDS)  # type: ignore[arg-type]


def done(*names: str) -> Any:
    def check(found: list[dict[str, Any]]) -> bool:
        finished = {e["tool_name"] for e in found if e["status"] != "pending"}
        return finished.issuperset(names)

    return check


@pytest.mark.parametrize("mode", ["legacy", "auto"])
async def test_the_whole_conversation_is_recorded(sqlite_feed: LiveServer, tmp_path: Path, mode: str) -> None:
    async with through_proxy(sqlite_feed.url, tmp_path / "properties.db", mode=mode) as client:
        await client.call_tool("search_properties", {"city": "Leeds"})
        failed = await client.call_tool("get_property", {"property_id": 999})
        assert failed.is_error
        await client.read_resource("property://102")
        with pytest.raises(MCPError):
            await client.read_resource("property://999")
        await client.get_prompt("viewing_follow_up", {"property_id": "102", "visitor_name": "Jordan Price"})
        with pytest.raises(MCPError, match="timed out"):
            await client.call_tool("portfolio_report", {}, read_timeout_seconds=0.5)
    found = wait_until(
        sqlite_feed.url,
        done(
            "search_properties",
            "get_property",
            "resources/read",
            "prompts/get viewing_follow_up",
            "portfolio_report",
        ),
    )
    assert len({e["session_id"] for e in found}) == 1
    assert {e["user_source"] for e in found} == {"Claude Desktop 0.9.2"}
    assert {e["data"]["mcp"]["source"] for e in found} == {"proxy"}
    assert {e["data"]["mcp"]["transport"] for e in found} == {"stdio"}
    named = by_name(found)
    first = "initialize" if mode == "legacy" else "server/discover"
    assert found[0]["tool_name"] == first
    assert found[0]["status"] == "success"
    if mode == "legacy":
        assert named["initialize"]["data"]["mcp"]["client"] == {"name": "Claude Desktop", "version": "0.9.2"}
    assert named["search_properties"]["status"] == "success"
    assert named["search_properties"]["data"]["arguments"] == {"city": "Leeds"}
    assert named["search_properties"]["data"]["mcp"]["server"]["name"] == "property-management"
    assert named["get_property"]["status"] == "error"
    assert "999" in named["get_property"]["error_message"]
    reads = [e for e in found if e["tool_name"] == "resources/read"]
    assert [(e["status"], e["data"]["mcp"]["target"]) for e in reads] == [
        ("success", "property://102"),
        ("error", "property://999"),
    ]
    error = reads[1]["data"]["mcp"]["error"]
    assert error["code"] == -32602  # the SDK's code for an unknown resource
    assert reads[1]["error_message"] == error["message"]
    assert named["prompts/get viewing_follow_up"]["status"] == "success"
    report = named["portfolio_report"]
    assert report["status"] == "error"
    assert report["error_message"].startswith("cancelled")


async def test_record_tools_keeps_only_tool_calls(sqlite_feed: LiveServer, tmp_path: Path) -> None:
    options = ("--record", "tools", "--source", "ops laptop")
    async with through_proxy(sqlite_feed.url, tmp_path / "properties.db", *options) as client:
        await client.list_tools()
        await client.call_tool("search_properties", {"city": "York"})
        await client.read_resource("property://102")
    found = wait_until(sqlite_feed.url, done("search_properties"))
    assert [(e["tool_name"], e["user_source"]) for e in found] == [("search_properties", "ops laptop")]
