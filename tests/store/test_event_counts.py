"""The event counts each write transaction keeps (`activity_event_counts`): equal to a count of the events
after creates, updates, deletes and merges, `reached` never going down; the tool calls each transaction
finished, heard by the writer's observer once it commits; and migration 0005 counting what is stored."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa

from activity_feed.schemas import ActivityCreate, ActivityUpdate, ActivityUpdateItem, EventStatus, EventType
from activity_feed.store import ActivityStore
from activity_feed.store.engine import create_reader_engine
from activity_feed.store.migrate import upgrade
from activity_feed.store.schema import activity_events
from activity_feed.store.transaction import CompletedCall
from activity_feed.store.updates import TIMED_OUT_PREFIX
from tests.store.test_merge import combine, item, view
from tests.store.test_migrate import insert_raw

Counts = dict[tuple[str, str], tuple[int, int]]


class Heard:
    """A `WriteObserver` that keeps what it hears."""

    def __init__(self) -> None:
        self.transactions = 0
        self.calls: list[CompletedCall] = []

    def committed(self, seconds: float, calls: Sequence[CompletedCall]) -> None:
        assert seconds >= 0
        self.transactions += 1
        self.calls.extend(calls)


@pytest.fixture
async def heard_store(database_url: str) -> AsyncIterator[tuple[ActivityStore, Heard]]:
    heard = Heard()
    store = ActivityStore(database_url, observer=heard)
    await store.start()
    yield store, heard
    await store.close()


async def counts(store: ActivityStore) -> Counts:
    """(stored, reached) per (type, status), leaving out pairs at zero."""
    return {
        (c.event_type, c.status): (c.stored, c.reached)
        for c in await store.event_counts()
        if c.stored or c.reached
    }


async def recounted(store: ActivityStore) -> dict[tuple[str, str], int]:
    """The events by type and status, as the events table itself says."""
    e = activity_events.c
    stmt = sa.select(e.event_type, e.status, sa.func.count()).group_by(e.event_type, e.status)
    async with store.connect() as conn:
        return {(row[0], row[1]): row[2] for row in await conn.execute(stmt)}


async def assert_agrees(store: ActivityStore) -> Counts:
    now = await counts(store)
    assert {pair: stored for pair, (stored, _) in now.items() if stored} == await recounted(store)
    return now


def call(
    tool: str, status: EventStatus = EventStatus.PENDING, duration_ms: float | None = None
) -> ActivityCreate:
    return ActivityCreate(
        event_type=EventType.TOOL_CALL, tool_name=tool, status=status, duration_ms=duration_ms
    )


async def test_counts_follow_creates_updates_and_deletes(heard_store: tuple[ActivityStore, Heard]) -> None:
    store, _ = heard_store
    pending, _ = await store.create(event=call("a"))
    await store.apply_batch(
        creates=[call("b", EventStatus.SUCCESS, 5.0), ActivityCreate(event_type=EventType.API_REQUEST)],
        updates=[ActivityUpdateItem(id=pending.id, status=EventStatus.ERROR, duration_ms=7.0)],
    )
    assert await assert_agrees(store) == {
        ("tool_call", "pending"): (0, 1),
        ("tool_call", "error"): (1, 1),
        ("tool_call", "success"): (1, 1),
        ("api_request", "pending"): (1, 1),
    }

    # Completed after all: the count moves from error to success; an update that changes no status
    # moves nothing; a deletion lowers `stored` and never `reached`.
    await store.update(event_id=pending.id, changes=ActivityUpdate(status=EventStatus.SUCCESS))
    await store.update(event_id=pending.id, changes=ActivityUpdate(data={"note": "x"}))
    assert await store.delete(event_id=pending.id)

    assert await assert_agrees(store) == {
        ("tool_call", "pending"): (0, 1),
        ("tool_call", "error"): (0, 1),
        ("tool_call", "success"): (1, 2),
        ("api_request", "pending"): (1, 1),
    }


async def test_counts_follow_merges_and_the_observer_hears_each_call_once(
    heard_store: tuple[ActivityStore, Heard],
) -> None:
    store, heard = heard_store
    place = uuid.uuid4()
    await store.merge(items=[item(view("k", "client", status=EventStatus.PENDING), place)], combine=combine)
    await store.merge(
        items=[item(view("k", "server", status=EventStatus.ERROR, duration_ms=30.0), place)], combine=combine
    )
    # The same view again: merged into what is stored, which changes nothing.
    await store.merge(
        items=[item(view("k", "server", status=EventStatus.ERROR, duration_ms=30.0), place)], combine=combine
    )

    assert await assert_agrees(store) == {("tool_call", "pending"): (0, 1), ("tool_call", "error"): (1, 1)}
    assert heard.calls == [CompletedCall("k", 30.0)]


async def test_the_observer_hears_the_calls_each_transaction_finished(
    heard_store: tuple[ActivityStore, Heard],
) -> None:
    store, heard = heard_store
    started, _ = await store.create(event=call("slow"))
    timed_out, _ = await store.create(event=call("late"))
    await store.create(event=call("quick", EventStatus.SUCCESS, 12.5))
    await store.create(event=call("no_duration", EventStatus.SUCCESS))
    await store.create(
        event=ActivityCreate(event_type=EventType.API_REQUEST, status=EventStatus.SUCCESS, duration_ms=3)
    )
    assert heard.calls == [CompletedCall("quick", 12.5)]

    await store.update(
        event_id=started.id, changes=ActivityUpdate(status=EventStatus.ERROR, duration_ms=2000)
    )
    # Changed again once finished: not a second call.
    await store.update(
        event_id=started.id, changes=ActivityUpdate(status=EventStatus.SUCCESS, duration_ms=2100)
    )
    # Timed out (an error without a duration), then its completion arrives: finished once, then.
    message = f"{TIMED_OUT_PREFIX}10m (the pending timeout)"
    await store.update(
        event_id=timed_out.id, changes=ActivityUpdate(status=EventStatus.ERROR, error_message=message)
    )
    await store.update(
        event_id=timed_out.id, changes=ActivityUpdate(status=EventStatus.SUCCESS, duration_ms=700000)
    )

    assert heard.calls == [
        CompletedCall("quick", 12.5),
        CompletedCall("slow", 2000.0),
        CompletedCall("late", 700000.0),
    ]
    assert heard.transactions == 9


async def test_migration_0005_counts_the_events_already_stored(database_url: str) -> None:
    engine = create_reader_engine(database_url)
    try:
        await upgrade(engine, "0004")
        pairs = [
            ("tool_call", "success"),
            ("tool_call", "success"),
            ("tool_call", "error"),
            ("api_request", "pending"),
        ]
        for seq, (kind, status) in enumerate(pairs, 1):
            await insert_raw(engine, seq, kind, status)
        async with engine.begin() as conn:
            await conn.execute(
                sa.text(f"UPDATE activity_change_counter SET value = {len(pairs)} WHERE id = 1")
            )

        await upgrade(engine)
    finally:
        await engine.dispose()

    store = ActivityStore(database_url)
    await store.start(migrate=False)
    try:
        assert await counts(store) == {
            ("tool_call", "success"): (2, 2),
            ("tool_call", "error"): (1, 1),
            ("api_request", "pending"): (1, 1),
        }
        await store.create(
            event=ActivityCreate(event_type=EventType.API_REQUEST, timestamp=datetime.now(UTC))
        )
        assert (await assert_agrees(store))[("api_request", "pending")] == (2, 2)
    finally:
        await store.close()
