"""`activity-feed proxy --upstream` as a real process in front of a real streamable-HTTP MCP server (the
official SDK's, under uvicorn), driven by the SDK's own HTTP client: the conversation is recorded with
the server's `Mcp-Session-Id` as its session, answers in JSON and in SSE, the server's own requests paired
with the client's answers, `Authorization` passed on and never stored, upstream errors passed back, and a
feed that is down or hanging changes nothing."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
import httpx
import httpx2
import orjson
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp_types import CreateMessageResult, Implementation, TextContent

from tests.proxy.conftest import by_name, stored, wait_until
from tests.proxy.http_peers import WAIT_SECONDS, HeaderWitness, NoDiscovery, ProxyProcess, mcp_server
from tests.proxy.processes import ROOT, environment
from tests.support.peers import HangingServer
from tests.support.server import LiveServer, free_port

CLIENT = Implementation(name="Claude Desktop", version="0.9.2")
TOKEN = "Bearer sk-proxytest-4f1b2c3d4e5f60718293a4b5c6d7e8f9"
DROP_LINE = "event writes were not recorded in the feed"


@pytest.fixture
def json_upstream(live_server: Callable[..., LiveServer]) -> tuple[str, HeaderWitness]:
    witness = HeaderWitness(mcp_server().streamable_http_app(json_response=True))
    return f"{live_server(app=witness).url}/mcp", witness


@pytest.fixture
def sse_upstream(live_server: Callable[..., LiveServer]) -> tuple[str, HeaderWitness]:
    witness = HeaderWitness(mcp_server().streamable_http_app())
    return f"{live_server(app=witness).url}/mcp", witness


@pytest.fixture
def proxies() -> Iterator[Callable[..., ProxyProcess]]:
    started: list[ProxyProcess] = []

    def start(upstream: str, feed_url: str, *options: str) -> ProxyProcess:
        proxy = ProxyProcess(upstream, feed_url, options)
        started.append(proxy)
        return proxy

    yield start
    for proxy in started:
        proxy.stop(signal.SIGKILL)


@asynccontextmanager
async def client(url: str, *, mode: str = "legacy", **options: Any) -> AsyncIterator[Client]:
    """The SDK's client over streamable HTTP, sending `Authorization` with every request."""
    async with httpx2.AsyncClient(headers={"Authorization": TOKEN}, timeout=WAIT_SECONDS) as http:
        transport = streamable_http_client(url, http_client=http)
        async with Client(transport, mode=mode, client_info=CLIENT, **options) as connected:  # type: ignore[arg-type]
            yield connected


def session_ids(witness: HeaderWitness) -> set[bytes]:
    return {value for headers in witness.responses for name, value in headers if name == b"mcp-session-id"}


def finished(*names: str) -> Callable[[list[dict[str, Any]]], bool]:
    def check(found: list[dict[str, Any]]) -> bool:
        return {e["tool_name"] for e in found if e["status"] != "pending"}.issuperset(names)

    return check


@pytest.mark.parametrize("options", [(), ("--busy-poll", "0")], ids=["default", "no-busy-poll"])
async def test_json_answers_are_recorded_in_the_session_the_server_named(
    sqlite_feed: LiveServer,
    json_upstream: tuple[str, HeaderWitness],
    proxies: Callable[..., ProxyProcess],
    options: tuple[str, ...],
) -> None:
    upstream, witness = json_upstream
    proxy = proxies(upstream, sqlite_feed.url, *options)
    async with client(f"{proxy.url}/mcp") as mcp:
        assert (await mcp.call_tool("echo", {"text": "hello"})).content[0].text == "hello"  # type: ignore[union-attr]
        assert (await mcp.call_tool("broken", {})).is_error
    found = wait_until(sqlite_feed.url, finished("initialize", "echo", "broken"))
    (session,) = session_ids(witness)
    named = by_name(found)
    for event in found:
        assert event["session_id"] == session.decode()
        assert event["user_source"] == "Claude Desktop 0.9.2"
        assert event["data"]["mcp"]["transport"] == "http"
        assert event["data"]["mcp"]["source"] == "proxy"
        assert event["data"]["mcp"]["direction"] == "client_to_server"
    assert named["initialize"]["data"]["mcp"]["server"] == {"name": "http-peer", "version": "2.0.1"}
    assert (named["echo"]["status"], named["echo"]["data"]["result"]) == ("success", "hello")
    assert named["echo"]["data"]["arguments"] == {"text": "hello"}
    assert named["broken"]["status"] == "error"
    assert named["broken"]["error_message"] == "Error executing tool broken"  # what the client was told
    # The client's GET stream and its DELETE at the end went through, with the session.
    methods = [method for method, _ in witness.requests]
    assert "GET" in methods
    assert methods[-1] == "DELETE"
    code, err = proxy.stop()
    assert code == 0, err


async def test_sse_answers_progress_and_a_large_result(
    sqlite_feed: LiveServer, sse_upstream: tuple[str, HeaderWitness], proxies: Callable[..., ProxyProcess]
) -> None:
    upstream, witness = sse_upstream
    proxy = proxies(upstream, sqlite_feed.url, "--record", "all")
    progress: list[float] = []

    async def on_progress(value: float, total: float | None, message: str | None) -> None:
        progress.append(value)

    async with client(f"{proxy.url}/mcp") as mcp:
        counted = await mcp.call_tool("count", {"steps": 3}, progress_callback=on_progress)
        assert counted.content[0].text == "counted 3"  # type: ignore[union-attr]
        large = await mcp.call_tool("large", {"size": 400_000})
        assert large.content[0].text == "x" * 400_000  # type: ignore[union-attr]
    assert progress == [1, 2, 3]
    found = wait_until(sqlite_feed.url, finished("count", "large"))
    (session,) = session_ids(witness)
    named = by_name(found)
    assert named["count"]["status"] == "success"
    assert named["large"]["status"] == "success"
    assert len(named["large"]["data"]["result"]) < 10_000  # a preview
    notes = [e for e in found if e["tool_name"] == "notifications/progress"]
    assert len(notes) == 3
    assert {e["data"]["mcp"]["direction"] for e in notes} == {"server_to_client"}
    assert {e["session_id"] for e in found} == {session.decode()}


async def test_the_get_stream_carries_the_servers_own_notifications(
    sqlite_feed: LiveServer, sse_upstream: tuple[str, HeaderWitness], proxies: Callable[..., ProxyProcess]
) -> None:
    upstream, witness = sse_upstream
    proxy = proxies(upstream, sqlite_feed.url, "--record", "all")
    heard = anyio.Event()

    async def on_message(message: Any) -> None:
        if "ToolListChanged" in type(getattr(message, "root", message)).__name__:
            heard.set()

    async with client(f"{proxy.url}/mcp", message_handler=on_message) as mcp:
        # The server can only use the stream once the client has opened it: ask until it has.
        with anyio.fail_after(WAIT_SECONDS):
            while not heard.is_set():
                await mcp.call_tool("announce", {})
                with anyio.move_on_after(0.2):
                    await heard.wait()
    found = wait_until(
        sqlite_feed.url,
        lambda found: any(e["tool_name"] == "notifications/tools/list_changed" for e in found),
    )
    (session,) = session_ids(witness)
    note = next(e for e in found if e["tool_name"] == "notifications/tools/list_changed")
    assert note["event_type"] == "mcp_notification"
    assert note["data"]["mcp"]["direction"] == "server_to_client"
    assert note["session_id"] == session.decode()
    get = [headers for method, headers in witness.requests if method == "GET"]
    assert get
    assert (b"mcp-session-id", session) in get[0]


# Sampling is deprecated by the 2026 protocol; handshake-era servers still ask for it.
@pytest.mark.filterwarnings("ignore::mcp.shared.exceptions.MCPDeprecationWarning")
async def test_a_request_from_the_server_is_paired_with_the_clients_answer(
    sqlite_feed: LiveServer, sse_upstream: tuple[str, HeaderWitness], proxies: Callable[..., ProxyProcess]
) -> None:
    upstream, _ = sse_upstream
    proxy = proxies(upstream, sqlite_feed.url)

    async def sample(context: Any, params: Any) -> CreateMessageResult:
        return CreateMessageResult(
            role="assistant", content=TextContent(type="text", text="a bright flat"), model="m"
        )

    async with client(f"{proxy.url}/mcp", sampling_callback=sample) as mcp:
        drafted = await mcp.call_tool("draft", {"topic": "Leeds"})
        assert drafted.content[0].text == "a bright flat"  # type: ignore[union-attr]
    named = by_name(wait_until(sqlite_feed.url, finished("draft", "sampling/createMessage")))
    sampling = named["sampling/createMessage"]
    assert sampling["status"] == "success"
    assert sampling["data"]["mcp"]["direction"] == "server_to_client"
    assert sampling["session_id"] == named["draft"]["session_id"] is not None
    assert named["draft"]["status"] == "success"


async def test_authorization_reaches_the_upstream_and_is_stored_nowhere(
    sqlite_feed: LiveServer, sse_upstream: tuple[str, HeaderWitness], proxies: Callable[..., ProxyProcess]
) -> None:
    upstream, witness = sse_upstream
    proxy = proxies(upstream, sqlite_feed.url, "--record", "all")
    async with client(f"{proxy.url}/mcp") as mcp:
        await mcp.call_tool("echo", {"text": "hi"})
    wait_until(sqlite_feed.url, finished("echo"))
    assert witness.requests
    for _, headers in witness.requests:
        assert (b"authorization", TOKEN.encode()) in headers
    everything = json.dumps(stored(sqlite_feed.url))
    assert TOKEN.split()[1] not in everything
    assert "Bearer" not in everything


async def test_upstream_errors_come_back_unchanged_and_are_recorded(
    sqlite_feed: LiveServer, sse_upstream: tuple[str, HeaderWitness], proxies: Callable[..., ProxyProcess]
) -> None:
    upstream, _ = sse_upstream
    proxy = proxies(upstream, sqlite_feed.url)
    call = {"jsonrpc": "2.0", "id": 5, "method": "tools/call", "params": {"name": "echo", "arguments": {}}}
    headers = {
        "content-type": "application/json",
        "accept": "application/json, text/event-stream",
        "mcp-session-id": "no-such-session",
        "mcp-protocol-version": "2025-06-18",
    }
    no_session = {name: value for name, value in headers.items() if name != "mcp-session-id"}
    cases = [(orjson.dumps(call), headers), (b"{not json", no_session), (b"[]", no_session)]
    answers: list[bytes] = []
    async with httpx.AsyncClient(timeout=WAIT_SECONDS) as http:
        for body, sent in cases:
            direct = await http.post(upstream, content=body, headers=sent)
            answers.append(direct.content)
            relayed = await http.post(f"{proxy.url}/mcp", content=body, headers=sent)
            assert direct.status_code >= 400
            assert (relayed.status_code, relayed.content) == (direct.status_code, direct.content)
            assert relayed.headers["content-type"] == direct.headers["content-type"]
    direct_first = answers[0]
    event = wait_until(sqlite_feed.url, finished("echo"))[0]
    assert event["status"] == "error"
    assert event["session_id"] == "no-such-session"
    # The JSON-RPC error the upstream answered with (and the SDK's client reports).
    assert json.loads(direct_first)["error"] == event["data"]["mcp"]["error"]
    assert event["error_message"] == event["data"]["mcp"]["error"]["message"]


async def test_a_server_without_discovery_is_a_fallback_not_an_error(
    sqlite_feed: LiveServer, live_server: Callable[..., LiveServer], proxies: Callable[..., ProxyProcess]
) -> None:
    """The SDK's client probes `server/discover` first; a server of the handshake era may refuse it
    with any JSON-RPC error (here as the TypeScript SDK's does), and the client falls back to
    `initialize`. That answer is recorded as what it is, the fallback, and counts as no failure."""
    upstream = NoDiscovery(mcp_server().streamable_http_app(json_response=True))
    proxy = proxies(f"{live_server(app=upstream).url}/mcp", sqlite_feed.url)
    async with client(f"{proxy.url}/mcp", mode="auto") as mcp:
        assert (await mcp.call_tool("echo", {"text": "hi"})).content[0].text == "hi"  # type: ignore[union-attr]
    assert upstream.refused == 1
    found = wait_until(sqlite_feed.url, finished("server/discover", "initialize", "echo"))
    named = by_name(found)
    assert [named[name]["status"] for name in ("server/discover", "initialize", "echo")] == ["success"] * 3
    assert named["server/discover"]["error_message"] is None


async def test_an_upstream_that_is_down_gets_a_recorded_502(
    sqlite_feed: LiveServer, proxies: Callable[..., ProxyProcess]
) -> None:
    proxy = proxies(f"http://127.0.0.1:{free_port()}/mcp", sqlite_feed.url)
    call = {"jsonrpc": "2.0", "id": 9, "method": "tools/call", "params": {"name": "echo", "arguments": {}}}
    async with httpx.AsyncClient(timeout=WAIT_SECONDS) as http:
        response = await http.post(f"{proxy.url}/mcp", content=orjson.dumps(call))
    assert response.status_code == 502
    assert response.json()["id"] == 9
    event = wait_until(sqlite_feed.url, finished("echo"))[0]
    assert event["status"] == "error"
    assert "unreachable" in event["error_message"]
    assert event["data"]["mcp"]["error"]["code"] == -32000
    # A probe that never reached a server is no fallback: it failed, like every other request.
    probe = {"jsonrpc": "2.0", "id": 10, "method": "server/discover", "params": {}}
    async with httpx.AsyncClient(timeout=WAIT_SECONDS) as http:
        assert (await http.post(f"{proxy.url}/mcp", content=orjson.dumps(probe))).status_code == 502
    event = wait_until(sqlite_feed.url, finished("server/discover"))[0]
    assert event["status"] == "error"
    assert "unreachable" in event["error_message"]


@pytest.fixture
def hanging() -> Iterator[HangingServer]:
    server = HangingServer()
    yield server
    server.stop()


@pytest.mark.parametrize("situation", ["refused", "hanging"])
async def test_a_feed_that_is_down_or_hanging_changes_nothing(
    situation: str,
    hanging: HangingServer,
    sse_upstream: tuple[str, HeaderWitness],
    proxies: Callable[..., ProxyProcess],
) -> None:
    upstream, _ = sse_upstream
    feed = hanging.url if situation == "hanging" else f"http://127.0.0.1:{free_port()}"
    proxy = proxies(upstream, feed)
    async with client(f"{proxy.url}/mcp") as mcp:
        for number in range(20):
            answer = await mcp.call_tool("echo", {"text": f"call {number}"})
            assert answer.content[0].text == f"call {number}"  # type: ignore[union-attr]
    code, err = proxy.stop(signal.SIGTERM)
    assert code == 0, err
    assert err.count(DROP_LINE) == 1, err


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
async def test_a_signal_stops_the_proxy_cleanly_with_a_stream_open(
    signum: signal.Signals,
    sqlite_feed: LiveServer,
    sse_upstream: tuple[str, HeaderWitness],
    proxies: Callable[..., ProxyProcess],
) -> None:
    upstream, witness = sse_upstream
    proxy = proxies(upstream, sqlite_feed.url)
    async with client(f"{proxy.url}/mcp") as mcp:
        await mcp.call_tool("echo", {"text": "hi"})
        assert any(method == "GET" for method, _ in witness.requests)  # the client's stream is open
        code, err = proxy.stop(signum)
    assert code == 0, err
    assert "Traceback" not in err


def _proxy_exit(*args: str) -> tuple[int, str]:
    command = [sys.executable, "-m", "activity_feed.cli.main", "proxy", *args]
    done = subprocess.run(command, capture_output=True, env=environment(), cwd=ROOT, timeout=WAIT_SECONDS)
    return done.returncode, done.stderr.decode()


def test_usage_errors_say_what_is_wrong(hanging: HangingServer) -> None:
    code, err = _proxy_exit("--upstream", "ftp://example.com/mcp", "--feed-url", hanging.url)
    assert code == 2
    assert "http:// or https://" in err
    code, err = _proxy_exit("--upstream", "http://127.0.0.1:1/mcp", "--", "node", "server.mjs")
    assert code == 2
    assert "not both" in err
    code, err = _proxy_exit(
        "--upstream", "http://127.0.0.1:1/mcp", "--port", str(hanging.port), "--feed-url", hanging.url
    )
    assert code == 1
    assert f"cannot listen on 127.0.0.1:{hanging.port}" in err
