"""`/mcp` of the service: the same tools over streamable HTTP, reading the feed in process, behind the
feed's own guards (tokens, the Host check, JSON bodies), and a clear 501 without the `mcp` extra."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import httpx2
import orjson
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from activity_feed.api import create_app
from activity_feed.cli.main import main
from activity_feed.settings import Settings
from tests.feed_mcp.conftest import READ_TOKEN, WRITE_TOKEN, seed
from tests.feed_mcp.test_tools import TOOLS, call, error
from tests.support.server import LiveServer

WAIT_SECONDS = 20.0
INITIALIZE = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {
        "protocolVersion": "2025-06-18",
        "capabilities": {},
        "clientInfo": {"name": "raw", "version": "1"},
    },
}
MCP_HEADERS = {"Content-Type": "application/json", "Accept": "application/json, text/event-stream"}


@asynccontextmanager
async def http_client(url: str, *, token: str | None = None, mode: str = "legacy") -> AsyncIterator[Client]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with httpx2.AsyncClient(headers=headers, timeout=WAIT_SECONDS) as http:
        transport = streamable_http_client(f"{url}/mcp", http_client=http)
        async with Client(transport, mode=mode) as client:  # type: ignore[arg-type]
            yield client


async def post(url: str, body: bytes, headers: dict[str, str]) -> httpx.Response:
    async with httpx.AsyncClient(timeout=WAIT_SECONDS) as http:
        return await http.post(f"{url}/mcp", content=body, headers=headers)


async def initialize(url: str, **headers: str) -> httpx.Response:
    return await post(url, orjson.dumps(INITIALIZE), {**MCP_HEADERS, **headers})


async def test_with_tokens_mcp_needs_one_and_the_read_token_is_enough(guarded_feed: LiveServer) -> None:
    refused = await initialize(guarded_feed.url)
    assert refused.status_code == 401
    assert refused.json() == {"detail": "a token is required: send `Authorization: Bearer <token>`"}
    assert refused.headers["WWW-Authenticate"].startswith("Bearer")
    assert (await initialize(guarded_feed.url, Authorization="Bearer wrong")).status_code == 401
    assert (await initialize(guarded_feed.url, Authorization=f"Bearer {WRITE_TOKEN}")).status_code == 200

    async with http_client(guarded_feed.url, token=READ_TOKEN) as client:
        assert sorted(tool.name for tool in (await client.list_tools()).tools) == sorted(TOOLS)
        answer, text = await call(client, "tool_stats", since="1h")
        assert {tool["tool_name"]: (tool["count"], tool["errors"]) for tool in answer["tools"]} == {
            "search_properties": (2, 1),
            "get_property": (1, 0),
        }
        assert text.startswith("3 events counted since ")
        answer, _ = await call(client, "recent_activity", status="error", since="1h")
        assert [event["error_message"] for event in answer["events"]] == ["timeout after 5 s"]
        assert "since: not a time or a duration: 'yesterday'" in await error(
            client, "recent_activity", since="yesterday"
        )


async def test_without_a_token_mcp_is_open_to_loopback_and_allowed_hosts_only(
    live_server: Callable[..., LiveServer], tmp_path: Path
) -> None:
    database_url = f"sqlite:///{tmp_path / 'feed.db'}"
    settings = Settings(database_url=database_url, broadcast_url="memory://", allowed_hosts=["feed.lan"])
    feed = live_server(settings)
    events = seed(feed)
    # The 2026 protocol (each request stands alone) and the initialize handshake alike.
    for mode in ("auto", "legacy"):
        async with http_client(feed.url, mode=mode) as client:
            answer, _ = await call(client, "session_activity", session_id="sess-b")
            assert answer["events"] == [event for event in events if event["session_id"] == "sess-b"]
            assert "no event with id" in await error(
                client, "get_activity", id="01936f4c-8a3e-7c2b-9a41-1f2e3d4c5b6a"
            )

    assert (await initialize(feed.url, Host=f"feed.lan:{feed.port}")).status_code == 200
    rebound = await initialize(feed.url, Host="attacker.example")
    assert rebound.status_code == 421
    assert "add it to ACTIVITY_FEED_ALLOWED_HOSTS" in rebound.json()["detail"]
    # A page may send a text/plain POST anywhere without asking first: the feed takes JSON only.
    form = await post(feed.url, b"{}", {"Content-Type": "text/plain"})
    assert form.status_code == 415
    assert "send `Content-Type: application/json`" in form.json()["detail"]
    # No event stream to hold open (the tools send no notifications): the protocol's 405.
    async with httpx.AsyncClient(timeout=WAIT_SECONDS) as http:
        for method in ("GET", "DELETE"):
            answer = await http.request(method, f"{feed.url}/mcp", headers={"Accept": "text/event-stream"})
            assert (answer.status_code, answer.headers["Allow"]) == (405, "POST")


async def test_without_the_mcp_extra_mcp_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(sys.modules, "mcp", None)  # as if not installed: importing it fails
    app = create_app(Settings(database_url=f"sqlite:///{tmp_path / 'feed.db'}"))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as http:
        answer = await http.post("/mcp", json=INITIALIZE, headers=MCP_HEADERS)
    assert answer.status_code == 501
    detail = (
        "this feed serves no MCP endpoint: "
        "install the mcp extra (pip install '.[mcp]' in Activity Feed's folder)"
    )
    assert answer.json() == {"detail": detail}

    assert main(["mcp"]) == 1
    expected = (
        "activity-feed mcp: the MCP server needs the mcp extra: "
        "pip install '.[mcp]' in Activity Feed's folder\n"
    )
    assert capsys.readouterr().err == expected


def test_the_service_loads_the_mcp_sdk_only_when_mcp_is_first_asked(tmp_path: Path) -> None:
    # Most feeds never serve /mcp: the SDK's modules (tens of MB) must not be in every service's memory.
    script = (
        "import sys\n"
        "from activity_feed.api import create_app\n"
        "from activity_feed.settings import Settings\n"
        f"create_app(Settings(database_url='sqlite:///{tmp_path / 'feed.db'}'))\n"
        "print(sorted(name for name in sys.modules if name == 'mcp' or name.startswith('mcp.')))\n"
    )
    found = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=True
    )
    assert found.stdout.strip() == "[]", found.stdout
