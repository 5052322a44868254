"""Several instances: two `activity-feed serve` processes on different ports sharing one PostgreSQL
database and one Redis (a `redis-server` of this module's own, so that a test can crash and restart it).
Stream clients on either instance see every change made through either, exactly once and in change order;
a client that moves to the other instance with its cursor misses nothing; a Redis restart loses nothing a
client can observe, and writes go on while it is down."""

from __future__ import annotations

import asyncio
import json
import secrets
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import asynccontextmanager
from typing import Any, cast
from urllib.parse import urlencode

import asyncpg
import httpx
import pytest
from sqlalchemy.engine import make_url
from websockets.asyncio.client import ClientConnection, connect

from tests.support.redis import RedisServer, unique_channel
from tests.support.service import ServiceProcess, start_instances, stop_all

WAIT_SECONDS = 15.0
Message = dict[str, Any]


async def _reset_schema(url: str) -> None:
    dsn = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    conn = await asyncpg.connect(dsn, timeout=5)
    try:
        await conn.execute("DROP SCHEMA public CASCADE; CREATE SCHEMA public")
    finally:
        await conn.close()


@pytest.fixture(scope="module")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path_factory.mktemp("redis") / "redis.log")
    server.start()
    yield server
    server.kill()


@pytest.fixture(scope="module")
def instances(
    postgres_database: str, redis_server: RedisServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[list[ServiceProcess]]:
    """Two instances, A and B, started together on an empty database (they migrate it in turn)."""
    asyncio.run(_reset_schema(postgres_database))
    started = start_instances(
        2,
        database_url=postgres_database,
        broadcast_url=redis_server.url(unique_channel()),
        log_dir=tmp_path_factory.mktemp("instances"),
    )
    yield started
    stop_all(started)
    for instance in started:
        assert "Traceback" not in instance.log(), instance.log()


@pytest.fixture
def tool() -> str:
    """A tool name of this test's own: its stream clients filter on it, so they see only its events."""
    return f"multi-{secrets.token_hex(4)}"


@asynccontextmanager
async def open_stream(instance: ServiceProcess, **query: str) -> AsyncIterator[ClientConnection]:
    url = f"{instance.ws_url}/activities/ws?{urlencode(query)}"
    async with connect(url, open_timeout=WAIT_SECONDS, close_timeout=2) as ws:
        yield ws


async def post(instance: ServiceProcess, tool: str, n: int) -> str:
    async with httpx.AsyncClient(timeout=WAIT_SECONDS) as http:
        response = await http.post(
            f"{instance.url}/activities/log",
            json={
                "event_type": "tool_call",
                "tool_name": tool,
                "user_source": f"writer-{n}",
                "data": {"n": n},
            },
        )
    assert response.status_code == 201, response.text
    return cast(str, response.json()["id"])


async def post_alternately(
    instances: Sequence[ServiceProcess], tool: str, count: int, *, first: int = 0
) -> list[str]:
    """`count` events posted one after the other, to A, B, A, ...: change order is posting order."""
    return [await post(instances[n % 2], tool, first + n) for n in range(count)]


async def messages_until(ws: ClientConnection, last_id: str) -> list[Message]:
    """Every message up to and including the one about `last_id`."""
    messages: list[Message] = []
    async with asyncio.timeout(WAIT_SECONDS):
        while not messages or messages[-1]["event"]["id"] != last_id:
            messages.append(json.loads(await ws.recv()))
    return messages


def assert_exactly_once_in_order(messages: list[Message], expected_ids: list[str]) -> None:
    assert [m["event"]["id"] for m in messages] == expected_ids
    cursors = [int(m["cursor"]) for m in messages]
    assert cursors == sorted(set(cursors)), cursors


async def test_changes_made_through_either_instance_reach_clients_on_both(
    instances: list[ServiceProcess], tool: str
) -> None:
    a, b = instances
    async with open_stream(a, tool_name=tool) as on_a, open_stream(b, tool_name=tool) as on_b:
        sequential = await post_alternately(instances, tool, 20)
        # Completed through the other instance than the one that logged each.
        async with httpx.AsyncClient(timeout=WAIT_SECONDS) as http:
            for n, event_id in enumerate(sequential[:6]):
                patched = await http.patch(
                    f"{instances[(n + 1) % 2].url}/activities/{event_id}", json={"status": "success"}
                )
                assert patched.status_code == 200, patched.text
        # At once, to both: their notices cross on the bus, and each hub puts them back in order.
        burst = await asyncio.gather(*(post(instances[n % 2], tool, 100 + n) for n in range(20)))
        sentinel = await post(a, tool, 999)

        for ws in (on_a, on_b):
            messages = await messages_until(ws, sentinel)
            types = [m["type"] for m in messages]
            assert types[:26] == ["activity_logged"] * 20 + ["tool_completed"] * 6
            assert [m["event"]["id"] for m in messages[:26]] == [*sequential, *sequential[:6]]
            assert sorted(m["event"]["id"] for m in messages[26:-1]) == sorted(burst)
            assert_exactly_once_in_order(messages, [m["event"]["id"] for m in messages])
            assert len(messages) == 20 + 6 + 20 + 1


async def test_client_that_moves_to_the_other_instance_with_its_cursor_misses_nothing(
    instances: list[ServiceProcess], tool: str
) -> None:
    a, b = instances
    async with open_stream(a, tool_name=tool) as on_a:
        seen = await post_alternately(instances, tool, 6)
        messages = await messages_until(on_a, seen[-1])
        assert_exactly_once_in_order(messages, seen)
        cursor = messages[-1]["cursor"]

    # Away: changes through both instances, one of them to an event the client has seen.
    missed = await post_alternately(instances, tool, 6, first=6)
    async with httpx.AsyncClient(timeout=WAIT_SECONDS) as http:
        patched = await http.patch(
            f"{b.url}/activities/{seen[0]}", json={"status": "error", "error_message": "x"}
        )
        assert patched.status_code == 200, patched.text

    async with open_stream(b, tool_name=tool, since=cursor) as on_b:
        replayed = await messages_until(on_b, seen[0])
        assert_exactly_once_in_order(replayed, [*missed, seen[0]])
        assert replayed[-1]["type"] == "tool_failed"
        live = await post_alternately(instances, tool, 6, first=12)
        assert_exactly_once_in_order(await messages_until(on_b, live[-1]), live)


class Writer:
    """Posts to A, B, A, ... one event after the other until stopped: change order is `posted` order."""

    def __init__(self, instances: Sequence[ServiceProcess], tool: str) -> None:
        self.instances = instances
        self.tool = tool
        self.posted: list[str] = []
        self.stopped = False
        self.task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        while not self.stopped:
            n = len(self.posted)
            self.posted.append(await post(self.instances[n % 2], self.tool, n))
            await asyncio.sleep(0.005)  # pacing: a steady stream, not a flood

    async def wait_for_more(self, count: int) -> None:
        """Return once `count` more events have been acknowledged (201)."""
        target = len(self.posted) + count
        async with asyncio.timeout(WAIT_SECONDS):
            while len(self.posted) < target:
                assert not self.task.done(), self.task
                await asyncio.sleep(0.01)

    async def stop(self) -> list[str]:
        self.stopped = True
        await self.task
        return self.posted


async def test_redis_restart_mid_stream_loses_nothing_a_client_can_observe(
    instances: list[ServiceProcess], redis_server: RedisServer, tool: str
) -> None:
    async with (
        open_stream(instances[0], tool_name=tool) as on_a,
        open_stream(instances[1], tool_name=tool) as on_b,
    ):
        writer = Writer(instances, tool)
        try:
            await writer.wait_for_more(5)
            redis_server.kill()
            for instance in instances:
                health = await asyncio.to_thread(
                    instance.wait_health, lambda h: h.get("bus", "").startswith("degraded: "), WAIT_SECONDS
                )
                assert health["http_status"] == 200, health
                assert health["status"] == "ok"
                assert f"127.0.0.1:{redis_server.port}" in health["bus"]
            await writer.wait_for_more(10)  # acknowledged while Redis is down
            redis_server.start()  # same port, nothing kept
            for instance in instances:
                await asyncio.to_thread(instance.wait_healthy, WAIT_SECONDS)
            await writer.wait_for_more(5)
        finally:
            posted = await writer.stop()
            if not redis_server.running:
                redis_server.start()  # for whatever test comes next

        for ws in (on_a, on_b):
            assert_exactly_once_in_order(await messages_until(ws, posted[-1]), posted)
