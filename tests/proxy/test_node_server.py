"""A server that is not Python (Node.js, on the official TypeScript SDK) through the proxy, under the
Python SDK's client: the feed holds its conversation as it holds a Python server's.

The SDK comes from the npm registry, installed once into a cache folder outside the repository; where
that cannot be done the tests are skipped with the reason (and fail under CI=true)."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest
from mcp import Client, StdioServerParameters
from mcp.shared.exceptions import MCPError
from mcp_types import Implementation

from tests.proxy.conftest import by_name, settled, wait_until
from tests.proxy.processes import ROOT, environment
from tests.support.node_mcp import NodeUnavailable, install
from tests.support.requirements import unavailable
from tests.support.server import LiveServer

CALL_TIMEOUT_SECONDS = 10.0


@pytest.fixture(scope="module")
def node_server() -> Path:
    try:
        return install()
    except NodeUnavailable as exc:
        unavailable(f"no Node.js MCP server to test with: {exc}")


def through_proxy(feed_url: str, server: Path) -> Client:
    node = shutil.which("node")
    assert node is not None
    parameters = StdioServerParameters(
        command=sys.executable,
        args=["-m", "activity_feed.cli.main", "proxy", "--feed-url", feed_url, "--", node, str(server)],
        env=environment(),
        cwd=str(ROOT),
    )
    info = Implementation(name="Claude Desktop", version="0.9.2")
    return Client(parameters, client_info=info, read_timeout_seconds=CALL_TIMEOUT_SECONDS)


async def test_a_node_server_is_recorded_through_the_proxy(
    sqlite_feed: LiveServer, node_server: Path
) -> None:
    async with through_proxy(sqlite_feed.url, node_server) as client:
        tools = await client.list_tools()
        assert {tool.name for tool in tools.tools} >= {"search", "fail"}
        found = await client.call_tool("search", {"query": "milk"})
        assert not found.is_error
        failed = await client.call_tool("fail", {})
        assert failed.is_error
        note = await client.read_resource("note://1")
        assert note.contents
        with pytest.raises(MCPError):
            await client.read_resource("note://404")
        await client.get_prompt("greet", {"name": "Ada"})
    events = wait_until(sqlite_feed.url, settled(7))
    assert {e["data"]["mcp"]["source"] for e in events} == {"proxy"}
    assert {e["user_source"] for e in events} == {"Claude Desktop 0.9.2"}
    assert len({e["session_id"] for e in events}) == 1
    named = by_name(events)
    assert named["initialize"]["data"]["mcp"]["server"] == {"name": "node-notes", "version": "1.0.0"}
    assert named["search"]["data"]["arguments"] == {"query": "milk"}
    assert named["search"]["data"]["result"] == "found milk"
    assert named["search"]["data"]["mcp"]["server"]["name"] == "node-notes"
    assert named["fail"]["status"] == "error"
    assert named["fail"]["error_message"] == "the node tool failed on purpose"
    assert named["tools/list"]["status"] == "success"
    reads = [e for e in events if e["tool_name"] == "resources/read"]
    assert [(e["status"], e["data"]["mcp"]["target"]) for e in reads] == [
        ("success", "note://1"),
        ("error", "note://404"),
    ]
    assert "no note 404" in reads[1]["error_message"]
    assert isinstance(reads[1]["data"]["mcp"]["error"]["code"], int)
    assert named["prompts/get greet"]["status"] == "success"
