"""Connections the server does not hold forever (`activity_feed.api.connections`), through a real server:
silent and half-sent requests are closed after `header_timeout`, idle kept-alive ones after
`keep_alive_timeout`, requests beyond `max_connections` are answered 503, and `serve` raises its own
open-file limit. Stream connections are left alone."""

from __future__ import annotations

import asyncio
import json
import re
import resource
import socket
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path

import httpx
import pytest
from websockets.asyncio.client import connect

from activity_feed.settings import Settings
from tests.support.server import LiveServer
from tests.support.service import ServiceProcess

WAIT_SECONDS = 10.0
# The timeout the tests set, and how late after it the server may close a connection on a busy machine.
TIMEOUT_SECONDS = 1.0
CLOSED_WITHIN_SECONDS = 5.0
HALF_A_REQUEST = b"GET /hea"


@pytest.fixture
def short_timeouts(tmp_path: Path) -> Settings:
    return Settings(
        database_url=f"sqlite:///{tmp_path / 'connections.db'}",
        broadcast_url="memory://",
        header_timeout=TIMEOUT_SECONDS,
        keep_alive_timeout=TIMEOUT_SECONDS,
    )


@asynccontextmanager
async def _raw_connections(
    server: LiveServer, count: int, first_bytes: bytes = b""
) -> AsyncIterator[list[socket.socket]]:
    loop = asyncio.get_running_loop()
    sockets: list[socket.socket] = []
    try:
        for _ in range(count):
            sock = socket.socket()
            sock.setblocking(False)
            sockets.append(sock)
            async with asyncio.timeout(WAIT_SECONDS):
                await loop.sock_connect(sock, ("127.0.0.1", server.port))
                if first_bytes:
                    await loop.sock_sendall(sock, first_bytes)
        yield sockets
    finally:
        for sock in sockets:
            sock.close()


async def _closed_by_server_after(sock: socket.socket, opened: float) -> float:
    """Seconds from `opened` until the server closed `sock` (the read returns end of file)."""
    async with asyncio.timeout(CLOSED_WITHIN_SECONDS + TIMEOUT_SECONDS):
        while True:
            data = await asyncio.get_running_loop().sock_recv(sock, 4096)
            if not data:
                return time.monotonic() - opened


async def test_connections_that_never_complete_their_headers_are_closed_while_health_answers(
    live_server: Callable[..., LiveServer], short_timeouts: Settings
) -> None:
    server = live_server(short_timeouts)
    opened = time.monotonic()
    async with (
        _raw_connections(server, 10) as silent,
        _raw_connections(server, 10, HALF_A_REQUEST) as stalled,
        httpx.AsyncClient(base_url=server.url, timeout=WAIT_SECONDS) as http,
    ):
        assert (await http.get("/health")).status_code == 200  # while all twenty are held open
        closed_after = await asyncio.gather(*(_closed_by_server_after(s, opened) for s in silent + stalled))
        assert (await http.get("/health")).status_code == 200
    assert min(closed_after) >= TIMEOUT_SECONDS * 0.9
    assert max(closed_after) < CLOSED_WITHIN_SECONDS


async def test_a_kept_alive_connection_is_closed_when_idle_or_stalled_in_its_next_request(
    live_server: Callable[..., LiveServer], short_timeouts: Settings
) -> None:
    server = live_server(short_timeouts)
    loop = asyncio.get_running_loop()
    request = b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
    async with _raw_connections(server, 2, request) as (idle, stalled):
        async with asyncio.timeout(WAIT_SECONDS):
            for sock in (idle, stalled):
                assert (await loop.sock_recv(sock, 4096)).startswith(b"HTTP/1.1 200 ")
        answered = time.monotonic()
        await loop.sock_sendall(stalled, HALF_A_REQUEST)  # the next request, never finished
        assert await _closed_by_server_after(idle, answered) < CLOSED_WITHIN_SECONDS
        assert await _closed_by_server_after(stalled, answered) < CLOSED_WITHIN_SECONDS


async def test_a_stream_client_outlives_the_header_timeout(
    live_server: Callable[..., LiveServer], short_timeouts: Settings
) -> None:
    server = live_server(short_timeouts)
    async with (
        connect(f"{server.ws_url}/activities/ws", open_timeout=WAIT_SECONDS) as stream,
        _raw_connections(server, 1) as (silent,),
        httpx.AsyncClient(base_url=server.url, timeout=WAIT_SECONDS) as http,
    ):
        # The silent connection opened after the stream: once it is closed, the stream's timer (had it
        # kept one) would have fired too.
        await _closed_by_server_after(silent, time.monotonic())
        created = await http.post("/activities/log", json={"event_type": "system_event", "tool_name": "late"})
        assert created.status_code == 201
        async with asyncio.timeout(WAIT_SECONDS):
            message = json.loads(await stream.recv())
        assert message["event"]["id"] == created.json()["id"]


async def test_requests_beyond_max_connections_are_answered_503_until_idle_ones_are_closed(
    live_server: Callable[..., LiveServer], short_timeouts: Settings
) -> None:
    server = live_server(short_timeouts.model_copy(update={"max_connections": 5}))
    opened = time.monotonic()
    async with _raw_connections(server, 5) as idle:
        async with httpx.AsyncClient(base_url=server.url, timeout=WAIT_SECONDS) as http:
            assert (await http.get("/health")).status_code == 503
        for sock in idle:
            await _closed_by_server_after(sock, opened)
        async with httpx.AsyncClient(base_url=server.url, timeout=WAIT_SECONDS) as http:
            assert (await http.get("/health")).status_code == 200


@contextmanager
def _serve(tmp_path: Path, *, soft: int, hard: int, **env: str) -> Iterator[ServiceProcess]:
    def low_limit() -> None:  # in the child, before `serve` starts
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))

    service = ServiceProcess(
        f"sqlite:///{tmp_path / 'limits.db'}", tmp_path / "serve.log", extra_env=env, preexec_fn=low_limit
    )
    service.start()
    try:
        yield service
    finally:
        service.stop()


def _open_file_limits(pid: int) -> tuple[int, int]:
    limits = Path(f"/proc/{pid}/limits").read_text()
    match = re.search(r"^Max open files\s+(\d+)\s+(\d+)", limits, re.MULTILINE)
    assert match is not None, limits
    return int(match[1]), int(match[2])


def _hard_limit() -> int:
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    return hard if hard != resource.RLIM_INFINITY else 4096


@pytest.mark.skipif(not Path("/proc/self/limits").exists(), reason="reads /proc/<pid>/limits")
@pytest.mark.skipif(_hard_limit() <= 128, reason="needs a hard open-file limit above 128")
def test_serve_raises_its_open_file_limit_to_the_hard_limit(tmp_path: Path) -> None:
    hard = _hard_limit()
    with _serve(tmp_path, soft=128, hard=hard) as service:
        service.wait_health(lambda answer: answer["http_status"] == 200)
        assert service.process is not None
        assert _open_file_limits(service.process.pid) == (hard, hard)


def test_serve_with_128_descriptors_answers_again_once_150_idle_connections_are_closed(
    tmp_path: Path,
) -> None:
    with _serve(tmp_path, soft=128, hard=128, ACTIVITY_FEED_HEADER_TIMEOUT="1") as service:
        service.wait_health(lambda answer: answer["http_status"] == 200)
        idle = []
        try:
            for _ in range(150):
                idle.append(socket.create_connection(("127.0.0.1", service.port), timeout=WAIT_SECONDS))
            # The server runs out of descriptors; the timeout frees them, and it answers again.
            service.wait_health(lambda answer: answer["http_status"] == 200, timeout=WAIT_SECONDS)
            created = httpx.post(
                f"{service.url}/activities/log",
                json={"event_type": "system_event", "tool_name": "after the crowd"},
                timeout=WAIT_SECONDS,
            )
            assert created.status_code == 201, created.text
        finally:
            for sock in idle:
                sock.close()
        assert "the open-file limit is 128" in service.log()
