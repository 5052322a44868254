"""Heavy reads through a real server: replays and statistics take turns, statistics cover a bounded
window and say which, and /health keeps answering however many heavy reads are waiting."""

from __future__ import annotations

import asyncio
import json
import socket
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

import asyncpg
import httpx
import pytest
from sqlalchemy.engine import make_url
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed
from websockets.frames import Close

from activity_feed.settings import Settings
from tests.support.server import LiveServer

WAIT_SECONDS = 10.0
T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
Message = dict[str, Any]


def stream_url(server: LiveServer, **query: str) -> str:
    return f"{server.ws_url}/activities/ws?{urlencode(query)}"


@asynccontextmanager
async def rest_client(
    server: LiveServer, read_seconds: float = WAIT_SECONDS
) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=server.url, timeout=read_seconds) as client:
        yield client


async def next_message(ws: ClientConnection) -> Message:
    async with asyncio.timeout(WAIT_SECONDS):
        message = json.loads(await ws.recv())
    assert isinstance(message, dict)
    return message


async def close_frame(ws: ClientConnection) -> Close:
    """How the server closed `ws`, which must send nothing before."""
    async with asyncio.timeout(WAIT_SECONDS):
        with pytest.raises(ConnectionClosed) as closed:
            await ws.recv()
    assert closed.value.rcvd is not None
    return closed.value.rcvd


async def create(http: httpx.AsyncClient, **fields: Any) -> Message:
    body = {"event_type": "tool_call", "tool_name": "search", **fields}
    response = await http.post("/activities/log", json=body)
    assert response.status_code == 201, response.text
    message: Message = response.json()
    return message


async def post_large_events(http: httpx.AsyncClient, *, batches: int, per_batch: int = 15) -> list[str]:
    """`batches` x `per_batch` events of ~50 KB each; return their ids in the order they were created."""
    posted: list[str] = []
    for _ in range(batches):
        events = [
            {"id": str(uuid.uuid4()), "event_type": "tool_call", "data": {"blob": "x" * 50_000}}
            for _ in range(per_batch)
        ]
        response = await http.post("/activities/batch", json={"events": events})
        assert response.json()["created"] == per_batch
        posted += [event["id"] for event in events]
    return posted


def small_receive_socket(server: LiveServer) -> socket.socket:
    # A tiny receive buffer (autotuning off) so that a client that stops reading fills TCP quickly.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", server.port))
    sock.setblocking(False)
    return sock


async def replay(server: LiveServer, http: httpx.AsyncClient, cursor: str) -> list[Message]:
    """Everything a client gets from `since=cursor` up to a live event created once it is connected,
    reconnecting with the same cursor while the server says to try again later, as clients do."""
    for _attempt in range(10):
        async with connect(
            stream_url(server, since=cursor), open_timeout=WAIT_SECONDS, close_timeout=2
        ) as ws:
            live = await create(http)
            messages: list[Message] = []
            turned_away: Close | None = None
            try:
                async with asyncio.timeout(60):
                    while not messages or messages[-1].get("event", {}).get("id") != live["id"]:
                        messages.append(json.loads(await ws.recv()))
            except ConnectionClosed as closed:
                turned_away = closed.rcvd
            if turned_away is None:
                return messages
            assert turned_away.code == 1013, turned_away
            assert messages == [], "a client told to come back had been sent changes already"
    raise AssertionError("the replay never got its turn")


async def test_replay_without_a_turn_is_told_to_retry_and_then_gets_every_change_once(
    live_server: Callable[..., LiveServer], settings: Settings
) -> None:
    server = live_server(
        settings.model_copy(update={"max_concurrent_replays": 1, "read_queue_timeout": timedelta(seconds=1)})
    )
    async with rest_client(server) as http:
        async with connect(stream_url(server), open_timeout=WAIT_SECONDS) as ws:
            await create(http)
            cursor = (await next_message(ws))["cursor"]
        # Far more than the socket buffers of a client that stops reading can hold.
        posted = await post_large_events(http, batches=20)

        # This client's replay holds the only turn: it took the first message and reads no more.
        stalled_socket = small_receive_socket(server)
        async with connect(
            stream_url(server, since=cursor),
            sock=stalled_socket,
            max_queue=1,
            compression=None,
            close_timeout=1,
        ) as stalled:
            assert (await next_message(stalled))["event"]["id"] == posted[0]
            async with connect(stream_url(server, since=cursor), open_timeout=WAIT_SECONDS) as waiting:
                closed = await close_frame(waiting)
            assert (closed.code, closed.reason) == (1013, "try again later: reconnect with since=<cursor>")

        # The stalled client is gone, and its turn with it: the same cursor now gets everything, once.
        messages = await replay(server, http, cursor)
        ids = [message["event"]["id"] for message in messages]
        assert ids[:-1] == posted
        assert {message["type"] for message in messages} == {"activity_logged"}


async def add_at(http: httpx.AsyncClient, minute: int, tool_name: str) -> None:
    await create(http, tool_name=tool_name, timestamp=(T0 + timedelta(minutes=minute)).isoformat())


async def test_stats_cover_the_newest_events_and_say_which(
    live_server: Callable[..., LiveServer], settings: Settings
) -> None:
    server = live_server(settings.model_copy(update={"stats_window_events": 5}))
    async with rest_client(server) as http:
        for minute in range(8):
            await add_at(http, minute, "old" if minute < 3 else "new")

        everything = await http.get("/activities/stats")
        recent = await http.get("/activities/stats", params={"since": "2025-03-01T12:06:00Z"})
        naive = await http.get("/activities/stats", params={"since": "2025-03-01T12:06:00"})

    assert everything.status_code == 200
    assert [(tool["tool_name"], tool["count"]) for tool in everything.json()] == [("new", 5)]
    assert everything.headers["X-Stats-Window-Events"] == "5"
    assert everything.headers["X-Stats-Truncated"] == "true"
    assert everything.headers["X-Stats-Since"] == "2025-03-01T12:03:00Z"
    assert [(tool["tool_name"], tool["count"]) for tool in recent.json()] == [("new", 2)]
    for answer in (recent, naive):
        assert answer.headers["X-Stats-Window-Events"] == "2"
        assert answer.headers["X-Stats-Truncated"] == "false"
        assert answer.headers["X-Stats-Since"] == "2025-03-01T12:06:00Z"


def postgres_settings(url: str, **changes: Any) -> Settings:
    # Statements wait on the lock below for as long as a test needs, not the usual 5 s.
    return Settings(
        database_url=url, broadcast_url="memory://", database_timeout=timedelta(seconds=60), **changes
    )


def dsn(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


@asynccontextmanager
async def events_table_locked(url: str) -> AsyncIterator[Callable[[int], Awaitable[None]]]:
    """Every read of `activity_events` waits while this lock is held (a heavy read, made to last).
    Yields a function that returns once `count` reads are waiting for it."""
    locker = await asyncpg.connect(dsn(url), timeout=WAIT_SECONDS)
    # Watched from another connection: inside a transaction, pg_stat_activity does not change.
    observer = await asyncpg.connect(dsn(url), timeout=WAIT_SECONDS)

    async def reads_waiting(count: int) -> None:
        async with asyncio.timeout(WAIT_SECONDS):
            while True:
                waiting = await observer.fetchval(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                    "AND wait_event_type = 'Lock' AND query LIKE '%activity_events%'"
                )
                if waiting >= count:
                    return
                await asyncio.sleep(0.02)

    try:
        transaction = locker.transaction()
        await transaction.start()
        await locker.execute("LOCK TABLE activity_events IN ACCESS EXCLUSIVE MODE")
        try:
            yield reads_waiting
        finally:
            await transaction.rollback()
    finally:
        await observer.close()
        await locker.close()


async def _second_while_the_first_waits(
    http: httpx.AsyncClient, postgres_url: str, path: str
) -> tuple[httpx.Response, httpx.Response, httpx.Response]:
    """`path` asked twice while reads of the events wait for a lock: the first takes the only turn and
    is answered once the lock goes; the second, and `/health`, are answered meanwhile. Returns (first,
    second, health)."""
    async with events_table_locked(postgres_url) as reads_waiting:
        first = asyncio.create_task(http.get(path))
        await reads_waiting(1)
        async with asyncio.timeout(WAIT_SECONDS):
            second = await http.get(path)
            health = await http.get("/health")
    return await first, second, health


async def test_stats_beyond_the_cap_get_503_with_retry_after(
    live_server: Callable[..., LiveServer], postgres_url: str
) -> None:
    server = live_server(
        postgres_settings(postgres_url, max_concurrent_stats=1, read_queue_timeout=timedelta(seconds=0.5))
    )
    async with rest_client(server, read_seconds=60) as http:
        first, turned_away, health = await _second_while_the_first_waits(
            http, postgres_url, "/activities/stats"
        )
        assert first.status_code == 200

    assert turned_away.status_code == 503
    assert turned_away.headers["Retry-After"] == "1"
    assert "too many statistics requests at once" in turned_away.json()["detail"]
    assert health.status_code == 200


async def test_exports_beyond_the_cap_get_503_with_retry_after_and_a_finished_one_frees_its_turn(
    live_server: Callable[..., LiveServer], postgres_url: str
) -> None:
    server = live_server(
        postgres_settings(postgres_url, max_concurrent_exports=1, read_queue_timeout=timedelta(seconds=0.5))
    )
    async with rest_client(server, read_seconds=60) as http:
        first, turned_away, health = await _second_while_the_first_waits(
            http, postgres_url, "/activities/export"
        )
        assert first.status_code == 200
        async with asyncio.timeout(WAIT_SECONDS):
            again = await http.get("/activities/export")

    assert turned_away.status_code == 503
    assert turned_away.headers["Retry-After"] == "1"
    assert "too many exports at once" in turned_away.json()["detail"]
    assert health.status_code == 200
    assert again.status_code == 200


async def test_health_answers_while_stats_hold_more_connections_than_the_pool_has(
    live_server: Callable[..., LiveServer], postgres_url: str
) -> None:
    pool = 20  # the connections of the ordinary PostgreSQL pool (store/engine.py)
    server = live_server(postgres_settings(postgres_url, max_concurrent_stats=pool + 1))
    async with rest_client(server, read_seconds=60) as http:
        async with events_table_locked(postgres_url) as reads_waiting:
            stats = [asyncio.create_task(http.get("/activities/stats")) for _ in range(pool + 1)]
            await reads_waiting(pool)
            async with asyncio.timeout(WAIT_SECONDS):
                health = await http.get("/health")
        answers = await asyncio.gather(*stats)

    assert (health.status_code, health.json()["database"]) == (200, "ok")
    assert {answer.status_code for answer in answers} == {200}
