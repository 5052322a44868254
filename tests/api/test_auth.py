"""Tokens over a real server: every endpoint without a token, with the read token, the write token and a
wrong one; the stream with the token in its header or query, and its Origin check. SQLite only: this is
about HTTP, not storage."""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import InvalidStatus

from activity_feed import FeedClient
from activity_feed.settings import Settings
from tests.support.server import LiveServer

WRITE = "write-token-for-tests"
READ = "read-token-for-tests"
WAIT_SECONDS = 5.0


@pytest.fixture
def secured(live_server: Callable[..., LiveServer], tmp_path: Path) -> LiveServer:
    settings = Settings(
        database_url=f"sqlite:///{tmp_path / 'feed.db'}",
        broadcast_url="memory://",
        token=WRITE,
        read_token=READ,
        allowed_origins="https://dash.example",
    )
    return live_server(settings)


@pytest.fixture
def http(secured: LiveServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=secured.url, timeout=WAIT_SECONDS) as client:
        yield client


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@dataclass(frozen=True)
class Call:
    method: str
    path: str  # `{id}` is replaced by an existing event's id
    success: int
    write: bool
    body: dict[str, Any] | None = None


CALLS = [
    Call("GET", "/activities/recent", 200, write=False),
    Call("GET", "/activities/stats", 200, write=False),
    Call("GET", "/activities/{id}", 200, write=False),
    Call("POST", "/activities/log", 201, write=True, body={"event_type": "system_event"}),
    Call("POST", "/activities/batch", 200, write=True, body={"events": [{"event_type": "system_event"}]}),
    Call("PATCH", "/activities/{id}", 200, write=True, body={"status": "success"}),
    Call("DELETE", "/activities/{id}", 204, write=True),
]


def existing_event(http: httpx.Client) -> str:
    created = http.post("/activities/log", json={"event_type": "tool_call"}, headers=bearer(WRITE))
    assert created.status_code == 201, created.text
    event_id: str = created.json()["id"]
    return event_id


def send(http: httpx.Client, call: Call, headers: dict[str, str]) -> httpx.Response:
    path = call.path.replace("{id}", existing_event(http))
    return http.request(call.method, path, json=call.body, headers=headers)


def assert_unauthorised(response: httpx.Response) -> None:
    assert response.status_code == 401, response.text
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert isinstance(response.json()["detail"], str)


@pytest.mark.parametrize("call", CALLS, ids=lambda c: f"{c.method} {c.path}")
def test_without_a_token_every_feed_endpoint_answers_401(http: httpx.Client, call: Call) -> None:
    assert_unauthorised(send(http, call, {}))


@pytest.mark.parametrize("call", CALLS, ids=lambda c: f"{c.method} {c.path}")
@pytest.mark.parametrize(
    "headers",
    [bearer("wrong"), bearer(WRITE + "x"), {"Authorization": WRITE}, {"Authorization": f"Basic {WRITE}"}],
    ids=["wrong", "longer", "no-scheme", "basic"],
)
def test_a_wrong_token_answers_401(http: httpx.Client, call: Call, headers: dict[str, str]) -> None:
    assert_unauthorised(send(http, call, headers))


@pytest.mark.parametrize("call", CALLS, ids=lambda c: f"{c.method} {c.path}")
def test_the_read_token_reads_but_cannot_write(http: httpx.Client, call: Call) -> None:
    response = send(http, call, bearer(READ))

    if call.write:
        assert response.status_code == 403, response.text
        assert "read token" in response.json()["detail"]
    else:
        assert response.status_code == call.success, response.text


@pytest.mark.parametrize("call", CALLS, ids=lambda c: f"{c.method} {c.path}")
def test_the_write_token_does_everything(http: httpx.Client, call: Call) -> None:
    response = send(http, call, bearer(WRITE))

    assert response.status_code == call.success, response.text


def test_a_refused_write_changes_nothing(http: httpx.Client) -> None:
    event_id = existing_event(http)

    http.patch(f"/activities/{event_id}", json={"status": "error"}, headers=bearer(READ))
    http.delete(f"/activities/{event_id}")
    http.post("/activities/log", json={"event_type": "tool_call"}, headers=bearer("wrong"))

    events = http.get("/activities/recent", headers=bearer(READ)).json()
    assert [(event["id"], event["status"]) for event in events] == [(event_id, "pending")]


@pytest.mark.parametrize("path", ["/health", "/", "/ui/api.js"])
def test_health_and_the_page_need_no_token(http: httpx.Client, path: str) -> None:
    # The page holds no data: it asks for a token when its first API call answers 401.
    assert http.get(path).status_code == 200


def stream_url(server: LiveServer, **query: str) -> str:
    return str(httpx.URL(f"{server.ws_url}/activities/ws", params=query))


async def stream_is_open(url: str, **options: Any) -> None:
    """Complete the handshake (or raise), then close."""
    async with connect(url, open_timeout=WAIT_SECONDS, close_timeout=2, **options):
        pass


async def refused_status(url: str, **options: Any) -> int:
    with pytest.raises(InvalidStatus) as refused:
        async with connect(url, open_timeout=WAIT_SECONDS, close_timeout=2, **options):
            pass
    status: int = refused.value.response.status_code
    return status


@pytest.mark.parametrize("token", [WRITE, READ], ids=["write", "read"])
async def test_the_stream_takes_the_token_in_the_header(secured: LiveServer, token: str) -> None:
    await stream_is_open(stream_url(secured), additional_headers=bearer(token))


@pytest.mark.parametrize("token", [WRITE, READ], ids=["write", "read"])
async def test_the_stream_takes_the_token_in_the_query(secured: LiveServer, token: str) -> None:
    await stream_is_open(stream_url(secured, token=token))


async def test_the_stream_delivers_to_a_client_with_the_read_token(secured: LiveServer) -> None:
    async with connect(stream_url(secured, token=READ), open_timeout=WAIT_SECONDS, close_timeout=2) as ws:
        async with httpx.AsyncClient(base_url=secured.url, timeout=WAIT_SECONDS) as http:
            created = await http.post(
                "/activities/log", json={"event_type": "tool_call"}, headers=bearer(WRITE)
            )
        message = await _recv(ws)

    assert created.status_code == 201
    assert message["type"] == "activity_logged"
    assert message["event"]["id"] == created.json()["id"]


async def _recv(ws: ClientConnection) -> dict[str, Any]:
    async with asyncio.timeout(WAIT_SECONDS):
        message: dict[str, Any] = json.loads(await ws.recv())
    return message


@pytest.mark.parametrize(
    ("query", "headers"),
    [({}, {}), ({"token": "wrong"}, {}), ({}, bearer("wrong")), ({"token": ""}, {})],
    ids=["none", "wrong-query", "wrong-header", "empty-query"],
)
async def test_the_stream_refuses_a_missing_or_wrong_token(
    secured: LiveServer, query: dict[str, str], headers: dict[str, str]
) -> None:
    assert await refused_status(stream_url(secured, **query), additional_headers=headers) == 401


@pytest.mark.parametrize("origin", ["https://evil.example", "http://127.0.0.1:1", "null"])
async def test_the_stream_refuses_a_foreign_origin_even_with_a_token(
    secured: LiveServer, origin: str
) -> None:
    # A page on another site could otherwise use a token the browser gave it, or a token-less local feed.
    status = await refused_status(stream_url(secured, token=WRITE), origin=origin)

    assert status == 403


async def test_the_stream_accepts_its_own_and_allowed_origins(secured: LiveServer) -> None:
    await stream_is_open(stream_url(secured, token=READ), origin=f"http://127.0.0.1:{secured.port}")
    await stream_is_open(stream_url(secured, token=READ), origin="https://dash.example")


async def test_an_open_feed_still_checks_the_streams_origin(
    live_server: Callable[..., LiveServer], tmp_path: Path
) -> None:
    server = live_server(Settings(database_url=f"sqlite:///{tmp_path / 'open.db'}"))

    await stream_is_open(stream_url(server))
    assert await refused_status(stream_url(server), origin="https://evil.example") == 403


@pytest.fixture
def captured_server_logs() -> Iterator[list[logging.LogRecord]]:
    """Every record uvicorn logs about requests and handshakes, at INFO (the test servers log warnings)."""
    records: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    handler = Keep()
    loggers = [logging.getLogger(name) for name in ("uvicorn.error", "uvicorn.access")]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
    yield records
    for logger, level in zip(loggers, levels, strict=True):
        logger.removeHandler(handler)
        logger.setLevel(level)


async def test_tokens_in_the_query_never_reach_the_server_log(
    secured: LiveServer, captured_server_logs: list[logging.LogRecord]
) -> None:
    await stream_is_open(stream_url(secured, token=READ))
    async with httpx.AsyncClient(base_url=secured.url, timeout=WAIT_SECONDS) as http:
        await http.get("/activities/recent", params={"token": WRITE}, headers=bearer(WRITE))
        # The access log is written after the response: a second request orders the first one's line.
        await http.get("/health")

    lines = [record.getMessage() for record in captured_server_logs]
    assert any("/activities/ws?token=[redacted]" in line for line in lines), lines
    assert any("/activities/recent?token=[redacted]" in line for line in lines), lines
    assert not [line for line in lines if READ in line or WRITE in line]


def test_feed_client_sends_the_token_from_the_environment(
    http: httpx.Client, secured: LiveServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ACTIVITY_FEED_TOKEN", WRITE)
    client = FeedClient(secured.url)
    try:
        event_id = client.log(event_type="tool_call", tool_name="with-token")
        client.update(event_id, status="success", duration_ms=3)
        assert client.flush(timeout=WAIT_SECONDS)
    finally:
        client.close()

    stored = http.get(f"/activities/{event_id}", headers=bearer(READ))
    assert stored.status_code == 200, stored.text
    assert stored.json()["status"] == "success"


def test_feed_client_with_the_read_token_has_its_events_refused(
    http: httpx.Client, secured: LiveServer
) -> None:
    client = FeedClient(secured.url, token=READ)
    try:
        client.log(event_type="tool_call", id=uuid.uuid4())
        client.flush(timeout=WAIT_SECONDS)
    finally:
        client.close()

    assert http.get("/activities/recent", headers=bearer(WRITE)).json() == []
