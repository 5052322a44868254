"""DNS rebinding: without a token the feed answers only requests addressed to a loopback name or to a host
in ACTIVITY_FEED_ALLOWED_HOSTS, on every path (REST, docs, page, stream); other Hosts get 421 with a
detail naming the setting. A rebinding page reaches the feed with its own name in `Host`, and is
same-origin with it, so the stream's Origin check must not trust Host either. Over a real server."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from pydantic import SecretStr
from starlette.applications import Starlette
from starlette.routing import WebSocketRoute
from starlette.testclient import TestClient, WebSocketDenialResponse
from starlette.websockets import WebSocket
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from activity_feed.api.auth import TokenAuthMiddleware
from activity_feed.api.feed import ActivityFeed
from activity_feed.settings import Settings
from tests.support.server import LiveServer

WAIT_SECONDS = 5.0
TOKEN = "host-check-token"
FOREIGN = "rebind.example"
PATHS = ["/activities/recent", "/activities/stats", "/health", "/docs", "/openapi.json", "/", "/ui/main.js"]


def sqlite_settings(tmp_path: Path, **fields: Any) -> Settings:
    return Settings(database_url=f"sqlite:///{tmp_path / 'feed.db'}", broadcast_url="memory://", **fields)


@pytest.fixture
def open_feed(live_server: Callable[..., LiveServer], tmp_path: Path) -> LiveServer:
    return live_server(sqlite_settings(tmp_path))


def get(server: LiveServer, path: str, host: str) -> httpx.Response:
    return httpx.get(f"{server.url}{path}", headers={"Host": host}, timeout=WAIT_SECONDS)


def assert_misdirected(response: httpx.Response) -> None:
    assert response.status_code == 421, response.text
    detail = response.json()["detail"]
    assert "ACTIVITY_FEED_ALLOWED_HOSTS" in detail, detail
    assert "ACTIVITY_FEED_TOKEN" in detail, detail


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize(
    "host", [FOREIGN, f"{FOREIGN}:{{port}}", "192.168.1.10:{port}", "localhost.evil.example"]
)
def test_an_open_feed_refuses_other_hosts_on_every_path(open_feed: LiveServer, path: str, host: str) -> None:
    response = get(open_feed, path, host.format(port=open_feed.port))

    assert_misdirected(response)
    assert host.format(port=open_feed.port).partition(":")[0] in response.json()["detail"]


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize(
    "host",
    [
        "127.0.0.1:{port}",
        "127.0.0.1",
        "127.8.9.10:{port}",
        "localhost:{port}",
        "LOCALHOST",
        "[::1]:{port}",
        "[::1]",
        "feed.localhost:{port}",
        "localhost.:{port}",
    ],
)
def test_an_open_feed_answers_loopback_names(open_feed: LiveServer, path: str, host: str) -> None:
    assert get(open_feed, path, host.format(port=open_feed.port)).status_code == 200


def test_a_refused_write_stores_nothing(open_feed: LiveServer) -> None:
    refused = httpx.post(
        f"{open_feed.url}/activities/log",
        json={"event_type": "tool_call"},
        headers={"Host": FOREIGN},
        timeout=WAIT_SECONDS,
    )

    assert_misdirected(refused)
    assert httpx.get(f"{open_feed.url}/activities/recent", timeout=WAIT_SECONDS).json() == []


async def handshake_status(server: LiveServer, host: str, **options: Any) -> int:
    """The stream's handshake addressed to `host` (the connection still goes to the server): 101 when
    accepted, else the refusal's status."""
    url = f"ws://{host}/activities/ws"
    try:
        async with connect(
            url, host="127.0.0.1", port=server.port, open_timeout=WAIT_SECONDS, close_timeout=2, **options
        ):
            return 101
    except InvalidStatus as refused:
        status: int = refused.response.status_code
        return status


async def test_an_open_feed_refuses_the_stream_to_other_hosts(open_feed: LiveServer) -> None:
    assert await handshake_status(open_feed, f"{FOREIGN}:{open_feed.port}") == 421
    # The page's own stream, as a rebinding page would open it: same-origin, with the rebound name.
    origin = f"http://{FOREIGN}:{open_feed.port}"
    assert await handshake_status(open_feed, f"{FOREIGN}:{open_feed.port}", origin=origin) == 421
    assert await handshake_status(open_feed, f"localhost:{open_feed.port}") == 101


@pytest.mark.parametrize(
    ("allowed", "host", "status"),
    [
        ("feed.example", "feed.example:{port}", 200),
        ("feed.example", "FEED.example", 200),
        ("feed.example:9999", "feed.example:{port}", 200),  # ports are ignored
        ("feed.example", "other.example", 421),
        ("feed.example", "sub.feed.example", 421),
        ("*.feed.example", "sub.feed.example:{port}", 200),
        ("*.feed.example", "feed.example", 421),
        ('["a.example", "192.168.1.10"]', "192.168.1.10:{port}", 200),
        ("a.example, [fd00::1]", "[fd00::1]:{port}", 200),
        ("*", "anything.example", 200),
    ],
)
def test_allowed_hosts_are_answered(
    live_server: Callable[..., LiveServer],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    allowed: str,
    host: str,
    status: int,
) -> None:
    monkeypatch.setenv("ACTIVITY_FEED_ALLOWED_HOSTS", allowed)
    server = live_server(sqlite_settings(tmp_path))

    assert get(server, "/activities/recent", host.format(port=server.port)).status_code == status
    assert get(server, "/health", f"localhost:{server.port}").status_code == 200


def test_with_a_token_the_token_decides_whatever_the_host(
    live_server: Callable[..., LiveServer], tmp_path: Path
) -> None:
    # A rebinding page cannot learn the token: the feed sets no cookie, and the page's own token lives in
    # the real origin's storage. So a feed with a token serves any name (a proxy's, a machine's).
    server = live_server(sqlite_settings(tmp_path, token=TOKEN))

    without = get(server, "/activities/recent", FOREIGN)
    with_token = httpx.get(
        f"{server.url}/activities/recent",
        headers={"Host": FOREIGN, "Authorization": f"Bearer {TOKEN}"},
        timeout=WAIT_SECONDS,
    )

    assert without.status_code == 401
    assert with_token.status_code == 200


def test_an_embedding_app_keeps_its_own_routes_for_any_host(
    live_server: Callable[..., LiveServer], tmp_path: Path
) -> None:
    # The app's own routes are its owner's business (it may be served under any name); the feed's
    # endpoints, which hold the data, are checked as in the service.
    app = FastAPI()

    @app.get("/hello")
    async def hello() -> dict[str, str]:
        return {"hello": "world"}

    ActivityFeed(sqlite_settings(tmp_path)).install(app)
    server = live_server(app=app)

    assert get(server, "/hello", FOREIGN).status_code == 200
    assert_misdirected(get(server, "/activities/recent", FOREIGN))
    assert_misdirected(get(server, "/health", FOREIGN))
    assert get(server, "/activities/recent", f"localhost:{server.port}").status_code == 200


async def test_without_a_token_a_loopback_page_on_another_port_may_use_the_stream(
    open_feed: LiveServer,
) -> None:
    # A page of this machine (a local dashboard on another port) is trusted like the feed's own.
    host = f"127.0.0.1:{open_feed.port}"
    assert await handshake_status(open_feed, host, origin="http://localhost:3000") == 101
    assert await handshake_status(open_feed, host, origin=f"http://[::1]:{open_feed.port}") == 101
    assert await handshake_status(open_feed, host, origin="http://evil.example") == 403


def stream_behind_the_token_check(**options: Any) -> TestClient:
    """The stream's Origin check alone (no Host check in front), around a stream that accepts."""

    async def stream(websocket: WebSocket) -> None:
        await websocket.accept()
        await websocket.close()

    app = Starlette(routes=[WebSocketRoute("/activities/ws", stream)])
    return TestClient(TokenAuthMiddleware(app, **options), base_url="http://127.0.0.1")


@pytest.mark.parametrize(
    ("host", "origin", "options", "accepted"),
    [
        # No token: being same-origin proves nothing, since a rebinding page is same-origin with itself.
        (FOREIGN, f"http://{FOREIGN}", {}, False),
        ("feed.example", "http://feed.example", {"allowed_hosts": ["feed.example"]}, True),
        ("127.0.0.1:8000", "http://localhost:8000", {}, True),
        # `*` lets any Host in, as the operator asked; a page of another origin still may not.
        (FOREIGN, f"http://{FOREIGN}", {"allowed_hosts": ["*"]}, True),
        (FOREIGN, "http://other.example", {"allowed_hosts": ["*"]}, False),
        (FOREIGN, "https://dash.example", {"allowed_origins": ["https://dash.example"]}, True),
        # With a token, the page's own origin is enough: the token keeps rebinding pages out.
        (FOREIGN, f"http://{FOREIGN}", {"write_token": TOKEN}, True),
        ("127.0.0.1:8000", "http://localhost:8000", {"write_token": TOKEN}, False),
    ],
)
def test_the_streams_origin_check_does_not_trust_host_alone(
    host: str, origin: str, options: dict[str, Any], accepted: bool
) -> None:
    token = options.pop("write_token", None)
    options["write_token"] = None if token is None else SecretStr(token)
    headers = {"Host": host, "Origin": origin, "Authorization": f"Bearer {TOKEN}"}

    with stream_behind_the_token_check(**options) as client:
        if accepted:
            with client.websocket_connect("/activities/ws", headers=headers):
                pass
        else:
            with (
                pytest.raises(WebSocketDenialResponse) as refused,
                client.websocket_connect("/activities/ws", headers=headers),
            ):
                pass
            assert refused.value.status_code == 403
