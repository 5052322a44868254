"""Heavy reads with a bound: replay pages bounded in bytes as well as in count, and statistics over a
window of the newest events whatever the size of the table."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from activity_feed.schemas import (
    ActivityCreate,
    ActivityUpdate,
    Change,
    ChangeType,
    DeletedEvent,
    EventStatus,
)
from activity_feed.store import ActivityStore
from activity_feed.store.engine import json_dumps

T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
BLOB = "x" * 10_000


def data_bytes(change: Change) -> int:
    return 0 if isinstance(change.event, DeletedEvent) else len(json_dumps(change.event.data))


def as_json(change: Change) -> tuple[int, ChangeType, Any]:
    """A change as a stream message carries it (a page's `data` is JSON text to embed, not an object)."""
    event = orjson.loads(orjson.dumps(change.event.__dict__, default=str))
    return change.seq, change.type, event


async def add_many(store: ActivityStore, count: int, **fields: Any) -> None:
    creates = [
        ActivityCreate(event_type="tool_call", data={"blob": BLOB, "i": i}, **fields) for i in range(count)
    ]
    await store.apply_batch(creates=creates, updates=[])


async def test_replay_page_stops_once_its_data_reach_the_size(store: ActivityStore) -> None:
    await add_many(store, 40)
    max_bytes = 50_000

    page = await store.changes_page(cursor=0, limit=500, max_bytes=max_bytes)

    sizes = [data_bytes(change) for change in page.changes]
    assert page.more
    # Everything but the change that crossed the line fits: one page holds at most the size plus an event.
    assert 1 < len(sizes) < 40
    assert sum(sizes[:-1]) < max_bytes
    assert sum(sizes) <= max_bytes + max(sizes)


async def test_replay_pages_by_size_give_every_change_once_in_order(store: ActivityStore) -> None:
    await add_many(store, 30)
    everything = await store.changes_since(cursor=0, limit=1000)
    ids = [change.event.id for change in everything]
    await store.update(event_id=ids[3], changes=ActivityUpdate(status=EventStatus.SUCCESS))
    await store.delete(event_id=ids[7])
    everything = await store.changes_since(cursor=0, limit=1000)

    seen: list[Change] = []
    cursor = 0
    pages = 0
    while True:
        page = await store.changes_page(cursor=cursor, limit=500, max_bytes=35_000, origin=0)
        pages += 1
        assert pages <= len(everything) + 1, "paging does not end"
        seen += page.changes
        if page.changes:
            cursor = page.changes[-1].seq
        if not page.more:
            break

    assert [as_json(c) for c in seen] == [as_json(c) for c in everything]
    assert pages >= 30 * len(BLOB) // 35_000


async def test_replay_page_takes_one_event_larger_than_the_size(store: ActivityStore) -> None:
    await add_many(store, 3)

    page = await store.changes_page(cursor=0, limit=500, max_bytes=1000)

    assert (len(page.changes), page.more) == (1, True)


async def test_replay_page_still_stops_at_its_count(store: ActivityStore) -> None:
    await store.apply_batch(creates=[ActivityCreate(event_type="tool_call") for _ in range(6)], updates=[])

    first = await store.changes_page(cursor=0, limit=4, max_bytes=1024 * 1024)
    rest = await store.changes_page(cursor=first.changes[-1].seq, limit=4, max_bytes=1024 * 1024)

    assert (len(first.changes), first.more) == (4, True)
    assert (len(rest.changes), rest.more) == (2, False)


async def add_at(store: ActivityStore, minutes: int, **fields: Any) -> None:
    event = ActivityCreate(event_type="tool_call", timestamp=T0 + timedelta(minutes=minutes), **fields)
    await store.apply_batch(creates=[event], updates=[])


async def test_stats_window_counts_only_the_newest_events(store: ActivityStore) -> None:
    for minute in range(12):
        await add_at(store, minute, tool_name="old" if minute < 7 else "new", duration_ms=float(minute))
    await add_at(store, -60, tool_name="late")  # inserted last, but the oldest by its timestamp

    window = await store.stats_window(max_events=5)

    assert (window.events, window.truncated, window.since) == (5, True, T0 + timedelta(minutes=7))
    assert [(tool.tool_name, tool.count, tool.p50_duration_ms) for tool in window.tools] == [("new", 5, 9.0)]


async def test_stats_window_with_since(store: ActivityStore) -> None:
    for minute in range(12):
        await add_at(store, minute, tool_name="t")

    inside = await store.stats_window(since=T0 + timedelta(minutes=9), max_events=5)
    exactly = await store.stats_window(since=T0 + timedelta(minutes=7), max_events=5)
    beyond = await store.stats_window(since=T0 + timedelta(minutes=2), max_events=5)

    assert (inside.events, inside.truncated, inside.since) == (3, False, T0 + timedelta(minutes=9))
    assert (exactly.events, exactly.truncated, exactly.since) == (5, False, T0 + timedelta(minutes=7))
    assert (beyond.events, beyond.truncated, beyond.since) == (5, True, T0 + timedelta(minutes=7))


async def test_stats_window_breaks_timestamp_ties_by_insertion(store: ActivityStore) -> None:
    creates = [ActivityCreate(event_type="tool_call", timestamp=T0, tool_name=f"t{i}") for i in range(8)]
    await store.apply_batch(creates=creates, updates=[])

    window = await store.stats_window(max_events=5)

    assert (window.events, window.truncated, window.since) == (5, True, T0)
    assert sorted(tool.tool_name or "" for tool in window.tools) == [f"t{i}" for i in range(3, 8)]


async def test_stats_window_of_few_events_covers_them_all(store: ActivityStore) -> None:
    empty = await store.stats_window(max_events=5)
    for minute in range(3):
        await add_at(store, minute, tool_name="t")

    window = await store.stats_window(max_events=5)

    assert (empty.tools, empty.events, empty.truncated, empty.since) == ([], 0, False, None)
    assert (window.events, window.truncated, window.since) == (3, False, T0)
