"""Two hubs on one database and one Redis (a `redis-server` of the test's own), in process: every change
reaches the subscribers of both, exactly once and in change order, across a Redis crash and restart."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from activity_feed.hub import ChangeFilter, Hub, Notice, Subscription
from activity_feed.hub.backends.redis import RedisBackend
from activity_feed.schemas import ActivityCreate, EventType
from activity_feed.store import ActivityStore
from tests.support.redis import RedisServer, unique_channel

WAIT_SECONDS = 15.0


@dataclass
class Instance:
    hub: Hub
    store: ActivityStore


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path / "redis.log")
    server.start()
    yield server
    server.kill()


@pytest.fixture
async def pair(database_url: str, redis_server: RedisServer) -> AsyncIterator[list[Instance]]:
    url = redis_server.url(unique_channel())
    instances: list[Instance] = []
    for _ in range(2):
        hub = Hub(RedisBackend(url))
        store = ActivityStore(database_url, on_commit=hub.publish)
        await store.start()
        await hub.start(changes=store)
        instances.append(Instance(hub, store))
    await wait_for(lambda: all(instance.hub.bus_problem is None for instance in instances))
    yield instances
    for instance in instances:
        await instance.hub.stop()
        await instance.store.close()


async def wait_for(condition: Callable[[], bool]) -> None:
    """Poll `condition` (the hub's state has no event to wait on), failing after WAIT_SECONDS."""
    async with asyncio.timeout(WAIT_SECONDS):
        while True:
            if condition():
                return
            await asyncio.sleep(0.02)


async def create(store: ActivityStore, name: str) -> uuid.UUID:
    event, _ = await store.create(event=ActivityCreate(event_type=EventType.TOOL_CALL, tool_name=name))
    return event.id


async def take(subscription: Subscription, count: int) -> list[Notice]:
    async with asyncio.timeout(WAIT_SECONDS):
        return [await subscription.queue.get() for _ in range(count)]


async def test_every_change_reaches_both_instances_across_a_redis_restart(
    pair: list[Instance], redis_server: RedisServer
) -> None:
    a, b = pair
    async with (
        a.hub.subscribe(ChangeFilter(), queue_size=1000) as on_a,
        b.hub.subscribe(ChangeFilter(), queue_size=1000) as on_b,
    ):
        written = [await create((a, b)[n % 2].store, f"before-{n}") for n in range(10)]
        for subscription in (on_a, on_b):
            assert [n.event["id"] for n in await take(subscription, 10)] == [str(i) for i in written]

        redis_server.kill()
        await wait_for(lambda: a.hub.bus_problem is not None and b.hub.bus_problem is not None)
        during = [await create((a, b)[n % 2].store, f"during-{n}") for n in range(10)]
        # Redis is down: the hubs read the changes from the database at each attempt to resubscribe.
        for subscription in (on_a, on_b):
            assert [n.event["id"] for n in await take(subscription, 10)] == [str(i) for i in during]

        redis_server.start()
        await wait_for(lambda: a.hub.bus_problem is None and b.hub.bus_problem is None)
        after = [await create((a, b)[n % 2].store, f"after-{n}") for n in range(10)]
        last = await create(a.store, "last")
        for subscription in (on_a, on_b):
            notices = await take(subscription, 11)
            assert [n.event["id"] for n in notices] == [str(i) for i in [*after, last]]
            assert subscription.queue.empty()
