"""The hub fills what the bus misses from the database: on SQLite and PostgreSQL, with a second store on the
same database standing for another instance whose notices this hub's bus never carries."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime

import pytest

from activity_feed.hub import ChangeFilter, Hub, Notice, Subscription
from activity_feed.hub.backends import MemoryBackend
from activity_feed.hub.recovery import read_missed
from activity_feed.schemas import (
    ActivityCreate,
    ActivityPublic,
    ActivityUpdate,
    Change,
    ChangeType,
    DeletedEvent,
    EventStatus,
    EventType,
)
from activity_feed.store import ActivityStore

WAIT_SECONDS = 10.0


@dataclass
class Instances:
    """`hub` follows `here`, whose commits it publishes; `elsewhere` writes to the same database and
    publishes nothing, as if its notices were all lost."""

    hub: Hub
    here: ActivityStore
    elsewhere: ActivityStore


@pytest.fixture
async def instances(database_url: str) -> AsyncIterator[Instances]:
    hub = Hub(MemoryBackend())
    here = ActivityStore(database_url, on_commit=hub.publish)
    elsewhere = ActivityStore(database_url)
    await here.start()
    await elsewhere.start(migrate=False)
    await hub.start(changes=here)
    yield Instances(hub, here, elsewhere)
    await hub.stop()
    await elsewhere.close()
    await here.close()


async def create(store: ActivityStore, name: str) -> uuid.UUID:
    event, created = await store.create(event=ActivityCreate(event_type=EventType.TOOL_CALL, tool_name=name))
    assert created
    return event.id


async def take(subscription: Subscription, count: int) -> list[Notice]:
    async with asyncio.timeout(WAIT_SECONDS):
        return [await subscription.queue.get() for _ in range(count)]


async def then_nothing_but(subscription: Subscription, store: ActivityStore) -> None:
    """No other notice is queued before a change made after everything else (hence numbered last)."""
    sentinel = await create(store, "sentinel")
    (notice,) = await take(subscription, 1)
    assert notice.event["id"] == str(sentinel), f"unexpected {notice.text}"


async def take_until(subscription: Subscription, event_id: uuid.UUID) -> list[Notice]:
    """Every notice up to and including the one of `event_id`."""
    notices: list[Notice] = []
    async with asyncio.timeout(WAIT_SECONDS):
        while not notices or notices[-1].event["id"] != str(event_id):
            notices.append(await subscription.queue.get())
    return notices


def ids(notices: list[Notice]) -> list[str]:
    return [notice.event["id"] for notice in notices]


def assert_in_change_order(notices: list[Notice]) -> None:
    seqs = [notice.seq for notice in notices]
    assert seqs == sorted(set(seqs)), seqs


async def test_changes_the_bus_missed_are_read_from_the_database(instances: Instances) -> None:
    async with instances.hub.subscribe(ChangeFilter(), queue_size=100) as subscription:
        written = [await create(instances.here, "a1")]
        written += [await create(instances.elsewhere, f"b{n}") for n in range(3)]
        written.append(await create(instances.here, "a2"))

        notices = await take(subscription, len(written))
        assert ids(notices) == [str(event_id) for event_id in written]
        assert_in_change_order(notices)
        assert {notice.type for notice in notices} == {"activity_logged"}
        assert instances.hub.recoveries == 1
        await then_nothing_but(subscription, instances.here)


async def test_no_database_read_while_the_bus_has_every_change(instances: Instances) -> None:
    async with instances.hub.subscribe(ChangeFilter(), queue_size=500) as subscription:
        written = [await create(instances.here, f"a{n}") for n in range(20)]
        batch = [ActivityCreate(event_type=EventType.API_REQUEST, tool_name=f"GET /{n}") for n in range(50)]
        await instances.here.apply_batch(creates=batch, updates=[])
        await instances.here.update(event_id=written[0], changes=ActivityUpdate(status=EventStatus.SUCCESS))

        notices = await take(subscription, 20 + 50 + 1)
        assert ids(notices[:20]) == [str(event_id) for event_id in written]
        assert notices[-1].type == "tool_completed"
        assert_in_change_order(notices)
        assert instances.hub.recoveries == 0


async def test_changes_nobody_listens_to_need_no_database_read(instances: Instances) -> None:
    for n in range(5):
        await create(instances.here, f"a{n}")
    batch = [ActivityCreate(event_type=EventType.API_REQUEST, tool_name=f"GET /{n}") for n in range(50)]
    await instances.here.apply_batch(creates=batch, updates=[])

    async with instances.hub.subscribe(ChangeFilter(), queue_size=500) as subscription:
        after = await create(instances.here, "after")
        notices = await take_until(subscription, after)

    assert_in_change_order(notices)
    assert instances.hub.recoveries == 0


async def test_a_gap_while_nobody_listens_is_still_read_from_the_database(instances: Instances) -> None:
    await create(instances.elsewhere, "lost")  # its notice never comes
    await create(instances.here, "next")

    # Nothing is subscribed to be told, so the count is watched, for a bounded time.
    async with asyncio.timeout(WAIT_SECONDS):
        while instances.hub.recoveries == 0:  # noqa: ASYNC110
            await asyncio.sleep(0.01)
    async with instances.hub.subscribe(ChangeFilter(), queue_size=100) as subscription:
        await then_nothing_but(subscription, instances.here)
    assert instances.hub.recoveries == 1


async def test_notices_out_of_order_are_delivered_once_in_order(instances: Instances) -> None:
    async with instances.hub.subscribe(ChangeFilter(), queue_size=100) as subscription:
        head = await instances.here.last_change()
        first = await create(instances.elsewhere, "first")
        second = await create(instances.elsewhere, "second")
        changes = await instances.here.changes_since(cursor=head, limit=10)
        # Two instances' notices can cross on the bus: the later change arrives first.
        instances.hub.publish(changes[1:])
        instances.hub.publish(changes[:1])

        notices = await take(subscription, 2)
        assert ids(notices) == [str(first), str(second)]
        await then_nothing_but(subscription, instances.here)


async def test_several_changes_of_one_event_come_as_its_latest_state(instances: Instances) -> None:
    async with instances.hub.subscribe(ChangeFilter(), queue_size=100) as subscription:
        elsewhere = instances.elsewhere
        finished = await create(elsewhere, "finished")
        await elsewhere.update(event_id=finished, changes=ActivityUpdate(status=EventStatus.ERROR))
        gone = await create(elsewhere, "gone")
        assert await elsewhere.delete(event_id=gone)
        seen = await create(instances.here, "seen")

        notices = await take(subscription, 3)
        assert [(notice.type, notice.event["id"]) for notice in notices] == [
            ("activity_logged", str(finished)),  # new to every subscriber, in its final state
            ("activity_deleted", str(gone)),
            ("activity_logged", str(seen)),
        ]
        assert notices[0].event["status"] == "error"
        assert_in_change_order(notices)
        # The numbers of the folded changes never come: the hub went on from the head, so the next
        # change is delivered straight from the bus.
        await create(instances.here, "next")
        assert [notice.event["tool_name"] for notice in await take(subscription, 1)] == ["next"]
        assert instances.hub.recoveries == 1


async def test_a_notice_from_another_database_is_ignored(
    instances: Instances, caplog: pytest.LogCaptureFixture
) -> None:
    async with instances.hub.subscribe(ChangeFilter(), queue_size=100) as subscription:
        head = await instances.here.last_change()
        await create(instances.elsewhere, "real")
        (change,) = await instances.here.changes_since(cursor=head, limit=10)
        # Numbered far above this database's head: it cannot be this database's.
        instances.hub.publish([Change(seq=change.seq + 1_000_000, type=change.type, event=change.event)])
        await create(instances.here, "after")

        notices = await take(subscription, 2)
        assert [notice.event["tool_name"] for notice in notices] == ["real", "after"]
        assert notices[0].seq == head + 1
        assert "publish on the same Redis channel" in caplog.text
        await then_nothing_but(subscription, instances.here)


class ScriptedLog:
    """A change log that answers from a list: for what a real database shows only by chance, such as a
    head whose changes were all folded into later ones or deleted long ago."""

    def __init__(self, head: int, page: list[Change]) -> None:
        self.head = head
        self.page = page

    async def last_change(self) -> int:
        return self.head

    async def changes_since(self, *, cursor: int, limit: int, origin: int | None = None) -> list[Change]:
        return [change for change in self.page if change.seq > cursor][:limit]


def logged(seq: int) -> Change:
    event = ActivityPublic(
        id=uuid.uuid4(),
        timestamp=datetime.now(UTC),
        tool_name="t",
        user_source=None,
        event_type=EventType.TOOL_CALL,
        status=EventStatus.PENDING,
        data={},
        duration_ms=None,
        error_message=None,
        correlation_id=None,
        session_id=None,
    )
    return Change(seq=seq, type=ChangeType.LOGGED, event=event)


def deleted(seq: int) -> Change:
    return Change(seq=seq, type=ChangeType.DELETED, event=DeletedEvent(id=uuid.uuid4()))


@pytest.mark.parametrize(
    ("head", "page", "delivered", "carry_on"),
    [
        # Everything read is delivered, in order; the numbers folded away (12) are not waited for.
        (14, [logged(11), logged(13), deleted(14)], [11, 13, 14], 14),
        # Committed after the head was read: delivered too, and carried on from.
        (12, [logged(11), logged(12), deleted(14)], [11, 12, 14], 14),
        # Nothing read: carry on from the head (its changes were all folded or deleted long ago).
        (15, [], [], 15),
    ],
)
async def test_read_missed_delivers_what_it_reads_and_carries_on_from_the_head(
    head: int, page: list[Change], delivered: list[int], carry_on: int
) -> None:
    seen: list[int] = []
    assert (
        await read_missed(ScriptedLog(head, page), after=10, deliver=lambda c: seen.append(c.seq)) == carry_on
    )
    assert seen == delivered


async def test_an_observer_hears_every_change_once_in_order_whoever_listens(instances: Instances) -> None:
    heard: list[Notice] = []
    stop = instances.hub.observe(heard.extend)
    written = [await create(instances.here, "a1")]
    written += [await create(instances.elsewhere, f"b{n}") for n in range(3)]  # read from the database
    written.append(await create(instances.here, "a2"))  # the fast path: nobody subscribed
    async with instances.hub.subscribe(ChangeFilter(), queue_size=100) as subscription:
        written.append(await create(instances.here, "a3"))  # beside a subscriber
        await take(subscription, 1)
    stop()
    await create(instances.here, "after")

    assert [str(notice.field("id")) for notice in heard] == [str(event_id) for event_id in written]
    assert_in_change_order(heard)
