"""Hostile stream clients, through a real server: one that never reads, one that sends garbage, and one
process holding hundreds of connections do not change what a well-behaved client receives: every event
posted, exactly, in order.

Every wait is bounded by `asyncio.timeout`; every connection is closed before the server stops.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import os
import resource
import socket
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import ClientConnection, connect

from activity_feed.api.server import WS_MAX_MESSAGE_BYTES
from activity_feed.settings import Settings
from tests.support.server import LiveServer

WAIT_SECONDS = 30.0
# The never-reading client's socket takes in this little; the server's sends to it stall soon after.
_NEVER_READER_RCVBUF = 4096
# How far a stream client may fall behind before the server closes it (Settings.ws_queue_size).
_QUEUE_SIZE = 50
_PADDING = "p" * 60 * 1024  # within the 64 KiB `data` limit
_SMALL_EVENTS = 100
# Each connection costs a descriptor on both ends (the server runs in this process); keep a margin for the
# rest of the test session.
_WANTED_CONNECTIONS = 300
_DESCRIPTOR_MARGIN = 256


def _big_event_count() -> int:
    """Enough large events to fill the never-reading client's socket buffers (the kernel's largest send
    buffer, plus a MiB) and then its queue on the server twice over."""
    wmem = Path("/proc/sys/net/ipv4/tcp_wmem")
    send_buffer = int(wmem.read_text().split()[2]) if wmem.exists() else 4 * 1024 * 1024
    return (send_buffer + 1024 * 1024) // len(_PADDING) + 2 * _QUEUE_SIZE


def _connection_count() -> int:
    soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return _WANTED_CONNECTIONS
    in_use = len(os.listdir("/proc/self/fd")) if os.path.isdir("/proc/self/fd") else 64
    return max(0, min(_WANTED_CONNECTIONS, (soft - in_use - _DESCRIPTOR_MARGIN) // 2))


@pytest.fixture
def hostile_settings(tmp_path: Path) -> Settings:
    return Settings(
        database_url=f"sqlite:///{tmp_path / 'hostile.db'}",
        broadcast_url="memory://",
        ws_queue_size=_QUEUE_SIZE,
    )


def _stream_url(server: LiveServer) -> str:
    return f"{server.ws_url}/activities/ws"


@asynccontextmanager
async def _never_reading_client(server: LiveServer) -> AsyncIterator[None]:
    """A WebSocket handshake by hand on a socket with a tiny receive buffer, then not one byte read."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, _NEVER_READER_RCVBUF)
    sock.setblocking(False)
    try:
        async with asyncio.timeout(WAIT_SECONDS):
            await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", server.port))
            key = base64.b64encode(os.urandom(16)).decode()
            request = (
                f"GET /activities/ws HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\nUpgrade: websocket\r\n"
                f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
            )
            await asyncio.get_running_loop().sock_sendall(sock, request.encode())
            # The status line and headers only (read byte by byte so nothing after them is consumed); the
            # server subscribes the client before it answers 101.
            head = b""
            while not head.endswith(b"\r\n\r\n"):
                chunk = await asyncio.get_running_loop().sock_recv(sock, 1)
                assert chunk, f"the server closed the handshake: {head!r}"
                head += chunk
        assert head.startswith(b"HTTP/1.1 101"), head
        yield
    finally:
        sock.close()


async def _send_garbage(ws: ClientConnection, stop: asyncio.Event) -> int:
    """Text and binary messages of every size up to the limit, until `stop`; returns how many were sent."""
    sizes = [0, 1, 7, 1000, WS_MAX_MESSAGE_BYTES // 2, WS_MAX_MESSAGE_BYTES]
    sent = 0
    while not stop.is_set():
        size = sizes[sent % len(sizes)]
        if sent % 2:
            await ws.send(os.urandom(size))
        else:
            pattern = ['{"type": "subscribe"', "\x00\ufffd\U0001f4a5", "not json ", "[]"][sent // 2 % 4]
            await ws.send(pattern * max(1, size // len(pattern.encode())))
        sent += 1
        await asyncio.sleep(0)  # let the posts and the well-behaved client run between messages
    return sent


async def _post_events(http: httpx.AsyncClient, count: int, *, padding: str) -> list[str]:
    ids: list[str] = []
    for index in range(count):
        response = await http.post(
            "/activities/log",
            json={"event_type": "system_event", "tool_name": "hostile", "data": {"n": index, "pad": padding}},
        )
        assert response.status_code == 201, response.text
        ids.append(response.json()["id"])
    return ids


async def _receive_ids(ws: ClientConnection, count: int) -> list[str]:
    received: list[str] = []
    async with asyncio.timeout(WAIT_SECONDS):
        while len(received) < count:
            message: dict[str, Any] = json.loads(await ws.recv())
            assert message["type"] == "activity_logged", message
            received.append(message["event"]["id"])
    return received


async def _stream_clients(http: httpx.AsyncClient) -> int:
    response = await http.get("/health")
    assert response.status_code == 200, response.text
    count: int = response.json()["stream_clients"]
    return count


async def _wait_for_stream_clients(http: httpx.AsyncClient, expected: int) -> None:
    # Polls /health (a bounded wait, not a sleep-and-hope): each connection subscribes before its 101.
    async with asyncio.timeout(WAIT_SECONDS):
        while True:
            if await _stream_clients(http) == expected:
                return
            await asyncio.sleep(0.02)


@asynccontextmanager
async def _crowd() -> AsyncIterator[list[ClientConnection]]:
    """Connections that never read, closed all at once (one by one, each waits for the server's close)."""
    connections: list[ClientConnection] = []
    try:
        yield connections
    finally:
        async with asyncio.timeout(WAIT_SECONDS):
            await asyncio.gather(*(ws.close() for ws in connections), return_exceptions=True)


class _Errors(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


async def test_hostile_clients_do_not_change_what_a_good_client_receives(
    live_server: Callable[..., LiveServer], hostile_settings: Settings
) -> None:
    connections = _connection_count()
    assert connections >= 100, f"the descriptor limit allows only {connections} connections"
    big_events = _big_event_count()
    total = big_events + _SMALL_EVENTS
    server = live_server(hostile_settings)
    # uvicorn logs an exception that escapes the app here (its loggers do not propagate to pytest's).
    server_errors = _Errors()
    logging.getLogger("uvicorn.error").addHandler(server_errors)
    options: dict[str, Any] = {"open_timeout": WAIT_SECONDS, "close_timeout": 2}

    async with (
        httpx.AsyncClient(base_url=server.url, timeout=WAIT_SECONDS) as http,
        connect(_stream_url(server), **options, max_size=None) as good,
        # Uncompressed, so that each message is on the wire as large as it is (at most 64 KiB): deflate makes
        # random bytes larger, and the server bounds frames as they arrive.
        connect(_stream_url(server), **options, max_size=None, compression=None) as garbage,
        _never_reading_client(server),
        _crowd() as crowd,
    ):
        await _wait_for_stream_clients(http, 3)
        stop_garbage = asyncio.Event()
        garbage_task = asyncio.create_task(_send_garbage(garbage, stop_garbage))
        receiving = asyncio.create_task(_receive_ids(good, total))
        # The garbage sender reads what it is sent: it is still served, and its connection stays open.
        garbage_receiving = asyncio.create_task(_receive_ids(garbage, total))
        try:
            # Large events first, while garbage streams in: the never-reading client's buffers fill, it falls
            # more than `_QUEUE_SIZE` messages behind and the server drops it.
            posted = await _post_events(http, big_events, padding=_PADDING)
            await _wait_for_stream_clients(http, 2)

            # Then hundreds of connections, from this one process, that never read either.
            async with asyncio.timeout(WAIT_SECONDS):
                for _ in range(connections):
                    crowd.append(await connect(_stream_url(server), **options, max_queue=1))
            await _wait_for_stream_clients(http, 2 + connections)
            posted += await _post_events(http, _SMALL_EVENTS, padding="")

            received = await receiving
            received_by_garbage = await garbage_receiving
        finally:
            stop_garbage.set()
            receiving.cancel()
            garbage_receiving.cancel()
            async with asyncio.timeout(WAIT_SECONDS):
                garbage_sent = await garbage_task

        assert garbage.close_code is None, garbage.close_reason
        assert garbage_sent > 0

    # The server has seen every client go (the dropped never-reader's close included) before it is stopped.
    async with httpx.AsyncClient(base_url=server.url, timeout=WAIT_SECONDS) as http:
        await _wait_for_stream_clients(http, 0)
    logging.getLogger("uvicorn.error").removeHandler(server_errors)
    assert [record.getMessage() for record in server_errors.records] == []

    assert received == posted
    assert received_by_garbage == posted
    assert len(set(posted)) == total
